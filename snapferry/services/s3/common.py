"""What every S3 handler shares: finding the bucket and object, the access check, the
object files, and the errors S3 names."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from urllib.parse import quote

from sqlalchemy.engine import Connection

from snapferry.domain import s3_access, s3_actions
from snapferry.domain.s3_access import Resource
from snapferry.errors import ServiceError
from snapferry.services.context import RequestContext
from snapferry.storage import s3store
from snapferry.storage.objectfiles import ObjectFiles
from snapferry.storage.s3store import Bucket, StoredObject

S3_DIR = "s3"


@cache
def _files(data_dir: Path) -> ObjectFiles:
    return ObjectFiles(data_dir / S3_DIR)


def object_files(ctx: RequestContext) -> ObjectFiles:
    return _files(ctx.storage.data_dir)


def own_action(ctx: RequestContext) -> str:
    """The IAM action the operation is named for (domain/s3_actions.py)."""
    return s3_actions.action(ctx.operation)


def access_denied(action: str) -> ServiceError:
    return ServiceError("AccessDenied", f"Access Denied: you are not authorized to perform "
                        f"{action}.", status=403)


def no_such_bucket(name: str) -> ServiceError:
    return ServiceError("NoSuchBucket", "The specified bucket does not exist", status=404,
                        BucketName=name[:255])


def no_such_key(key: str) -> ServiceError:
    return ServiceError("NoSuchKey", "The specified key does not exist.", status=404,
                        Key=key[:1024])


def no_such_upload(upload_id: str) -> ServiceError:
    return ServiceError("NoSuchUpload", "The specified upload does not exist. The upload ID "
                        "may be invalid, or the upload may have been aborted or completed.",
                        status=404, UploadId=upload_id[:200])


def bucket_arn(name: str) -> str:
    return f"arn:aws:s3:::{name}"


def object_arn(bucket: str, key: str) -> str:
    return f"arn:aws:s3:::{bucket}/{key}"


def find_bucket(conn: Connection, ctx: RequestContext, name: str,
                any_region: bool = False) -> Bucket:
    """The bucket, which must live in the request's region (S3 answers a request signed for
    another region with that bucket's region, and SDKs retry there)."""
    bucket = s3store.get_bucket(conn, name)
    if bucket is None:
        raise no_such_bucket(name)
    if bucket.region != ctx.region and not any_region:
        raise ServiceError(
            "AuthorizationHeaderMalformed",
            f"The authorization header is malformed; the region '{ctx.region}' is wrong; "
            f"expecting '{bucket.region}'", Region=bucket.region)
    return bucket


def resource(bucket: Bucket, key: str | None = None, obj: StoredObject | None = None
             ) -> Resource:
    return s3_access.resource_of(bucket.name, bucket.account_id, bucket.ownership, bucket.acl,
                                 bucket.policy, key, obj.owner if obj else None,
                                 obj.acl if obj else None)


def acl_of(bucket: Bucket, grants: list[dict]) -> list[dict] | None:
    """ACLs count only while the bucket has them on."""
    return None if bucket.ownership == "BucketOwnerEnforced" else grants


def authorize_bucket(ctx: RequestContext, bucket: Bucket, action: str,
                     acl_permission: str | None) -> None:
    _decide(ctx, action, resource(bucket), acl_permission)


def authorize_owner_only(ctx: RequestContext, bucket: Bucket, action: str) -> None:
    """Bucket policy and ownership settings: only the bucket owner's account, as in S3."""
    if ctx.account_id != bucket.account_id:
        raise access_denied(action)
    # The owner's own identity decides; its bucket policy cannot lock it out of these.
    owned = Resource(bucket_arn(bucket.name), bucket.account_id, bucket.account_id, None,
                     None)
    _decide(ctx, action, owned, None)


def authorize_object(ctx: RequestContext, bucket: Bucket, key: str, obj: StoredObject | None,
                     action: str, acl_permission: str | None) -> None:
    """An existing object: its owner's authority and its ACL; a key with no object (a write
    or a miss): the bucket's (WRITE for writes)."""
    _decide(ctx, action, resource(bucket, key, obj), acl_permission)


def authorize_write(ctx: RequestContext, bucket: Bucket, key: str, action: str) -> None:
    """Writing or deleting a key is a right on the bucket (its WRITE permission)."""
    _decide(ctx, action, resource(bucket, key), "WRITE")


def sets_acl(params: dict) -> bool:
    """Whether a write also sets the object's ACL (a canned ACL or grant headers), which S3
    authorizes as s3:PutObjectAcl too."""
    return any(params.get(name) is not None for name in (
        "ACL", "GrantFullControl", "GrantRead", "GrantReadACP", "GrantWriteACP"))


def authorize_new_object(ctx: RequestContext, bucket: Bucket, key: str, params: dict) -> None:
    """A write of a key: s3:PutObject, and s3:PutObjectAcl when it sets an ACL."""
    authorize_write(ctx, bucket, key, "s3:PutObject")
    if sets_acl(params):
        authorize_write(ctx, bucket, key, "s3:PutObjectAcl")


def _decide(ctx: RequestContext, action: str, where: Resource,
            acl_permission: str | None) -> None:
    # The request's own condition keys (s3:prefix, s3:x-amz-acl, ...: domain/s3_actions.py)
    # apply to the action the operation is named for, not to a second one it also needs
    # (CopyObject's s3:GetObject on its source).
    asked = ctx.asked.conditions if ctx.asked is not None else {}
    conditions = {**asked, "aws:RequestedRegion": ctx.region, "aws:SecureTransport": False,
                  "aws:CurrentTime": ctx.clock.now()}
    if ctx.request is not None and ctx.request.client_ip:
        conditions.setdefault("aws:SourceIp", ctx.request.client_ip)
    if not s3_access.allowed(ctx.principal, action, where, acl_permission, conditions):
        raise access_denied(action)
    ctx.authorized = True


def url_encode(value: str | None, encoding: str | None) -> str | None:
    """Keys in list results, %-encoded when the request asked for encoding-type=url."""
    if value is None or encoding != "url":
        return value
    return quote(value, safe="/")


def owner_of(account_id: str) -> dict[str, str]:
    return s3_access.owner(account_id)


def readable_object(ctx: RequestContext, conn: Connection, bucket_name: str, key: str
                    ) -> StoredObject | None:
    """The object if it exists and the caller may read it (s3:GetObject), else None: for
    other services that read S3 on the caller's behalf (RegisterImage's bundle)."""
    bucket = s3store.get_bucket(conn, bucket_name)
    if bucket is None or bucket.region != ctx.region:
        return None
    obj = s3store.get_object(conn, bucket_name, key)
    if obj is None:
        return None
    if not s3_access.may(ctx.principal, "s3:GetObject", bucket, key, obj, "READ", ctx.region):
        return None
    return obj
