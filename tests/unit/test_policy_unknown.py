"""The evaluator before a resource is looked up (RequestContext.authorize_first): the
resource's own condition keys are not known yet, so an Allow that tests them may still apply
and a Deny that tests them may still not; every other key is judged as always."""

from __future__ import annotations

import json
from typing import Any

from snapferry.domain.actions import resource_key
from snapferry.domain.policy import Caller, Effect, Request, evaluate
from snapferry.domain.policy_documents import parse_document

USER = Caller("111111111111", "arn:aws:iam::111111111111:user/ann")
SNAPSHOT = "arn:aws:ec2:us-east-1::snapshot/snap-0123456789abcdef0"


def statement(effect: str, condition: dict[str, Any]) -> dict[str, Any]:
    return {"Effect": effect, "Action": "ec2:DeleteSnapshot", "Resource": "*",
            "Condition": condition}


def decide(statements: list[dict[str, Any]], context: dict[str, Any] | None = None,
           before_lookup: bool = True, as_text: bool = False) -> Effect:
    body = {"Version": "2012-10-17", "Statement": statements}
    # as_text: the document as IAM stores it and the server reads it, JSON text.
    document = parse_document(json.dumps(body) if as_text else body, name="p")
    request = Request(USER, "ec2:DeleteSnapshot", SNAPSHOT,
                      {"aws:RequestedRegion": "us-east-1", **(context or {})},
                      unknown=resource_key if before_lookup else None)
    return evaluate(request, identity=[document]).effect


TAGGED = {"StringEquals": {"ec2:ResourceTag/team": "blue"}}
ANYTHING = {"Effect": "Allow", "Action": "ec2:*", "Resource": "*"}


def test_an_allow_on_a_resource_key_may_still_apply_before_the_lookup() -> None:
    assert decide([statement("Allow", TAGGED)]) is Effect.ALLOW
    # Once looked up: the key is missing (no such tag) or differs, and the Allow does not.
    assert decide([statement("Allow", TAGGED)], before_lookup=False) is Effect.IMPLICIT_DENY
    assert decide([statement("Allow", TAGGED)], {"ec2:ResourceTag/team": "red"},
                  before_lookup=False) is Effect.IMPLICIT_DENY


def test_a_deny_on_a_resource_key_waits_for_the_lookup() -> None:
    assert decide([ANYTHING, statement("Deny", TAGGED)]) is Effect.ALLOW
    assert decide([ANYTHING, statement("Deny", TAGGED)], {"ec2:ResourceTag/team": "blue"},
                  before_lookup=False) is Effect.EXPLICIT_DENY


def test_keys_of_the_request_are_judged_before_the_lookup_too() -> None:
    confined = statement("Allow", {"StringEquals": {"aws:RequestedRegion": "eu-west-1",
                                                    "ec2:ResourceTag/team": "blue"}})
    assert decide([confined]) is Effect.IMPLICIT_DENY
    # Whichever comes first in the block: a resource key not known yet leaves the request's
    # keys after it to be judged, it does not end the block's tests.
    unknown_first = statement("Allow", {"StringEquals": {"ec2:ResourceTag/team": "blue",
                                                         "aws:RequestedRegion": "eu-west-1"}})
    assert decide([unknown_first]) is Effect.IMPLICIT_DENY
    assert decide([unknown_first], {"aws:RequestedRegion": "eu-west-1"}) is Effect.ALLOW
    # A resource key the request itself supplies (CreateVolume's ec2:Encrypted) is known.
    encrypted = statement("Allow", {"Bool": {"ec2:Encrypted": "true"}})
    assert decide([encrypted], {"ec2:Encrypted": False}) is Effect.IMPLICIT_DENY
    assert decide([encrypted]) is Effect.ALLOW


def test_a_policy_variable_naming_a_resource_key_is_not_known_either() -> None:
    same_team = statement("Allow", {"StringEquals": {
        "aws:PrincipalTag/team": "${ec2:ResourceTag/team}"}})
    assert decide([same_team], {"aws:PrincipalTag/team": "blue"}) is Effect.ALLOW
    assert decide([same_team], {"aws:PrincipalTag/team": "blue"},
                  before_lookup=False) is Effect.IMPLICIT_DENY
    assert decide([same_team], {"aws:PrincipalTag/team": "blue",
                                "ec2:ResourceTag/team": "blue"},
                  before_lookup=False) is Effect.ALLOW


def test_a_stored_policy_read_from_its_json_text_is_judged_the_same_before_the_lookup() -> None:
    # What the server evaluates comes from JSON text: its "Allow" is another string object
    # than this file's literal, so the effect must be compared by value, not identity.
    assert decide([statement("Allow", TAGGED)], as_text=True) is Effect.ALLOW
    assert decide([ANYTHING, statement("Deny", TAGGED)], as_text=True) is Effect.ALLOW
    assert decide([statement("Allow", TAGGED)], before_lookup=False,
                  as_text=True) is Effect.IMPLICIT_DENY
