"""Policy documents: parsed once into Statements, checked as IAM checks them.

A document that IAM would refuse raises MalformedPolicyDocument (KMS calls the same error
MalformedPolicyDocumentException; the caller says which code it speaks) with a message that
names the problem and where it is. What is accepted here the evaluator can evaluate.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from snapferry.domain import conditions
from snapferry.domain.arns import ACCOUNT_ID, split_arn
from snapferry.errors import ServiceError

VERSIONS = ("2012-10-17", "2008-10-17")
VARIABLES_VERSION = "2012-10-17"  # the version that knows ${...}; 2008 takes it literally
MALFORMED = "MalformedPolicyDocument"
# IAM's limits, in characters not counting white space.
MANAGED_POLICY_MAX = 6144
USER_INLINE_MAX = 2048
GROUP_INLINE_MAX = 5120
ROLE_INLINE_MAX = 10240
SESSION_POLICY_MAX = 2048

_STATEMENT_FIELDS = {"Sid", "Effect", "Action", "NotAction", "Resource", "NotResource",
                     "Principal", "NotPrincipal", "Condition"}
_DOCUMENT_FIELDS = {"Version", "Id", "Statement"}
_PRINCIPAL_KINDS = ("AWS", "Service", "Federated", "CanonicalUser")
_ACTION = re.compile(r"[A-Za-z0-9*?-]+:[A-Za-z0-9*?]+")
_IAM_SID = re.compile(r"[A-Za-z0-9]*")


class Kind(Enum):
    """Where a policy sits decides which elements it must and must not have."""

    IDENTITY = "identity"  # attached to a user, group or role: no Principal, needs Resource
    SESSION = "session"  # passed to AssumeRole: as an identity policy
    RESOURCE = "resource"  # on a resource (KMS key policy, trust policy): needs Principal


@dataclass(frozen=True)
class Principals:
    """A Principal or NotPrincipal element: `everyone`, or lists per kind."""

    everyone: bool = False
    aws: tuple[str, ...] = ()
    service: tuple[str, ...] = ()
    other: tuple[str, ...] = ()  # Federated, CanonicalUser: never match (no such callers)


@dataclass(frozen=True)
class Statement:
    index: int  # 0-based position in its document
    sid: str | None
    effect: str  # "Allow" | "Deny"
    actions: tuple[str, ...]
    not_actions: bool
    resources: tuple[str, ...] | None  # None: no Resource element (resource policies)
    not_resources: bool
    principals: Principals | None  # None: no Principal element (identity policies)
    not_principals: bool
    condition: Mapping[str, Mapping[str, tuple[str, ...]]]
    variables: bool  # whether ${...} are policy variables (Version 2012-10-17)


@dataclass(frozen=True)
class PolicyDocument:
    name: str
    kind: Kind
    version: str | None
    statements: tuple[Statement, ...]


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


class _Checker:
    def __init__(self, code: str) -> None:
        self.code = code

    def fail(self, message: str) -> ServiceError:
        return ServiceError(self.code, message)

    def strings(self, value: Any, what: str, where: str) -> tuple[str, ...]:
        items = _list(value)
        if not items or not all(isinstance(i, str) and i for i in items):
            raise self.fail(f"{what} in {where} must be a non-empty string or list of strings.")
        return tuple(items)


def parse_document(text: str | Mapping[str, Any], kind: Kind = Kind.IDENTITY, name: str = "",
                   max_chars: int | None = None, code: str = MALFORMED) -> PolicyDocument:
    """Parse and check a policy document as IAM does; raise ServiceError(`code`) if it is not
    one. `max_chars` is IAM's size limit (white space not counted)."""
    check = _Checker(code)
    if isinstance(text, str):
        if max_chars is not None and len("".join(text.split())) > max_chars:
            raise check.fail(f"The policy is over the size limit: {max_chars} characters, "
                             "not counting white space.")
        try:
            document = json.loads(text)
        except json.JSONDecodeError as e:
            raise check.fail(f"Syntax errors in policy: not valid JSON ({e.msg} at line "
                             f"{e.lineno} column {e.colno}).") from None
    else:
        document = text
    if not isinstance(document, dict):
        raise check.fail("Syntax errors in policy: a policy is a JSON object.")
    unknown = sorted(set(document) - _DOCUMENT_FIELDS)
    if unknown:
        raise check.fail(f"Syntax errors in policy: unknown field {unknown[0]!r}.")
    version = document.get("Version")
    if version is not None and version not in VERSIONS:
        raise check.fail(f"The policy failed legacy parsing: Version {version!r} is not "
                         f"one of {', '.join(VERSIONS)}.")
    if "Statement" not in document:
        raise check.fail("Missing required field Statement.")
    raw = _list(document["Statement"])
    if not raw:
        raise check.fail("Missing required field Statement: the list is empty.")
    statements = tuple(_statement(check, s, i, kind, version == VARIABLES_VERSION)
                       for i, s in enumerate(raw))
    sids = [s.sid for s in statements if s.sid]
    if len(sids) != len(set(sids)):
        raise check.fail("Statement IDs (SID) in a single policy must be unique.")
    return PolicyDocument(name, kind, version, statements)


