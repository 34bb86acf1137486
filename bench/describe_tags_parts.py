"""Where DescribeTags with 200 resource ids spends its time (issue 14: <= 30 ms), in-process.

    python -m bench.describe_tags_parts [--counts 10000,100000] [--engines sqlite,postgresql]
                                        [--repeat 30] [--profile]

The store is seeded directly (bench/scale_metadata.py's Seeder: tagged snapshots, as the API
writes them). For each engine and size, side by side, alternating call by call so load on a
shared machine hits both alike:

  handle   Dispatcher.handle on a botocore-signed request: SigV4, parsing, the handler, XML
  sql      the handler's statement alone, executed and fetched (on PostgreSQL, the ids as
           one array parameter, as the handler sends them)
  before   Dispatcher.handle with the handler and the XML writer as they were before session
           21 (every column of every tag as a Row read by attribute, a bound parameter per
           id; every string member through the generic writer), to compare against `handle`

Medians in ms; --profile prints a cProfile of `handle` at the largest size.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import os
import pstats
import statistics
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from unittest import mock

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from sqlalchemy import false, or_, select

from bench.scale_metadata import ACCOUNT, REGION, Seeder
from snapferry.config import Settings
from snapferry.server import Dispatcher
from snapferry.services.context import Output, RequestContext
from snapferry.services.ec2 import SERVICE
from snapferry.services.ec2.common import page_size
from snapferry.services.ec2.tags import TAG_FILTERS, describe_tags, tags_query
from snapferry.storage import filtering
from snapferry.storage.datadir import Storage, open_storage
from snapferry.storage.filtering import filter_clauses
from snapferry.storage.metadata import snapshots, sqlite_url, tags
from snapferry.wire.http import IncomingRequest
from snapferry.wire.query import QueryProtocol
from snapferry.wire.shapes import Shape

HOST = "127.0.0.1:4747"
IDS = 200


def describe_tags_before(ctx: RequestContext, params: dict[str, Any]) -> Output:
    """DescribeTags as it was at 5cbe42a, for the side-by-side figure: `select(tags)` (every
    column) and a Row per tag, fetched one by one and read by attribute."""
    limit = page_size(params)
    ctx.authorize()
    query = select(tags).where(tags.c.account_id == ctx.account_id,
                               tags.c.region == ctx.region)
    for clause in filter_clauses(params.get("Filters"), TAG_FILTERS, tags.c.resource_id):
        query = query.where(clause)
    query = query.order_by(tags.c.resource_id, tags.c.key)
    if limit is not None:
        query = query.limit(limit + 1)
    with ctx.storage.engine.connect() as conn:
        rows = list(conn.execute(query))
    output: Output = {"Tags": [
        {"ResourceId": r.resource_id, "ResourceType": r.resource_type, "Key": r.key,
         "Value": r.value} for r in rows[:limit]]}
    if limit is not None and len(rows) > limit:
        last = rows[limit - 1]
        output["NextToken"] = f"{last.resource_id}\n{last.key}"
    return output


def any_text_before(column: Any, values: list[str]) -> Any:
    """filtering._any_text as it was at 5cbe42a (a membership test per value)."""
    exact = [value for value in values if "*" not in value and "?" not in value]
    matches = [filtering.text_match(column, value) for value in values if value not in exact]
    if len(exact) == 1:
        matches.insert(0, column == exact[0])
    elif exact:
        matches.insert(0, column.in_(exact))
    return or_(*matches) if matches else false()


def write_members_before(self: QueryProtocol, out: list[str], shape: Shape,
                         value: dict[str, Any]) -> None:
    """QueryProtocol._write_members as it was at 5cbe42a."""
    for name, member, tag in self._output_members(shape):
        member_value = value.get(name)
        if member_value is not None:
            self._write(out, member, member_value, tag)


def body_for(resource_ids: list[str]) -> bytes:
    params = {"Action": "DescribeTags", "Version": "2016-11-15", "MaxResults": "1000",
              "Filter.1.Name": "resource-id"}
    params.update({f"Filter.1.Value.{n}": rid for n, rid in enumerate(resource_ids, 1)})
    return urllib.parse.urlencode(params).encode()


def signed(body: bytes) -> dict[str, list[str]]:
    request = AWSRequest(method="POST", url=f"http://{HOST}/", data=body, headers={
        "Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
    SigV4Auth(Credentials("test", "test"), "ec2", REGION).add_auth(request)
    headers = {name.lower(): [str(value)] for name, value in request.headers.items()}
    headers["host"] = [HOST]
    headers["content-length"] = [str(len(body))]
    return headers


@contextlib.contextmanager
def handler(name: str, function: Callable[..., Output]) -> Iterator[None]:
    saved = SERVICE.handlers[name]
    SERVICE.handlers[name] = function
    try:
        yield
    finally:
        SERVICE.handlers[name] = saved


@contextlib.contextmanager
def seeded(engine: str, root: Path, count: int) -> Iterator[tuple[Storage, list[str]]]:
    """A storage of `count` tagged snapshots on `engine`, and IDS ids spread over them."""
    data_dir = root / f"{engine}-{count}"
    env_url: str | None = None
    postgres = None
    if engine == "postgresql":
        from snapferry.localengines import LocalPostgres

        postgres = LocalPostgres().start()
        env_url = postgres.create_database("tags")
    try:
        storage = open_storage(Settings(data_dir=data_dir, database_url=env_url))
        seeder = Seeder(env_url or sqlite_url(data_dir))
        seeder.fill(count, 0)
        seeder.analyze()
        seeder.engine.dispose()
        with storage.engine.connect() as conn:
            every = list(conn.execute(select(snapshots.c.snapshot_id)
                                      .order_by(snapshots.c.snapshot_id)).scalars())
        try:
            yield storage, every[:: max(1, len(every) // IDS)][:IDS]
        finally:
            storage.close()
    finally:
        if postgres is not None:
            postgres.destroy()


def measure(storage: Storage, chosen: list[str], repeat: int) -> dict[str, float]:
    dispatcher = Dispatcher(storage, Settings(data_dir=storage.data_dir))
    body = body_for(chosen)
    headers = signed(body)
    query = tags_query(ACCOUNT, REGION, [{"Name": "resource-id", "Values": chosen}], None,
                       1000, ids_as_array=storage.engine.dialect.name == "postgresql")

    def handle() -> None:
        response = dispatcher.handle(IncomingRequest("POST", "/", "", headers, body))
        assert response.status == 200, response.body
        assert response.body.count(b"<resourceId>") >= len(chosen), response.body[:300]

    def sql() -> None:
        with storage.engine.connect() as conn:
            conn.execute(query).all()

    def before() -> None:
        with handler("DescribeTags", describe_tags_before), mock.patch.object(
                QueryProtocol, "_write_members", write_members_before), mock.patch.object(
                filtering, "_any_text", any_text_before):
            handle()

    parts: dict[str, Callable[[], None]] = {"handle": handle, "sql": sql, "before": before}
    times: dict[str, list[float]] = {name: [] for name in parts}
    for part in parts.values():
        part()  # warm: caches, compiled statements, the key
    for _ in range(repeat):
        for name, part in parts.items():
            started = time.perf_counter()
            part()
            times[name].append((time.perf_counter() - started) * 1000)
    return {name: statistics.median(values) for name, values in times.items()}


def profile(storage: Storage, chosen: list[str]) -> None:
    dispatcher = Dispatcher(storage, Settings(data_dir=storage.data_dir))
    body = body_for(chosen)
    headers = signed(body)
    found = cProfile.Profile()
    found.enable()
    for _ in range(20):
        dispatcher.handle(IncomingRequest("POST", "/", "", headers, body))
    found.disable()
    pstats.Stats(found).sort_stats("tottime").print_stats(20)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.describe_tags_parts")
    parser.add_argument("--counts", default="10000,100000")
    parser.add_argument("--engines", default="sqlite")
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args(argv)
    counts = [int(c) for c in args.counts.split(",")]
    assert describe_tags is SERVICE.handlers["DescribeTags"]
    print(f"cores: {os.cpu_count()}; load average at start: "
          f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}", flush=True)
    print("| engine | snapshots | handle (now), ms | before, ms | now vs before | SQL alone, "
          "ms | load |\n|---|---:|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory(prefix="snapferry-bench-tags-") as tmp:
        for engine in args.engines.split(","):
            for count in counts:
                with seeded(engine, Path(tmp), count) as (storage, chosen):
                    found = measure(storage, chosen, args.repeat)
                    print(f"| {engine} | {count:,} | {found['handle']:.1f} | "
                          f"{found['before']:.1f} | {found['handle'] / found['before']:.2f}x | "
                          f"{found['sql']:.1f} | {os.getloadavg()[0]:.1f} |", flush=True)
                    if args.profile and count == counts[-1]:
                        profile(storage, chosen)
    return 0


if __name__ == "__main__":
    sys.exit(main())
