"""What operators watch, in Prometheus' text format (GET /_snapferry/metrics, and /metrics).

Request counts and latencies are this API process's own (a restart starts them at zero, as
Prometheus expects of a counter). Everything about copies, the queue and the block store is
read from the database at scrape time, so it is right whichever process (`snapferry serve`
or `snapferry worker`) moved the blocks. The store is never listed: its figures are the
`blocks` table's. `rate_text` is the copies listing's rate column.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from snapferry.domain.clock import Clock
from snapferry.domain.copies import QUEUED, RUNNING, CopyJob
from snapferry.storage.copies import LEASE_TAKEOVERS
from snapferry.storage.datadir import Storage
from snapferry.storage.faults import event_totals
from snapferry.storage.metadata import blocks, copy_jobs

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Request latencies: from a cached describe (ms) to a 512 KiB block put on a slow disk.
# Label sets whose children observe() keeps (an unknown Action is a label set too; past
# this many, labels() is asked each time, as before).
MAX_CACHED_LABELS = 4096
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class StoreCollector(Collector):
    """Copy, queue and block store figures, from the database at each scrape."""

    def __init__(self, storage: Storage, clock: Clock) -> None:
        self.storage = storage
        self.clock = clock

    def collect(self) -> Iterator[Metric]:
        c = copy_jobs.c
        with self.storage.engine.connect() as conn:
            by_kind = conn.execute(
                select(c.state, c.mode, func.count(), func.coalesce(func.sum(c.bytes_moved), 0))
                .group_by(c.state, c.mode)).all()
            running = conn.execute(select(c.bytes_moved, c.started_at)
                                   .where(c.state == RUNNING)).all()
            objects, stored = conn.execute(
                select(func.count(), func.coalesce(func.sum(blocks.c.size), 0))).one()
            events = event_totals(conn)
        copies = GaugeMetricFamily("snapferry_copies", "Snapshot copy jobs by state and mode.",
                                   labels=["state", "mode"])
        moved = CounterMetricFamily("snapferry_copy_bytes_moved",
                                    "Bytes written by snapshot copies, by mode.", labels=["mode"])
        per_mode: dict[str, int] = {}
        for state, mode, count, bytes_moved in by_kind:
            copies.add_metric([state, mode or "unplanned"], count)
            per_mode[mode or "unplanned"] = per_mode.get(mode or "unplanned", 0) + bytes_moved
        for mode, total in sorted(per_mode.items()):
            moved.add_metric([mode], total)
        yield copies
        yield moved
        now = self.clock.now()
        yield GaugeMetricFamily(
            "snapferry_copy_throughput_bytes_per_second",
            "Combined rate of the copies running now: each one's bytes moved over its time "
            "since it started.",
            value=sum(bytes_moved / max((now - started).total_seconds(), 1e-3)
                      for bytes_moved, started in running if started is not None))
        yield GaugeMetricFamily(
            "snapferry_copy_queue_depth", "Copies waiting for a worker (state queued).",
            value=sum(count for state, _, count, _ in by_kind if state == QUEUED))
        yield GaugeMetricFamily("snapferry_block_store_objects",
                                "Block objects in the block store (its database rows).",
                                value=objects)
        yield GaugeMetricFamily("snapferry_block_store_bytes",
                                "Bytes of block data in the block store (its database rows).",
                                value=stored)
        yield CounterMetricFamily(
            "snapferry_copy_lease_takeovers",
            "Copies a worker took over from another whose lease had expired.",
            value=events.get(LEASE_TAKEOVERS, 0))


class Metrics:
    """One registry per server: this process's request figures and the store's."""

    def __init__(self, storage: Storage, clock: Clock) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        # `serve --processes N` (snapferry/supervisor.py) sets PROMETHEUS_MULTIPROC_DIR: each
        # API process writes its figures there and a scrape, whichever process answers it,
        # sums them all.
        shared = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
        own = None if shared else self.registry
        self.requests = Counter(
            "snapferry_requests", "API requests answered by this server, by service, "
            "operation and HTTP status.", ["service", "operation", "status"],
            registry=own)
        self.latency = Histogram(
            "snapferry_request_duration_seconds", "Time to answer an API request in this "
            "server (body read to response ready), by service and operation.",
            ["service", "operation"], buckets=LATENCY_BUCKETS, registry=own)
        if shared:
            from prometheus_client import multiprocess

            multiprocess.MultiProcessCollector(self.registry)
        self.registry.register(StoreCollector(storage, clock))
        # The labelled children by (service, operation, status): labels() takes a lock and
        # builds a tuple per call, 4% of a simple request. A child, once made, is the same
        # object for the life of the metric, so keeping it changes nothing but the cost.
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def observe(self, service: str, operation: str, status: int, seconds: float) -> None:
        key = (service, operation, status)
        children = self._children.get(key)
        if children is None:
            children = (self.requests.labels(service, operation, str(status)),
                        self.latency.labels(service, operation))
            if len(self._children) < MAX_CACHED_LABELS:
                self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


def rate_text(job: CopyJob, now: dt.datetime) -> str:
    if job.started_at is None or not job.bytes_moved:
        return "-"
    seconds = ((job.finished_at or now) - job.started_at).total_seconds()
    return f"{job.bytes_moved / max(seconds, 1e-3) / 2**20:.1f} MiB/s"
