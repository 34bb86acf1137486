"""What operators watch: copy jobs by state, bytes moved, full and incremental copies.
Served at GET /metrics in Prometheus' text format, and listed by `snapferry copies`."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select

from snapferry.domain.copies import CopyJob
from snapferry.storage.datadir import Storage
from snapferry.storage.metadata import copy_jobs


def metrics_text(storage: Storage) -> str:
    with storage.engine.connect() as conn:
        rows = conn.execute(
            select(copy_jobs.c.state, copy_jobs.c.mode, func.count(),
                   func.coalesce(func.sum(copy_jobs.c.bytes_moved), 0))
            .group_by(copy_jobs.c.state, copy_jobs.c.mode)).all()
    lines = [
        "# HELP snapferry_copy_jobs Snapshot copy jobs by state and mode.",
        "# TYPE snapferry_copy_jobs gauge",
    ]
    lines += [f'snapferry_copy_jobs{{state="{s}",mode="{m or "unplanned"}"}} {n}'
              for s, m, n, _ in rows]
    lines += [
        "# HELP snapferry_copy_bytes_moved Bytes written by snapshot copies, by mode.",
        "# TYPE snapferry_copy_bytes_moved counter",
    ]
    lines += [f'snapferry_copy_bytes_moved{{state="{s}",mode="{m or "unplanned"}"}} {b}'
              for s, m, _, b in rows]
    return "\n".join(lines) + "\n"


def rate_text(job: CopyJob, now: dt.datetime) -> str:
    if job.started_at is None or not job.bytes_moved:
        return "-"
    seconds = ((job.finished_at or now) - job.started_at).total_seconds()
    return f"{job.bytes_moved / max(seconds, 1e-3) / 2**20:.1f} MiB/s"
