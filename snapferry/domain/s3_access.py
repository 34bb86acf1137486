"""Who may do what to a bucket or an object: the bucket policy (through the shared evaluator
in domain/policy.py), the ACLs (canned and explicit grants), object ownership, and the one
place where the caller's IAM identity policies will plug in.

Order, as S3 documents it: an explicit Deny in the bucket policy refuses; an Allow from the
account's own authority (a root of the resource owner's account), the bucket policy, or an
ACL grant allows; anything else is AccessDenied. The bucket policy speaks only for objects
the bucket owner owns (an object another account wrote under ObjectWriter is governed by
its own ACL). With ObjectOwnership BucketOwnerEnforced ACLs are off: they grant nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from snapferry.domain import policy
from snapferry.domain.accounts import Principal
from snapferry.domain.policy_documents import Kind, PolicyDocument, parse_document
from snapferry.errors import ServiceError

ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"
AUTHENTICATED_USERS = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers"
LOG_DELIVERY = "http://acs.amazonaws.com/groups/s3/LogDelivery"
GROUPS = (ALL_USERS, AUTHENTICATED_USERS, LOG_DELIVERY)
# The canonical user EC2 reads bundles as (aws-exec-read); AWS documents this grantee as
# "Amazon EC2" and uses this id for it.
EC2_CANONICAL_ID = "6aa5a366c34c1cbe25dc49211496e913e0351eb0e8c37aa3477e40942ec6b97c"
PERMISSIONS = ("FULL_CONTROL", "WRITE", "WRITE_ACP", "READ", "READ_ACP")
OWNERSHIPS = ("BucketOwnerEnforced", "BucketOwnerPreferred", "ObjectWriter")
BUCKET_CANNED = ("private", "public-read", "public-read-write", "authenticated-read",
                 "aws-exec-read", "log-delivery-write")
OBJECT_CANNED = ("private", "public-read", "public-read-write", "authenticated-read",
                 "aws-exec-read", "bucket-owner-read", "bucket-owner-full-control")

Grant = dict[str, Any]  # {"Grantee": {"Type": ..., "ID"|"URI": ...}, "Permission": ...}


def canonical_id(account_id: str) -> str:
    """An account's canonical user id (64 hex digits, stable, derived from the account)."""
    return hashlib.sha256(f"snapferry canonical user {account_id}".encode()).hexdigest()


def owner(account_id: str) -> dict[str, str]:
    return {"ID": canonical_id(account_id), "DisplayName": account_id}


def _user(canonical: str, permission: str) -> Grant:
    return {"Grantee": {"Type": "CanonicalUser", "ID": canonical}, "Permission": permission}


def _group(uri: str, permission: str) -> Grant:
    return {"Grantee": {"Type": "Group", "URI": uri}, "Permission": permission}


def canned(acl: str, owner_account: str, bucket_owner: str | None = None,
           for_object: bool = False) -> list[Grant]:
    """The grants a canned ACL stands for."""
    allowed = OBJECT_CANNED if for_object else BUCKET_CANNED
    if acl not in allowed:
        raise ServiceError("InvalidArgument", f"The canned ACL '{acl[:50]}' is not one of "
                           f"{', '.join(allowed)}.", ArgumentName="x-amz-acl")
    grants = [_user(canonical_id(owner_account), "FULL_CONTROL")]
    extra = {
        "public-read": [_group(ALL_USERS, "READ")],
        "public-read-write": [_group(ALL_USERS, "READ"), _group(ALL_USERS, "WRITE")],
        "authenticated-read": [_group(AUTHENTICATED_USERS, "READ")],
        "aws-exec-read": [_user(EC2_CANONICAL_ID, "READ")],
        "log-delivery-write": [_group(LOG_DELIVERY, "WRITE"), _group(LOG_DELIVERY, "READ_ACP")],
    }.get(acl, [])
    if bucket_owner and bucket_owner != owner_account:
        if acl == "bucket-owner-read":
            extra = [_user(canonical_id(bucket_owner), "READ")]
        elif acl == "bucket-owner-full-control":
            extra = [_user(canonical_id(bucket_owner), "FULL_CONTROL")]
    return grants + extra


_GRANT_HEADERS = {
    "GrantFullControl": "FULL_CONTROL", "GrantRead": "READ", "GrantReadACP": "READ_ACP",
    "GrantWrite": "WRITE", "GrantWriteACP": "WRITE_ACP",
}


