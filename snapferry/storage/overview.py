"""What the copies page (snapferry/web/) shows of one account: its snapshots, images and copy
jobs in every region, newest first. Every query here is bounded by the account id, so no
other account's resource can reach the page."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.engine import Connection

from snapferry.domain.copies import BUNDLE, CopyJob
from snapferry.domain.images import Image
from snapferry.domain.snapshots import Snapshot
from snapferry.storage.copies import _job
from snapferry.storage.images import _images
from snapferry.storage.metadata import copy_jobs, image_block_devices, images, snapshots
from snapferry.storage.snapshots import _snapshot

# The page lists this many of each, newest first: enough to watch, cheap to poll each second.
LIMIT = 200
DEREGISTERED = "deregistered"


@dataclass
class Overview:
    snapshots: list[Snapshot] = field(default_factory=list)
    images: list[Image] = field(default_factory=list)
    copies: list[CopyJob] = field(default_factory=list)  # snapshot and bundle copy jobs
    # image copy id -> the copy jobs of its snapshots (any state)
    image_copy_jobs: dict[str, list[CopyJob]] = field(default_factory=dict)


def account_overview(conn: Connection, account_id: str, limit: int = LIMIT) -> Overview:
    found = Overview()
    found.snapshots = [_snapshot(row) for row in conn.execute(
        select(snapshots).where(snapshots.c.account_id == account_id)
        .order_by(snapshots.c.start_time.desc(), snapshots.c.snapshot_id).limit(limit))]
    found.images = _images(conn, list(conn.execute(
        select(images).where(images.c.account_id == account_id,
                             images.c.state != DEREGISTERED)
        .order_by(images.c.creation_date.desc(), images.c.image_id).limit(limit))))
    found.copies = [_job(row) for row in conn.execute(
        select(copy_jobs).where(copy_jobs.c.account_id == account_id)
        .order_by(copy_jobs.c.created_at.desc(), copy_jobs.c.snapshot_id).limit(limit))]
    copied = [image.image_id for image in found.images if image.source_image_id]
    if copied:
        # An EBS-backed image's copy is its snapshots' copies (found through its mappings);
        # an instance-store image's is one bundle job, whose destination is the image itself.
        rows = conn.execute(
            select(image_block_devices.c.image_id, copy_jobs)
            .join(copy_jobs, copy_jobs.c.snapshot_id == image_block_devices.c.snapshot_id)
            .where(image_block_devices.c.image_id.in_(copied),
                   copy_jobs.c.account_id == account_id).distinct())
        for row in rows:
            found.image_copy_jobs.setdefault(row.image_id, []).append(_job(row))
        for row in conn.execute(select(copy_jobs).where(
                copy_jobs.c.snapshot_id.in_(copied), copy_jobs.c.kind == BUNDLE,
                copy_jobs.c.account_id == account_id)):
            found.image_copy_jobs.setdefault(row.snapshot_id, []).append(_job(row))
    return found
