"""STS session rules (domain/sessions.py) and the principals credentials act as
(domain/accounts.py, domain/policy.py): ARNs, durations, session policies and tags."""

from __future__ import annotations

import json

import pytest

from snapferry.domain import policy, sessions
from snapferry.domain.accounts import ASSUMED_ROLE, USER, Principal
from snapferry.domain.policy_documents import Kind, parse_document
from snapferry.errors import ServiceError

ALLOW_ALL = parse_document(json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": "*", "Resource": "*"}]}), Kind.IDENTITY, "all")
ONLY_REGIONS = parse_document(json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": "ec2:DescribeRegions", "Resource": "*"}]}), Kind.SESSION,
    "session")


def refused(code: str) -> pytest.RaisesContext[ServiceError]:
    return pytest.raises(ServiceError, match=code)


def test_durations_of_assumed_roles() -> None:
    assert sessions.check_duration(None, 3600, chained=False) == 3600
    assert sessions.check_duration(900, 3600, chained=False) == 900
    assert sessions.check_duration(7200, 7200, chained=False) == 7200
    for seconds, maximum, chained in ((899, 3600, False), (3601, 3600, False),
                                      (3601, 7200, True)):
        with refused("ValidationError"):
            sessions.check_duration(seconds, maximum, chained)
    assert sessions.check_duration(3600, 7200, chained=True) == 3600


def test_durations_of_session_tokens() -> None:
    assert sessions.check_token_duration(None, root=False) == 43200
    assert sessions.check_token_duration(None, root=True) == 3600
    assert sessions.check_token_duration(129600, root=False) == 129600
    for seconds, root in ((899, False), (129601, False), (3601, True)):
        with refused("ValidationError"):
            sessions.check_token_duration(seconds, root)


def test_session_names_and_tags() -> None:
    assert sessions.check_session_name("dr-copy@2026") == "dr-copy@2026"
    for name in ("x", "a" * 65, "has space"):
        with refused("ValidationError"):
            sessions.check_session_name(name)
    assert sessions.session_tags([{"Key": "team", "Value": "dr"}]) == {"team": "dr"}
    with refused("ValidationError"):
        sessions.session_tags([{"Key": "aws:x", "Value": "v"}])
    with refused("ValidationError"):
        sessions.session_tags([{"Key": "Team", "Value": "a"}, {"Key": "team", "Value": "b"}])


def test_session_policies_none_given_caps_nothing() -> None:
    assert sessions.session_policy_texts(None, [], []) is None
    text = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "ec2:*", "Resource": "*"}]})
    assert sessions.session_policy_texts(text, ["{managed}"], ["arn:m"]) == [text, "{managed}"]
    with refused("InvalidParameterValue"):
        sessions.session_policy_texts(None, [None], ["arn:aws:iam::aws:policy/Nope"])
    with refused("MalformedPolicyDocument"):
        sessions.session_policy_texts('{"Statement": []}', [], [])


def test_principals_are_named_as_aws_names_them() -> None:
    root = Principal("111111111111", "AKIAROOT")
    assert (root.arn, root.user_id, root.is_root, root.role_arn) == (
        "arn:aws:iam::111111111111:root", "111111111111", True, None)
    user = Principal("111111111111", "AKIAUSER", USER, "ann", "AIDAX", "/ops/")
    assert (user.arn, user.user_id, user.username, user.is_root) == (
        "arn:aws:iam::111111111111:user/ops/ann", "AIDAX", "ann", False)
    session = Principal("222222222222", "ASIAX", ASSUMED_ROLE, "dr", "AROAX", "/svc/", "s1")
    assert session.arn == "arn:aws:sts::222222222222:assumed-role/dr/s1"
    assert session.role_arn == "arn:aws:iam::222222222222:role/svc/dr"
    assert (session.user_id, session.username) == ("AROAX:s1", None)


def test_a_principals_own_policies_decide_and_its_session_policies_cap_them() -> None:
    bare = Principal("111111111111", "K", USER, "ann", "AIDAX")
    assert not policy.authorize(bare, "ec2:DescribeRegions")
    user = Principal("111111111111", "K", USER, "ann", "AIDAX", policies=(ALLOW_ALL,))
    assert policy.authorize(user, "ec2:DeleteSnapshot")
    capped = Principal("111111111111", "K", ASSUMED_ROLE, "r", "AROAX", "/", "s",
                       policies=(ALLOW_ALL,), session_policies=(ONLY_REGIONS,))
    assert policy.authorize(capped, "ec2:DescribeRegions")
    assert not policy.authorize(capped, "ec2:DeleteSnapshot")
    assert policy.decide(capped, "ec2:DeleteSnapshot").missing is policy.Source.SESSION


