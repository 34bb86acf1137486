"""A warm start for each mutant's tests (`run.py --select`).

A fresh `python -m pytest` spends about 1.5 s of CPU importing pytest and the third-party
libraries the tests load (botocore, boto3, SQLAlchemy, cryptography, uvicorn, hypothesis)
before it runs a test, and a unit-test mutant is often killed in less. So `run.py` starts
one server per run that has imported those and nothing of snapferry or of its tests, and
each pytest stage of a mutant (select.py) asks it to fork: the child imports snapferry from
the scratch tree on disk, mutant included, exactly as a fresh process would, runs
`pytest.main` with the stage's arguments, its output on the caller's own stdout and stderr
(passed over the socket), and exits with pytest's code.

The child leads a process group of its own, so that when cosmic-ray's timeout kills the
caller, the server, seeing the socket close, kills the child and every `snapferry serve`
an integration test started.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import random
import select
import signal
import socket
import sys
from pathlib import Path

# The environment variable that tells select.py where the server listens.
ADDRESS = "SNAPFERRY_MUTATION_WARM"

# Third-party modules only: nothing here may import snapferry, whose mutated module must be
# read from disk by each child.
PRELOAD = ("pytest", "_pytest.python", "_pytest.fixtures", "hypothesis", "boto3",
           "botocore.session", "botocore.auth", "sqlalchemy", "sqlalchemy.orm",
           "sqlalchemy.dialects.sqlite", "sqlalchemy.dialects.postgresql", "psycopg",
           "cryptography.hazmat.primitives.ciphers.aead", "cryptography.x509", "uvicorn",
           "uvicorn.protocols.http.httptools_impl", "uvloop", "httptools",
           "prometheus_client", "rich.progress", "coverage")


def _preload() -> None:
    for name in PRELOAD:
        with contextlib.suppress(ImportError):  # an extra not installed: loaded cold
            importlib.import_module(name)


def _child(request: dict, fds: list[int]) -> None:
    """In the forked child: become the stage's pytest process, then exit with its code."""
    code = 1
    try:
        os.setsid()
        for fd, target in zip(fds, (1, 2), strict=True):
            os.dup2(fd, target)
            os.close(fd)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        random.seed()  # a fresh process's seed, not the server's state shared by every child
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        import pytest

        # pytest cannot assert-rewrite the plugins imported before it: nothing asserts in them.
        args = ["-W", "ignore::pytest.PytestAssertRewriteWarning", *request["args"]]
        sys.argv = ["pytest", *args]
        code = int(pytest.main(args))
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _serve_one(conn: socket.socket) -> None:
    message, fds, _, _ = socket.recv_fds(conn, 1 << 20, 2)
    request = json.loads(message)
    pid = os.fork()
    if pid == 0:
        conn.close()
        _child(request, fds)
    for fd in fds:
        os.close(fd)
    pidfd = os.pidfd_open(pid)
    try:
        ready, _, _ = select.select([conn, pidfd], [], [])
        if pidfd not in ready:  # the caller is gone (a timeout): so is its test run
            os.killpg(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        if pidfd in ready:
            conn.sendall(b"%d\n" % os.waitstatus_to_exitcode(status))
    finally:
        os.close(pidfd)


def serve(address: str) -> None:
    _preload()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    Path(address).unlink(missing_ok=True)
    listener.bind(address)
    listener.listen(4)
    print("ready", flush=True)  # run.py waits for this line before the first mutant
    while True:  # cosmic-ray's local distributor runs one mutant at a time
        conn, _ = listener.accept()
        with conn:
            try:
                _serve_one(conn)
            except (OSError, ValueError) as error:  # a caller that vanished mid-request
                print(f"warm: {error}", file=sys.stderr, flush=True)


def run_pytest(args: list[str]) -> int | None:
    """Run `pytest ARGS` in a child of the warm server, if one is set up; None if not (the
    caller then starts pytest itself)."""
    address = os.environ.get(ADDRESS)
    if not address:
        return None
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        try:
            conn.connect(address)
        except OSError:
            return None
        sys.stdout.flush()
        sys.stderr.flush()
        request = {"args": args, "cwd": os.getcwd(), "env": dict(os.environ)}
        socket.send_fds(conn, [json.dumps(request).encode()], [1, 2])
        answer = conn.makefile("rb").readline()
    # No answer: the server died. The caller runs the stage cold rather than count a kill.
    return int(answer) if answer.strip() else None


if __name__ == "__main__":
    serve(sys.argv[1])
