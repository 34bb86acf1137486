"""What upload and download share: boto3 clients with the user's own credentials, a
progress bar, and an optional bandwidth cap."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

BLOCK = 512 * 1024
GIB = 1024**3
ZERO_BLOCK = bytes(BLOCK)
# Kept on the snapshot so that a download gives back the image's own length, not the
# volume's whole GiBs (user tags may not start with `aws:`; this one is ours).
IMAGE_BYTES_TAG = "snapferry:image-bytes"


@dataclass(frozen=True)
class Target:
    """Where to talk to: the server's URL (else AWS_ENDPOINT_URL / the profile's), the
    region (else the profile's) and a profile (else the environment's credentials)."""

    endpoint_url: str | None = None
    region: str | None = None
    profile: str | None = None
    threads: int = 8

    def client(self, service: str) -> Any:
        import boto3
        from botocore.config import Config

        session = boto3.Session(profile_name=self.profile, region_name=self.region)
        # Standard retry mode retries throttles, 5xx and dropped connections with backoff.
        config = Config(retries={"mode": "standard", "max_attempts": 10},
                        max_pool_connections=self.threads * 2)
        return session.client(service, endpoint_url=self.endpoint_url, config=config)


class RateLimit:
    """At most `per_second` bytes a second across every thread (None: no cap)."""

    def __init__(self, per_second: int | None) -> None:
        self.per_second = per_second
        self._lock = threading.Lock()
        self._next = time.monotonic()

    def take(self, size: int) -> None:
        if not self.per_second:
            return
        with self._lock:
            now = time.monotonic()
            start = max(self._next, now)
            self._next = start + size / self.per_second
        if start > now:
            time.sleep(start - now)


@contextmanager
def progress_bar(title: str, total: int, quiet: bool) -> Iterator[Any]:
    """A bar with bytes, rate and time left (on stderr); `advance(n)` moves it."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    with Progress("{task.description}", BarColumn(), DownloadColumn(binary_units=True),
                  TransferSpeedColumn(), TimeRemainingColumn(), disable=quiet,
                  console=Console(stderr=True),
                  transient=False) as progress:
        task = progress.add_task(title, total=total)
        lock = threading.Lock()

        def advance(size: int) -> None:
            with lock:
                progress.advance(task, size)

        yield advance
