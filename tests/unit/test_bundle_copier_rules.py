"""The bundle copy (engine/bundle_copier.py: CopyImage of an instance-store image) run by the
copy engine in-process on a real data dir (SQLite, object files in a tmp dir, nothing
mocked): what a copy puts where, what it checks at each step, and what a failed copy leaves.

The rows are made as the services make them (a bucket, objects with their files, the source
image, the pending new image, a queued job of kind `bundle`), then `Copier.run_once` claims
and runs the job. Before these tests the module was guarded only by
tests/integration/test_s3_image_copies.py, so each of its mutants cost a server start.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import threading
import time
import uuid
from dataclasses import dataclass

import pytest
from sqlalchemy import update

from snapferry.config import CopySettings
from snapferry.domain import bundle_copies as rules
from snapferry.domain import copies as copy_rules
from snapferry.domain import images as image_rules
from snapferry.domain import s3_access
from snapferry.domain.accounts import AccessKey
from snapferry.domain.clock import SystemClock
from snapferry.domain.copies import CopyJob
from snapferry.domain.faults import COPY, FaultRule
from snapferry.domain.images import Image
from snapferry.engine.copier import Copier
from snapferry.services.keyring import KeyRing
from snapferry.storage import copies as job_store
from snapferry.storage import faults as fault_store
from snapferry.storage import images as image_store
from snapferry.storage import s3store
from snapferry.storage.datadir import Storage
from snapferry.storage.metadata import copy_jobs
from snapferry.storage.objectfiles import ObjectFiles
from snapferry.storage.s3store import Bucket, StoredObject

ACCOUNT, OTHER = "111111111111", "222222222222"
KEY = AccessKey(ACCOUNT, "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
SRC, DST = "us-east-1", "eu-central-1"
NOW = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.UTC)
SOURCE_BUCKET = "src-bundles"
PARTS = {"disk.img.part.0": b"first part " * 100, "disk.img.part.1": b"second part " * 70,
         "disk.img.part.2": b"last"}


def manifest_of(parts: dict[str, bytes]) -> bytes:
    listed = "".join(
        f'<part index="{i}"><filename>{name}</filename>'
        f'<digest algorithm="SHA1">{hashlib.sha1(data).hexdigest()}</digest></part>'
        for i, (name, data) in enumerate(parts.items()))
    return (f"<manifest><version>2007-10-10</version><machine_configuration>"
            f"<architecture>x86_64</architecture></machine_configuration><image>"
            f"<name>disk.img</name><size>4096</size><parts count=\"{len(parts)}\">{listed}"
            f"</parts></image></manifest>").encode()


@dataclass
class Bundle:
    storage: Storage
    files: ObjectFiles
    source: Image
    image_id: str
    target: str
    job: CopyJob

    def object(self, bucket: str, key: str) -> StoredObject | None:
        with self.storage.engine.connect() as conn:
            return s3store.get_object(conn, bucket, key)

    def read(self, obj: StoredObject) -> bytes:
        return b"".join(self.files.read(obj.file_id))

    def image(self) -> Image:
        with self.storage.engine.connect() as conn:
            found = image_store.get_image(conn, DST, self.image_id)
        assert found is not None
        return found

    def job_now(self) -> CopyJob:
        with self.storage.engine.connect() as conn:
            found = job_store.get_job(conn, self.job.job_id)
        assert found is not None
        return found

    def target_keys(self) -> list[str]:
        with self.storage.engine.connect() as conn:
            return list(s3store.keys_from(conn, self.target, "", True))


def put(storage: Storage, files: ObjectFiles, bucket: str, key: str, data: bytes,
        owner: str = ACCOUNT) -> None:
    with files.writer() as writer:
        writer.write(data)
        file_id = writer.commit()
    with storage.engine.begin() as conn:
        s3store.put_object(conn, StoredObject(
            bucket, key, file_id, len(data), f'"{hashlib.md5(data).hexdigest()}"', NOW, owner,
            {}, {}, None, s3_access.canned("private", owner, for_object=True)))


def add_bucket(storage: Storage, name: str, owner: str, region: str, acl: str = "private",
               ownership: str = "BucketOwnerEnforced") -> None:
    with storage.engine.begin() as conn:
        s3store.add_bucket(conn, Bucket(name, owner, region, NOW, ownership,
                                        s3_access.canned(acl, owner), None))


def bundle(storage: Storage, parts: dict[str, bytes] | None = None, *,
           source_owner: str = ACCOUNT, target_owner: str = ACCOUNT,
           folder: str = "images/v1") -> Bundle:
    """A source bundle in SRC (parts and manifest under `folder`), the regional bucket in
    DST, the pending new image and its queued bundle copy job, as CopyImage leaves them."""
    parts = PARTS if parts is None else parts
    storage.accounts.add(KEY)
    files = ObjectFiles(storage.data_dir / "s3")
    add_bucket(storage, SOURCE_BUCKET, source_owner, SRC)
    prefix = f"{folder}/" if folder else ""
    for name, data in parts.items():
        put(storage, files, SOURCE_BUCKET, prefix + name, data, source_owner)
    put(storage, files, SOURCE_BUCKET, f"{prefix}disk.img.manifest.xml", manifest_of(parts),
        source_owner)
    target = rules.regional_bucket(ACCOUNT, DST)
    add_bucket(storage, target, target_owner, DST, rules.BUCKET_ACL, rules.OWNERSHIP)
    source_id, image_id = f"ami-{uuid.uuid4().hex[:17]}", f"ami-{uuid.uuid4().hex[:17]}"
    source = Image(source_id, ACCOUNT, SRC, "bundled", image_rules.AVAILABLE, NOW,
                   f"{SOURCE_BUCKET}/{prefix}disk.img.manifest.xml", "x86_64", "paravirtual",
                   "/dev/sda1", root_device_type="instance-store")
    job = CopyJob(job_id=str(uuid.uuid4()), snapshot_id=image_id, account_id=ACCOUNT,
                  access_key_id=KEY.access_key_id, dest_region=DST, source_region=SRC,
                  source_snapshot_id=source_id, source_lineage_id=f"bundle:{source_id}",
                  state=copy_rules.QUEUED, cursor=0, blocks_done=0, bytes_moved=0, fencing=0,
                  created_at=NOW, blocks_total=len(parts) + 1, kind=copy_rules.BUNDLE)
    with storage.engine.begin() as conn:
        image_store.insert_image(conn, source)
        image_store.insert_image(conn, Image(
            image_id, ACCOUNT, DST, "copied", image_rules.PENDING, NOW,
            f"{target}/{image_id}/disk.img.manifest.xml", "x86_64", "paravirtual", "/dev/sda1",
            root_device_type="instance-store", source_image_id=source_id,
            source_image_region=SRC, copy_job_id=job.job_id))
        job_store.insert_job(conn, job)
    return Bundle(storage, files, source, image_id, target, job)


def object_files(storage: Storage) -> set[str]:
    return {p.name for p in (storage.data_dir / "s3" / "objects").rglob("*") if p.is_file()}


def run_copy(storage: Storage, **settings: object) -> None:
    clock = SystemClock()
    copier = Copier(storage, KeyRing(storage.box, clock), clock,
                    CopySettings(workers=0, **settings))  # type: ignore[arg-type]
    try:
        assert copier.run_once()
    finally:
        copier.stop()


def failed_with(found: Bundle, *fragments: str) -> None:
    """The copy ended failed, the image shows why, and nothing of it is left in the bucket."""
    job = found.job_now()
    assert job.state == copy_rules.FAILED
    image = found.image()
    assert image.state == image_rules.FAILED
    assert image.state_reason_code == "Server.InternalError"
    assert (image.state_reason_message or "").startswith(
        "Copy image failed with an internal error: ")
    for fragment in fragments:
        assert fragment in (job.message or "")
        assert fragment in (image.state_reason_message or "")
    assert found.target_keys() == []


# --- a copy that succeeds -------------------------------------------------------------------

def test_a_bundle_is_copied_under_the_new_image_id_and_the_image_made_available(
        storage: Storage, caplog: pytest.LogCaptureFixture) -> None:
    found = bundle(storage)
    with caplog.at_level(logging.WARNING):
        run_copy(storage)
    assert [r.getMessage() for r in caplog.records] == []  # no step past the end, no error
    names = [*PARTS, "disk.img.manifest.xml"]
    assert sorted(found.target_keys()) == sorted(f"{found.image_id}/{n}" for n in names)
    for name, data in [*PARTS.items(), ("disk.img.manifest.xml", manifest_of(PARTS))]:
        copied = found.object(found.target, f"{found.image_id}/{name}")
        assert copied is not None
        assert found.read(copied) == data
        assert (copied.size, copied.etag) == (len(data), f'"{hashlib.md5(data).hexdigest()}"')
        assert copied.owner == ACCOUNT
        assert copied.acl == s3_access.canned("aws-exec-read", ACCOUNT, for_object=True)
    # The source is untouched.
    source = found.object(SOURCE_BUCKET, "images/v1/disk.img.part.0")
    assert source is not None and found.read(source) == PARTS["disk.img.part.0"]
    job = found.job_now()
    assert (job.state, job.cursor, job.blocks_done) == (copy_rules.COMPLETED, 4, 4)
    assert job.bytes_moved == sum(map(len, PARTS.values())) + len(manifest_of(PARTS))
    assert found.image().state == image_rules.AVAILABLE


def test_a_bundle_beside_its_manifest_at_the_top_of_the_bucket_is_copied(
        storage: Storage) -> None:
    found = bundle(storage, folder="")
    run_copy(storage)
    assert found.image().state == image_rules.AVAILABLE
    copied = found.object(found.target, f"{found.image_id}/disk.img.part.1")
    assert copied is not None and found.read(copied) == PARTS["disk.img.part.1"]


def test_a_copy_resumes_at_its_cursor(storage: Storage) -> None:
    """A worker that died after naming the first part: the next starts at the second."""
    found = bundle(storage)
    with storage.engine.begin() as conn:
        conn.execute(update(copy_jobs).where(copy_jobs.c.job_id == found.job.job_id)
                     .values(cursor=1, blocks_done=1, bytes_moved=7))
    run_copy(storage)
    assert found.object(found.target, f"{found.image_id}/disk.img.part.0") is None
    assert found.object(found.target, f"{found.image_id}/disk.img.part.1") is not None
    job = found.job_now()
    assert (job.state, job.cursor) == (copy_rules.COMPLETED, 4)
    assert job.bytes_moved == 7 + sum(len(PARTS[n]) for n in list(PARTS)[1:]) + \
        len(manifest_of(PARTS))
    assert found.image().state == image_rules.AVAILABLE


def test_a_copy_resumed_past_its_manifest_s_end_fails(storage: Storage) -> None:
    """The manifest lost a part while the copy was stopped: its cursor is past the end."""
    found = bundle(storage)
    with storage.engine.begin() as conn:
        conn.execute(update(copy_jobs).where(copy_jobs.c.job_id == found.job.job_id)
                     .values(cursor=9, blocks_done=9))
    run_copy(storage)
    failed_with(found, "changed during the copy", "disk.img.manifest.xml")


def test_a_copy_already_at_its_last_file_copies_only_the_manifest(
        storage: Storage, caplog: pytest.LogCaptureFixture) -> None:
    """Its one step is the last: the job completes there, and the copy ends without an
    error logged (none taken for a manifest that changed)."""
    found = bundle(storage)
    with storage.engine.begin() as conn:
        conn.execute(update(copy_jobs).where(copy_jobs.c.job_id == found.job.job_id)
                     .values(cursor=3, blocks_done=3))
    with caplog.at_level(logging.WARNING):
        run_copy(storage)
    assert [r.getMessage() for r in caplog.records] == []
    assert found.job_now().state == copy_rules.COMPLETED
    assert found.target_keys() == [f"{found.image_id}/disk.img.manifest.xml"]
    assert found.image().state == image_rules.AVAILABLE


# --- a copy that fails ----------------------------------------------------------------------

def test_a_part_gone_from_the_source_fails_the_copy_and_takes_back_what_it_put(
        storage: Storage) -> None:
    found = bundle(storage)
    with storage.engine.begin() as conn:
        gone = s3store.delete_object(conn, SOURCE_BUCKET, "images/v1/disk.img.part.2")
    assert gone is not None
    files_before = object_files(storage)
    run_copy(storage)
    failed_with(found, f"s3://{SOURCE_BUCKET}/images/v1/disk.img.part.2",
                "no longer exists")
    # The two parts already copied went with the failure, files and all.
    assert object_files(storage) == files_before


def test_a_part_file_gone_while_read_fails_the_copy(storage: Storage) -> None:
    found = bundle(storage)
    part = found.object(SOURCE_BUCKET, "images/v1/disk.img.part.1")
    assert part is not None
    found.files.delete(part.file_id)
    run_copy(storage)
    failed_with(found, "disk.img.part.1 was replaced or deleted during the copy")


def test_a_manifest_gone_fails_the_copy(storage: Storage) -> None:
    found = bundle(storage)
    with storage.engine.begin() as conn:
        s3store.delete_object(conn, SOURCE_BUCKET, "images/v1/disk.img.manifest.xml")
    run_copy(storage)
    failed_with(found, f"The manifest s3://{SOURCE_BUCKET}/images/v1/disk.img.manifest.xml "
                "no longer exists")


def test_a_manifest_no_longer_valid_fails_the_copy(storage: Storage) -> None:
    found = bundle(storage)
    put(storage, found.files, SOURCE_BUCKET, "images/v1/disk.img.manifest.xml", b"<manifest/>")
    run_copy(storage)
    failed_with(found, "is no longer valid", "InvalidManifest")


def test_a_manifest_file_gone_fails_the_copy(storage: Storage) -> None:
    found = bundle(storage)
    manifest = found.object(SOURCE_BUCKET, "images/v1/disk.img.manifest.xml")
    assert manifest is not None
    found.files.delete(manifest.file_id)
    run_copy(storage)
    failed_with(found, "was replaced or deleted during the copy")


def test_a_source_bucket_gone_fails_the_copy(storage: Storage) -> None:
    found = bundle(storage)
    with storage.engine.begin() as conn:
        for key in list(s3store.keys_from(conn, SOURCE_BUCKET, "", True)):
            s3store.delete_object(conn, SOURCE_BUCKET, key)
        s3store.delete_bucket(conn, SOURCE_BUCKET)
    run_copy(storage)
    failed_with(found, "no longer exists")


def test_a_source_image_gone_fails_the_copy(storage: Storage) -> None:
    found = bundle(storage)
    with storage.engine.begin() as conn:
        image_store.update_image(conn, found.source.image_id, region="ap-south-1")
    run_copy(storage)
    failed_with(found, f"The source image {found.source.image_id} no longer exists.")


def test_a_bundle_the_caller_may_not_read_fails_the_copy_with_aws_s_reason(
        storage: Storage) -> None:
    found = bundle(storage, source_owner=OTHER)
    run_copy(storage)
    failed_with(found, "User: arn:aws:iam::111111111111:root is not authorized to perform: "
                f"s3:GetObject on resource: arn:aws:s3:::{SOURCE_BUCKET}/images/v1/"
                "disk.img.manifest.xml")


def test_a_part_the_caller_may_not_read_fails_the_copy(storage: Storage) -> None:
    """The manifest is readable (a public-read object), the part is not."""
    found = bundle(storage, source_owner=OTHER)
    with storage.engine.begin() as conn:
        s3store.set_object_acl(conn, SOURCE_BUCKET, "images/v1/disk.img.manifest.xml",
                               s3_access.canned("public-read", OTHER, for_object=True))
        s3store.update_bucket(conn, SOURCE_BUCKET, ownership="ObjectWriter")
    run_copy(storage)
    failed_with(found, "s3:GetObject on resource: "
                f"arn:aws:s3:::{SOURCE_BUCKET}/images/v1/disk.img.part.0")


def test_a_target_bucket_the_caller_may_not_write_fails_the_copy(storage: Storage) -> None:
    found = bundle(storage, target_owner=OTHER)
    run_copy(storage)
    job = found.job_now()
    assert job.state == copy_rules.FAILED
    assert "s3:PutObject on resource: " \
        f"arn:aws:s3:::{found.target}/{found.image_id}/disk.img.part.0" in (job.message or "")
    assert found.image().state == image_rules.FAILED
    with storage.engine.connect() as conn:
        assert list(s3store.keys_from(conn, found.target, "", True)) == []


def test_a_target_bucket_deleted_during_the_copy_fails_it(storage: Storage) -> None:
    found = bundle(storage)
    with storage.engine.begin() as conn:
        s3store.delete_bucket(conn, found.target)
    run_copy(storage)
    job = found.job_now()
    assert job.state == copy_rules.FAILED
    assert f"The bucket {found.target} was deleted during the copy." in (job.message or "")
    assert found.image().state == image_rules.FAILED


def test_a_deregistered_image_s_copy_stops_without_copying(storage: Storage) -> None:
    found = bundle(storage)
    with storage.engine.begin() as conn:
        image_store.update_image(conn, found.image_id, state=image_rules.DEREGISTERED)
    run_copy(storage)
    assert found.target_keys() == []
    assert found.image().state == image_rules.DEREGISTERED


def test_a_fault_rule_fails_the_copy_exactly_at_its_fraction(storage: Storage) -> None:
    """3 parts and the manifest: fail_at 0.5 lets ceil(0.5 * 4) = 2 files through."""
    found = bundle(storage)
    with storage.engine.begin() as conn:
        fault_store.add_rule(conn, FaultRule("half", COPY, region=DST, fail_at=0.5,
                                             message="Injected at half way."), NOW)
    run_copy(storage)
    failed_with(found, "Injected at half way.")
    assert (found.job_now().cursor, found.job_now().blocks_done) == (2, 2)


@pytest.mark.parametrize("other", [{"region": SRC}, {"account_id": OTHER},
                                   {"resource_id": "ami-00000000000000000"}])
def test_a_fault_rule_for_another_copy_does_not_apply(storage: Storage,
                                                      other: dict[str, str]) -> None:
    found = bundle(storage)
    with storage.engine.begin() as conn:
        fault_store.add_rule(conn, FaultRule("elsewhere", COPY, fail_at=0.0, message="no",
                                             **other), NOW)  # type: ignore[arg-type]
    run_copy(storage)
    assert found.image().state == image_rules.AVAILABLE


def test_a_paced_copy_takes_its_time_before_its_last_file(storage: Storage) -> None:
    """The server's minimum seconds per GiB, set so the three parts take one second: the
    copy waits after each part (none after the manifest, which ends it)."""
    found = bundle(storage)
    parts_bytes = sum(map(len, PARTS.values()))
    clock = SystemClock()
    copier = Copier(storage, KeyRing(storage.box, clock), clock, CopySettings(
        workers=0, min_seconds_per_gib=1.0 * 2**30 / parts_bytes, lease_seconds=0.3))
    # In a thread, so a wait far too long fails the test in 30 s, not never: stop() ends it.
    worker = threading.Thread(target=copier.run_once, daemon=True)
    started = time.monotonic()
    worker.start()
    worker.join(timeout=30)
    took = time.monotonic() - started
    copier.stop()
    worker.join(timeout=30)
    assert 0.95 <= took < 30
    assert found.job_now().state == copy_rules.COMPLETED
    assert found.image().state == image_rules.AVAILABLE


def test_a_fault_rule_below_a_resumed_copy_s_progress_fails_it_at_once(storage: Storage) -> None:
    """A rule added while the copy was stopped past its point (2 of 4 files done, fail_at
    0.25): the copy fails before its next file, not never."""
    found = bundle(storage)
    with storage.engine.begin() as conn:
        conn.execute(update(copy_jobs).where(copy_jobs.c.job_id == found.job.job_id)
                     .values(cursor=2, blocks_done=2))
        fault_store.add_rule(conn, FaultRule("late", COPY, region=DST, fail_at=0.25,
                                             message="Injected late."), NOW)
    run_copy(storage)
    failed_with(found, "Injected late.")
    assert found.job_now().cursor == 2


def test_a_paced_copy_keeps_its_lease_by_renewing_it_every_third_of_a_lease(
        storage: Storage, monkeypatch: pytest.MonkeyPatch) -> None:
    """The parts paced to take 3 s on a lease of 1.2 s: the first part's wait (about 1.7 s)
    outlasts the lease, so the wait renews it every 0.4 s, and another worker trying to
    claim the job all along never gets it; a few renewals, not a loop of writes; and the
    copy takes the pace's 3 s, not twice or half that."""
    found = bundle(storage)
    parts_bytes = sum(map(len, PARTS.values()))
    real_checkpoint, writes = job_store.checkpoint, []

    def counted(*args: object, **kwargs: object) -> bool:
        if threading.current_thread().name == "bundle-worker":
            writes.append(time.monotonic())
        return real_checkpoint(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(job_store, "checkpoint", counted)
    clock = SystemClock()
    copier = Copier(storage, KeyRing(storage.box, clock), clock, CopySettings(
        workers=0, min_seconds_per_gib=3.0 * 2**30 / parts_bytes, lease_seconds=1.2))
    worker = threading.Thread(target=copier.run_once, daemon=True, name="bundle-worker")
    started = time.monotonic()
    worker.start()
    taken = None
    try:
        while found.job_now().lease_owner != copier.owner:  # claimed by the worker first
            assert time.monotonic() - started < 30, "the worker did not claim the job"
            time.sleep(0.01)  # polling the job's owner
        while worker.is_alive() and time.monotonic() - started < 30:
            with storage.engine.begin() as conn:  # another worker, on the same clock
                taken = job_store.claim(conn, "worker-b", dt.datetime.now(dt.UTC),
                                        dt.timedelta(seconds=10))
            if taken is not None:
                break
            time.sleep(0.05)  # polling the job's lease, as a worker's idle loop does
        worker.join(timeout=30)
        took = time.monotonic() - started
    finally:
        copier.stop()
        worker.join(timeout=30)
    assert taken is None, "the job was taken over while its worker was alive"
    assert 2.9 <= took < 5.0, took
    # Four steps' checkpoints and about 3 s / 0.4 s of renewals.
    assert 5 <= len(writes) <= 20, len(writes)
    assert found.job_now().state == copy_rules.COMPLETED
    assert found.image().state == image_rules.AVAILABLE


# --- the pace's arithmetic and the paced wait's cadence, on a clock the test moves ----------

class _StoppedClock:
    """time.monotonic for bundle_copier alone: it moves only when a wait moves it, so each
    wait the copy asks for and each step of a paced wait is an exact number."""

    def __init__(self, start: float = 0.0) -> None:
        self.now = start

    def monotonic(self) -> float:
        return self.now


class _Stop:
    """The copier's stop event on that clock: a wait of t seconds moves the clock by t and
    is recorded; `stop_after` waits it reports the stop."""

    def __init__(self, clock: _StoppedClock, stop_after: int | None = None) -> None:
        self.clock, self.stop_after, self.waits = clock, stop_after, []

    def wait(self, timeout: float) -> bool:
        self.waits.append(timeout)
        assert len(self.waits) <= 100, "a wait that never ends"
        self.clock.now += timeout
        return self.stop_after is not None and len(self.waits) >= self.stop_after

    def is_set(self) -> bool:
        return False

    def set(self) -> None:
        pass


@pytest.mark.parametrize("pace", [None, 0.0])
def test_an_unpaced_copy_asks_for_no_wait(storage: Storage, pace: float | None,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from snapferry.engine import bundle_copier

    asked: list[float] = []
    monkeypatch.setattr(bundle_copier, "_wait", lambda copier, job, seconds: asked.append(
        seconds))
    found = bundle(storage)
    run_copy(storage, min_seconds_per_gib=pace)
    assert asked == []
    assert found.image().state == image_rules.AVAILABLE


def test_the_pace_asks_after_each_part_for_the_bytes_walked_so_far_at_its_rate(
        storage: Storage, monkeypatch: pytest.MonkeyPatch) -> None:
    """At 2**30 seconds per GiB (one second a byte) on a clock that does not move, each
    wait asked for is the bytes copied so far, in seconds: 1100, then 1100 + 840, then
    + 4; none after the manifest, the last file."""
    from snapferry.engine import bundle_copier

    asked: list[float] = []
    monkeypatch.setattr(bundle_copier, "time", _StoppedClock())
    monkeypatch.setattr(bundle_copier, "_wait", lambda copier, job, seconds: asked.append(
        seconds))
    found = bundle(storage)
    run_copy(storage, min_seconds_per_gib=float(2**30))
    sizes = [len(data) for data in PARTS.values()]
    assert asked == [sizes[0], sizes[0] + sizes[1], sum(sizes)] == [1100, 1940, 1944]
    assert found.image().state == image_rules.AVAILABLE


def _claimed(storage: Storage, lease_seconds: float) -> tuple[Copier, CopyJob]:
    """A copier and the bundle job it has claimed (so its checkpoints hold)."""
    bundle(storage)
    clock = SystemClock()
    copier = Copier(storage, KeyRing(storage.box, clock), clock,
                    CopySettings(workers=0, lease_seconds=lease_seconds))
    with storage.engine.begin() as conn:
        job = job_store.claim(conn, copier.owner, clock.now(), copier.lease)
    assert job is not None
    return copier, job


def _counting_checkpoints(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    real, held = job_store.checkpoint, []

    def counted(*args: object, **kwargs: object) -> bool:
        held.append(real(*args, **kwargs))  # type: ignore[arg-type]
        return held[-1]

    monkeypatch.setattr(job_store, "checkpoint", counted)
    return held


@pytest.mark.parametrize(("start", "lease", "seconds", "steps"), [
    (0.0, 0.75, 1.0, [0.25, 0.25, 0.25, 0.25]),  # a third of the lease, to the end exactly
    (0.0, 0.75, 0.625, [0.25, 0.25, 0.125]),  # the last step what is left
    (1000.0, 0.75, 0.625, [0.25, 0.25, 0.125]),  # the same on a clock long started
    (0.0, 0.03, 0.1, [0.05, 0.05]),  # never under 0.05 s, however short the lease
    (0.0, 0.75, 0.0, []),  # nothing left: no wait, no write
])
def test_a_paced_wait_renews_the_lease_every_third_of_it_until_the_end(
        storage: Storage, monkeypatch: pytest.MonkeyPatch, start: float, lease: float,
        seconds: float, steps: list[float]) -> None:
    from snapferry.engine import bundle_copier

    copier, job = _claimed(storage, lease)
    clock = _StoppedClock(start)
    monkeypatch.setattr(bundle_copier, "time", clock)
    stop = copier._stop = _Stop(clock)  # type: ignore[assignment]
    held = _counting_checkpoints(monkeypatch)
    bundle_copier._wait(copier, job, seconds)
    assert stop.waits == steps
    assert held == [True] * len(steps)  # a renewal after each step
    assert clock.now == start + sum(steps)


def test_a_paced_wait_stops_at_once_when_the_worker_stops(
        storage: Storage, monkeypatch: pytest.MonkeyPatch) -> None:
    from snapferry.engine import bundle_copier
    from snapferry.engine.copier import Stopping

    copier, job = _claimed(storage, 0.75)
    clock = _StoppedClock()
    monkeypatch.setattr(bundle_copier, "time", clock)
    stop = copier._stop = _Stop(clock, stop_after=2)  # type: ignore[assignment]
    held = _counting_checkpoints(monkeypatch)
    with pytest.raises(Stopping):
        bundle_copier._wait(copier, job, 1.0)
    assert stop.waits == [0.25, 0.25]
    assert held == [True]  # the step the stop ended renews nothing


def test_a_paced_wait_whose_job_was_taken_over_loses_its_lease(
        storage: Storage, monkeypatch: pytest.MonkeyPatch) -> None:
    from snapferry.engine import bundle_copier
    from snapferry.engine.copier import LostLease

    copier, job = _claimed(storage, 0.75)
    with storage.engine.begin() as conn:  # another worker's claim: a new fencing number
        conn.execute(update(copy_jobs).where(copy_jobs.c.job_id == job.job_id)
                     .values(fencing=job.fencing + 1))
    clock = _StoppedClock()
    monkeypatch.setattr(bundle_copier, "time", clock)
    stop = copier._stop = _Stop(clock)  # type: ignore[assignment]
    with pytest.raises(LostLease):
        bundle_copier._wait(copier, job, 1.0)
    assert stop.waits == [0.25]  # the first renewal finds it gone


@pytest.mark.parametrize("cursor", [0, 3])
def test_a_finished_copy_returns_completed_and_raises_nothing(storage: Storage,
                                                              cursor: int) -> None:
    """bundle_copier.run itself, from the start and from the last file: a copy that
    finished returns with its job completed (Copier.run would swallow a CopyFailed raised
    after the finish, whose fenced `fail` changes nothing: so it is asserted here)."""
    from snapferry.engine import bundle_copier

    found = bundle(storage)
    with storage.engine.begin() as conn:
        conn.execute(update(copy_jobs).where(copy_jobs.c.job_id == found.job.job_id)
                     .values(cursor=cursor, blocks_done=cursor))
    clock = SystemClock()
    copier = Copier(storage, KeyRing(storage.box, clock), clock, CopySettings(workers=0))
    try:
        with storage.engine.begin() as conn:
            job = job_store.claim(conn, copier.owner, clock.now(), copier.lease)
        assert job is not None
        bundle_copier.run(copier, job)
    finally:
        copier.stop()
    assert (job.state, job.cursor, job.blocks_done) == (copy_rules.COMPLETED, 4, 4)
    assert found.job_now().state == copy_rules.COMPLETED


def test_a_bundle_of_256_parts_is_copied_whole(storage: Storage) -> None:
    """256 parts and the manifest, 257 files: the step that ends the copy is found by the
    count, not by the identity of two ints (CPython shares those only up to 256)."""
    parts = {f"disk.img.part.{i}": f"part {i}".encode() for i in range(256)}
    found = bundle(storage, parts)
    run_copy(storage)
    assert found.job_now().state == copy_rules.COMPLETED
    assert found.image().state == image_rules.AVAILABLE
    assert len(found.target_keys()) == 257
