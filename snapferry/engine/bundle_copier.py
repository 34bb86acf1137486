"""The bundle copy: a copy job of kind `bundle` (domain/bundle_copies.py) run by a copy
worker under the same lease, fencing and cancel protocol as a snapshot copy
(engine/copier.py): one object per step instead of a batch of blocks.

Each step reads one source object (parts first, the manifest last), writes its bytes to a
new object file (whole on disk before anything names it), then in one transaction checks
the fencing number and that the job still runs, names the file by its key in the regional
bucket, and advances the cursor. A worker that dies resumes at the cursor under the next
worker; a file written but never named costs space, never data (storage/objectfiles.py).
Deregistering the pending image cancels the job: the next checkpoint fails, the step's
file is deleted, and the objects already named went with the image
(storage/image_copies.py). The caller's s3:GetObject, s3:PutObject and s3:PutObjectAcl are
checked at every step with its policies as they are now: a refusal fails the copy with the
reason in the image's StateReason.
"""

from __future__ import annotations

import hashlib
import math
import time
from typing import TYPE_CHECKING

from snapferry.domain import bundle_copies as rules
from snapferry.domain import bundles, faults, s3_access
from snapferry.domain import copies as copy_rules
from snapferry.domain import images as image_rules
from snapferry.domain.accounts import Principal
from snapferry.domain.copies import CopyFailed, CopyJob
from snapferry.storage import copies as job_store
from snapferry.storage import faults as fault_store
from snapferry.storage import image_copies, s3store
from snapferry.storage import images as image_store
from snapferry.storage.objectfiles import ObjectFiles, ObjectGone
from snapferry.storage.s3store import StoredObject

if TYPE_CHECKING:
    from snapferry.engine.copier import Copier

GIB = 2**30
S3_DIR = "s3"


class _Source:
    """Where a bundle copy reads from and writes to."""

    def __init__(self, bucket: str, manifest_key: str, target_bucket: str, image_id: str
                 ) -> None:
        self.bucket = bucket
        self.manifest_key = manifest_key
        self.directory = manifest_key.rpartition("/")[0]
        self.target_bucket = target_bucket
        self.image_id = image_id

    def source_key(self, name: str) -> str:
        return f"{self.directory}/{name}" if self.directory else name

    def target_key(self, name: str) -> str:
        return rules.target_key(self.image_id, name)


def run(copier: Copier, job: CopyJob) -> None:
    """Carry one bundle copy from its cursor to its end (raises what Copier.run handles:
    CopyFailed, LostLease, Stopping)."""
    from snapferry.engine.copier import Stopping

    principal = copier._principal(job)
    files = ObjectFiles(copier.storage.data_dir / S3_DIR)
    where, names = _plan(copier, job, principal, files)
    pace_begun, walked = time.monotonic(), 0
    while job.cursor < len(names):
        if copier._stop.is_set():
            raise Stopping()
        applying = _fault_rules(copier, job)
        _fail_at_fault(job, applying)
        name = names[job.cursor]
        file_id, size, etag = _copy_one(copier, job, principal, files, where, name)
        last = job.cursor + 1 == len(names)
        try:
            old = _commit(copier, job, principal, where, name, file_id, size, etag, last)
        except BaseException:
            files.delete(file_id)
            raise
        if old is not None:
            files.delete(old)
        walked += size
        pace = faults.seconds_per_gib(applying, copier.settings.min_seconds_per_gib)
        if pace and not last:
            _wait(copier, job, pace_begun + walked / GIB * pace - time.monotonic())
    if job.state != copy_rules.COMPLETED:  # resumed past the end: the manifest lost parts
        raise CopyFailed(f"The bundle's manifest s3://{where.bucket}/{where.manifest_key} "
                         "changed during the copy.")


def _plan(copier: Copier, job: CopyJob, principal: Principal, files: ObjectFiles
          ) -> tuple[_Source, list[str]]:
    from snapferry.engine.copier import LostLease

    with copier.storage.engine.connect() as conn:
        image = image_store.get_image(conn, job.dest_region, job.snapshot_id)
        source = image_store.get_image(conn, job.source_region, job.source_snapshot_id)
        if image is None or image.state != image_rules.PENDING:
            raise LostLease()  # deregistered meanwhile: the job was cancelled
        if source is None:
            raise CopyFailed(f"The source image {job.source_snapshot_id} no longer exists.")
        bucket_name, manifest_key = bundles.split_location(source.image_location or "")
        target_bucket = (image.image_location or "").partition("/")[0]
        bucket = s3store.get_bucket(conn, bucket_name)
        manifest = s3store.get_object(conn, bucket_name, manifest_key) if bucket else None
    if bucket is None or manifest is None:
        raise CopyFailed(f"The manifest s3://{bucket_name}/{manifest_key} no longer exists.")
    if not s3_access.may(principal, "s3:GetObject", bucket, manifest_key, manifest, "READ"):
        raise CopyFailed(rules.refused("s3:GetObject", f"arn:aws:s3:::{bucket_name}/"
                                       f"{manifest_key}", principal.arn))
    try:
        parsed = bundles.parse(b"".join(files.read(manifest.file_id)))
    except ObjectGone:
        raise CopyFailed(f"The manifest s3://{bucket_name}/{manifest_key} was replaced or "
                         "deleted during the copy.") from None
    except Exception as problem:  # a ServiceError InvalidManifest: the bundle changed
        raise CopyFailed(f"The manifest s3://{bucket_name}/{manifest_key} is no longer "
                         f"valid: {problem}") from None
    where = _Source(bucket_name, manifest_key, target_bucket, image.image_id)
    names = rules.file_names(manifest_key.rpartition("/")[2], [p.filename for p in parsed.parts])
    return where, names


