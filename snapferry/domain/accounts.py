"""Accounts, their access keys, and the principal a verified request acts as."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from snapferry.domain.policy_documents import PolicyDocument
from snapferry.errors import ServiceError

DEV_ACCOUNT_ID = "000000000000"
DEV_ACCESS_KEY_ID = "test"
DEV_SECRET_ACCESS_KEY = "test"

_ACCOUNT_ID = re.compile(r"\d{12}")
# AWS's own keys are 16-128 word characters; `test` (the dev key every tool assumes) is 4.
_ACCESS_KEY_ID = re.compile(r"[A-Za-z0-9_]{4,128}")
_SECRET_MIN, _SECRET_MAX = 4, 128


@dataclass(frozen=True)
class AccessKey:
    account_id: str
    access_key_id: str
    secret_access_key: str


ROOT, USER, ASSUMED_ROLE = "root", "user", "assumed-role"


@dataclass(frozen=True)
class Principal:
    """Who a request acts as: an account root, an IAM user, or an assumed-role session,
    with the policies that decide what it may do (read when its credentials are)."""

    account_id: str
    access_key_id: str
    kind: str = ROOT
    name: str = ""  # the user's or the role's name
    unique_id: str = ""  # AIDA... for a user, AROA... for a role
    path: str = "/"
    session_name: str = ""
    # The identity policies (inline, attached, and the user's groups'), or the role's.
    policies: tuple[PolicyDocument, ...] = ()
    # AssumeRole's Policy/PolicyArns: they cap the session; None when it was given none.
    session_policies: tuple[PolicyDocument, ...] | None = None
    tags: tuple[tuple[str, str], ...] = ()  # aws:PrincipalTag/* (user tags, session tags)
    temporary: bool = False  # credentials from STS (a session token)
    expires_at: dt.datetime | None = None

    @property
    def arn(self) -> str:
        if self.kind == USER:
            return f"arn:aws:iam::{self.account_id}:user{self.path}{self.name}"
        if self.kind == ASSUMED_ROLE:
            return (f"arn:aws:sts::{self.account_id}:assumed-role/{self.name}/"
                    f"{self.session_name}")
        return f"arn:aws:iam::{self.account_id}:root"

    @property
    def role_arn(self) -> str | None:
        if self.kind != ASSUMED_ROLE:
            return None
        return f"arn:aws:iam::{self.account_id}:role{self.path}{self.name}"

    @property
    def user_id(self) -> str:
        if self.kind == USER:
            return self.unique_id
        if self.kind == ASSUMED_ROLE:
            return f"{self.unique_id}:{self.session_name}"
        return self.account_id

    @property
    def username(self) -> str | None:
        return self.name if self.kind == USER else None

    @property
    def is_root(self) -> bool:
        return self.kind == ROOT


def validate_access_key(key: AccessKey) -> None:
    """Refuse a malformed account id, key id or secret with a message that says what to fix."""
    if not _ACCOUNT_ID.fullmatch(key.account_id):
        raise ServiceError(
            "InvalidParameterValue",
            f"Account id '{key.account_id}' must be exactly 12 digits, like 222222222222.",
        )
    if not _ACCESS_KEY_ID.fullmatch(key.access_key_id):
        raise ServiceError(
            "InvalidParameterValue",
            f"Access key id '{key.access_key_id}' must be 4 to 128 letters, digits or '_'.",
        )
    secret = key.secret_access_key
    if not (_SECRET_MIN <= len(secret) <= _SECRET_MAX) or not secret.isprintable():
        raise ServiceError(
            "InvalidParameterValue",
            f"The secret access key must be {_SECRET_MIN} to {_SECRET_MAX} printable characters.",
        )
