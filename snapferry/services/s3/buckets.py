"""Buckets: create, find, list, locate, delete; their ACLs, ownership controls and policy."""

from __future__ import annotations

from typing import Any

from snapferry.domain import buckets as rules
from snapferry.domain import s3_access
from snapferry.errors import ServiceError
from snapferry.services.context import Output, RequestContext
from snapferry.services.s3.common import (
    access_denied,
    authorize_bucket,
    authorize_owner_only,
    bucket_arn,
    find_bucket,
    own_action,
    owner_of,
)
from snapferry.storage import s3store
from snapferry.storage.s3store import Bucket

ENFORCED = "BucketOwnerEnforced"


def acl_from_request(params: dict[str, Any], owner: str, bucket_owner: str | None = None,
                     for_object: bool = False) -> list[dict[str, Any]] | None:
    """The grants a request asks for: a canned ACL, grant headers, or an
    AccessControlPolicy body (one of them); None when it names none."""
    given = [params.get("ACL") is not None, s3_access.from_headers(params) is not None,
             params.get("AccessControlPolicy") is not None]
    if sum(given) > 1:
        raise ServiceError("InvalidRequest", "Specify a canned ACL, x-amz-grant-* headers or "
                           "an AccessControlPolicy body, not more than one.")
    if params.get("ACL") is not None:
        return s3_access.canned(params["ACL"], owner, bucket_owner, for_object)
    headers = s3_access.from_headers(params)
    if headers is not None:
        return headers
    body = params.get("AccessControlPolicy")
    if body is not None:
        grants = body.get("Grants") or []
        return [s3_access.check_grant(g) for g in grants]
    return None


def acls_disabled() -> ServiceError:
    return ServiceError("AccessControlListNotSupported", "The bucket does not allow ACLs")


def only_owner_full_control(grants: list[dict[str, Any]], bucket_owner: str) -> bool:
    """Under BucketOwnerEnforced the only ACL accepted is the owner's full control."""
    me = s3_access.canonical_id(bucket_owner)
    return all(g["Permission"] == "FULL_CONTROL" and g["Grantee"].get("ID") == me
               for g in grants)


def create_bucket(ctx: RequestContext, params: dict[str, Any]) -> Output:
    name = params["Bucket"]
    rules.check_bucket_name(name)
    config = params.get("CreateBucketConfiguration") or {}
    region = rules.bucket_region(ctx.region, config.get("LocationConstraint"))
    ownership = params.get("ObjectOwnership") or ENFORCED
    if ownership not in s3_access.OWNERSHIPS:
        raise ServiceError("InvalidArgument", f"Invalid x-amz-object-ownership header: "
                           f"{ownership[:40]}", ArgumentName="x-amz-object-ownership")
    acl = acl_from_request(params, ctx.account_id)
    if acl is not None and ownership == ENFORCED and not only_owner_full_control(
            acl, ctx.account_id):
        raise ServiceError("InvalidBucketAclWithObjectOwnership",
                           "Bucket cannot have ACLs set with ObjectOwnership's "
                           "BucketOwnerEnforced setting")
    ctx.authorize()  # s3:CreateBucket on the bucket (domain/s3_actions.py)
    if params.get("ObjectOwnership") is not None:
        ctx.authorize(action="s3:PutBucketOwnershipControls")
    if params.get("ACL") not in (None, "private"):
        ctx.authorize(action="s3:PutBucketAcl")
    with ctx.storage.engine.begin() as conn:
        existing = s3store.get_bucket(conn, name)
        if existing is not None:
            if existing.account_id == ctx.account_id:
                raise ServiceError("BucketAlreadyOwnedByYou", "Your previous request to "
                                   "create the named bucket succeeded and you already own it.",
                                   status=409, BucketName=name)
            raise ServiceError("BucketAlreadyExists", "The requested bucket name is not "
                               "available. The bucket namespace is shared by all users of the "
                               "system. Please select a different name and try again.",
                               status=409, BucketName=name)
        s3store.add_bucket(conn, Bucket(
            name, ctx.account_id, region, ctx.clock.now(), ownership,
            acl or s3_access.canned("private", ctx.account_id), None))
    return {"Location": f"/{name}", "BucketArn": bucket_arn(name)}


