"""Authorization: one function every handler calls before it acts.

Principals today are account roots, and a root's own account lets it do anything (IAM
identity policies come with the IAM work). Resources may carry a resource policy, as KMS
keys do; for those, what the policy says decides, as AWS does it:
- an explicit Deny that matches wins;
- otherwise an Allow that matches the principal (by account root, ARN, account id or `*`),
  the action (`kms:*`, wildcards) and its conditions allows;
- otherwise a grant naming the principal and the operation allows;
- otherwise no.
Which resources an account can *see* is each operation's own visibility rule (NotFound for
what is not yours), decided before this.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from snapferry.domain.accounts import Principal
from snapferry.errors import ServiceError

POLICY_VERSION = "2012-10-17"


@dataclass(frozen=True)
class Grant:
    grantee: str  # a principal ARN or account id
    operations: frozenset[str]  # e.g. {"Decrypt", "CreateGrant"}
    context_equals: Mapping[str, str] | None = None
    context_subset: Mapping[str, str] | None = None

    def allows(self, principal: Principal, action: str, encryption_context: Mapping[str, str]
               ) -> bool:
        service, _, operation = action.partition(":")
        if service != "kms" or operation not in self.operations:
            return False
        if not _principal_matches(self.grantee, principal):
            return False
        if self.context_equals is not None and dict(encryption_context) != dict(
                self.context_equals):
            return False
        return self.context_subset is None or all(
            encryption_context.get(k) == v for k, v in self.context_subset.items())


@dataclass(frozen=True)
class ResourcePolicy:
    """A resource's policy document, parsed once; `owner` is the resource's account."""

    owner: str
    statements: tuple[Mapping[str, Any], ...]
    grants: tuple[Grant, ...] = field(default_factory=tuple)


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


@lru_cache(maxsize=1024)
def parse_policy(text: str) -> tuple[Mapping[str, Any], ...]:
    """The statements of a policy document; MalformedPolicyDocumentException if it is not
    one we can evaluate. Cached by text: every use of a key evaluates its policy."""
    try:
        document = json.loads(text)
    except ValueError:
        raise _malformed("The policy is not valid JSON.") from None
    if not isinstance(document, dict) or "Statement" not in document:
        raise _malformed("A policy is a JSON object with a Statement list.")
    statements = _as_list(document["Statement"])
    for statement in statements:
        if not isinstance(statement, dict) or statement.get("Effect") not in ("Allow", "Deny"):
            raise _malformed("Every statement needs an Effect of Allow or Deny.")
        if "Principal" not in statement or "Action" not in statement:
            raise _malformed("Every statement of a key policy needs a Principal and an Action.")
    return tuple(statements)


def _malformed(message: str) -> ServiceError:
    return ServiceError("MalformedPolicyDocumentException", message)


def _principal_matches(pattern: str, principal: Principal) -> bool:
    if pattern == "*":
        return True
    if pattern in (principal.account_id, principal.arn):
        return True
    return pattern == f"arn:aws:iam::{principal.account_id}:root"


def _statement_principals(statement: Mapping[str, Any]) -> list[str]:
    principal = statement.get("Principal")
    if principal == "*":
        return ["*"]
    if isinstance(principal, dict):
        return [str(p) for p in _as_list(principal.get("AWS", []))]
    return []


def _conditions_hold(statement: Mapping[str, Any], facts: Mapping[str, str]) -> bool | None:
    """True/False for conditions we can evaluate; None when one names a key we do not know
    (an Allow then does not apply, a Deny does: fail closed)."""
    for operator, tests in (statement.get("Condition") or {}).items():
        if operator not in ("StringEquals", "StringLike") or not isinstance(tests, dict):
            return None
        for key, wanted in tests.items():
            if key not in facts:
                return None
            values = [str(v) for v in _as_list(wanted)]
            if operator == "StringEquals" and facts[key] not in values:
                return False
            if operator == "StringLike" and not any(
                    fnmatch.fnmatchcase(facts[key], v) for v in values):
                return False
    return True


def _matches(statement: Mapping[str, Any], principal: Principal, action: str) -> bool:
    actions = [str(a) for a in _as_list(statement["Action"])]
    return any(fnmatch.fnmatchcase(action, a) for a in actions) and any(
        _principal_matches(p, principal) for p in _statement_principals(statement))


def policy_allows(policy: ResourcePolicy, principal: Principal, action: str,
                  encryption_context: Mapping[str, str] | None = None) -> bool:
    facts = {"kms:CallerAccount": principal.account_id,
             "aws:PrincipalAccount": principal.account_id,
             "aws:PrincipalArn": principal.arn}
    allowed = False
    for statement in policy.statements:
        if not _matches(statement, principal, action):
            continue
        holds = _conditions_hold(statement, facts)
        if statement["Effect"] == "Deny" and holds is not False:
            return False
        if statement["Effect"] == "Allow" and holds is True:
            allowed = True
    if allowed:
        return True
    return any(grant.allows(principal, action, encryption_context or {})
               for grant in policy.grants)


def authorize(
    principal: Principal,
    action: str,
    resources: Sequence[str] = (),
    context: Mapping[str, Any] | None = None,
) -> bool:
    """Whether `principal` may perform `action` (e.g. 'ec2:CopySnapshot') on `resources`.

    context["resource_policy"] (a ResourcePolicy) makes the resource's policy decide;
    context["encryption_context"] is what KMS grant constraints are checked against."""
    context = context or {}
    policy = context.get("resource_policy")
    if policy is not None:
        return policy_allows(policy, principal, action, context.get("encryption_context"))
    return principal.is_root
