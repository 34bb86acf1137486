"""The copy engine in-process on a real data dir (issue 9, item 5): fencing, one copy of a
lineage at a time, completion only after the last checkpoint, progress short of 100% while
pending, a failed copy's blocks collected, a damaged source block failing the copy, the
quota counted per account and region, and the checkpoint's re-check against the collector.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from snapferry.config import CopySettings
from snapferry.domain import copies as rules
from snapferry.domain import snapshots as snapshot_rules
from snapferry.domain.accounts import DEV_ACCESS_KEY_ID
from snapferry.domain.blocks import BLOCK_SIZE
from snapferry.domain.clock import SystemClock
from snapferry.domain.copies import CopyJob
from snapferry.domain.envelope import PlainBlocks
from snapferry.domain.snapshots import Snapshot
from snapferry.engine.copier import IO_THREADS, MAX_BATCH, Copier
from snapferry.services.keyring import KeyRing
from snapferry.storage import copies as job_store
from snapferry.storage import manifests
from snapferry.storage import snapshots as snapshot_store
from snapferry.storage.blockdata import BlockData
from snapferry.storage.blocks import BlockStore
from snapferry.storage.collector import collect_abandoned
from snapferry.storage.datadir import Storage
from snapferry.storage.metadata import block_intents

ACCOUNT, SRC, DST = "000000000000", "us-east-1", "eu-central-1"
NOW = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.UTC)
LEASE = dt.timedelta(seconds=10)
BLOCKS = 130  # three checkpoints of at most 64 blocks


def snapshot(snapshot_id: str, region: str, state: str, lineage: str, origin: str) -> Snapshot:
    return Snapshot(
        snapshot_id=snapshot_id, account_id=ACCOUNT, region=region,
        volume_id=snapshot_rules.COPY_VOLUME_ID, volume_size=1, state=state, progress=0,
        start_time=NOW, description="", encrypted=False, lineage_id=lineage, origin=origin)


def source(storage: Storage, count: int = BLOCKS) -> tuple[str, dict[int, bytes]]:
    snapshot_id, lineage = f"snap-{os.urandom(9).hex()[:17]}", str(uuid.uuid4())
    with storage.engine.begin() as conn:
        snapshot_store.insert_snapshot(conn, snapshot(
            snapshot_id, SRC, snapshot_rules.COMPLETED, lineage, snapshot_rules.ORIGIN_EBS))
    data = {index: os.urandom(1024) for index in range(count)}
    codec, digests = PlainBlocks(SRC, lineage), {i: hashlib.sha256(b).digest()
                                                 for i, b in data.items()}
    # One batch, by the writer's protocol (what BlockData.write does block by block).
    pending = [BlockData._encode(block, digests[i], codec) for i, block in data.items()]
    intents = storage.block_data.intend(pending)
    storage.block_data.put(intents)
    with storage.engine.begin() as conn:
        manifests.put_blocks(conn, snapshot_id, [
            (manifests.BlockRef(i, item.key, digests[i]), item.size)
            for i, item in zip(data, pending, strict=True)])
        storage.block_data.record(conn, intents)
    return snapshot_id, data


def copy_job(storage: Storage, source_id: str, region: str = DST,
             created: dt.datetime = NOW) -> CopyJob:
    with storage.engine.begin() as conn:
        found = snapshot_store.get_snapshot(conn, SRC, source_id)
        assert found is not None
        dest = f"snap-{os.urandom(9).hex()[:17]}"
        snapshot_store.insert_snapshot(conn, snapshot(
            dest, region, snapshot_rules.PENDING, "", snapshot_rules.ORIGIN_COPY))
        job = CopyJob(job_id=str(uuid.uuid4()), snapshot_id=dest, account_id=ACCOUNT,
                      access_key_id=DEV_ACCESS_KEY_ID, dest_region=region, source_region=SRC,
                      source_snapshot_id=source_id, source_lineage_id=found.lineage_id,
                      state=rules.QUEUED, cursor=0, blocks_done=0, bytes_moved=0, fencing=0,
                      created_at=created)
        job_store.insert_job(conn, job)
    return job


def run_copier(storage: Storage) -> None:
    clock = SystemClock()
    copier = Copier(storage, KeyRing(storage.box, clock), clock, CopySettings(workers=0))
    try:
        assert copier.run_once()
    finally:
        copier.stop()


def dest_state(storage: Storage, job: CopyJob) -> Snapshot:
    with storage.engine.connect() as conn:
        found = snapshot_store.get_snapshot(conn, job.dest_region, job.snapshot_id)
    assert found is not None
    return found


def read_all(storage: Storage, job: CopyJob) -> dict[int, bytes]:
    dest = dest_state(storage, job)
    with storage.engine.connect() as conn:
        refs = manifests.block_refs(conn, job.snapshot_id)
    codec = PlainBlocks(job.dest_region, dest.lineage_id)
    return {ref.block_index: storage.block_data.read(ref, codec) for ref in refs}


class HookedStore:
    """The real store; `on_put(key)` runs after each put."""

    def __init__(self, inner: BlockStore, on_put: Callable[[str], None]) -> None:
        self.inner, self.on_put = inner, on_put

    @property
    def probe_before_put(self) -> bool:
        return self.inner.probe_before_put

    def put(self, key: str, data: bytes) -> bool:
        written = self.inner.put(key, data)
        self.on_put(key)
        return written

    def get(self, key: str) -> bytes:
        return self.inner.get(key)

    def exists(self, key: str) -> bool:
        return self.inner.exists(key)

    def delete(self, key: str) -> None:
        self.inner.delete(key)

    def keys(self) -> Iterator[str]:
        return self.inner.keys()

    def discard_incomplete(self) -> int:
        return self.inner.discard_incomplete()


def hook_puts(storage: Storage, on_put: Callable[[str], None]) -> None:
    hooked = HookedStore(storage.blocks, on_put)
    storage.blocks = hooked
    storage.block_data = BlockData(storage.engine, hooked)


class CheckCountingStore(HookedStore):
    """The real store, counting existence checks; with `conditional`, it acts as the S3
    store does: its put is a conditional create that keeps an object already there and
    says so (False), so writers need no check before it."""

    def __init__(self, inner: BlockStore, conditional: bool) -> None:
        super().__init__(inner, lambda _key: None)
        self.conditional = conditional
        self.checks = 0
        self.lock = threading.Lock()

    @property
    def probe_before_put(self) -> bool:
        return not self.conditional

    def exists(self, key: str) -> bool:
        with self.lock:
            self.checks += 1
        return self.inner.exists(key)

    def put(self, key: str, data: bytes) -> bool:
        if self.conditional and self.inner.exists(key):
            return False
        return super().put(key, data)


@pytest.mark.parametrize("conditional", [False, True])
def test_no_check_before_a_put_that_is_a_conditional_create(storage: Storage,
                                                            conditional: bool) -> None:
    source_id, data = source(storage)
    job = copy_job(storage, source_id)
    counting = CheckCountingStore(storage.blocks, conditional)
    storage.blocks = counting
    storage.block_data = BlockData(storage.engine, counting)
    run_copier(storage)
    assert read_all(storage, job) == data
    # The checkpoint's re-check against the collector, one per block, always; a check
    # before each put as well only where the put is not its own check.
    assert counting.checks == (BLOCKS if conditional else 2 * BLOCKS)
    with storage.engine.connect() as conn:
        done = job_store.get_job(conn, job.job_id)
    assert done is not None and done.state == rules.COMPLETED
    assert done.bytes_moved == BLOCKS * BLOCK_SIZE


def test_completed_only_after_the_last_checkpoint_and_never_100_while_pending(
        storage: Storage) -> None:
    source_id, data = source(storage)
    job = copy_job(storage, source_id)
    seen: list[tuple[str, int]] = []
    lock = threading.Lock()

    def observe(_key: str) -> None:
        found = dest_state(storage, job)
        with lock:
            seen.append((found.state, found.progress))

    hook_puts(storage, observe)
    run_copier(storage)
    assert len(seen) == BLOCKS
    assert {state for state, _ in seen} == {snapshot_rules.PENDING}
    assert max(progress for _, progress in seen) < 100
    done = dest_state(storage, job)
    assert (done.state, done.progress) == (snapshot_rules.COMPLETED, 100)
    assert read_all(storage, job) == data
    assert rules.progress(BLOCKS, BLOCKS) == 99  # all blocks walked, not yet completed


def test_the_checkpoint_puts_back_what_a_collector_took(storage: Storage) -> None:
    """A collector treats the copy's fresh intents as abandoned (no grace at all) and takes
    the objects between their put and the checkpoint: the checkpoint's re-check, inside its
    transaction, puts them back."""
    source_id, data = source(storage)
    job = copy_job(storage, source_id)
    inner = storage.blocks
    future = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    taken: list[int] = []

    def collect_at_once(_key: str) -> None:
        # From the I/O threads' puts only: a put back inside the checkpoint runs in the
        # transaction that holds the database, where a collector (always another thread
        # in the server) would wait for that very transaction.
        if threading.current_thread().name.startswith("snapferry-copy-io"):
            taken.append(collect_abandoned(storage.engine, inner, future))

    hook_puts(storage, collect_at_once)
    run_copier(storage)
    assert sum(taken) > 0  # the collector did take objects from under the copy
    assert dest_state(storage, job).state == snapshot_rules.COMPLETED
    assert read_all(storage, job) == data


def test_a_damaged_source_block_fails_the_copy_and_its_blocks_are_collected(
        storage: Storage) -> None:
    source_id, _ = source(storage)
    objects_before = set(storage.blocks.keys())
    with storage.engine.connect() as conn:
        damaged = manifests.block_ref(conn, source_id, 100)  # in the second checkpoint
    assert damaged is not None
    path = storage.data_dir / "blocks" / damaged.block_id[:2] / damaged.block_id
    stored = path.read_bytes()
    path.write_bytes(bytes([stored[0] ^ 0xFF]) + stored[1:])  # (a \0 was no change 1 in 256)
    job = copy_job(storage, source_id)
    run_copier(storage)
    failed = dest_state(storage, job)
    assert failed.state == snapshot_rules.ERROR
    assert failed.state_message is not None
    assert "Block 100 of the source snapshot is damaged" in failed.state_message
    # The first checkpoint's blocks and the failed batch's are gone at once: no grace.
    assert set(storage.blocks.keys()) == objects_before
    with storage.engine.connect() as conn:
        assert manifests.block_total(conn, job.snapshot_id) == 0
        assert conn.execute(block_intents.select()).first() is None


def test_a_stale_worker_can_commit_nothing_after_losing_its_lease(storage: Storage) -> None:
    source_id, _ = source(storage, 1)
    job = copy_job(storage, source_id)
    with storage.engine.begin() as conn:
        first = job_store.claim(conn, "worker-a", NOW, LEASE)
        assert first is not None and first.job_id == job.job_id
        assert job_store.claim(conn, "worker-b", NOW + LEASE / 2, LEASE) is None  # held
        second = job_store.claim(conn, "worker-b", NOW + LEASE * 2, LEASE)  # expired
        assert second is not None and second.fencing == first.fencing + 1
        assert not job_store.checkpoint(conn, first, NOW + LEASE * 2, LEASE, cursor=7)
        assert not job_store.finish(conn, first, rules.COMPLETED, NOW + LEASE * 2)
        assert job_store.checkpoint(conn, second, NOW + LEASE * 2, LEASE, cursor=1)
        assert job_store.get_job(conn, job.job_id).cursor == 1  # type: ignore[union-attr]


def test_a_second_copy_of_a_lineage_to_the_same_place_waits_for_the_first(
        storage: Storage) -> None:
    source_id, _ = source(storage, 1)
    first = copy_job(storage, source_id, created=NOW)
    second = copy_job(storage, source_id, created=NOW + dt.timedelta(seconds=1))
    elsewhere = copy_job(storage, source_id, region="us-west-2",
                         created=NOW + dt.timedelta(seconds=2))
    with storage.engine.begin() as conn:
        claimed = job_store.claim(conn, "worker-a", NOW, LEASE)
        assert claimed is not None and claimed.job_id == first.job_id
        # The second waits, while the same lineage to another region does not.
        other = job_store.claim(conn, "worker-b", NOW, LEASE)
        assert other is not None and other.job_id == elsewhere.job_id
        assert job_store.claim(conn, "worker-c", NOW, LEASE) is None
        assert job_store.finish(conn, claimed, rules.COMPLETED, NOW)
        then = job_store.claim(conn, "worker-c", NOW, LEASE)
        assert then is not None and then.job_id == second.job_id


def test_the_copy_quota_counts_per_account_and_region(storage: Storage) -> None:
    source_id, _ = source(storage, 1)
    copy_job(storage, source_id, region=DST)
    copy_job(storage, source_id, region=DST)
    copy_job(storage, source_id, region="us-west-2")
    with storage.engine.connect() as conn:
        assert job_store.open_jobs(conn, ACCOUNT, DST) == 2
        assert job_store.open_jobs(conn, ACCOUNT, "us-west-2") == 1
        assert job_store.open_jobs(conn, "999999999999", DST) == 0


def test_block_puts_are_fsynced(storage: Storage, monkeypatch: pytest.MonkeyPatch) -> None:
    """The file and its directory reach the disk before put returns (a crash after an
    acknowledged write keeps it). os.fsync is wrapped, not replaced: it still runs."""
    synced: list[str] = []
    real = os.fsync

    def recording(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real(fd)

    monkeypatch.setattr(os, "fsync", recording)
    key = hashlib.sha256(b"durable").hexdigest()
    storage.blocks.put(key, b"durable")
    directory = storage.data_dir / "blocks" / key[:2]
    assert any(Path(path).parent == storage.data_dir / "blocks" / "tmp" and key in path
               for path in synced), synced  # the temp file's data, before its rename
    assert str(directory) in synced  # the rename itself


class ManualClock:
    """The leases' clock, moved by the test: a batch outlasts its lease without a sleep."""

    def __init__(self, at: dt.datetime) -> None:
        self.at = at

    def now(self) -> dt.datetime:
        return self.at


