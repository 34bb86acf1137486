"""KMS key policies and grants (domain/policy.py): who a grant serves, Deny, Conditions."""

from __future__ import annotations

import json
from typing import Any

from snapferry.domain.accounts import Principal
from snapferry.domain.policy import Grant, ResourcePolicy, authorize, key_policy

OWNER, C, D = "111111111111", "333333333333", "444444444444"


def who(account: str) -> Principal:
    return Principal(account, f"KEY{account}")


def policy(*statements: dict[str, Any], grants: tuple[Grant, ...] = ()) -> ResourcePolicy:
    document = {"Version": "2012-10-17", "Statement": list(statements)}
    return key_policy(OWNER, json.dumps(document), grants)


def allowed(resource: ResourcePolicy, account: str, action: str,
            context: dict[str, str] | None = None) -> bool:
    return authorize(who(account), action, context={"resource_policy": resource,
                                                   "encryption_context": context or {}})


def allow(principal: str, action: str = "kms:*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Principal": {"AWS": principal}, "Action": action,
            "Resource": "*", **extra}


def test_a_grant_serves_its_grantee_and_its_operations_only() -> None:
    granted = policy(allow(f"arn:aws:iam::{OWNER}:root"),
                     grants=(Grant(f"arn:aws:iam::{C}:root", frozenset({"Decrypt"})),))
    assert allowed(granted, C, "kms:Decrypt")
    assert not allowed(granted, D, "kms:Decrypt")  # another principal
    assert not allowed(granted, C, "kms:Encrypt")  # another operation


def test_a_grant_s_encryption_context_constraints_hold() -> None:
    grants = (Grant(C, frozenset({"Decrypt"}), context_subset={"purpose": "backup"}),
              Grant(D, frozenset({"Decrypt"}), context_equals={"purpose": "backup"}))
    constrained = policy(allow(f"arn:aws:iam::{OWNER}:root"), grants=grants)
    assert allowed(constrained, C, "kms:Decrypt", {"purpose": "backup", "more": "x"})
    assert not allowed(constrained, C, "kms:Decrypt", {"purpose": "other"})
    assert allowed(constrained, D, "kms:Decrypt", {"purpose": "backup"})
    assert not allowed(constrained, D, "kms:Decrypt", {"purpose": "backup", "more": "x"})


def test_an_explicit_deny_wins_over_an_allow_and_a_grant() -> None:
    denied = policy(
        allow("*"),
        {"Effect": "Deny", "Principal": {"AWS": C}, "Action": "kms:Decrypt", "Resource": "*"},
        grants=(Grant(C, frozenset({"Decrypt"})),))
    assert not allowed(denied, C, "kms:Decrypt")
    assert allowed(denied, C, "kms:Encrypt")
    assert allowed(denied, D, "kms:Decrypt")


def test_conditions_decide_whether_a_statement_applies() -> None:
    only_c = policy(allow("*", Condition={"StringEquals": {"kms:CallerAccount": C}}))
    assert allowed(only_c, C, "kms:Decrypt")
    assert not allowed(only_c, D, "kms:Decrypt")
    like = policy(allow("*", Condition={"StringLike": {"aws:PrincipalArn": f"*:{D}:*"}}))
    assert allowed(like, D, "kms:Decrypt") and not allowed(like, C, "kms:Decrypt")
    # A condition on a key the request does not carry is false, as in IAM: neither an Allow
    # nor a Deny that needs it applies (the ...IfExists and negated operators are true).
    absent = {"StringEquals": {"aws:SourceVpc": "vpc-1"}}
    assert not allowed(policy(allow("*", Condition=absent)), C, "kms:Decrypt")
    spared_deny = policy(allow("*"), {"Effect": "Deny", "Principal": {"AWS": "*"},
                                      "Action": "kms:*", "Resource": "*", "Condition": absent})
    assert allowed(spared_deny, C, "kms:Decrypt")
    if_exists = {"StringEqualsIfExists": {"aws:SourceVpc": "vpc-1"}}
    assert allowed(policy(allow("*", Condition=if_exists)), C, "kms:Decrypt")
    # A Deny whose condition does not hold does not apply.
    spared = policy(allow("*"), {"Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "kms:*",
                                 "Resource": "*",
                                 "Condition": {"StringEquals": {"kms:CallerAccount": D}}})
    assert allowed(spared, C, "kms:Decrypt") and not allowed(spared, D, "kms:Decrypt")


def test_grant_allows_reads_as_its_match() -> None:
    grant = Grant(f"arn:aws:iam::{C}:root", frozenset({"Decrypt"}))
    assert grant.allows(who(C), "kms:Decrypt", {}) is True
    assert grant.allows(who(C), "kms:Encrypt", {}) is False
    assert grant.allows(who(D), "kms:Decrypt", {}) is False


def test_policy_allows_hands_the_encryption_context_to_grants() -> None:
    from snapferry.domain.policy import policy_allows

    grant = Grant(f"arn:aws:iam::{C}:root", frozenset({"Decrypt"}), context_subset={"a": "1"})
    resource = policy(allow(f"arn:aws:iam::{OWNER}:root"), grants=(grant,))
    assert policy_allows(resource, who(C), "kms:Decrypt", {"a": "1", "b": "2"}) is True
    assert policy_allows(resource, who(C), "kms:Decrypt", {"a": "2"}) is False
