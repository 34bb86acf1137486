"""Unforgeable short-lived tokens: EBS block tokens and page tokens.

A token is base64 of (expiry, cursor, MAC), the MAC an HMAC-SHA256 under a key derived from
the server's master key over everything the token stands for. So a token names one block
of one snapshot (or one position in one listing), cannot be edited, and runs out.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import struct

BLOCK_TOKEN_LIFETIME = dt.timedelta(days=7)
PAGE_TOKEN_LIFETIME = dt.timedelta(minutes=60)
_MAC_BYTES = 18
_LAYOUT = struct.Struct(">QQ")  # expiry (epoch seconds), cursor


class TokenError(Exception):
    pass


class TokenMinter:
    def __init__(self, key: bytes) -> None:
        self._key = key

    def _mac(self, purpose: str, binding: str, body: bytes) -> bytes:
        message = f"{purpose}\n{binding}\n".encode() + body
        return hmac.new(self._key, message, hashlib.sha256).digest()[:_MAC_BYTES]

    def mint(self, purpose: str, binding: str, cursor: int, expires: dt.datetime) -> str:
        body = _LAYOUT.pack(int(expires.timestamp()), cursor)
        return base64.b64encode(body + self._mac(purpose, binding, body)).decode("ascii")

    def open(self, purpose: str, binding: str, token: str, now: dt.datetime) -> int:
        """The cursor a token carries; TokenError if forged, altered, foreign or expired."""
        try:
            raw = base64.b64decode(token, validate=True)
        except (binascii.Error, ValueError):
            raise TokenError("not a token") from None
        body, mac = raw[: _LAYOUT.size], raw[_LAYOUT.size :]
        if len(body) != _LAYOUT.size or not hmac.compare_digest(
            mac, self._mac(purpose, binding, body)
        ):
            raise TokenError("not a token for this resource")
        expiry, cursor = _LAYOUT.unpack(body)
        if now.timestamp() > expiry:
            raise TokenError("expired")
        return cursor


def derive_key(master_key: bytes, purpose: bytes) -> bytes:
    return hmac.new(master_key, b"snapferry key derivation\n" + purpose, hashlib.sha256).digest()
