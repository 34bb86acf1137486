"""CopySnapshot: the rules of the request, and what a copy job is.

A copy is answered at once: the request is checked synchronously (everything that needs no
key and no signature), then a `pending` snapshot and a durable job are written together.
The engine (engine/copier.py) then does what AWS does asynchronously: resolves and checks
the KMS keys, verifies the PresignedUrl, moves the blocks, and ends the snapshot
`completed` or `error` with a StateMessage.

Full, incremental or shared, decided when the job starts:
- shared: same account and region, same encryption -> the copy joins the source's lineage
  and every block is already there (nothing moves);
- incremental: the most recent copy of this lineage to this account and region still
  exists under the same key -> the copy joins that copy's lineage, starts from that copy's
  block map, and walks only the blocks that changed since that copy's source (or, when that
  source is gone, every block, moving only those the destination lacks);
- full: otherwise, into a new lineage (a new data key when encrypted).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from snapferry.errors import ServiceError

QUEUED, RUNNING, COMPLETED, FAILED = "queued", "running", "completed", "failed"
OPEN_STATES = (QUEUED, RUNNING)
FULL, INCREMENTAL, SHARED = "full", "incremental", "shared"
STANDARD, TIME_BASED = "standard", "time-based"
KEY_NOT_ACCESSIBLE = "Given key ID is not accessible"
DURATION_STEP, DURATION_MIN, DURATION_MAX = 15, 15, 2880


@dataclass
class CopyJob:
    job_id: str
    snapshot_id: str
    account_id: str
    access_key_id: str
    dest_region: str
    source_region: str
    source_snapshot_id: str
    source_lineage_id: str
    state: str
    cursor: int
    blocks_done: int
    bytes_moved: int
    fencing: int
    created_at: dt.datetime
    encrypted: bool | None = None
    kms_key_text: str | None = None
    presigned_url: str | None = None
    destination_region_param: str | None = None
    message: str | None = None
    mode: str | None = None
    dest_lineage_id: str | None = None
    dest_key_arn: str | None = None
    base_source_snapshot_id: str | None = None
    blocks_total: int | None = None
    lease_owner: str | None = None
    lease_expires: dt.datetime | None = None
    deadline: dt.datetime | None = None
    started_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None
    kind: str | None = None  # None: a snapshot copy; BUNDLE: an instance-store image's objects


BUNDLE = "bundle"


class CopyFailed(Exception):
    """Ends a copy in `error`; the message becomes the snapshot's StateMessage."""


def check_duration(minutes: int | None) -> None:
    if minutes is None:
        return
    if not DURATION_MIN <= minutes <= DURATION_MAX or minutes % DURATION_STEP:
        raise ServiceError(
            "InvalidParameterValue",
            f"CompletionDurationMinutes must be a multiple of {DURATION_STEP} from "
            f"{DURATION_MIN} to {DURATION_MAX} (15 minutes to 48 hours); {minutes} was given.",
        )


def check_not_decrypting(source_encrypted: bool, encrypted: bool | None) -> None:
    if source_encrypted and encrypted is False:
        raise ServiceError(
            "InvalidParameterValue",
            "The parameter encrypted=false is invalid: you cannot create an unencrypted copy "
            "of an encrypted snapshot.",
        )


def progress(blocks_done: int, blocks_total: int | None) -> int:
    """Percent done, never 100 before the copy has completed."""
    if not blocks_total:
        return 0
    return min(99, blocks_done * 100 // blocks_total)
