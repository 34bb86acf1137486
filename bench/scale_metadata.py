"""Costs that do not grow with the store (issue 14; BENCHMARKS.md, "Metadata at scale").

One run, side by side, on one engine or both (SQLite in the data dir; PostgreSQL 15 through
snapferry.localengines):

1. Create rate through the API at 0, 10k, 50k and N (default 100,000) snapshots and images in
   the account and region: StartSnapshot + CompleteSnapshot (tagged, from THREADS client
   threads) and RegisterImage (tagged), each for CREATES calls. Between sizes the store is
   filled by DIRECT DATABASE SEEDING (bulk INSERTs of the same rows the API writes, tags
   included): the API alone would take hours at 100k on 2 cores. What is timed is only ever
   the API.
2. At 1k, 10k and N: the first, middle and last pages (MaxResults=PAGE) of DescribeSnapshots
   and DescribeImages, without a filter, with a rare tag (on 1 resource in 10,000) and a
   common one (on 1 in 2); DescribeTags with 1, 50 and 200 resource ids. Median of REPEAT.
3. At N: the unpaged DescribeSnapshots (every snapshot in one call): its time and the server's
   peak RSS (VmHWM of a server started fresh for the call).
4. Writers: the create rate from 1, 2 and 8 threads at the start (empty store).
5. moto (pinned in the bench extra) at 1k snapshots, for reference: the same paged calls.

    python -m bench.scale_metadata [--count 100000] [--engines sqlite,postgresql] [--no-moto]
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from sqlalchemy import func, insert, select

from snapferry.domain import ids
from snapferry.storage.metadata import (
    image_block_devices,
    images,
    open_engine,
    snapshots,
    sqlite_url,
    tags,
)
from snapferry.testing import ServerProcess

REGION = "us-east-1"
ACCOUNT = "000000000000"  # the development account the key "test" belongs to
CONFIG = Config(retries={"max_attempts": 10, "mode": "standard"}, max_pool_connections=32,
                read_timeout=600)
RARE_EVERY = 10_000
SEED_BATCH = 5_000


def client(url: str, service: str = "ec2") -> Any:
    return boto3.client(service, region_name=REGION, endpoint_url=url,
                        aws_access_key_id="test", aws_secret_access_key="test", config=CONFIG)


def tags_for(n: int) -> dict[str, str]:
    """The tags of the n-th resource: a unique one, a common one, and now and then a rare one."""
    found = {"seq": str(n)}
    if n % 2 == 0:
        found["common"] = "yes"
    if n % RARE_EVERY == 7:
        found["rare"] = "yes"
    return found


# ---- direct seeding (never timed) ---------------------------------------------------------

class Seeder:
    """Bulk INSERTs of snapshots and images as the API writes them, with their tags."""

    def __init__(self, url: str) -> None:
        self.engine = open_engine(url)
        self.snapshots = 0
        self.images = 0
        self.base_snapshot = ""  # a completed snapshot the seeded images map

    def fill(self, total_snapshots: int, total_images: int) -> None:
        now = dt.datetime.now(dt.UTC)
        while self.snapshots < total_snapshots:
            batch = min(SEED_BATCH, total_snapshots - self.snapshots)
            rows, tag_rows = [], []
            for n in range(self.snapshots, self.snapshots + batch):
                sid = ids.new_id("snap")
                rows.append({"snapshot_id": sid, "account_id": ACCOUNT, "region": REGION,
                             "volume_id": "vol-ffffffff", "volume_size": 1,
                             "state": "completed", "progress": 100, "start_time": now,
                             "completion_time": now, "description": f"seeded {n}",
                             "encrypted": False, "lineage_id": uuid.uuid4().hex,
                             "origin": "ebs-direct", "full_size_bytes": 0,
                             "client_token": uuid.uuid4().hex})
                tag_rows += [{"resource_id": sid, "key": k, "value": v, "account_id": ACCOUNT,
                              "region": REGION, "resource_type": "snapshot"}
                             for k, v in tags_for(n).items()]
            with self.engine.begin() as conn:
                conn.execute(insert(snapshots), rows)
                conn.execute(insert(tags), tag_rows)
            self.snapshots += batch
        while self.images < total_images:
            batch = min(SEED_BATCH, total_images - self.images)
            rows, devices, tag_rows = [], [], []
            for n in range(self.images, self.images + batch):
                iid = ids.new_id("ami")
                rows.append({"image_id": iid, "account_id": ACCOUNT, "region": REGION,
                             "name": f"seeded-{n}-{iid}", "state": "available",
                             "creation_date": now, "image_location": f"{ACCOUNT}/seeded-{n}",
                             "image_type": "machine", "architecture": "x86_64",
                             "virtualization_type": "hvm", "root_device_name": "/dev/xvda",
                             "root_device_type": "ebs", "deregistration_protection":
                             "disabled", "client_token": uuid.uuid4().hex})
                devices.append({"image_id": iid, "position": 0, "device_name": "/dev/xvda",
                                "snapshot_id": self.base_snapshot, "volume_size": 1,
                                "volume_type": "gp3", "delete_on_termination": True,
                                "encrypted": False, "no_device": False})
                tag_rows += [{"resource_id": iid, "key": k, "value": v, "account_id": ACCOUNT,
                              "region": REGION, "resource_type": "image"}
                             for k, v in tags_for(n).items()]
            with self.engine.begin() as conn:
                conn.execute(insert(images), rows)
                conn.execute(insert(image_block_devices), devices)
                conn.execute(insert(tags), tag_rows)
            self.images += batch

    def analyze(self) -> None:
        """What autovacuum would do after a bulk load; SQLite: its statistics too. On
        PostgreSQL also VACUUM (the visibility map and hint bits a bulk insert leaves unset,
        which the first timed reads would otherwise write) and a CHECKPOINT, so the timed
        calls do not share the disk with the seeding's deferred work."""
        if self.engine.dialect.name == "postgresql":
            with self.engine.connect().execution_options(
                    isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql("VACUUM ANALYZE")
                conn.exec_driver_sql("CHECKPOINT")
            return
        with self.engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")


# ---- through the API (timed) ---------------------------------------------------------------

def _tag_list(n: int) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in tags_for(n).items()]


