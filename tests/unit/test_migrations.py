"""Schema migration: a data dir made by an older snapferry opens with the new schema and
keeps its rows."""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path

import pytest
from sqlalchemy import insert, inspect, select, text

from snapferry.config import Settings
from snapferry.storage.datadir import open_storage
from snapferry.storage.metadata import (
    MIGRATIONS,
    SCHEMA_VERSION,
    kms_keys,
    pair_rates,
    schema_version,
)
from snapferry.testing import scaleout_settings

NOW = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """Migrations run on both engines."""
    if request.param == "sqlite":
        return Settings(data_dir=tmp_path)
    request.getfixturevalue("scaleout_engines")
    return scaleout_settings(tmp_path)


def _as_version_1(settings: Settings) -> None:
    """Turn a fresh data dir into what version 1 left: no rotation columns, one key."""
    storage = open_storage(settings)
    with storage.engine.begin() as conn:
        conn.execute(text("ALTER TABLE kms_keys DROP COLUMN rotation_period_days"))
        conn.execute(text("ALTER TABLE kms_keys DROP COLUMN next_rotation_date"))
        conn.execute(text("DROP TABLE pair_rates"))
        conn.execute(text(
            "INSERT INTO kms_keys (key_id, account_id, region, description, state, key_manager,"
            " creation_date, policy, material_sealed) VALUES ('k1', '000000000000', 'us-east-1',"
            " 'old', 'Enabled', 'CUSTOMER', '2026-11-01T00:00:00.000Z', '{}', :material)"),
            {"material": b"\0"})
        conn.execute(schema_version.update().values(version=1))
    storage.close()


def test_processes_starting_together_migrate_one_at_a_time(settings: Settings) -> None:
    """`serve --processes N` and workers all migrate at start: on one fresh database, every
    one succeeds, the schema is made once and the development account seeded once."""
    errors: list[BaseException] = []

    def start() -> None:
        try:
            open_storage(settings).close()
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert errors == []
    storage = open_storage(settings)
    try:
        with storage.engine.connect() as conn:
            assert conn.execute(select(schema_version.c.version)).scalars().all() == [
                SCHEMA_VERSION]
        assert len(storage.accounts.list()) == 1
    finally:
        storage.close()


def test_version_1_gains_key_rotation_and_keeps_its_keys(settings: Settings) -> None:
    _as_version_1(settings)
    storage = open_storage(settings)
    try:
        with storage.engine.begin() as conn:
            assert conn.execute(select(schema_version.c.version)).scalar() == SCHEMA_VERSION
            assert conn.execute(select(pair_rates)).all() == []  # made again by its step
            old = conn.execute(select(kms_keys).where(kms_keys.c.key_id == "k1")).one()
            assert (old.description, old.rotation_period_days, old.next_rotation_date) == (
                "old", None, None)
            conn.execute(insert(kms_keys).values(
                key_id="k2", account_id="000000000000", region="us-east-1", description="",
                state="Enabled", key_manager="CUSTOMER", creation_date=NOW, policy="{}",
                material_sealed=b"\0", rotation_period_days=90, next_rotation_date=NOW))
            new = conn.execute(select(kms_keys).where(kms_keys.c.key_id == "k2")).one()
            assert (new.rotation_period_days, new.next_rotation_date) == (90, NOW)
    finally:
        storage.close()


def test_version_9_copy_jobs_gain_a_kind(settings: Settings) -> None:
    """Step 10: copy jobs of an older data dir are snapshot copies (kind NULL); running the
    step again changes nothing."""
    storage = open_storage(settings)
    with storage.engine.begin() as conn:
        conn.execute(text("ALTER TABLE copy_jobs DROP COLUMN kind"))
        conn.execute(schema_version.update().values(version=9))
    storage.close()
    storage = open_storage(settings)
    try:
        with storage.engine.begin() as conn:
            assert conn.execute(select(schema_version.c.version)).scalar() == SCHEMA_VERSION
            columns = {c["name"] for c in inspect(conn).get_columns("copy_jobs")}
            assert "kind" in columns
            MIGRATIONS[10](conn)  # re-runnable
    finally:
        storage.close()
