"""The server's master key and what it seals: account secrets, later KMS key material.

The master key is 32 random bytes in `<data dir>/master.key`, mode 0600, created once.
Sealed values are AES-256-GCM with a fresh 96-bit nonce, bound by associated data to what
they belong to, so a sealed secret cannot be moved onto another access key.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from snapferry.storage.files import write_atomic

MASTER_KEY_FILE = "master.key"
_NONCE = 12


class MasterKeyError(Exception):
    pass


def load_or_create_master_key(data_dir: Path) -> bytes:
    path = data_dir / MASTER_KEY_FILE
    if not path.exists():
        write_atomic(path, AESGCM.generate_key(bit_length=256), mode=0o600, replace=False)
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise MasterKeyError(
            f"{path} is readable by others (mode {mode:o}); run: chmod 600 {path}"
        )
    key = path.read_bytes()
    if len(key) != 32:
        raise MasterKeyError(f"{path} must hold exactly 32 bytes; it holds {len(key)}.")
    return key


class SecretBox:
    def __init__(self, master_key: bytes) -> None:
        self._aead = AESGCM(master_key)

    def seal(self, plaintext: bytes, bound_to: bytes) -> bytes:
        nonce = os.urandom(_NONCE)
        return nonce + self._aead.encrypt(nonce, plaintext, bound_to)

    def open(self, sealed: bytes, bound_to: bytes) -> bytes:
        try:
            return self._aead.decrypt(sealed[:_NONCE], sealed[_NONCE:], bound_to)
        except InvalidTag:
            raise MasterKeyError(
                "A sealed value does not open under this data dir's master key: the master key "
                "or the database was replaced."
            ) from None
