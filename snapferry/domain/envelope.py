"""The cryptography of keys and blocks. Real AES-256-GCM throughout.

KMS ciphertext blobs: version byte, the 16 bytes of the key id, a 12-byte nonce, then the
AES-GCM output. The associated data binds the key id and the encryption context, so a blob
decrypts only under its key and only with the context it was made with.

Blocks of encrypted snapshots (DESIGN "Encryption is envelope encryption"): each lineage has
a data key, stored only wrapped by its KMS key. A block's object name is an HMAC of its
plaintext's SHA-256 keyed per lineage (dedup within a lineage, no equality leaked across
lineages);
its object is nonce + AES-GCM(data key, plaintext, AAD = lineage id + block id).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from snapferry.errors import ServiceError

BLOB_VERSION = 1
_NONCE = 12
_TAG = 16  # AES-GCM's tag, after the ciphertext


def new_material() -> bytes:
    return AESGCM.generate_key(bit_length=256)


def _aad(key_id: str, context: Mapping[str, str] | None) -> bytes:
    canonical = json.dumps(dict(context or {}), sort_keys=True, separators=(",", ":"))
    return key_id.encode() + b"\n" + canonical.encode()


def encrypt(material: bytes, key_id: str, plaintext: bytes,
            context: Mapping[str, str] | None = None) -> bytes:
    nonce = os.urandom(_NONCE)
    sealed = AESGCM(material).encrypt(nonce, plaintext, _aad(key_id, context))
    return bytes([BLOB_VERSION]) + uuid.UUID(key_id).bytes + nonce + sealed


def blob_key_id(blob: bytes) -> str:
    """The key a ciphertext blob was made under; InvalidCiphertextException if none."""
    if len(blob) < 1 + 16 + _NONCE + 16 or blob[0] != BLOB_VERSION:
        raise invalid_ciphertext()
    return str(uuid.UUID(bytes=blob[1:17]))


def decrypt(material: bytes, blob: bytes, context: Mapping[str, str] | None = None) -> bytes:
    key_id = blob_key_id(blob)
    nonce, sealed = blob[17:17 + _NONCE], blob[17 + _NONCE:]
    try:
        return AESGCM(material).decrypt(nonce, sealed, _aad(key_id, context))
    except InvalidTag:
        raise invalid_ciphertext() from None


def invalid_ciphertext() -> ServiceError:
    return ServiceError("InvalidCiphertextException",
                        "The ciphertext is not valid for this key and encryption context.")


class BlockCodec(Protocol):
    """How the blocks of one lineage are named and stored. Names derive from the block's
    plaintext SHA-256 alone, so a copy can tell whether its destination already holds a
    block from metadata, without reading the block."""

    def block_id(self, digest: bytes) -> str: ...

    def seal(self, block_id: str, plaintext: bytes) -> bytes | bytearray: ...

    def open(self, block_id: str, stored: bytes) -> bytes: ...

    @property
    def authenticated(self) -> bool:
        """Whether `open` succeeding proves the plaintext is the block `block_id` names:
        then the plaintext's SHA-256 is known without hashing it again (BlockCipher)."""
        ...


@dataclass(frozen=True)
class PlainBlocks:
    """Unencrypted blocks of one lineage in one region: stored as they are, named by their
    SHA-256 within the lineage, so the snapshots and volumes of a lineage share blocks and a
    copy into a new lineage (another region, another account) writes its own."""

    region: str
    lineage_id: str

    def block_id(self, digest: bytes) -> str:
        scope = f"snapferry block\n{self.region}\n{self.lineage_id}\n".encode()
        return hashlib.sha256(scope + digest).hexdigest()

    def seal(self, block_id: str, plaintext: bytes) -> bytes | bytearray:
        return plaintext

    def open(self, block_id: str, stored: bytes) -> bytes:
        return stored

    @property
    def authenticated(self) -> bool:
        return False  # stored as is: only hashing the bytes read shows they are the block


@dataclass(frozen=True)
class BlockCipher:
    """Encrypts the blocks of one lineage under its data key.

    The AES-GCM key schedule and the block-id key are made once per cipher, and a cipher is
    made once per lineage (services/keyring.py caches it), not once a block. AESGCM objects
    are immutable, so threads share one."""

    lineage_id: str
    data_key: bytes = field(repr=False)  # key material: never in a log line or traceback
    _aead: AESGCM = field(init=False, repr=False, compare=False)
    _dedup_key: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_aead", AESGCM(self.data_key))
        object.__setattr__(self, "_dedup_key", hmac.new(
            self.data_key, b"snapferry block ids", hashlib.sha256).digest())

    def block_id(self, digest: bytes) -> str:
        return hmac.new(self._dedup_key, digest, hashlib.sha256).hexdigest()

    def _aad(self, block_id: str) -> bytes:
        return f"{self.lineage_id}\n{block_id}".encode()

    def seal(self, block_id: str, plaintext: bytes) -> bytes | bytearray:
        """nonce + ciphertext + tag, encrypted straight into the one buffer that is stored
        (no concatenation: that would copy the 512 KiB once more)."""
        nonce = os.urandom(_NONCE)
        stored = bytearray(_NONCE + len(plaintext) + _TAG)
        stored[:_NONCE] = nonce
        self._aead.encrypt_into(nonce, plaintext, self._aad(block_id),
                                memoryview(stored)[_NONCE:])
        return stored

    def open(self, block_id: str, stored: bytes) -> bytes:
        view = memoryview(stored)  # slices without copying 512 KiB
        try:
            return self._aead.decrypt(view[:_NONCE], view[_NONCE:], self._aad(block_id))
        except InvalidTag:
            raise ValueError(f"block {block_id} does not decrypt under its lineage key") from None

    @property
    def authenticated(self) -> bool:
        """True: the AAD binds the lineage and the block id, and every block id is the keyed
        HMAC of the SHA-256 its plaintext was checked against before sealing (PutSnapshotBlock
        checks the client's checksum; copies check what they read). So a ciphertext that
        opens under block id X holds the plaintext whose SHA-256 X names: a corrupted
        object fails the tag, another block of the lineage (or of another lineage) put in
        its place fails the AAD or the key."""
        return True
