"""The decoded authorization failure message (what STS DecodeAuthorizationMessage returns for
an EC2 UnauthorizedOperation): built from the evaluator's Decision, the caller and the
request's condition keys, without a server."""

from __future__ import annotations

import datetime as dt

from snapferry.domain.accounts import ASSUMED_ROLE, ROOT, USER, Principal
from snapferry.domain.authorization_messages import describe
from snapferry.domain.policy import Decision, Effect, MatchedStatement, Source

ACCOUNT = "111122223333"
ACTION = "ec2:CopySnapshot"
RESOURCE = "arn:aws:ec2:us-east-1::snapshot/snap-0123456789abcdef0"

USER_PRINCIPAL = Principal(account_id=ACCOUNT, access_key_id="AKIAUSER", kind=USER,
                           name="alice", unique_id="AIDAALICE", path="/ops/")


def _matched(source: Source, policy: str, index: int, sid: str | None,
             effect: str) -> MatchedStatement:
    return MatchedStatement(source=source, policy=policy, index=index, sid=sid, effect=effect)


def test_an_allowed_request_is_allowed_and_no_explicit_deny() -> None:
    allow = _matched(Source.IDENTITY, "ops", 2, "Copy", "Allow")
    message = describe(USER_PRINCIPAL, Decision(Effect.ALLOW, ACTION, RESOURCE, (allow,)), {})
    assert message["allowed"] is True
    assert message["explicitDeny"] is False
    assert message["failures"] == {"items": []}
    assert message["matchedStatements"] == {"items": [{
        "statementId": "Copy", "effect": "ALLOW", "policy": "ops",
        "source": "identity-based policy", "index": 2}]}


def test_an_explicit_deny_names_each_matched_statement_in_order() -> None:
    deny = _matched(Source.RESOURCE, "key-policy", 0, None, "Deny")
    allow = _matched(Source.IDENTITY, "ops", 3, "AllowAll", "Allow")
    message = describe(USER_PRINCIPAL, Decision(Effect.EXPLICIT_DENY, ACTION, RESOURCE,
                                                (deny, allow)), {})
    assert message["allowed"] is False
    assert message["explicitDeny"] is True
    # A statement without a Sid is named by an empty statementId, not null.
    assert message["matchedStatements"]["items"] == [
        {"statementId": "", "effect": "DENY", "policy": "key-policy",
         "source": "resource-based policy", "index": 0},
        {"statementId": "AllowAll", "effect": "ALLOW", "policy": "ops",
         "source": "identity-based policy", "index": 3},
    ]
    assert message["failures"] == {"items": []}  # an explicit deny misses no side


def test_an_implicit_deny_names_the_side_that_allowed_nothing_and_the_partial_matches() -> None:
    partial = _matched(Source.RESOURCE, "bucket-policy", 1, "Other", "Allow")
    decision = Decision(Effect.IMPLICIT_DENY, ACTION, RESOURCE, (), missing=Source.IDENTITY,
                        partial=(partial,))
    message = describe(USER_PRINCIPAL, decision, {})
    assert message["allowed"] is False
    assert message["explicitDeny"] is False
    assert message["failures"] == {"items": [{
        "source": "identity-based policy",
        "reason": "because no identity-based policy allows the ec2:CopySnapshot action"}]}
    assert message["matchedStatements"]["items"] == [
        {"statementId": "Other", "effect": "ALLOW", "policy": "bucket-policy",
         "source": "resource-based policy", "index": 1}]


def test_the_context_names_the_principal_the_action_and_the_resource() -> None:
    message = describe(USER_PRINCIPAL, Decision(Effect.IMPLICIT_DENY, ACTION, RESOURCE), {})
    assert message["context"]["principal"] == {
        "id": "AIDAALICE", "name": "alice", "arn": f"arn:aws:iam::{ACCOUNT}:user/ops/alice"}
    assert message["context"]["action"] == ACTION
    assert message["context"]["resource"] == RESOURCE
    # An account root has no name: null, not an empty string.
    root = Principal(account_id=ACCOUNT, access_key_id="AKIAROOT", kind=ROOT)
    named = describe(root, Decision(Effect.IMPLICIT_DENY, ACTION, RESOURCE), {})
    assert named["context"]["principal"] == {"id": ACCOUNT, "name": None,
                                             "arn": f"arn:aws:iam::{ACCOUNT}:root"}
    session = Principal(account_id=ACCOUNT, access_key_id="ASIAROLE", kind=ASSUMED_ROLE,
                        name="Dev", unique_id="AROADEV", session_name="bob")
    assert describe(session, Decision(Effect.IMPLICIT_DENY, ACTION, RESOURCE),
                    {})["context"]["principal"]["id"] == "AROADEV:bob"


def test_condition_keys_are_sorted_and_their_values_written_as_text() -> None:
    facts = {
        "ec2:Encrypted": False,
        "aws:CurrentTime": dt.datetime(2026, 12, 3, 6, 40, 5, tzinfo=dt.UTC),
        "aws:TagKeys": ["team", "cost"],
        "aws:SecureTransport": True,
        "ec2:VolumeSize": 8,
        "aws:SourceIp": None,  # absent: not listed
        "aws:RequestedRegion": "us-east-1",
    }
    conditions = describe(USER_PRINCIPAL, Decision(Effect.IMPLICIT_DENY, ACTION, RESOURCE),
                          facts)["context"]["conditions"]["items"]
    assert [(c["key"], [v["value"] for v in c["values"]["items"]]) for c in conditions] == [
        ("aws:CurrentTime", ["2026-12-03T06:40:05+00:00"]),
        ("aws:RequestedRegion", ["us-east-1"]),
        ("aws:SecureTransport", ["true"]),
        ("aws:TagKeys", ["team", "cost"]),
        ("ec2:Encrypted", ["false"]),
        ("ec2:VolumeSize", ["8"]),
    ]


def test_a_multi_valued_key_given_as_a_tuple_lists_each_value() -> None:
    conditions = describe(USER_PRINCIPAL, Decision(Effect.IMPLICIT_DENY, ACTION, RESOURCE),
                          {"aws:TagKeys": ("a", True)})["context"]["conditions"]["items"]
    assert conditions == [{"key": "aws:TagKeys",
                           "values": {"items": [{"value": "a"}, {"value": "true"}]}}]