def lease_of(storage: Storage, job: CopyJob) -> CopyJob:
    with storage.engine.connect() as conn:
        found = job_store.get_job(conn, job.job_id)
    assert found is not None
    return found


def poll(condition: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


def test_a_batch_slower_than_its_lease_keeps_its_job(storage: Storage) -> None:
    """The heartbeat renews the lease while a batch is held up: the clock passes the lease
    granted at claim, yet no other worker can take the job, and it completes on the first
    worker's fencing number."""
    source_id, data = source(storage, 3)
    job = copy_job(storage, source_id)
    putting, release = threading.Event(), threading.Event()

    def hold(_key: str) -> None:
        putting.set()
        release.wait(60)  # a put (a slow object store) held until the test lets it go

    hook_puts(storage, hold)
    clock = ManualClock(NOW)
    copier = Copier(storage, KeyRing(storage.box, clock), clock,
                    CopySettings(workers=0, lease_seconds=0.3))
    thread = threading.Thread(target=copier.run_once)
    thread.start()
    try:
        assert putting.wait(30)
        claimed = lease_of(storage, job)
        assert claimed.lease_expires is not None
        clock.at = claimed.lease_expires + dt.timedelta(seconds=1)  # past the first lease
        poll(lambda: lease_of(storage, job).lease_expires > clock.at,  # type: ignore[operator]
             "the lease was not renewed while the batch ran")
        with storage.engine.begin() as conn:
            assert job_store.claim(conn, "worker-b", clock.at, LEASE) is None
    finally:
        release.set()
        thread.join(60)
        copier.stop()
    done = lease_of(storage, job)
    assert (done.state, done.fencing) == (rules.COMPLETED, 1)
    assert read_all(storage, job) == data


def test_a_heartbeat_that_finds_the_job_taken_over_stops_the_batch(
        storage: Storage, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="snapferry.engine.copier")
    source_id, _ = source(storage)
    objects_before = set(storage.blocks.keys())
    job = copy_job(storage, source_id)
    puts: list[str] = []
    putting, release = threading.Event(), threading.Event()

    def hold(key: str) -> None:
        puts.append(key)
        putting.set()
        release.wait(60)

    hook_puts(storage, hold)
    clock = ManualClock(NOW)
    copier = Copier(storage, KeyRing(storage.box, clock), clock,
                    CopySettings(workers=0, lease_seconds=0.3))
    thread = threading.Thread(target=copier.run_once)
    thread.start()
    try:
        assert putting.wait(30)
        with storage.engine.begin() as conn:  # another worker, its clock past the lease
            taken = job_store.claim(conn, "worker-b", NOW + LEASE, LEASE)
        assert taken is not None and taken.fencing == 2
        poll(lambda: any("lost its lease" in r.getMessage() for r in caplog.records),
             "the heartbeat did not notice the takeover")
    finally:
        release.set()
        thread.join(60)
        copier.stop()
    # Only the puts already under way finished; the rest of the 64-block batch was not put,
    # and what was put is taken back at once.
    assert len(puts) <= IO_THREADS < MAX_BATCH
    assert set(storage.blocks.keys()) == objects_before
    after = lease_of(storage, job)
    assert (after.lease_owner, after.fencing, after.cursor) == ("worker-b", 2, 0)
