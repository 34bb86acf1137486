"""The copies page's session cookie: made and read back, refused when anything in it is off,
and a signing secret that is too short or open to others refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from snapferry.storage.files import ModeError
from snapferry.storage.secrets import MasterKeyError
from snapferry.web import session

SECRET = b"s" * 32
KEYS = {"AKIDEXAMPLE": "the-secret"}


def read(value: str, now: float = 1000.0) -> session.Session | None:
    return session.read(SECRET, value, KEYS.get, now)


def test_a_cookie_reads_back_until_it_expires() -> None:
    value = session.sign(SECRET, "AKIDEXAMPLE", "the-secret", 1000.0)
    expires = 1000 + session.LIFETIME_SECONDS
    assert read(value) == session.Session("AKIDEXAMPLE", expires)
    assert read(value, now=expires - 1) is not None
    assert read(value, now=expires) is None


@pytest.mark.parametrize("value", [
    "", "v1", "v1.a.b.c.d", "v2.QUtJREVYQU1QTEU.99999.x", "v1.QUtJREVYQU1QTEU.\u00b2.x",
    "v1.%%%.99999.x", "v1.__8.99999.x",
])
def test_malformed_cookies_are_no_session(value: str) -> None:
    assert read(value) is None


def test_a_cookie_for_an_unknown_key_or_a_changed_secret_is_no_session() -> None:
    value = session.sign(SECRET, "AKIDGONE", "whatever", 1000.0)
    assert read(value) is None
    stale = session.sign(SECRET, "AKIDEXAMPLE", "the-old-secret", 1000.0)
    assert read(stale) is None


def test_the_signing_secret_is_made_once_private_and_long(tmp_path: Path) -> None:
    first = session.load_or_create_secret(tmp_path)
    assert len(first) == 32 and session.load_or_create_secret(tmp_path) == first
    path = tmp_path / session.SECRET_FILE
    assert path.stat().st_mode & 0o777 == 0o600
    path.chmod(0o644)
    with pytest.raises(ModeError):
        session.load_or_create_secret(tmp_path)
    path.chmod(0o600)
    path.write_bytes(b"short")
    with pytest.raises(MasterKeyError, match="at least 32 bytes"):
        session.load_or_create_secret(tmp_path)


def test_the_cookie_header_flags() -> None:
    assert session.cookie_header("v", 60, secure=False) == (
        "snapferry_session=v; Max-Age=60; Path=/_snapferry/; HttpOnly; SameSite=Strict")
    assert session.cookie_header("v", 60, secure=True).endswith("; Secure")
    assert session.cookie_from("a=1; snapferry_session=xyz; b=2") == "xyz"
    assert session.cookie_from(None) is None
