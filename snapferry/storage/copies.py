"""Copy jobs: written with their pending snapshot, claimed under a lease with a fencing
number, checkpointed by their worker, listed for operators."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from sqlalchemy import func, insert, or_, select, update
from sqlalchemy.engine import Connection

from snapferry.domain.copies import COMPLETED, OPEN_STATES, RUNNING, CopyJob
from snapferry.storage.faults import count_event
from snapferry.storage.metadata import copy_jobs, serialize, snapshots

_FIELDS = [f.name for f in dataclasses.fields(CopyJob)]
j = copy_jobs.c
LEASE_TAKEOVERS = "lease_takeovers"  # an event count (metrics)


def _job(row: Any) -> CopyJob:
    return CopyJob(**{name: row._mapping[name] for name in _FIELDS})


def insert_job(conn: Connection, job: CopyJob) -> None:
    conn.execute(insert(copy_jobs).values(**dataclasses.asdict(job)))


def get_job(conn: Connection, job_id: str) -> CopyJob | None:
    row = conn.execute(select(copy_jobs).where(j.job_id == job_id)).first()
    return _job(row) if row else None


def job_for_snapshot(conn: Connection, snapshot_id: str) -> CopyJob | None:
    row = conn.execute(select(copy_jobs).where(j.snapshot_id == snapshot_id)).first()
    return _job(row) if row else None


def open_jobs(conn: Connection, account_id: str, region: str) -> int:
    """Unfinished copies to this account and region. Takes the account and region's copy
    lock first, held to the end of the transaction: a quota check followed by an insert in
    the same transaction holds across processes (two API processes never both see 19)."""
    serialize(conn, "copies", account_id, region)
    return conn.execute(select(func.count()).where(
        j.account_id == account_id, j.dest_region == region, j.state.in_(OPEN_STATES),
        j.kind.is_(None))  # snapshot copies only: bundle copies count as image copies
    ).scalar_one()


def copying_from(conn: Connection, snapshot_id: str) -> bool:
    """Whether an unfinished copy still reads this snapshot."""
    return conn.execute(select(j.job_id).where(
        j.source_snapshot_id == snapshot_id, j.state.in_(OPEN_STATES))).first() is not None


def claim(conn: Connection, owner: str, now: dt.datetime, lease: dt.timedelta
          ) -> CopyJob | None:
    """Take the next job whose lease is free: time-based copies by deadline first, then
    oldest first; never a job while an older copy of the same lineage to the same
    destination is unfinished (AWS: the second starts after the first finishes)."""
    free = or_(j.lease_expires.is_(None), j.lease_expires < now)
    # PostgreSQL: rows another worker is claiming right now are skipped, not waited for
    # (FOR UPDATE SKIP LOCKED); the fencing number in the UPDATE below is the guarantee on
    # every engine (SQLite ignores the locking clause; its one writer serializes claims).
    candidates = conn.execute(
        select(copy_jobs).where(j.state.in_(OPEN_STATES), free)
        .order_by(j.deadline.is_(None), j.deadline, j.created_at).limit(20)
        .with_for_update(skip_locked=True)
    ).all()
    for row in candidates:
        job = _job(row)
        earlier = conn.execute(select(j.job_id).where(
            j.source_lineage_id == job.source_lineage_id, j.account_id == job.account_id,
            j.dest_region == job.dest_region, j.state.in_(OPEN_STATES),
            j.created_at < job.created_at)).first()
        if earlier is not None:
            continue
        taken = conn.execute(update(copy_jobs).where(
            j.job_id == job.job_id, j.fencing == job.fencing, j.state.in_(OPEN_STATES)
        ).values(state=RUNNING, lease_owner=owner, lease_expires=now + lease,
                 fencing=job.fencing + 1, started_at=job.started_at or now)).rowcount
        if taken:
            if job.lease_owner is not None:  # released leases drop their owner (copier)
                count_event(conn, LEASE_TAKEOVERS)
            job.state, job.lease_owner, job.fencing = RUNNING, owner, job.fencing + 1
            job.started_at = job.started_at or now
            return job
    return None


def checkpoint(conn: Connection, job: CopyJob, now: dt.datetime, lease: dt.timedelta,
               **values: Any) -> bool:
    """Record progress and renew the lease, only while this worker still holds the job
    (same fencing number, still running). False: the job was taken over or cancelled, and
    the caller must stop and roll back."""
    return conn.execute(update(copy_jobs).where(
        j.job_id == job.job_id, j.fencing == job.fencing, j.state == RUNNING
    ).values(lease_expires=now + lease, **values)).rowcount == 1


def finish(conn: Connection, job: CopyJob, state: str, now: dt.datetime,
           message: str | None = None) -> bool:
    return conn.execute(update(copy_jobs).where(
        j.job_id == job.job_id, j.fencing == job.fencing, j.state == RUNNING
    ).values(state=state, message=message, finished_at=now, lease_owner=None,
             lease_expires=None)).rowcount == 1


def cancel(conn: Connection, snapshot_id: str, now: dt.datetime, message: str) -> None:
    """End an unfinished job whatever worker holds it (its next checkpoint will fail)."""
    conn.execute(update(copy_jobs).where(j.snapshot_id == snapshot_id, j.state.in_(OPEN_STATES))
                 .values(state="failed", message=message, finished_at=now, lease_owner=None,
                         lease_expires=None))


def latest_copy(conn: Connection, source_lineage_id: str, account_id: str, region: str,
                before: dt.datetime) -> tuple[CopyJob, bool] | None:
    """The most recent completed copy of a lineage to an account and region, and whether
    its snapshot still exists (AWS: if it was deleted, the next copy is full)."""
    row = conn.execute(select(copy_jobs).where(
        j.source_lineage_id == source_lineage_id, j.account_id == account_id,
        j.dest_region == region, j.state == COMPLETED, j.created_at < before)
        .order_by(j.finished_at.desc()).limit(1)).first()
    if row is None:
        return None
    job = _job(row)
    # FOR SHARE: the previous copy cannot be deleted (DeleteSnapshot deletes this row)
    # until the caller's transaction, which starts from its block map, commits. Under READ
    # COMMITTED a delete committed just before would otherwise leave an incremental copy
    # starting from an empty map.
    exists = conn.execute(select(snapshots.c.snapshot_id).where(
        snapshots.c.snapshot_id == job.snapshot_id).with_for_update(read=True)
    ).first() is not None
    return job, exists


def list_jobs(conn: Connection, limit: int = 1000) -> list[CopyJob]:
    return [_job(r) for r in conn.execute(
        select(copy_jobs).order_by(j.created_at.desc()).limit(limit))]
