"""IAM's rules (domain/iam.py) one by one, without a server: names, paths and path prefixes
at their limits, ids, ARNs and their parsing, trust policies, MaxSessionDuration, errors,
and the quotas (access keys, policy versions, attached policies) through the IAM service's
own handlers over a real SQLite data dir, since only they apply them."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest

from snapferry.domain import iam
from snapferry.domain.accounts import AccessKey, Principal
from snapferry.domain.iam import GROUP, ROLE, USER
from snapferry.domain.policy_documents import MANAGED_POLICY_MAX
from snapferry.errors import ServiceError
from snapferry.services import iam as iam_service
from snapferry.services.context import RequestContext
from snapferry.storage.datadir import Storage

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def _same(text: str) -> str:
    return "".join(list(text))


def refused(code: str) -> pytest.RaisesContext[ServiceError]:
    return pytest.raises(ServiceError, match=code)


def test_errors_carry_iams_codes_and_statuses() -> None:
    for make, code, status in ((iam.no_such_entity, "NoSuchEntity", 404),
                               (iam.already_exists, "EntityAlreadyExists", 409),
                               (iam.delete_conflict, "DeleteConflict", 409),
                               (iam.limit_exceeded, "LimitExceeded", 409),
                               (iam.invalid_input, "InvalidInput", 400),
                               (iam.validation, "ValidationError", 400)):
        error = make("why")
        assert (error.code, error.message, error.status) == (code, "why", status)


@pytest.mark.parametrize(("kind", "limit"), [(USER, 64), (ROLE, 64), (GROUP, 128)])
def test_a_name_is_1_to_its_limit_of_iams_characters(kind: str, limit: int) -> None:
    for name in ("a", "a" * limit, "A1_+=,.@-", "ünïcode"):
        assert iam.check_name(_same(kind), name) == name
    for name in ("", "a" * (limit + 1), "a b", "a/b", "a:b", "a*", "a\n"):
        with refused("ValidationError"):
            iam.check_name(_same(kind), name)


def test_a_policy_name_is_1_to_128_characters() -> None:
    for name in ("p", "p" * 128, "A1_+=,.@-"):
        assert iam.check_policy_name(name) == name
    for name in ("", "p" * 129, "p q", "p/q", "p\n"):
        with refused("ValidationError"):
            iam.check_policy_name(name)


def test_a_path_begins_and_ends_with_a_slash_and_has_at_most_512_characters() -> None:
    assert iam.check_path(None) == "/"
    assert iam.check_path("") == "/"
    for path in ("/", "/a/", "/a/b/", "/!~/", "/" + "a" * 510 + "/"):
        assert iam.check_path(path) == path
    for path in ("a/", "/a", "//a", "/a b/", "/a\x7f/", "/" + "a" * 511 + "/", "/\n/"):
        with refused("ValidationError"):
            iam.check_path(path)


def test_a_path_prefix_begins_with_a_slash_and_has_at_most_512_characters() -> None:
    assert iam.check_path_prefix(None) == "/"
    assert iam.check_path_prefix("") == "/"
    for prefix in ("/", "/div", "/div/", "/" + "a" * 511):
        assert iam.check_path_prefix(prefix) == prefix
    for prefix in ("div", "/a b", "/" + "a" * 512, "/\n"):
        with refused("ValidationError"):
            iam.check_path_prefix(prefix)


def test_ids_have_their_kinds_prefix_and_16_more_and_differ() -> None:
    for kind, prefix in ((USER, "AIDA"), (GROUP, "AGPA"), (ROLE, "AROA"), ("policy", "ANPA"),
                         ("key", "AKIA"), ("session-key", "ASIA")):
        made = {iam.new_id(kind) for _ in range(20)}
        assert len(made) == 20
        for ident in made:
            assert re.fullmatch(prefix + "[A-Z0-9]{16}", ident), ident
    secrets = {iam.new_secret() for _ in range(20)}
    assert len(secrets) == 20
    for secret in secrets:
        assert len(secret) == 40 and re.fullmatch(r"[\w-]{40}", secret)


def test_arns_of_entities_and_policies() -> None:
    assert iam.arn("111111111111", "user", "/ops/", "ann") == (
        "arn:aws:iam::111111111111:user/ops/ann")
    assert iam.policy_arn("111111111111", "/", "p") == "arn:aws:iam::111111111111:policy/p"
    user = iam.User("111111111111", "ann", "AIDAX", "/a/", NOW)
    group = iam.Group("111111111111", "ops", "AGPAX", "/", NOW)
    role = iam.Role("111111111111", "dr", "AROAX", "/svc/", NOW, "{}")
    assert user.arn == "arn:aws:iam::111111111111:user/a/ann"
    assert group.arn == "arn:aws:iam::111111111111:group/ops"
    assert role.arn == "arn:aws:iam::111111111111:role/svc/dr"
    assert (role.max_session, role.description, role.tags, user.tags) == (3600, None, {}, {})


def test_a_policy_is_aws_managed_only_under_awss_prefix() -> None:
    def managed(arn: str) -> iam.ManagedPolicy:
        return iam.ManagedPolicy(arn, "p", "ANPAX", "/", "v1", NOW, NOW)

    assert managed("arn:aws:iam::aws:policy/ReadOnlyAccess").aws_managed
    assert managed("arn:aws:iam::aws:policy/service-role/X").aws_managed
    assert not managed("arn:aws:iam::111111111111:policy/ReadOnlyAccess").aws_managed
    assert not managed("arn:aws:iam::aws:role/X").aws_managed
    assert managed("arn:aws:iam::aws:policy/X").attachments == 0


def test_a_policy_arn_is_parsed_into_its_account_and_name() -> None:
    assert iam.parse_policy_arn("arn:aws:iam::111111111111:policy/p") == ("111111111111", "p")
    assert iam.parse_policy_arn("arn:aws:iam::aws:policy/a/b/ReadOnly") == ("aws", "ReadOnly")
    for text in ("arn:aws:iam::11111111111:policy/p", "arn:aws:iam::111111111111:role/p",
                 "arn:aws:iam::111111111111:policy/", "arn:aws:iam::x:policy/p",
                 "arn:aws:iam::111111111111:policy/p q", "x"):
        with refused("InvalidInput"):
            iam.parse_policy_arn(text)


def test_a_role_arn_is_parsed_into_its_account_and_name() -> None:
    assert iam.parse_role_arn("arn:aws:iam::111111111111:role/dr") == ("111111111111", "dr")
    assert iam.parse_role_arn("arn:aws:iam::111111111111:role/a/b/dr") == ("111111111111",
                                                                           "dr")
    for text in ("arn:aws:iam::aws:role/dr", "arn:aws:iam::111111111111:user/dr",
                 "arn:aws:iam::111111111111:role/", "arn:aws:iam::111111111111:role/d r"):
        with refused("ValidationError"):
            iam.parse_role_arn(text)


def _doc(*statements: dict[str, object]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)},
                      separators=(",", ":"))


def test_a_trust_policy_names_sts_actions_only_and_fits_2048_characters() -> None:
    assume = {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::222222222222:root"},
              "Action": ["sts:AssumeRole", "STS:TagSession"]}
    document = iam.trust_document(_doc(assume))
    assert document.statements
    for action in ("s3:GetObject", ["sts:AssumeRole", "ec2:*"], "*"):
        with refused("MalformedPolicyDocument"):
            iam.trust_document(_doc(dict(assume, Action=action)))
    padded = dict(assume, Sid="")
    room = 2048 - len(_doc(padded))
    iam.trust_document(_doc(dict(padded, Sid="a" * room)))
    with refused("MalformedPolicyDocument"):
        iam.trust_document(_doc(dict(padded, Sid="a" * (room + 1))))
    with refused("MalformedPolicyDocument"):  # a trust policy names who may assume
        iam.trust_document(_doc({"Effect": "Allow", "Action": "sts:AssumeRole"}))


def test_an_identity_document_is_held_to_its_size() -> None:
    statement = {"Effect": "Allow", "Action": "ec2:*", "Resource": "*", "Sid": ""}
    room = MANAGED_POLICY_MAX - len(_doc(statement))
    iam.identity_document(_doc(dict(statement, Sid="a" * room)), "p")
    with refused("MalformedPolicyDocument"):
        iam.identity_document(_doc(dict(statement, Sid="a" * (room + 1))), "p")
    with refused("MalformedPolicyDocument"):
        iam.identity_document(_doc(dict(statement, Sid="a" * 100)), "p", max_chars=50)


def test_max_session_duration_is_an_hour_to_12_hours_an_hour_by_default() -> None:
    assert iam.check_max_session(None) == 3600
    for seconds in (3600, 43200, 7200):
        assert iam.check_max_session(seconds) == seconds
    for seconds in (3599, 43201, 0, -1):
        with refused("ValidationError"):
            iam.check_max_session(seconds)



# ---- quotas, applied by the IAM service ------------------------------------------------------

ROOT_KEY = AccessKey("111111111111", "AKIAIOSFODNN7EXAMPLE",
                     "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
ROOT = Principal(ROOT_KEY.account_id, ROOT_KEY.access_key_id)
ALLOW_ALL = _doc({"Effect": "Allow", "Action": "ec2:*", "Resource": "*"})


class FixedClock:
    def now(self) -> dt.datetime:
        return NOW


@pytest.fixture
def account(storage: Storage) -> Storage:
    """A fresh data dir holding the root's account (IAM's rows refer to it)."""
    storage.accounts.add(ROOT_KEY)
    return storage


def call(storage: Storage, operation: str, **params: object) -> dict[str, object]:
    """One IAM operation as the account's root, through the service's own handler."""
    ctx = RequestContext(ROOT, "us-east-1", "r-1", iam_service.SERVICE, operation, storage,
                         FixedClock())
    return iam_service.SERVICE.handlers[operation](ctx, dict(params))


def test_a_user_has_at_most_2_access_keys(account: Storage) -> None:
    call(account, "CreateUser", UserName="alice")
    for _ in range(2):
        call(account, "CreateAccessKey", UserName="alice")
    with pytest.raises(ServiceError) as caught:
        call(account, "CreateAccessKey", UserName="alice")
    assert (caught.value.code, caught.value.status) == ("LimitExceeded", 409)
    assert caught.value.message == "Cannot exceed quota for AccessKeysPerUser: 2."
    keys = call(account, "ListAccessKeys", UserName="alice")["AccessKeyMetadata"]
    assert len(keys) == 2  # type: ignore[arg-type]
    # Another user's keys are counted apart.
    call(account, "CreateUser", UserName="bob")
    call(account, "CreateAccessKey", UserName="bob")


def test_a_managed_policy_has_at_most_5_versions(account: Storage) -> None:
    arn = call(account, "CreatePolicy", PolicyName="p",
               PolicyDocument=ALLOW_ALL)["Policy"]["Arn"]  # type: ignore[index]
    for _ in range(4):  # v1 is the policy's first version
        call(account, "CreatePolicyVersion", PolicyArn=arn, PolicyDocument=ALLOW_ALL)
    with pytest.raises(ServiceError) as caught:
        call(account, "CreatePolicyVersion", PolicyArn=arn, PolicyDocument=ALLOW_ALL)
    assert (caught.value.code, caught.value.status) == ("LimitExceeded", 409)
    assert caught.value.message.startswith("A managed policy can have up to 5 versions.")
    versions = call(account, "ListPolicyVersions", PolicyArn=arn)["Versions"]
    assert [v["VersionId"] for v in versions] == ["v5", "v4", "v3", "v2", "v1"]  # type: ignore[attr-defined]
    call(account, "DeletePolicyVersion", PolicyArn=arn, VersionId="v3")
    call(account, "CreatePolicyVersion", PolicyArn=arn, PolicyDocument=ALLOW_ALL)


TRUST = _doc({"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111111111111:root"},
              "Action": "sts:AssumeRole"})


@pytest.mark.parametrize(("kind", "create"), [
    (USER, {"UserName": "e"}), (GROUP, {"GroupName": "e"}),
    (ROLE, {"RoleName": "e", "AssumeRolePolicyDocument": TRUST})])
def test_a_user_group_or_role_has_at_most_10_attached_policies(
        account: Storage, kind: str, create: dict[str, str]) -> None:
    label = kind.capitalize()
    call(account, f"Create{label}", **create)
    name = {f"{label}Name": "e"}
    arns = [call(account, "CreatePolicy", PolicyName=f"p{i}",
                 PolicyDocument=ALLOW_ALL)["Policy"]["Arn"] for i in range(11)]  # type: ignore[index]
    for arn in arns[:10]:
        call(account, f"Attach{label}Policy", PolicyArn=arn, **name)
    with pytest.raises(ServiceError) as caught:
        call(account, f"Attach{label}Policy", PolicyArn=arns[10], **name)
    assert (caught.value.code, caught.value.status) == ("LimitExceeded", 409)
    assert caught.value.message == f"Cannot exceed quota for PoliciesPer{label}: 10."
    attached = call(account, f"ListAttached{label}Policies", **name)["AttachedPolicies"]
    assert sorted(p["PolicyArn"] for p in attached) == sorted(arns[:10])  # type: ignore[attr-defined]
    # Attaching one already attached is no new attachment, even at the quota.
    call(account, f"Attach{label}Policy", PolicyArn=arns[0], **name)
