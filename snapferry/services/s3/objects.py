"""Objects: put, get, head, delete (one or many), list, copy; object ACLs."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote

from snapferry.domain import buckets as rules
from snapferry.domain import checksums, s3_access
from snapferry.errors import ServiceError
from snapferry.services.context import Output, RequestContext
from snapferry.services.s3 import body
from snapferry.services.s3.buckets import (
    ENFORCED,
    acl_from_request,
    acls_disabled,
    only_owner_full_control,
)
from snapferry.services.s3.common import (
    authorize_bucket,
    authorize_new_object,
    authorize_object,
    authorize_write,
    find_bucket,
    no_such_key,
    object_files,
    own_action,
    owner_of,
    url_encode,
)
from snapferry.storage import s3store
from snapferry.storage.objectfiles import ObjectGone
from snapferry.storage.s3store import Bucket, StoredObject
from snapferry.wire.shapes import iso8601, parse_time

# Request members kept with an object and given back on GET and HEAD.
STORED_HEADERS = ("ContentType", "ContentEncoding", "ContentDisposition", "ContentLanguage",
                  "CacheControl")
DEFAULT_CONTENT_TYPE = "binary/octet-stream"


def stored_headers(params: dict[str, Any]) -> dict[str, Any]:
    headers: dict[str, Any] = {name: params[name] for name in STORED_HEADERS
                               if params.get(name) is not None}
    encoding = [e.strip() for e in (headers.get("ContentEncoding") or "").split(",")
                if e.strip() and e.strip().lower() != "aws-chunked"]
    if encoding:
        headers["ContentEncoding"] = ", ".join(encoding)
    else:
        headers.pop("ContentEncoding", None)
    if params.get("Expires") is not None:
        headers["Expires"] = iso8601(params["Expires"])
    if params.get("Metadata"):
        headers["Metadata"] = params["Metadata"]
    return headers


def object_owner(bucket: Bucket, writer: str, acl: list[dict[str, Any]] | None) -> str:
    """Who owns a newly written object, by the bucket's ObjectOwnership."""
    if bucket.ownership == ENFORCED:
        return bucket.account_id
    if bucket.ownership == "BucketOwnerPreferred" and acl is not None and any(
            g["Grantee"].get("ID") == s3_access.canonical_id(bucket.account_id)
            and g["Permission"] == "FULL_CONTROL" for g in acl):
        return bucket.account_id
    return writer


def object_acl(ctx: RequestContext, bucket: Bucket, params: dict[str, Any]
               ) -> tuple[str, list[dict[str, Any]]]:
    """(owner, grants) of an object the request writes; refuses ACLs a bucket does not allow."""
    asked = acl_from_request(params, ctx.account_id, bucket.account_id, for_object=True)
    if bucket.ownership == ENFORCED and asked is not None and not only_owner_full_control(
            [g for g in asked if g["Grantee"].get("ID")
             != s3_access.canonical_id(ctx.account_id)] or asked, bucket.account_id):
        raise acls_disabled()
    owner = object_owner(bucket, ctx.account_id, asked)
    if bucket.ownership == ENFORCED or asked is None:
        return owner, s3_access.canned("private", owner, for_object=True)
    return owner, asked


def _check_write_conditions(existing: StoredObject | None, params: dict[str, Any]) -> None:
    if_none = params.get("IfNoneMatch")
    if if_none is not None and existing is not None and if_none.strip() == "*":
        raise ServiceError("PreconditionFailed", "At least one of the pre-conditions you "
                           "specified did not hold", status=412, Condition="If-None-Match")
    if_match = params.get("IfMatch")
    if if_match is not None:
        if existing is None:
            raise no_such_key("")
        rules.check_conditions(existing.etag, existing.last_modified, if_match, None, None,
                               None, read=False)


def commit_object(ctx: RequestContext, bucket_name: str, key: str, received: body.Received,
                  params: dict[str, Any], owner: str, acl: list[dict[str, Any]],
                  headers: dict[str, Any], parts: int | None = None,
                  checksums_stored: dict[str, str] | None = None) -> StoredObject:
    """Name the new file by the key, in one transaction; the replaced file goes after it."""
    files = object_files(ctx)
    obj = StoredObject(bucket_name, key, received.file_id, received.size, received.etag,
                       ctx.clock.now(), owner, headers,
                       received.checksums if checksums_stored is None else checksums_stored,
                       parts, acl)
    try:
        with ctx.storage.engine.begin() as conn:
            find_bucket(conn, ctx, bucket_name)  # it may have gone meanwhile
            _check_write_conditions(s3store.get_object(conn, bucket_name, key), params)
            old = s3store.put_object(conn, obj)
    except BaseException:
        files.delete(received.file_id)
        raise
    if old is not None:
        files.delete(old)
    return obj


