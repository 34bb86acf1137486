"""IAM's rules: names, paths and ids of users, groups, roles and managed policies, the
limits IAM sets on them, and its errors. Everything here is keyed by account; IAM is global
(no region)."""

from __future__ import annotations

import datetime as dt
import re
import secrets
import string
from dataclasses import dataclass, field

from snapferry.domain.policy_documents import (
    GROUP_INLINE_MAX,
    MANAGED_POLICY_MAX,
    ROLE_INLINE_MAX,
    USER_INLINE_MAX,
    Kind,
    PolicyDocument,
    parse_document,
)
from snapferry.errors import ServiceError

USER, GROUP, ROLE = "user", "group", "role"
INLINE_MAX = {USER: USER_INLINE_MAX, GROUP: GROUP_INLINE_MAX, ROLE: ROLE_INLINE_MAX}
ACTIVE, INACTIVE = "Active", "Inactive"
MAX_ACCESS_KEYS = 2  # per user, as AWS
MAX_POLICY_VERSIONS = 5
MAX_ATTACHED = 10  # managed policies per user, group or role (AWS's default quota)
DEFAULT_MAX_SESSION = 3600
MAX_SESSION_RANGE = (3600, 43200)
AWS_POLICY_PREFIX = "arn:aws:iam::aws:policy"

_NAME = re.compile(r"[\w+=,.@-]+")
_POLICY_NAME = re.compile(r"[\w+=,.@-]{1,128}")
_PATH = re.compile(r"/([\x21-\x7e]*/)?")
_ID_ALPHABET = string.ascii_uppercase + string.digits
_ID_PREFIX = {USER: "AIDA", GROUP: "AGPA", ROLE: "AROA", "policy": "ANPA",
              "key": "AKIA", "session-key": "ASIA"}


def new_id(kind: str) -> str:
    """An IAM unique id or access key id: its kind's 4-letter prefix and 16 more."""
    return _ID_PREFIX[kind] + "".join(secrets.choice(_ID_ALPHABET) for _ in range(16))


def new_secret() -> str:
    return secrets.token_urlsafe(30)[:40]


# ---- errors ---------------------------------------------------------------------------------

def no_such_entity(message: str) -> ServiceError:
    return ServiceError("NoSuchEntity", message, 404)


def already_exists(message: str) -> ServiceError:
    return ServiceError("EntityAlreadyExists", message, 409)


def delete_conflict(message: str) -> ServiceError:
    return ServiceError("DeleteConflict", message, 409)


def limit_exceeded(message: str) -> ServiceError:
    return ServiceError("LimitExceeded", message, 409)


def invalid_input(message: str) -> ServiceError:
    return ServiceError("InvalidInput", message, 400)


def validation(message: str) -> ServiceError:
    return ServiceError("ValidationError", message, 400)


# ---- names and paths ------------------------------------------------------------------------

def check_name(kind: str, name: str) -> str:
    """Users and groups: up to 64 characters, roles 64 too; [\\w+=,.@-] as IAM allows."""
    limit = 64 if kind != GROUP else 128
    if not (1 <= len(name) <= limit) or not _NAME.fullmatch(name):
        raise validation(f"The specified value for {kind}Name is invalid: '{name[:200]}'. "
                         f"It must be 1 to {limit} characters of letters, digits and +=,.@_-.")
    return name


def check_policy_name(name: str) -> str:
    if not _POLICY_NAME.fullmatch(name):
        raise validation(f"The specified value for policyName is invalid: '{name[:200]}'. It "
                         "must be 1 to 128 characters of letters, digits and +=,.@_-.")
    return name


def check_path(path: str | None) -> str:
    path = path or "/"
    if len(path) > 512 or not _PATH.fullmatch(path):
        raise validation(f"The specified value for path is invalid: '{path[:200]}'. A path "
                         "begins and ends with '/', like /division_abc/.")
    return path


_PATH_PREFIX = re.compile(r"/[\x21-\x7f]*")


