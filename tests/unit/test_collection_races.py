"""Orphan collection racing a live writer (issue 9, item 1), and start-up not listing the store.

The race: a writer has stored a batch's objects and is about to commit their rows when a
collector decides those objects are orphans; the collector pauses between its decision and
its deletes while the writer commits. Whatever the collector does, a block a committed
manifest refers to must stay readable.

The pause is a wrapper around the real block store whose first `delete` lets the writer go
on, and waits for it to commit unless the collector holds the database's write lock (then the
writer cannot commit before the collector does: that lock is the protocol working).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Connection

from snapferry.config import Settings
from snapferry.domain.envelope import PlainBlocks
from snapferry.engine.background import Background
from snapferry.storage import manifests
from snapferry.storage.blockdata import BlockData
from snapferry.storage.blocks import BlockStore
from snapferry.storage.collector import collect_abandoned
from snapferry.storage.datadir import BLOCKS_DIR, Storage, open_storage
from snapferry.storage.metadata import DATABASE_FILE
from snapferry.testing import scaleout_settings

PLAIN = PlainBlocks("us-east-1", "lineage")
BATCH = 8


class PausingStore:
    """The real store, with a hook run before the first delete."""

    def __init__(self, inner: BlockStore, before_first_delete: Callable[[], None]) -> None:
        self.inner = inner
        self.hook: Callable[[], None] | None = before_first_delete

    @property
    def probe_before_put(self) -> bool:
        return self.inner.probe_before_put

    def put(self, key: str, data: bytes) -> bool:
        return self.inner.put(key, data)

    def get(self, key: str) -> bytes:
        return self.inner.get(key)

    def exists(self, key: str) -> bool:
        return self.inner.exists(key)

    def delete(self, key: str) -> None:
        hook, self.hook = self.hook, None
        if hook is not None:
            hook()
        self.inner.delete(key)

    def keys(self) -> Iterator[str]:
        return self.inner.keys()

    def discard_incomplete(self) -> int:
        return self.inner.discard_incomplete()


class Clock:
    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)


@pytest.fixture(params=["embedded", "scaleout"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Storage]:
    """The same races on SQLite + files and on PostgreSQL + an S3 bucket (SeaweedFS)."""
    if request.param == "embedded":
        settings = Settings(data_dir=tmp_path)
    else:
        request.getfixturevalue("scaleout_engines")
        settings = scaleout_settings(tmp_path)
    opened = open_storage(settings)
    yield opened
    opened.close()


def collector_holds_locks(storage: Storage) -> bool:
    """Whether a collector's transaction holds the locks a writer's commit needs (then the
    writer cannot commit first: that is the protocol working). SQLite: the database's write
    lock is taken. PostgreSQL: the writer's session is waiting on a row lock."""
    if storage.engine.dialect.name == "sqlite":
        return database_write_locked(storage.data_dir)
    with storage.engine.connect() as conn:
        return bool(conn.execute(text(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock'")).scalar())


def database_write_locked(data_dir: Path) -> bool:
    probe = sqlite3.connect(data_dir / DATABASE_FILE, timeout=0)
    try:
        probe.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError:
        return True
    finally:
        probe.close()
    return False


class Writer:
    """Writes BATCH blocks of one snapshot in a thread, each stopping inside its recording
    transaction (after its object is stored, before its rows are written) until released."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self.data = [os.urandom(4096) for _ in range(BATCH)]
        self.stored = threading.Event()
        self.go = threading.Event()
        self.errors: list[BaseException] = []
        self.thread = threading.Thread(target=self._run)

    def _hold(self, _conn: Connection) -> None:
        self.stored.set()
        assert self.go.wait(60)

    def _run(self) -> None:
        try:
            for index, data in enumerate(self.data):
                self.storage.block_data.write("snap-racing000000", index, data,
                                              hashlib.sha256(data).digest(), self._hold, PLAIN)
        except BaseException as error:
            self.errors.append(error)

    def release(self) -> None:
        """Let the writer commit; wait for it unless the collector holds the lock it needs."""
        if self.storage.engine.dialect.name == "sqlite":
            locked = database_write_locked(self.storage.data_dir)  # before the writer takes it
            self.go.set()
            if not locked:
                self.thread.join(60)
            return
        # PostgreSQL: row locks; the writer either commits or comes to wait on one of ours.
        self.go.set()
        deadline = time.monotonic() + 60
        while self.thread.is_alive() and not collector_holds_locks(self.storage):
            assert time.monotonic() < deadline, "the writer neither committed nor waited"
            self.thread.join(0.02)

    def check_every_block_readable(self) -> None:
        self.go.set()
        self.thread.join(60)
        assert not self.thread.is_alive() and self.errors == []
        with self.storage.engine.connect() as conn:
            refs = manifests.block_refs(conn, "snap-racing000000")
        assert [ref.block_index for ref in refs] == list(range(BATCH))
        for ref, data in zip(refs, self.data, strict=True):
            assert self.storage.block_data.read(ref, PLAIN) == data


def pause_collection(storage: Storage, writer: Writer) -> None:
    paused = PausingStore(storage.blocks, writer.release)
    storage.blocks = paused
    storage.block_data = BlockData(storage.engine, paused)


def test_start_up_collection_racing_a_writer_loses_nothing(storage: Storage) -> None:
    """`snapferry serve` starting while a `snapferry worker` writes a batch: the writer's
    first object is stored, its row not yet committed."""
    writer = Writer(storage)
    pause_collection(storage, writer)
    writer.thread.start()
    assert writer.stored.wait(30)
    background = Background(storage, Clock())
    background.start()
    background.stop()
    writer.check_every_block_readable()


def test_collecting_abandoned_objects_with_no_grace_loses_nothing(storage: Storage) -> None:
    """The worst case: the collector treats the live writer's intent as abandoned (a writer
    slower than any grace period). The collector's lock makes the writer put it back."""
    writer = Writer(storage)
    pause_collection(storage, writer)
    writer.thread.start()
    assert writer.stored.wait(30)
    future = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    assert collect_abandoned(storage.engine, storage.blocks, future) == 1
    writer.check_every_block_readable()
    assert collect_abandoned(storage.engine, storage.blocks, future) == 0


def test_an_abandoned_object_is_collected_after_the_grace_period(storage: Storage) -> None:
    """A writer died between storing an object and recording it: its intent finds it."""
    data = os.urandom(2048)
    intents = storage.block_data.intend([BlockData._encode(data, hashlib.sha256(data).digest(),
                                                           PLAIN)])
    storage.block_data.put(intents)
    assert list(storage.blocks.keys()) == [intents[0].item.key]
    now = dt.datetime.now(dt.UTC)
    assert collect_abandoned(storage.engine, storage.blocks, now - dt.timedelta(hours=1)) == 0
    assert list(storage.blocks.keys()) == [intents[0].item.key]  # within its grace period
    assert collect_abandoned(storage.engine, storage.blocks, now + dt.timedelta(seconds=1)) == 1
    assert list(storage.blocks.keys()) == []


def test_a_recorded_object_is_not_collected_with_its_intent(storage: Storage) -> None:
    """An intent left behind by a second writer of the same object, whose first writer
    recorded it: the intent goes, the object stays."""
    data = os.urandom(2048)
    pending = BlockData._encode(data, hashlib.sha256(data).digest(), PLAIN)
    storage.block_data.intend([pending])  # the second writer, which then died
    storage.block_data.write("snap-kept00000000", 0, data, hashlib.sha256(data).digest(),
                             lambda conn: None, PLAIN)
    later = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)
    assert collect_abandoned(storage.engine, storage.blocks, later) == 0
    with storage.engine.connect() as conn:
        ref = manifests.block_ref(conn, "snap-kept00000000", 0)
    assert ref is not None and storage.block_data.read(ref, PLAIN) == data


def test_start_up_does_not_list_the_block_store(storage: Storage) -> None:
    """Start-up reads the database and the store's temp directory only: a store of millions
    of objects (or an S3 bucket) is never listed."""
    for _ in range(3):
        data = os.urandom(2048)
        storage.block_data.write(f"snap-{os.urandom(6).hex()}", 0, data,
                                 hashlib.sha256(data).digest(), lambda conn: None, PLAIN)
    if storage.engine.dialect.name != "sqlite":
        start_up_on_a_bucket_lists_nothing(storage)
        return
    root = str(storage.data_dir / BLOCKS_DIR)
    listed: list[str] = []
    active = threading.Event()

    def audit(event: str, args: tuple[object, ...]) -> None:
        if active.is_set() and event in ("os.scandir", "os.listdir") and args:
            listed.append(os.fsdecode(args[0]) if args[0] is not None else ".")

    sys.addaudithook(audit)
    background = Background(storage, Clock())
    active.set()
    try:
        background.start()
    finally:
        active.clear()
        background.stop()
    in_store = [path for path in listed if path.startswith(root)]
    assert in_store, "the audit hook saw nothing: the test would prove nothing"
    assert set(in_store) == {os.path.join(root, "tmp")}


def start_up_on_a_bucket_lists_nothing(storage: Storage) -> None:
    """The S3 store: every request start-up makes, seen by a botocore hook, is about one
    object (an unreferenced block is left for it to collect, so it makes at least one)."""
    data = os.urandom(2048)
    storage.block_data.write("snap-unreferenced", 0, data, hashlib.sha256(data).digest(),
                             lambda conn: None, PLAIN)
    with storage.engine.begin() as conn:
        manifests.drop_manifest(conn, "snap-unreferenced")
    calls: list[str] = []

    def seen(model: object, **_: object) -> None:
        calls.append(model.name)  # type: ignore[attr-defined]

    events = storage.blocks.client.meta.events  # type: ignore[attr-defined]
    events.register("before-call.s3", seen)
    background = Background(storage, Clock())
    try:
        background.start()
    finally:
        background.stop()
        events.unregister("before-call.s3", seen)
    assert "DeleteObject" in calls, "the hook saw no collection: the test would prove nothing"
    assert not [name for name in calls if name.startswith("List")], calls
