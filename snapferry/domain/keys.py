"""KMS keys: how they are named, their states, their default policy, and their errors.

A key belongs to one account in one region. The caller's own keys may be named four ways:
key id, key ARN, alias name (`alias/x`), alias ARN; another account's key only by key ARN
or alias ARN. `alias/aws/ebs` names the AWS managed key for EBS, made on first use.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass

from snapferry.errors import ServiceError

ENABLED, DISABLED, PENDING_DELETION = "Enabled", "Disabled", "PendingDeletion"
CUSTOMER, AWS = "CUSTOMER", "AWS"
EBS_ALIAS = "alias/aws/ebs"
RESERVED_ALIAS_PREFIX = "alias/aws/"
SYMMETRIC = "SYMMETRIC_DEFAULT"
ALGORITHM = "SYMMETRIC_DEFAULT"
DELETION_WINDOW = (7, 30)
DEFAULT_ROTATION_DAYS = 365  # also the fixed period of AWS managed keys

_KEY_ARN = re.compile(r"arn:aws:kms:([a-z0-9-]+):(\d{12}):key/([0-9a-f-]{36})")
_ALIAS_ARN = re.compile(r"arn:aws:kms:([a-z0-9-]+):(\d{12}):(alias/[A-Za-z0-9/_-]+)")
_KEY_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_ALIAS_NAME = re.compile(r"alias/[A-Za-z0-9/_-]{1,250}")


@dataclass
class Key:
    key_id: str
    account_id: str
    region: str
    description: str
    state: str
    key_manager: str
    creation_date: dt.datetime
    policy: str
    material_sealed: bytes
    deletion_date: dt.datetime | None = None
    pending_window_days: int | None = None
    # Automatic rotation: None while it is off (customer managed keys start with it off).
    rotation_period_days: int | None = None
    next_rotation_date: dt.datetime | None = None

    @property
    def arn(self) -> str:
        return key_arn(self.region, self.account_id, self.key_id)

    @property
    def enabled(self) -> bool:
        return self.state == ENABLED


@dataclass(frozen=True)
class KeyRef:
    """What a KeyId parameter names, before it is looked up."""

    kind: str  # "id" | "alias"
    account_id: str
    region: str
    value: str  # the key id, or the alias name


def key_arn(region: str, account_id: str, key_id: str) -> str:
    return f"arn:aws:kms:{region}:{account_id}:key/{key_id}"


def alias_arn(region: str, account_id: str, alias: str) -> str:
    return f"arn:aws:kms:{region}:{account_id}:{alias}"


def parse_key_ref(text: str, account_id: str, region: str, aliases: bool = True) -> KeyRef:
    """Classify a KeyId parameter; NotFoundException for anything no key could have."""
    if matched := _KEY_ARN.fullmatch(text):
        ref = KeyRef("id", matched.group(2), matched.group(1), matched.group(3))
    elif _KEY_ID.fullmatch(text):
        ref = KeyRef("id", account_id, region, text)
    elif aliases and (matched := _ALIAS_ARN.fullmatch(text)):
        ref = KeyRef("alias", matched.group(2), matched.group(1), matched.group(3))
    elif aliases and _ALIAS_NAME.fullmatch(text):
        ref = KeyRef("alias", account_id, region, text)
    else:
        raise invalid_key_id(text)
    if ref.region != region:
        raise ServiceError("NotFoundException", f"Key '{text}' does not exist in {region}: "
                           "a key is used in the region that holds it.")
    return ref


def invalid_key_id(text: str) -> ServiceError:
    return ServiceError("NotFoundException", f"Invalid keyId '{text[:256]}'")


def key_not_found(arn: str) -> ServiceError:
    return ServiceError("NotFoundException", f"Key '{arn}' does not exist")


def alias_not_found(arn: str) -> ServiceError:
    return ServiceError("NotFoundException", f"Alias '{arn}' is not found.")


def check_alias_name(name: str) -> None:
    if not _ALIAS_NAME.fullmatch(name):
        raise ServiceError("ValidationException", f"Alias must start with 'alias/' and contain "
                           f"only letters, digits, '/', '_' and '-': '{name[:256]}'.")
    if name.startswith(RESERVED_ALIAS_PREFIX):
        raise ServiceError("InvalidAliasNameException",
                           f"Alias names beginning with {RESERVED_ALIAS_PREFIX} are reserved "
                           "for AWS managed keys.")


def check_usable(key: Key) -> None:
    """Cryptographic use needs an enabled key."""
    if key.state == DISABLED:
        raise ServiceError("DisabledException", f"{key.arn} is disabled.")
    if key.state != ENABLED:
        raise ServiceError("KMSInvalidStateException", f"{key.arn} is pending deletion.")


def check_customer_managed(key: Key, what: str) -> None:
    if key.key_manager == AWS:
        raise ServiceError("UnsupportedOperationException",
                           f"{what} is not allowed on the AWS managed key {key.arn}.")


@dataclass(frozen=True)
class RotationStatus:
    enabled: bool
    period_days: int | None
    next_date: dt.datetime | None


def rotation_status(key: Key, now: dt.datetime) -> RotationStatus:
    """AWS managed keys always rotate yearly (counted from their creation); a customer
    managed key rotates when its owner enabled it."""
    if key.key_manager == AWS:
        period = dt.timedelta(days=DEFAULT_ROTATION_DAYS)
        periods_passed = (now - key.creation_date) // period
        return RotationStatus(True, DEFAULT_ROTATION_DAYS,
                              key.creation_date + (periods_passed + 1) * period)
    if key.rotation_period_days is None:
        return RotationStatus(False, None, None)
    return RotationStatus(True, key.rotation_period_days, key.next_rotation_date)


def enabled_rotation(key: Key, period_days: int | None,
                     now: dt.datetime) -> tuple[int, dt.datetime]:
    """(period, next rotation date) after EnableKeyRotation. Enabling again without a
    period keeps the schedule; a new period restarts it from today, as AWS documents."""
    check_rotation_change(key)  # the period's range (90..2560) the wire checks, by the model
    current = key.rotation_period_days
    if current is not None and period_days in (None, current) and key.next_rotation_date:
        return current, key.next_rotation_date
    period = period_days or current or DEFAULT_ROTATION_DAYS
    return period, now + dt.timedelta(days=period)


def check_rotation_change(key: Key) -> None:
    """Enable/DisableKeyRotation: customer managed keys that are enabled."""
    check_customer_managed(key, "Changing automatic key rotation")
    if key.state == DISABLED:
        raise ServiceError("DisabledException", f"{key.arn} is disabled.")
    if key.state != ENABLED:
        raise ServiceError("KMSInvalidStateException", f"{key.arn} is pending deletion.")


def default_policy(account_id: str) -> str:
    """AWS's default key policy: the owning account (its root, and through IAM its users)
    may do anything with the key; nobody else may do anything."""
    return json.dumps({
        "Version": "2012-10-17",
        "Id": "key-default-1",
        "Statement": [{
            "Sid": "Enable IAM User Permissions",
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{account_id}:root"},
            "Action": "kms:*",
            "Resource": "*",
        }],
    }, indent=2)


def managed_policy(account_id: str) -> str:
    """The AWS managed key's policy: usable by the owning account only, so snapshots
    encrypted with it cannot be shared."""
    return json.dumps({
        "Version": "2012-10-17",
        "Id": "auto-ebs-2",
        "Statement": [{
            "Sid": "Allow access through EBS for all principals in the account",
            "Effect": "Allow",
            "Principal": {"AWS": "*"},
            "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*",
                       "kms:CreateGrant", "kms:DescribeKey"],
            "Resource": "*",
            "Condition": {"StringEquals": {"kms:CallerAccount": account_id}},
        }, {
            "Sid": "Allow direct access to key metadata to the account",
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{account_id}:root"},
            "Action": ["kms:Describe*", "kms:Get*", "kms:List*", "kms:RevokeGrant"],
            "Resource": "*",
        }],
    }, indent=2)
