"""Volumes being created (their blocks encrypted anew inside a CreateVolume request): which
are still in the hands of a live process, and which a dead one left `creating`.

PostgreSQL: the process creating a volume holds a session advisory lock named after it, on
a connection of its own, from before the `creating` row commits until the volume's state is
final; the database drops the lock when that process, or its machine, dies. Any process
tries the lock to tell a live creation from an abandoned one: an API machine that starts
never fails a volume another live machine is creating. SQLite: one process serves a data
dir, so at its start-up every `creating` volume is a dead process's, and at no other time.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

_LOCK = text("SELECT pg_advisory_lock(hashtextextended(:name, 0))")
_UNLOCK = text("SELECT pg_advisory_unlock(hashtextextended(:name, 0))")
_TRY = text("SELECT pg_try_advisory_xact_lock(hashtextextended(:name, 0))")


def _name(volume_id: str) -> dict[str, str]:
    return {"name": f"creating\x1f{volume_id}"}


class Creating:
    """`with Creating(engine, volume_id):` around the insert of a `creating` volume and the
    work that makes it `available` or `error`."""

    def __init__(self, engine: Engine, volume_id: str) -> None:
        self.engine, self.volume_id = engine, volume_id
        self._conn: Connection | None = None

    def __enter__(self) -> Creating:
        if self.engine.dialect.name == "postgresql":
            self._conn = self.engine.connect()
            self._conn.execute(_LOCK, _name(self.volume_id))
            self._conn.commit()  # a session lock: held after the transaction, not idle in one
        return self

    def __exit__(self, *exc: object) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            conn.execute(_UNLOCK, _name(self.volume_id))
            conn.commit()
        except Exception:
            conn.invalidate()  # the session, and the lock with it, ends here
        finally:
            conn.close()


def abandoned(conn: Connection, volume_ids: list[str], at_startup: bool) -> list[str]:
    """Of these `creating` volumes, those no live process is creating."""
    if conn.dialect.name != "postgresql":
        return list(volume_ids) if at_startup else []
    return [volume_id for volume_id in volume_ids
            if conn.execute(_TRY, _name(volume_id)).scalar()]
