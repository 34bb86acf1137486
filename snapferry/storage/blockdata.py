"""Reading and writing block content through the block store and the manifests, keeping
the writer's half of the protocol in storage/manifests.py in one place.

Every block goes through its lineage's codec (domain/envelope.py): unencrypted blocks are
stored as they are, named by their SHA-256 within their region; blocks of an encrypted
lineage are named by a keyed HMAC and stored as AES-GCM ciphertext, never in plaintext.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from sqlalchemy import Engine
from sqlalchemy.engine import Connection

from snapferry.domain.envelope import BlockCodec
from snapferry.storage.blocks import BlockNotFound, BlockStore
from snapferry.storage.manifests import (
    BlockRef,
    block_refs,
    ensure_block,
    put_block,
    put_blocks,
)

COPY_BATCH = 64


class CorruptBlock(Exception):
    pass


class BlockData:
    def __init__(self, engine: Engine, store: BlockStore) -> None:
        self.engine = engine
        self.store = store

    @staticmethod
    def _encode(data: bytes, digest: bytes, codec: BlockCodec
                ) -> tuple[str, Callable[[], bytes]]:
        """The object key for `data`, and how to produce its stored form (lazily: an object
        that exists already is not encrypted again)."""
        key = codec.block_id(digest)
        return key, lambda: codec.seal(key, data)

    def _store(self, key: str, stored: Callable[[], bytes]) -> None:
        if not self.store.exists(key):
            self.store.put(key, stored())

    def _recheck(self, keys: list[tuple[str, Callable[[], bytes], int]]) -> None:
        """After commit: put back any object a collector took between our put and commit."""
        for key, stored, size in keys:
            if not self.store.exists(key):
                self.store.put(key, stored())
                with self.engine.begin() as conn:
                    ensure_block(conn, key, size)

    def write(
        self,
        resource_id: str,
        index: int,
        data: bytes,
        digest: bytes,
        in_transaction: Callable[[Connection], None],
        codec: BlockCodec,
    ) -> None:
        """Store block `index` of `resource_id`. `in_transaction` runs first inside the
        transaction that records it (to check and lock the resource); raising there records
        nothing."""
        key, stored = self._encode(data, digest, codec)
        self._store(key, stored)
        with self.engine.begin() as conn:
            in_transaction(conn)
            put_block(conn, resource_id, BlockRef(index, key, digest), len(data))
        self._recheck([(key, stored, len(data))])

    def read(self, ref: BlockRef, codec: BlockCodec) -> bytes:
        """The block's plaintext, checked against the SHA-256 recorded for it."""
        try:
            stored = self.store.get(ref.block_id)
        except BlockNotFound:
            raise CorruptBlock(f"block object {ref.block_id} is missing") from None
        try:
            data = codec.open(ref.block_id, stored)
        except ValueError as problem:
            raise CorruptBlock(str(problem)) from None
        if hashlib.sha256(data).digest() != ref.sha256:
            raise CorruptBlock(f"block object {ref.block_id} does not match its checksum")
        return data

    def recode(self, source_id: str, source: BlockCodec, target_id: str,
               target: BlockCodec) -> None:
        """Give `target_id` every block of `source_id`, decrypted (if it was encrypted) and
        encrypted under `target`: a new lineage's full copy. Batches commit as they go; the
        target is not usable until its caller says so."""
        start = 0
        while True:
            with self.engine.connect() as conn:
                refs = block_refs(conn, source_id, start, COPY_BATCH)
            if not refs:
                return
            written = []
            for ref in refs:
                data = self.read(ref, source)
                key, stored = self._encode(data, ref.sha256, target)
                self._store(key, stored)
                written.append((BlockRef(ref.block_index, key, ref.sha256), stored, len(data)))
            with self.engine.begin() as conn:
                put_blocks(conn, target_id, [(r, size) for r, _, size in written],
                           written=False)
            self._recheck([(r.block_id, stored, size) for r, stored, size in written])
            start = refs[-1].block_index + 1
