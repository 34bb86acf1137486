"""Where block data lives. A handful of methods, each with its promise written beside it;
behaviour such as caching or retries is added by wrapping a store, not by branching in one.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol


class BlockNotFound(Exception):
    pass


class BlockStore(Protocol):
    # Whether a writer that can skip a put of a stored object should ask `exists` first:
    # True where `exists` is far cheaper than a put (a stat against a write and fsync);
    # False where `put` is a conditional create that keeps a stored object, so the put is
    # its own check and a HEAD before it would be a round trip for nothing.
    probe_before_put: bool

    def put(self, key: str, data: bytes | bytearray) -> bool:
        """Store `data` under `key`. Atomic: a reader sees all of it or no object at all,
        never a torn one. Durable once it returns. Idempotent: keys name content, so putting
        a key again with its data is harmless. Returns False when the store kept an object
        already there instead of writing (a conditional create), True when it wrote."""
        ...

    def get(self, key: str) -> bytes:
        """The object's bytes. Raises BlockNotFound when there is no such object."""
        ...

    def exists(self, key: str) -> bool:
        """Whether an object is stored under `key`."""
        ...

    def delete(self, key: str) -> None:
        """Remove the object. Idempotent: deleting a missing key is not an error."""
        ...

    def keys(self) -> Iterator[str]:
        """Every stored key, in no particular order. For audits and tests (the crash
        harness counts orphans with it); the service never lists the store."""
        ...

    def discard_incomplete(self) -> int:
        """Remove what puts interrupted by a crash left behind (never a complete object,
        never the work of a put still in flight); returns how many went."""
        ...
