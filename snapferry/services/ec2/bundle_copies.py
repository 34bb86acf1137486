"""CopyImage of an instance-store image (domain/bundle_copies.py): checked at once, the
regional bucket found or made, then a `pending` image and one bundle copy job written in the
transaction CopyImage runs in. The copy engine moves the objects
(engine/bundle_copier.py) and makes the image `available` or `failed`."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from snapferry.domain import bundle_copies as rules
from snapferry.domain import bundles, s3_access
from snapferry.domain import copies as copy_rules
from snapferry.domain import images as image_rules
from snapferry.domain.copies import CopyJob
from snapferry.domain.images import Image
from snapferry.errors import ServiceError
from snapferry.services.context import RequestContext
from snapferry.services.s3.common import object_files
from snapferry.storage import copies as job_store
from snapferry.storage import s3store
from snapferry.storage.objectfiles import ObjectGone
from snapferry.storage.s3store import Bucket


def _storage_forbidden() -> ServiceError:
    return ServiceError("InvalidRequest", image_rules.STORAGE_FORBIDDEN)


def source_files(ctx: RequestContext, conn: Connection, source: Image
                 ) -> tuple[Bucket, str, list[str]]:
    """The source bundle's bucket, manifest key and file names (parts, then manifest), the
    caller allowed s3:GetBucketAcl on the bucket and s3:GetObject on the manifest: else the
    storage of this image is not the caller's to read, as for an EBS image's snapshots."""
    bucket_name, manifest_key = bundles.split_location(source.image_location or "")
    bucket = s3store.get_bucket(conn, bucket_name)
    manifest = s3store.get_object(conn, bucket_name, manifest_key) if bucket else None
    if bucket is None or manifest is None:
        raise ServiceError("InvalidManifest", f"The bundle of {source.image_id} is gone "
                           f"(s3://{bucket_name}/{manifest_key[:200]}); it cannot be copied.")
    if not s3_access.may(ctx.principal, "s3:GetBucketAcl", bucket, acl_permission="READ_ACP"):
        raise _storage_forbidden()
    if not s3_access.may(ctx.principal, "s3:GetObject", bucket, manifest_key, manifest, "READ"):
        raise _storage_forbidden()
    try:
        document = b"".join(object_files(ctx).read(manifest.file_id))
    except ObjectGone:
        raise _storage_forbidden() from None
    parsed = bundles.parse(document)
    manifest_name = manifest_key.rpartition("/")[2]
    return bucket, manifest_key, rules.file_names(manifest_name,
                                                  [p.filename for p in parsed.parts])


def regional_bucket(ctx: RequestContext, conn: Connection) -> str:
    """The caller's amis-for-... bucket in this region: found (s3:ListAllMyBuckets), or made
    now with ACLs on and aws-exec-read (s3:CreateBucket, s3:PutBucketOwnershipControls)."""
    ctx.authorize(["*"], action="s3:ListAllMyBuckets")
    name = rules.regional_bucket(ctx.account_id, ctx.region)
    existing = s3store.get_bucket(conn, name)
    if existing is not None:
        if existing.account_id != ctx.account_id:
            raise rules.bucket_taken(name)
        return name
    for action in rules.CREATE_ACTIONS:
        ctx.authorize([f"arn:aws:s3:::{name}"], action=action)
    bucket = Bucket(name, ctx.account_id, ctx.region, ctx.clock.now(), rules.OWNERSHIP,
                    s3_access.canned(rules.BUCKET_ACL, ctx.account_id), None)
    try:
        with conn.begin_nested():
            s3store.add_bucket(conn, bucket)
    except IntegrityError:  # a concurrent first copy made it: use that one
        made = s3store.get_bucket(conn, name)
        if made is None or made.account_id != ctx.account_id:
            raise rules.bucket_taken(name) from None
    return name


def queue_bundle_copy(ctx: RequestContext, conn: Connection, source: Image, image_id: str,
                      files: list[str]) -> None:
    job_store.insert_job(conn, CopyJob(
        job_id=str(uuid.uuid4()),
        snapshot_id=image_id,  # a bundle copy's destination is the new image
        account_id=ctx.account_id,
        access_key_id=ctx.principal.access_key_id,
        dest_region=ctx.region,
        source_region=source.region,
        source_snapshot_id=source.image_id,
        # One copy of a bundle to an account and region at a time, oldest first (claim()).
        source_lineage_id=f"bundle:{source.image_id}",
        state=copy_rules.QUEUED,
        cursor=0,
        blocks_done=0,
        bytes_moved=0,
        fencing=0,
        created_at=ctx.clock.now(),
        blocks_total=len(files),
        kind=copy_rules.BUNDLE,
    ))


def check_request(source: Image, params: dict[str, Any]) -> None:
    if params.get("Encrypted") or params.get("KmsKeyId"):
        raise rules.no_encryption_change(source.image_id)
    if params.get("SnapshotCopyCompletionDurationMinutes") is not None:
        raise ServiceError("InvalidParameterCombination",
                           f"{source.image_id} is an instance-store image: it has no snapshots, "
                           "so SnapshotCopyCompletionDurationMinutes does not apply.")