def checksum_output(values: dict[str, str]) -> Output:
    output: Output = {f"Checksum{name}": value for name, value in values.items()}
    if values:
        output["ChecksumType"] = ("COMPOSITE" if any("-" in v for v in values.values())
                                  else "FULL_OBJECT")
    return output


def put_object(ctx: RequestContext, params: dict[str, Any]) -> Output:
    key = params["Key"]
    rules.check_key(key)
    with ctx.storage.engine.connect() as conn:
        bucket = find_bucket(conn, ctx, params["Bucket"])
        existing = s3store.get_object(conn, bucket.name, key)
    owner, acl = object_acl(ctx, bucket, params)
    authorize_new_object(ctx, bucket, key, params)
    _check_write_conditions(existing, params)
    received = body.receive(ctx, params["Body"], params)
    commit_object(ctx, bucket.name, key, received, params, owner, acl, stored_headers(params))
    return {"ETag": received.etag, "Size": received.size,
            **checksum_output(received.checksums)}


# ---- reading ---------------------------------------------------------------------------------

def _lookup(ctx: RequestContext, params: dict[str, Any], action: str,
            permission: str = "READ") -> tuple[Bucket, StoredObject]:
    key = params["Key"]
    with ctx.storage.engine.connect() as conn:
        bucket = find_bucket(conn, ctx, params["Bucket"])
        obj = s3store.get_object(conn, bucket.name, key)
    if obj is None:
        # S3 says NoSuchKey only to callers who may list the bucket; others get AccessDenied.
        authorize_bucket(ctx, bucket, "s3:ListBucket", "READ")
        raise no_such_key(key)
    authorize_object(ctx, bucket, key, obj, action, permission)
    return bucket, obj


def _part_range(obj: StoredObject, number: int) -> tuple[int, int]:
    sizes = obj.headers.get("PartSizes") or [obj.size]
    if not 1 <= number <= len(sizes):
        raise ServiceError("InvalidPartNumber", "The requested partnumber is not satisfiable",
                           status=416, PartNumberRequested=str(number),
                           ActualPartCount=str(len(sizes)))
    start = sum(sizes[: number - 1])
    return start, start + sizes[number - 1] - 1


def _read_output(obj: StoredObject, params: dict[str, Any]) -> tuple[Output, int, int | None]:
    rules.check_conditions(obj.etag, obj.last_modified, params.get("IfMatch"),
                           params.get("IfNoneMatch"), params.get("IfModifiedSince"),
                           params.get("IfUnmodifiedSince"))
    output: Output = {"ETag": obj.etag, "LastModified": obj.last_modified,
                      "AcceptRanges": "bytes", "ContentType": DEFAULT_CONTENT_TYPE}
    for name in STORED_HEADERS:
        if obj.headers.get(name) is not None:
            output[name] = obj.headers[name]
    if obj.headers.get("Expires"):
        output["Expires"] = parse_time(obj.headers["Expires"])
    if obj.headers.get("Metadata"):
        output["Metadata"] = obj.headers["Metadata"]
    if obj.parts:
        output["PartsCount"] = obj.parts
    for name in ("CacheControl", "ContentDisposition", "ContentEncoding", "ContentLanguage",
                 "ContentType"):
        override = params.get(f"Response{name}")
        if override is not None:
            output[name] = override
    if params.get("ResponseExpires") is not None:
        output["Expires"] = params["ResponseExpires"]
    span: tuple[int, int] | None
    if params.get("PartNumber") is not None:
        span = _part_range(obj, params["PartNumber"])
    else:
        span = rules.byte_range(params.get("Range"), obj.size)
    if span is None:
        if params.get("ChecksumMode") == "ENABLED":
            output.update(checksum_output(obj.checksums))
        output["ContentLength"] = obj.size
        return output, 0, None
    first, last = span
    output["ContentRange"] = f"bytes {first}-{last}/{obj.size}"
    output["ContentLength"] = last - first + 1
    return output, first, last - first + 1


