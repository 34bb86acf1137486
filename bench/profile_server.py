"""Where the real server's CPU goes under bench.requests' load: py-spy on snapferry's server
process and on the floor's, one after the other, with the same boto3 clients.

    python -m bench.profile_server [--seconds S] [--clients N] [--native | --perf] [--raw]
                                   [--out DIR] [--target snapferry|floor]... [--before TREE]

For each target, N client processes call DescribeAvailabilityZones for S seconds (after a
warm-up) while `py-spy record -r 1000 --format raw` samples the server process; the raw
stacks are kept in DIR (NAME.txt, for flame graphs) and summarised here: the share of the
samples each function is on the stack for (inclusive) and at the top of (self), and the
server CPU per request during the profile (inflated by the sampling: read the shares, and
take CPU figures from bench.requests). Only the thread holding the GIL is sampled (py-spy
--gil: without it, the pool's idle threads are sampled too, py-spy cannot tell them idle on
this machine). py-spy samples wall time: a thread holding the GIL while it waits for a core
is sampled too, so on a busy machine the shares lean towards where the server gets
preempted (the socket write that wakes a client). --native adds C frames (uvloop,
httptools, the interpreter). --perf samples with `perf record` instead: CPU time only,
kernel included, by shared object and C symbol (no Python function names on 3.11).
--raw drives the server with bench.requests_raw's clients instead of boto3 (py-spy only):
they keep it busy and leave the cores to it, so its samples are nearly all CPU.
"""

from __future__ import annotations

import collections
import multiprocessing
import os
import re
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

from bench import load, pyspy, requests_raw, servers
from bench.servers import Target

WARMUP_SECONDS = 1.0
TOP = 45
# `function (file:line)` -> `function (file)`: one row per function, not per line.
_LINENO = re.compile(r":\d+\)$")


def _option(argv: list[str], name: str, default: str) -> str:
    return argv[argv.index(name) + 1] if name in argv else default


def read_raw(path: Path) -> collections.Counter[tuple[str, ...]]:
    """py-spy's stacks with line numbers dropped: one row per function, not per line."""
    stacks: collections.Counter[tuple[str, ...]] = collections.Counter()
    for frames, count in pyspy.read_raw(path).items():
        stacks[tuple(_LINENO.sub(")", frame) for frame in frames)] += count
    return stacks


def summarise(stacks: collections.Counter[tuple[str, ...]], top: int = TOP) -> str:
    total = sum(stacks.values()) or 1
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    for frames, count in stacks.items():
        for frame in set(frames):  # a recursive function counts once per sample
            inclusive[frame] += count
        own[frames[-1]] += count
    lines = [f"{total} samples", "inclusive (on the stack):"]
    lines += [f"  {count / total:6.1%}  {frame}" for frame, count in inclusive.most_common(top)]
    lines.append("self (at the top of the stack):")
    lines += [f"  {count / total:6.1%}  {frame}" for frame, count in own.most_common(top)]
    return "\n".join(lines)


def run_load(pool: multiprocessing.pool.Pool, target: Target, clients: int, seconds: float,
             raw: bool) -> int:
    """Requests served in `seconds` of boto3 clients (bench.requests' load) or, with `raw`,
    of bench.requests_raw's clients (which keep the server busy: no idle between calls)."""
    if raw:
        payload = requests_raw.signed_bytes(target.url)
        results = pool.starmap(requests_raw.client, [(target.url, payload, seconds)] * clients,
                               chunksize=1)
        return sum(ok + failed for ok, failed in results)
    samples = pool.starmap(load.window, [(target.url, seconds, 0.0, clients > 1)] * clients,
                           chunksize=1)
    return sum(sample.served for sample in samples)


