"""Block maps of snapshots and volumes, and the block rows that keep objects alive.

The protocol with the collector (storage/collector.py), which makes garbage collection safe
against every live writer, in any process, on any block store (files or S3 alike: it needs
nothing of the store but put, exists and delete):
1. a writer commits an intent row for each object it is about to write (`block_intents`),
   BEFORE writing it; so every object that may lack a `blocks` row is found through the
   database, and nothing ever lists the store;
2. it writes the objects;
3. in one transaction it creates (or locks) the `blocks` rows and adds the manifest rows,
   then retires its intents, then checks each object is stored, putting back any that a
   collector took meanwhile.
The collector deletes an object only inside the transaction that deletes the row that
accounted for it:
- a block: after locking its `blocks` row and seeing no manifest refer to it (collect);
- an intent older than a grace period with no `blocks` row: after locking the intent row
  (collect_abandoned), i.e. what a writer that died between steps 1 and 3 left behind.
Step 3 waits on both locks (the block rows, then the intents), so a writer either commits
first (the collector then sees the row, or no stale intent, and keeps the object) or after
(and then finds the object gone and puts it back, inside its own transaction). However slow
a writer is, it never commits a row whose object is missing; the grace period only spares
the collector work it would redo.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import and_, delete, func, insert, literal, select, tuple_, update
from sqlalchemy.engine import Connection

from snapferry.storage.metadata import block_intents, blocks, manifests, upsert


@dataclass(frozen=True)
class BlockRef:
    block_index: int
    block_id: str
    sha256: bytes


def lock_blocks(conn: Connection, block_ids: list[str]) -> int:
    """Take the write lock on these block rows (a no-op update: a row lock on PostgreSQL, the
    database write lock on SQLite); returns how many exist."""
    return conn.execute(
        update(blocks).where(blocks.c.block_id.in_(block_ids)).values(size=blocks.c.size)
    ).rowcount


def touch_intents(conn: Connection, block_ids: list[str], now: dt.datetime) -> None:
    """Record (or refresh) the intent to write these objects (step 1)."""
    upsert(conn, block_intents, ["block_id"],
           [{"block_id": block_id, "written_at": now} for block_id in dict.fromkeys(block_ids)])


def retire_intents(conn: Connection, intents: list[tuple[str, dt.datetime]]) -> None:
    """Delete our own intents (step 3): one another writer refreshed since is theirs to
    retire, and keeps protecting their object should they die."""
    if intents:
        conn.execute(delete(block_intents).where(
            tuple_(block_intents.c.block_id, block_intents.c.written_at).in_(
                [(block_id, at) for block_id, at in intents])))


def put_block(conn: Connection, resource_id: str, ref: BlockRef, size: int,
              written: bool = True) -> None:
    """Point `resource_id`'s block `ref.block_index` at `ref.block_id`; `written` marks a
    block put into this resource itself rather than inherited."""
    put_blocks(conn, resource_id, [(ref, size)], written)


def put_blocks(conn: Connection, resource_id: str | None, refs: list[tuple[BlockRef, int]],
               written: bool = True) -> None:
    """Many put_block in two statements: the block rows (created or locked), then the
    manifest rows (inserted or replaced). resource_id None: the block rows only."""
    upsert(conn, blocks, ["block_id"],
           [{"block_id": ref.block_id, "size": size} for ref, size in refs])
    if resource_id is not None:
        upsert(conn, manifests, ["resource_id", "block_index"], [
            {"resource_id": resource_id, "block_index": ref.block_index,
             "block_id": ref.block_id, "sha256": ref.sha256, "written": written}
            for ref, _ in refs])


def copy_manifest(conn: Connection, source_id: str, target_id: str) -> None:
    """Give `target_id` every block of `source_id`, sharing the objects (no data moves)."""
    conn.execute(
        insert(manifests).from_select(
            ["resource_id", "block_index", "block_id", "sha256", "written"],
            select(literal(target_id), manifests.c.block_index, manifests.c.block_id,
                   manifests.c.sha256, literal(False)).where(
                manifests.c.resource_id == source_id),
        )
    )


def drop_blocks(conn: Connection, resource_id: str, indexes: list[int]) -> None:
    if indexes:
        conn.execute(delete(manifests).where(manifests.c.resource_id == resource_id,
                                             manifests.c.block_index.in_(indexes)))


def changed_total(conn: Connection, first_id: str, second_id: str) -> int:
    return len(changed_blocks(conn, first_id, second_id, 0, 2**31))


def drop_manifest(conn: Connection, resource_id: str) -> list[str]:
    """Forget a resource's blocks; returns the block ids it referred to (to collect)."""
    ids = [
        row.block_id
        for row in conn.execute(
            select(manifests.c.block_id).where(manifests.c.resource_id == resource_id).distinct()
        )
    ]
    conn.execute(delete(manifests).where(manifests.c.resource_id == resource_id))
    return ids


