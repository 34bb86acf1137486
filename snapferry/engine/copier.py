"""The copy engine: workers that claim copy jobs, move blocks, checkpoint, and finish.

A worker holds a job under a lease (owner, expiry) and a fencing number. Each batch of
blocks is made durable first (objects put), then one transaction checks the fencing
number, renews the lease, adds the batch's manifest rows and advances the cursor. While a
batch runs, a heartbeat renews the lease on a timer (a third of the lease), so a batch
slower than the lease (a slow disk or object store, a paced copy) is not taken over; a
heartbeat that finds the fencing number moved stops the batch (nothing more is put). A worker
that dies leaves a lease that expires; the next worker to claim the job gets a higher
fencing number and resumes at the cursor, so the dead worker, should it wake, can commit
nothing. Blocks the dead worker had put but not recorded are found in place and adopted
(names are deterministic in the destination lineage); every batch is written under intents
and re-checked inside its checkpoint, so no collector can take a block from under it
(storage/manifests.py). The snapshot is flipped to
`completed` last, in the transaction that finishes the job.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import socket
import threading
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.engine import Connection

from snapferry.config import CopySettings
from snapferry.domain import copies as rules
from snapferry.domain import encryption, faults
from snapferry.domain import snapshots as snapshot_rules
from snapferry.domain.accounts import Principal
from snapferry.domain.blocks import BLOCK_SIZE
from snapferry.domain.clock import Clock
from snapferry.domain.copies import CopyFailed, CopyJob
from snapferry.domain.envelope import BlockCodec
from snapferry.domain.keys import Key, check_usable
from snapferry.engine import bundle_copier
from snapferry.engine.presigned import check_presigned_url
from snapferry.errors import ServiceError
from snapferry.services.keyring import KeyRing
from snapferry.storage import copies as job_store
from snapferry.storage import faults as fault_store
from snapferry.storage import image_copies, manifests, rates
from snapferry.storage import keys as key_store
from snapferry.storage import snapshots as snapshot_store
from snapferry.storage.blockdata import CorruptBlock, Intent, Pending
from snapferry.storage.collector import collect, collect_abandoned
from snapferry.storage.datadir import Storage
from snapferry.storage.engines import unavailable
from snapferry.storage.manifests import BlockRef
from snapferry.storage.metadata import blocks

log = logging.getLogger(__name__)
MAX_BATCH = 64  # blocks (32 MiB) per checkpoint
GIB = 2**30
IO_THREADS = 8  # block reads, crypto and fsync'd writes overlap; all release the GIL
FAR_FUTURE = dt.datetime(9999, 1, 1, tzinfo=dt.UTC)  # every intent counts as abandoned
UNAVAILABLE_PAUSE = 1.0  # seconds before a worker tries again after an engine outage
SOURCE_KEY_OPERATIONS = ("DescribeKey", "Decrypt", "CreateGrant", "ReEncryptFrom")


@dataclass
class _Moving:
    """A batch's objects being put on the I/O threads, each under its intent."""

    intents: list[Intent]
    futures: list[Future[int]]


@dataclass
class _Batch:
    refs: list[BlockRef]
    gone: list[int]
    cursor: int | None  # after the batch; None: nothing was left to copy
    moving: _Moving | None


class LostLease(Exception):
    """The job was taken over (lease expired) or cancelled: stop, commit nothing."""


class Stopping(Exception):
    """The worker is shutting down: leave the job for the next one."""


class Heartbeat:
    """Renews one job's lease every third of the lease while its worker moves blocks, in a
    thread of its own: a batch is then never bounded by the lease. Fenced like a
    checkpoint: once the renewal finds the job taken over or cancelled, `lost` is set and
    the worker stops at its next step, putting nothing more."""

    def __init__(self, storage: Storage, clock: Clock, job: CopyJob, lease: dt.timedelta
                 ) -> None:
        self.storage, self.clock, self.job, self.lease = storage, clock, job, lease
        self.lost = threading.Event()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name=f"snapferry-lease-{job.job_id[:8]}")

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()

    def check(self) -> None:
        if self.lost.is_set():
            raise LostLease()

    def _run(self) -> None:
        period = self.lease.total_seconds() / 3
        while not self._done.wait(period):
            try:
                with self.storage.engine.begin() as conn:
                    held = job_store.checkpoint(conn, self.job, self.clock.now(), self.lease)
            except Exception as error:  # an engine outage: the next beat tries again, and
                log.warning("copy %s: lease renewal failed: %s", self.job.job_id, error)
                continue  # the fencing number still guards every checkpoint
            if not held:
                log.info("copy %s lost its lease (taken over or cancelled): stopping",
                         self.job.job_id)
                self.lost.set()
                return


