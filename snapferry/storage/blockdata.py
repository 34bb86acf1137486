"""Reading and writing block content through the block store and the manifests, keeping
the writer's half of the protocol in storage/manifests.py in one place.

Every block goes through its lineage's codec (domain/envelope.py): unencrypted blocks are
stored as they are, named by their SHA-256 within their region; blocks of an encrypted
lineage are named by a keyed HMAC and stored as AES-GCM ciphertext, never in plaintext.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.engine import Connection

from snapferry.domain.envelope import BlockCodec
from snapferry.storage import blockrows
from snapferry.storage.blocks import BlockNotFound, BlockStore
from snapferry.storage.manifests import (
    BlockRef,
    block_refs,
    put_blocks,
    retire_intents,
    touch_intents,
)

COPY_BATCH = 64


class CorruptBlock(Exception):
    pass


@dataclass(frozen=True)
class Pending:
    """An object to write: its key, its stored form (made on demand) and its plaintext size."""

    key: str
    stored: Callable[[], bytes | bytearray]
    size: int


@dataclass(frozen=True)
class Intent:
    item: Pending
    at: dt.datetime  # the intent's time, which only its own writer retires


class BlockData:
    def __init__(self, engine: Engine, store: BlockStore) -> None:
        self.engine = engine
        self.store = store

    @staticmethod
    def _encode(data: bytes, digest: bytes, codec: BlockCodec) -> Pending:
        """The object key for `data`, and how to produce its stored form (lazily: an object
        that exists already is not encrypted again)."""
        key = codec.block_id(digest)
        return Pending(key, lambda: codec.seal(key, data), len(data))

    def intend(self, pending: list[Pending]) -> list[Intent]:
        """Step 1 of the writer's protocol (storage/manifests.py): commit an intent for each
        object BEFORE it is written. Returns what `record` needs to retire them."""
        now = dt.datetime.now(dt.UTC)
        with self.engine.begin() as conn:
            touch_intents(conn, [item.key for item in pending], now)
        return [Intent(item, now) for item in pending]

    def _put_missing(self, item: Pending) -> None:
        """Step 2 for one object: write it unless it is stored. Where the store's put is a
        conditional create (probe_before_put False), the put is the check."""
        if not (self.store.probe_before_put and self.store.exists(item.key)):
            self.store.put(item.key, item.stored())

    def put(self, intents: list[Intent]) -> None:
        """Step 2: write the objects that are not stored yet."""
        for intent in intents:
            self._put_missing(intent.item)

    def record(self, conn: Connection, intents: list[Intent]) -> None:
        """Step 3, inside the transaction that adds the block rows and manifest rows, after
        them: retire the intents (waiting for a collector holding them), then put back any
        object a collector took since step 2. Committed, every object is rowed and stored."""
        retire_intents(conn, [(intent.item.key, intent.at) for intent in intents])
        for intent in intents:
            if not self.store.exists(intent.item.key):
                self.store.put(intent.item.key, intent.item.stored())

    @staticmethod
    def _intend_one(conn: Connection, key: str) -> dt.datetime:
        """Step 1 for one object, on the cheapest commit that still survives the process:
        the intent goes to the database's log without a flush of its own (SQLite
        synchronous=NORMAL for this commit, PostgreSQL synchronous_commit off), and the
        flush of step 3's commit, which must come before the block is acknowledged, makes
        it durable together with the rows. A killed server keeps it (the log is in the OS's
        cache); only a power cut between steps 2 and 3 could forget it, leaving an object
        nothing refers to: space, never data (RELIABILITY.md). `conn` must be outside any
        transaction (SQLite ignores the pragma inside one)."""
        now = dt.datetime.now(dt.UTC)
        sqlite = conn.dialect.name == "sqlite"
        if sqlite:
            blockrows.relax(conn, True)
        try:
            with conn.begin():
                if not sqlite:
                    blockrows.relax(conn, True)  # SET LOCAL: this transaction only
                blockrows.touch_intent(conn, key, now)
        finally:
            if sqlite:
                try:
                    blockrows.relax(conn, False)
                except BaseException:
                    conn.invalidate()  # never hand a relaxed connection to the pool
                    raise
        return now

    def write(
        self,
        resource_id: str,
        index: int,
        data: bytes,
        digest: bytes,
        in_transaction: Callable[[Connection], None],
        codec: BlockCodec,
        conn: Connection | None = None,
    ) -> None:
        """Store block `index` of `resource_id`. `in_transaction` runs first inside the
        transaction that records it (to check and lock the resource); raising there records
        nothing. The three steps of storage/manifests.py for one object, in as few
        statements as they take (storage/blockrows.py), on `conn` when given (one outside any
        transaction: the request's own, so a block write checks out one connection) and on
        a connection of its own otherwise. The intent's commit before the object is written
        and the rows' commit after it are the protocol's two; nothing else commits."""
        if conn is None:
            with self.engine.connect() as own:
                self.write(resource_id, index, data, digest, in_transaction, codec, own)
            return
        item = self._encode(data, digest, codec)
        at = self._intend_one(conn, item.key)
        self._put_missing(item)
        with conn.begin():
            in_transaction(conn)
            blockrows.put_block(conn, resource_id, index, item.key, digest, len(data))
            blockrows.retire_intent(conn, item.key, at)
            if not self.store.exists(item.key):  # a collector took it since step 2
                self.store.put(item.key, item.stored())

    def write_many(
        self,
        resource_id: str,
        blocks: list[tuple[int, bytes, bytes]],
        in_transaction: Callable[[Connection], None],
        codec: BlockCodec,
    ) -> None:
        """`write` for a batch of (index, data, digest), recorded in one transaction."""
        intents = self.intend([self._encode(data, digest, codec) for _, data, digest in blocks])
        self.put(intents)
        with self.engine.begin() as conn:
            in_transaction(conn)
            put_blocks(conn, resource_id, [
                (BlockRef(index, intent.item.key, digest), len(data))
                for (index, data, digest), intent in zip(blocks, intents, strict=True)])
            self.record(conn, intents)

    def read(self, ref: BlockRef, codec: BlockCodec) -> bytes:
        """The block's plaintext, checked against the SHA-256 recorded for it: by hashing
        it, or, for an authenticated codec (AES-GCM, whose AAD binds the block id), by the
        tag together with the block id being the one the recorded SHA-256 names, which
        proves the same without a second pass over 512 KiB (domain/envelope.py)."""
        try:
            stored = self.store.get(ref.block_id)
        except BlockNotFound:
            raise CorruptBlock(f"block object {ref.block_id} is missing") from None
        try:
            data = codec.open(ref.block_id, stored)
        except ValueError as problem:
            raise CorruptBlock(str(problem)) from None
        if codec.authenticated and codec.block_id(ref.sha256) == ref.block_id:
            return data
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
            pending = [self._encode(self.read(ref, source), ref.sha256, target)
                       for ref in refs]
            intents = self.intend(pending)
            self.put(intents)
            with self.engine.begin() as conn:
                put_blocks(conn, target_id, [
                    (BlockRef(ref.block_index, item.key, ref.sha256), item.size)
                    for ref, item in zip(refs, pending, strict=True)], written=False)
                self.record(conn, intents)
            start = refs[-1].block_index + 1
