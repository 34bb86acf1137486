"""The client side: boto3 clients calling DescribeAvailabilityZones for a fixed window.

These functions run inside worker processes, one boto3 client per process and target, so
eight clients are eight interpreters and the client side is not bound by one GIL.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from multiprocessing.synchronize import Barrier
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

REGION = "us-east-1"
CREDENTIALS = ("test", "test")
# One attempt: a retry would hide a failure and count one success for two requests.
CLIENT_CONFIG = Config(
    retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=5, read_timeout=10
)
# A bound on calls per window besides its duration; far above what one client can reach.
MAX_CALLS_PER_WINDOW = 1_000_000
BARRIER_TIMEOUT = 60.0

_barrier: Barrier | None = None
_clients: dict[str, Any] = {}


@dataclass(frozen=True)
class Sample:
    """What one client did in one window."""

    calls: int  # succeeded inside the window
    errors: int  # failed inside the window
    seconds: float
    served: int  # every request sent, warm-up and stragglers too: the server did them all
    cpu_seconds: float  # this client's CPU time over warm-up and window


def init_worker(barrier: Barrier | None) -> None:
    """Pool initializer: the barrier that lines up the windows of concurrent clients."""
    global _barrier
    _barrier = barrier


def ready() -> None:
    """Return once every worker has started: run on all of them before the first window, so
    no worker is still importing boto3 (seconds of CPU) while another one measures."""
    assert _barrier is not None, "init_worker was not given a barrier"
    _barrier.wait(BARRIER_TIMEOUT)


def make_client(url: str) -> Any:
    return boto3.client(
        "ec2",
        endpoint_url=url,
        region_name=REGION,
        aws_access_key_id=CREDENTIALS[0],
        aws_secret_access_key=CREDENTIALS[1],
        config=CLIENT_CONFIG,
    )


def _client(url: str) -> Any:
    """One client per target per process, kept across windows: building one costs far
    more than a call, and a real caller reuses its client and its connection."""
    client = _clients.get(url)
    if client is None:
        client = _clients[url] = make_client(url)
    return client


def _call(client: Any) -> bool:
    try:
        response = client.describe_availability_zones()
    except (BotoCoreError, ClientError):
        return False
    return bool(response.get("AvailabilityZones"))


def _run_for(client: Any, seconds: float) -> tuple[int, int, int]:
    """(successes, errors) of the calls that finished inside the next `seconds`, and the
    number of calls sent, the one that overran the deadline included."""
    deadline = time.perf_counter() + seconds
    calls = errors = sent = 0
    for _ in range(MAX_CALLS_PER_WINDOW):
        if time.perf_counter() >= deadline:
            break
        ok = _call(client)
        sent += 1
        # A call still running at the deadline belongs to no window: count only whole calls.
        if time.perf_counter() > deadline:
            break
        if ok:
            calls += 1
        else:
            errors += 1
    return calls, errors, sent


def window(url: str, seconds: float, warmup: float, synchronized: bool) -> Sample:
    """Warm up (client built, connection open, server caches hot), then measure.

    With `synchronized`, every client waits at the shared barrier after its warm-up, so
    all of them measure the same stretch of wall-clock time and their counts can be summed.
    """
    client = _client(url)
    cpu_before = time.process_time()
    _, _, warmup_sent = _run_for(client, warmup)
    if synchronized:
        assert _barrier is not None, "init_worker was not given a barrier"
        _barrier.wait(BARRIER_TIMEOUT)
    calls, errors, sent = _run_for(client, seconds)
    return Sample(calls, errors, seconds, warmup_sent + sent, time.process_time() - cpu_before)