def _statement(check: _Checker, raw: Any, index: int, kind: Kind,
               variables: bool) -> Statement:
    where = f"statement {index + 1}"
    if not isinstance(raw, dict):
        raise check.fail(f"Syntax errors in policy: {where} is not a JSON object.")
    unknown = sorted(set(raw) - _STATEMENT_FIELDS)
    if unknown:
        raise check.fail(f"Syntax errors in policy: unknown field {unknown[0]!r} in {where}.")
    sid = raw.get("Sid")
    if sid is not None:
        if not isinstance(sid, str):
            raise check.fail(f"The Sid of {where} must be a string.")
        if kind is not Kind.RESOURCE and not _IAM_SID.fullmatch(sid):
            raise check.fail(f"Statement IDs (SID) must be alpha-numeric: {sid!r}.")
    where = f"statement {sid!r}" if sid else where
    if "Effect" not in raw:
        raise check.fail(f"Missing required field Effect in {where}.")
    if raw["Effect"] not in ("Allow", "Deny"):
        raise check.fail(f"Invalid effect: {raw['Effect']!r} in {where} (Allow or Deny).")
    actions, not_actions = _pair(check, raw, "Action", where, required=True)
    for action in actions:
        if action != "*" and not _ACTION.fullmatch(action):
            raise check.fail(f"Actions/Conditions must be prefaced by a vendor, e.g., iam, "
                             f"sdb, ec2, etc.: {action!r} in {where}.")
    resources, not_resources = _pair(check, raw, "Resource", where,
                                     required=kind is not Kind.RESOURCE)
    for resource in resources or ():
        if resource != "*" and split_arn(resource) is None:
            raise check.fail(f"Resource {resource} must be in ARN format or \"*\" ({where}).")
    if kind is not Kind.RESOURCE and ("Principal" in raw or "NotPrincipal" in raw):
        raise check.fail(f"Policy document should not specify a principal ({where}).")
    principals, not_principals = None, False
    if kind is Kind.RESOURCE:
        if ("Principal" in raw) == ("NotPrincipal" in raw):
            raise check.fail(f"Missing required field Principal in {where} (exactly one of "
                             "Principal and NotPrincipal).")
        not_principals = "NotPrincipal" in raw
        principals = _principals(check, raw["NotPrincipal" if not_principals else "Principal"],
                                 where)
    return Statement(
        index=index, sid=sid, effect=raw["Effect"], actions=actions, not_actions=not_actions,
        resources=resources, not_resources=not_resources, principals=principals,
        not_principals=not_principals, condition=_condition(check, raw.get("Condition"), where),
        variables=variables)


def _pair(check: _Checker, raw: Mapping[str, Any], field: str, where: str, required: bool
          ) -> tuple[Any, bool]:
    """`field` or `NotField`: (values, negated); (None, False) when neither and not required."""
    negated_field = f"Not{field}"
    if field in raw and negated_field in raw:
        raise check.fail(f"Syntax errors in policy: {where} has both {field} and "
                         f"{negated_field}.")
    if field not in raw and negated_field not in raw:
        if required:
            raise check.fail(f"Missing required field {field} in {where}: the policy "
                             f"statement must contain {field.lower()}s.")
        return None, False
    negated = negated_field in raw
    name = negated_field if negated else field
    return check.strings(raw[name], name, where), negated


def _principals(check: _Checker, raw: Any, where: str) -> Principals:
    if raw == "*":
        return Principals(everyone=True)
    if not isinstance(raw, dict) or not raw:
        raise check.fail(f"Invalid principal in policy: {raw!r} in {where} ('*' or an object "
                         "such as {\"AWS\": ARN}).")
    unknown = sorted(set(raw) - set(_PRINCIPAL_KINDS))
    if unknown:
        raise check.fail(f"Invalid principal in policy: unknown kind {unknown[0]!r} in {where}.")
    aws = check.strings(raw["AWS"], "Principal AWS", where) if "AWS" in raw else ()
    for entry in aws:
        if entry != "*" and not ACCOUNT_ID.fullmatch(entry) and (
                split_arn(entry) is None or "*" in entry or "?" in entry):
            raise check.fail(f"Invalid principal in policy: \"AWS\":\"{entry}\" in {where} "
                             "(an account id, an ARN without wildcards, or '*').")
    service = check.strings(raw["Service"], "Principal Service", where) \
        if "Service" in raw else ()
    other = tuple(v for k in ("Federated", "CanonicalUser") if k in raw
                  for v in check.strings(raw[k], f"Principal {k}", where))
    return Principals(everyone="*" in aws, aws=aws, service=service, other=other)


def _condition(check: _Checker, raw: Any, where: str
               ) -> Mapping[str, Mapping[str, tuple[str, ...]]]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise check.fail(f"Syntax errors in policy: the Condition of {where} is not an object.")
    block: dict[str, dict[str, tuple[str, ...]]] = {}
    for name, tests in raw.items():
        operator = conditions.parse_operator(name)
        if operator is None:
            raise check.fail(f"Invalid Condition type : {name} (in {where}).")
        if not isinstance(tests, dict) or not tests:
            raise check.fail(f"Syntax errors in policy: {name} in {where} needs an object of "
                             "condition keys.")
        block[name] = {}
        for key, values in tests.items():
            items = _list(values)
            if not items or not all(isinstance(v, str | bool | int | float) for v in items):
                raise check.fail(f"Syntax errors in policy: the values of {key} under {name} "
                                 f"in {where} must be strings, numbers or booleans.")
            block[name][key] = tuple(_value(v) for v in items)
    return block


def _value(value: str | bool | float) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
