"""Edges of the policy evaluator found by its mutation run of 2026-12-02 (RELIABILITY.md),
each a rule a survivor showed no test held: kept apart from the table of cases in
test_policy_cases.py, which the IAM work extends."""

from __future__ import annotations

import json
from typing import Any

import pytest

from snapferry.domain import arns
from snapferry.errors import ServiceError
from tests.unit.test_policy_cases import A, B, _rewrite_principal_key, case, run
from tests.unit.test_policy_cases import allow as cases_allow
from tests.unit.test_policy_cases import principal as cases_principal
from tests.unit.test_policy_rules import OWNER, C, allow, allowed, policy


def test_a_root_arn_of_a_service_other_than_iam_names_no_account() -> None:
    # "ec2" sorts before "iam" and "sts" after it: both must be refused.
    for service in ("ec2", "sts"):
        arn = f"arn:aws:{service}::{C}:root"
        assert not arns.is_root_arn(arn)
        assert arns.account_named(arn) is None
        assert not allowed(policy(allow(f"arn:aws:iam::{OWNER}:root"), allow(arn)), C,
                           "kms:Decrypt")
    assert arns.account_named(f"arn:aws:iam::{C}:root") == C


@pytest.mark.parametrize("first", ["aaa", "an", "", "arm", "arnx", "ARN"])
def test_only_text_starting_with_arn_is_an_arn(first: str) -> None:
    # Words that sort before "arn" as well as after it.
    text = f"{first}:aws:iam::{C}:root"
    assert arns.split_arn(text) is None
    assert arns.account_of(text) == ""
    assert not arns.is_root_arn(text)
    with pytest.raises(ServiceError) as caught:
        policy(allow(f"arn:aws:iam::{OWNER}:root"), allow(text))
    assert caught.value.code == "MalformedPolicyDocumentException"


def _row(statements: list[dict[str, Any]], caller: str, owner: str = A) -> dict[str, Any]:
    row = case("edge", "allow", caller=caller, identity=[cases_allow()],
               resource_policy={"owner": owner, "statements": statements}).values[0]
    _rewrite_principal_key(row)
    return row


def test_not_principal_compares_the_account_by_value() -> None:
    """The account id in a real policy comes from JSON text, a string object of its own:
    carol is spared only because her account is named, compared by value."""
    account = json.loads(json.dumps(A))
    assert account == A and account is not A
    spared = _row([cases_principal({"AWS": [f"arn:aws:iam::{A}:user/ops/carol", account]},
                                   effect="Deny", principal_key="NotPrincipal")], "carol")
    assert run(spared).effect.value == "allow"


def test_not_principal_naming_a_service_spares_that_service() -> None:
    service = {"Service": "ec2.amazonaws.com"}
    row = _row([cases_principal(service),
                cases_principal(service, effect="Deny", principal_key="NotPrincipal")], "ec2")
    assert run(row).effect.value == "allow"
    other = _row([cases_principal(service),
                  cases_principal({"Service": "backup.amazonaws.com"}, effect="Deny",
                                  principal_key="NotPrincipal")], "ec2")
    assert run(other).effect.value == "explicitDeny"


def test_the_resource_owner_is_compared_with_the_callers_account_by_value() -> None:
    """The owner comes from the database and the caller's account from its access key: two
    string objects. In its own account an identity policy alone allows."""
    owner = json.loads(json.dumps(A))
    assert owner == A and owner is not A
    assert run(_row([], "alice", owner=owner)).effect.value == "allow"
    assert run(_row([], "bob@B", owner=owner)).effect.value == "implicitDeny"


def test_a_policy_naming_another_role_does_not_admit_a_session() -> None:
    """The session acts for role Dev; a statement naming role Admin (which sorts before it)
    or role Ops (after it) does not name the session."""
    for role in ("Admin", "Ops"):
        named = _row([cases_principal({"AWS": f"arn:aws:iam::{A}:role/{role}"})], "session",
                     owner=B)
        assert run(named).effect.value == "implicitDeny", role
    dev = _row([cases_principal({"AWS": f"arn:aws:iam::{A}:role/Dev"})], "session", owner=B)
    assert run(dev).effect.value == "allow"


@pytest.mark.parametrize("operator", ["StringLike", "StringNotLike", "ArnLike", "ArnNotLike"])
def test_a_pattern_naming_a_variable_the_request_lacks_never_holds(operator: str) -> None:
    """A `...Like` pattern with a policy variable the request does not carry (no such tag)
    does not hold, whatever the value, even under a Not operator."""
    from snapferry.domain.conditions import Facts, parse_operator, test

    parsed = parse_operator(operator)
    assert parsed is not None
    facts = Facts({"aws:PrincipalArn": "arn:aws:iam::111122223333:user/x",
                   "s3:prefix": "x/home"})
    key, pattern = (("aws:PrincipalArn", "arn:aws:iam::111122223333:user/${aws:PrincipalTag/team}")
                    if operator.startswith("Arn") else ("s3:prefix", "${aws:PrincipalTag/team}/*"))
    assert not test(parsed, key, [pattern], facts)
    # The same pattern holds once the variable is there (...Like) or fails (...NotLike).
    tagged = Facts({key: facts.values(key)[0], "aws:PrincipalTag/team": "x"})
    assert test(parsed, key, [pattern], tagged) == ("Not" not in operator)


def test_a_condition_block_with_an_operator_aws_does_not_know_never_holds() -> None:
    # parse_document refuses such a block; holds() refuses it too rather than let it allow.
    from snapferry.domain.conditions import Facts, holds

    facts = Facts({"aws:RequestedRegion": "us-east-1"})
    assert holds({"StringEquals": {"aws:RequestedRegion": ("us-east-1",)}}, facts)
    assert not holds({"StringEqualz": {"aws:RequestedRegion": ("us-east-1",)}}, facts)
