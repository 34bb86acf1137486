"""Garbage collection of block objects: mark (the rows) and sweep (the objects).

Safe against every concurrent writer by the protocol in storage/manifests.py: an object is
deleted only inside the transaction that deletes the row accounting for it (its `blocks`
row, or a writer's stale intent), after that transaction locked the row. Nothing here lists
the block store.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Iterator

from sqlalchemy import Engine, delete, select, update

from snapferry.storage.blocks import BlockStore
from snapferry.storage.manifests import lock_blocks
from snapferry.storage.metadata import block_intents, blocks, manifests

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


def collect_abandoned(engine: Engine, store: BlockStore, older_than: dt.datetime,
                      only: list[str] | None = None) -> int:
    """Objects a writer may have left with no `blocks` row, found through their intents
    (never by listing the store): those intents older than `older_than` (of the keys in
    `only`, when given: a writer giving up on its own batch). Returns how many objects went."""
    with engine.connect() as conn:
        query = select(block_intents.c.block_id).where(block_intents.c.written_at < older_than)
        if only is not None:
            query = query.where(block_intents.c.block_id.in_(only))
        stale = list(conn.execute(query).scalars())
    removed = 0
    for batch in _batches(stale):
        with engine.begin() as conn:
            # Lock the intents first: a writer retiring or refreshing one waits for us.
            conn.execute(update(block_intents).where(block_intents.c.block_id.in_(batch))
                         .values(written_at=block_intents.c.written_at))
            still = set(conn.execute(select(block_intents.c.block_id).where(
                block_intents.c.block_id.in_(batch),
                block_intents.c.written_at < older_than)).scalars())
            if not still:
                continue
            recorded = set(conn.execute(select(blocks.c.block_id).where(
                blocks.c.block_id.in_(still))).scalars())
            conn.execute(delete(block_intents).where(block_intents.c.block_id.in_(still)))
            # Inside the transaction, as collect() does: a writer waiting on these intents
            # finds the object gone when it gets its turn, and puts it back.
            for key in still - recorded:
                store.delete(key)
                removed += 1
    if removed:
        log.warning("removed %d block objects abandoned by writers", removed)
    return removed