def profile(pool: multiprocessing.pool.Pool, target: Target, clients: int, seconds: float,
            out: Path, native: bool, raw: bool = False) -> str:
    # Warm up first (clients built, connections open, server caches hot), unprofiled.
    run_load(pool, target, clients, WARMUP_SECONDS, raw)
    samples = out / f"{target.name}.txt"
    command = [pyspy.binary(), "record", "-p", str(target.pid),
               "-r", "1000", "--format", "raw", "-o", str(samples), "-d", str(int(seconds) + 2)]
    if native:
        command.append("--native")
    # Only the samples of the thread holding the GIL: the Python work. Without it, idle
    # threads (the pool's, waiting on their queue) are sampled too: py-spy cannot tell them
    # idle on this machine.
    command.append("--gil")
    spy = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(1.0)  # py-spy attached
    server_before = target.cpu_seconds()
    served = max(run_load(pool, target, clients, seconds, raw), 1)
    server = target.cpu_seconds() - server_before
    _, errors = spy.communicate(timeout=seconds + 60)
    if spy.returncode != 0:
        raise RuntimeError(f"py-spy failed: {errors.decode(errors='replace')}")
    stacks = read_raw(samples)
    held = sum(stacks.values()) / 1000 / served  # one sample a millisecond
    return (f"== {target.name}: {served} requests from {clients} client(s) in {seconds:g} s, "
            f"server CPU {server / served * 1e6:.0f} µs/req while sampled, GIL held "
            f"~{held * 1e6:.0f} µs/req; load average {os.getloadavg()[0]:.2f}\n"
            + summarise(stacks))


def perf_profile(pool: multiprocessing.pool.Pool, target: Target, clients: int,
                 seconds: float, out: Path) -> str:
    """CPU samples (perf's cpu-clock: only while on a core, so time spent waiting for one on
    a busy machine is not counted, unlike py-spy's) of the whole process, kernel included,
    by shared object and by symbol; and context switches per request."""
    pool.starmap(load.window, [(target.url, WARMUP_SECONDS, 0.0, clients > 1)] * clients,
                 chunksize=1)
    data = out / f"{target.name}.perf.data"
    record = subprocess.Popen(
        ["perf", "record", "-e", "cpu-clock", "-F", "4000", "-p", str(target.pid), "-o",
         str(data), "--", "sleep", str(seconds + 1)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    stat = subprocess.Popen(
        ["perf", "stat", "-x", ",", "-e", "task-clock,context-switches", "-p",
         str(target.pid), "--", "sleep", str(seconds + 1)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(0.5)
    server_before = target.cpu_seconds()
    samples = pool.starmap(load.window, [(target.url, seconds, 0.0, clients > 1)] * clients,
                           chunksize=1)
    server = target.cpu_seconds() - server_before
    record.communicate(timeout=seconds + 60)
    counters = stat.communicate(timeout=seconds + 60)[1].decode()
    served = max(sum(sample.served for sample in samples), 1)
    switches = next((float(line.split(",")[0]) for line in counters.splitlines()
                     if "context-switches" in line), 0.0)
    reports = []
    for sort in ("dso", "dso,sym"):
        report = subprocess.run(
            ["perf", "report", "-i", str(data), "--stdio", "--sort", sort, "--percent-limit",
             "0.7" if "sym" in sort else "0.3"],
            capture_output=True, text=True, check=True).stdout
        reports.append("\n".join(line for line in report.splitlines()
                                 if line.strip() and not line.startswith("#")))
    return (f"== {target.name} (perf): {served} requests from {clients} client(s) in "
            f"{seconds:g} s, server CPU {server / served * 1e6:.0f} µs/req, "
            f"{switches / served:.2f} context switches/req (over a window ~1.5 s longer "
            f"than the load); load average {os.getloadavg()[0]:.2f}\n" + "\n".join(reports))


def main(argv: list[str]) -> int:
    seconds = float(_option(argv, "--seconds", "15"))
    clients = int(_option(argv, "--clients", "8"))
    out = Path(_option(argv, "--out", tempfile.mkdtemp(prefix="snapferry-profile-")))
    out.mkdir(parents=True, exist_ok=True)
    wanted = [argv[i + 1] for i, arg in enumerate(argv) if arg == "--target"] or [
        "snapferry", "floor"]
    context = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory(prefix="snapferry-bench-") as tmp, ExitStack() as stack:
        workdir = Path(tmp)
        # --before: another source tree's snapferry, as in bench.requests
        before = Path(_option(argv, "--before", "")).resolve() if "--before" in argv else None
        targets = servers.start_targets(stack, workdir, with_floor="floor" in wanted,
                                        before=before)
        if before is not None:
            wanted.append("before")
        barrier = context.Barrier(clients) if clients > 1 else None
        pool = stack.enter_context(context.Pool(clients, load.init_worker, (barrier,)))
        if barrier is not None:
            pool.starmap(load.ready, [()] * clients, chunksize=1)
        for name in wanted:
            if "--perf" in argv:
                print(perf_profile(pool, targets[name], clients, seconds, out), flush=True)
            else:
                print(profile(pool, targets[name], clients, seconds, out, "--native" in argv,
                              "--raw" in argv), flush=True)
    print(f"raw stacks in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
