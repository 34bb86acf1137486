"""Policy documents are checked as IAM checks them: each refusal is MalformedPolicyDocument
(KMS: MalformedPolicyDocumentException) with a message naming the problem."""

from __future__ import annotations

import json
from typing import Any

import pytest

from snapferry.domain import iam, sessions
from snapferry.domain.policy import parse_policy
from snapferry.domain.policy_documents import (
    MANAGED_POLICY_MAX,
    Kind,
    parse_document,
)
from snapferry.errors import ServiceError

OK = {"Effect": "Allow", "Action": "ec2:CopySnapshot", "Resource": "*"}


def doc(*statements: Any, **top: Any) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements), **top})


MALFORMED = [
    ("{", Kind.IDENTITY, "not valid JSON"),
    ("[]", Kind.IDENTITY, "a policy is a JSON object"),
    (json.dumps({"Version": "2012-10-18", "Statement": [OK]}), Kind.IDENTITY,
     "Version '2012-10-18'"),
    (json.dumps({"Version": "2012-10-17"}), Kind.IDENTITY, "Missing required field Statement"),
    (doc(), Kind.IDENTITY, "the list is empty"),
    (json.dumps({"Version": "2012-10-17", "Statement": [OK], "Statements": []}),
     Kind.IDENTITY, "unknown field 'Statements'"),
    (doc("Allow"), Kind.IDENTITY, "statement 1 is not a JSON object"),
    (doc({"Action": "ec2:*", "Resource": "*"}), Kind.IDENTITY, "Missing required field Effect"),
    (doc({**OK, "Effect": "allow"}), Kind.IDENTITY, "Invalid effect: 'allow'"),
    (doc({"Effect": "Allow", "Resource": "*"}), Kind.IDENTITY,
     "Missing required field Action"),
    (doc({**OK, "NotAction": "iam:*"}), Kind.IDENTITY, "both Action and NotAction"),
    (doc({**OK, "Action": "CopySnapshot"}), Kind.IDENTITY, "prefaced by a vendor"),
    # Text that sorts before "*" is checked like any other (a `!=` is no ordering).
    (doc({**OK, "Action": "$ec2:CopySnapshot"}), Kind.IDENTITY, "prefaced by a vendor"),
    (doc({**OK, "Action": []}), Kind.IDENTITY, "non-empty string or list"),
    (doc({**OK, "Action": ["ec2:CopySnapshot", 7]}), Kind.IDENTITY, "non-empty string or list"),
    (doc({"Effect": "Allow", "Action": "ec2:*"}), Kind.IDENTITY,
     "Missing required field Resource"),
    (doc({**OK, "Resource": "snap-1234"}), Kind.IDENTITY, "must be in ARN format"),
    (doc({**OK, "Resource": "(snap-1234)"}), Kind.IDENTITY, "must be in ARN format"),
    (doc({**OK, "NotResource": "*"}), Kind.IDENTITY, "both Resource and NotResource"),
    (doc({**OK, "Resource": "arn:aws:s3:bucket"}), Kind.IDENTITY, "must be in ARN format"),
    (doc({**OK, "Resource": "xyz:aws:s3:::bucket"}), Kind.IDENTITY, "must be in ARN format"),
    (doc({**OK, "Principal": "*"}), Kind.IDENTITY, "should not specify a principal"),
    (doc({**OK, "NotPrincipal": {"AWS": "111111111111"}}), Kind.SESSION,
     "should not specify a principal"),
    (doc(OK), Kind.RESOURCE, "Missing required field Principal"),
    (doc({**OK, "Principal": "*", "NotPrincipal": "*"}), Kind.RESOURCE,
     "exactly one of Principal and NotPrincipal"),
    (doc({**OK, "Principal": {"Users": "x"}}), Kind.RESOURCE, "unknown kind 'Users'"),
    (doc({**OK, "Principal": "everyone"}), Kind.RESOURCE, "Invalid principal"),
    (doc({**OK, "Principal": {"AWS": "arn:aws:iam::*:root"}}), Kind.RESOURCE,
     "without wildcards"),
    (doc({**OK, "Principal": {"AWS": "alice"}}), Kind.RESOURCE, "Invalid principal"),
    (doc({**OK, "Condition": {"StringEqualz": {"aws:RequestedRegion": "x"}}}),
     Kind.IDENTITY, "Invalid Condition type : StringEqualz"),
    # Unknown names sorting before and after "Null", the one base outside OPERATORS.
    (doc({**OK, "Condition": {"IpAddres": {"aws:SourceIp": "10.0.0.0/8"}}}),
     Kind.IDENTITY, "Invalid Condition type : IpAddres"),
    (doc({**OK, "Condition": {"Nul": {"aws:TagKeys": "true"}}}),
     Kind.IDENTITY, "Invalid Condition type : Nul"),
    (doc({**OK, "Condition": {"ForSomeValues:StringEquals": {"aws:TagKeys": "x"}}}),
     Kind.IDENTITY, "Invalid Condition type : ForSomeValues:StringEquals"),
    (doc({**OK, "Condition": {"NullIfExists": {"aws:TagKeys": "true"}}}),
     Kind.IDENTITY, "Invalid Condition type : NullIfExists"),
    (doc({**OK, "Condition": {"StringEquals": {"aws:TagKeys": {"a": "b"}}}}),
     Kind.IDENTITY, "must be strings, numbers or booleans"),
    (doc({**OK, "Condition": {"StringEquals": {}}}), Kind.IDENTITY,
     "needs an object of condition keys"),
    (doc({**OK, "Condition": ["x"]}), Kind.IDENTITY, "Condition of statement 1 is not an"),
    (doc({**OK, "Sid": "One"}, {**OK, "Sid": "One"}), Kind.IDENTITY, "must be unique"),
    (doc({**OK, "Sid": "has spaces"}), Kind.IDENTITY, "must be alpha-numeric"),
    (doc({**OK, "Sid": 7}), Kind.IDENTITY, "Sid of statement 1 must be a string"),
    (doc({**OK, "Effects": "Allow"}), Kind.IDENTITY, "unknown field 'Effects' in statement 1"),
]


