"""The HTTP request and response as the protocols see them: plain data, no framework."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Generic, TypeVar, overload
from urllib.parse import parse_qsl, unquote

T = TypeVar("T")
# Form bodies up to this long are parsed once and remembered (a bounded set): a client
# polling Describe* sends the same few bodies again and again.
MAX_REMEMBERED_FORM = 512


@lru_cache(maxsize=256)
def _short_form(text: str) -> tuple[tuple[str, str], ...]:
    return tuple(parse_qsl(text, keep_blank_values=True))


class cached_property(Generic[T]):
    """functools.cached_property without its lock (Python 3.11 takes an RLock on every
    first read, 5 reads a simple request: 3% of its CPU). The value lands in the instance's
    __dict__, which later reads find before this non-data descriptor. A request is handled
    by one thread at a time, so two threads never race to compute one instance's value (and
    if they did, both would compute the same value)."""

    def __init__(self, function: Callable[[Any], T]) -> None:
        self.function = function
        self.name = function.__name__
        self.__doc__ = function.__doc__

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, instance: None, owner: type | None = None) -> cached_property[T]: ...

    @overload
    def __get__(self, instance: object, owner: type | None = None) -> T: ...

    def __get__(self, instance: object | None, owner: type | None = None) -> Any:
        if instance is None:
            return self
        value = self.function(instance)
        instance.__dict__[self.name] = value  # frozen dataclasses too: no __setattr__
        return value


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
        if not self.raw_query:  # a POSTed form's query string: usually none
            return []
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
        if len(text) > MAX_REMEMBERED_FORM:
            return self.query_pairs + parse_qsl(text, keep_blank_values=True)
        return self.query_pairs + list(_short_form(text))

    @cached_property
    def form(self) -> dict[str, str] | None:
        """form_pairs as a dict (the last of a repeated name wins); None when not UTF-8."""
        pairs = self.form_pairs
        return None if pairs is None else dict(pairs)


@dataclass
class HttpResponse:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    # A large body (an S3 object) sent piece by piece instead of `body`; `length` bytes.
    stream: Iterator[bytes] | None = None
    length: int = 0
