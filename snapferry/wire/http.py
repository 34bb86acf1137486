"""The HTTP request and response as the protocols see them: plain data, no framework."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from urllib.parse import parse_qsl, unquote


@dataclass(frozen=True)
class BodySpool:
    """A body too big to hold in memory (S3 objects): written to a private file as it
    arrived, hashed on the way. The server removes the file when the request is answered."""

    path: Path
    size: int
    sha256: bytes


@dataclass(frozen=True)
class IncomingRequest:
    method: str
    raw_path: str  # as sent, still percent-encoded: SigV4 signs this form
    raw_query: str  # as sent, still percent-encoded
    headers: dict[str, list[str]]  # lower-cased names, every value in arrival order
    body: bytes
    spool: BodySpool | None = None  # set instead of `body` for S3 uploads
    client_ip: str | None = None  # the peer's address: aws:SourceIp

    def header(self, name: str) -> str | None:
        values = self.headers.get(name.lower())
        return values[0] if values else None

    @cached_property
    def path(self) -> str:
        return unquote(self.raw_path)

    @cached_property
    def query_pairs(self) -> list[tuple[str, str]]:
        return parse_qsl(self.raw_query, keep_blank_values=True)

    @cached_property
    def query(self) -> dict[str, str]:
        return dict(self.query_pairs)

    @cached_property
    def body_sha256(self) -> bytes:
        """SHA-256 of the body, computed once for every layer that needs it (SigV4's payload
        hash, the EBS block checksum)."""
        if self.spool is not None:
            return self.spool.sha256
        return hashlib.sha256(self.body).digest()

    @property
    def body_size(self) -> int:
        return self.spool.size if self.spool is not None else len(self.body)

    @cached_property
    def form_pairs(self) -> list[tuple[str, str]] | None:
        """Query-string parameters, then form-body ones (the query protocols take both);
        None when the body is not UTF-8. Parsed once, however many layers ask."""
        try:
            text = self.body.decode("utf-8")
        except UnicodeDecodeError:
            return None
        return self.query_pairs + parse_qsl(text, keep_blank_values=True)


@dataclass
class HttpResponse:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    # A large body (an S3 object) sent piece by piece instead of `body`; `length` bytes.
    stream: Iterator[bytes] | None = None
    length: int = 0
