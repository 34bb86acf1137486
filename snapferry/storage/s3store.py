"""S3 metadata: buckets, objects, multipart uploads and parts (their bytes are files, see
storage/objectfiles.py). Every write here runs inside the caller's transaction."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.engine import Connection

from snapferry.storage.metadata import s3_buckets, s3_objects, s3_parts, s3_uploads

LIST_BATCH = 200


@dataclass(frozen=True)
class Bucket:
    name: str
    account_id: str
    region: str
    created_at: dt.datetime
    ownership: str
    acl: list[dict[str, Any]]
    policy: str | None


@dataclass(frozen=True)
class StoredObject:
    bucket: str
    key: str
    file_id: str
    size: int
    etag: str
    last_modified: dt.datetime
    owner: str
    headers: dict[str, Any]
    checksums: dict[str, str]
    parts: int | None
    acl: list[dict[str, Any]]


@dataclass(frozen=True)
class Upload:
    upload_id: str
    bucket: str
    key: str
    account_id: str
    initiated: dt.datetime
    headers: dict[str, Any]
    acl: list[dict[str, Any]]
    checksum_algorithm: str | None


@dataclass(frozen=True)
class Part:
    number: int
    file_id: str
    size: int
    etag: str
    last_modified: dt.datetime
    checksums: dict[str, str]


def _bucket(row: Any) -> Bucket:
    return Bucket(row.name, row.account_id, row.region, row.created_at, row.ownership,
                  json.loads(row.acl), row.policy)


def _object(row: Any) -> StoredObject:
    return StoredObject(row.bucket, row.key, row.file_id, row.size, row.etag, row.last_modified,
                        row.owner, json.loads(row.headers), json.loads(row.checksums), row.parts,
                        json.loads(row.acl))


# ---- buckets ---------------------------------------------------------------------------------

def get_bucket(conn: Connection, name: str) -> Bucket | None:
    row = conn.execute(select(s3_buckets).where(s3_buckets.c.name == name)).first()
    return _bucket(row) if row else None


def add_bucket(conn: Connection, bucket: Bucket) -> None:
    conn.execute(insert(s3_buckets).values(
        name=bucket.name, account_id=bucket.account_id, region=bucket.region,
        created_at=bucket.created_at, ownership=bucket.ownership, acl=json.dumps(bucket.acl),
        policy=bucket.policy))


def buckets_of(conn: Connection, account_id: str) -> list[Bucket]:
    rows = conn.execute(select(s3_buckets).where(s3_buckets.c.account_id == account_id)
                        .order_by(s3_buckets.c.name))
    return [_bucket(r) for r in rows]


def update_bucket(conn: Connection, name: str, **values: Any) -> None:
    if "acl" in values:
        values["acl"] = json.dumps(values["acl"])
    conn.execute(update(s3_buckets).where(s3_buckets.c.name == name).values(**values))


def is_empty(conn: Connection, name: str) -> bool:
    count = conn.execute(select(func.count()).select_from(s3_objects)
                         .where(s3_objects.c.bucket == name)).scalar()
    uploads = conn.execute(select(func.count()).select_from(s3_uploads)
                           .where(s3_uploads.c.bucket == name)).scalar()
    return not count and not uploads


def delete_bucket(conn: Connection, name: str) -> None:
    conn.execute(delete(s3_buckets).where(s3_buckets.c.name == name))


# ---- objects ---------------------------------------------------------------------------------

def get_object(conn: Connection, bucket: str, key: str) -> StoredObject | None:
    row = conn.execute(select(s3_objects).where(s3_objects.c.bucket == bucket,
                                                s3_objects.c.key == key)).first()
    return _object(row) if row else None


def put_object(conn: Connection, obj: StoredObject) -> str | None:
    """Insert or replace; returns the file id the replaced object held (to delete after the
    transaction commits), or None."""
    old = conn.execute(select(s3_objects.c.file_id).where(
        s3_objects.c.bucket == obj.bucket, s3_objects.c.key == obj.key)).scalar()
    values = dict(file_id=obj.file_id, size=obj.size, etag=obj.etag,
                  last_modified=obj.last_modified, owner=obj.owner,
                  headers=json.dumps(obj.headers), checksums=json.dumps(obj.checksums),
                  parts=obj.parts, acl=json.dumps(obj.acl))
    if old is None:
        conn.execute(insert(s3_objects).values(bucket=obj.bucket, key=obj.key, **values))
    else:
        conn.execute(update(s3_objects).where(s3_objects.c.bucket == obj.bucket,
                                              s3_objects.c.key == obj.key).values(**values))
    return old


def set_object_acl(conn: Connection, bucket: str, key: str, acl: list[dict[str, Any]]) -> None:
    conn.execute(update(s3_objects).where(s3_objects.c.bucket == bucket, s3_objects.c.key == key)
                 .values(acl=json.dumps(acl)))


def delete_object(conn: Connection, bucket: str, key: str) -> str | None:
    """Remove the row; returns its file id (delete the file after commit), or None."""
    old = conn.execute(select(s3_objects.c.file_id).where(
        s3_objects.c.bucket == bucket, s3_objects.c.key == key)).scalar()
    if old is not None:
        conn.execute(delete(s3_objects).where(s3_objects.c.bucket == bucket,
                                              s3_objects.c.key == key))
    return old


def keys_from(conn: Connection, bucket: str, bound: str, inclusive: bool) -> Iterator[str]:
    """The bucket's keys from `bound` on, in byte order (SQLite's BINARY collation compares
    UTF-8 bytes), fetched in batches."""
    column = s3_objects.c.key
    while True:
        condition = column >= bound if inclusive else column > bound
        rows = conn.execute(select(column).where(s3_objects.c.bucket == bucket, condition)
                            .order_by(column).limit(LIST_BATCH)).scalars().all()
        yield from rows
        if len(rows) < LIST_BATCH:
            return
        bound, inclusive = rows[-1], False


def objects_named(conn: Connection, bucket: str, keys: list[str]) -> dict[str, StoredObject]:
    found: dict[str, StoredObject] = {}
    for start in range(0, len(keys), 500):
        rows = conn.execute(select(s3_objects).where(
            s3_objects.c.bucket == bucket, s3_objects.c.key.in_(keys[start:start + 500])))
        found.update({row.key: _object(row) for row in rows})
    return found


# ---- multipart -------------------------------------------------------------------------------

def add_upload(conn: Connection, upload: Upload) -> None:
    conn.execute(insert(s3_uploads).values(
        upload_id=upload.upload_id, bucket=upload.bucket, key=upload.key,
        account_id=upload.account_id, initiated=upload.initiated,
        headers=json.dumps(upload.headers), acl=json.dumps(upload.acl),
        checksum_algorithm=upload.checksum_algorithm))


def _upload(row: Any) -> Upload:
    return Upload(row.upload_id, row.bucket, row.key, row.account_id, row.initiated,
                  json.loads(row.headers), json.loads(row.acl), row.checksum_algorithm)


def get_upload(conn: Connection, upload_id: str) -> Upload | None:
    row = conn.execute(select(s3_uploads).where(s3_uploads.c.upload_id == upload_id)).first()
    return _upload(row) if row else None


def uploads_in(conn: Connection, bucket: str, prefix: str, key_marker: str,
               upload_marker: str, limit: int) -> list[Upload]:
    rows = conn.execute(
        select(s3_uploads).where(s3_uploads.c.bucket == bucket)
        .order_by(s3_uploads.c.key, s3_uploads.c.initiated, s3_uploads.c.upload_id))
    found = []
    for row in rows:
        if not row.key.startswith(prefix):
            continue
        if key_marker and (row.key < key_marker or (
                row.key == key_marker and (not upload_marker or row.upload_id <= upload_marker))):
            continue
        found.append(_upload(row))
        if len(found) >= limit:
            break
    return found


def put_part(conn: Connection, upload_id: str, part: Part) -> str | None:
    """Insert or replace a part; returns the replaced part's file id, or None."""
    old = conn.execute(select(s3_parts.c.file_id).where(
        s3_parts.c.upload_id == upload_id, s3_parts.c.part_number == part.number)).scalar()
    if old is not None:
        conn.execute(delete(s3_parts).where(s3_parts.c.upload_id == upload_id,
                                            s3_parts.c.part_number == part.number))
    conn.execute(insert(s3_parts).values(
        upload_id=upload_id, part_number=part.number, file_id=part.file_id, size=part.size,
        etag=part.etag, last_modified=part.last_modified, checksums=json.dumps(part.checksums)))
    return old


def parts_of(conn: Connection, upload_id: str) -> list[Part]:
    rows = conn.execute(select(s3_parts).where(s3_parts.c.upload_id == upload_id)
                        .order_by(s3_parts.c.part_number))
    return [Part(r.part_number, r.file_id, r.size, r.etag, r.last_modified,
                 json.loads(r.checksums)) for r in rows]


def drop_upload(conn: Connection, upload_id: str) -> list[str]:
    """Remove an upload and its parts; returns the parts' file ids (delete after commit)."""
    files = list(conn.execute(select(s3_parts.c.file_id)
                              .where(s3_parts.c.upload_id == upload_id)).scalars())
    conn.execute(delete(s3_parts).where(s3_parts.c.upload_id == upload_id))
    conn.execute(delete(s3_uploads).where(s3_uploads.c.upload_id == upload_id))
    return files