def create_snapshots(url: str, first: int, count: int, threads: int) -> float:
    """StartSnapshot + CompleteSnapshot `count` times from `threads` threads: per second."""
    ebs = client(url, "ebs")

    def one(n: int) -> None:
        sid = ebs.start_snapshot(VolumeSize=1, Tags=_tag_list(n))["SnapshotId"]
        ebs.complete_snapshot(SnapshotId=sid, ChangedBlocksCount=0)

    with ThreadPoolExecutor(threads) as pool:
        started = time.perf_counter()
        list(pool.map(one, range(first, first + count)))
        return count / (time.perf_counter() - started)


def register_images(url: str, first: int, count: int, threads: int, snapshot_id: str
                    ) -> float:
    ec2 = client(url)

    def one(n: int) -> None:
        ec2.register_image(
            Name=f"bench-{n}-{uuid.uuid4().hex[:8]}", RootDeviceName="/dev/xvda",
            Architecture="x86_64", VirtualizationType="hvm",
            BlockDeviceMappings=[{"DeviceName": "/dev/xvda",
                                  "Ebs": {"SnapshotId": snapshot_id, "VolumeSize": 1}}],
            TagSpecifications=[{"ResourceType": "image", "Tags": _tag_list(n)}])

    with ThreadPoolExecutor(threads) as pool:
        started = time.perf_counter()
        list(pool.map(one, range(first, first + count)))
        return count / (time.perf_counter() - started)


def median_ms(call: Callable[[], Any], repeat: int, warm: bool = True) -> float:
    if warm:
        call()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def token(last_id: str) -> str:
    return base64.urlsafe_b64encode(last_id.encode()).decode()