def block_refs(
    conn: Connection, resource_id: str, start_index: int = 0, limit: int | None = None
) -> list[BlockRef]:
    query = (
        select(manifests.c.block_index, manifests.c.block_id, manifests.c.sha256)
        .where(manifests.c.resource_id == resource_id, manifests.c.block_index >= start_index)
        .order_by(manifests.c.block_index)
    )
    if limit is not None:
        query = query.limit(limit)
    return [BlockRef(row.block_index, row.block_id, row.sha256) for row in conn.execute(query)]


def block_ref(conn: Connection, resource_id: str, index: int) -> BlockRef | None:
    row = conn.execute(
        select(manifests.c.block_index, manifests.c.block_id, manifests.c.sha256).where(
            manifests.c.resource_id == resource_id, manifests.c.block_index == index
        )
    ).first()
    return BlockRef(row.block_index, row.block_id, row.sha256) if row else None


def written_digests(conn: Connection, resource_id: str) -> list[bytes]:
    """SHA-256 digests of the blocks written into this resource, in block index order."""
    rows = conn.execute(
        select(manifests.c.sha256)
        .where(manifests.c.resource_id == resource_id, manifests.c.written.is_(True))
        .order_by(manifests.c.block_index)
    )
    return [row.sha256 for row in rows]


def block_total(conn: Connection, resource_id: str) -> int:
    return conn.execute(
        select(func.count()).where(manifests.c.resource_id == resource_id)
    ).scalar_one()


@dataclass(frozen=True)
class ChangedBlock:
    block_index: int
    first: BlockRef | None
    second: BlockRef | None


def changed_blocks(
    conn: Connection, first_id: str, second_id: str, start_index: int, limit: int
) -> list[ChangedBlock]:
    """Indexes where the two block maps differ, ascending: blocks in only one of them, or
    pointing at different content. A full outer join, written as two anti/inner joins so
    SQLite and PostgreSQL both run it."""
    first = manifests.alias("first")
    second = manifests.alias("second")
    both = (
        select(second.c.block_index, first.c.block_id.label("first_id"),
               first.c.sha256.label("first_sha"), second.c.block_id.label("second_id"),
               second.c.sha256.label("second_sha"))
        .select_from(second.outerjoin(first, and_(first.c.resource_id == first_id,
                                                   first.c.block_index == second.c.block_index)))
        .where(second.c.resource_id == second_id, second.c.block_index >= start_index,
               (first.c.block_id.is_(None)) | (first.c.block_id != second.c.block_id))
    )
    only_first = (
        select(first.c.block_index, first.c.block_id.label("first_id"),
               first.c.sha256.label("first_sha"), literal(None).label("second_id"),
               literal(None).label("second_sha"))
        .select_from(first.outerjoin(second, and_(second.c.resource_id == second_id,
                                                   second.c.block_index == first.c.block_index)))
        .where(first.c.resource_id == first_id, first.c.block_index >= start_index,
               second.c.block_id.is_(None))
    )
    union = both.union_all(only_first).subquery()
    rows = conn.execute(select(union).order_by(union.c.block_index).limit(limit))
    return [
        ChangedBlock(
            row.block_index,
            BlockRef(row.block_index, row.first_id, row.first_sha) if row.first_id else None,
            BlockRef(row.block_index, row.second_id, row.second_sha) if row.second_id else None,
        )
        for row in rows
    ]
