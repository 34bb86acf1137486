"""The numbers the copies page shows for a copy: percent done, rate and time left. A copy of an
image is the sum of its snapshots' copies."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from snapferry.domain.copies import COMPLETED, CopyJob
from snapferry.domain.copies import progress as percent_of

MIB = 1024 * 1024


@dataclass(frozen=True)
class Figures:
    percent: int | None  # None: not planned yet (no total), shown as indeterminate
    rate: str  # bytes moved per second so far, e.g. "12.5 MiB/s", or "-"
    eta: str  # time left at the pace so far, e.g. "1 min 5 s", "done", or "-"


def duration_text(seconds: float) -> str:
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


def figures(jobs: list[CopyJob], now: dt.datetime) -> Figures:
    """The figures of one copy (one job) or of an image copy (its snapshots' jobs)."""
    if jobs and all(job.state == COMPLETED for job in jobs):
        percent: int | None = 100
    elif not jobs or any(job.blocks_total is None for job in jobs):
        percent = None
    else:
        percent = percent_of(sum(job.blocks_done for job in jobs),
                             sum(job.blocks_total or 0 for job in jobs))
    starts = [job.started_at for job in jobs if job.started_at is not None]
    if not starts:
        return Figures(percent, "-", "-")
    finished = all(job.finished_at is not None for job in jobs)
    end = max(job.finished_at or now for job in jobs) if finished else now
    elapsed = max((end - min(starts)).total_seconds(), 1e-3)
    moved = sum(job.bytes_moved for job in jobs)
    rate = f"{moved / elapsed / MIB:.1f} MiB/s" if moved else "-"
    if percent == 100:
        return Figures(percent, rate, "done")
    if finished:
        return Figures(percent, rate, "-")  # ended without completing: no time left to tell
    done = sum(job.blocks_done for job in jobs)
    total = sum(job.blocks_total or 0 for job in jobs)
    if not done or percent is None:
        return Figures(percent, rate, "-")
    return Figures(percent, rate, duration_text(elapsed * (total - done) / done))
