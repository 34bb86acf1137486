"""Time is injected, so tests can move it (expiry, leases) without sleeping."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Protocol


class Clock(Protocol):
    def now(self) -> dt.datetime:
        """The current time, timezone-aware UTC."""
        ...


class SystemClock:
    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)


class ShiftedClock:
    """The system clock moved by `offset()` seconds: how a test moves a running server's
    time (`snapferry serve --clock-offset-file`), e.g. past a session's expiry, unslept."""

    def __init__(self, offset: Callable[[], float]) -> None:
        self._offset = offset

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC) + dt.timedelta(seconds=self._offset())