def _fault_rules(copier: Copier, job: CopyJob) -> list[faults.FaultRule]:
    """The operator's copy rules naming this copy's region, account, or either image."""
    with copier.storage.engine.connect() as conn:
        found = fault_store.list_rules(conn)
    return faults.copy_rules(found, job.dest_region, job.account_id,
                             (job.source_snapshot_id, job.snapshot_id))


def _fail_at_fault(job: CopyJob, applying: list[faults.FaultRule]) -> None:
    rule = faults.failing(applying)
    if rule is None or rule.fail_at is None:
        return
    if job.blocks_done >= math.ceil(rule.fail_at * (job.blocks_total or 0)):
        raise CopyFailed(rule.message or "")


def _copy_one(copier: Copier, job: CopyJob, principal: Principal, files: ObjectFiles,
              where: _Source, name: str) -> tuple[str, int, str]:
    """One source object's bytes in a new object file: (file id, size, ETag)."""
    key = where.source_key(name)
    with copier.storage.engine.connect() as conn:
        bucket = s3store.get_bucket(conn, where.bucket)
        obj = s3store.get_object(conn, where.bucket, key) if bucket else None
    if bucket is None or obj is None:
        raise CopyFailed(f"s3://{where.bucket}/{key} of the bundle no longer exists.")
    if not s3_access.may(principal, "s3:GetObject", bucket, key, obj, "READ"):
        raise CopyFailed(rules.refused("s3:GetObject", f"arn:aws:s3:::{where.bucket}/{key}",
                                       principal.arn))
    md5 = hashlib.md5()
    with files.writer() as writer:
        try:
            for piece in files.read(obj.file_id):
                md5.update(piece)
                writer.write(piece)
        except ObjectGone:
            raise CopyFailed(f"s3://{where.bucket}/{key} was replaced or deleted during the "
                             "copy.") from None
        size = writer.handle.tell()
        file_id = writer.commit()
    return file_id, size, f'"{md5.hexdigest()}"'


def _commit(copier: Copier, job: CopyJob, principal: Principal, where: _Source, name: str,
            file_id: str, size: int, etag: str, last: bool) -> str | None:
    """Name the file in the regional bucket and advance the cursor, in one transaction;
    the last step also finishes the job and makes the image available."""
    from snapferry.engine.copier import LostLease

    key = where.target_key(name)
    now = copier.clock.now()
    with copier.storage.engine.begin() as conn:
        bucket = s3store.get_bucket(conn, where.target_bucket)
        if bucket is None:
            raise CopyFailed(f"The bucket {where.target_bucket} was deleted during the copy.")
        for action in ("s3:PutObject", "s3:PutObjectAcl"):
            if not s3_access.may(principal, action, bucket, key, None, "WRITE"):
                raise CopyFailed(rules.refused(action, f"arn:aws:s3:::{bucket.name}/{key}",
                                               principal.arn))
        done = job.cursor + 1
        if not job_store.checkpoint(conn, job, now, copier.lease, cursor=done,
                                    blocks_done=done, bytes_moved=job.bytes_moved + size):
            raise LostLease()
        old = s3store.put_object(conn, StoredObject(
            bucket.name, key, file_id, size, etag, now, job.account_id, {}, {}, None,
            s3_access.canned(rules.BUCKET_ACL, job.account_id, for_object=True)))
        if last:
            if not job_store.finish(conn, job, copy_rules.COMPLETED, now):
                raise LostLease()
            image_store.update_image(conn, where.image_id, state=image_rules.AVAILABLE)
    job.cursor = job.blocks_done = done
    job.bytes_moved += size
    if last:
        job.state = copy_rules.COMPLETED
    return old


def _wait(copier: Copier, job: CopyJob, seconds: float) -> None:
    """Pace the copy (a fault rule's or the server's seconds per GiB), renewing the lease
    meanwhile and stopping at once when the job is cancelled or the worker stops."""
    from snapferry.engine.copier import LostLease, Stopping

    end = time.monotonic() + seconds
    step = max(0.05, copier.lease.total_seconds() / 3)
    while (left := end - time.monotonic()) > 0:
        if copier._stop.wait(min(step, left)):
            raise Stopping()
        with copier.storage.engine.begin() as conn:
            if not job_store.checkpoint(conn, job, copier.clock.now(), copier.lease):
                raise LostLease()


def fail(copier: Copier, job: CopyJob, message: str) -> None:
    """End the copy `failed`: the image shows why, and the objects it put go."""
    now = copier.clock.now()
    with copier.storage.engine.begin() as conn:
        if not job_store.finish(conn, job, copy_rules.FAILED, now, message):
            return
        image = image_store.get_image(conn, job.dest_region, job.snapshot_id)
        doomed: list[str] = []
        if image is not None and image.state == image_rules.PENDING:
            image_store.update_image(
                conn, image.image_id, state=image_rules.FAILED,
                state_reason_code=image_rules.COPY_FAILED_CODE,
                state_reason_message=f"{image_rules.COPY_FAILED_MESSAGE}: {message}"
                if message else image_rules.COPY_FAILED_MESSAGE)
            doomed = image_copies.drop_bundle_objects(conn, image)
    files = ObjectFiles(copier.storage.data_dir / S3_DIR)
    for file_id in doomed:
        files.delete(file_id)
