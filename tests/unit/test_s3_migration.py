"""The S3 step of the schema: a database from before it gains the S3 tables, keeps its
data, and running the step again changes nothing (helpers' steps are renumbered at merge)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import insert, inspect, select

from snapferry.storage import metadata

S3_TABLES = {"s3_buckets", "s3_objects", "s3_uploads", "s3_parts"}


def test_a_database_without_s3_gains_its_tables(tmp_path: Path) -> None:
    engine = metadata.open_engine(metadata.sqlite_url(tmp_path))
    before = [t for t in metadata.metadata.sorted_tables if t.name not in S3_TABLES]
    with engine.begin() as conn:
        metadata.metadata.create_all(conn, tables=before)
        conn.execute(insert(metadata.schema_version).values(version=5))
        conn.execute(insert(metadata.accounts).values(
            account_id="123456789012", created_at=metadata.dt.datetime.now(metadata.dt.UTC)))
    metadata.migrate(engine, seed=lambda conn: pytest.fail("seeded an existing database"))
    with engine.begin() as conn:
        assert set(inspect(conn).get_table_names()) >= S3_TABLES
        assert conn.execute(select(metadata.accounts.c.account_id)).scalars().all() == [
            "123456789012"]
        step = next(s for s in metadata.MIGRATIONS.values() if s.__name__ == "_add_s3")
        step(conn)  # again: harmless
        assert set(inspect(conn).get_table_names()) >= S3_TABLES
    engine.dispose()
