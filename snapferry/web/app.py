"""The copies page's routes under /_snapferry/ (server.py hands them here, beside the metrics
route). Read-only: the only POSTs log in and out. A request is a plain IncomingRequest and the
answer an HttpResponse, as for the AWS protocols; handlers run on the server's thread pool."""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable
from urllib.parse import parse_qsl, urlsplit

from snapferry.domain.clock import Clock
from snapferry.storage.datadir import Storage
from snapferry.storage.overview import account_overview
from snapferry.web import assets, pages, session
from snapferry.wire.http import HttpResponse, IncomingRequest

PREFIX = pages.PREFIX
ROOT = PREFIX.rstrip("/")
HTML = "text/html; charset=utf-8"
# Scripts and styles from our own origin only: no inline script, no other site, no framing.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
                               "connect-src 'self'; img-src 'self'; form-action 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    # same-origin, not no-referrer: under no-referrer browsers send "Origin: null" on our
    # own form posts, which _same_origin must refuse.
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
MAX_FORM_BYTES = 4096
WRONG_CREDENTIALS = "The access key ID or the secret access key is wrong."


def is_web_path(raw_path: str) -> bool:
    return raw_path == ROOT or raw_path.startswith(PREFIX)


def _response(status: int, body: str | bytes = b"", content_type: str = HTML,
              **headers: str) -> HttpResponse:
    data = body.encode() if isinstance(body, str) else body
    return HttpResponse(status, data, {"Content-Type": content_type, **SECURITY_HEADERS,
                                       **headers})


def _redirect(location: str, cookie: str | None = None) -> HttpResponse:
    extra = {"Set-Cookie": cookie} if cookie else {}
    return _response(303, b"", Location=location, **extra)


def _same_origin(request: IncomingRequest) -> bool:
    """A form post from another site is refused (SameSite already keeps our cookie off it;
    this also stops one site from logging a visitor in as someone else)."""
    origin = request.header("origin")
    if origin is None:  # not sent by every browser for a same-origin form
        return True
    return urlsplit(origin).netloc == (request.header("host") or "")


class WebPages:
    def __init__(self, storage: Storage, clock: Clock,
                 wall: Callable[[], float] = time.time) -> None:
        self.storage = storage
        self.clock = clock
        self.wall = wall
        self.secret = session.load_or_create_secret(storage.data_dir)

    def _key_secret(self, access_key_id: str) -> str | None:
        key = self.storage.accounts.find(access_key_id)
        return key.secret_access_key if key else None

    def _session(self, request: IncomingRequest) -> session.Session | None:
        value = session.cookie_from(request.header("cookie"))
        if value is None:
            return None
        return session.read(self.secret, value, self._key_secret, self.wall())

    @staticmethod
    def _secure(request: IncomingRequest) -> bool:
        return request.header("x-forwarded-proto") == "https"

    def handle(self, request: IncomingRequest) -> HttpResponse:
        path, method = request.raw_path, request.method
        if path == ROOT:
            return _response(308, b"", Location=PREFIX)
        if path == PREFIX + "app.js":
            return _response(200, assets.SCRIPT, "text/javascript; charset=utf-8")
        if path == PREFIX + "app.css":
            return _response(200, assets.STYLE, "text/css; charset=utf-8")
        routes = {PREFIX: ("GET", self._page), PREFIX + "live": ("GET", self._live),
                  PREFIX + "login": ("POST", self._login),
                  PREFIX + "logout": ("POST", self._logout)}
        if path not in routes:
            return _response(404, pages.not_found_page())
        allowed, handler = routes[path]
        if method == "HEAD" and allowed == "GET":
            answer = handler(request)
            answer.body = b""
            return answer
        if method != allowed:
            return _response(405, f"Use {allowed}.", "text/plain; charset=utf-8",
                             Allow=allowed)
        if method == "POST" and not _same_origin(request):
            return _response(403, "Cross-site form posts are refused.",
                             "text/plain; charset=utf-8")
        return handler(request)

    def _page(self, request: IncomingRequest) -> HttpResponse:
        found = self._session(request)
        if found is None:
            return _response(200, pages.login_page())
        return _response(200, self._render(found, full=True))

    def _live(self, request: IncomingRequest) -> HttpResponse:
        found = self._session(request)
        if found is None:
            return _response(401, "Log in again.", "text/plain; charset=utf-8")
        return _response(200, self._render(found, full=False))

    def _render(self, found: session.Session, full: bool) -> str:
        key = self.storage.accounts.find(found.access_key_id)
        assert key is not None  # the session was just read against it
        with self.storage.engine.connect() as conn:
            overview = account_overview(conn, key.account_id)
        now = self.clock.now()
        if full:
            return pages.dashboard(key.account_id, key.access_key_id, overview, now)
        return pages.live(overview, now)

    def _login(self, request: IncomingRequest) -> HttpResponse:
        if len(request.body) > MAX_FORM_BYTES:
            return _response(413, pages.login_page("The form is too large."))
        try:
            form = dict(parse_qsl(request.body.decode("utf-8"), keep_blank_values=True))
        except UnicodeDecodeError:
            form = {}
        key_id = form.get("access_key_id", "").strip()
        given = form.get("secret_access_key", "")
        secret = self._key_secret(key_id) if key_id else None
        # One answer for an unknown key and a wrong secret: the page tells no one which keys
        # exist. compare_digest runs either way, so timing tells no more.
        matches = hmac.compare_digest(given.encode(), (secret or "\0" + given).encode())
        if secret is None or not matches:
            return _response(401, pages.login_page(WRONG_CREDENTIALS, key_id))
        value = session.sign(self.secret, key_id, secret, self.wall())
        return _redirect(PREFIX, session.cookie_header(value, session.LIFETIME_SECONDS,
                                                       self._secure(request)))

    def _logout(self, request: IncomingRequest) -> HttpResponse:
        return _redirect(PREFIX, session.cookie_header("", 0, self._secure(request)))
