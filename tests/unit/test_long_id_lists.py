"""Id lists longer than one SQL statement can bind (SQLite: 32766 parameters) are read in
slices: a Describe with that many ids, or a page that many rows long, must not fail."""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import event

from snapferry.config import Settings
from snapferry.domain.volumes import Volume
from snapferry.storage import volumes as volume_store
from snapferry.storage.datadir import Storage, open_storage
from snapferry.storage.tagstore import set_tags, tags_of

MORE_THAN_ONE_STATEMENT_BINDS = 40_000


@pytest.fixture
def storage(tmp_path: Path) -> Iterator[Storage]:
    opened = open_storage(Settings(data_dir=tmp_path / "data"))

    def default_limit(connection: sqlite3.Connection, _: object) -> None:
        # SQLite's compiled-in default; some distributions build with more (Debian: 250000).
        connection.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 32766)

    event.listen(opened.engine, "connect", default_limit)
    opened.engine.dispose()  # new connections get the limit
    yield opened
    opened.close()


def test_tags_of_any_number_of_resources(storage: Storage) -> None:
    ids = [f"vol-{i:017x}" for i in range(MORE_THAN_ONE_STATEMENT_BINDS)]
    with storage.engine.begin() as conn:
        set_tags(conn, ids[-1], "volume", "000000000000", "us-east-1", {"k": "v"})
        found = tags_of(conn, ids)
    assert len(found) == len(ids)
    assert found[ids[-1]] == {"k": "v"} and found[ids[0]] == {}


def test_describe_volumes_by_any_number_of_ids(storage: Storage) -> None:
    volume = Volume(volume_id="vol-0000000000000abcd", account_id="000000000000",
                    region="us-east-1", availability_zone="us-east-1a", size=1,
                    volume_type="gp2", snapshot_id="", state="available", encrypted=False,
                    lineage_id="l", create_time=dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    ids = [f"vol-{i:017x}" for i in range(MORE_THAN_ONE_STATEMENT_BINDS)] + [volume.volume_id]
    with storage.engine.begin() as conn:
        volume_store.insert_volume(conn, volume)
        found, last = volume_store.describe_volumes(conn, "000000000000", "us-east-1",
                                                    [*ids, *ids[:10]], None, None, None)
    assert [v.volume_id for v in found] == [volume.volume_id] and last is None
