"""CopySnapshot's engine, measured side by side with the raw cost of copying the same blocks
on this disk.

    python -m bench.copy [--rounds N] [--tree PATH]

`--rounds N` runs at most N rounds (default 3); `--tree PATH` serves from the snapferry
package of another source tree (a `git worktree` of an earlier commit) with this venv, so
one bench measures two trees: run it on each in turn, alternating.

One run:
- a real `snapferry serve`; a 1 GiB snapshot (2048 distinct random 512 KiB blocks) written in
  us-east-1 through the EBS direct APIs (boto3, 4 threads);
- rounds of, in this order (so that each copy is the kind it claims to be):
  - raw: the same 2048 payloads read from files and written to new ones with write + fsync +
    rename + directory fsync (`write_atomic`), 1 thread and 4 threads;
  - re-encrypting: CopySnapshot into eu-west-1 with Encrypted=True (the account's default EBS
    key there, alias/aws/ebs): always full, since it starts a new lineage. The source is
    unencrypted, so this copy encrypts every block and decrypts none;
  - full: the same copy unencrypted, with every earlier copy in eu-west-1 deleted first (a
    copy is full only when no earlier copy of its lineage is left in the destination);
  - incremental 1 %: a child of the source with 20 changed blocks, copied right after the
    full copy of its parent, so that it moves only those 20 blocks.

A copy's time is the engine's own: copy_jobs.finished_at - started_at, as the worker recorded
them in metadata.sqlite3 (started_at is when a worker claimed the job, so planning is in).
Beside it is the client's wall time from the CopySnapshot call until DescribeSnapshots (polled
every 20 ms) says `completed`. One full and one incremental copy are checked by reading a
sample of their blocks back through the EBS direct APIs in eu-west-1.

All files are written before the clock starts and every phase begins with a sync(), so that
no phase pays for flushing another's dirty pages. The page cache is not dropped (that needs
root): both the raw copy and the engine read sources that were just written, from memory.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import os
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from bench import cpu
from bench.blocks import FOREIGN_CPU_LIMIT, QuietWaiter, describe_machine
from bench.blocks import markdown as markdown_table
from bench.cpu import isolate_aws_config
from snapferry.storage.files import write_atomic
from snapferry.testing import ServerProcess
from tests.integration.blocks import list_blocks, write_snapshot

BLOCK = 512 * 1024
BLOCK_COUNT = 2048  # 1 GiB
GIB = 1024**3
CHANGED = 20  # 1 % of the blocks
SRC, DST = "us-east-1", "eu-west-1"
CREDENTIALS = ("test", "test")
ROUNDS = 3
# Past this many seconds of run time, no new round starts (the minimum is 2 full and 2
# re-encrypting copies; incremental copies are topped up to 3 afterwards, cheaply).
ROUND_BUDGET = 130.0
MIN_ROUNDS = 2
INCREMENTAL_RUNS = 3
RAW_THREADS = (1, 4)
VERIFY_SAMPLE = 64
POLL_SECONDS = 0.02
COPY_TIMEOUT = 120.0  # one copy of 1 GiB; a stuck copy fails the run instead of stalling it
QUIET_WAIT_BUDGET = 60.0
# The targets.
FULL_TARGET = 1.2  # full copy <= 1.2 x raw (issue 14; 1.3 before)
REENCRYPT_TARGET = 1.3  # re-encrypting copy <= 1.3 x raw (issue 14; 1.5 before)
INCREMENTAL_TARGET = 0.05  # incremental 1 % <= 5 % of the full copy
CLIENT_CONFIG = Config(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=5,
                       read_timeout=60, max_pool_connections=4)

FULL, REENCRYPT, INCREMENTAL = "full", "re-encrypting (full)", "incremental 1 %"


@dataclass(frozen=True)
class CopyRun:
    """One copy: the engine's times, the client's wall time, and whose CPU it took."""

    snapshot_id: str
    mode: str  # as the engine recorded it: full | incremental | shared
    engine_seconds: float  # finished_at - started_at
    queued_seconds: float  # started_at - created_at: until a worker claimed it
    wall_seconds: float  # CopySnapshot call -> `completed` seen by DescribeSnapshots
    bytes_moved: int
    server_cpu: float
    foreign_share: float


@dataclass(frozen=True)
class RawRun:
    threads: int
    seconds: float
    cpu: float  # seconds of this process's CPU (the copying threads)
    foreign_share: float


class Clock:
    """CPU time of the server, of us and of everyone else over one timed phase."""

    def __init__(self, server_pid: int) -> None:
        self.server_pid = server_pid
        self.server = cpu.process_seconds(server_pid)
        self.ours = time.process_time()
        self.machine = cpu.machine_busy_seconds()
        self.started = time.perf_counter()

    def stop(self) -> tuple[float, float, float, float]:
        """(wall seconds, server CPU seconds, our CPU seconds, share of the cores used by
        other processes meanwhile)."""
        wall = time.perf_counter() - self.started
        server = cpu.process_seconds(self.server_pid) - self.server
        ours = time.process_time() - self.ours
        foreign = cpu.machine_busy_seconds() - self.machine - server - ours
        return wall, server, ours, max(foreign, 0.0) / (wall * len(os.sched_getaffinity(0)))


# --- clients and snapshots ----------------------------------------------------------------


@dataclass(frozen=True)
class Clients:
    src_ebs: Any
    dst_ec2: Any
    dst_ebs: Any


def make_clients(url: str) -> Clients:
    def client(service: str, region: str) -> Any:
        return boto3.session.Session().client(
            service, endpoint_url=url, region_name=region, aws_access_key_id=CREDENTIALS[0],
            aws_secret_access_key=CREDENTIALS[1], config=CLIENT_CONFIG)
    return Clients(client("ebs", SRC), client("ec2", DST), client("ebs", DST))


def wait_completed(ec2: Any, snapshot_id: str) -> None:
    deadline = time.monotonic() + COPY_TIMEOUT
    while time.monotonic() < deadline:
        found = ec2.describe_snapshots(SnapshotIds=[snapshot_id])["Snapshots"][0]
        if found["State"] == "completed":
            return
        if found["State"] != "pending":
            raise RuntimeError(f"copy {snapshot_id} ended {found['State']}: "
                               f"{found.get('StateMessage')}")
        time.sleep(POLL_SECONDS)
    raise TimeoutError(f"copy {snapshot_id} still pending after {COPY_TIMEOUT:.0f} s")


def iso(text: str) -> dt.datetime:
    return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ")


def job_record(data_dir: Path, snapshot_id: str) -> tuple[str, float, float, int]:
    """(mode, engine seconds, queued seconds, bytes moved) of the copy job that made
    `snapshot_id`, read from the server's SQLite file (read-only, beside the live server)."""
    uri = f"file:{data_dir / 'metadata.sqlite3'}?mode=ro"
    with sqlite3.connect(uri, uri=True, timeout=10) as db:
        row = db.execute("SELECT mode, created_at, started_at, finished_at, bytes_moved, state "
                         "FROM copy_jobs WHERE snapshot_id = ?", (snapshot_id,)).fetchone()
    if row is None or row[5] != "completed":
        raise RuntimeError(f"no completed copy job for {snapshot_id}: {row}")
    mode, created, started, finished, moved, _ = row
    return (mode, (iso(finished) - iso(started)).total_seconds(),
            (iso(started) - iso(created)).total_seconds(), moved)


