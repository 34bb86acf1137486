"""CopyImage measured side by side with CopySnapshot of the same snapshots and with the raw
cost of copying the same blocks on this disk.

    python -m bench.images

One run:
- a real `snapferry serve` with 3 copy workers; three 256 MiB snapshots (512 distinct random
  512 KiB blocks each) written in us-east-1 through the EBS direct APIs and registered as
  one image;
- rounds of, the first two in alternating order so neither always runs on a warmer cache:
  - image: CopyImage into eu-west-1, until DescribeImages says `available`;
  - snapshots: three CopySnapshot calls of the same snapshots into eu-west-1, issued at once,
    until DescribeSnapshots says every one is `completed`;
  - raw: the same 1536 payloads read from files and written anew with write + fsync + rename
    + directory fsync (`write_atomic`), 3 threads (one per snapshot);
  every earlier copy in eu-west-1 is removed first (outside the clock), so each copy is full.

A copy's engine time is its jobs' own: the last copy_jobs.finished_at minus the first
started_at of its three jobs. Beside it is the client's wall time from the first call until
the poll (every 20 ms) sees the end. The image copy is checked once by reading a sample of
its snapshots' blocks back through the EBS direct APIs.

Target (issue 10): the image copy within 1.1 x the three snapshot copies run concurrently.
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3

from bench.blocks import FOREIGN_CPU_LIMIT, QuietWaiter, describe_machine
from bench.blocks import markdown as markdown_table
from bench.copy import CLIENT_CONFIG, Clock, flag, iso, raw_copy, spread, write_sources
from bench.cpu import isolate_aws_config
from snapferry.testing import ServerProcess
from tests.integration.blocks import list_blocks, write_snapshot

BLOCK = 512 * 1024
SNAPSHOTS = 3
BLOCKS_EACH = 512  # 256 MiB
MIB = 2**20
SRC, DST = "us-east-1", "eu-west-1"
CREDENTIALS = ("test", "test")
WORKERS = 3
ROUNDS = 4
RAW_THREADS = 3
POLL_SECONDS = 0.02
COPY_TIMEOUT = 300.0
QUIET_WAIT_BUDGET = 60.0
VERIFY_SAMPLE = 32
TARGET = 1.1  # image copy <= 1.1 x the concurrent snapshot copies
IMAGE, SNAPSHOT_COPIES, RAW = "CopyImage", "3 x CopySnapshot, concurrent", "raw, 3 threads"


@dataclass(frozen=True)
class Run:
    engine_seconds: float  # last job finished - first job started
    wall_seconds: float  # first call -> end seen by the client
    bytes_moved: int
    server_cpu: float
    foreign_share: float


class Clients:
    def __init__(self, url: str) -> None:
        def client(service: str, region: str) -> Any:
            return boto3.session.Session().client(
                service, endpoint_url=url, region_name=region,
                aws_access_key_id=CREDENTIALS[0], aws_secret_access_key=CREDENTIALS[1],
                config=CLIENT_CONFIG)
        self.src_ebs, self.src_ec2 = client("ebs", SRC), client("ec2", SRC)
        self.dst_ec2, self.dst_ebs = client("ec2", DST), client("ebs", DST)


def jobs_record(data_dir: Path, snapshot_ids: list[str]) -> tuple[float, int]:
    """(engine seconds, bytes moved) of the copy jobs that made these snapshots."""
    uri = f"file:{data_dir / 'metadata.sqlite3'}?mode=ro"
    marks = ",".join("?" * len(snapshot_ids))
    with sqlite3.connect(uri, uri=True, timeout=10) as db:
        rows = db.execute(f"SELECT started_at, finished_at, bytes_moved, state, mode FROM "
                          f"copy_jobs WHERE snapshot_id IN ({marks})", snapshot_ids).fetchall()
    if len(rows) != len(snapshot_ids) or any(r[3] != "completed" or r[4] != "full"
                                             for r in rows):
        raise RuntimeError(f"not every copy job completed as a full copy: {rows}")
    started = min(iso(r[0]) for r in rows)
    finished = max(iso(r[1]) for r in rows)
    return (finished - started).total_seconds(), sum(r[2] for r in rows)


def poll(done: Any) -> None:
    deadline = time.monotonic() + COPY_TIMEOUT
    while not done():
        if time.monotonic() > deadline:
            raise TimeoutError(f"no end after {COPY_TIMEOUT:.0f} s")
        time.sleep(POLL_SECONDS)


class Bench:
    def __init__(self, server: ServerProcess, workdir: Path) -> None:
        assert server.process is not None
        self.server_pid = server.process.pid
        self.data_dir = server.data_dir
        self.workdir = workdir
        self.clients = Clients(server.url)
        self.quiet = QuietWaiter(QUIET_WAIT_BUDGET)
        self.results: dict[str, list[Run]] = {IMAGE: [], SNAPSHOT_COPIES: [], RAW: []}
        self.snapshot_ids: list[str] = []
        self.image_id = ""
        self.digests: list[dict[int, bytes]] = []
        self.sources: list[Path] = []
        self.names: list[str] = []
        self.made_images: list[str] = []
        self.made_snapshots: list[str] = []
        self.verified = False

    def setup(self) -> None:
        started = time.perf_counter()
        all_blocks: dict[int, bytes] = {}
        for number in range(SNAPSHOTS):
            blocks = {index: os.urandom(BLOCK) for index in range(BLOCKS_EACH)}
            self.digests.append({i: hashlib.sha256(d).digest() for i, d in blocks.items()})
            self.snapshot_ids.append(write_snapshot(self.clients.src_ebs, blocks, size_gib=1))
            all_blocks.update({number * BLOCKS_EACH + i: d for i, d in blocks.items()})
        devices = ["/dev/xvda", "/dev/sdf", "/dev/sdg"]
        self.image_id = self.clients.src_ec2.register_image(
            Name="bench-image", RootDeviceName=devices[0], VirtualizationType="hvm",
            BlockDeviceMappings=[{"DeviceName": device, "Ebs": {"SnapshotId": snapshot}}
                                 for device, snapshot in zip(devices, self.snapshot_ids,
                                                             strict=True)])["ImageId"]
        print(f"image {self.image_id}: {SNAPSHOTS} snapshots x {BLOCKS_EACH * BLOCK // MIB} MiB "
              f"written in {SRC} in {time.perf_counter() - started:.1f} s", flush=True)
        self.sources = write_sources(all_blocks, self.workdir / "raw-source")
        self.names = [hashlib.sha256(d).hexdigest() for d in all_blocks.values()]

    def forget(self) -> None:
        """Remove every earlier copy in the destination, so the next one is full."""
        ec2 = self.clients.dst_ec2
        for image_id in self.made_images:
            ec2.deregister_image(ImageId=image_id, DeleteAssociatedSnapshots=True)
        for snapshot_id in self.made_snapshots:
            ec2.delete_snapshot(SnapshotId=snapshot_id)
        self.made_images.clear()
        self.made_snapshots.clear()

    def image_copy(self, number: int) -> None:
        self.forget()
        self.quiet.wait()
        os.sync()
        ec2 = self.clients.dst_ec2
        clock = Clock(self.server_pid)
        image_id = ec2.copy_image(SourceRegion=SRC, SourceImageId=self.image_id,
                                  Name=f"bench-copy-{number}")["ImageId"]
        found: dict[str, Any] = {}

        def available() -> bool:
            found.update(ec2.describe_images(ImageIds=[image_id])["Images"][0])
            if found["State"] not in ("pending", "available"):
                raise RuntimeError(f"{image_id} is {found['State']}: {found.get('StateReason')}")
            return found["State"] == "available"

        poll(available)
        wall, server, _, foreign = clock.stop()
        self.made_images.append(image_id)
        copies = [m["Ebs"]["SnapshotId"] for m in found["BlockDeviceMappings"]]
        engine, moved = jobs_record(self.data_dir, copies)
        self.record(IMAGE, number, Run(engine, wall, moved, server, foreign))
        if not self.verified:
            self.verify(copies)

    def snapshot_copies(self, number: int) -> None:
        self.forget()
        self.quiet.wait()
        os.sync()
        ec2 = self.clients.dst_ec2
        clock = Clock(self.server_pid)
        copies = [ec2.copy_snapshot(SourceRegion=SRC, SourceSnapshotId=snapshot_id)[
            "SnapshotId"] for snapshot_id in self.snapshot_ids]

        def completed() -> bool:
            states = [s["State"] for s in ec2.describe_snapshots(SnapshotIds=copies)[
                "Snapshots"]]
            if any(state == "error" for state in states):
                raise RuntimeError(f"a snapshot copy failed: {states}")
            return all(state == "completed" for state in states)

        poll(completed)
        wall, server, _, foreign = clock.stop()
        self.made_snapshots.extend(copies)
        engine, moved = jobs_record(self.data_dir, copies)
        self.record(SNAPSHOT_COPIES, number, Run(engine, wall, moved, server, foreign))

    def raw(self, number: int) -> None:
        self.quiet.wait()
        run = raw_copy(self.sources, self.names, self.workdir / f"raw-copy-{number}",
                       RAW_THREADS, self.server_pid)
        self.record(RAW, number, Run(run.seconds, run.seconds, len(self.names) * BLOCK,
                                     run.cpu, run.foreign_share))

    def record(self, label: str, number: int, run: Run) -> None:
        self.results[label].append(run)
        print(f"  round {number + 1}  {label:<30} engine {run.engine_seconds:6.3f} s, client "
              f"{run.wall_seconds:6.3f} s, {run.bytes_moved / MIB:6.0f} MiB, CPU "
              f"{run.server_cpu:5.2f} s{flag(run.foreign_share)}", flush=True)

    def verify(self, copies: list[str]) -> None:
        rng = random.Random(2026)
        ebs = self.clients.dst_ebs

        def check(item: tuple[str, dict[int, bytes], int, str]) -> None:
            snapshot_id, expected, index, token = item
            data = ebs.get_snapshot_block(SnapshotId=snapshot_id, BlockIndex=index,
                                          BlockToken=token)["BlockData"].read()
            if hashlib.sha256(data).digest() != expected[index]:
                raise AssertionError(f"block {index} of {snapshot_id} differs from its source")

        work = []
        for snapshot_id, expected in zip(copies, self.digests, strict=True):
            tokens = list_blocks(ebs, snapshot_id, page=10000)
            if len(tokens) != BLOCKS_EACH:
                raise AssertionError(f"{snapshot_id} lists {len(tokens)} blocks")
            work += [(snapshot_id, expected, i, tokens[i])
                     for i in rng.sample(range(BLOCKS_EACH), VERIFY_SAMPLE)]
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(check, work))
        self.verified = True
        print(f"  verified the image copy: {len(work)} blocks read back in {DST} match",
              flush=True)

    def run(self) -> dict[str, list[Run]]:
        self.setup()
        for number in range(ROUNDS):
            if number % 2 == 0:
                self.image_copy(number)
                self.snapshot_copies(number)
            else:
                self.snapshot_copies(number)
                self.image_copy(number)
            self.raw(number)
        self.forget()
        return self.results


def report(results: dict[str, list[Run]]) -> str:
    median = {label: statistics.median(r.engine_seconds for r in runs)
              for label, runs in results.items()}
    wall = {label: statistics.median(r.wall_seconds for r in runs)
            for label, runs in results.items()}
    rows = [[label, str(len(runs)), spread([r.engine_seconds for r in runs], 3),
             spread([r.wall_seconds for r in runs], 3),
             f"{statistics.median(r.bytes_moved for r in runs) / MIB:.0f}",
             f"{statistics.median(r.server_cpu for r in runs):.2f}",
             f"{median[label] / median[RAW]:.3f}"]
            for label, runs in results.items()]
    table = markdown_table(["copy", "runs", "engine s, median (min-max)",
                            "client wall s", "MiB moved", "CPU s (server; raw: this process)",
                            "ratio to raw"], rows)
    # Pair by pair: each round's image copy against that round's snapshot copies.
    pairs = [i.engine_seconds / s.engine_seconds for i, s in
             zip(results[IMAGE], results[SNAPSHOT_COPIES], strict=True)]
    wall_pairs = [i.wall_seconds / s.wall_seconds for i, s in
                  zip(results[IMAGE], results[SNAPSHOT_COPIES], strict=True)]
    value = statistics.median(pairs)
    verdict = markdown_table(["target", "measured, median of pairs (min-max)", "verdict"], [
        [f"CopyImage engine <= {TARGET} x 3 concurrent CopySnapshots", spread(pairs, 3),
         "met" if value <= TARGET else "NOT met"],
        ["the same, client wall time", spread(wall_pairs, 3),
         "met" if statistics.median(wall_pairs) <= TARGET else "NOT met"]])
    return f"{table}\n\n{verdict}\n\nmedian wall: image {wall[IMAGE]:.3f} s, snapshots " \
           f"{wall[SNAPSHOT_COPIES]:.3f} s"


def disturbed(results: dict[str, list[Run]]) -> str:
    shares = [r.foreign_share for runs in results.values() for r in runs]
    bad = [s for s in shares if s > FOREIGN_CPU_LIMIT]
    if not bad:
        return ""
    return (f"\nWARNING: other processes used over {FOREIGN_CPU_LIMIT:.0%} of the cores during "
            f"{len(bad)} of {len(shares)} timed phases (up to {max(bad):.0%}).")


def main() -> int:
    print(describe_machine().rsplit("\n", 1)[0], flush=True)
    print(f"{SNAPSHOTS} snapshots x {BLOCKS_EACH} blocks x 512 KiB; copies {SRC} -> {DST}; "
          f"{WORKERS} copy workers", flush=True)
    workdir = Path(tempfile.mkdtemp(prefix="snapferry-bench-images-"))
    try:
        isolate_aws_config(workdir)
        with ServerProcess(workdir / "data", ["--copy-workers", str(WORKERS)]) as server:
            results = Bench(server, workdir).run()
        print("\n" + report(results) + disturbed(results))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
