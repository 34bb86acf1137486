"""Edges of the policy evaluator found by its mutation run of 2026-12-02 (RELIABILITY.md),
each a rule a survivor showed no test held: kept apart from the table of cases in
test_policy_cases.py, which the IAM work extends."""

from __future__ import annotations

import pytest

from snapferry.domain import arns
from snapferry.errors import ServiceError
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
