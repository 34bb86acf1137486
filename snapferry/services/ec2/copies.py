"""CopySnapshot: checked at once, answered at once, carried out by the copy engine."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy.engine import Connection

from snapferry.domain import copies as rules
from snapferry.domain import ids, regions
from snapferry.domain import snapshots as snapshot_rules
from snapferry.domain.copies import CopyJob
from snapferry.domain.encryption import kms_key_needs_encrypted
from snapferry.domain.snapshots import Snapshot
from snapferry.domain.tags import as_list, tags_for
from snapferry.errors import ServiceError
from snapferry.services.context import Output, RequestContext
from snapferry.storage import copies as job_store
from snapferry.storage import snapshots as store
from snapferry.storage.tagstore import set_tags


def copy_snapshot(ctx: RequestContext, params: dict[str, Any]) -> Output:
    source_region = params["SourceRegion"]
    if not regions.is_region(source_region):
        raise ServiceError(
            "InvalidRegion",
            f"The specified AWS Region is not valid ('{source_region[:50]}'). For copying a "
            "snapshot or image, specify the source Region using its Region code, for example, "
            "us-west-2.")
    source_id = ids.check_id("snap", params["SourceSnapshotId"])
    encrypted, kms_key = params.get("Encrypted"), params.get("KmsKeyId")
    kms_key_needs_encrypted(encrypted, kms_key)
    tags = tags_for(params.get("TagSpecifications"), "snapshot")
    duration = params.get("CompletionDurationMinutes")
    rules.check_duration(duration)
    if params.get("DestinationOutpostArn") or params.get("DestinationAvailabilityZone"):
        raise ServiceError("UnsupportedOperation", "snapferry has no Outposts or Local Zones: "
                           "copies go to the region of the endpoint you call.")
    with ctx.storage.engine.begin() as conn:
        source = store.get_snapshot(conn, source_region, source_id)
        if source is None or not store.can_restore(conn, source, ctx.account_id):
            raise snapshot_rules.not_found(source_id)
        if source.state != snapshot_rules.COMPLETED:
            raise ServiceError("IncorrectState", f"Snapshot '{source_id}' is not 'completed'.")
        rules.check_not_decrypting(source.encrypted, encrypted)
        quota = ctx.settings.copies.quota
        if job_store.open_jobs(conn, ctx.account_id, ctx.region) >= quota:
            raise ServiceError(
                "ResourceLimitExceeded",
                f"You have exceeded an Amazon EC2 resource limit: at most {quota} snapshot "
                f"copies can be in progress for your account in {ctx.region}. Wait for some to "
                "finish.")
        ctx.authorize()
        snapshot = queue_copy(ctx, conn, source, description=params.get("Description", ""),
                              encrypted=encrypted, kms_key=kms_key, tags=tags,
                              duration=duration, presigned_url=params.get("PresignedUrl"),
                              destination_region_param=params.get("DestinationRegion"))
    ctx.wake_copiers()
    return {"SnapshotId": snapshot.snapshot_id, "Tags": as_list(tags)}


def queue_copy(ctx: RequestContext, conn: Connection, source: Snapshot, *, description: str,
               encrypted: bool | None, kms_key: str | None, tags: dict[str, str],
               duration: int | None = None, presigned_url: str | None = None,
               destination_region_param: str | None = None) -> Snapshot:
    """Write a `pending` copy of a checked source in the caller's region, and its job, in
    the caller's transaction: CopySnapshot's, or CopyImage's (one per backing snapshot)."""
    now = ctx.clock.now()
    snapshot = Snapshot(
        snapshot_id=ids.new_id("snap"),
        account_id=ctx.account_id,
        region=ctx.region,
        volume_id=snapshot_rules.COPY_VOLUME_ID,
        volume_size=source.volume_size,
        state=snapshot_rules.PENDING,
        progress=0,
        start_time=now,
        description=description,
        encrypted=source.encrypted or bool(encrypted),
        lineage_id="",  # decided when the copy starts (full, incremental or shared)
        origin=snapshot_rules.ORIGIN_COPY,
        transfer_type=rules.TIME_BASED if duration else rules.STANDARD,
        completion_duration_minutes=duration,
    )
    store.insert_snapshot(conn, snapshot)
    set_tags(conn, snapshot.snapshot_id, "snapshot", ctx.account_id, ctx.region, tags)
    job_store.insert_job(conn, CopyJob(
        job_id=str(uuid.uuid4()),
        snapshot_id=snapshot.snapshot_id,
        account_id=ctx.account_id,
        access_key_id=ctx.principal.access_key_id,
        dest_region=ctx.region,
        source_region=source.region,
        source_snapshot_id=source.snapshot_id,
        source_lineage_id=source.lineage_id,
        state=rules.QUEUED,
        cursor=0,
        blocks_done=0,
        bytes_moved=0,
        fencing=0,
        created_at=now,
        encrypted=encrypted,
        kms_key_text=kms_key,
        presigned_url=presigned_url,
        destination_region_param=destination_region_param,
        deadline=now + dt.timedelta(minutes=duration) if duration else None,
    ))
    return snapshot


HANDLERS = {"CopySnapshot": copy_snapshot}
