"""Fixtures the unit tests share."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from snapferry.config import Settings
from snapferry.storage.datadir import Storage, open_storage


@pytest.fixture
def storage(tmp_path: Path) -> Iterator[Storage]:
    """A fresh data dir's storage (SQLite and files), closed after the test."""
    opened = open_storage(Settings(data_dir=tmp_path))
    yield opened
    opened.close()
