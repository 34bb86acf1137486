"""Where snapferry's time goes on one DescribeAvailabilityZones, without the network.

    python -m bench.profile_dispatcher [CALLS] [--no-profile]

Times the same botocore-signed request at two depths, then profiles the inner one:
  handle  Dispatcher.handle: SigV4, routing, parsing, the handler, XML out
  app     App.__call__ on uvloop: the above plus ASGI glue and the hop to the thread pool
The gap between them is what the thread pool costs a request that needs no database; the
gap between `app` and the server CPU per request in bench.requests is uvicorn and the kernel.
"""

from __future__ import annotations

import cProfile
import pstats
import sys
import tempfile
import time
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

import uvloop
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from bench.load import CREDENTIALS, REGION
from snapferry.config import Settings
from snapferry.server import App, Dispatcher
from snapferry.storage.datadir import open_storage
from snapferry.wire.http import IncomingRequest

HOST = "127.0.0.1:4747"
BODY = b"Action=DescribeAvailabilityZones&Version=2016-11-15"
DEFAULT_CALLS = 3000
MAX_CALLS = 100_000


def signed_headers() -> dict[str, list[str]]:
    """The headers boto3 would send, signed by botocore now (valid for 15 minutes)."""
    request = AWSRequest(
        method="POST", url=f"http://{HOST}/", data=BODY,
        headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
    )
    SigV4Auth(Credentials(*CREDENTIALS), "ec2", REGION).add_auth(request)
    headers = {name.lower(): [str(value)] for name, value in request.headers.items()}
    headers["host"] = [HOST]
    headers["content-length"] = [str(len(BODY))]
    return headers


def fresh_request(headers: dict[str, list[str]]) -> IncomingRequest:
    # A new object each call: IncomingRequest caches parsed parts, and a real request
    # arrives with nothing cached.
    return IncomingRequest("POST", "/", "", headers, BODY)


def time_handle(dispatcher: Dispatcher, headers: dict[str, list[str]], calls: int
                ) -> tuple[float, float]:
    """(wall, CPU) seconds per call: on a shared machine the CPU figure (this process's, all
    threads) is the steadier one."""
    started, cpu_started = time.perf_counter(), time.process_time()
    for _ in range(calls):
        response = dispatcher.handle(fresh_request(headers))
    assert response.status == 200, response.body
    return ((time.perf_counter() - started) / calls,
            (time.process_time() - cpu_started) / calls)


async def _drive_app(app: App, headers: dict[str, list[str]], calls: int
                     ) -> tuple[float, float]:
    scope = {
        "type": "http", "method": "POST", "path": "/", "raw_path": b"/", "query_string": b"",
        "headers": [(name.encode(), value.encode()) for name, values in headers.items()
                    for value in values],
    }

    async def receive() -> MutableMapping[str, Any]:
        return {"type": "http.request", "body": BODY, "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.start":
            assert message["status"] == 200, message

    started, cpu_started = time.perf_counter(), time.process_time()
    for _ in range(calls):
        await app(scope, receive, send)
    return ((time.perf_counter() - started) / calls,
            (time.process_time() - cpu_started) / calls)


def time_app(dispatcher: Dispatcher, headers: dict[str, list[str]], calls: int
             ) -> tuple[float, float]:
    app = App(dispatcher, Settings(data_dir=Path()).max_body_bytes)
    try:
        return uvloop.run(_drive_app(app, headers, calls))
    finally:
        app.executor.shutdown(wait=True)


def profile_handle(dispatcher: Dispatcher, headers: dict[str, list[str]], calls: int) -> None:
    profile = cProfile.Profile()
    profile.enable()
    for _ in range(calls):
        dispatcher.handle(fresh_request(headers))
    profile.disable()
    stats = pstats.Stats(profile)
    stats.sort_stats("cumulative").print_stats(30)


def main(argv: list[str]) -> int:
    numbers = [arg for arg in argv if arg.isdigit()]
    calls = min(int(numbers[0]) if numbers else DEFAULT_CALLS, MAX_CALLS)
    with tempfile.TemporaryDirectory(prefix="snapferry-profile-") as tmp:
        settings = Settings(data_dir=Path(tmp))
        storage = open_storage(settings)
        try:
            dispatcher = Dispatcher(storage, settings)
            headers = signed_headers()
            time_handle(dispatcher, headers, 100)  # models loaded, key cached, code warm
            handle = time_handle(dispatcher, headers, calls)
            app = time_app(dispatcher, headers, calls)
            print(f"Dispatcher.handle  {handle[0] * 1e6:6.0f} µs per request, "
                  f"CPU {handle[1] * 1e6:6.0f} µs")
            print(f"App.__call__       {app[0] * 1e6:6.0f} µs per request, "
                  f"CPU {app[1] * 1e6:6.0f} µs "
                  f"(thread-pool hop and ASGI glue: {(app[1] - handle[1]) * 1e6:.0f} µs CPU)\n")
            if "--no-profile" not in argv:
                profile_handle(dispatcher, headers, calls)
        finally:
            storage.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
