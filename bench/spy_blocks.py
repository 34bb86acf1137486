"""Where a real `snapferry serve` spends its CPU under bench.blocks' load, sampled by py-spy.

    python -m bench.spy_blocks [--threads N] [--blocks N] [--reads] [--native | --perf |
                               --no-spy] [--keep DIR]

bench.profile_blocks calls the Dispatcher in-process; this one profiles the whole server
process, uvicorn and the event loop included, while boto3 clients (bench.blocks' own
put_blocks/get_blocks, 1 thread by default) write N fresh blocks into one snapshot and, with
--reads, read them back. py-spy (the `bench` extra) samples the server at 500 Hz without
pausing it (--nonblocking) and with idle threads left out, so the samples are where its CPU
went. Printed: the server's CPU per block from /proc, then the functions holding the most
samples, by their own time and with what they call, and the share of a few named parts
of the path. The raw collapsed stacks stay in DIR with --keep.

py-spy's samples are wall time of threads it thinks busy: a thread in fsync, or waiting for
the GIL, counts. For CPU alone, --perf samples the server with Linux perf (on-CPU only, C
and kernel frames, no Python ones; `perf report -i DIR/perf.data --sort pid,dso`), and the
CPU per block per thread, from /proc, separates the event loop from the request threads.
--no-spy measures only that, unprofiled: run it alternately on two trees to compare them.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from bench import cpu, pyspy
from bench.blocks import (
    BLOCK_SIZE,
    PHASE_TIMEOUT,
    Blocks,
    Deadline,
    get_blocks,
    in_threads,
    list_tokens,
    make_client,
    put_blocks,
    start_once,
)
from snapferry.testing import ServerProcess

RATE = 500  # samples a second
# Parts of the path, each named by a frame that marks it (a sample counts once per part,
# wherever in its stack the frame is). A sample may be in two parts (SigV4's hash is also
# in the dispatcher); the table says which are nested.
PARTS: tuple[tuple[str, str], ...] = (
    ("event loop: uvicorn + ASGI app (all)", "run_forever"),
    ("  httptools parse / on_body", "data_received"),
    ("  App.__call__ (body receive, answer)", "__call__ (snapferry/server.py"),
    ("  App._read_body", "_read_body"),
    ("  response send", "send (uvicorn"),
    ("thread pool: Dispatcher.handle", "handle (snapferry/server.py"),
    ("  sigv4.verify", "verify (snapferry/wire/sigv4.py"),
    ("  body SHA-256", "body_sha256"),
    ("  restjson parse", "parse (snapferry/wire/restjson.py"),
    ("  authorize", "authorize"),
    ("  put_snapshot_block", "put_snapshot_block"),
    ("    BlockData.write", "write (snapferry/storage/blockdata.py"),
    ("    FileBlockStore.put", "put (snapferry/storage/blocks/fs.py"),
    ("    write_atomic", "write_atomic"),
    ("    SQLAlchemy", "sqlalchemy/"),
    ("    sqlite3 commit", "commit (sqlalchemy/engine/default.py"),
    ("  get_snapshot_block", "get_snapshot_block"),
    ("  metrics.observe", "observe (snapferry/engine/metrics.py"),
    ("  serialize", "serialize (snapferry/wire/restjson.py"),
    ("thread pool: worker loop outside handle", "_worker (concurrent/futures/thread.py"),
    ("background threads (copier, collector)", "snapferry/engine/"),
)


def short(frame: str) -> str:
    """`name (path/to/site-packages/pkg/mod.py:12)` -> `name (pkg/mod.py)`."""
    name, _, where = frame.partition(" (")
    where = where.rstrip(")").rsplit(":", 1)[0]
    for marker in ("site-packages/", "/lib/python3", "/snapferry/", "/bench/"):
        if marker in where:
            where = where.split(marker, 1)[1]
            if marker == "/lib/python3":
                where = where.split("/", 1)[-1]
            if marker == "/snapferry/":
                where = "snapferry/" + where
            break
    return f"{name} ({where})"


def summarize(stacks: Counter[tuple[str, ...]], top: int = 40) -> str:
    total = sum(stacks.values()) or 1
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    parts: Counter[str] = Counter()
    for frames, count in stacks.items():
        named = [short(f) for f in frames[1:]]  # frames[0] is the thread
        if named:
            own[named[-1]] += count
        for name in set(named):
            inclusive[name] += count
        text = ";".join(frames[1:])
        for label, marker in PARTS:
            if marker in text:
                parts[label] += count
    lines = [f"{total} samples", "", "share  part of the path"]
    lines += [f"{parts[label] / total:5.1%}  {label}" for label, _ in PARTS]
    lines += ["", "own    function (own time)"]
    lines += [f"{n / total:5.1%}  {name}" for name, n in own.most_common(top)]
    lines += ["", "total  function (with what it calls)"]
    lines += [f"{n / total:5.1%}  {name}" for name, n in inclusive.most_common(top)]
    return "\n".join(lines)


def thread_seconds(pid: int) -> Counter[str]:
    """CPU seconds so far of each live thread of `pid`, summed by thread name (the event
    loop is the process's main thread, named after the command; the request pool's threads
    are `snapferry-reque...`)."""
    seconds: Counter[str] = Counter()
    for tid, (user, system) in cpu.thread_seconds(pid).items():
        try:
            name = Path(f"/proc/{pid}/task/{tid}/comm").read_text().strip()
        except FileNotFoundError:  # the thread ended meanwhile
            continue
        seconds["event loop (main thread)" if tid == pid else name] += user + system
    return seconds


def spy(pid: int, out: Path, native: bool, gil: bool = False) -> subprocess.Popen[bytes]:
    command = [pyspy.binary(), "record", "-r", str(RATE), "--format", "raw", "-o", str(out),
               "-p", str(pid)]
    # --native needs py-spy to pause the process for each sample, which slows it (the
    # shares stay meaningful); without it the server runs on while it is sampled.
    command.append("--native" if native else "--nonblocking")
    if gil:
        command.append("--gil")
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def stop(recorder: subprocess.Popen[bytes], out: Path) -> None:
    recorder.send_signal(2)  # SIGINT: py-spy writes its file and exits
    _, err = recorder.communicate(timeout=60)
    if not out.exists():
        raise RuntimeError("py-spy wrote nothing: " + err.decode(errors="replace")[-2000:])


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--blocks", type=int, default=512)
    parser.add_argument("--reads", action="store_true", help="profile the reads instead")
    parser.add_argument("--native", action="store_true", help="py-spy --native")
    parser.add_argument("--gil", action="store_true",
                        help="py-spy --gil: only the thread holding the GIL, i.e. Python's "
                        "own CPU, not a thread waiting for it")
    parser.add_argument("--no-spy", action="store_true",
                        help="only the CPU per block and per thread, unprofiled")
    parser.add_argument("--perf", action="store_true",
                        help="sample with Linux perf (on-CPU only, kernel and C frames; "
                        "`perf report -i DIR/perf.data`) instead of py-spy")
    parser.add_argument("--keep", type=Path, help="leave the raw stacks in this directory")
    args = parser.parse_args(list(argv) if argv is not None else None)
    workdir = Path(tempfile.mkdtemp(prefix="snapferry-spy-blocks-"))
    try:
        cpu.isolate_aws_config(workdir)
        with ServerProcess(workdir / "data") as server:
            assert server.process is not None
            pid = server.process.pid
            clients = [make_client(server.url) for _ in range(args.threads)]
            snapshot_id = start_once(clients, encrypted=False)
            blocks = Blocks.random(args.blocks)
            put_blocks(Blocks.random(8), start_once(clients, encrypted=False))(
                clients[0], range(8), Deadline(PHASE_TIMEOUT))  # warm: imports, caches
            out = (args.keep or workdir) / ("reads.txt" if args.reads else "writes.txt")
            out.parent.mkdir(parents=True, exist_ok=True)
            count = args.blocks
            if args.reads:
                in_threads(clients, put_blocks(blocks, snapshot_id), count)
                clients[0].complete_snapshot(SnapshotId=snapshot_id, ChangedBlocksCount=count)
                tokens = list_tokens(clients[0], snapshot_id, count)
                job = get_blocks(blocks, snapshot_id, tokens)
            else:
                job = put_blocks(blocks, snapshot_id)
            if args.perf:
                out = out.with_name("perf.data")
                recorder = subprocess.Popen(
                    ["perf", "record", "-F", "999", "-g", "-o", str(out), "-p", str(pid)],
                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            else:
                recorder = None if args.no_spy else spy(pid, out, args.native, args.gil)
            time.sleep(1.0)  # py-spy attaches
            before, threads_before = cpu.process_seconds(pid), thread_seconds(pid)
            started = time.perf_counter()
            in_threads(clients, job, count)
            seconds = time.perf_counter() - started
            used = cpu.process_seconds(pid) - before
            by_thread = thread_seconds(pid)
            by_thread.subtract(threads_before)
            if recorder is not None:
                stop(recorder, out)
        kind = "GetSnapshotBlock" if args.reads else "PutSnapshotBlock"
        print(f"{count} x {kind} of {BLOCK_SIZE // 1024} KiB, {args.threads} client thread(s):"
              f" {seconds:.1f} s; server CPU {used * 1e3 / count:.2f} ms per block"
              + ("" if args.no_spy else " (profiled: the profiler's own cost on the server "
                                   "is in it)"))
        for name, spent in by_thread.most_common():
            if spent > 0:
                print(f"  {spent * 1e3 / count:5.2f} ms per block on thread(s) {name}")
        if recorder is not None and not args.perf:
            print(summarize(pyspy.read_raw(out)))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
