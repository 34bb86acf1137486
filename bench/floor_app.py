"""The floor: snapferry's server stack answering every request with fixed bytes.

It runs on exactly the uvicorn configuration `snapferry serve` uses (uvloop, httptools, no
access log, one process), reads the request body as any real app must, and sends a response
captured from snapferry, so boto3 parses the very same bytes. Whatever snapferry costs above
this is snapferry's own work; this is as fast as anything on this stack can be.

    python -m bench.floor_app RESPONSE.json

RESPONSE.json holds {"status": int, "headers": [[name, value], ...], "body": str}. The app
prints `floor listening on http://127.0.0.1:PORT` once it has bound a free loopback port.
"""

from __future__ import annotations

import json
import socket
import sys
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

import uvicorn

READY_PREFIX = "floor listening on "

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class FixedResponse:
    """An ASGI app with one answer, prepared once so a request costs only the stack."""

    def __init__(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.body = body
        self.start: Message = {
            "type": "http.response.start",
            "status": status,
            "headers": [
                *((name.encode("latin-1"), value.encode("latin-1")) for name, value in headers),
                (b"content-length", str(len(body)).encode()),
            ],
        }

    async def __call__(self, scope: Message, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        # Drain the body: snapferry must read it to verify the signature, so must the floor.
        while True:
            message = await receive()
            if message["type"] == "http.disconnect" or not message.get("more_body"):
                break
        await send(self.start)
        await send({"type": "http.response.body", "body": self.body})


def load(path: Path) -> FixedResponse:
    spec = json.loads(path.read_text())
    # uvicorn adds its own date header and we compute content-length: keep neither twice.
    headers = [
        (name, value) for name, value in spec["headers"]
        if name.lower() not in {"date", "content-length"}
    ]
    return FixedResponse(spec["status"], headers, spec["body"].encode())


def main(argv: list[str]) -> int:
    app = load(Path(argv[0]))
    # Bind port 0 ourselves and print the real URL, as `snapferry serve` does: no guessing.
    sock = socket.socket(socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    host, port = sock.getsockname()[:2]
    print(f"{READY_PREFIX}http://{host}:{port}", flush=True)
    config = uvicorn.Config(
        app,
        loop="uvloop",
        http="httptools",
        access_log=False,
        server_header=False,
        log_level="warning",
        lifespan="off",
    )
    uvicorn.Server(config).run(sockets=[sock])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
