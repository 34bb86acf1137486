"""ARNs as policies see them: their six parts, and who a principal ARN names.

An ARN is `arn:partition:service:region:account:resource`; the resource part may itself hold
colons, so it is split at most five times. Principals come in a few shapes (account root,
user, role, assumed-role session) and a policy names them differently from how a request
carries them (a session acts for its role), so the translations live here.
"""

from __future__ import annotations

import re

ACCOUNT_ID = re.compile(r"\d{12}")
_SESSION = re.compile(r"arn:(?P<p>[^:]+):sts::(?P<acct>\d{12}):assumed-role/(?P<role>[^/]+)/.+")


def split_arn(text: str) -> tuple[str, ...] | None:
    """The six parts of an ARN, or None when `text` is not one."""
    parts = tuple(text.split(":", 5))
    return parts if len(parts) == 6 and parts[0] == "arn" else None


def account_of(arn: str) -> str:
    """The account field of an ARN ('' when it has none, as snapshot and image ARNs)."""
    parts = split_arn(arn)
    return parts[4] if parts else ""


def root_arn(account_id: str, partition: str = "aws") -> str:
    return f"arn:{partition}:iam::{account_id}:root"


def is_root_arn(arn: str) -> bool:
    parts = split_arn(arn)
    return bool(parts and parts[2] == "iam" and parts[5] == "root"
                and ACCOUNT_ID.fullmatch(parts[4]))


def account_named(principal: str) -> str | None:
    """The account a policy's principal entry names as a whole (an account id or its root
    ARN), else None (it names a user, a role, a session, or nothing)."""
    if ACCOUNT_ID.fullmatch(principal):
        return principal
    return account_of(principal) if is_root_arn(principal) else None


def role_of_session(arn: str) -> str | None:
    """The role ARN an assumed-role session ARN acts for (without the role's path, which a
    session ARN does not carry), or None when `arn` is not a session."""
    found = _SESSION.fullmatch(arn)
    if not found:
        return None
    return f"arn:{found['p']}:iam::{found['acct']}:role/{found['role']}"
