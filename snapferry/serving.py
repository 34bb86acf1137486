"""How the ASGI app is put on a socket: uvicorn, with the limits a public port needs.

uvicorn closes idle keep-alive connections and can cap connections (answering 503 past
the cap), but sets no deadline on a request's headers: a client that sends half of them
holds its connection, and a slot of the cap, for ever. The protocol below closes a
connection whose request headers are not complete `header_timeout` seconds after it
started waiting for them. The body's deadline is the app's (server.App), which can still
answer in the request's protocol.
"""

from __future__ import annotations

import asyncio
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from snapferry.config import Settings


class HeaderDeadlineProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, with a deadline on every request's headers.

    One timer per connection, not one per request: each request only notes when it began
    waiting for headers (a timer armed and cancelled per request cost about 1% of a simple
    request's CPU). When the timer fires it closes the connection if the headers it waits
    for are late, or sets itself for the wait in progress, or lapses while none is."""

    header_timeout = 10.0  # set per server by `protocol_class`

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_deadline: asyncio.TimerHandle | None = None
        self._waiting_since: float | None = None  # loop time; None: not waiting for headers

    def _arm(self) -> None:
        if self._waiting_since is not None:
            return  # already waiting: the deadline counts from the first of the two
        self._waiting_since = self.loop.time()
        if self._header_deadline is None:
            self._header_deadline = self.loop.call_at(
                self._waiting_since + self.header_timeout, self._check)

    def _check(self) -> None:
        self._header_deadline = None
        if self._waiting_since is None:
            return  # no headers awaited: the next request arms it again
        due = self._waiting_since + self.header_timeout
        if self.loop.time() < due:  # a later request's wait: its own deadline
            self._header_deadline = self.loop.call_at(due, self._check)
        elif not self.transport.is_closing():
            self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()  # the first request's headers: counted from the connection

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm()  # a later request on a kept-alive connection: from its first byte

    def on_headers_complete(self) -> None:
        self._waiting_since = None
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._waiting_since = None
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None
        super().connection_lost(exc)


def protocol_class(header_timeout: float) -> type[HeaderDeadlineProtocol]:
    return type("HeaderDeadlineProtocol", (HeaderDeadlineProtocol,),
                {"header_timeout": header_timeout})


def uvicorn_config(app: Any, settings: Settings) -> uvicorn.Config:
    limits = settings.connections
    return uvicorn.Config(
        app,
        loop="uvloop",
        http=protocol_class(limits.header_timeout),
        access_log=False,
        server_header=False,
        log_level="warning",
        lifespan="on",
        timeout_graceful_shutdown=10,
        timeout_keep_alive=limits.keep_alive_timeout,  # type: ignore[arg-type]
        # Past this many open connections (or requests in progress), uvicorn answers 503,
        # which every SDK retries after a pause.
        limit_concurrency=limits.max_connections,
    )
