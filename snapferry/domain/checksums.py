"""S3's object checksums: Content-MD5 and the `x-amz-checksum-*` family, computed as the
bytes pass (never over a body held whole in memory).

CRC32 and the SHA family use C code (zlib, hashlib); CRC32C and CRC64NVME have no C
implementation in the standard library, so they run table-driven in Python: correct but
slow (about 10 MiB/s). boto3 and the JS SDK v3 send CRC32 unless told otherwise.
"""

from __future__ import annotations

import base64
import hashlib
import zlib
from collections.abc import Callable, Iterable
from typing import Protocol

from snapferry.errors import ServiceError

ALGORITHMS = ("CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256")


class _Digest(Protocol):
    def update(self, data: bytes) -> None: ...
    def digest(self) -> bytes: ...


def _reflected_table(poly: int, width: int) -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ poly if crc & 1 else crc >> 1
        table.append(crc & ((1 << width) - 1))
    return table


_CRC32C_TABLE = _reflected_table(0x82F63B78, 32)
_CRC64NVME_TABLE = _reflected_table(0x9A6C9329AC4BC9B5, 64)


class _TableCrc:
    def __init__(self, table: list[int], width: int) -> None:
        self.table = table
        self.width = width
        self.mask = (1 << width) - 1
        self.crc = self.mask

    def update(self, data: bytes) -> None:
        crc, table = self.crc, self.table
        for byte in data:
            crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
        self.crc = crc

    def digest(self) -> bytes:
        return ((self.crc ^ self.mask) & self.mask).to_bytes(self.width // 8, "big")


class _Crc32:
    def __init__(self) -> None:
        self.crc = 0

    def update(self, data: bytes) -> None:
        self.crc = zlib.crc32(data, self.crc)

    def digest(self) -> bytes:
        return self.crc.to_bytes(4, "big")


_FACTORIES: dict[str, Callable[[], _Digest]] = {
    "CRC32": _Crc32,
    "CRC32C": lambda: _TableCrc(_CRC32C_TABLE, 32),
    "CRC64NVME": lambda: _TableCrc(_CRC64NVME_TABLE, 64),
    "SHA1": hashlib.sha1,
    "SHA256": hashlib.sha256,
}


def algorithm(name: str) -> str:
    upper = name.upper()
    if upper not in _FACTORIES:
        raise ServiceError("InvalidRequest",
                           f"Checksum algorithm '{name[:30]}' is not one of "
                           f"{', '.join(ALGORITHMS)}.")
    return upper


class Hasher:
    """MD5 (the ETag) plus the named checksums of one stream of bytes."""

    def __init__(self, algorithms: Iterable[str] = ()) -> None:
        self.md5 = hashlib.md5()
        self.size = 0
        self.checksums: dict[str, _Digest] = {a: _FACTORIES[a]() for a in algorithms}

    def update(self, data: bytes) -> None:
        self.md5.update(data)
        self.size += len(data)
        for digest in self.checksums.values():
            digest.update(data)

    def value(self, name: str) -> str:
        """The checksum as S3 writes it: base64 of the big-endian digest."""
        return base64.b64encode(self.checksums[name].digest()).decode("ascii")


def check_md5(expected_b64: str | None, hasher: Hasher) -> None:
    if expected_b64 is None:
        return
    try:
        expected = base64.b64decode(expected_b64, validate=True)
    except ValueError:
        expected = b""
    if len(expected) != 16:
        raise ServiceError("InvalidDigest", "The Content-MD5 you specified was invalid.")
    if expected != hasher.md5.digest():
        raise ServiceError("BadDigest",
                           "The Content-MD5 you specified did not match what we received.")


def check_declared(declared: dict[str, str], hasher: Hasher) -> None:
    """Every `x-amz-checksum-<algorithm>` value given (header or trailer) must match."""
    for name, value in declared.items():
        if hasher.value(name) != value.strip():
            raise ServiceError(
                "BadDigest",
                f"The {name} you specified did not match the calculated checksum.",
            )


def composite(part_values: list[str], name: str) -> str:
    """A multipart object's checksum: the checksum of the parts' checksums, `-N`."""
    digest = _FACTORIES[name]()
    for value in part_values:
        digest.update(base64.b64decode(value))
    return f"{base64.b64encode(digest.digest()).decode('ascii')}-{len(part_values)}"