def head_bucket(ctx: RequestContext, params: dict[str, Any]) -> Output:
    with ctx.storage.engine.connect() as conn:
        bucket = find_bucket(conn, ctx, params["Bucket"])
    authorize_bucket(ctx, bucket, own_action(ctx), "READ")
    return {"BucketRegion": bucket.region, "BucketArn": bucket_arn(bucket.name)}


def list_buckets(ctx: RequestContext, params: dict[str, Any]) -> Output:
    ctx.authorize()  # s3:ListAllMyBuckets
    with ctx.storage.engine.connect() as conn:
        found = s3store.buckets_of(conn, ctx.account_id)
    prefix = params.get("Prefix") or ""
    region = params.get("BucketRegion")
    found = [b for b in found if b.name.startswith(prefix) and region in (None, b.region)]
    return {"Buckets": [{"Name": b.name, "CreationDate": b.created_at, "BucketRegion": b.region,
                         "BucketArn": bucket_arn(b.name)} for b in found],
            "Owner": owner_of(ctx.account_id), "Prefix": params.get("Prefix")}


def get_bucket_location(ctx: RequestContext, params: dict[str, Any]) -> Output:
    with ctx.storage.engine.connect() as conn:
        bucket = find_bucket(conn, ctx, params["Bucket"], any_region=True)
    authorize_bucket(ctx, bucket, own_action(ctx), None)
    # us-east-1 is written as an empty constraint, as S3 does.
    return {"LocationConstraint": "" if bucket.region == "us-east-1" else bucket.region}


def delete_bucket(ctx: RequestContext, params: dict[str, Any]) -> Output:
    with ctx.storage.engine.begin() as conn:
        bucket = find_bucket(conn, ctx, params["Bucket"])
        authorize_owner_only(ctx, bucket, own_action(ctx))
        if not s3store.is_empty(conn, bucket.name):
            raise ServiceError("BucketNotEmpty", "The bucket you tried to delete is not empty",
                               status=409, BucketName=bucket.name)
        s3store.delete_bucket(conn, bucket.name)
    return {}


# ---- ACL -------------------------------------------------------------------------------------

def get_bucket_acl(ctx: RequestContext, params: dict[str, Any]) -> Output:
    with ctx.storage.engine.connect() as conn:
        bucket = find_bucket(conn, ctx, params["Bucket"])
    authorize_bucket(ctx, bucket, own_action(ctx), "READ_ACP")
    return {"Owner": owner_of(bucket.account_id), "Grants": bucket.acl}


def put_bucket_acl(ctx: RequestContext, params: dict[str, Any]) -> Output:
    with ctx.storage.engine.begin() as conn:
        bucket = find_bucket(conn, ctx, params["Bucket"])
        acl = acl_from_request(params, bucket.account_id)
        if acl is None:
            raise ServiceError("MissingSecurityHeader", "Your request was missing a required "
                               "header: x-amz-acl, x-amz-grant-* or an AccessControlPolicy body.")
        authorize_bucket(ctx, bucket, own_action(ctx), "WRITE_ACP")
        if bucket.ownership == ENFORCED and not only_owner_full_control(acl, bucket.account_id):
            raise acls_disabled()
        s3store.update_bucket(conn, bucket.name, acl=acl)
    return {}


# ---- ownership controls ----------------------------------------------------------------------

