"""Garbage collection of block objects: mark (the rows) and sweep (the objects).

Safe against a concurrent writer by the protocol in storage/manifests.py: an object is
deleted only inside the transaction that deletes its `blocks` row, after that transaction
locked the row and saw no manifest refer to it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator

from sqlalchemy import Engine, delete, select

from snapferry.storage.blocks import BlockStore
from snapferry.storage.manifests import lock_blocks
from snapferry.storage.metadata import blocks, manifests

log = logging.getLogger(__name__)
BATCH = 500


def _batches(items: Iterable[str], size: int = BATCH) -> Iterator[list[str]]:
    batch: list[str] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def collect(engine: Engine, store: BlockStore, candidates: Iterable[str]) -> int:
    """Delete those of `candidates` that no manifest refers to; returns how many went."""
    removed = 0
    for batch in _batches(dict.fromkeys(candidates)):
        with engine.begin() as conn:
            lock_blocks(conn, batch)
            referenced = {
                row.block_id
                for row in conn.execute(
                    select(manifests.c.block_id).where(manifests.c.block_id.in_(batch)).distinct()
                )
            }
            doomed = [key for key in batch if key not in referenced]
            if not doomed:
                continue
            conn.execute(delete(blocks).where(blocks.c.block_id.in_(doomed)))
            # Inside the transaction: a writer waiting on these rows finds them gone when it
            # gets its turn, and puts the object back (storage/manifests.py).
            for key in doomed:
                store.delete(key)
            removed += len(doomed)
    return removed


def collect_unreferenced(engine: Engine, store: BlockStore) -> int:
    """Every block row no manifest refers to (leftovers of interrupted deletes)."""
    with engine.connect() as conn:
        unreferenced = [
            row.block_id
            for row in conn.execute(
                select(blocks.c.block_id).where(
                    ~select(manifests.c.block_id)
                    .where(manifests.c.block_id == blocks.c.block_id)
                    .exists()
                )
            )
        ]
    return collect(engine, store, unreferenced)


def sweep_orphans(engine: Engine, store: BlockStore) -> int:
    """Objects with no `blocks` row: a writer died between storing and recording them.

    Run when no writer can be mid-way (at start-up, before serving): a writer's object has
    no row for a moment, and this sweep cannot tell that moment from a crash."""
    removed = 0
    for batch in _batches(store.keys()):
        with engine.connect() as conn:
            known = {
                row.block_id
                for row in conn.execute(
                    select(blocks.c.block_id).where(blocks.c.block_id.in_(batch)))
            }
        for key in batch:
            if key not in known:
                store.delete(key)
                removed += 1
    if removed:
        log.warning("removed %d orphaned block objects", removed)
    return removed
