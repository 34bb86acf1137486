"""The storage layer on its own: garbage collection racing a writer, idle snapshots timing
out (with a moved clock, not a wait), tokens running out, a crash's leftovers collected."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import threading

import pytest

from snapferry.domain import snapshots as rules
from snapferry.domain.envelope import PlainBlocks
from snapferry.domain.snapshots import Snapshot
from snapferry.domain.tokens import TokenError
from snapferry.engine.background import Background, cancel_idle
from snapferry.storage import manifests
from snapferry.storage import snapshots as store
from snapferry.storage.blockdata import BlockData
from snapferry.storage.collector import collect, collect_abandoned, collect_unreferenced
from snapferry.storage.datadir import Storage

PLAIN = PlainBlocks("us-east-1", "lineage")
NOW = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.UTC)


def pending_snapshot(storage: Storage, timeout: int | None = None) -> Snapshot:
    snapshot = Snapshot(
        snapshot_id=f"snap-{os.urandom(9).hex()[:17]}", account_id="000000000000",
        region="us-east-1", volume_id=rules.COPY_VOLUME_ID, volume_size=1, state=rules.PENDING,
        progress=0, start_time=NOW, description="", encrypted=False, lineage_id="l",
        origin=rules.ORIGIN_EBS, timeout_minutes=timeout,
        expires_at=NOW + dt.timedelta(minutes=timeout) if timeout else None,
    )
    with storage.engine.begin() as conn:
        store.insert_snapshot(conn, snapshot)
    return snapshot


def write(storage: Storage, resource_id: str, index: int, data: bytes) -> None:
    storage.block_data.write(resource_id, index, data, hashlib.sha256(data).digest(),
                             lambda conn: None, PLAIN)


def test_collection_racing_a_writer_never_loses_a_referenced_block(storage: Storage) -> None:
    """One thread collects a block over and over while another keeps writing that block
    into a new snapshot, checking it can be read back, and dropping the snapshot again (so
    the block keeps becoming garbage). Whatever the interleaving, a block a manifest refers
    to must be readable."""
    data = os.urandom(4096)
    key = PLAIN.block_id(hashlib.sha256(data).digest())
    done = threading.Event()
    lost: list[int] = []

    def collector() -> None:
        while not done.is_set():
            collect(storage.engine, storage.blocks, [key])

    def writer() -> None:
        try:
            for round_number in range(300):
                holder = f"snap-w{round_number:011d}"
                write(storage, holder, 0, data)
                with storage.engine.connect() as conn:
                    ref = manifests.block_ref(conn, holder, 0)
                assert ref is not None
                try:
                    storage.block_data.read(ref, PLAIN)
                except Exception:
                    lost.append(round_number)
                with storage.engine.begin() as conn:
                    manifests.drop_manifest(conn, holder)
        finally:
            done.set()

    threads = [threading.Thread(target=collector), threading.Thread(target=writer)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert lost == []


def test_idle_snapshots_are_cancelled_after_their_timeout(storage: Storage) -> None:
    idle = pending_snapshot(storage, timeout=10)
    patient = pending_snapshot(storage, timeout=60)
    write(storage, idle.snapshot_id, 0, os.urandom(1024))
    assert cancel_idle(storage, NOW + dt.timedelta(minutes=9)) == []
    assert cancel_idle(storage, NOW + dt.timedelta(minutes=11)) == [idle.snapshot_id]
    with storage.engine.connect() as conn:
        cancelled = store.get_snapshot(conn, "us-east-1", idle.snapshot_id)
        kept = store.get_snapshot(conn, "us-east-1", patient.snapshot_id)
        assert manifests.block_total(conn, idle.snapshot_id) == 0
    assert cancelled is not None and cancelled.state == rules.ERROR
    assert cancelled.state_message == rules.TIMED_OUT_MESSAGE
    assert kept is not None and kept.state == rules.PENDING
    assert list(storage.blocks.keys()) == []  # the cancelled snapshot's block was collected


def test_a_crash_leaves_nothing_that_start_up_does_not_collect(storage: Storage) -> None:
    # A writer died after storing an object but before recording it...
    orphan = os.urandom(2048)
    storage.block_data.put(storage.block_data.intend(
        [BlockData._encode(orphan, hashlib.sha256(orphan).digest(), PLAIN)]))
    # ...and a delete died after dropping a manifest but before collecting its block.
    write(storage, "snap-dropped00000", 0, os.urandom(2048))
    with storage.engine.begin() as conn:
        manifests.drop_manifest(conn, "snap-dropped00000")
    kept = os.urandom(2048)
    write(storage, "snap-kept00000000", 0, kept)
    later = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)
    assert collect_abandoned(storage.engine, storage.blocks, later) == 1
    assert collect_unreferenced(storage.engine, storage.blocks) == 1
    assert list(storage.blocks.keys()) == [PLAIN.block_id(hashlib.sha256(kept).digest())]


def test_background_finishes_volume_snapshots(storage: Storage) -> None:
    snapshot = pending_snapshot(storage)
    with storage.engine.begin() as conn:
        store.update_snapshot(conn, snapshot.snapshot_id, origin=rules.ORIGIN_VOLUME)

    class Clock:
        def now(self) -> dt.datetime:
            return NOW

    Background(storage, Clock()).run_once()
    with storage.engine.connect() as conn:
        finished = store.get_snapshot(conn, "us-east-1", snapshot.snapshot_id)
    assert finished is not None
    assert (finished.state, finished.progress, finished.completion_time) == (
        rules.COMPLETED, 100, NOW)


def test_tokens_bind_what_they_name_and_run_out(storage: Storage) -> None:
    tokens = storage.tokens
    token = tokens.mint("block", "snap-1:5", 5, NOW + dt.timedelta(days=7))
    assert tokens.open("block", "snap-1:5", token, NOW) == 5
    for purpose, binding, when in (
        ("block", "snap-1:6", NOW),
        ("page", "snap-1:5", NOW),
        ("block", "snap-1:5", NOW + dt.timedelta(days=8)),
    ):
        with pytest.raises(TokenError):
            tokens.open(purpose, binding, token, when)