@dataclass
class Throttle:
    """Spend at most `rate` bytes per second over the life of one copy (None: no limit)."""

    rate: float | None
    started: float = 0.0
    spent: int = 0

    def delay_after(self, moved: int) -> float:
        if not self.rate:
            return 0.0
        if not self.started:
            self.started = time.monotonic()
        self.spent += moved
        return max(0.0, self.started + self.spent / self.rate - time.monotonic())


class Copier:
    def __init__(self, storage: Storage, keyring: KeyRing, clock: Clock,
                 settings: CopySettings) -> None:
        self.storage = storage
        self.keyring = keyring
        self.clock = clock
        self.settings = settings
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.lease = dt.timedelta(seconds=settings.lease_seconds)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._io = ThreadPoolExecutor(IO_THREADS, thread_name_prefix="snapferry-copy-io")

    # ---- lifecycle ------------------------------------------------------------------------

    def start(self, workers: int) -> None:
        for number in range(workers):
            thread = threading.Thread(target=self._loop, name=f"snapferry-copier-{number}",
                                      daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        for thread in self._threads:
            thread.join(timeout=30)
        self._io.shutdown(wait=True)

    def wake(self) -> None:
        self._wake.set()

    def _loop(self) -> None:
        idle = min(1.0, self.settings.lease_seconds / 2)
        while not self._stop.is_set():
            try:
                worked = self.run_once()
            except Exception:  # keep the worker alive; the job's lease will free it
                log.exception("copy worker round failed")
                worked = False
            if not worked:
                self._wake.wait(idle)
                self._wake.clear()

    def run_once(self) -> bool:
        """Claim and run one job; False when none was free."""
        with self.storage.engine.begin() as conn:
            job = job_store.claim(conn, self.owner, self.clock.now(), self.lease)
        if job is None:
            return False
        self.run(job)
        return True

    # ---- one job --------------------------------------------------------------------------

    def run(self, job: CopyJob) -> None:
        try:
            if job.kind == rules.BUNDLE:
                bundle_copier.run(self, job)  # an instance-store image's objects
            else:
                if job.mode is None:
                    self._plan(job)
                self._copy(job)
        except CopyFailed as failure:
            if job.kind == rules.BUNDLE:
                bundle_copier.fail(self, job, str(failure))
            else:
                self._fail(job, str(failure))
        except LostLease:
            log.info("copy %s was taken over or cancelled", job.job_id)
        except Stopping:
            self._release(job)
        except Exception as error:
            if unavailable(error):
                # The database or the block store is down or restarting: not the copy's
                # fault. Hand the job back (or let its lease run out if the database is
                # the one down); a worker resumes it at its checkpoint.
                log.warning("copy %s paused, an engine is unavailable: %s", job.job_id, error)
                with contextlib.suppress(Exception):
                    self._release(job)
                self._stop.wait(UNAVAILABLE_PAUSE)
                return
            log.exception("copy %s failed", job.job_id)
            message = "The copy failed on an internal error; see the server's log."
            if job.kind == rules.BUNDLE:
                bundle_copier.fail(self, job, message)
            else:
                self._fail(job, message)

    def _principal(self, job: CopyJob) -> Principal:
        """The principal that asked for the copy, with its policies as they are now: the
        copy acts with its permissions (a session's, even after the session expires)."""
        principal = self.storage.accounts.principal_of_key(job.access_key_id)
        if principal is None or principal.account_id != job.account_id:
            raise CopyFailed("The credentials that requested this copy no longer exist or "
                             "are inactive.")
        return principal

    def _plan(self, job: CopyJob) -> None:
        """The asynchronous checks, then full, incremental or shared, and the destination's
        lineage and key: all recorded in one transaction with the job."""
        principal = self._principal(job)
        now = self.clock.now()
        check_presigned_url(job, self.storage.accounts.find)
        with self.storage.engine.begin() as conn:
            source = snapshot_store.get_snapshot(conn, job.source_region, job.source_snapshot_id)
            if source is None or source.state != snapshot_rules.COMPLETED:
                raise CopyFailed(f"The source snapshot {job.source_snapshot_id} no longer exists "
                                 "or is not completed.")
            source_key = self._source_key(conn, job, source.kms_key_id, principal)
            given = self._key(conn, job.kms_key_text, job, principal) if job.kms_key_text else None
            by_default, _ = key_store.ebs_encryption(conn, job.account_id, job.dest_region)
            same_place = (source.region == job.dest_region
                          and source.account_id == job.account_id)
            outcome = encryption.for_data_from(
                source.encrypted, same_place, job.encrypted, job.kms_key_text,
                given is not None and source_key is not None and given.arn == source_key.arn,
                by_default)
            dest_key = {encryption.SOURCE: source_key, encryption.GIVEN: given}.get(
                outcome.key or "")
            if outcome.key == encryption.DEFAULT:
                dest_key = self._key(conn, None, job, principal)
            dest_arn = dest_key.arn if dest_key else None
            latest = job_store.latest_copy(conn, source.lineage_id, job.account_id,
                                           job.dest_region, job.created_at)
            base_source = None
            if same_place and not outcome.recode:
                mode, lineage = rules.SHARED, source.lineage_id
            elif latest and latest[1] and latest[0].dest_key_arn == dest_arn:
                mode, lineage = rules.INCREMENTAL, latest[0].dest_lineage_id
                base_source = self._start_from(conn, job, latest[0], source.lineage_id)
            elif dest_key is not None:
                mode, lineage = rules.FULL, self.keyring.new_lineage(conn, dest_key)[0]
            else:
                mode, lineage = rules.FULL, str(uuid.uuid4())
            assert lineage is not None
            total = (manifests.changed_total(conn, base_source, source.snapshot_id)
                     if base_source else manifests.block_total(conn, source.snapshot_id))
            if not job_store.checkpoint(conn, job, now, self.lease, mode=mode,
                                        dest_lineage_id=lineage, dest_key_arn=dest_arn,
                                        base_source_snapshot_id=base_source,
                                        blocks_total=total):
                raise LostLease()
            snapshot_store.update_snapshot(conn, job.snapshot_id, lineage_id=lineage,
                                           encrypted=outcome.encrypted, kms_key_id=dest_arn)
        job.mode, job.dest_lineage_id, job.dest_key_arn, job.blocks_total = (
            mode, lineage, dest_arn, total)
        job.base_source_snapshot_id = base_source

    def _start_from(self, conn: Connection, job: CopyJob, base: CopyJob,
                    lineage_id: str) -> str | None:
        """An incremental copy starts from the previous copy's block map; returns the
        previous copy's source, to diff against, when it still exists in the lineage."""
        previous = snapshot_store.get_snapshot(conn, job.source_region, base.source_snapshot_id)
        if previous is None or previous.lineage_id != lineage_id:
            return None
        manifests.copy_manifest(conn, base.snapshot_id, job.snapshot_id)
        return previous.snapshot_id

    def _source_key(self, conn: Connection, job: CopyJob, arn: str | None,
                    principal: Principal) -> Key | None:
        if arn is None:
            return None
        try:
            key = self.keyring.resolve(conn, arn, job.account_id, job.source_region)
            for operation in SOURCE_KEY_OPERATIONS:
                if not self.keyring.may(conn, principal, key, operation, via_ec2=True):
                    raise CopyFailed(rules.KEY_NOT_ACCESSIBLE)
            check_usable(key)
            return key
        except ServiceError:
            raise CopyFailed(rules.KEY_NOT_ACCESSIBLE) from None

    def _key(self, conn: Connection, text: str | None, job: CopyJob, principal: Principal) -> Key:
        """The destination key: named by the request in any of its four forms, or the
        account's default EBS key in the destination region."""
        try:
            key = (self.keyring.resolve(conn, text, job.account_id, job.dest_region)
                   if text else
                   self.keyring.ebs_default_key(conn, job.account_id, job.dest_region))
            return self.keyring.usable_for_ebs(conn, principal, key)
        except ServiceError:
            raise CopyFailed(rules.KEY_NOT_ACCESSIBLE) from None

    def _rate(self, job: CopyJob) -> float | None:
        limits = [self.settings.rate_limit] if self.settings.rate_limit else []
        if job.deadline is not None:
            limits.append(self.settings.time_based_copy_rate)
        return min(limits) if limits else None

    def _pair_delay(self, job: CopyJob, moved: int) -> float:
        """Time-based copies share their region pair's rate with every other worker, in any
        process (storage/rates.py)."""
        if job.deadline is None or not moved:
            return 0.0
        with self.storage.engine.begin() as conn:
            return rates.pay(conn, job.source_region, job.dest_region, moved,
                             self.settings.time_based_pair_rate, time.time())

    def _copy(self, job: CopyJob) -> None:
        assert job.dest_lineage_id is not None
        with self.storage.engine.connect() as conn:
            try:
                source_lineage = job.source_lineage_id
                source_codec = self.keyring.codec(conn, source_lineage, job.source_region)
                dest_codec = self.keyring.codec(conn, job.dest_lineage_id, job.dest_region)
            except ServiceError:
                raise CopyFailed(rules.KEY_NOT_ACCESSIBLE) from None
        rate = self._rate(job)
        throttle = Throttle(rate)
        batch = MAX_BATCH if not rate else max(1, min(MAX_BATCH, int(rate // BLOCK_SIZE)))
        begun, walked = time.monotonic(), 0
        ahead: _Batch | None = None  # the next batch, already moving
        with Heartbeat(self.storage, self.clock, job, self.lease) as beat:
            try:
                while True:
                    if self._stop.is_set():
                        raise Stopping()
                    beat.check()
                    applying = self._held(job, self._fault_rules(job), beat)
                    # A minimum duration in proportion to the blocks walked (server or fault
                    # rule), in batches of about a second's blocks, so progress shows as it goes.
                    pace = faults.seconds_per_gib(applying, self.settings.min_seconds_per_gib)
                    step = batch if not pace else max(1, min(batch, int(GIB / pace / BLOCK_SIZE)))
                    size = self._batch_before_fault(job, applying, step)
                    current, ahead = ahead or self._start_batch(job, job.cursor, size, source_codec,
                                                                dest_codec, beat), None
                    if current.cursor is None:
                        break
                    if not rate and not pace and not applying and job.deadline is None:
                        # Nothing paces this copy: the next batch is queued on the I/O threads
                        # behind this one's puts, before they are waited for, so no I/O thread
                        # idles while this batch's last puts finish, while the next batch is
                        # planned (its rows read, its intents committed) or while this one's
                        # checkpoint commits. It is recorded only after this one, and only once
                        # its own puts are durable. (A fault rule added meanwhile applies one
                        # batch later.)
                        try:
                            ahead = self._start_batch(job, current.cursor, step, source_codec,
                                                      dest_codec, beat)
                        except Stopping:
                            ahead = None  # shutting down: this batch is still recorded below
                    intents, moved = self._end_move(current)
                    delay = max(throttle.delay_after(moved), self._pair_delay(job, moved))
                    walked += (len(current.refs) + len(current.gone)) * BLOCK_SIZE
                    if pace:
                        delay = max(delay, begun + walked / GIB * pace - time.monotonic())
                    try:
                        self._pause(delay, beat)
                        self._checkpoint(job, current.refs, current.gone, current.cursor,
                                         dest_codec, moved, intents)
                    except LostLease:
                        # Cancelled (or taken over): take back what this batch put now, as for
                        # a failed put, rather than a grace period later.
                        collect_abandoned(self.storage.engine, self.storage.blocks, FAR_FUTURE,
                                          only=[intent.item.key for intent in intents])
                        raise
            finally:
                if ahead is not None:  # leaving early: the batch ahead is never recorded
                    self._drop(ahead)
        self._finish(job)

    def _start_batch(self, job: CopyJob, cursor: int, size: int, source: BlockCodec,
                     dest: BlockCodec, beat: Heartbeat) -> _Batch:
        """The batch at `cursor`, its blocks already moving (nothing when it is empty)."""
        refs, gone, after = self._next_batch(job, size, cursor)
        moving = self._start_move(refs, source, dest, beat) if after is not None else None
        return _Batch(refs, gone, after, moving)

    def _drop(self, batch: _Batch) -> None:
        """A batch that will not be recorded: wait for its puts, then take back what they
        put (the same protocol as for a dead writer's objects)."""
        if batch.moving is None:
            return
        wait(batch.moving.futures)
        collect_abandoned(self.storage.engine, self.storage.blocks, FAR_FUTURE,
                          only=[intent.item.key for intent in batch.moving.intents])

    def _pause(self, seconds: float, beat: Heartbeat) -> None:
        """Wait out a rate or pace delay; stop early on shutdown or a lost lease."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            if self._stop.wait(min(left, 0.25)):
                raise Stopping()
            beat.check()

    def _fault_rules(self, job: CopyJob) -> list[faults.FaultRule]:
        """The operator's fault rules for this copy, read afresh at every checkpoint."""
        with self.storage.engine.connect() as conn:
            rules = fault_store.list_rules(conn)
            images = (fault_store.image_copy_ids(conn, job.snapshot_id)
                      if faults.names_images(rules) else ())
        return faults.copy_rules(rules, job.dest_region, job.account_id,
                                 (job.source_snapshot_id, job.snapshot_id, *images))

    def _held(self, job: CopyJob, rules: list[faults.FaultRule], beat: Heartbeat
              ) -> list[faults.FaultRule]:
        """Wait, checkpointed and keeping the lease, while a hold rule stops this copy where
        it is; a shutdown hands the job back meanwhile. Returns the rules as they are after."""
        while faults.holding(rules, job.blocks_done, job.blocks_total):
            self._pause(faults.HOLD_CHECK_SECONDS, beat)
            rules = self._fault_rules(job)
        return rules

    @staticmethod
    def _batch_before_fault(job: CopyJob, rules: list[faults.FaultRule], batch: int) -> int:
        """Fail the copy once it reached a rule's fraction of progress; until then, end each
        batch at the failure point (or at a hold rule's point) so the copy stops there, not a
        batch later."""
        hold = faults.next_hold(rules, job.blocks_done, job.blocks_total)
        if hold is not None:
            batch = min(batch, hold - job.blocks_done)
        rule = faults.failing(rules)
        if rule is None or rule.fail_at is None:
            return batch
        target = faults.stop_at(rule.fail_at, job.blocks_total)
        if job.blocks_done >= target:
            raise CopyFailed(rule.message or "")
        return min(batch, target - job.blocks_done)

    def _next_batch(self, job: CopyJob, batch: int, cursor: int
                    ) -> tuple[list[BlockRef], list[int], int | None]:
        """The next source blocks to copy from `cursor`, the indexes to drop from the
        destination (blocks the source no longer has), and the cursor after them (None:
        nothing is left)."""
        with self.storage.engine.connect() as conn:
            if job.base_source_snapshot_id is None:
                refs = manifests.block_refs(conn, job.source_snapshot_id, cursor, batch)
                return refs, [], refs[-1].block_index + 1 if refs else None
            changes = manifests.changed_blocks(conn, job.base_source_snapshot_id,
                                               job.source_snapshot_id, cursor, batch)
        if not changes:
            return [], [], None
        refs = [change.second for change in changes if change.second is not None]
        gone = [change.block_index for change in changes if change.second is None]
        return refs, gone, changes[-1].block_index + 1

    def _start_move(self, refs: list[BlockRef], source: BlockCodec, dest: BlockCodec,
                    beat: Heartbeat) -> _Moving:
        """Put the blocks the destination lacks, under intents (storage/manifests.py), on
        the I/O threads; _end_move waits for them."""
        def pending(ref: BlockRef) -> Pending:
            name = dest.block_id(ref.sha256)
            return Pending(name, lambda: dest.seal(name, self._read_source(ref, source)),
                           BLOCK_SIZE)

        intents = self.storage.block_data.intend([pending(ref) for ref in refs])
        with self.storage.engine.connect() as conn:
            present = set(conn.execute(select(blocks.c.block_id).where(
                blocks.c.block_id.in_([intent.item.key for intent in intents]))).scalars())

        def put(intent: Intent) -> int:
            beat.check()  # taken over while the batch ran: put nothing more
            name = intent.item.key
            store = self.storage.blocks
            if name in present or (store.probe_before_put and store.exists(name)):
                return 0  # already in the destination lineage (or adopted from a crash)
            # Where the put is a conditional create it is its own check: False, it kept an
            # object a crashed writer had put (adopted, not moved), without a HEAD first.
            return intent.item.size if store.put(name, intent.item.stored()) else 0

        futures: list[Future[int]] = []
        try:
            for intent in intents:
                futures.append(self._io.submit(put, intent))
        except RuntimeError:
            # The I/O pool was shut down: stop() gave up waiting for this worker (a batch
            # longer than its join) or was called from another thread. That is a shutdown,
            # not the copy's failure: take back what this batch put and hand the job back.
            if not self._stop.is_set():
                raise
            wait(futures)
            collect_abandoned(self.storage.engine, self.storage.blocks, FAR_FUTURE,
                              only=[intent.item.key for intent in intents])
            raise Stopping() from None
        return _Moving(intents, futures)

    def _end_move(self, batch: _Batch) -> tuple[list[Intent], int]:
        """Returns the batch's intents for the checkpoint to retire, and the bytes written."""
        moving = batch.moving
        assert moving is not None
        futures = moving.futures
        wait(futures)  # every put over, failed or not, before anything is taken back
        failed = next((f.exception() for f in futures if f.exception() is not None), None)
        if failed is not None:
            # The batch will not be recorded: take back what it put now, not a grace
            # period later (the same protocol as for a dead writer's objects).
            collect_abandoned(self.storage.engine, self.storage.blocks, FAR_FUTURE,
                              only=[intent.item.key for intent in moving.intents])
            raise failed
        return moving.intents, sum(f.result() for f in futures)

    def _read_source(self, ref: BlockRef, source: BlockCodec) -> bytes:
        try:
            return self.storage.block_data.read(ref, source)
        except CorruptBlock as problem:
            raise CopyFailed(f"Block {ref.block_index} of the source snapshot is damaged in "
                             f"storage ({problem}); nothing of it was copied.") from None

    def _checkpoint(self, job: CopyJob, refs: list[BlockRef], gone: list[int], cursor: int,
                    dest: BlockCodec, moved: int, intents: list[Intent]) -> None:
        now = self.clock.now()
        done = job.blocks_done + len(refs) + len(gone)
        with self.storage.engine.begin() as conn:
            if not job_store.checkpoint(conn, job, now, self.lease, cursor=cursor,
                                        blocks_done=done, bytes_moved=job.bytes_moved + moved):
                raise LostLease()
            manifests.drop_blocks(conn, job.snapshot_id, gone)
            manifests.put_blocks(conn, job.snapshot_id, [
                (BlockRef(ref.block_index, dest.block_id(ref.sha256), ref.sha256), BLOCK_SIZE)
                for ref in refs], written=False)
            # The re-check against the collector, inside the checkpoint's transaction.
            self.storage.block_data.record(conn, intents)
            snapshot_store.update_snapshot(conn, job.snapshot_id,
                                           progress=rules.progress(done, job.blocks_total))
        job.cursor, job.blocks_done = cursor, done
        job.bytes_moved += moved

    def _finish(self, job: CopyJob) -> None:
        now = self.clock.now()
        with self.storage.engine.begin() as conn:
            total = manifests.block_total(conn, job.snapshot_id)
            if not job_store.finish(conn, job, rules.COMPLETED, now):
                raise LostLease()
            snapshot_store.update_snapshot(
                conn, job.snapshot_id, only_if_state=snapshot_rules.PENDING,
                state=snapshot_rules.COMPLETED, progress=100, completion_time=now,
                full_size_bytes=total * BLOCK_SIZE)
            doomed = image_copies.settle(conn, job.snapshot_id, now)  # its image, if any
        collect(self.storage.engine, self.storage.blocks, doomed)

    def _fail(self, job: CopyJob, message: str) -> None:
        now = self.clock.now()
        with self.storage.engine.begin() as conn:
            if not job_store.finish(conn, job, rules.FAILED, now, message):
                return
            snapshot_store.update_snapshot(conn, job.snapshot_id, state=snapshot_rules.ERROR,
                                           state_message=message)
            doomed = manifests.drop_manifest(conn, job.snapshot_id)
            doomed += image_copies.settle(conn, job.snapshot_id, now)  # its image, if any
        collect(self.storage.engine, self.storage.blocks, doomed)

    def _release(self, job: CopyJob) -> None:
        """Shutting down: free the lease so the next worker resumes at once."""
        with self.storage.engine.begin() as conn:
            job_store.checkpoint(conn, job, self.clock.now(), dt.timedelta(0), lease_owner=None)