def get_object(ctx: RequestContext, params: dict[str, Any]) -> Output:
    files = object_files(ctx)
    for _ in range(3):  # the object may be replaced between its row and its file
        _, obj = _lookup(ctx, params, own_action(ctx))
        output, start, length = _read_output(obj, params)
        try:
            stream: Iterator[bytes] = files.read(obj.file_id, start, length)
        except ObjectGone:
            continue
        output["Body"] = stream
        return output
    raise no_such_key(params["Key"])


def head_object(ctx: RequestContext, params: dict[str, Any]) -> Output:
    _, obj = _lookup(ctx, params, own_action(ctx))
    output, _, _ = _read_output(obj, params)
    return output


# ---- deleting --------------------------------------------------------------------------------

def delete_object(ctx: RequestContext, params: dict[str, Any]) -> Output:
    key = params["Key"]
    with ctx.storage.engine.begin() as conn:
        bucket = find_bucket(conn, ctx, params["Bucket"])
        authorize_write(ctx, bucket, key, own_action(ctx))
        old = s3store.delete_object(conn, bucket.name, key)
    if old is not None:
        object_files(ctx).delete(old)
    return {}


def delete_objects(ctx: RequestContext, params: dict[str, Any]) -> Output:
    asked = (params.get("Delete") or {}).get("Objects") or []
    if not asked or len(asked) > 1000:
        raise ServiceError("MalformedXML", "The XML you provided was not well-formed or did "
                           "not validate against our published schema: name 1 to 1000 Objects.")
    quiet = bool(params["Delete"].get("Quiet"))
    deleted: list[dict[str, str]] = []
    errors: list[dict[str, str]] = []
    gone: list[str] = []
    with ctx.storage.engine.begin() as conn:
        bucket = find_bucket(conn, ctx, params["Bucket"])
        for item in asked:
            key = item.get("Key")
            if not key:
                raise ServiceError("UserKeyMustBeSpecified", "The request was missing a "
                                   "required header: each Object needs a Key.")
            try:
                authorize_write(ctx, bucket, key, own_action(ctx))
            except ServiceError as refused:
                errors.append({"Key": key, "Code": refused.code, "Message": refused.message})
                continue
            old = s3store.delete_object(conn, bucket.name, key)
            if old is not None:
                gone.append(old)
            if not quiet:
                deleted.append({"Key": key})
    ctx.authorized = True  # each key was decided on its own above
    for file_id in gone:
        object_files(ctx).delete(file_id)
    return {"Deleted": deleted, "Errors": errors}


# ---- listing ---------------------------------------------------------------------------------

def _max_keys(params: dict[str, Any]) -> int:
    value = params.get("MaxKeys")
    if value is None:
        return rules.MAX_KEYS
    if value < 0:
        raise ServiceError("InvalidArgument", "max-keys cannot be negative",
                           ArgumentName="max-keys", ArgumentValue=str(value))
    return min(value, rules.MAX_KEYS)


def _encoding(params: dict[str, Any]) -> str | None:
    encoding = params.get("EncodingType")
    if encoding not in (None, "url"):
        raise ServiceError("InvalidArgument", "Invalid Encoding Method specified in Request",
                           ArgumentName="encoding-type")
    return encoding


def _contents(objects: dict[str, StoredObject], keys: list[str], encoding: str | None,
              with_owner: bool) -> list[dict[str, Any]]:
    contents = []
    for key in keys:
        obj = objects.get(key)
        if obj is None:
            continue  # deleted while we listed
        entry: dict[str, Any] = {"Key": url_encode(key, encoding),
                                 "LastModified": obj.last_modified, "ETag": obj.etag,
                                 "Size": obj.size, "StorageClass": "STANDARD"}
        if obj.checksums:
            entry["ChecksumAlgorithm"] = sorted(obj.checksums)
            entry["ChecksumType"] = checksum_output(obj.checksums)["ChecksumType"]
        if with_owner:
            entry["Owner"] = owner_of(obj.owner)
        contents.append(entry)
    return contents


