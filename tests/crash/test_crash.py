"""A short kill -9 run in `make test` (the long one is `make crash`; tests/crash/harness.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from .harness import Harness

pytestmark = pytest.mark.long(seconds=70)  # scheduled first: tests/conftest.py


def test_a_few_kill_cycles_lose_nothing_and_leave_nothing(tmp_path: Path) -> None:
    figures = Harness(tmp_path, seed=20261122).run(cycles=3)
    print(figures.report())
    assert figures.cycles == 3 and figures.snapshots_checked > 0
    assert figures.clean(), figures.report()
