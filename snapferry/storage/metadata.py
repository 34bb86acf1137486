"""The metadata database: schema, engine set-up, and migration on start.

SQLite (WAL) in the data dir by default; any SQLAlchemy URL (PostgreSQL) at scale. The
schema is SQLAlchemy Core tables; `migrate` creates what is missing and records the
version, and later versions add numbered steps to MIGRATIONS.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from sqlalchemy import (
    Column,
    DateTime,
    Engine,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    create_engine,
    event,
    insert,
    select,
)
from sqlalchemy.engine import Connection

SCHEMA_VERSION = 1
DATABASE_FILE = "metadata.sqlite3"

metadata = MetaData()

schema_version = Table(
    "schema_version",
    metadata,
    Column("version", Integer, primary_key=True),
)

accounts = Table(
    "accounts",
    metadata,
    Column("account_id", String(12), primary_key=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

access_keys = Table(
    "access_keys",
    metadata,
    Column("access_key_id", String(128), primary_key=True),
    Column("account_id", String(12), ForeignKey("accounts.account_id"), nullable=False),
    Column("secret_sealed", LargeBinary, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# version -> step run inside the migration transaction to reach it from the one before.
MIGRATIONS: dict[int, Callable[[Connection], None]] = {}


def sqlite_url(data_dir: Path) -> str:
    return f"sqlite:///{data_dir / DATABASE_FILE}"


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def open_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True)


def migrate(engine: Engine, seed: Callable[[Connection], None]) -> None:
    """Bring the schema to SCHEMA_VERSION; `seed` runs once, when the schema is first made."""
    with engine.begin() as conn:
        metadata.create_all(conn)
        current = conn.execute(select(schema_version.c.version)).scalar()
        if current is None:
            seed(conn)
            conn.execute(insert(schema_version).values(version=SCHEMA_VERSION))
            return
        for version in range(current + 1, SCHEMA_VERSION + 1):
            MIGRATIONS[version](conn)
        if current < SCHEMA_VERSION:
            conn.execute(schema_version.update().values(version=SCHEMA_VERSION))