def paged_calls(url: str, page: int, repeat: int, seeder_ids: Callable[[str], list[str]]
                ) -> dict[str, float]:
    """name -> median ms of each paged call at the store's current size."""
    ec2 = client(url)
    out: dict[str, float] = {}
    filters = {"none": [], "rare tag": [{"Name": "tag:rare", "Values": ["yes"]}],
               "common tag": [{"Name": "tag:common", "Values": ["yes"]}]}
    for kind, call, prefix in (("DescribeSnapshots", ec2.describe_snapshots, "snap"),
                               ("DescribeImages", ec2.describe_images, "ami")):
        all_ids = seeder_ids(prefix)
        owner = {"OwnerIds": ["self"]} if prefix == "snap" else {"Owners": ["self"]}
        for where, index in (("first", None), ("middle", len(all_ids) // 2),
                             ("last", max(0, len(all_ids) - page - 1))):
            for name, flt in filters.items():
                extra = {"NextToken": token(all_ids[index])} if index else {}
                args = {**owner, "MaxResults": page, "Filters": flt, **extra}
                out[f"{kind} {where} page, {name}"] = median_ms(
                    lambda call=call, args=args: call(**args), repeat)
    snap_ids = seeder_ids("snap")
    for count in (1, 50, 200):
        chosen = snap_ids[:: max(1, len(snap_ids) // count)][:count]
        flt = [{"Name": "resource-id", "Values": chosen}]
        out[f"DescribeTags {count} ids"] = median_ms(
            lambda flt=flt: ec2.describe_tags(Filters=flt, MaxResults=1000), repeat)
    return out


def all_ids(url: str) -> Callable[[str], list[str]]:
    """Every id of a kind, sorted, read once through the database (not timed)."""
    engine = open_engine(url)
    cache: dict[str, list[str]] = {}

    def read(prefix: str) -> list[str]:
        if prefix not in cache:
            column = snapshots.c.snapshot_id if prefix == "snap" else images.c.image_id
            with engine.connect() as conn:
                cache[prefix] = list(conn.execute(select(column).order_by(column)).scalars())
        return cache[prefix]

    return read


def stored(url: str) -> tuple[int, int]:
    """(snapshots, images) in the store, counted after a size's creates (not timed)."""
    engine = open_engine(url)
    try:
        with engine.connect() as conn:
            return (conn.execute(select(func.count()).select_from(snapshots)).scalar_one(),
                    conn.execute(select(func.count()).select_from(images)).scalar_one())
    finally:
        engine.dispose()


def raw_seconds(url: str, action: str, params: dict[str, str]) -> tuple[float, int]:
    """One signed EC2 Query call read to its last byte without parsing it (the server's time
    and the transfer): seconds, and bytes of XML."""
    import urllib.parse
    import urllib.request

    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    body = urllib.parse.urlencode({"Action": action, "Version": "2016-11-15", **params})
    request = AWSRequest("POST", url + "/", data=body, headers={
        "Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
    SigV4Auth(Credentials("test", "test"), "ec2", REGION).add_auth(request)
    prepared = urllib.request.Request(url + "/", data=body.encode(), method="POST",
                                      headers=dict(request.headers.items()))
    started = time.perf_counter()
    with urllib.request.urlopen(prepared, timeout=3600) as response:
        size = 0
        while piece := response.read(1 << 20):
            size += len(piece)
    return time.perf_counter() - started, size


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM")


# ---- one engine ----------------------------------------------------------------------------

@contextmanager
def engine_setup(name: str, root: Path) -> Iterator[tuple[Path, str, dict[str, str]]]:
    data_dir = root / f"{name}-data"
    if name == "sqlite":
        data_dir.mkdir(mode=0o700)
        yield data_dir, sqlite_url(data_dir), {}
        return
    from snapferry.localengines import LocalPostgres, LocalSeaweed

    postgres = LocalPostgres().start()
    weed = LocalSeaweed(root / "seaweedfs").start()
    try:
        url = postgres.create_database("bench")
        yield data_dir, url, {
            "SNAPFERRY_DATABASE_URL": url,
            "SNAPFERRY_BLOCK_STORE": f"s3://{weed.create_bucket('bench')}",
            "SNAPFERRY_S3_ENDPOINT_URL": weed.endpoint,
            "SNAPFERRY_S3_ACCESS_KEY_ID": "bench", "SNAPFERRY_S3_SECRET_ACCESS_KEY": "bench"}
    finally:
        weed.destroy()
        postgres.destroy()


def run_engine(name: str, root: Path, args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {"rates": {}, "images": {}, "paged": {}, "writers": {},
                               "actual": {}}
    sizes = sorted(size for size in {0, 1_000, 10_000, 50_000, args.count} if size <= args.count)
    with engine_setup(name, root) as (data_dir, url, env):
        with ServerProcess(data_dir, ["--copy-workers", "0"], env=env) as server:
            ebs = client(server.url, "ebs")
            base = ebs.start_snapshot(VolumeSize=1)["SnapshotId"]
            ebs.complete_snapshot(SnapshotId=base, ChangedBlocksCount=0)
            for threads in (1, 2, 8):  # concurrent writers, on the empty store
                results["writers"][threads] = create_snapshots(server.url, 10**9 + threads *
                                                               10**6, args.creates, threads)
                print(f"{name}: {threads} writer threads: "
                      f"{results['writers'][threads]:.1f} snapshots/s", flush=True)
            seeder = Seeder(url)
            seeder.base_snapshot = base
            made = 0  # snapshots and images made through the API at the sizes measured
            for size in sizes:
                started = time.perf_counter()
                seeder.fill(max(0, size - made), max(0, size - made))
                seeder.analyze()
                seeded = time.perf_counter() - started
                if size in (0, 10_000, 50_000, args.count):
                    rate = create_snapshots(server.url, size, args.creates, args.threads)
                    image_rate = register_images(server.url, size, args.creates,
                                                 args.threads, base)
                    made += args.creates
                    results["rates"][size], results["images"][size] = rate, image_rate
                    results["actual"][size] = stored(url)
                    print(f"{name} at {size} {results['actual'][size]}: {rate:.1f} "
                          f"snapshots/s, {image_rate:.1f} "
                          f"images/s (seeded in {seeded:.0f} s)", flush=True)
                if size in (1_000, 10_000, args.count):
                    paged = paged_calls(server.url, args.page, args.repeat, all_ids(url))
                    results["paged"][size] = paged
                    print(f"{name} at {size}: " + ", ".join(
                        f"{k} {v:.1f} ms" for k, v in paged.items()), flush=True)
        # The unpaged call on a server started for it, so VmHWM is the call's peak: first
        # read raw (the server's time), then through boto3 (with the client's parsing).
        with ServerProcess(data_dir, ["--copy-workers", "0"], env=env) as server:
            assert server.process is not None
            before = peak_rss_mib(server.process.pid)
            raw, size = raw_seconds(server.url, "DescribeSnapshots", {"Owner.1": "self"})
            started = time.perf_counter()
            count = len(client(server.url).describe_snapshots(OwnerIds=["self"])["Snapshots"])
            seconds = time.perf_counter() - started
            peak = peak_rss_mib(server.process.pid)
        results["unpaged"] = (count, seconds, before, peak, raw, size)
        print(f"{name}: unpaged DescribeSnapshots, {count} snapshots: {raw:.1f} s read raw "
              f"({size / 2**20:.0f} MiB of XML), {seconds:.1f} s through boto3, peak RSS "
              f"{peak:.0f} MiB (idle {before:.0f} MiB)", flush=True)
    return results


def run_moto(root: Path, repeat: int, page: int) -> dict[str, float]:
    """moto's server at 1k snapshots: the same paged calls, for reference."""
    from bench.servers import moto

    with moto(root) as target:
        ec2 = client(target.url)
        volume = ec2.create_volume(Size=1, AvailabilityZone="us-east-1a")["VolumeId"]

        def one(n: int) -> None:
            ec2.create_snapshot(VolumeId=volume, TagSpecifications=[
                {"ResourceType": "snapshot", "Tags": _tag_list(n)}])

        with ThreadPoolExecutor(4) as pool:
            list(pool.map(one, range(1000)))
        snap_ids = sorted(s["SnapshotId"] for s in ec2.describe_snapshots(
            OwnerIds=["self"])["Snapshots"])
        out = {}
        for name, flt in (("none", []), ("rare tag", [{"Name": "tag:rare", "Values": ["yes"]}])):
            out[f"DescribeSnapshots first page, {name}"] = median_ms(
                lambda flt=flt: ec2.describe_snapshots(OwnerIds=["self"], MaxResults=page,
                                                       Filters=flt), 1, warm=False)
        chosen = snap_ids[::20][:50]
        out["DescribeTags 50 ids"] = median_ms(lambda: ec2.describe_tags(
            Filters=[{"Name": "resource-id", "Values": chosen}]), 1, warm=False)
        return out


def report(engine: str, results: dict[str, Any], args: argparse.Namespace) -> None:
    rates, image_rates = results["rates"], results["images"]
    print(f"\n## {engine}: create rate through the API ({args.creates} calls from "
          f"{args.threads} threads; the store filled by direct seeding between sizes)")
    print("| size | snapshots, images in the store after | StartSnapshot+CompleteSnapshot/s "
          "| vs 0 | RegisterImage/s | vs 0 |\n|---:|---:|---:|---:|---:|---:|")
    for size in rates:
        held = results["actual"][size]
        print(f"| {size:,} | {held[0]:,}, {held[1]:,} | {rates[size]:.1f} | "
              f"{rates[size] / rates[0]:.2f}x | "
              f"{image_rates[size]:.1f} | {image_rates[size] / image_rates[0]:.2f}x |")
    writers = results["writers"]
    print("\n| writer threads (empty store) | snapshots/s | vs 1 |\n|---:|---:|---:|")
    for threads, rate in writers.items():
        print(f"| {threads} | {rate:.1f} | {rate / writers[1]:.2f}x |")
    paged = results["paged"]
    sizes = list(paged)
    print(f"\n| call (MaxResults={args.page}; median of {args.repeat}), ms | "
          + " | ".join(f"{s:,}" for s in sizes) + f" | {sizes[-1]:,} vs {sizes[0]:,} |")
    print("|---|" + "---:|" * (len(sizes) + 1))
    for name in paged[sizes[0]]:
        values = [paged[s][name] for s in sizes]
        print(f"| {name} | " + " | ".join(f"{v:.1f}" for v in values)
              + f" | {values[-1] / values[0]:.2f}x |")
    count, seconds, idle, peak, raw, size = results["unpaged"]
    print(f"\nUnpaged DescribeSnapshots of {count:,} snapshots: {raw:.1f} s read raw "
          f"({size / 2**20:.0f} MiB of XML), {seconds:.1f} s through boto3 (parsing included);"
          f" server peak RSS over both calls {peak:.0f} MiB (idle before: {idle:.0f} MiB)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scale_metadata")
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--creates", type=int, default=200, help="API calls timed per size")
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--page", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--engines", default="sqlite,postgresql")
    parser.add_argument("--no-moto", action="store_true")
    args = parser.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="snapferry-bench-meta-"))
    print(f"cores: {os.cpu_count()}; N={args.count:,}; direct seeding between sizes, API "
          "create rate timed at each size", flush=True)
    results = {engine: run_engine(engine, root, args) for engine in args.engines.split(",")}
    moto = None if args.no_moto else run_moto(root, args.repeat, args.page)
    for engine, found in results.items():
        report(engine, found, args)
    if moto is not None:
        print(f"\n## moto {version('moto')} at 1,000 snapshots (ms, one call each: seconds a "
              "call)")
        for name, ms in moto.items():
            print(f"| {name} | {ms:.1f} |")
    else:
        print("\nmoto: skipped (--no-moto)")
    return 0


def version(package: str) -> str:
    from importlib.metadata import version as installed

    return installed(package)


if __name__ == "__main__":
    sys.exit(main())
