"""The copies page's session: a cookie naming an access key and an expiry, signed with HMAC-
SHA256 under a secret kept in the data dir (0600, made on first use; every server on the data
dir shares it). Nothing is stored server-side, so the signature also covers a digest of the
key's secret: a key that is deleted, or given a new secret, ends its sessions at once."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from snapferry.storage.files import check_private, write_atomic
from snapferry.storage.secrets import MasterKeyError

COOKIE = "snapferry_session"
SECRET_FILE = "web-session.key"
LIFETIME_SECONDS = 8 * 3600
_VERSION = "v1"


def load_or_create_secret(data_dir: Path) -> bytes:
    """The signing secret; two servers starting together agree on one (no overwrite)."""
    path = data_dir / SECRET_FILE
    if not path.exists():
        import secrets

        write_atomic(path, secrets.token_bytes(32), replace=False)
    check_private(path)
    secret = path.read_bytes()
    if len(secret) < 32:  # an empty or short key would make every cookie easy to forge
        raise MasterKeyError(f"{path} must hold at least 32 bytes; it holds {len(secret)}. "
                             "Delete it and restart: a new one is made.")
    return secret


@dataclass(frozen=True)
class Session:
    access_key_id: str
    expires: int  # seconds since the epoch


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: bytes, key_id: str, expires: int, key_secret: str) -> str:
    bound = hashlib.sha256(key_secret.encode()).hexdigest()
    message = f"{_VERSION}|{key_id}|{expires}|{bound}".encode()
    return _b64(hmac.new(secret, message, hashlib.sha256).digest())


def sign(secret: bytes, key_id: str, key_secret: str, now: float) -> str:
    expires = int(now) + LIFETIME_SECONDS
    return ".".join((_VERSION, _b64(key_id.encode()), str(expires),
                     _mac(secret, key_id, expires, key_secret)))


def read(secret: bytes, value: str, key_secret_of: Callable[[str], str | None],
         now: float) -> Session | None:
    """The session a cookie value holds, or None when it is malformed, forged, expired, or
    its key is gone or changed. `key_secret_of(key_id)` gives the key's current secret."""
    parts = value.split(".")
    if len(parts) != 4 or parts[0] != _VERSION or not (parts[2].isascii()
                                                        and parts[2].isdigit()):
        return None
    try:
        key_id = _unb64(parts[1]).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    expires = int(parts[2])
    if expires <= now:
        return None
    key_secret = key_secret_of(key_id)
    if key_secret is None:
        return None
    if not hmac.compare_digest(parts[3], _mac(secret, key_id, expires, key_secret)):
        return None
    return Session(key_id, expires)


def cookie_header(value: str, max_age: int, secure: bool) -> str:
    """HttpOnly (no script reads it), SameSite=Strict (no other site sends it), scoped to the
    page's path; Secure when the page was reached over HTTPS."""
    flags = f"; Max-Age={max_age}; Path=/_snapferry/; HttpOnly; SameSite=Strict"
    return f"{COOKIE}={value}{flags}{'; Secure' if secure else ''}"


def cookie_from(header: str | None) -> str | None:
    """Our cookie's value in a Cookie header."""
    for part in (header or "").split(";"):
        name, _, value = part.strip().partition("=")
        if name == COOKIE:
            return value
    return None
