"""The three targets, each a server process on a free loopback port: snapferry, the floor
(snapferry's stack with a fixed answer) and moto's server."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench import cpu
from bench.floor_app import READY_PREFIX as FLOOR_READY
from bench.load import make_client
from snapferry.testing import ServerProcess

START_TIMEOUT = 60.0
STOP_TIMEOUT = 20.0


@dataclass(frozen=True)
class Target:
    name: str
    url: str
    pid: int

    def cpu_seconds(self) -> float:
        return cpu.process_seconds(self.pid)


@contextmanager
def snapferry(data_dir: Path, name: str = "snapferry", tree: Path | None = None
              ) -> Iterator[Target]:
    """snapferry's server; `tree`: run the snapferry package of another source tree (an
    earlier commit, unpacked) instead, with this venv, for a before/after in one run."""
    env = {"PYTHONPATH": str(tree)} if tree is not None else None
    server = ServerProcess(data_dir, env=env, cwd=tree).start()
    try:
        assert server.process is not None
        yield Target(name, server.url, server.process.pid)
        server.stop(STOP_TIMEOUT)
    finally:
        server.kill()


def capture_response(url: str, into: Path) -> Path:
    """Save the DescribeAvailabilityZones response snapferry sends, for the floor to replay."""
    captured: dict[str, object] = {}

    def keep(http_response: object, **_: object) -> None:
        captured["response"] = http_response

    client = make_client(url)
    client.meta.events.register("after-call.ec2.DescribeAvailabilityZones", keep)
    client.describe_availability_zones()
    response = captured["response"]
    spec = {
        "status": response.status_code,  # type: ignore[attr-defined]
        "headers": list(response.headers.items()),  # type: ignore[attr-defined]
        "body": response.content.decode(),  # type: ignore[attr-defined]
    }
    into.write_text(json.dumps(spec))
    return into


def _wait_for_url(log: Path, pattern: re.Pattern[str], process: subprocess.Popen[bytes]) -> str:
    """The URL a server prints once it listens; its output goes to a file, which, unlike
    a pipe, never fills up and stalls a server that logs every request (moto does)."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        matched = pattern.search(log.read_text(errors="replace"))
        if matched:
            return matched.group(1)
        if process.poll() is not None:
            break
        time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"{process.args} did not start:\n{log.read_text(errors='replace')}")


@contextmanager
def _subprocess_target(name: str, command: list[str], pattern: str,
                       workdir: Path) -> Iterator[Target]:
    log = workdir / f"{name}.log"
    with log.open("wb") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
    try:
        url = _wait_for_url(log, re.compile(pattern), process)
        yield Target(name, url, process.pid)
    finally:
        process.terminate()
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def floor(response_file: Path, workdir: Path) -> AbstractContextManager[Target]:
    # The child's sys.path[0] is the current directory, so run from the project root.
    return _subprocess_target(
        "floor",
        [sys.executable, "-m", "bench.floor_app", str(response_file)],
        re.escape(FLOOR_READY) + r"(http://\S+)",
        workdir,
    )


def moto(workdir: Path) -> AbstractContextManager[Target]:
    # Port 0: werkzeug binds a free port and prints the real one in its start-up banner.
    return _subprocess_target(
        "moto",
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", "0"],
        r"Running on (http://127\.0\.0\.1:\d+)",
        workdir,
    )


def start_targets(stack: ExitStack, workdir: Path, *, with_floor: bool = True,
                  with_moto: bool = False, before: Path | None = None) -> dict[str, Target]:
    """What a request benchmark compares, each started on `stack`: snapferry; the floor,
    answering snapferry's own response bytes; moto; and `before`, another source tree's
    snapferry. In that order (the order the benchmarks interleave them in)."""
    cpu.isolate_aws_config(workdir)
    started = {"snapferry": stack.enter_context(snapferry(workdir / "data"))}
    if with_floor:
        response = capture_response(started["snapferry"].url, workdir / "response.json")
        started["floor"] = stack.enter_context(floor(response, workdir))
    if with_moto:
        started["moto"] = stack.enter_context(moto(workdir))
    if before is not None:
        started["before"] = stack.enter_context(
            snapferry(workdir / "data-before", "before", before))
    return started