@pytest.mark.parametrize(("text", "kind", "problem"), MALFORMED,
                         ids=[m[2] for m in MALFORMED])
def test_malformed_documents_name_the_problem(text: str, kind: Kind, problem: str) -> None:
    with pytest.raises(ServiceError) as refused:
        parse_document(text, kind)
    assert refused.value.code == "MalformedPolicyDocument"
    assert refused.value.status == 400
    assert problem in refused.value.message


def test_the_size_limit_does_not_count_white_space() -> None:
    statement = {**OK, "Action": [f"ec2:Describe{'X' * 40}{i}" for i in range(150)]}
    text = doc(statement)
    assert len("".join(text.split())) > MANAGED_POLICY_MAX
    with pytest.raises(ServiceError, match="over the size limit: 6144"):
        parse_document(text, max_chars=MANAGED_POLICY_MAX)
    padded = json.dumps({"Version": "2012-10-17", "Statement": [OK]}, indent=400)
    assert len(padded) > MANAGED_POLICY_MAX
    assert parse_document(padded, max_chars=MANAGED_POLICY_MAX).statements[0].effect == "Allow"


def test_accepted_shapes() -> None:
    single = parse_document(json.dumps({"Statement": OK}))  # one statement, no Version
    assert single.version is None and len(single.statements) == 1
    assert single.statements[0].variables is False  # variables need 2012-10-17
    spaced = parse_document(doc({**OK, "Sid": "Key admins may", "Principal": {
        "AWS": ["111111111111", "arn:aws:iam::111111111111:role/Admin"],
        "Service": "ec2.amazonaws.com"}}), Kind.RESOURCE)
    assert spaced.statements[0].sid == "Key admins may"  # KMS allows spaces in Sids
    assert spaced.statements[0].principals is not None
    assert spaced.statements[0].principals.service == ("ec2.amazonaws.com",)
    conditioned = parse_document(doc({**OK, "Condition": {
        "Bool": {"ec2:Encrypted": True}, "NumericLessThan": {"ec2:VolumeSize": 100}}}))
    assert conditioned.statements[0].condition == {
        "Bool": {"ec2:Encrypted": ("true",)}, "NumericLessThan": {"ec2:VolumeSize": ("100",)}}


def test_a_key_policy_is_refused_with_kms_code() -> None:
    with pytest.raises(ServiceError) as refused:
        parse_policy(doc({**OK, "Principal": {"AWS": "*"}, "Condition": {"Bogus": {}}}))
    assert refused.value.code == "MalformedPolicyDocumentException"
    with pytest.raises(ServiceError) as refused:
        parse_policy(doc(OK))
    assert refused.value.code == "MalformedPolicyDocumentException"
    assert "Principal" in refused.value.message


def test_a_null_condition_read_from_json_text() -> None:
    # json.loads makes a new "Null" string: compared by identity it would not be the literal.
    text = doc({**OK, "Condition": {"Null": {"aws:RequestTag/team": "true"}}})
    parsed = parse_document(text)
    assert parsed.statements[0].condition == {"Null": {"aws:RequestTag/team": ("true",)}}


def _sized(chars: int) -> str:
    """An identity policy of exactly `chars` characters, white space not counted."""
    base = len("".join(doc({**OK, "Sid": ""}).split()))
    text = doc({**OK, "Sid": "S" * (chars - base)})
    assert len("".join(text.split())) == chars
    return text


@pytest.mark.parametrize(("where", "limit"), [
    ("user inline", 2048), ("group inline", 5120), ("role inline", 10240),
    ("managed", 6144), ("session", 2048)])
def test_each_kind_of_policy_is_held_to_its_own_size_limit(where: str, limit: int) -> None:
    """IAM's quotas: inline policies 2,048 (user), 5,120 (group), 10,240 (role) characters,
    a managed policy 6,144, a session policy 2,048; white space not counted. Exactly the
    limit is accepted, one character more refused."""
    check = {
        "user inline": lambda t: iam.identity_document(t, "p", iam.INLINE_MAX[iam.USER]),
        "group inline": lambda t: iam.identity_document(t, "p", iam.INLINE_MAX[iam.GROUP]),
        "role inline": lambda t: iam.identity_document(t, "p", iam.INLINE_MAX[iam.ROLE]),
        "managed": lambda t: iam.identity_document(t, "p"),
        "session": lambda t: sessions.session_policy_texts(t, [], []),
    }[where]
    check(_sized(limit))
    with pytest.raises(ServiceError, match=f"over the size limit: {limit} characters"):
        check(_sized(limit + 1))