def test_principal_tags_and_names_are_condition_keys() -> None:
    tagged = parse_document(json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Action": "ec2:*", "Resource": "*", "Condition": {
            "StringEquals": {"aws:PrincipalTag/team": "blue", "aws:username": "ann"}}}]}),
        Kind.IDENTITY, "tagged")
    blue = Principal("1", "K", USER, "ann", "AIDAX", policies=(tagged,),
                     tags=(("team", "blue"),))
    red = Principal("1", "K", USER, "ann", "AIDAX", policies=(tagged,),
                    tags=(("team", "red"),))
    other = Principal("1", "K", USER, "bob", "AIDAY", policies=(tagged,),
                      tags=(("team", "blue"),))
    assert policy.authorize(blue, "ec2:CopySnapshot")
    assert not policy.authorize(red, "ec2:CopySnapshot")
    assert not policy.authorize(other, "ec2:CopySnapshot")


def test_kms_via_service_is_set_only_when_named() -> None:
    key = policy.key_policy("1", json.dumps({"Statement": [{
        "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::1:root"}, "Action": "kms:*",
        "Resource": "*", "Condition": {"StringEquals": {
            "kms:ViaService": "ec2.us-east-1.amazonaws.com"}}}]}))
    root = Principal("1", "K")
    assert policy.policy_allows(key, root, "kms:Decrypt",
                                via_service="ec2.us-east-1.amazonaws.com")
    assert not policy.policy_allows(key, root, "kms:Decrypt")


def test_a_chained_session_lasts_at_most_an_hour_and_any_duration_up_to_it() -> None:
    for seconds in (900, 1800, 3600):
        assert sessions.check_duration(seconds, 43200, chained=True) == seconds
    with refused("1 hour session limit"):
        sessions.check_duration(3601, 43200, chained=True)
    with refused("MaxSessionDuration"):
        sessions.check_duration(3601, 3600, chained=False)


def test_session_token_durations_at_their_bounds_name_who_asked() -> None:
    for root in (False, True):
        assert sessions.check_token_duration(900, root) == 900
    assert sessions.check_token_duration(3600, root=True) == 3600
    with pytest.raises(ServiceError) as root_error:
        sessions.check_token_duration(3601, root=True)
    assert "an account root" in root_error.value.message
    assert "900 to 3600" in root_error.value.message
    with pytest.raises(ServiceError) as user_error:
        sessions.check_token_duration(899, root=False)
    assert "an IAM user" in user_error.value.message
    assert (user_error.value.code, user_error.value.status) == ("ValidationError", 400)


def test_a_session_has_at_most_50_tags() -> None:
    fifty = [{"Key": f"k{i}", "Value": "v"} for i in range(50)]
    assert len(sessions.session_tags(fifty)) == 50
    with refused("at most 50 session tags"):
        sessions.session_tags([*fifty, {"Key": "k50", "Value": "v"}])
    with refused("at most 50"):
        sessions.session_tags([*fifty, *({"Key": f"x{i}", "Value": "v"} for i in range(9))])
    assert sessions.session_tags(None) == {}
    with refused("reserved"):
        sessions.session_tags([{"Key": "AWS:x", "Value": "v"}])


def test_the_packed_size_counts_policies_without_white_space_and_the_tags_as_json() -> None:
    # 3,070 characters of policy and `{}`: half of the 6,144 allowed.
    assert sessions.packed_size(["x" * 3000 + " \n" + "x" * 70], {}) == 50
    tags = {"k": "v" * 3060}  # json.dumps: {"k": "vvv..."} is 3,069 characters
    assert sessions.packed_size(["x" * 3], tags) == 50
    assert sessions.packed_size(None, {}) == 0
    assert sessions.packed_size(["x" * 61], {}) == 1  # 63 * 100 // 6144
    assert sessions.packed_size(["x" * 6142], {}) == 100  # exactly the limit
    with refused("PackedPolicyTooLarge"):
        sessions.packed_size(["x" * 6143], {})
    with refused("PackedPolicyTooLarge"):
        sessions.packed_size(["x" * 3000, "y" * 3000], {"k": "v" * 200})
    assert sessions.packed_size(["x" * 3000, "y" * 3000], {"k": "v" * 100}) == 99
