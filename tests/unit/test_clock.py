"""The clocks (domain/clock.py): the system's, timezone-aware UTC, and the shifted one a test
server runs on (`--clock-offset-file`), moved by the offset read at each call."""

from __future__ import annotations

import datetime as dt

from snapferry.domain.clock import ShiftedClock, SystemClock

SLACK = dt.timedelta(seconds=5)  # between two reads of the system clock on a loaded machine


def test_the_system_clock_is_utc_now() -> None:
    before = dt.datetime.now(dt.UTC)
    now = SystemClock().now()
    after = dt.datetime.now(dt.UTC)
    assert now.utcoffset() == dt.timedelta(0)
    assert before <= now <= after


def test_a_shifted_clock_is_the_system_clock_moved_by_its_offset() -> None:
    for seconds in (0.0, 1.5, 3600.0, 86400.0 * 400, -7200.0):
        before = dt.datetime.now(dt.UTC)
        now = ShiftedClock(lambda seconds=seconds: seconds).now()
        after = dt.datetime.now(dt.UTC)
        shift = dt.timedelta(seconds=seconds)
        assert now.utcoffset() == dt.timedelta(0)
        assert before + shift <= now <= after + shift, seconds


def test_a_shifted_clock_reads_its_offset_at_every_call() -> None:
    offsets = iter([0.0, 3600.0, 60.0])
    clock = ShiftedClock(lambda: next(offsets))
    first, second, third = clock.now(), clock.now(), clock.now()
    assert dt.timedelta(seconds=3600) <= second - first <= dt.timedelta(seconds=3600) + SLACK
    assert dt.timedelta(seconds=-3540) <= third - second <= dt.timedelta(seconds=-3540) + SLACK