def from_headers(params: Mapping[str, Any]) -> list[Grant] | None:
    """Grants from x-amz-grant-* headers (`id="..."`, `uri="..."`, comma-separated), or None
    when the request has none."""
    grants: list[Grant] = []
    for member, permission in _GRANT_HEADERS.items():
        text = params.get(member)
        if text is None:
            continue
        for item in text.split(","):
            kind, _, value = item.strip().partition("=")
            value = value.strip().strip('"')
            if kind.strip() == "id":
                grants.append(_user(value, permission))
            elif kind.strip() == "uri":
                grants.append(_group(value, permission))
            else:
                raise ServiceError("InvalidArgument",
                                   f"Grantee '{item.strip()[:80]}' must be id=\"...\" or "
                                   "uri=\"...\" (emailAddress grantees are not supported).")
    if params.get("GrantFullControl") is None and not grants:
        return None
    return [check_grant(g) for g in grants]


def check_grant(grant: Grant) -> Grant:
    grantee = grant.get("Grantee") or {}
    permission = grant.get("Permission")
    if permission not in PERMISSIONS:
        raise ServiceError("MalformedACLError", f"Permission '{str(permission)[:30]}' is not "
                           f"one of {', '.join(PERMISSIONS)}.")
    kind = grantee.get("Type")
    if kind == "CanonicalUser":
        ident = str(grantee.get("ID") or "")
        if len(ident) != 64 or any(c not in "0123456789abcdef" for c in ident):
            raise ServiceError("InvalidArgument", "Invalid id: a canonical user id is 64 "
                               "lowercase hexadecimal digits.", ArgumentName="CanonicalUser/ID",
                               ArgumentValue=ident[:100])
        return _user(ident, permission)
    if kind == "Group":
        if grantee.get("URI") not in GROUPS:
            raise ServiceError("InvalidArgument", "Invalid group uri",
                               ArgumentName="Group/URI",
                               ArgumentValue=str(grantee.get("URI"))[:200])
        return _group(grantee["URI"], permission)
    raise ServiceError("MalformedACLError", "Only CanonicalUser and Group grantees are "
                       "supported (AmazonCustomerByEmail is not).")


def grants_permission(grants: Sequence[Grant], account_id: str | None, needed: str) -> bool:
    """Whether an ACL gives `needed` (or FULL_CONTROL) to the account (None: anonymous)."""
    me = canonical_id(account_id) if account_id else None
    for grant in grants:
        if grant["Permission"] not in (needed, "FULL_CONTROL"):
            continue
        grantee = grant["Grantee"]
        # `me` is None for an anonymous caller: a grantee without an ID is nobody, not them.
        if grantee["Type"] == "CanonicalUser" and me is not None and grantee.get("ID") == me:
            return True
        if grantee["Type"] == "Group" and (
                grantee.get("URI") == ALL_USERS
                or (grantee.get("URI") == AUTHENTICATED_USERS and account_id)):
            return True
    return False


def parse_bucket_policy(text: str, bucket: str) -> PolicyDocument:
    """A bucket policy, checked as S3 checks one (MalformedPolicy), naming only this bucket."""
    document = parse_document(text, Kind.RESOURCE, "bucket-policy", max_chars=20 * 1024,
                              code="MalformedPolicy")
    for statement in document.statements:
        for resource in statement.resources or ():
            if resource != "*" and not (resource == f"arn:aws:s3:::{bucket}"
                                        or resource.startswith(f"arn:aws:s3:::{bucket}/")):
                raise ServiceError("MalformedPolicy",
                                   "Policy has invalid resource: every Resource must be this "
                                   f"bucket (arn:aws:s3:::{bucket}) or its objects.")
    return document


# ---- IAM --------------------------------------------------------------------------------------


def identity_policies(principal: Principal) -> Sequence[PolicyDocument]:
    """The caller's identity policies (a user's inline, attached and groups' policies; a
    role's), as its credentials were read. A root has none and needs none: domain/policy.py
    lets a root do anything in its own account."""
    return principal.policies


@dataclass(frozen=True)
class Resource:
    arn: str  # arn:aws:s3:::bucket or arn:aws:s3:::bucket/key
    owner: str  # the account owning it (the object's owner for object actions)
    bucket_owner: str
    acl: Sequence[Grant] | None  # None: ACLs are disabled (BucketOwnerEnforced)
    bucket_policy: PolicyDocument | None


