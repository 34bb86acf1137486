"""Multipart uploads: create, upload (or copy) parts, complete, abort, list."""

from __future__ import annotations

import os
from typing import Any

from snapferry.domain import buckets as rules
from snapferry.domain import checksums
from snapferry.errors import ServiceError
from snapferry.services.context import Output, RequestContext
from snapferry.services.s3 import body
from snapferry.services.s3.common import (
    authorize_bucket,
    authorize_new_object,
    authorize_write,
    find_bucket,
    no_such_upload,
    object_files,
    own_action,
    owner_of,
    url_encode,
)
from snapferry.services.s3.objects import (
    checksum_output,
    commit_object,
    copy_bytes,
    object_acl,
    read_source,
    stored_headers,
)
from snapferry.storage import s3store
from snapferry.storage.s3store import Bucket, Part, Upload


def _upload(ctx: RequestContext, params: dict[str, Any], action: str) -> tuple[Bucket, Upload]:
    with ctx.storage.engine.connect() as conn:
        bucket = find_bucket(conn, ctx, params["Bucket"])
        upload = s3store.get_upload(conn, params["UploadId"])
    if upload is None or upload.bucket != bucket.name or upload.key != params["Key"]:
        authorize_write(ctx, bucket, params["Key"], action)
        raise no_such_upload(params["UploadId"])
    authorize_write(ctx, bucket, params["Key"], action)
    return bucket, upload


def create_multipart_upload(ctx: RequestContext, params: dict[str, Any]) -> Output:
    key = params["Key"]
    rules.check_key(key)
    with ctx.storage.engine.connect() as conn:
        bucket = find_bucket(conn, ctx, params["Bucket"])
    _, acl = object_acl(ctx, bucket, params)
    algorithm = params.get("ChecksumAlgorithm")
    algorithm = checksums.algorithm(algorithm) if algorithm else None
    if params.get("ChecksumType") not in (None, "COMPOSITE"):
        raise ServiceError("InvalidRequest", "snapferry keeps multipart checksums COMPOSITE "
                           "(a checksum of the parts' checksums).")
    authorize_new_object(ctx, bucket, key, params)
    upload = Upload(os.urandom(24).hex(), bucket.name, key, ctx.account_id, ctx.clock.now(),
                    {**stored_headers(params), "Grants": params.get("ACL")}, acl, algorithm)
    with ctx.storage.engine.begin() as conn:
        find_bucket(conn, ctx, bucket.name)
        s3store.add_upload(conn, upload)
    output: Output = {"Bucket": bucket.name, "Key": key, "UploadId": upload.upload_id}
    if algorithm:
        output["ChecksumAlgorithm"] = algorithm
        output["ChecksumType"] = "COMPOSITE"
    return output


def _store_part(ctx: RequestContext, upload: Upload, number: int,
                received: body.Received) -> None:
    files = object_files(ctx)
    part = Part(number, received.file_id, received.size, received.etag, ctx.clock.now(),
                received.checksums)
    try:
        with ctx.storage.engine.begin() as conn:
            if s3store.get_upload(conn, upload.upload_id) is None:
                raise no_such_upload(upload.upload_id)
            old = s3store.put_part(conn, upload.upload_id, part)
    except BaseException:
        files.delete(received.file_id)
        raise
    if old is not None:
        files.delete(old)


def upload_part(ctx: RequestContext, params: dict[str, Any]) -> Output:
    number = rules.part_number(params["PartNumber"])
    _, upload = _upload(ctx, params, own_action(ctx))
    received = body.receive(ctx, params["Body"], params, upload.checksum_algorithm)
    _store_part(ctx, upload, number, received)
    return {"ETag": received.etag, **checksum_output(received.checksums)}


def upload_part_copy(ctx: RequestContext, params: dict[str, Any]) -> Output:
    number = rules.part_number(params["PartNumber"])
    _, upload = _upload(ctx, params, own_action(ctx))
    source = read_source(ctx, params)
    start, length = 0, source.size
    text = params.get("CopySourceRange")
    if text is not None:
        span = rules.byte_range(text, source.size)
        if span is None or not text.strip().startswith("bytes=") or text.strip()[6] == "-":
            raise ServiceError("InvalidArgument", "The x-amz-copy-source-range value must be "
                               "of the form bytes=first-last where first and last are the "
                               "zero-based offsets of the first and last bytes to copy",
                               ArgumentName="x-amz-copy-source-range")
        start, length = span[0], span[1] - span[0] + 1
    algorithms = (upload.checksum_algorithm,) if upload.checksum_algorithm else ()
    received = copy_bytes(ctx, source, start, length, algorithms)
    _store_part(ctx, upload, number, received)
    return {"CopyPartResult": {"ETag": received.etag, "LastModified": ctx.clock.now(),
                               **checksum_output(received.checksums)}}


