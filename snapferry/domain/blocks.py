"""Blocks: the 512 KiB unit of snapshot data, their checksums, and the LINEAR aggregate."""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Iterable

BLOCK_SIZE = 512 * 1024
BLOCKS_PER_GIB = (1024**3) // BLOCK_SIZE  # 2048
MAX_VOLUME_GIB = 65536
CHECKSUM_ALGORITHM = "SHA256"
AGGREGATION_METHOD = "LINEAR"


def block_count(volume_size_gib: int) -> int:
    return volume_size_gib * BLOCKS_PER_GIB


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def encode_checksum(digest: bytes) -> str:
    return base64.b64encode(digest).decode("ascii")


def decode_checksum(text: str) -> bytes | None:
    """The 32-byte digest a base64 checksum names, or None if it names none."""
    try:
        digest = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    return digest if len(digest) == 32 else None


def linear_aggregate(digests_in_index_order: Iterable[bytes]) -> bytes:
    """CompleteSnapshot's LINEAR checksum: SHA-256 over the written blocks' raw SHA-256
    digests, concatenated in ascending block index (as AWS's own coldsnap computes it)."""
    aggregate = hashlib.sha256()
    for digest in digests_in_index_order:
        aggregate.update(digest)
    return aggregate.digest()
