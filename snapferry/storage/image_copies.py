"""An image copy is a parent of one snapshot copy job per backing snapshot (the snapshots its
block device mappings name). These run inside the transaction that finishes a snapshot copy,
or that deregisters a pending copy, and return the blocks to collect after commit."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.engine import Connection

from snapferry.domain import images as rules
from snapferry.domain.images import Image
from snapferry.storage import copies as job_store
from snapferry.storage import images as image_store
from snapferry.storage import manifests, s3store
from snapferry.storage import snapshots as snapshot_store
from snapferry.storage.tagstore import delete_tags


def _snapshots(image: Image) -> list[str]:
    return list(dict.fromkeys(d.snapshot_id for d in image.block_devices if d.snapshot_id))


def settle(conn: Connection, snapshot_id: str, now: dt.datetime) -> list[str]:
    """A snapshot copy just finished: if it belongs to a pending image copy, make the image
    `available` once every sibling completed, or `failed` as soon as one failed (stopping
    and removing the others' snapshots)."""
    image = image_store.lock_copy_of(conn, snapshot_id)
    if image is None:
        return []
    states, message = [], None
    for sibling in _snapshots(image):
        job = job_store.job_for_snapshot(conn, sibling)
        states.append(job.state if job else "failed")
        if job is not None and job.state == "failed" and message is None:
            message = job.message
    outcome = rules.copy_outcome(states)
    if outcome == rules.AVAILABLE:
        for sibling in _snapshots(image):  # the encryption each copy settled on
            snapshot = snapshot_store.get_snapshot(conn, image.region, sibling)
            if snapshot is not None:
                image_store.update_devices(conn, image.image_id, sibling,
                                           encrypted=snapshot.encrypted,
                                           kms_key_id=snapshot.kms_key_id)
        image_store.update_image(conn, image.image_id, state=rules.AVAILABLE)
        return []
    if outcome == rules.FAILED:
        image_store.update_image(
            conn, image.image_id, state=rules.FAILED, state_reason_code=rules.COPY_FAILED_CODE,
            state_reason_message=f"{rules.COPY_FAILED_MESSAGE}: {message}" if message
            else rules.COPY_FAILED_MESSAGE)
        return remove_snapshots(conn, image, now, rules.COPY_SIBLING_FAILED)
    return []


def remove_snapshots(conn: Connection, image: Image, now: dt.datetime, reason: str
                     ) -> list[str]:
    """Stop the image copy's unfinished snapshot copies (a worker holding one fails its next
    checkpoint and commits nothing more) and delete every snapshot it made."""
    doomed: list[str] = []
    for snapshot_id in _snapshots(image):
        job_store.cancel(conn, snapshot_id, now, reason)
        if snapshot_store.get_snapshot(conn, image.region, snapshot_id) is None:
            continue
        doomed.extend(manifests.drop_manifest(conn, snapshot_id))
        delete_tags(conn, snapshot_id)
        snapshot_store.delete_snapshot(conn, snapshot_id)
    return doomed


def remove_bundle(conn: Connection, image: Image, now: dt.datetime, reason: str) -> list[str]:
    """Stop an instance-store image copy (its bundle copy job; a worker holding it fails its
    next checkpoint and commits nothing more) and delete the objects it put in the regional
    bucket (every key under `<image id>/`). Returns the object files to delete after commit."""
    job_store.cancel(conn, image.image_id, now, reason)
    return drop_bundle_objects(conn, image)


def drop_bundle_objects(conn: Connection, image: Image) -> list[str]:
    bucket, _, _ = (image.image_location or "").partition("/")
    prefix = f"{image.image_id}/"
    doomed: list[str] = []
    for key in _keys_under(conn, bucket, prefix):
        file_id = s3store.delete_object(conn, bucket, key)
        if file_id is not None:
            doomed.append(file_id)
    return doomed


def _keys_under(conn: Connection, bucket: str, prefix: str) -> list[str]:
    found = []
    for key in s3store.keys_from(conn, bucket, prefix, True):
        if not key.startswith(prefix):
            break
        found.append(key)
    return found