def copy_once(clients: Clients, data_dir: Path, server_pid: int, source_id: str,
              **extra: Any) -> CopyRun:
    os.sync()  # nothing dirty left from setup to flush on the copy's clock
    clock = Clock(server_pid)
    snapshot_id = clients.dst_ec2.copy_snapshot(
        SourceRegion=SRC, SourceSnapshotId=source_id, **extra)["SnapshotId"]
    wait_completed(clients.dst_ec2, snapshot_id)
    wall, server, _, foreign = clock.stop()
    mode, engine, queued, moved = job_record(data_dir, snapshot_id)
    return CopyRun(snapshot_id, mode, engine, queued, wall, moved, server, foreign)


def write_child(ebs: Any, parent_id: str, rng: random.Random,
                digests: dict[int, bytes]) -> tuple[str, dict[int, bytes]]:
    """A child of `parent_id` with CHANGED new blocks; returns it and its blocks' digests."""
    changed = {index: os.urandom(BLOCK)
               for index in rng.sample(range(BLOCK_COUNT), CHANGED)}
    child_id = write_snapshot(ebs, changed, size_gib=1, parent=parent_id)
    return child_id, {**digests, **{i: hashlib.sha256(d).digest() for i, d in changed.items()}}


def verify_sample(ebs: Any, snapshot_id: str, expected: dict[int, bytes],
                  indexes: list[int]) -> None:
    """Read `indexes` back through the EBS direct APIs and check every SHA-256."""
    tokens = list_blocks(ebs, snapshot_id, page=10000)
    if len(tokens) != BLOCK_COUNT:
        raise AssertionError(f"{snapshot_id} lists {len(tokens)} of {BLOCK_COUNT} blocks")

    def check(index: int) -> None:
        data = ebs.get_snapshot_block(SnapshotId=snapshot_id, BlockIndex=index,
                                      BlockToken=tokens[index])["BlockData"].read()
        if hashlib.sha256(data).digest() != expected[index]:
            raise AssertionError(f"block {index} of {snapshot_id} differs from its source")

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(check, indexes))


