"""The server's background thread: finishes what requests start and tidies what they leave.

- Snapshots of volumes are created `pending` with their block map already fixed (the
  volume's blocks at that moment, shared); this thread flips them to `completed`.
- EBS-direct snapshots left idle past their Timeout are cancelled (`error`), their blocks
  collected.
- Objects abandoned by writers that died (any process: `serve` or `worker`) are collected
  through their stale intents (storage/collector.py), never by listing the block store.
It runs when woken by a request and every few seconds, and once at start-up, which is also
when a crash's unreferenced blocks and interrupted puts are collected.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading

from sqlalchemy import select

from snapferry.domain import snapshots as rules
from snapferry.domain import volumes as volume_rules
from snapferry.domain.clock import Clock
from snapferry.storage import creators, manifests
from snapferry.storage import snapshots as store
from snapferry.storage.collector import collect, collect_abandoned, collect_unreferenced
from snapferry.storage.datadir import Storage
from snapferry.storage.metadata import snapshots, volumes
from snapferry.storage.volumes import set_volume_state

log = logging.getLogger(__name__)
PERIOD_SECONDS = 5.0
# A writer's intent this old, with no block row, marks an object its writer abandoned. Any
# age is safe (storage/manifests.py); a generous one spares re-writing a slow writer's work.
DEFAULT_ORPHAN_GRACE = dt.timedelta(hours=1)


class Background:
    def __init__(self, storage: Storage, clock: Clock,
                 orphan_grace: dt.timedelta = DEFAULT_ORPHAN_GRACE) -> None:
        self.storage = storage
        self.clock = clock
        self.orphan_grace = orphan_grace
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, startup: bool = True) -> None:
        """startup False: another process of this server already did the start-up work
        (`serve --processes N` does it once, before starting its API processes: one that
        started later must not fail volumes a sibling is creating)."""
        if startup:
            self.start_up()
        self.run_once()
        self._thread = threading.Thread(target=self._loop, name="snapferry-background",
                                        daemon=True)
        self._thread.start()

    def start_up(self) -> None:
        """What a crash may have left: volumes half made, interrupted puts, unreferenced
        blocks."""
        self.fail_interrupted_volumes()
        self.storage.blocks.discard_incomplete()
        collect_unreferenced(self.storage.engine, self.storage.blocks)

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def wake(self) -> None:
        self._wake.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(PERIOD_SECONDS)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                self.run_once()
            except Exception:  # keep the thread alive; the next round retries
                log.exception("background round failed")

    def run_once(self) -> None:
        self.fail_interrupted_volumes(at_startup=False)
        self.finish_volume_snapshots()
        self.cancel_idle_snapshots()
        self.collect_abandoned()

    def collect_abandoned(self) -> None:
        # Wall time, like the writers' intents (storage/blockdata.py), not the test clock.
        older_than = dt.datetime.now(dt.UTC) - self.orphan_grace
        collect_abandoned(self.storage.engine, self.storage.blocks, older_than)

    def fail_interrupted_volumes(self, at_startup: bool = True) -> None:
        """Volumes whose blocks were being encrypted anew when their process died: `error`,
        their partial blocks freed. Never one a live process (another API machine) is
        creating (storage/creators.py); on PostgreSQL checked every round, not only at
        start-up, so a machine that died is noticed by those still running."""
        doomed: list[str] = []
        with self.storage.engine.begin() as conn:
            stuck = conn.execute(select(volumes.c.volume_id).where(
                volumes.c.state == volume_rules.CREATING)).scalars().all()
            for volume_id in creators.abandoned(conn, list(stuck), at_startup):
                if set_volume_state(conn, volume_id, volume_rules.ERROR,
                                    only_if=volume_rules.CREATING):
                    doomed += manifests.drop_manifest(conn, volume_id)
        collect(self.storage.engine, self.storage.blocks, doomed)

    def finish_volume_snapshots(self) -> None:
        with self.storage.engine.begin() as conn:
            pending = conn.execute(
                select(snapshots.c.snapshot_id).where(
                    snapshots.c.state == rules.PENDING, snapshots.c.origin == rules.ORIGIN_VOLUME)
            ).scalars().all()
            for snapshot_id in pending:
                store.update_snapshot(conn, snapshot_id, only_if_state=rules.PENDING,
                                      state=rules.COMPLETED, progress=100,
                                      completion_time=self.clock.now())

    def cancel_idle_snapshots(self) -> None:
        cancel_idle(self.storage, self.clock.now())


def cancel_idle(storage: Storage, now: dt.datetime, only: list[str] | None = None) -> list[str]:
    """Cancel (error) EBS-direct snapshots idle past their Timeout, and collect their blocks.
    Returns the ids cancelled."""
    doomed: list[str] = []
    cancelled: list[str] = []
    with storage.engine.begin() as conn:
        query = select(snapshots.c.snapshot_id).where(
            snapshots.c.state == rules.PENDING, snapshots.c.expires_at < now)
        if only is not None:
            query = query.where(snapshots.c.snapshot_id.in_(only))
        for snapshot_id in conn.execute(query).scalars().all():
            if store.update_snapshot(
                conn, snapshot_id, only_if_state=rules.PENDING, state=rules.ERROR,
                expires_at=None, state_message=rules.TIMED_OUT_MESSAGE,
            ):
                cancelled.append(snapshot_id)
                doomed.extend(manifests.drop_manifest(conn, snapshot_id))
    collect(storage.engine, storage.blocks, doomed)
    return cancelled
