"""engine/background.py on a real data dir: what start-up fails and frees, which pending
snapshots it finishes or cancels (and when exactly), its orphan grace, and its thread
answering a wake and a stop.

Before these, much of background.py was guarded only by integration tests (a server start
per mutant); tests/mutation/run.py runs this file first.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import time
from collections.abc import Callable

from snapferry.domain import snapshots as rules
from snapferry.domain import volumes as volume_rules
from snapferry.domain.envelope import PlainBlocks
from snapferry.domain.snapshots import Snapshot
from snapferry.domain.volumes import Volume
from snapferry.engine.background import Background, cancel_idle
from snapferry.storage import manifests
from snapferry.storage import snapshots as store
from snapferry.storage import volumes as volume_store
from snapferry.storage.blockdata import BlockData
from snapferry.storage.datadir import Storage

PLAIN = PlainBlocks("us-east-1", "lineage")
NOW = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.UTC)


class FixedClock:
    def now(self) -> dt.datetime:
        return NOW


def pending(storage: Storage, origin: str, timeout: int | None = None) -> str:
    snapshot_id = f"snap-{os.urandom(9).hex()[:17]}"
    with storage.engine.begin() as conn:
        store.insert_snapshot(conn, Snapshot(
            snapshot_id=snapshot_id, account_id="000000000000", region="us-east-1",
            volume_id=rules.COPY_VOLUME_ID, volume_size=1, state=rules.PENDING, progress=0,
            start_time=NOW, description="", encrypted=False, lineage_id="lineage",
            origin=origin, timeout_minutes=timeout,
            expires_at=NOW + dt.timedelta(minutes=timeout) if timeout else None))
    return snapshot_id


def state_of(storage: Storage, snapshot_id: str) -> str:
    with storage.engine.connect() as conn:
        found = store.get_snapshot(conn, "us-east-1", snapshot_id)
    assert found is not None
    return found.state


def write(storage: Storage, resource_id: str, data: bytes) -> None:
    storage.block_data.write(resource_id, 0, data, hashlib.sha256(data).digest(),
                             lambda conn: None, PLAIN)


def volume(storage: Storage, state: str) -> str:
    volume_id = f"vol-{os.urandom(9).hex()[:17]}"
    with storage.engine.begin() as conn:
        volume_store.insert_volume(conn, Volume(
            volume_id=volume_id, account_id="000000000000", region="us-east-1",
            availability_zone="us-east-1a", size=1, volume_type="gp2", snapshot_id="",
            state=state, encrypted=False, lineage_id="lineage", create_time=NOW))
    write(storage, volume_id, os.urandom(1024))
    return volume_id


def volume_state(storage: Storage, volume_id: str) -> str:
    with storage.engine.connect() as conn:
        found = volume_store.get_volume(conn, "000000000000", "us-east-1", volume_id)
    assert found is not None
    return found.state


def wait_for(condition: Callable[[], bool], seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "not reached in time"
        time.sleep(0.02)  # polling an observable state, not a synchronisation guess


def test_start_up_fails_volumes_left_creating_and_frees_their_blocks(storage: Storage) -> None:
    stuck, done = volume(storage, volume_rules.CREATING), volume(storage, volume_rules.AVAILABLE)
    objects = set(storage.blocks.keys())
    assert len(objects) == 2
    background = Background(storage, FixedClock())
    background.start()
    background.stop()
    assert volume_state(storage, stuck) == volume_rules.ERROR
    assert volume_state(storage, done) == volume_rules.AVAILABLE
    with storage.engine.connect() as conn:
        assert manifests.block_total(conn, stuck) == 0
        assert manifests.block_total(conn, done) == 1
    assert len(set(storage.blocks.keys())) == 1  # the failed volume's block is collected


def test_a_round_after_start_up_leaves_a_volume_being_created_alone(storage: Storage) -> None:
    """On one machine only start-up may fail `creating` volumes: after it, a volume in that
    state is one a request of this process is creating now."""
    background = Background(storage, FixedClock())
    background.start_up()
    creating = volume(storage, volume_rules.CREATING)
    background.run_once()
    background.start(startup=False)  # the first round of `serve --processes N`'s siblings
    background.stop()
    assert volume_state(storage, creating) == volume_rules.CREATING
    with storage.engine.connect() as conn:
        assert manifests.block_total(conn, creating) == 1


def test_only_pending_snapshots_of_volumes_are_finished(storage: Storage) -> None:
    of_volume, direct = pending(storage, rules.ORIGIN_VOLUME), pending(storage, rules.ORIGIN_EBS)
    copy = pending(storage, rules.ORIGIN_COPY)
    Background(storage, FixedClock()).finish_volume_snapshots()
    assert state_of(storage, of_volume) == rules.COMPLETED
    assert state_of(storage, direct) == rules.PENDING
    assert state_of(storage, copy) == rules.PENDING


def test_a_snapshot_idle_until_exactly_its_timeout_is_not_yet_cancelled(
        storage: Storage) -> None:
    idle = pending(storage, rules.ORIGIN_EBS, timeout=10)
    assert cancel_idle(storage, NOW + dt.timedelta(minutes=10)) == []
    assert cancel_idle(storage, NOW + dt.timedelta(minutes=10, microseconds=1000)) == [idle]
    assert state_of(storage, idle) == rules.ERROR


def test_cancel_idle_can_be_limited_to_named_snapshots(storage: Storage) -> None:
    first, second = (pending(storage, rules.ORIGIN_EBS, timeout=10) for _ in range(2))
    later = NOW + dt.timedelta(hours=1)
    assert cancel_idle(storage, later, only=[second]) == [second]
    assert state_of(storage, first) == rules.PENDING
    assert cancel_idle(storage, later, only=[]) == []
    assert cancel_idle(storage, later) == [first]


def test_a_round_cancels_idle_snapshots_by_the_clock(storage: Storage) -> None:
    idle = pending(storage, rules.ORIGIN_EBS, timeout=10)

    class Later:
        def now(self) -> dt.datetime:
            return NOW + dt.timedelta(minutes=11)

    Background(storage, FixedClock()).run_once()
    assert state_of(storage, idle) == rules.PENDING
    Background(storage, Later()).run_once()
    assert state_of(storage, idle) == rules.ERROR


def abandoned_object(storage: Storage) -> str:
    """An object put under an intent whose writer never recorded it."""
    data = os.urandom(1024)
    item = BlockData._encode(data, hashlib.sha256(data).digest(), PLAIN)
    storage.block_data.put(storage.block_data.intend([item]))
    return item.key


def test_abandoned_objects_wait_out_the_orphan_grace(storage: Storage) -> None:
    key = abandoned_object(storage)
    Background(storage, FixedClock()).collect_abandoned()  # the default hour
    assert storage.blocks.exists(key)
    Background(storage, FixedClock(), orphan_grace=dt.timedelta(minutes=5)).collect_abandoned()
    assert storage.blocks.exists(key)
    Background(storage, FixedClock(), orphan_grace=dt.timedelta(seconds=-1)).run_once()
    assert not storage.blocks.exists(key)


def test_the_thread_runs_a_round_when_woken_and_ends_when_stopped(storage: Storage) -> None:
    background = Background(storage, FixedClock())
    background.start()
    try:
        snapshot_id = pending(storage, rules.ORIGIN_VOLUME)
        background.wake()
        wait_for(lambda: state_of(storage, snapshot_id) == rules.COMPLETED, seconds=4.0)
    finally:
        background.stop()
    assert background._thread is not None and not background._thread.is_alive()
    later = pending(storage, rules.ORIGIN_VOLUME)
    background.wake()
    assert state_of(storage, later) == rules.PENDING  # stopped: nothing runs any more


def test_a_failing_round_does_not_end_the_thread(storage: Storage) -> None:
    background = Background(storage, FixedClock())
    rounds = []
    real = background.run_once

    def failing_once() -> None:
        rounds.append(1)
        if len(rounds) == 2:  # the first round is start-up's own
            raise RuntimeError("a bad round")
        real()

    background.run_once = failing_once  # type: ignore[method-assign]
    background.start()
    try:
        background.wake()
        wait_for(lambda: len(rounds) >= 2, seconds=4.0)
        snapshot_id = pending(storage, rules.ORIGIN_VOLUME)
        background.wake()
        wait_for(lambda: state_of(storage, snapshot_id) == rules.COMPLETED, seconds=4.0)
    finally:
        background.stop()
