"""Receiving an upload's body: decode aws-chunked (checking every chunk signature), hash as
the bytes pass (MD5 for the ETag, the x-amz-checksum-* asked for), verify what the client
declared, and commit the bytes to an object file only when everything matched."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any, BinaryIO

from snapferry.domain import checksums
from snapferry.domain.buckets import MAX_OBJECT_SIZE
from snapferry.errors import ServiceError
from snapferry.services.context import RequestContext
from snapferry.services.s3.common import object_files
from snapferry.wire import chunked
from snapferry.wire.http import IncomingRequest

PIECE = 1024 * 1024
_SIGNED_TRAILER = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"


@dataclass(frozen=True)
class Received:
    file_id: str
    size: int
    etag: str  # quoted, as S3 writes it
    checksums: dict[str, str]  # algorithm -> base64 value, for the algorithms in play


def declared_checksums(params: dict[str, Any]) -> dict[str, str]:
    found = {}
    for name in ("CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256"):
        value = params.get(f"Checksum{name}")
        if value is not None:
            found[name] = value
    for name in ("SHA512", "MD5", "XXHASH64", "XXHASH3", "XXHASH128"):
        if params.get(f"Checksum{name}") is not None:
            raise ServiceError("InvalidRequest",
                               f"snapferry does not compute {name} checksums; use CRC32, "
                               "CRC32C, CRC64NVME, SHA1 or SHA256.")
    return found


def _algorithms(request: IncomingRequest, params: dict[str, Any],
                declared: dict[str, str], extra: str | None) -> set[str]:
    wanted = set(declared)
    for value in (params.get("ChecksumAlgorithm"), extra):
        if value:
            wanted.add(checksums.algorithm(value))
    for trailer in (request.header("x-amz-trailer") or "").split(","):
        trailer = trailer.strip().lower()
        if trailer.startswith("x-amz-checksum-"):
            wanted.add(checksums.algorithm(trailer[len("x-amz-checksum-"):]))
        elif trailer:
            raise ServiceError("InvalidRequest",
                               f"The trailer '{trailer[:60]}' is not a checksum S3 accepts.")
    return wanted


def _source(request: IncomingRequest) -> BinaryIO:
    if request.spool is not None:
        return open(request.spool.path, "rb")
    return io.BytesIO(request.body)


def receive(ctx: RequestContext, request: IncomingRequest, params: dict[str, Any],
            extra_algorithm: str | None = None) -> Received:
    """Store the request's body as a new object file (not yet named by any row)."""
    declared = declared_checksums(params)
    algorithms = _algorithms(request, params, declared, extra_algorithm)
    hasher = checksums.Hasher(sorted(algorithms))
    content_sha = request.header("x-amz-content-sha256") or ""
    encoding = (request.header("content-encoding") or "").lower()
    is_chunked = content_sha.startswith("STREAMING-") or "aws-chunked" in encoding
    files = object_files(ctx)
    if is_chunked:
        decoded = request.header("x-amz-decoded-content-length")
        expected = int(decoded) if decoded and decoded.isdigit() and len(decoded) < 20 else None
        if expected is not None and expected > MAX_OBJECT_SIZE:
            raise _too_large(expected)
        signer = ctx.chunk_signer if content_sha.startswith("STREAMING-AWS4") else None
        if content_sha.startswith("STREAMING-AWS4") and signer is None:
            raise ServiceError("InvalidRequest", "A signed aws-chunked body needs a "
                               "header-signed request.")
        with files.writer() as writer, _source(request) as source:
            def sink(data: bytes) -> None:
                if hasher.size + len(data) > MAX_OBJECT_SIZE:
                    raise _too_large(hasher.size + len(data))
                hasher.update(data)
                writer.write(data)

            trailers = chunked.decode(source, sink, signer,
                                      signed_trailer=content_sha == _SIGNED_TRAILER)
            if expected is not None and expected != hasher.size:
                raise ServiceError("IncompleteBody", f"The body decodes to {hasher.size} "
                                   f"bytes, not x-amz-decoded-content-length {expected}.")
            for name, value in trailers.items():
                if name.startswith("x-amz-checksum-"):
                    algorithm = checksums.algorithm(name[len("x-amz-checksum-"):])
                    if algorithm not in hasher.checksums:
                        raise ServiceError("InvalidRequest", f"The trailer {name} was not "
                                           "announced in x-amz-trailer.")
                    declared[algorithm] = value
            _verify(request, params, declared, hasher)
            file_id = writer.commit()
    elif request.spool is not None:
        if request.spool.size > MAX_OBJECT_SIZE:
            raise _too_large(request.spool.size)
        with open(request.spool.path, "rb") as source:
            while piece := source.read(PIECE):
                hasher.update(piece)
        _verify(request, params, declared, hasher)
        file_id = files.adopt(request.spool.path)
    else:
        hasher.update(request.body)
        _verify(request, params, declared, hasher)
        with files.writer() as writer:
            writer.write(request.body)
            file_id = writer.commit()
    return Received(file_id, hasher.size, f'"{hasher.md5.hexdigest()}"',
                    {name: hasher.value(name) for name in hasher.checksums})


def _verify(request: IncomingRequest, params: dict[str, Any], declared: dict[str, str],
            hasher: checksums.Hasher) -> None:
    checksums.check_md5(params.get("ContentMD5"), hasher)
    checksums.check_declared(declared, hasher)


def _too_large(size: int) -> ServiceError:
    return ServiceError("EntityTooLarge", "Your proposed upload exceeds the maximum allowed "
                        "size", ProposedSize=str(size), MaxSizeAllowed=str(MAX_OBJECT_SIZE))