# --- the raw baseline --------------------------------------------------------------------


def write_sources(blocks: dict[int, bytes], root: Path) -> list[Path]:
    """The payloads as 2048 plain files, flushed to disk before any clock starts."""
    root.mkdir()
    paths = []
    for index, data in blocks.items():
        path = root / f"{index:04d}"
        path.write_bytes(data)
        paths.append(path)
    os.sync()
    return paths


def raw_copy(sources: list[Path], names: list[str], target: Path, threads: int,
             server_pid: int) -> RawRun:
    """Read each source file and write it anew: write + fsync + rename + directory fsync,
    into the block store's 256-way fan-out (directories made before the clock starts)."""
    for prefix in {name[:2] for name in names}:
        (target / prefix).mkdir(parents=True, exist_ok=True)
    os.sync()
    pairs = list(zip(sources, names, strict=True))

    def copy(part: int) -> None:
        for source, name in pairs[part::threads]:
            write_atomic(target / name[:2] / name, source.read_bytes())

    clock = Clock(server_pid)
    if threads == 1:
        copy(0)
    else:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(copy, range(threads)))
    seconds, _, ours, foreign = clock.stop()
    shutil.rmtree(target)
    return RawRun(threads, seconds, ours, foreign)


# --- the run -----------------------------------------------------------------------------


@dataclass
class Results:
    copies: dict[str, list[CopyRun]]
    raw: dict[int, list[RawRun]]


