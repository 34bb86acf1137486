"""The few statements every PutSnapshotBlock and GetSnapshotBlock runs, as plain SQL on the
driver's cursor.

Why not SQLAlchemy Core as everywhere else: building, caching and binding a Core statement
costs 100-400 µs of CPU per statement (measured with bench/profile_blocks.py), and a block
write runs six of them; the driver alone takes about a tenth of that. The SQL below is the
same on SQLite and PostgreSQL (both have INSERT ... ON CONFLICT); only the parameter marker
differs. Values are passed as the columns store them (times as IsoTime's text), so these rows
read back through the Core tables exactly like rows written through them.

Errors: the driver's own exceptions (sqlite3.OperationalError "database is locked",
psycopg's on a restart) are raised as SQLAlchemy's, exactly as a Core statement would raise
them, so the server's engine-outage rule (storage/engines.py: 503 ServiceUnavailable, which
SDKs retry) and the copier's treat them alike; a bare driver error would be a 500.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from functools import cache
from typing import Any

from sqlalchemy import exc
from sqlalchemy.engine import Connection

from snapferry.domain.snapshots import Snapshot
from snapferry.wire.shapes import iso8601

# The snapshot row as storage/snapshots.py's Core query reads it: these columns (named as
# Snapshot's fields), then the IsoTime columns parsed and the boolean made one.
_SNAPSHOT_FIELDS = tuple(field.name for field in dataclasses.fields(Snapshot))
_TIMES = {"start_time", "completion_time", "expires_at"}
_TIME_AT = tuple(i for i, name in enumerate(_SNAPSHOT_FIELDS) if name in _TIMES)
_ENCRYPTED_AT = _SNAPSHOT_FIELDS.index("encrypted")

_SQL = {
    "intent": "INSERT INTO block_intents (block_id, written_at) VALUES (?, ?) "
              "ON CONFLICT (block_id) DO UPDATE SET written_at = excluded.written_at",
    "retire": "DELETE FROM block_intents WHERE block_id = ? AND written_at = ?",
    "block": "INSERT INTO blocks (block_id, size) VALUES (?, ?) "
             "ON CONFLICT (block_id) DO UPDATE SET size = excluded.size",
    "manifest": "INSERT INTO manifests (resource_id, block_index, block_id, sha256, written) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (resource_id, block_index) DO UPDATE SET "
                "block_id = excluded.block_id, sha256 = excluded.sha256, "
                "written = excluded.written",
    "ref": "SELECT block_id, sha256 FROM manifests WHERE resource_id = ? AND block_index = ?",
    "relax": "SET LOCAL synchronous_commit TO OFF",
    "snapshot": f"SELECT {', '.join(_SNAPSHOT_FIELDS)} FROM snapshots "
                "WHERE snapshot_id = ? AND region = ?",
    "touch": "UPDATE snapshots SET expires_at = ? WHERE snapshot_id = ? AND state = ?",
    "touch_progress": "UPDATE snapshots SET expires_at = ?, progress = ? "
                      "WHERE snapshot_id = ? AND state = ?",
}


@cache
def _statements(paramstyle: str) -> dict[str, str]:
    if paramstyle == "qmark":
        return _SQL
    assert paramstyle in ("format", "pyformat"), paramstyle  # psycopg
    return {name: sql.replace("?", "%s") for name, sql in _SQL.items()}


def _run(conn: Connection, name: str, params: Sequence[Any]) -> Any:
    """Execute on the connection's own driver connection, inside whatever transaction the
    Connection holds; one is begun if none is, so that the Connection commits or rolls it
    back as usual (a raw statement alone would leave the driver's transaction to nobody)."""
    if not conn.in_transaction():
        conn.begin()
    sql = _statements(conn.dialect.paramstyle)[name]
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(sql, params)
    except conn.dialect.loaded_dbapi.Error as error:
        raise _wrapped(conn, sql, params, error) from error
    return cursor


def _wrapped(conn: Connection, sql: str, params: Sequence[Any],
             error: Exception) -> exc.DBAPIError:
    """The driver's error as SQLAlchemy raises it for a Core statement (OperationalError for
    "database is locked", IntegrityError for a constraint, ...)."""
    return exc.DBAPIError.instance(sql, params, error, conn.dialect.loaded_dbapi.Error,
                                   hide_parameters=True, dialect=conn.dialect)


def relax(conn: Connection, relaxed: bool) -> None:
    """Commits on this connection without (relaxed) or with a flush of the log of their own.
    SQLite: a connection setting, to be set back before the connection is pooled again;
    PostgreSQL: for the current transaction only (relaxed=False is then a no-op)."""
    if conn.dialect.name == "sqlite":
        assert not conn.in_transaction()  # SQLite ignores the pragma inside a transaction
        pragma = "PRAGMA synchronous=NORMAL" if relaxed else "PRAGMA synchronous=FULL"
        try:
            conn.connection.dbapi_connection.execute(pragma)  # type: ignore[union-attr]
        except conn.dialect.loaded_dbapi.Error as error:
            raise _wrapped(conn, pragma, (), error) from error
    elif relaxed:
        _run(conn, "relax", ())


def stamp(at: dt.datetime) -> str:
    """A time as block_intents.written_at stores it."""
    return iso8601(at)


def touch_intent(conn: Connection, block_id: str, written_at: dt.datetime) -> None:
    _run(conn, "intent", (block_id, stamp(written_at)))


def retire_intent(conn: Connection, block_id: str, written_at: dt.datetime) -> None:
    _run(conn, "retire", (block_id, stamp(written_at)))


def put_block(conn: Connection, resource_id: str, index: int, block_id: str, sha256: bytes,
              size: int) -> None:
    """storage/manifests.put_block for one written block: its block row, then its manifest
    row."""
    _run(conn, "block", (block_id, size))
    _run(conn, "manifest", (resource_id, index, block_id, sha256, True))


def snapshot(conn: Connection, region: str, snapshot_id: str) -> Snapshot | None:
    """storage/snapshots.get_snapshot in one plain statement: every EBS direct call reads its
    snapshot, and the Core row processing cost more than the query."""
    row = _run(conn, "snapshot", (snapshot_id, region)).fetchone()
    if row is None:
        return None
    values = list(row)
    for at in _TIME_AT:
        if values[at] is not None:
            values[at] = dt.datetime.fromisoformat(values[at])  # as IsoTime reads it
    values[_ENCRYPTED_AT] = bool(values[_ENCRYPTED_AT])
    return Snapshot(*values)


def block_ref(conn: Connection, resource_id: str, index: int) -> tuple[str, bytes] | None:
    row = _run(conn, "ref", (resource_id, index)).fetchone()
    return (row[0], bytes(row[1])) if row else None


def touch_pending(conn: Connection, snapshot_id: str, expires_at: dt.datetime | None,
                  progress: int | None, pending: str) -> bool:
    """Move a pending snapshot's idle deadline (and progress); False when it is no longer
    pending. Being a write, it holds the row until commit."""
    deadline = iso8601(expires_at) if expires_at is not None else None
    if progress is None:
        cursor = _run(conn, "touch", (deadline, snapshot_id, pending))
    else:
        cursor = _run(conn, "touch_progress", (deadline, progress, snapshot_id, pending))
    return bool(cursor.rowcount == 1)