def _list(ctx: RequestContext, params: dict[str, Any], start: str
          ) -> tuple[Bucket, rules.Listing, dict[str, StoredObject], int]:
    max_keys = _max_keys(params)
    with ctx.storage.engine.connect() as conn:
        bucket = find_bucket(conn, ctx, params["Bucket"])
        authorize_bucket(ctx, bucket, own_action(ctx), "READ")
        listing = rules.walk(lambda b, inc: s3store.keys_from(conn, bucket.name, b, inc),
                             params.get("Prefix") or "", params.get("Delimiter") or "", start,
                             max_keys)
        objects = s3store.objects_named(conn, bucket.name, listing.keys)
    return bucket, listing, objects, max_keys


def list_objects_v2(ctx: RequestContext, params: dict[str, Any]) -> Output:
    encoding = _encoding(params)
    token = params.get("ContinuationToken")
    start = rules.decode_token(token) if token else (params.get("StartAfter") or "")
    if token is not None and not token:
        raise ServiceError("InvalidArgument", "The continuation token provided is incorrect",
                           ArgumentName="continuation-token")
    bucket, listing, objects, max_keys = _list(ctx, params, start)
    contents = _contents(objects, listing.keys, encoding, bool(params.get("FetchOwner")))
    output: Output = {
        "Name": bucket.name, "Prefix": url_encode(params.get("Prefix") or "", encoding),
        "MaxKeys": max_keys, "KeyCount": len(contents) + len(listing.prefixes),
        "IsTruncated": listing.truncated, "Contents": contents,
        "CommonPrefixes": [{"Prefix": url_encode(p, encoding)} for p in listing.prefixes],
        "Delimiter": url_encode(params.get("Delimiter"), encoding),
        "EncodingType": encoding, "ContinuationToken": token,
        "StartAfter": url_encode(params.get("StartAfter"), encoding),
    }
    if listing.truncated and listing.last is not None:
        output["NextContinuationToken"] = rules.encode_token(listing.last)
    return output


def list_objects(ctx: RequestContext, params: dict[str, Any]) -> Output:
    encoding = _encoding(params)
    bucket, listing, objects, max_keys = _list(ctx, params, params.get("Marker") or "")
    output: Output = {
        "Name": bucket.name, "Prefix": url_encode(params.get("Prefix") or "", encoding),
        "Marker": url_encode(params.get("Marker") or "", encoding), "MaxKeys": max_keys,
        "IsTruncated": listing.truncated,
        "Contents": _contents(objects, listing.keys, encoding, True),
        "CommonPrefixes": [{"Prefix": url_encode(p, encoding)} for p in listing.prefixes],
        "Delimiter": url_encode(params.get("Delimiter"), encoding), "EncodingType": encoding,
    }
    if listing.truncated and params.get("Delimiter") and listing.last is not None:
        output["NextMarker"] = url_encode(listing.last, encoding)
    return output


# ---- copying ---------------------------------------------------------------------------------

def copy_source(text: str) -> tuple[str, str]:
    """(bucket, key) from x-amz-copy-source: `bucket/key` or `/bucket/key`, %-encoded."""
    path = text.split("?", 1)[0]
    bucket, _, key = unquote(path).lstrip("/").partition("/")
    if not bucket or not key:
        raise ServiceError("InvalidArgument", "Copy Source must mention the source bucket and "
                           "key: sourcebucket/sourcekey", ArgumentName="x-amz-copy-source")
    return bucket, key


def read_source(ctx: RequestContext, params: dict[str, Any]) -> StoredObject:
    """The source object of a copy, readable by the caller, its copy conditions met."""
    source_bucket, source_key = copy_source(params["CopySource"])
    with ctx.storage.engine.connect() as conn:
        bucket = find_bucket(conn, ctx, source_bucket, any_region=True)
        obj = s3store.get_object(conn, bucket.name, source_key)
    if obj is None:
        authorize_bucket(ctx, bucket, "s3:ListBucket", "READ")
        raise no_such_key(source_key)
    authorize_object(ctx, bucket, source_key, obj, "s3:GetObject", "READ")
    try:
        rules.check_conditions(obj.etag, obj.last_modified, params.get("CopySourceIfMatch"),
                               params.get("CopySourceIfNoneMatch"),
                               params.get("CopySourceIfModifiedSince"),
                               params.get("CopySourceIfUnmodifiedSince"))
    except ServiceError as failed:
        if failed.status == 304:  # a copy answers every failed condition with 412
            raise ServiceError("PreconditionFailed", "At least one of the pre-conditions you "
                               "specified did not hold", status=412) from None
        raise
    return obj


