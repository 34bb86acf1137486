"""Reading and writing block content through the block store and the manifests, keeping
the writer's half of the protocol in storage/manifests.py in one place."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from sqlalchemy import Engine
from sqlalchemy.engine import Connection

from snapferry.storage.blocks import BlockNotFound, BlockStore
from snapferry.storage.manifests import BlockRef, ensure_block, put_block


class CorruptBlock(Exception):
    pass


class BlockData:
    def __init__(self, engine: Engine, store: BlockStore) -> None:
        self.engine = engine
        self.store = store

    def write(
        self,
        resource_id: str,
        index: int,
        data: bytes,
        digest: bytes,
        in_transaction: Callable[[Connection], None],
    ) -> None:
        """Store block `index` of `resource_id`. `in_transaction` runs first inside the
        transaction that records it (to check and lock the resource); raising there records
        nothing. Unencrypted blocks are named by their SHA-256, so equal blocks share one
        object."""
        key = digest.hex()
        if not self.store.exists(key):
            self.store.put(key, data)
        with self.engine.begin() as conn:
            in_transaction(conn)
            put_block(conn, resource_id, BlockRef(index, key, digest), len(data))
        if not self.store.exists(key):
            # A collector removed the object between our put and our commit: put it back.
            self.store.put(key, data)
            with self.engine.begin() as conn:
                ensure_block(conn, key, len(data))

    def read(self, ref: BlockRef) -> bytes:
        """The block's bytes, checked against the SHA-256 recorded for it."""
        try:
            data = self.store.get(ref.block_id)
        except BlockNotFound:
            raise CorruptBlock(f"block object {ref.block_id} is missing") from None
        if hashlib.sha256(data).digest() != ref.sha256:
            raise CorruptBlock(f"block object {ref.block_id} does not match its checksum")
        return data
