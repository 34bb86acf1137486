"""Scale-out throughput, measured side by side in one run (issue 13; BENCHMARKS.md, "Scale").

1. Copies: COPIES concurrent cross-region copies of SIZE_MIB each (default 8 x 256 MiB), on
   the scale-out configuration (PostgreSQL 15 + SeaweedFS on loopback, one API process,
   copies in 1, 2 and 4 `snapferry worker` processes) and on the embedded one (SQLite + files,
   the copy threads of `snapferry serve`). Each worker configuration copies the same sources
   to a region of its own, so every copy is a full one.
2. Requests: DescribeSnapshots per second with 1 and 2 API processes (`serve --processes`),
   from CLIENTS client processes.

    python -m bench.scale [--size-mib 256] [--copies 8] [--clients 4] [--seconds 8]
                          [--workers 1,2,4] [--no-embedded] [--no-requests]

Each scale-out row also gives the worker processes' CPU time (user + system, from /proc)
per MiB copied, counted from when they are ready to when the last copy completed: the cost
the 2-core machine's ceiling divides; and where the machine's cores went in that time (cores
busy, split into the workers, SeaweedFS, the API process, PostgreSQL, this benchmark's
client and the rest), which says whether more worker processes
could have had a core to run on.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from multiprocessing import Pool
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from bench.cpu import machine_busy_seconds, process_seconds
from snapferry.localengines import LocalPostgres, LocalSeaweed
from snapferry.testing import ServerProcess

SRC = "us-east-1"
DESTINATIONS = {1: "eu-west-1", 2: "eu-west-2", 4: "eu-west-3"}
EMBEDDED_DEST = "eu-west-1"
BLOCK = 512 * 1024
CONFIG = Config(retries={"max_attempts": 10, "mode": "standard"}, max_pool_connections=32,
                read_timeout=120)


def client(service: str, url: str, region: str = SRC) -> Any:
    return boto3.client(service, region_name=region, endpoint_url=url,
                        aws_access_key_id="test", aws_secret_access_key="test", config=CONFIG)


def upload_sources(url: str, copies: int, size_mib: int) -> list[str]:
    """COPIES completed snapshots of random data through EBS direct."""
    import base64
    import hashlib

    ebs = client("ebs", url)
    blocks = size_mib * 2**20 // BLOCK
    ids = []
    for _ in range(copies):
        snapshot = ebs.start_snapshot(VolumeSize=max(1, size_mib // 1024 + 1))["SnapshotId"]
        digests = []

        def put(index: int, snapshot: str = snapshot) -> bytes:
            data = os.urandom(BLOCK)
            digest = hashlib.sha256(data).digest()
            ebs.put_snapshot_block(SnapshotId=snapshot, BlockIndex=index, BlockData=data,
                                   DataLength=BLOCK, ChecksumAlgorithm="SHA256",
                                   Checksum=base64.b64encode(digest).decode())
            return digest

        with ThreadPoolExecutor(8) as pool:
            digests = list(pool.map(put, range(blocks)))
        aggregate = base64.b64encode(hashlib.sha256(b"".join(digests)).digest()).decode()
        ebs.complete_snapshot(SnapshotId=snapshot, ChangedBlocksCount=blocks,
                              Checksum=aggregate, ChecksumAlgorithm="SHA256",
                              ChecksumAggregationMethod="LINEAR")
        ids.append(snapshot)
    return ids


def copy_all(url: str, sources: list[str], dest: str) -> float:
    """Seconds from the first CopySnapshot to the last copy completed."""
    ec2 = client("ec2", url, dest)
    started = time.monotonic()
    copies = [ec2.copy_snapshot(SourceRegion=SRC, SourceSnapshotId=s)["SnapshotId"]
              for s in sources]
    while True:
        states = {s["State"] for s in ec2.describe_snapshots(SnapshotIds=copies)["Snapshots"]}
        if states == {"completed"}:
            return time.monotonic() - started
        if "error" in states:
            raise RuntimeError("a copy failed")
        time.sleep(0.2)


def start_workers(data_dir: Path, env: dict[str, str], count: int) -> list[subprocess.Popen]:
    workers = []
    for _ in range(count):
        process = subprocess.Popen(
            [sys.executable, "-m", "snapferry.cli", "worker", "--data-dir", str(data_dir)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env={**os.environ, **env})
        assert process.stdout is not None and process.stdout.readline().startswith(
            "snapferry worker")
        workers.append(process)
    return workers


def cpu_seconds(processes: list[subprocess.Popen]) -> float:
    """User + system CPU seconds the processes have used so far (Linux /proc)."""
    return sum(process_seconds(process.pid) for process in processes)


def postgres_seconds() -> dict[int, float]:
    """CPU seconds so far of every PostgreSQL process (the server and its backends), by pid:
    a backend started during a phase counts whole, one that ended during it is lost (the
    workers' pooled connections live through a phase)."""
    seconds = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if stat.read_text().split(" ", 2)[1] == "(postgres)":
                seconds[int(stat.parent.name)] = process_seconds(int(stat.parent.name))
        except (OSError, ValueError):
            continue  # ended meanwhile
    return seconds


def cpu_shares(parts: dict[str, list[subprocess.Popen]]) -> dict[str, dict[int, float]]:
    """CPU seconds so far of each named group of processes, of PostgreSQL, of this benchmark
    (its client) and of the whole machine: a phase's difference says where the cores went."""
    shares = {name: {process.pid: process_seconds(process.pid) for process in processes}
              for name, processes in parts.items()}
    shares["PostgreSQL"] = postgres_seconds()
    shares["client"] = {os.getpid(): process_seconds(os.getpid())}
    shares["machine"] = {0: machine_busy_seconds()}
    return shares


def cpu_used(before: dict[str, dict[int, float]],
             after: dict[str, dict[int, float]]) -> dict[str, float]:
    return {name: sum(value - before[name].get(pid, 0.0) for pid, value in after[name].items())
            for name in after}


def stop(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        process.send_signal(signal.SIGTERM)
    for process in processes:
        process.wait(60)


def _describe_for(args: tuple[str, float, list[str]]) -> int:
    url, seconds, ids = args
    ec2 = client("ec2", url)
    ec2.describe_snapshots(SnapshotIds=ids)  # warm: connection and model loaded
    calls, end = 0, time.monotonic() + seconds
    while time.monotonic() < end:
        ec2.describe_snapshots(SnapshotIds=ids)
        calls += 1
    return calls


def request_rate(url: str, ids: list[str], clients: int, seconds: float) -> float:
    with Pool(clients) as pool:
        return sum(pool.map(_describe_for, [(url, seconds, ids)] * clients)) / seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scale")
    parser.add_argument("--size-mib", type=int, default=256)
    parser.add_argument("--copies", type=int, default=8)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--workers", default="1,2,4",
                        help="worker process counts to run, comma-separated (of 1, 2, 4)")
    parser.add_argument("--no-embedded", action="store_true",
                        help="skip the embedded configuration's copies")
    parser.add_argument("--no-requests", action="store_true",
                        help="skip the DescribeSnapshots request rates")
    args = parser.parse_args(argv)
    counts = [int(n) for n in args.workers.split(",")]
    if not set(counts) <= set(DESTINATIONS):
        parser.error(f"--workers takes counts from {sorted(DESTINATIONS)}")
    total_mib = args.size_mib * args.copies
    root = Path(tempfile.mkdtemp(prefix="snapferry-bench-scale-"))
    postgres = LocalPostgres().start()  # its own directory: the postgres user must reach it
    weed = LocalSeaweed(root / "seaweedfs").start()
    rows: list[tuple[str, float]] = []
    rates: list[tuple[str, float]] = []
    cpu_rows: list[tuple[str, float]] = []  # workers' CPU ms per MiB copied
    try:
        env = {"SNAPFERRY_DATABASE_URL": postgres.create_database("bench"),
               "SNAPFERRY_BLOCK_STORE": f"s3://{weed.create_bucket('bench')}",
               "SNAPFERRY_S3_ENDPOINT_URL": weed.endpoint,
               "SNAPFERRY_S3_ACCESS_KEY_ID": "bench", "SNAPFERRY_S3_SECRET_ACCESS_KEY": "bench"}
        scale_dir = root / "scale-data"
        with ServerProcess(scale_dir, ["--copy-workers", "0"], env=env) as api:
            sources = upload_sources(api.url, args.copies, args.size_mib)
            for count in counts:
                workers = start_workers(scale_dir, env, count)
                parts = {"workers": workers, "SeaweedFS": [weed.process], "API": [api.process]}
                try:
                    before = cpu_shares(parts)
                    seconds = copy_all(api.url, sources, DESTINATIONS[count])
                    after = cpu_shares(parts)
                finally:
                    stop(workers)
                used = cpu_used(before, after)
                cpu = used["workers"]
                rows.append((f"scale-out, {count} worker process{'es' if count > 1 else ''}",
                             total_mib / seconds))
                cpu_rows.append((rows[-1][0], cpu * 1000 / total_mib))
                # Where the machine's cores went in this phase ("rest": anything else).
                named = [name for name in used if name != "machine"]
                rest = used["machine"] - sum(used[name] for name in named)
                breakdown = ", ".join(f"{name} {used[name] / seconds:.2f}"
                                      for name in named) + f", rest {rest / seconds:.2f}"
                print(f"{rows[-1][0]}: {seconds:.1f} s, {rows[-1][1]:.1f} MiB/s, workers' CPU "
                      f"{cpu:.1f} s = {cpu_rows[-1][1]:.1f} ms/MiB; cores busy "
                      f"{used['machine'] / seconds:.2f} of {os.cpu_count()} ({breakdown}); "
                      f"load {os.getloadavg()[0]:.2f}", flush=True)
        for processes in () if args.no_requests else (1, 2):
            with ServerProcess(scale_dir, ["--processes", str(processes), "--copy-workers",
                                           "0"], env=env) as api:
                rate = request_rate(api.url, sources[:1], args.clients, args.seconds)
            rates.append((f"{processes} API process{'es' if processes > 1 else ''}", rate))
            print(f"DescribeSnapshots, {rates[-1][0]}: {rate:.0f}/s", flush=True)
        if not args.no_embedded:
            with ServerProcess(root / "embedded-data") as embedded:
                sources = upload_sources(embedded.url, args.copies, args.size_mib)
                seconds = copy_all(embedded.url, sources, EMBEDDED_DEST)
            rows.append(("embedded (SQLite + files, 2 copy threads)", total_mib / seconds))
            print(f"{rows[-1][0]}: {seconds:.1f} s, {rows[-1][1]:.1f} MiB/s", flush=True)
    finally:
        weed.destroy()
        postgres.destroy()
    base = rows[0][1]
    cpu_of = dict(cpu_rows)
    print(f"\n## {args.copies} concurrent copies of {args.size_mib} MiB, cores: {os.cpu_count()}, "
          f"load average at the end {os.getloadavg()[0]:.2f}")
    print(f"| configuration | MiB/s | vs {rows[0][0]} | workers' CPU ms/MiB |\n"
          "|---|---:|---:|---:|")
    for name, rate in rows:
        cpu = f"{cpu_of[name]:.1f}" if name in cpu_of else "-"
        print(f"| {name} | {rate:.1f} | {rate / base:.2f}x | {cpu} |")
    if not rates:
        return 0
    print("\n| DescribeSnapshots | requests/s | vs 1 API process |\n|---|---:|---:|")
    for name, rate in rates:
        print(f"| {name} | {rate:.0f} | {rate / rates[0][1]:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
