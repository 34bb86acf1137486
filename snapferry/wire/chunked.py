"""S3's `aws-chunked` content encoding: a body cut into chunks, each signed in a chain from
the request's own signature (STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]), or unsigned
with trailing headers (STREAMING-UNSIGNED-PAYLOAD-TRAILER, what current SDKs send with a
trailing `x-amz-checksum-*`).

    <hex size>[;chunk-signature=<sig>]\\r\\n<data>\\r\\n ... 0[;chunk-signature=<sig>]\\r\\n
    [<trailer>:<value>\\r\\n ... [x-amz-trailer-signature:<sig>\\r\\n]]\\r\\n

The decoder reads from a file (the spooled body) and hands the data on piece by piece;
nothing is held whole in memory.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

from snapferry.errors import ServiceError

MAX_LINE = 4096
PIECE = 1024 * 1024
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


@dataclass(frozen=True)
class ChunkSigner:
    """What the chain of chunk signatures starts from."""

    key: bytes  # the SigV4 signing key of the request's scope
    timestamp: str  # X-Amz-Date
    scope: str  # <date>/<region>/<service>/aws4_request
    seed: str  # the request's own signature

    def chunk(self, previous: str, data_sha256: str) -> str:
        text = "\n".join(("AWS4-HMAC-SHA256-PAYLOAD", self.timestamp, self.scope, previous,
                          EMPTY_SHA256, data_sha256))
        return hmac.digest(self.key, text.encode(), "sha256").hex()

    def trailer(self, previous: str, trailer_sha256: str) -> str:
        text = "\n".join(("AWS4-HMAC-SHA256-TRAILER", self.timestamp, self.scope, previous,
                          trailer_sha256))
        return hmac.digest(self.key, text.encode(), "sha256").hex()


def _incomplete(detail: str) -> ServiceError:
    return ServiceError("IncompleteBody", f"The aws-chunked body is malformed: {detail}")


def _bad_signature() -> ServiceError:
    return ServiceError(
        "SignatureDoesNotMatch",
        "The request signature we calculated does not match the signature you provided: a "
        "chunk signature of the aws-chunked body is wrong.", status=403)


def _line(source: BinaryIO) -> bytes:
    line = source.readline(MAX_LINE)
    if not line.endswith(b"\r\n"):
        raise _incomplete("a chunk header or trailer line does not end with CRLF "
                          f"within {MAX_LINE} bytes.")
    return line[:-2]


def decode(source: BinaryIO, sink: Callable[[bytes], None], signer: ChunkSigner | None,
           signed_trailer: bool = False) -> dict[str, str]:
    """Pass the decoded data to `sink`; return the trailing headers (lower-case names).
    With a signer every chunk's signature is checked (and the trailer's when
    `signed_trailer`); without one, chunk signatures must be absent."""
    previous = signer.seed if signer else ""
    while True:
        header = _line(source)
        size_text, _, extension = header.partition(b";")
        try:
            size = int(size_text, 16) if 0 < len(size_text) <= 16 else -1
        except ValueError:
            size = -1
        if size < 0:
            raise _incomplete(f"'{size_text[:20]!r}' is not a hexadecimal chunk size.")
        signature = None
        if extension:
            name, _, value = extension.partition(b"=")
            if name.strip() != b"chunk-signature":
                raise _incomplete("the only chunk extension is chunk-signature.")
            signature = value.strip().decode("latin-1")
        if signer is not None and signature is None:
            raise _incomplete("a chunk has no chunk-signature.")
        digest = hashlib.sha256()
        remaining = size
        while remaining:
            piece = source.read(min(PIECE, remaining))
            if not piece:
                raise _incomplete("the body ends inside a chunk.")
            remaining -= len(piece)
            if signer is not None:
                digest.update(piece)
            if piece:
                sink(piece)
        if signer is not None:
            expected = signer.chunk(previous, digest.hexdigest())
            if signature is None or not hmac.compare_digest(expected, signature):
                raise _bad_signature()
            previous = expected
        if size == 0:
            break
        if source.read(2) != b"\r\n":
            raise _incomplete("a chunk's data is not followed by CRLF.")
    return _trailers(source, signer if signed_trailer else None, previous)


def _trailers(source: BinaryIO, signer: ChunkSigner | None, previous: str) -> dict[str, str]:
    trailers: dict[str, str] = {}
    canonical = b""
    signature = None
    while True:
        line = source.readline(MAX_LINE)
        if line in (b"", b"\r\n", b"\n"):
            break  # the end of the body (some clients omit the final CRLF)
        line = line.rstrip(b"\r\n")
        name, sep, value = line.partition(b":")
        if not sep or len(trailers) > 16:
            raise _incomplete("a trailer is not 'name:value'.")
        key = name.strip().lower().decode("latin-1")
        text = value.strip().decode("latin-1")
        if key == "x-amz-trailer-signature":
            signature = text
            continue
        trailers[key] = text
        canonical += f"{key}:{text}\n".encode("latin-1")
    if signer is not None:
        expected = signer.trailer(previous, hashlib.sha256(canonical).hexdigest())
        if signature is None or not hmac.compare_digest(expected, signature):
            raise _bad_signature()
    if source.read(1):
        raise _incomplete("there are bytes after the last chunk and its trailers.")
    return trailers
