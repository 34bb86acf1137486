"""The block path's plain SQL (storage/blockrows.py) and its reads (storage/blockdata.py):
rows read as the Core tables read them, a busy database answered as an outage (503) and
not as a server fault, and the AES-GCM shortcut on encrypted reads taken only when it
proves what the SHA-256 would."""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import datetime as dt
import hashlib
import json
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.exc import OperationalError

from snapferry.config import Settings
from snapferry.domain import snapshots as rules
from snapferry.domain.envelope import BlockCipher, PlainBlocks
from snapferry.domain.snapshots import Snapshot
from snapferry.server import Dispatcher
from snapferry.storage import blockrows
from snapferry.storage import snapshots as store
from snapferry.storage.blockdata import CorruptBlock
from snapferry.storage.datadir import Storage, open_storage
from snapferry.storage.engines import unavailable
from snapferry.storage.manifests import BlockRef
from snapferry.storage.metadata import DATABASE_FILE
from snapferry.testing import SignedRequests

BLOCK = 512 * 1024
START = dt.datetime(2026, 12, 3, 1, 2, 3, 456000, tzinfo=dt.UTC)


@pytest.fixture
def storage(tmp_path: Path) -> Iterator[Storage]:
    opened = open_storage(Settings(data_dir=tmp_path))
    yield opened
    opened.close()


def test_the_plain_snapshot_read_matches_the_core_read(storage: Storage) -> None:
    full = Snapshot(
        snapshot_id="snap-0123456789abcdef0", account_id="000000000000", region="eu-west-1",
        volume_id=rules.COPY_VOLUME_ID, volume_size=3, state=rules.COMPLETED, progress=100,
        start_time=START, description="every field", encrypted=True, lineage_id="lineage",
        origin=rules.ORIGIN_EBS, kms_key_id="arn:aws:kms:eu-west-1:000000000000:key/k",
        parent_snapshot_id="snap-00000000000000001", state_message="m",
        completion_time=START + dt.timedelta(seconds=5), full_size_bytes=3 << 30,
        client_token="token", request_digest="d" * 64, timeout_minutes=60,
        expires_at=START + dt.timedelta(hours=1), transfer_type="standard",
        completion_duration_minutes=7)
    sparse = dataclasses.replace(full, snapshot_id="snap-0123456789abcdef1", encrypted=False,
                                 kms_key_id=None, completion_time=None, expires_at=None,
                                 full_size_bytes=None, timeout_minutes=None)
    with storage.engine.begin() as conn:
        store.insert_snapshot(conn, full)
        store.insert_snapshot(conn, sparse)
    with storage.engine.connect() as conn:
        for snapshot in (full, sparse):
            plain = blockrows.snapshot(conn, "eu-west-1", snapshot.snapshot_id)
            assert plain == store.get_snapshot(conn, "eu-west-1", snapshot.snapshot_id)
            assert plain == snapshot and isinstance(plain.encrypted, bool)
        assert blockrows.snapshot(conn, "us-east-1", full.snapshot_id) is None  # other region
        assert blockrows.snapshot(conn, "eu-west-1", "snap-00000000000000009") is None


@contextlib.contextmanager
def write_locked(data_dir: Path) -> Iterator[None]:
    """Another connection holding SQLite's write lock, as a long writer would."""
    holder = sqlite3.connect(data_dir / DATABASE_FILE, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        yield
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_a_locked_database_on_the_block_path_is_a_503_not_a_500(storage: Storage,
                                                                tmp_path: Path) -> None:
    # Give up on the lock after 50 ms instead of 10 s (the server's busy_timeout).
    event.listen(storage.engine, "connect",
                 lambda dbapi, _record: dbapi.execute("PRAGMA busy_timeout=50"))
    storage.engine.dispose()
    dispatcher = Dispatcher(storage, Settings(data_dir=tmp_path))
    sign = SignedRequests().request
    started = dispatcher.handle(sign("start_snapshot", VolumeSize=1))
    snapshot_id = json.loads(started.body)["SnapshotId"]
    data = os.urandom(BLOCK)
    put = sign("put_snapshot_block", SnapshotId=snapshot_id, BlockIndex=0, BlockData=data,
               DataLength=BLOCK, ChecksumAlgorithm="SHA256",
               Checksum=base64.b64encode(hashlib.sha256(data).digest()).decode())

    with write_locked(tmp_path), storage.engine.connect() as conn:
        # The driver's "database is locked" comes out as SQLAlchemy's, which the server's
        # outage rule knows.
        with pytest.raises(OperationalError) as caught:
            blockrows.touch_intent(conn, "0" * 64, START)
        assert unavailable(caught.value) and "locked" in str(caught.value)
        refused = dispatcher.handle(put)
    assert refused.status == 503, refused.body
    # The EBS API's error envelope (restJson1: the code in x-amzn-ErrorType), which SDKs
    # retry with back-off; a 500 InternalError would say the server is broken.
    assert refused.headers["x-amzn-ErrorType"].split(":")[0] == "ServiceUnavailable"
    assert "try again" in json.loads(refused.body)["Message"]
    with storage.engine.connect() as conn:  # nothing was recorded
        assert blockrows.block_ref(conn, snapshot_id, 0) is None

    # The lock gone, the SDK's retry of the same request succeeds.
    assert dispatcher.handle(put).status == 201


def _stored(storage: Storage, codec: Any, data: bytes) -> BlockRef:
    digest = hashlib.sha256(data).digest()
    block_id = codec.block_id(digest)
    storage.block_data.store.put(block_id, codec.seal(block_id, data))
    return BlockRef(0, block_id, digest)


def test_an_encrypted_read_trusts_the_tag_only_for_the_block_its_digest_names(
        storage: Storage) -> None:
    cipher = BlockCipher("lineage", os.urandom(32))
    one, two = os.urandom(4096), os.urandom(4096)
    ref_one, ref_two = _stored(storage, cipher, one), _stored(storage, cipher, two)
    assert storage.block_data.read(ref_one, cipher) == one
    # A manifest row pointing at another valid object of the lineage, with this block's
    # digest: the tag holds (the object is intact) but its block id is not the one the
    # digest names, so the digest is checked, and fails.
    crossed = BlockRef(0, ref_two.block_id, ref_one.sha256)
    with pytest.raises(CorruptBlock):
        storage.block_data.read(crossed, cipher)
    # Another valid object of the lineage stored under this block's name: the AAD differs.
    storage.block_data.store.delete(ref_one.block_id)
    storage.block_data.store.put(ref_one.block_id, storage.block_data.store.get(ref_two.block_id))
    with pytest.raises(CorruptBlock):
        storage.block_data.read(ref_one, cipher)


def test_a_plain_read_hashes_what_it_read(storage: Storage) -> None:
    plain = PlainBlocks("us-east-1", "lineage")
    data = os.urandom(4096)
    ref = _stored(storage, plain, data)
    assert storage.block_data.read(ref, plain) == data
    storage.block_data.store.delete(ref.block_id)
    storage.block_data.store.put(ref.block_id, data[:-1] + bytes([data[-1] ^ 1]))
    with pytest.raises(CorruptBlock):
        storage.block_data.read(ref, plain)
