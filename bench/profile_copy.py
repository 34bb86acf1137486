"""Where a `snapferry serve`'s copy workers spend a CopySnapshot: py-spy samples of every
server thread, and each thread's CPU from /proc, over one re-encrypting and one full copy
of a 1 GiB snapshot (bench/copy.py's setup).

    python -m bench.profile_copy [--tree PATH] [--rate 500] [--gil] [--out DIR]

Needs py-spy (the `bench` extra) and leave to attach to a child process (ptrace_scope 0 or 1:
the server is this process's child). Samples are written in py-spy's raw (collapsed) format
to DIR/<copy>.txt, with idle threads included (`--idle`), so waiting shows; `--gil` samples
only the thread holding the GIL instead. py-spy pauses the server for each sample (its
default), so the copies run slower than in bench.copy: read shares, not times.
"""

from __future__ import annotations

import argparse
import collections
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import cpu, pyspy
from bench.copy import BLOCK, BLOCK_COUNT, SRC, make_clients, wait_completed
from bench.cpu import isolate_aws_config
from snapferry.testing import ServerProcess
from tests.integration.blocks import write_snapshot


def thread_names(pid: int) -> dict[int, str]:
    """Python thread names by native thread id, from `py-spy dump` (Python 3.11 does not
    name its threads for the kernel, so /proc's comm says `python` for each)."""
    dump = subprocess.run([pyspy.binary(), "dump", "--pid", str(pid)], capture_output=True,
                          text=True, timeout=60).stdout
    names = {}
    for match in re.finditer(r'^Thread (0x[0-9A-Fa-f]+|\d+) \([^)]*\): "([^"]*)"', dump, re.M):
        ident = match.group(1)
        if not ident.startswith("0x"):
            names[int(ident)] = match.group(2)
    return names


def group(name: str) -> str:
    """Threads of one kind together: the copy I/O pool, request threads, ..."""
    return re.sub(r"[-_]\d+$", "", name)


def profile_copy(pid: int, clients: object, source_id: str, label: str, out: Path,
                 rate: int, gil: bool, **extra: object) -> None:
    os.sync()
    samples = out / f"{label}.txt"
    command = [pyspy.binary(), "record", "-r", str(rate), "--threads", "--format", "raw",
               "-o", str(samples), "-p", str(pid)]
    command += ["--gil"] if gil else ["--idle"]
    spy = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(1.0)  # py-spy attaching (a fixed start-up delay: the copy is not timed here)
    before, started = cpu.thread_seconds(pid), time.perf_counter()
    snapshot_id = clients.dst_ec2.copy_snapshot(  # type: ignore[attr-defined]
        SourceRegion=SRC, SourceSnapshotId=source_id, **extra)["SnapshotId"]
    wait_completed(clients.dst_ec2, snapshot_id)  # type: ignore[attr-defined]
    wall = time.perf_counter() - started
    after = cpu.thread_seconds(pid)
    spy.send_signal(signal.SIGINT)
    spy.wait(timeout=60)
    names = thread_names(pid)  # after record lets go: one py-spy attached at a time
    by_group: dict[str, list[float]] = collections.defaultdict(lambda: [0.0, 0.0, 0])
    for tid, (user, system) in after.items():
        was = before.get(tid, (0.0, 0.0))
        name = group(names.get(tid, f"tid {tid}"))
        by_group[name][0] += user - was[0]
        by_group[name][1] += system - was[1]
        by_group[name][2] += 1
    print(f"\n{label}: {snapshot_id}, {wall:.2f} s wall under py-spy; thread CPU (/proc):")
    for name, (user, system, count) in sorted(by_group.items(), key=lambda kv: -sum(kv[1][:2])):
        if user + system >= 0.01:
            print(f"  {name:<32} x{count:<2} user {user:6.2f} s  system {system:6.2f} s")
    print(f"  samples: {samples}")
    summarise(samples)


# An I/O or request thread with no work: blocked in its pool's queue.get (threading's
# _worker at concurrent/futures/thread.py), or a thread asleep on an Event (a worker idle).
IDLE = re.compile(r"_worker \(concurrent/futures/thread\.py:\d+\)$|^Thread\.run.*_worker")


def summarise(samples: Path, top: int = 25) -> None:
    """The leaf frames that took the most samples, per thread group (the I/O pool's
    threads together)."""
    leaves: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for frames, count in pyspy.read_raw(samples).items():
        thread = frames[0]
        name = re.match(r'thread \(\w+\): "?([^"]*)"?$', thread)  # py-spy's thread frame
        key = group(name.group(1)) if name else thread
        leaves[key][";".join(frames[-2:])] += count
    for key, counter in leaves.items():
        total = sum(counter.values())
        idle = sum(n for leaf, n in counter.items() if IDLE.search(leaf))
        print(f"  [{key}] {total} samples, {idle / total:.1%} waiting for work")
        for leaf, count in counter.most_common(top if "copy" in key else 4):
            print(f"    {count / total:6.1%}  {leaf[-150:]}")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile_copy", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tree", type=Path, default=None)
    parser.add_argument("--rate", type=int, default=500)
    parser.add_argument("--gil", action="store_true")
    parser.add_argument("--out", type=Path, default=Path("/tmp/snapferry-profile-copy"))
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="snapferry-profile-copy-"))
    try:
        isolate_aws_config(workdir)
        tree = args.tree.resolve() if args.tree else None
        env = {"PYTHONPATH": str(tree)} if tree else None
        with ServerProcess(workdir / "data", env=env, cwd=tree) as server:
            assert server.process is not None
            pid = server.process.pid
            clients = make_clients(server.url)
            rng = random.Random(22)
            blocks = {i: rng.randbytes(BLOCK) for i in range(BLOCK_COUNT)}
            source_id = write_snapshot(clients.src_ebs, blocks, size_gib=1)
            print(f"server pid {pid}, source {source_id}", flush=True)
            suffix = "-gil" if args.gil else ""
            profile_copy(pid, clients, source_id, f"reencrypt{suffix}", args.out, args.rate,
                         args.gil, Encrypted=True)
            profile_copy(pid, clients, source_id, f"full{suffix}", args.out, args.rate,
                         args.gil)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
