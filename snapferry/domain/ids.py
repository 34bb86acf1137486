"""Resource ids: a prefix, a hyphen, 17 lowercase hex digits (AWS's long form).

Lookups accept AWS's legacy 8-digit form too, since clients and docs still carry such ids;
anything else is malformed, and says so before any lookup happens.
"""

from __future__ import annotations

import re
import secrets

from snapferry.errors import ServiceError

_HEX_LENGTH = 17
_KINDS = {
    "snap": ("InvalidSnapshotID.Malformed", "snapshot"),
    "vol": ("InvalidVolumeID.Malformed", "volume"),
    "ami": ("InvalidAMIID.Malformed", "image"),
}


def new_id(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(9)[:_HEX_LENGTH]}"


def is_id(prefix: str, value: str) -> bool:
    return re.fullmatch(rf"{prefix}-(?:[0-9a-f]{{8}}|[0-9a-f]{{17}})", value) is not None


def check_id(prefix: str, value: str) -> str:
    """`value` if it is a well-formed id of this kind, else the kind's Malformed error."""
    if not is_id(prefix, value):
        code, kind = _KINDS[prefix]
        raise ServiceError(
            code,
            f'Invalid id: "{value[:100]}" (expecting "{prefix}-..."): a {kind} id is '
            f"'{prefix}-' followed by 17 lowercase hexadecimal digits.",
        )
    return value