def complete_multipart_upload(ctx: RequestContext, params: dict[str, Any]) -> Output:
    bucket, upload = _upload(ctx, params, own_action(ctx))
    asked_parts = (params.get("MultipartUpload") or {}).get("Parts") or []
    asked = [(p.get("PartNumber") or 0, p.get("ETag") or "") for p in asked_parts]
    with ctx.storage.engine.connect() as conn:
        stored = {p.number: p for p in s3store.parts_of(conn, upload.upload_id)}
    chosen = rules.check_completion(
        asked, {n: rules.StoredPart(n, p.etag, p.size) for n, p in stored.items()})
    algorithm = upload.checksum_algorithm
    part_values: list[str] = []
    for given, part in zip(asked_parts, chosen, strict=True):
        if algorithm is None:
            continue
        value = stored[part.number].checksums.get(algorithm)
        claimed = given.get(f"Checksum{algorithm}")
        if value is None or (claimed is not None and claimed != value):
            raise ServiceError("InvalidPart", "One or more of the specified parts could not "
                               "be found: a part's checksum does not match.",
                               PartNumber=str(part.number))
        part_values.append(value)
    files = object_files(ctx)
    hasher = checksums.Hasher()
    with files.writer() as writer:
        for part in chosen:
            for piece in files.read(stored[part.number].file_id):
                hasher.update(piece)
                writer.write(piece)
        file_id = writer.commit()
    size = hasher.size
    etag = rules.multipart_etag(p.etag for p in chosen)
    values = {algorithm: checksums.composite(part_values, algorithm)} if algorithm else {}
    received = body.Received(file_id, size, etag, values)
    headers = {k: v for k, v in upload.headers.items() if k != "Grants"}
    headers["PartSizes"] = [p.size for p in chosen]
    obj = commit_object(ctx, bucket.name, upload.key, received, params,
                        owner=_owner(bucket, upload), acl=upload.acl, headers=headers,
                        parts=len(chosen))
    with ctx.storage.engine.begin() as conn:
        leftovers = s3store.drop_upload(conn, upload.upload_id)
    for file_id in leftovers:
        files.delete(file_id)
    return {"Location": f"/{bucket.name}/{upload.key}", "Bucket": bucket.name,
            "Key": upload.key, "ETag": obj.etag, **checksum_output(values)}


def _owner(bucket: Bucket, upload: Upload) -> str:
    from snapferry.services.s3.objects import object_owner

    return object_owner(bucket, upload.account_id, upload.acl)


def abort_multipart_upload(ctx: RequestContext, params: dict[str, Any]) -> Output:
    _, upload = _upload(ctx, params, own_action(ctx))
    with ctx.storage.engine.begin() as conn:
        leftovers = s3store.drop_upload(conn, upload.upload_id)
    for file_id in leftovers:
        object_files(ctx).delete(file_id)
    return {}


def list_parts(ctx: RequestContext, params: dict[str, Any]) -> Output:
    _, upload = _upload(ctx, params, own_action(ctx))
    marker = params.get("PartNumberMarker") or 0
    limit = min(max(params.get("MaxParts") or 1000, 1), 1000)
    with ctx.storage.engine.connect() as conn:
        parts = [p for p in s3store.parts_of(conn, upload.upload_id) if p.number > marker]
    page, truncated = parts[:limit], len(parts) > limit
    output: Output = {
        "Bucket": upload.bucket, "Key": upload.key, "UploadId": upload.upload_id,
        "PartNumberMarker": marker, "MaxParts": limit, "IsTruncated": truncated,
        "Initiator": owner_of(upload.account_id), "Owner": owner_of(upload.account_id),
        "StorageClass": "STANDARD",
        "Parts": [{"PartNumber": p.number, "LastModified": p.last_modified, "ETag": p.etag,
                   "Size": p.size, **{f"Checksum{k}": v for k, v in p.checksums.items()}}
                  for p in page],
    }
    if page:
        output["NextPartNumberMarker"] = page[-1].number
    if upload.checksum_algorithm:
        output["ChecksumAlgorithm"] = upload.checksum_algorithm
        output["ChecksumType"] = "COMPOSITE"
    return output


def list_multipart_uploads(ctx: RequestContext, params: dict[str, Any]) -> Output:
    encoding = params.get("EncodingType")
    limit = min(max(params.get("MaxUploads") or 1000, 1), 1000)
    with ctx.storage.engine.connect() as conn:
        bucket = find_bucket(conn, ctx, params["Bucket"])
        authorize_bucket(ctx, bucket, own_action(ctx), "READ")
        found = s3store.uploads_in(conn, bucket.name, params.get("Prefix") or "",
                                   params.get("KeyMarker") or "",
                                   params.get("UploadIdMarker") or "", limit + 1)
    page, truncated = found[:limit], len(found) > limit
    output: Output = {
        "Bucket": bucket.name, "KeyMarker": params.get("KeyMarker") or "",
        "UploadIdMarker": params.get("UploadIdMarker") or "",
        "Prefix": url_encode(params.get("Prefix") or "", encoding), "MaxUploads": limit,
        "IsTruncated": truncated, "EncodingType": encoding,
        "Uploads": [{"UploadId": u.upload_id, "Key": url_encode(u.key, encoding),
                     "Initiated": u.initiated, "StorageClass": "STANDARD",
                     "Owner": owner_of(u.account_id), "Initiator": owner_of(u.account_id),
                     **({"ChecksumAlgorithm": u.checksum_algorithm}
                        if u.checksum_algorithm else {})}
                    for u in page],
    }
    if truncated and page:
        output["NextKeyMarker"] = url_encode(page[-1].key, encoding)
        output["NextUploadIdMarker"] = page[-1].upload_id
    return output


HANDLERS = {
    "CreateMultipartUpload": create_multipart_upload,
    "UploadPart": upload_part,
    "UploadPartCopy": upload_part_copy,
    "CompleteMultipartUpload": complete_multipart_upload,
    "AbortMultipartUpload": abort_multipart_upload,
    "ListParts": list_parts,
    "ListMultipartUploads": list_multipart_uploads,
}