def copy_bytes(ctx: RequestContext, source: StoredObject, start: int = 0,
               length: int | None = None, algorithms: tuple[str, ...] = ()) -> body.Received:
    files = object_files(ctx)
    hasher = checksums.Hasher(algorithms)
    with files.writer() as writer:
        try:
            for piece in files.read(source.file_id, start, length):
                hasher.update(piece)
                writer.write(piece)
        except ObjectGone:
            raise no_such_key(source.key) from None
        file_id = writer.commit()
    return body.Received(file_id, hasher.size, f'"{hasher.md5.hexdigest()}"',
                         {name: hasher.value(name) for name in hasher.checksums})


def copy_object(ctx: RequestContext, params: dict[str, Any]) -> Output:
    key = params["Key"]
    rules.check_key(key)
    directive = params.get("MetadataDirective") or "COPY"
    if directive not in ("COPY", "REPLACE"):
        raise ServiceError("InvalidArgument", "Unknown metadata directive.",
                           ArgumentName="x-amz-metadata-directive")
    source_bucket, source_key = copy_source(params["CopySource"])
    if (source_bucket, source_key) == (params["Bucket"], key) and directive == "COPY":
        raise ServiceError("InvalidRequest", "This copy request is illegal because it is "
                           "trying to copy an object to itself without changing the object's "
                           "metadata, storage class, website redirect location or encryption "
                           "attributes.")
    with ctx.storage.engine.connect() as conn:
        bucket = find_bucket(conn, ctx, params["Bucket"])
    source = read_source(ctx, params)
    owner, acl = object_acl(ctx, bucket, params)
    authorize_new_object(ctx, bucket, key, params)
    algorithm = params.get("ChecksumAlgorithm")
    full = tuple(name for name, value in source.checksums.items() if "-" not in value)
    wanted = tuple(sorted({*full, *([checksums.algorithm(algorithm)] if algorithm else [])}))
    received = copy_bytes(ctx, source, algorithms=wanted)
    headers = (stored_headers(params) if directive == "REPLACE"
               else {k: v for k, v in source.headers.items() if k != "PartSizes"})
    obj = commit_object(ctx, bucket.name, key, received, params, owner, acl, headers)
    return {"CopyObjectResult": {"ETag": obj.etag, "LastModified": obj.last_modified,
                                 **checksum_output(received.checksums)}}


# ---- object ACLs -----------------------------------------------------------------------------

def get_object_acl(ctx: RequestContext, params: dict[str, Any]) -> Output:
    _, obj = _lookup(ctx, params, own_action(ctx), "READ_ACP")
    return {"Owner": owner_of(obj.owner), "Grants": obj.acl}


def put_object_acl(ctx: RequestContext, params: dict[str, Any]) -> Output:
    key = params["Key"]
    with ctx.storage.engine.begin() as conn:
        bucket = find_bucket(conn, ctx, params["Bucket"])
        obj = s3store.get_object(conn, bucket.name, key)
        if obj is None:
            authorize_bucket(ctx, bucket, "s3:ListBucket", "READ")
            raise no_such_key(key)
        acl = acl_from_request(params, obj.owner, bucket.account_id, for_object=True)
        if acl is None:
            raise ServiceError("MissingSecurityHeader", "Your request was missing a required "
                               "header: x-amz-acl, x-amz-grant-* or an AccessControlPolicy body.")
        authorize_object(ctx, bucket, key, obj, own_action(ctx), "WRITE_ACP")
        if bucket.ownership == ENFORCED and not only_owner_full_control(acl, bucket.account_id):
            raise acls_disabled()
        s3store.set_object_acl(conn, bucket.name, key, acl)
    return {}


HANDLERS = {
    "PutObject": put_object,
    "GetObject": get_object,
    "HeadObject": head_object,
    "DeleteObject": delete_object,
    "DeleteObjects": delete_objects,
    "ListObjectsV2": list_objects_v2,
    "ListObjects": list_objects,
    "CopyObject": copy_object,
    "GetObjectAcl": get_object_acl,
    "PutObjectAcl": put_object_acl,
}