def check_path_prefix(prefix: str | None) -> str:
    """A List* call's PathPrefix (`/division/`, or a part of a path such as `/div`)."""
    prefix = prefix or "/"
    if len(prefix) > 512 or not _PATH_PREFIX.fullmatch(prefix):
        raise validation(f"The specified value for pathPrefix is invalid: '{prefix[:200]}'. It "
                         "begins with '/', like /division_abc/.")
    return prefix


def arn(account_id: str, kind: str, path: str, name: str) -> str:
    return f"arn:aws:iam::{account_id}:{kind}{path}{name}"


def policy_arn(account_id: str, path: str, name: str) -> str:
    return arn(account_id, "policy", path, name)


def parse_policy_arn(text: str) -> tuple[str, str]:
    """(account id or 'aws', policy name) of a policy ARN; InvalidInput if it is not one."""
    found = re.fullmatch(r"arn:aws:iam::(\d{12}|aws):policy(/(?:[\x21-\x7e]*/)?)?([\w+=,.@-]+)",
                         text)
    if not found:
        raise invalid_input(f"ARN {text[:300]} is not valid.")
    return found.group(1), found.group(3)


def parse_role_arn(text: str) -> tuple[str, str]:
    """(account id, role name) of a role ARN (any path); ValidationError if it is not one."""
    found = re.fullmatch(r"arn:aws:iam::(\d{12}):role(?:/[\x21-\x7e]*)?/([\w+=,.@-]+)", text)
    if not found:
        raise validation(f"{text[:300]} is not a valid role ARN "
                         "(arn:aws:iam::ACCOUNT:role/NAME).")
    return found.group(1), found.group(2)


# ---- documents ------------------------------------------------------------------------------

def identity_document(text: str, name: str, max_chars: int = MANAGED_POLICY_MAX
                      ) -> PolicyDocument:
    """An identity policy as IAM accepts it; MalformedPolicyDocument naming the problem."""
    return parse_document(text, Kind.IDENTITY, name, max_chars)


def trust_document(text: str, name: str = "trust-policy") -> PolicyDocument:
    """A role's trust policy: a resource policy whose actions are sts:AssumeRole and kin."""
    document = parse_document(text, Kind.RESOURCE, name, 2048)
    for statement in document.statements:
        if any(not a.lower().startswith("sts:") for a in statement.actions):
            raise ServiceError("MalformedPolicyDocument",
                               "AssumeRolePolicy policy: only sts: actions (sts:AssumeRole, "
                               "sts:TagSession) belong in a trust policy.")
    return document


# ---- entities -------------------------------------------------------------------------------

@dataclass(frozen=True)
class User:
    account_id: str
    name: str
    user_id: str
    path: str
    created: dt.datetime
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def arn(self) -> str:
        return arn(self.account_id, "user", self.path, self.name)


@dataclass(frozen=True)
class Group:
    account_id: str
    name: str
    group_id: str
    path: str
    created: dt.datetime

    @property
    def arn(self) -> str:
        return arn(self.account_id, "group", self.path, self.name)


@dataclass(frozen=True)
class Role:
    account_id: str
    name: str
    role_id: str
    path: str
    created: dt.datetime
    trust_policy: str
    max_session: int = DEFAULT_MAX_SESSION
    description: str | None = None
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def arn(self) -> str:
        return arn(self.account_id, "role", self.path, self.name)


@dataclass(frozen=True)
class ManagedPolicy:
    arn: str
    name: str
    policy_id: str
    path: str
    default_version: str
    created: dt.datetime
    updated: dt.datetime
    description: str | None = None
    attachments: int = 0

    @property
    def aws_managed(self) -> bool:
        return self.arn.startswith(AWS_POLICY_PREFIX)


def check_max_session(seconds: int | None) -> int:
    if seconds is None:
        return DEFAULT_MAX_SESSION
    low, high = MAX_SESSION_RANGE
    if not low <= seconds <= high:
        raise validation(f"MaxSessionDuration must be {low} to {high} seconds, not {seconds}.")
    return seconds