class Bench:
    def __init__(self, server: ServerProcess, workdir: Path, rounds: int = ROUNDS) -> None:
        assert server.process is not None
        self.rounds = rounds
        self.server_pid = server.process.pid
        self.data_dir = server.data_dir
        self.workdir = workdir
        self.clients = make_clients(server.url)
        self.rng = random.Random(2026)
        self.results = Results({FULL: [], REENCRYPT: [], INCREMENTAL: []},
                               {n: [] for n in RAW_THREADS})
        self.quiet = QuietWaiter(QUIET_WAIT_BUDGET)
        self.copies_made: list[str] = []  # in eu-west-1, to delete before the next full copy
        self.source_id = ""
        self.digests: dict[int, bytes] = {}
        self.sources: list[Path] = []
        self.verified: set[str] = set()

    def setup(self) -> None:
        blocks = {index: os.urandom(BLOCK) for index in range(BLOCK_COUNT)}
        self.digests = {i: hashlib.sha256(d).digest() for i, d in blocks.items()}
        started = time.perf_counter()
        self.source_id = write_snapshot(self.clients.src_ebs, blocks, size_gib=1)
        print(f"server pid {self.server_pid}; source {self.source_id}: {BLOCK_COUNT} blocks "
              f"written in us-east-1 in {time.perf_counter() - started:.1f} s (4 threads, "
              "EBS direct APIs)", flush=True)
        self.sources = write_sources(blocks, self.workdir / "raw-source")

    def forget_copies(self) -> None:
        """Delete every earlier copy in the destination, outside any clock."""
        for snapshot_id in self.copies_made:
            self.clients.dst_ec2.delete_snapshot(SnapshotId=snapshot_id)
        self.copies_made.clear()

    def raw(self, round_number: int) -> None:
        names = [digest.hex() for digest in self.digests.values()]
        for threads in RAW_THREADS:
            self.quiet.wait()
            target = self.workdir / f"raw-copy-{round_number}-{threads}"
            run = raw_copy(self.sources, names, target, threads, self.server_pid)
            self.results.raw[threads].append(run)
            print(f"  round {round_number + 1}  raw, {threads} thread(s)         "
                  f"{run.seconds:6.3f} s, CPU {run.cpu:5.2f} s{flag(run.foreign_share)}",
                  flush=True)

    def copy(self, label: str, round_number: int, source_id: str, expected_mode: str,
             **extra: Any) -> CopyRun:
        self.quiet.wait()
        run = copy_once(self.clients, self.data_dir, self.server_pid, source_id, **extra)
        if run.mode != expected_mode:
            raise AssertionError(f"{label} copy {run.snapshot_id} ran as {run.mode}")
        self.copies_made.append(run.snapshot_id)
        self.results.copies[label].append(run)
        print(f"  round {round_number + 1}  {label:<22} engine {run.engine_seconds:6.3f} s, "
              f"client {run.wall_seconds:6.3f} s, queued {run.queued_seconds:5.3f} s, "
              f"{run.bytes_moved / 2**20:7.1f} MiB moved, server CPU {run.server_cpu:5.2f} s"
              f"{flag(run.foreign_share)}", flush=True)
        return run

    def verify(self, label: str, run: CopyRun, expected: dict[int, bytes],
               must: list[int]) -> None:
        if label in self.verified:
            return
        rest = [i for i in range(BLOCK_COUNT) if i not in must]
        sample = must + self.rng.sample(rest, VERIFY_SAMPLE - len(must))
        verify_sample(self.clients.dst_ebs, run.snapshot_id, expected, sorted(sample))
        self.verified.add(label)
        print(f"  verified {label} copy {run.snapshot_id}: {len(sample)} blocks read back "
              f"in eu-west-1 match their SHA-256", flush=True)

    def incremental(self, round_number: int) -> None:
        """A child of the source with 20 new blocks, copied after the latest unencrypted
        copy of the lineage (its parent's or an earlier child's): only those blocks move."""
        child_id, expected = write_child(self.clients.src_ebs, self.source_id, self.rng,
                                         self.digests)
        run = self.copy(INCREMENTAL, round_number, child_id, "incremental")
        changed = [i for i in range(BLOCK_COUNT) if expected[i] != self.digests[i]]
        self.verify(INCREMENTAL, run, expected, changed)

    def round(self, number: int) -> None:
        self.raw(number)
        self.forget_copies()
        self.copy(REENCRYPT, number, self.source_id, "full", Encrypted=True)
        self.forget_copies()
        full = self.copy(FULL, number, self.source_id, "full")
        self.verify(FULL, full, self.digests, [])
        self.incremental(number)

    def run(self) -> Results:
        started = time.monotonic()
        self.setup()
        for number in range(self.rounds):
            if number >= MIN_ROUNDS and time.monotonic() - started > ROUND_BUDGET:
                print(f"  (time budget: no round {number + 1})", flush=True)
                break
            self.round(number)
        while len(self.results.copies[INCREMENTAL]) < INCREMENTAL_RUNS:
            self.incremental(self.rounds)
        return self.results


def flag(foreign_share: float) -> str:
    if foreign_share <= FOREIGN_CPU_LIMIT:
        return ""
    return f"  (DISTURBED: other processes used {foreign_share:.0%} of the cores)"


# --- the report --------------------------------------------------------------------------


def spread(values: list[float], digits: int = 2) -> str:
    return (f"{statistics.median(values):.{digits}f} "
            f"({min(values):.{digits}f}-{max(values):.{digits}f})")


def per_gib(seconds: float) -> float:
    return seconds * GIB / (BLOCK_COUNT * BLOCK)


