"""Snapshots: their states, who may see and use them, and the rules of the EBS direct APIs.

A snapshot is a manifest of blocks (block index -> content) plus this record. It is
`pending` while it is written (EBS direct) or filled (from a volume, by a copy), then
`completed` and immutable, or `error`. Who may see it: its owner, any account named in its
createVolumePermission, and everyone when the group `all` is named. Anyone else is told it
does not exist, never that it is someone else's.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from snapferry.domain.blocks import BLOCK_SIZE, MAX_VOLUME_GIB, block_count
from snapferry.errors import ServiceError

PENDING, COMPLETED, ERROR = "pending", "completed", "error"
ORIGIN_EBS, ORIGIN_VOLUME, ORIGIN_COPY = "ebs-direct", "volume", "copy"
DEFAULT_TIMEOUT_MINUTES = 60
COPY_VOLUME_ID = "vol-ffffffff"  # AWS's "arbitrary source volume id" of copies
TIMED_OUT_MESSAGE = (
    "Cancelled: no block was written and the snapshot was not completed within its Timeout."
)


@dataclass
class Snapshot:
    snapshot_id: str
    account_id: str
    region: str
    volume_id: str
    volume_size: int
    state: str
    progress: int
    start_time: dt.datetime
    description: str
    encrypted: bool
    lineage_id: str
    origin: str
    kms_key_id: str | None = None
    parent_snapshot_id: str | None = None
    state_message: str | None = None
    completion_time: dt.datetime | None = None
    full_size_bytes: int | None = None
    client_token: str | None = None
    request_digest: str | None = None
    timeout_minutes: int | None = None
    expires_at: dt.datetime | None = None
    transfer_type: str | None = None
    completion_duration_minutes: int | None = None

    @property
    def blocks(self) -> int:
        return block_count(self.volume_size)


STANDARD_TIER = "standard"  # the only storage tier here: no archive tier


def archiving_refused(snapshot_id: str, tier: str) -> ServiceError:
    """ModifySnapshotTier: the archive tier (AWS's cheaper, slow-to-restore storage) does not
    exist here, so a request to move a snapshot there is refused, never silently ignored."""
    if tier != "archive":
        return ServiceError("InvalidParameterValue",
                            f"Value ({tier[:50]}) for parameter StorageTier is invalid: the only "
                            "tier a snapshot can be moved to is 'archive'.")
    return ServiceError("UnsupportedOperation",
                        f"snapferry keeps every snapshot in the standard tier; moving "
                        f"'{snapshot_id}' to the archive tier is not supported.")


def not_archived(snapshot_id: str) -> ServiceError:
    """RestoreSnapshotTier: every snapshot here is already in the standard tier."""
    return ServiceError("IncorrectState",
                        f"The snapshot '{snapshot_id}' is in the standard tier, not archived: "
                        "there is nothing to restore.")


def not_found(snapshot_id: str) -> ServiceError:
    return ServiceError(
        "InvalidSnapshot.NotFound", f"The snapshot '{snapshot_id}' does not exist."
    )


def check_volume_size(size: int) -> None:
    if not 1 <= size <= MAX_VOLUME_GIB:
        raise ServiceError(
            "ValidationException",
            f"VolumeSize must be from 1 to {MAX_VOLUME_GIB} GiB; {size} was given.",
            Reason="INVALID_VOLUME_SIZE",
        )


def check_block_write(snapshot: Snapshot, index: int, length: int, data_length: int) -> None:
    """The rules of PutSnapshotBlock that do not need the data itself."""
    if data_length != BLOCK_SIZE or length != BLOCK_SIZE:
        raise ServiceError(
            "ValidationException",
            f"A block must be exactly {BLOCK_SIZE} bytes; DataLength was {data_length} and the "
            f"body {length} bytes.",
            Reason="INVALID_BLOCK",
        )
    if index >= snapshot.blocks:
        raise ServiceError(
            "ValidationException",
            f"Block index {index} is beyond the end of the {snapshot.volume_size} GiB volume "
            f"(the last block index is {snapshot.blocks - 1}).",
            Reason="INVALID_BLOCK",
        )
    check_pending(snapshot)


def check_pending(snapshot: Snapshot) -> None:
    if snapshot.state != PENDING:
        raise ServiceError(
            "ValidationException",
            f"The snapshot {snapshot.snapshot_id} is {snapshot.state}: blocks can only be "
            "written to, and completed in, a pending snapshot.",
            Reason="INVALID_SNAPSHOT_ID",
        )


def check_readable(snapshot: Snapshot) -> None:
    if snapshot.state != COMPLETED:
        raise ServiceError(
            "ValidationException",
            f"The snapshot {snapshot.snapshot_id} is {snapshot.state}: blocks can be read only "
            "from completed snapshots.",
            Reason="INVALID_SNAPSHOT_ID",
        )


def idle_deadline(snapshot: Snapshot, now: dt.datetime) -> dt.datetime | None:
    """When an EBS-direct snapshot is cancelled if nothing more is written or completed."""
    if snapshot.timeout_minutes is None:
        return None
    return now + dt.timedelta(minutes=snapshot.timeout_minutes)


def progress_text(progress: int) -> str:
    return f"{progress}%"
