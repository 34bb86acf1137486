"""Accounts, their access keys, and the principal a verified request acts as."""

from __future__ import annotations

import re
from dataclasses import dataclass

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


@dataclass(frozen=True)
class Principal:
    """Who a request acts as. Only account roots exist until IAM users arrive."""

    account_id: str
    access_key_id: str

    @property
    def arn(self) -> str:
        return f"arn:aws:iam::{self.account_id}:root"

    @property
    def user_id(self) -> str:
        return self.account_id

    @property
    def is_root(self) -> bool:
        return True


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