def report(results: Results) -> str:
    """Seconds per GiB (the volume is 1 GiB, so seconds as measured), and ratios of medians
    to each raw baseline."""
    raw = {n: per_gib(statistics.median(r.seconds for r in runs))
           for n, runs in results.raw.items()}

    def ratios(seconds: float) -> list[str]:
        return [f"{seconds / raw[n]:.3f}" for n in sorted(raw, reverse=True)]

    rows = []
    for threads, runs in results.raw.items():
        rows.append([f"raw read + write_atomic, {threads} thread{'s' if threads > 1 else ''}",
                     str(len(runs)), spread([per_gib(r.seconds) for r in runs], 3), "-",
                     f"{BLOCK_COUNT * BLOCK / 2**20:.1f}",
                     f"{statistics.median(r.cpu for r in runs):.2f} (this process)",
                     *ratios(raw[threads])])
    for label, runs in results.copies.items():
        engine = [per_gib(r.engine_seconds) for r in runs]
        rows.append([
            label, str(len(runs)), spread(engine, 3),
            spread([per_gib(r.wall_seconds) for r in runs], 3),
            f"{statistics.median(r.bytes_moved for r in runs) / 2**20:.1f}",
            f"{statistics.median(r.server_cpu for r in runs):.2f} (server)",
            *ratios(statistics.median(engine)),
        ])
    header = ["mode", "runs", "engine s/GiB, median (min-max)", "client wall s/GiB",
              "MiB moved", "CPU s", *(f"ratio to raw, {n} thr" for n in sorted(raw, reverse=True))]
    return markdown_table(header, rows) + "\n\n" + targets(results, raw[max(RAW_THREADS)])


def targets(results: Results, raw: float) -> str:
    """The issue's targets against the faster raw baseline (4 threads, as many as the
    engine's I/O pool), engine seconds per GiB."""
    engine = {label: per_gib(statistics.median(r.engine_seconds for r in runs))
              for label, runs in results.copies.items()}
    checks = [
        (f"full <= {FULL_TARGET} x raw", engine[FULL] / raw, FULL_TARGET),
        (f"re-encrypting <= {REENCRYPT_TARGET} x raw", engine[REENCRYPT] / raw,
         REENCRYPT_TARGET),
        (f"incremental 1 % <= {INCREMENTAL_TARGET:.0%} of full", engine[INCREMENTAL]
         / engine[FULL], INCREMENTAL_TARGET),
    ]
    rows = [[name, f"{value:.3f}", "met" if value <= limit else "NOT met"]
            for name, value, limit in checks]
    return markdown_table(["target", "measured", "verdict"], rows)


def disturbed(results: Results) -> str:
    shares = [r.foreign_share for runs in results.copies.values() for r in runs]
    shares += [r.foreign_share for runs in results.raw.values() for r in runs]
    bad = [s for s in shares if s > FOREIGN_CPU_LIMIT]
    if not bad:
        return ""
    return (f"\nWARNING: other processes used over {FOREIGN_CPU_LIMIT:.0%} of the cores during "
            f"{len(bad)} of {len(shares)} timed phases (up to {max(bad):.0%}).")


def engine_listing(data_dir: Path) -> str:
    """`snapferry copies`, the operator's view of the same jobs."""
    listing = subprocess.run(
        [sys.executable, "-m", "snapferry.cli", "copies", "--data-dir", str(data_dir)],
        capture_output=True, text=True, timeout=60, check=True)
    return listing.stdout


def volume_label(blocks: int = BLOCK_COUNT) -> str:
    """What the run copies, from the block count it uses (not a fixed "1 GiB")."""
    size = blocks * BLOCK
    amount = f"{size / GIB:g} GiB" if size % GIB == 0 else f"{size / 2**20:g} MiB"
    return f"{blocks} blocks x 512 KiB = {amount}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.copy", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=ROUNDS,
                        help=f"at most this many rounds (default {ROUNDS})")
    parser.add_argument("--tree", type=Path, default=None,
                        help="serve from the snapferry package of this source tree")
    args = parser.parse_args(argv)
    tree = args.tree.resolve() if args.tree else None
    print(describe_machine().rsplit("\n", 1)[0], flush=True)
    print(f"{volume_label()}; copies {SRC} -> {DST}; engine: "
          f"copy_jobs.finished_at - started_at; server tree: {tree or 'this one'}", flush=True)
    workdir = Path(tempfile.mkdtemp(prefix="snapferry-bench-copy-"))
    try:
        isolate_aws_config(workdir)
        env = {"PYTHONPATH": str(tree)} if tree is not None else None
        with ServerProcess(workdir / "data", env=env, cwd=tree) as server:
            results = Bench(server, workdir, args.rounds).run()
            listing = engine_listing(server.data_dir)
        print("\n" + listing)
        print(report(results) + disturbed(results))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