def put_bucket_ownership_controls(ctx: RequestContext, params: dict[str, Any]) -> Output:
    rules_given = (params.get("OwnershipControls") or {}).get("Rules") or []
    if len(rules_given) != 1 or rules_given[0].get("ObjectOwnership") not in s3_access.OWNERSHIPS:
        raise ServiceError("MalformedXML", "The XML you provided was not well-formed or did "
                           "not validate against our published schema: OwnershipControls needs "
                           f"one Rule with ObjectOwnership {', '.join(s3_access.OWNERSHIPS)}.")
    ownership = rules_given[0]["ObjectOwnership"]
    with ctx.storage.engine.begin() as conn:
        bucket = find_bucket(conn, ctx, params["Bucket"])
        authorize_owner_only(ctx, bucket, own_action(ctx))
        if ownership == ENFORCED and not only_owner_full_control(bucket.acl, bucket.account_id):
            raise ServiceError("InvalidBucketAclWithObjectOwnership",
                               "Bucket cannot have ACLs set with ObjectOwnership's "
                               "BucketOwnerEnforced setting")
        s3store.update_bucket(conn, bucket.name, ownership=ownership)
    return {}


def get_bucket_ownership_controls(ctx: RequestContext, params: dict[str, Any]) -> Output:
    with ctx.storage.engine.connect() as conn:
        bucket = find_bucket(conn, ctx, params["Bucket"])
    authorize_owner_only(ctx, bucket, own_action(ctx))
    return {"OwnershipControls": {"Rules": [{"ObjectOwnership": bucket.ownership}]}}


def delete_bucket_ownership_controls(ctx: RequestContext, params: dict[str, Any]) -> Output:
    """Without controls a bucket behaves as ObjectWriter (S3's behaviour before 2023)."""
    with ctx.storage.engine.begin() as conn:
        bucket = find_bucket(conn, ctx, params["Bucket"])
        authorize_owner_only(ctx, bucket, own_action(ctx))
        s3store.update_bucket(conn, bucket.name, ownership="ObjectWriter")
    return {}


# ---- policy ----------------------------------------------------------------------------------

def put_bucket_policy(ctx: RequestContext, params: dict[str, Any]) -> Output:
    text = params.get("Policy")
    if not text:
        raise ServiceError("MalformedPolicy", "The policy is empty.")
    with ctx.storage.engine.begin() as conn:
        bucket = find_bucket(conn, ctx, params["Bucket"])
        s3_access.parse_bucket_policy(text, bucket.name)
        authorize_owner_only(ctx, bucket, own_action(ctx))
        s3store.update_bucket(conn, bucket.name, policy=text)
    return {}


def get_bucket_policy(ctx: RequestContext, params: dict[str, Any]) -> Output:
    with ctx.storage.engine.connect() as conn:
        bucket = find_bucket(conn, ctx, params["Bucket"])
    authorize_owner_only(ctx, bucket, own_action(ctx))
    if bucket.policy is None:
        raise ServiceError("NoSuchBucketPolicy", "The bucket policy does not exist",
                           status=404, BucketName=bucket.name)
    return {"Policy": bucket.policy}


def delete_bucket_policy(ctx: RequestContext, params: dict[str, Any]) -> Output:
    with ctx.storage.engine.begin() as conn:
        bucket = find_bucket(conn, ctx, params["Bucket"])
        if ctx.account_id != bucket.account_id:
            raise access_denied(own_action(ctx))
        authorize_owner_only(ctx, bucket, own_action(ctx))
        s3store.update_bucket(conn, bucket.name, policy=None)
    return {}


HANDLERS = {
    "CreateBucket": create_bucket,
    "HeadBucket": head_bucket,
    "ListBuckets": list_buckets,
    "GetBucketLocation": get_bucket_location,
    "DeleteBucket": delete_bucket,
    "GetBucketAcl": get_bucket_acl,
    "PutBucketAcl": put_bucket_acl,
    "PutBucketOwnershipControls": put_bucket_ownership_controls,
    "GetBucketOwnershipControls": get_bucket_ownership_controls,
    "DeleteBucketOwnershipControls": delete_bucket_ownership_controls,
    "PutBucketPolicy": put_bucket_policy,
    "GetBucketPolicy": get_bucket_policy,
    "DeleteBucketPolicy": delete_bucket_policy,
}