def resource_of(bucket: str, bucket_owner: str, ownership: str, bucket_acl: Sequence[Grant],
                policy_text: str | None, key: str | None = None,
                object_owner: str | None = None,
                object_acl: Sequence[Grant] | None = None) -> Resource:
    """The bucket (key None), a key with no object (the bucket's owner and ACL decide), or
    an existing object (its owner and ACL)."""
    enforced = ownership == "BucketOwnerEnforced"
    document = parse_bucket_policy(policy_text, bucket) if policy_text else None
    if key is None:
        return Resource(f"arn:aws:s3:::{bucket}", bucket_owner, bucket_owner,
                        None if enforced else bucket_acl, document)
    arn = f"arn:aws:s3:::{bucket}/{key}"
    if object_owner is None:
        return Resource(arn, bucket_owner, bucket_owner, None if enforced else bucket_acl,
                        document)
    return Resource(arn, object_owner, bucket_owner, None if enforced else object_acl,
                    document)


ANONYMOUS_KIND = "anonymous"


def anonymous() -> Principal:
    """Who an unsigned request acts as: no account, no policies; only what ACLs grant
    AllUsers reaches it, and a bucket policy's Deny to everyone still refuses it."""
    return Principal(account_id="", access_key_id="", kind=ANONYMOUS_KIND)


def _anonymous_allowed(action: str, resource: Resource, acl_permission: str | None) -> bool:
    if resource.bucket_policy is not None and resource.owner == resource.bucket_owner:
        caller = policy.Caller("", "anonymous")
        decision = policy.evaluate(
            policy.Request(caller, action, resource.arn, {}),
            resource=policy.ResourcePolicy(resource.owner, resource.bucket_policy.statements,
                                           name="bucket-policy"))
        if decision.effect is policy.Effect.EXPLICIT_DENY:
            return False
    return resource.acl is not None and acl_permission is not None and grants_permission(
        resource.acl, None, acl_permission)


def allowed(principal: Principal | None, action: str, resource: Resource,
            acl_permission: str | None,
            conditions: Mapping[str, Any] | None = None) -> bool:
    """Whether the caller (None: anonymous) may perform `action` on `resource`.
    `acl_permission` is the ACL permission that also allows it (None: no ACL can).

    Through the shared evaluator: the caller's identity and session policies with the bucket
    policy as the resource side, so in the caller's own account either allows and in
    another account both must; an explicit Deny anywhere refuses. An ACL grant is one more
    resource-side allow, which the caller's own identity must back (a root's always does in
    its own account; across accounts the grantee account's identity decides)."""
    if principal is None or principal.kind == ANONYMOUS_KIND:
        return _anonymous_allowed(action, resource, acl_permission)
    caller = policy.Caller.of(principal)
    facts = {**policy.principal_context(principal), **(conditions or {})}
    request = policy.Request(caller, action, resource.arn, facts)
    statements = (resource.bucket_policy.statements
                  if resource.bucket_policy is not None and resource.owner == resource.bucket_owner
                  else ())
    identity = identity_policies(principal)
    session = principal.session_policies
    decision = policy.evaluate(
        request, identity=identity, session=session,
        resource=policy.ResourcePolicy(resource.owner, tuple(statements), name="bucket-policy"))
    if decision.effect is policy.Effect.EXPLICIT_DENY:
        return False
    if decision.allowed:
        return True
    if resource.acl is None or acl_permission is None:
        return False
    if not grants_permission(resource.acl, principal.account_id, acl_permission):
        return False
    # An ACL is a resource-side allow: the caller's own identity must allow the action too.
    own = policy.Request(caller, action, resource.arn, facts)
    return policy.evaluate(own, identity=identity, session=session).allowed


def may(principal: Principal, action: str, bucket: Any, key: str | None = None,
        obj: Any = None, acl_permission: str | None = None,
        region: str | None = None) -> bool:
    """`allowed` for a stored bucket and object (storage/s3store.py's Bucket and
    StoredObject), for those who act on S3 on a caller's behalf: RegisterImage reading a
    bundle, the copy engine copying one."""
    where = resource_of(bucket.name, bucket.account_id, bucket.ownership, bucket.acl,
                        bucket.policy, key, obj.owner if obj is not None else None,
                        obj.acl if obj is not None else None)
    conditions = {"aws:RequestedRegion": region or bucket.region}
    return allowed(principal, action, where, acl_permission, conditions)
