"""How the ASGI app is put on a socket: uvicorn, with the limits a public port needs.

uvicorn closes idle keep-alive connections and can cap connections (answering 503 past
the cap), but sets no deadline on a request's headers: a client that sends half of them
holds its connection, and a slot of the cap, for ever. The protocol below closes a
connection whose request headers are not complete `header_timeout` seconds after it
started waiting for them. The body's deadline is the app's (server.App), which can still
answer in the request's protocol.

It also hands a request body to the app in pieces of up to BODY_PIECE_BYTES instead of
uvicorn's one message per socket read. uvicorn appends each read to a bytearray, pauses
reading past 64 KiB and wakes the app, which copies the bytearray to bytes and resumes
reading: a 512 KiB PutSnapshotBlock cost a wake of the app's task per socket read past the
first 64 KiB, and two extra copies of the body. Here the reads are kept as a list and joined
once, when the body is whole or a piece is full; the piece is a bytes object, which
uvicorn's receive() passes on without copying it again. Measured (BENCHMARKS.md "Blocks,
session 22", bench/spy_blocks.py): 3-8% less event-loop CPU per written block. Reading
pauses while a full piece waits for the app, so a connection still holds at most about two
pieces of body in memory.
"""

from __future__ import annotations

import asyncio
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from snapferry.config import Settings

# The most body the protocol holds before it hands it to the app and stops reading until the
# app takes it: the app's own limit for a body read into memory (Settings.max_body_bytes,
# 1 MiB) is read as one piece; larger S3 uploads, which the app spools to disk in 1 MiB
# writes, arrive in pieces of this size.
BODY_PIECE_BYTES = 1024 * 1024


class HeaderDeadlineProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, with a deadline on every request's headers and the body
    handed over in large pieces.

    One timer per connection, not one per request: each request only notes when it began
    waiting for headers (a timer armed and cancelled per request cost about 1% of a simple
    request's CPU). When the timer fires it closes the connection if the headers it waits
    for are late, or sets itself for the wait in progress, or lapses while none is."""

    header_timeout = 10.0  # set per server by `protocol_class`

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_deadline: asyncio.TimerHandle | None = None
        self._waiting_since: float | None = None  # loop time; None: not waiting for headers
        self._body: list[bytes] = []  # the current request's body read since the last piece
        self._body_size = 0

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
        self._body, self._body_size = [], 0

    def _ignores_body(self) -> bool:
        """uvicorn's own test in on_body: an upgrade, or a request already answered."""
        return ((self.parser.should_upgrade() and self._should_upgrade())
                or self.cycle.response_complete)

    def on_body(self, body: bytes) -> None:
        if self._ignores_body():
            return
        self._body.append(body)
        self._body_size += len(body)
        if self._body_size >= BODY_PIECE_BYTES:
            self._hand_over()
            self.flow.pause_reading()  # until the app takes it: receive() resumes reading

    def on_message_complete(self) -> None:
        if self._body and not self._ignores_body():
            self._hand_over()
        super().on_message_complete()  # marks the body complete and wakes the app

    def _hand_over(self) -> None:
        """Give the app the body read so far, as one bytes object, and wake it."""
        cycle = self.cycle
        piece = self._body[0] if len(self._body) == 1 else b"".join(self._body)
        self._body, self._body_size = [], 0
        # receive() sends bytes(cycle.body): the same object when it is bytes. A piece the
        # app has not taken yet (it takes each before reading resumes) is kept in front.
        cycle.body = bytes(cycle.body) + piece if cycle.body else piece  # type: ignore[assignment]
        cycle.message_event.set()

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
