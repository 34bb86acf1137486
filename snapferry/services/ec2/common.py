"""What several EC2 handlers share: paging tokens, id lists, resource outputs."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Iterator
from typing import Any

from snapferry.domain import ids
from snapferry.domain.snapshots import Snapshot, progress_text
from snapferry.domain.tags import as_list
from snapferry.errors import ServiceError

ACCOUNT_ID = re.compile(r"\d{12}")


def user_ids(values: list[str] | None, what: str, allowed: tuple[str, ...]) -> list[str] | None:
    """Owner or user lists of Describe calls: account ids, or the aliases `allowed`."""
    for value in values or ():
        if value not in allowed and not ACCOUNT_ID.fullmatch(value):
            raise ServiceError("InvalidUserID.Malformed",
                               f"Invalid {what} '{value[:50]}': expected a 12-digit account id"
                               f" or one of {', '.join(allowed)}.")
    return values


def page_size(params: dict[str, Any], low: int = 5, high: int = 1000) -> int | None:
    """MaxResults as EC2 applies it: absent means everything; above the maximum means the
    maximum; below the minimum is refused."""
    given = params.get("MaxResults")
    if given is None:
        return None
    if given < low:
        raise ServiceError("InvalidParameterValue",
                           f"MaxResults must be between {low} and {high}; {given} was given.")
    return min(given, high)


def paged(key: str, items: list[Any], last_id: str | None) -> dict[str, Any]:
    """A Describe output: the items, and a NextToken when there is a next page."""
    output: dict[str, Any] = {key: items}
    if last_id:
        output["NextToken"] = base64.urlsafe_b64encode(last_id.encode()).decode()
    return output


# An unpaged Describe* reads the database this many resources at a time and streams its
# output (wire/query.py), so its memory does not grow with the number of resources.
STREAM_PAGE = 1000


def streamed(first: list[Any], last_id: str | None,
             next_page: Callable[[str], tuple[list[Any], str | None]]) -> Iterator[Any]:
    """The items of `first`, then of each page after `last_id` as the output is written."""
    yield from first
    while last_id is not None:
        items, last_id = next_page(last_id)
        yield from items


def unpaged(key: str, first: list[Any], last_id: str | None,
            next_page: Callable[[str], tuple[list[Any], str | None]]) -> dict[str, Any]:
    """An unpaged Describe output: a plain list when one page held it all, else streamed."""
    if last_id is None:
        return {key: first}
    return {key: streamed(first, last_id, next_page)}


def decode_next_token(params: dict[str, Any], prefix: str) -> str | None:
    token = params.get("NextToken")
    if not token:
        return None
    try:
        last_id = base64.urlsafe_b64decode(token.encode()).decode()
    except (binascii.Error, ValueError):
        last_id = ""
    if not ids.is_id(prefix, last_id):
        raise ServiceError("InvalidNextToken", "The NextToken is not valid; repeat the request "
                           "without it to start from the beginning.")
    return last_id


def checked_ids(values: list[str] | None, prefix: str) -> list[str] | None:
    return [ids.check_id(prefix, value) for value in values] if values else values


def refuse_unknown(wanted: list[str] | None, found: set[str],
                   not_found: Callable[[str], ServiceError]) -> None:
    """EC2 names the first id asked for that is not there (or not yours to see)."""
    for value in wanted or ():
        if value not in found:
            raise not_found(value)


def snapshot_output(snapshot: Snapshot, tags: dict[str, str]) -> dict[str, Any]:
    output: dict[str, Any] = {
        "SnapshotId": snapshot.snapshot_id,
        "VolumeId": snapshot.volume_id,
        "State": snapshot.state,
        "StartTime": snapshot.start_time,
        "Progress": progress_text(snapshot.progress),
        "OwnerId": snapshot.account_id,
        "Description": snapshot.description,
        "VolumeSize": snapshot.volume_size,
        "Encrypted": snapshot.encrypted,
        "StorageTier": "standard",
        # AWS names the data key of encrypted snapshots only; a copy's is set when it starts.
        "DataEncryptionKeyId": (snapshot.lineage_id or None) if snapshot.encrypted else None,
        "Tags": as_list(tags) if tags else None,
        "StateMessage": snapshot.state_message,
        "KmsKeyId": snapshot.kms_key_id,
        "FullSnapshotSizeInBytes": snapshot.full_size_bytes,
        "CompletionTime": snapshot.completion_time,
        "TransferType": snapshot.transfer_type,
        "CompletionDurationMinutes": snapshot.completion_duration_minutes,
    }
    return {key: value for key, value in output.items() if value is not None}
