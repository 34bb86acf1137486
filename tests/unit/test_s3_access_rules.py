"""S3's access rules (domain/s3_access.py) one by one, without a server: canned ACLs and
grant headers, which grantee an ACL grant reaches, a bucket policy naming only its bucket,
object ownership, and the order of bucket policy, ACL and the caller's own identity."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import pytest

from snapferry.domain import s3_access
from snapferry.domain.accounts import ASSUMED_ROLE, USER, Principal
from snapferry.domain.policy_documents import Kind, parse_document
from snapferry.domain.s3_access import (
    ALL_USERS,
    AUTHENTICATED_USERS,
    EC2_CANONICAL_ID,
    LOG_DELIVERY,
    allowed,
    canned,
    canonical_id,
    check_grant,
    from_headers,
    grants_permission,
    parse_bucket_policy,
    resource_of,
)
from snapferry.errors import ServiceError

OWNER, OTHER, THIRD = "111111111111", "222222222222", "333333333333"
ROOT = Principal(OWNER, "AKIAOWNER")
OTHER_ROOT = Principal(OTHER, "AKIAOTHER")
THIRD_ROOT = Principal(THIRD, "AKIATHIRD")
ANONYMOUS = s3_access.anonymous()


def _same(text: str) -> str:
    """An equal string that is another object, as a request or the database gives one."""
    return "".join(list(text))


def _policy(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)},
                      separators=(",", ":"))


def _identity(*statements: dict[str, Any]) -> Any:
    return parse_document(_policy(*statements), Kind.IDENTITY, "identity")


ALLOW_GET = {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}


def _user(account: str, *policies: Any) -> Principal:
    return Principal(account, "AKIAUSER", USER, "ann", "AIDAANN", policies=tuple(policies))


def _grant(canonical: str, permission: str) -> dict[str, Any]:
    return {"Grantee": {"Type": "CanonicalUser", "ID": canonical}, "Permission": permission}


def _group(uri: str, permission: str) -> dict[str, Any]:
    return {"Grantee": {"Type": "Group", "URI": uri}, "Permission": permission}


def refused(code: str) -> pytest.RaisesContext[ServiceError]:
    return pytest.raises(ServiceError, match=code)


# ---- canonical ids, canned ACLs ---------------------------------------------------------------


def test_a_canonical_id_is_64_hex_digits_stable_and_per_account() -> None:
    first = canonical_id(OWNER)
    assert len(first) == 64 and set(first) <= set("0123456789abcdef")
    assert canonical_id(_same(OWNER)) == first
    assert canonical_id(OTHER) != first
    assert s3_access.owner(OWNER) == {"ID": first, "DisplayName": OWNER}


@pytest.mark.parametrize(("acl", "extra"), [
    ("private", []),
    ("public-read", [_group(ALL_USERS, "READ")]),
    ("public-read-write", [_group(ALL_USERS, "READ"), _group(ALL_USERS, "WRITE")]),
    ("authenticated-read", [_group(AUTHENTICATED_USERS, "READ")]),
    ("aws-exec-read", [_grant(EC2_CANONICAL_ID, "READ")]),
    ("log-delivery-write", [_group(LOG_DELIVERY, "WRITE"), _group(LOG_DELIVERY, "READ_ACP")]),
])
def test_each_canned_bucket_acl_is_the_owners_full_control_and_its_grants(
        acl: str, extra: list[dict[str, Any]]) -> None:
    assert canned(_same(acl), OWNER) == [_grant(canonical_id(OWNER), "FULL_CONTROL"), *extra]


def test_bucket_owner_acls_grant_the_bucket_owner_only_when_another_account_writes() -> None:
    mine = [_grant(canonical_id(OTHER), "FULL_CONTROL")]
    assert canned("bucket-owner-read", OTHER, OWNER, for_object=True) == [
        *mine, _grant(canonical_id(OWNER), "READ")]
    assert canned("bucket-owner-full-control", OTHER, OWNER, for_object=True) == [
        *mine, _grant(canonical_id(OWNER), "FULL_CONTROL")]
    # The writer owns the bucket too (compared by value), or no bucket owner is known.
    for bucket_owner in (_same(OTHER), None):
        for acl in ("bucket-owner-read", "bucket-owner-full-control"):
            assert canned(acl, OTHER, bucket_owner, for_object=True) == mine
    # Other canned ACLs give a different bucket owner nothing, whichever way they sort
    # against the bucket-owner ones.
    assert canned("private", OTHER, OWNER, for_object=True) == mine
    assert canned("authenticated-read", OTHER, OWNER, for_object=True) == [
        *mine, _group(AUTHENTICATED_USERS, "READ")]
    assert canned("aws-exec-read", OTHER, OWNER, for_object=True) == [
        *mine, _grant(EC2_CANONICAL_ID, "READ")]
    # Whichever account id sorts first: a writer in an earlier account than the bucket's.
    assert canned("bucket-owner-read", OWNER, OTHER, for_object=True) == [
        _grant(canonical_id(OWNER), "FULL_CONTROL"), _grant(canonical_id(OTHER), "READ")]


def test_canned_acls_of_objects_and_of_buckets_are_not_interchangeable() -> None:
    with refused("InvalidArgument"):
        canned("bucket-owner-read", OWNER)
    with refused("InvalidArgument"):
        canned("log-delivery-write", OWNER, for_object=True)
    with refused("InvalidArgument"):
        canned("Private", OWNER)
    assert canned("log-delivery-write", OWNER)
    assert canned("bucket-owner-full-control", OWNER, for_object=True)


# ---- grant headers and grants -----------------------------------------------------------------


def test_grant_headers_give_one_grant_per_grantee_and_permission() -> None:
    me, them = canonical_id(OWNER), canonical_id(OTHER)
    grants = from_headers({
        "GrantRead": f'id="{me}", uri="{ALL_USERS}"',
        "GrantWrite": f" id = {them} ",
        "GrantReadACP": f'id="{them}"', "GrantWriteACP": f'id="{me}"',
        "GrantFullControl": f'id="{them}"',
    })
    assert grants is not None
    assert sorted(map(json.dumps, grants)) == sorted(map(json.dumps, [
        _grant(me, "READ"), _group(ALL_USERS, "READ"), _grant(them, "WRITE"),
        _grant(them, "READ_ACP"), _grant(me, "WRITE_ACP"), _grant(them, "FULL_CONTROL")]))


def test_no_grant_header_is_no_acl_and_a_bad_grantee_is_refused() -> None:
    assert from_headers({}) is None
    assert from_headers({"GrantRead": None, "Other": "x"}) is None
    # Neither id= nor uri=: refused as such, whichever way the kind sorts against "uri".
    for kind in ("emailAddress", "zz", "URI"):
        with refused("emailAddress grantees are not supported"):
            from_headers({"GrantRead": f'{kind}="a@example.com"'})
    with refused("InvalidArgument"):  # a bad canonical id, checked like a body's
        from_headers({"GrantRead": 'id="abc"'})
    with refused("InvalidArgument"):
        from_headers({"GrantWrite": 'uri="http://example.com/group"'})


def test_a_grant_is_checked_and_rebuilt_from_what_it_names() -> None:
    me = canonical_id(OWNER)
    for permission in s3_access.PERMISSIONS:
        assert check_grant({"Grantee": {"Type": "CanonicalUser", "ID": me, "x": 1},
                            "Permission": _same(permission), "y": 2}) == _grant(me, permission)
    for uri in s3_access.GROUPS:
        assert check_grant(_group(_same(uri), "READ")) == _group(uri, "READ")
    # As a request body gives them: every string a new object, compared by value.
    for grant in (_grant(me, "READ"), _group(ALL_USERS, "WRITE")):
        assert check_grant(json.loads(json.dumps(grant))) == grant
    for permission in ("read", "FULL", None, "AAA", "ZZZ"):
        with refused("MalformedACLError"):
            check_grant(_grant(me, permission))  # type: ignore[arg-type]
    for ident in (me[:-1], me + "0", me.upper(), me[:-1] + "g", "", None):
        with refused("InvalidArgument"):
            check_grant(_grant(ident, "READ"))  # type: ignore[arg-type]
    with refused("InvalidArgument"):
        check_grant(_group(ALL_USERS + "x", "READ"))
    for kind in ("AmazonCustomerByEmail", "Canonicaluser", None):
        with refused("MalformedACLError"):
            check_grant({"Grantee": {"Type": kind, "ID": me}, "Permission": "READ"})
    with refused("MalformedACLError"):
        check_grant({"Permission": "READ"})


@pytest.mark.parametrize("needed", ["READ", "WRITE", "READ_ACP", "WRITE_ACP"])
def test_an_acl_gives_its_permission_or_full_control_to_whom_it_names(needed: str) -> None:
    me = _same(canonical_id(OWNER))
    other = "WRITE" if needed == "READ" else "READ"
    assert grants_permission([_grant(me, needed)], OWNER, needed)
    assert grants_permission([_grant(me, "FULL_CONTROL")], OWNER, needed)
    assert not grants_permission([_grant(me, other)], OWNER, needed)
    assert not grants_permission([_grant(me, needed)], OTHER, needed)
    assert not grants_permission([_grant(me, needed)], None, needed)
    # AllUsers: everyone, anonymous included; AuthenticatedUsers: any account, not anonymous.
    assert grants_permission([_group(_same(ALL_USERS), needed)], None, needed)
    assert grants_permission([_group(ALL_USERS, needed)], THIRD, needed)
    assert grants_permission([_group(_same(AUTHENTICATED_USERS), needed)], THIRD, needed)
    assert not grants_permission([_group(AUTHENTICATED_USERS, needed)], None, needed)
    assert not grants_permission([_group(AUTHENTICATED_USERS, needed)], "", needed)
    # The log delivery group is no account's.
    assert not grants_permission([_group(LOG_DELIVERY, needed)], THIRD, needed)
    assert not grants_permission([_group(LOG_DELIVERY, needed)], None, needed)
    # Any grant that fits, in any position.
    assert grants_permission([_grant(canonical_id(OTHER), needed), _grant(me, other),
                              _grant(me, needed)], OWNER, needed)
    assert not grants_permission([], OWNER, needed)
    # Grants read back from the database: every string a new object, compared by value.
    for grant in ([_grant(me, needed)], [_group(ALL_USERS, needed)]):
        assert grants_permission(json.loads(json.dumps(grant)), OWNER, needed)


def test_a_group_grant_is_read_by_its_uri_not_by_an_id() -> None:
    odd = {"Grantee": {"Type": "Group", "ID": canonical_id(OWNER)}, "Permission": "READ"}
    assert not grants_permission([odd], OWNER, "READ")
    user_with_uri = {"Grantee": {"Type": "CanonicalUser", "URI": ALL_USERS},
                     "Permission": "READ"}
    assert not grants_permission([user_with_uri], OWNER, "READ")
    assert not grants_permission([user_with_uri], None, "READ")
    # Only CanonicalUser and Group are grantees; another type naming my id is nobody.
    for kind in ("AmazonCustomerByEmail", "Canonical", "Groups", "Unknown"):
        email = {"Grantee": {"Type": kind, "ID": canonical_id(OWNER), "URI": ALL_USERS},
                 "Permission": "READ"}
        assert not grants_permission([email], OWNER, "READ")
        assert not grants_permission([email], None, "READ")


# ---- bucket policies --------------------------------------------------------------------------


def test_a_bucket_policy_names_only_its_bucket_and_its_objects() -> None:
    for resource in ("*", "arn:aws:s3:::logs", "arn:aws:s3:::logs/*", "arn:aws:s3:::logs/a/b",
                     ["arn:aws:s3:::logs", "arn:aws:s3:::logs/x"]):
        parse_bucket_policy(_policy({"Effect": "Allow", "Principal": "*",
                                     "Action": "s3:GetObject", "Resource": resource}), "logs")
    for resource in ("arn:aws:s3:::logs2", "arn:aws:s3:::logs2/*", "arn:aws:s3:::other/*",
                     "arn:aws:s3:::log", "arn:aws:s3:::log/s", "arn:aws:s3:::*",
                     ["arn:aws:s3:::logs", "arn:aws:s3:::other"]):
        with refused("MalformedPolicy"):
            parse_bucket_policy(_policy({"Effect": "Allow", "Principal": "*",
                                         "Action": "s3:GetObject", "Resource": resource}),
                                "logs")


def test_a_bucket_policy_is_at_most_20_kib_and_malformed_is_malformed_policy() -> None:
    statement = {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                 "Resource": "arn:aws:s3:::logs/*", "Sid": ""}
    base = len(_policy(statement))
    exactly = dict(statement, Sid="a" * (20 * 1024 - base))
    assert len(_policy(exactly)) == 20 * 1024
    parse_bucket_policy(_policy(exactly), "logs")
    with refused("MalformedPolicy"):
        parse_bucket_policy(_policy(dict(exactly, Sid="a" * (20 * 1024 - base + 1))), "logs")
    with refused("MalformedPolicy"):
        parse_bucket_policy("{not json", "logs")
    with refused("MalformedPolicy"):  # a bucket policy must name its principals
        parse_bucket_policy(_policy(ALLOW_GET), "logs")


# ---- resources and ownership ------------------------------------------------------------------


def test_a_resource_is_the_bucket_a_key_in_it_or_an_object_with_its_owner() -> None:
    acl = [_grant(canonical_id(OWNER), "FULL_CONTROL")]
    object_acl = [_grant(canonical_id(OTHER), "FULL_CONTROL")]
    text = _policy({"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                    "Resource": "arn:aws:s3:::b/*"})
    bucket = resource_of("b", OWNER, "ObjectWriter", acl, text)
    assert (bucket.arn, bucket.owner, bucket.bucket_owner, bucket.acl) == (
        "arn:aws:s3:::b", OWNER, OWNER, acl)
    assert bucket.bucket_policy is not None
    key = resource_of("b", OWNER, "BucketOwnerPreferred", acl, None, "k/1")
    assert (key.arn, key.owner, key.acl, key.bucket_policy) == ("arn:aws:s3:::b/k/1", OWNER,
                                                                acl, None)
    written = resource_of("b", OWNER, "ObjectWriter", acl, text, "k", OTHER, object_acl)
    assert (written.arn, written.owner, written.bucket_owner, written.acl) == (
        "arn:aws:s3:::b/k", OTHER, OWNER, object_acl)
    # BucketOwnerEnforced: ACLs are off, whatever they say; compared by value.
    enforced = _same("BucketOwnerEnforced")
    assert resource_of("b", OWNER, enforced, acl, None).acl is None
    assert resource_of("b", OWNER, enforced, acl, None, "k").acl is None
    assert resource_of("b", OWNER, enforced, acl, None, "k", OTHER, object_acl).acl is None
    with refused("MalformedPolicy"):
        resource_of("b", OWNER, "ObjectWriter", acl, _policy(
            {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
             "Resource": "arn:aws:s3:::c/*"}))


# ---- who may ----------------------------------------------------------------------------------


def _bucket(policy: str | None = None, acl: list[dict[str, Any]] | None = None,
            ownership: str = "ObjectWriter", key: str | None = "k",
            object_owner: str | None = None,
            object_acl: list[dict[str, Any]] | None = None) -> s3_access.Resource:
    return resource_of("b", OWNER, ownership, acl or canned("private", OWNER), policy, key,
                       object_owner, object_acl)


def _to(principal: str | list[str] | dict[str, Any], effect: str = "Allow",
        action: str = "s3:GetObject", **extra: Any) -> str:
    who = principal if isinstance(principal, dict | str) and principal == "*" else (
        {"AWS": principal} if not isinstance(principal, dict) else principal)
    return _policy({"Effect": effect, "Principal": who, "Action": action,
                    "Resource": "arn:aws:s3:::b/*", **extra})


def test_the_owners_root_may_and_another_account_may_not_without_a_grant() -> None:
    where = _bucket()
    assert allowed(ROOT, "s3:GetObject", where, "READ")
    assert not allowed(OTHER_ROOT, "s3:GetObject", where, "READ")
    assert not allowed(OTHER_ROOT, "s3:GetObject", where, None)
    assert not allowed(ANONYMOUS, "s3:GetObject", where, "READ")
    assert not allowed(None, "s3:GetObject", where, "READ")


def test_a_bucket_policy_allows_the_account_it_names_and_no_other() -> None:
    where = _bucket(_to(OTHER))
    assert allowed(OTHER_ROOT, "s3:GetObject", where, None)
    assert not allowed(THIRD_ROOT, "s3:GetObject", where, None)
    assert not allowed(OTHER_ROOT, "s3:PutObject", where, None)
    # A user of the named account needs its own identity's allow too (across accounts both).
    assert not allowed(_user(OTHER), "s3:GetObject", where, None)
    assert allowed(_user(OTHER, _identity(ALLOW_GET)), "s3:GetObject", where, None)


def test_an_explicit_deny_in_the_bucket_policy_refuses_whatever_else_allows() -> None:
    deny = _to("*", "Deny")
    acl = [_grant(canonical_id(OWNER), "FULL_CONTROL"), _group(ALL_USERS, "READ")]
    where = _bucket(deny, acl)
    assert not allowed(ROOT, "s3:GetObject", where, "READ")
    assert not allowed(OTHER_ROOT, "s3:GetObject", where, "READ")
    assert not allowed(ANONYMOUS, "s3:GetObject", where, "READ")
    assert not allowed(None, "s3:GetObject", where, "READ")
    # The deny names GetObject only.
    assert allowed(ANONYMOUS, "s3:ListBucket", where, "READ")
    assert allowed(OTHER_ROOT, "s3:ListBucket", where, "READ")


def test_an_identity_deny_refuses_the_callers_own_bucket() -> None:
    deny = _identity({"Effect": "Deny", "Action": "s3:*", "Resource": "*"}, ALLOW_GET)
    assert not allowed(_user(OWNER, deny), "s3:GetObject", _bucket(), "READ")
    assert allowed(_user(OWNER, _identity(ALLOW_GET)), "s3:GetObject", _bucket(), "READ")
    assert not allowed(_user(OWNER), "s3:GetObject", _bucket(), "READ")


def test_an_acl_grant_allows_another_account_only_as_far_as_its_identity_does() -> None:
    acl = [_grant(canonical_id(OWNER), "FULL_CONTROL"), _grant(canonical_id(OTHER), "READ")]
    where = _bucket(acl=acl)
    assert allowed(OTHER_ROOT, "s3:GetObject", where, "READ")
    assert not allowed(OTHER_ROOT, "s3:PutObject", where, "WRITE")
    assert not allowed(OTHER_ROOT, "s3:GetObject", where, None)
    assert not allowed(THIRD_ROOT, "s3:GetObject", where, "READ")
    assert not allowed(_user(OTHER), "s3:GetObject", where, "READ")
    assert allowed(_user(OTHER, _identity(ALLOW_GET)), "s3:GetObject", where, "READ")
    session = Principal(OTHER, "ASIAX", ASSUMED_ROLE, "dr", "AROAX", "/", "s1",
                        policies=(_identity(ALLOW_GET),),
                        session_policies=(parse_document(_policy(
                            {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "*"}),
                            Kind.SESSION, "session"),))
    assert not allowed(session, "s3:GetObject", where, "READ")
    # BucketOwnerEnforced: the same grant counts for nothing.
    assert not allowed(OTHER_ROOT, "s3:GetObject",
                       _bucket(acl=acl, ownership="BucketOwnerEnforced"), "READ")


def test_public_acls_reach_anonymous_callers_and_authenticated_ones_do_not() -> None:
    public = _bucket(acl=canned("public-read", OWNER))
    assert allowed(ANONYMOUS, "s3:GetObject", public, "READ")
    assert allowed(None, "s3:GetObject", public, "READ")
    assert not allowed(ANONYMOUS, "s3:PutObject", public, "WRITE")
    assert not allowed(ANONYMOUS, "s3:GetObject", public, None)
    assert not allowed(ANONYMOUS, "s3:GetObject",
                       _bucket(acl=canned("public-read", OWNER),
                               ownership="BucketOwnerEnforced"), "READ")
    signed_only = _bucket(acl=canned("authenticated-read", OWNER))
    assert not allowed(ANONYMOUS, "s3:GetObject", signed_only, "READ")
    assert allowed(THIRD_ROOT, "s3:GetObject", signed_only, "READ")
    # A bucket policy allowing everyone does not reach an anonymous caller here (only ACLs
    # and denies do), and an Allow to everyone is not a Deny.
    assert not allowed(ANONYMOUS, "s3:GetObject", _bucket(_to("*")), "READ")


def test_the_bucket_policy_speaks_only_for_objects_the_bucket_owner_owns() -> None:
    object_acl = [_grant(canonical_id(OTHER), "FULL_CONTROL"), _group(ALL_USERS, "READ")]
    written = _bucket(_to("*", "Deny"), key="k", object_owner=OTHER, object_acl=object_acl)
    # The deny to everyone does not govern another account's object: its ACL does.
    assert allowed(ANONYMOUS, "s3:GetObject", written, "READ")
    assert allowed(OTHER_ROOT, "s3:GetObject", written, "READ")
    # Nor does an allow: the bucket policy naming a third account gives it nothing here.
    granted = _bucket(_to(THIRD), key="k", object_owner=OTHER,
                      object_acl=[_grant(canonical_id(OTHER), "FULL_CONTROL")])
    assert not allowed(THIRD_ROOT, "s3:GetObject", granted, None)
    # The bucket owner's root does not own the object: its ACL leaves it out.
    assert not allowed(ROOT, "s3:GetObject", granted, "READ")
    # The same policies on the bucket owner's own object do speak.
    own = _bucket(_to(THIRD), key="k", object_owner=_same(OWNER))
    assert allowed(THIRD_ROOT, "s3:GetObject", own, None)
    denied = _bucket(_to("*", "Deny"), acl=canned("public-read", OWNER), key="k",
                     object_owner=_same(OWNER), object_acl=canned("public-read", OWNER))
    assert not allowed(ANONYMOUS, "s3:GetObject", denied, "READ")


def test_a_bucket_policys_conditions_see_the_request_and_the_caller() -> None:
    only_there = _to(OTHER, Condition={"StringEquals": {"aws:RequestedRegion": "eu-west-1"}})
    where = _bucket(only_there)
    assert allowed(OTHER_ROOT, "s3:GetObject", where, None,
                   {"aws:RequestedRegion": "eu-west-1"})
    assert not allowed(OTHER_ROOT, "s3:GetObject", where, None,
                       {"aws:RequestedRegion": "us-east-1"})
    assert not allowed(OTHER_ROOT, "s3:GetObject", where, None)
    by_account = _to("*", Condition={"StringEquals": {"aws:PrincipalAccount": OTHER}})
    assert allowed(OTHER_ROOT, "s3:GetObject", _bucket(by_account), None)
    assert not allowed(THIRD_ROOT, "s3:GetObject", _bucket(by_account), None)


def test_may_reads_a_stored_bucket_and_object_and_the_buckets_region() -> None:
    text = _to(OTHER, Condition={"StringEquals": {"aws:RequestedRegion": "eu-west-1"}})
    bucket = SimpleNamespace(name="b", account_id=OWNER, ownership="ObjectWriter",
                             acl=canned("private", OWNER), policy=text, region="eu-west-1")
    assert s3_access.may(OTHER_ROOT, "s3:GetObject", bucket, "k")
    assert not s3_access.may(OTHER_ROOT, "s3:GetObject", bucket, "k", region="us-east-1")
    assert s3_access.may(OTHER_ROOT, "s3:GetObject", bucket, "k", region="eu-west-1")
    assert not s3_access.may(THIRD_ROOT, "s3:GetObject", bucket, "k")
    # An object another account wrote: its owner and ACL, not the bucket's policy.
    obj = SimpleNamespace(owner=THIRD, acl=[_grant(canonical_id(THIRD), "FULL_CONTROL"),
                                            _grant(canonical_id(OWNER), "READ")])
    assert not s3_access.may(OTHER_ROOT, "s3:GetObject", bucket, "k", obj)
    assert s3_access.may(ROOT, "s3:GetObject", bucket, "k", obj, acl_permission="READ")
    assert not s3_access.may(ROOT, "s3:GetObject", bucket, "k", obj)
    assert s3_access.may(THIRD_ROOT, "s3:GetObject", bucket, "k", obj)


def test_a_bucket_policy_is_silent_on_an_object_of_an_account_sorting_before_the_buckets() -> None:
    # The object's writer (111...) sorts before the bucket's owner (333...): still not the
    # bucket owner's object, so the bucket policy's deny does not govern it; its ACL does.
    object_acl = [_grant(canonical_id(OWNER), "FULL_CONTROL"), _group(ALL_USERS, "READ")]
    deny = _policy({"Effect": "Deny", "Principal": "*", "Action": "s3:GetObject",
                    "Resource": "arn:aws:s3:::b/*"})
    written = resource_of("b", THIRD, "ObjectWriter", canned("private", THIRD), deny, "k",
                          OWNER, object_acl)
    assert allowed(ROOT, "s3:GetObject", written, "READ")
    assert allowed(ANONYMOUS, "s3:GetObject", written, "READ")
