"""The copies page's figures: percent, rate and time left, for a copy and an image copy."""

from __future__ import annotations

import dataclasses
import datetime as dt

from snapferry.domain.copies import CopyJob
from snapferry.web.figures import duration_text, figures

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
MIB = 1024 * 1024


def job(**fields: object) -> CopyJob:
    base = CopyJob(job_id="j", snapshot_id="snap-d", account_id="1", access_key_id="k",
                   dest_region="r", source_region="s", source_snapshot_id="snap-s",
                   source_lineage_id="l", state="running", cursor=0, blocks_done=0,
                   bytes_moved=0, fencing=0, created_at=T0)
    return dataclasses.replace(base, **fields)  # type: ignore[arg-type]


def test_a_running_copy_has_a_rate_and_time_left_at_its_pace() -> None:
    running = job(blocks_total=100, blocks_done=25, bytes_moved=25 * MIB // 2, started_at=T0)
    found = figures([running], T0 + dt.timedelta(seconds=10))
    assert (found.percent, found.rate, found.eta) == (25, "1.2 MiB/s", "30 s")


def test_queued_completed_and_failed_copies() -> None:
    assert figures([job(state="queued")], T0) == figures([], T0)
    assert figures([job(state="queued")], T0).percent is None
    done = job(state="completed", blocks_total=4, blocks_done=4, bytes_moved=4 * MIB,
               started_at=T0, finished_at=T0 + dt.timedelta(seconds=2))
    assert figures([done], T0 + dt.timedelta(hours=1)) == figures(
        [done], T0 + dt.timedelta(seconds=2))
    assert (figures([done], T0).percent, figures([done], T0).eta) == (100, "done")
    assert figures([done], T0).rate == "2.0 MiB/s"  # over its own duration, not until now
    failed = dataclasses.replace(done, state="failed", blocks_done=2)
    assert (figures([failed], T0).percent, figures([failed], T0).eta) == (50, "-")


def test_an_image_copy_sums_its_snapshots_copies() -> None:
    first = job(blocks_total=10, blocks_done=10, bytes_moved=10, started_at=T0,
                state="completed", finished_at=T0 + dt.timedelta(seconds=5))
    second = job(blocks_total=30, blocks_done=10, bytes_moved=10,
                 started_at=T0 + dt.timedelta(seconds=5))
    found = figures([first, second], T0 + dt.timedelta(seconds=10))
    assert (found.percent, found.eta) == (50, "10 s")
    assert figures([first, job(state="queued")], T0).percent is None


def test_durations_read_as_people_say_them() -> None:
    assert [duration_text(s) for s in (0, 59.4, 61, 3600, 7325)] == [
        "0 s", "59 s", "1 min 1 s", "1 h 0 min", "2 h 2 min"]
