"""The copies page's login, session cookie and routes over plain HTTP (the browser test is
test_copies_page.py): what a forged, altered or expired cookie gets, cross-site posts, and
the headers that keep the page's values from running as script."""

from __future__ import annotations

import stat
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from snapferry.testing import ServerProcess
from snapferry.web import session

from .blocks import random_blocks, write_snapshot
from .conftest import ClientFactory, add_account

OTHER = ("444444444444", "PAGEHTTPKEYB", "page-http-secret-b")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


OPENER = urllib.request.build_opener(_NoRedirect)


def _lower(headers: Any) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}


def call(url: str, path: str, body: bytes | None = None, **headers: str
         ) -> tuple[int, dict[str, str], str]:
    request = urllib.request.Request(url + path, data=body, headers=headers)
    try:
        with OPENER.open(request, timeout=30) as response:
            return response.status, _lower(response.headers), response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, _lower(error.headers), error.read().decode()


def log_in(url: str, key: str, secret: str, **headers: str) -> tuple[int, dict[str, str], str]:
    return call(url, "/_snapferry/login",
                f"access_key_id={key}&secret_access_key={secret}".encode(), **headers)


def cookie_value(headers: dict[str, str]) -> str:
    return headers["set-cookie"].split(";")[0].split("=", 1)[1]


def test_login_sets_a_signed_cookie_and_bad_logins_get_none(server: ServerProcess) -> None:
    status, headers, _ = call(server.url, "/_snapferry")
    assert (status, headers["location"]) == (308, "/_snapferry/")
    status, headers, body = call(server.url, "/_snapferry/")
    assert status == 200 and 'name="secret_access_key"' in body and "set-cookie" not in headers
    for key, secret in (("test", "wrong"), ("NOSUCHKEY", "test"), ("", "")):
        status, headers, body = log_in(server.url, key, secret)
        assert status == 401 and "set-cookie" not in headers
        assert "The access key ID or the secret access key is wrong." in body
    status, headers, _ = log_in(server.url, "test", "test", Origin="http://evil.example")
    assert status == 403 and "set-cookie" not in headers
    status, headers, _ = log_in(server.url, "test", "test")
    assert (status, headers["location"]) == (303, "/_snapferry/")
    flags = headers["set-cookie"].split("; ")[1:]
    assert sorted(flags) == sorted(["Max-Age=28800", "Path=/_snapferry/", "HttpOnly",
                                    "SameSite=Strict"])
    cookie = f"snapferry_session={cookie_value(headers)}"
    status, _, body = call(server.url, "/_snapferry/live", Cookie=cookie)
    assert status == 200
    status, headers, _ = call(server.url, "/_snapferry/logout", b"", Cookie=cookie)
    assert status == 303 and headers["set-cookie"].startswith("snapferry_session=; Max-Age=0")


def test_forged_altered_and_expired_cookies_are_refused(
        server: ServerProcess, data_dir: Path, client: ClientFactory) -> None:
    add_account(data_dir, *OTHER)
    _, headers, _ = log_in(server.url, OTHER[1], OTHER[2])
    good = cookie_value(headers)
    assert call(server.url, "/_snapferry/live",
                Cookie=f"snapferry_session={good}")[0] == 200
    version, key, expires, mac = good.split(".")
    secret_file = data_dir / session.SECRET_FILE
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    secret = secret_file.read_bytes()
    dev_key = session._b64(b"test")
    refused = [
        f"{version}.{dev_key}.{expires}.{mac}",  # another key under this signature
        f"{version}.{key}.{int(expires) + 3600}.{mac}",  # a later expiry
        f"{version}.{key}.{expires}.{mac[:-2]}AA",  # the signature changed
        session.sign(b"x" * 32, OTHER[1], OTHER[2], time.time()),  # another server's secret
        session.sign(secret, OTHER[1], "not-the-secret", time.time()),  # an old secret
        session.sign(secret, OTHER[1], OTHER[2], time.time() - session.LIFETIME_SECONDS - 1),
        "v1.%%%.1.x", "", "garbage",
    ]
    for value in refused:
        status, _, body = call(server.url, "/_snapferry/live",
                               Cookie=f"snapferry_session={value}")
        assert status == 401, value
        status, _, body = call(server.url, "/_snapferry/",
                               Cookie=f"snapferry_session={value}")
        assert status == 200 and 'name="secret_access_key"' in body, value
    # The one made with the data dir's secret, the key's secret, and time left is accepted.
    fresh = session.sign(secret, OTHER[1], OTHER[2], time.time())
    status, _, body = call(server.url, "/_snapferry/", Cookie=f"snapferry_session={fresh}")
    assert status == 200 and OTHER[0] in body


def test_only_the_pages_routes_and_headers_that_forbid_inline_script(
        server: ServerProcess, client: ClientFactory) -> None:
    snapshot = write_snapshot(client("ebs"), random_blocks([0]),
                              Description="<script>alert(1)</script>")
    _, headers, _ = log_in(server.url, "test", "test")
    cookie = f"snapferry_session={cookie_value(headers)}"
    status, headers, body = call(server.url, "/_snapferry/", Cookie=cookie)
    assert status == 200 and snapshot in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body and "<script>alert" not in body
    policy = headers["content-security-policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["cache-control"] == "no-store"
    assert call(server.url, "/_snapferry/login", Cookie=cookie)[0] == 405
    assert call(server.url, "/_snapferry/live", b"", Cookie=cookie)[0] == 405
    assert call(server.url, "/_snapferry/nothing-here")[0] == 404
    status, headers, script = call(server.url, "/_snapferry/app.js")
    assert status == 200 and headers["content-type"].startswith("text/javascript")
    assert "fetch(" in script
    # The metrics route beside it is unchanged.
    assert call(server.url, "/_snapferry/metrics")[0] == 200
