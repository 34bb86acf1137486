"""`snapferry serve --processes N --worker-processes M`: several API processes on one port,
and copy workers in processes of their own, under one parent.

The parent binds the port, migrates the database and does the start-up work once (volumes
a crash left half made, unreferenced blocks), then forks: each API process runs its own
uvicorn on the inherited listening socket (the kernel hands each new connection to one of
them), each worker process runs the copy engine like `snapferry worker`. They share nothing
but the database and the block store, which is why this needs PostgreSQL to scale (SQLite
takes one writer at a time) and works on any engine.

The parent restarts a child that dies, forwards SIGTERM/SIGINT to all and exits once they
have. Children die with the parent (PR_SET_PDEATHSIG), so a `kill -9` of the parent leaves
no process behind holding the port.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import socket
import sys
import threading
import time

from snapferry.config import Settings
from snapferry.domain.clock import Clock

log = logging.getLogger("snapferry.supervisor")
RESPAWN_PAUSE = 1.0  # seconds between restarts of a child that keeps dying
_PR_SET_PDEATHSIG = 1


def _die_with_parent(parent: int) -> None:
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: the parent's SIGTERM still reaches us
        return
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


def run_api(settings: Settings, sock: socket.socket, startup: bool,
            clock: Clock | None = None) -> int:
    """One API process on an already listening socket; returns its exit code. `clock`: the
    parent's (a test's shifted clock), else the system's."""
    import uvicorn

    from snapferry.server import App, Dispatcher
    from snapferry.serving import uvicorn_config
    from snapferry.storage.datadir import open_storage

    storage = open_storage(settings)
    app = App(Dispatcher(storage, settings, clock), settings.max_body_bytes,
              body_timeout=settings.connections.body_timeout, startup=startup)
    server = uvicorn.Server(uvicorn_config(app, settings))
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: setattr(server, "should_exit", True))
    server.run(sockets=[sock])
    return 0


def run_worker(settings: Settings, announce: bool = True, clock: Clock | None = None) -> int:
    """Copy workers until SIGTERM/SIGINT (`snapferry worker`, or a child of serve)."""
    from snapferry.domain.clock import SystemClock
    from snapferry.engine.copier import Copier
    from snapferry.services.keyring import KeyRing
    from snapferry.storage.datadir import open_storage

    storage = open_storage(settings)
    clock = clock or SystemClock()
    copier = Copier(storage, KeyRing(storage.box, clock), clock, settings.copies)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    copier.start(settings.copies.workers or 1)
    if announce:
        print(f"snapferry worker {copier.owner} copying for {settings.data_dir}", flush=True)
    stop.wait()
    copier.stop()
    storage.close()
    return 0


def supervise(settings: Settings, sock: socket.socket, api: int, workers: int,
              worker_settings: Settings | None = None, clock: Clock | None = None) -> int:
    """Fork `api` API processes (with `settings`) and `workers` worker processes (with
    `worker_settings`); keep them running until told to stop. The caller has bound `sock`
    and done the start-up work. `clock`: every child's (serve's --clock-offset-file)."""
    parent = os.getpid()
    children: dict[int, str] = {}
    stopping = threading.Event()

    def spawn(kind: str) -> None:
        pid = os.fork()
        if pid:
            children[pid] = kind
            return
        code = 1
        try:
            _die_with_parent(parent)
            for signum in (signal.SIGINT, signal.SIGTERM):
                signal.signal(signum, signal.SIG_DFL)
            if kind == "api":
                code = run_api(settings, sock, startup=False, clock=clock)
            else:
                sock.close()
                code = run_worker(worker_settings or settings, announce=False, clock=clock)
        except BaseException:
            log.exception("snapferry %s process failed", kind)
        finally:
            sys.stdout.flush()
            os._exit(code)

    def on_signal(*_: object) -> None:
        stopping.set()
        for pid in list(children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, on_signal)
    for _ in range(api):
        spawn("api")
    for _ in range(workers):
        spawn("worker")
    # The parent keeps the socket (never accepting on it) to give it to a restarted child.
    while children:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        kind = children.pop(pid, None)
        if kind is None or stopping.is_set():
            continue
        log.warning("snapferry %s process %d ended (status %d); starting another",
                    kind, pid, status)
        time.sleep(RESPAWN_PAUSE)
        if not stopping.is_set():
            spawn(kind)
    return 0
