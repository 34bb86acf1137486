"""Run a real `snapferry serve` in a subprocess: for the integration tests and benchmarks.

The server picks its own free port (`--port 0`) and prints its URL; we read it from the
first line of its output, so there is no guessing and no sleeping.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

READY_PREFIX = "snapferry listening on "


def offset_reader(path: str) -> Callable[[], float]:
    """Seconds to move a test server's clock by: the number in `path` (0 while absent),
    read again whenever the file is replaced (see shift_clock)."""
    file = Path(path)
    seen: list[tuple[tuple[int, int], float]] = []

    def offset() -> float:
        try:
            status = file.stat()
            stamp = (status.st_ino, status.st_mtime_ns)
        except FileNotFoundError:
            return 0.0
        if not seen or seen[0][0] != stamp:
            seen[:] = [(stamp, float(file.read_text().strip() or 0))]
        return seen[0][1]

    return offset


def shift_clock(path: Path, seconds: float) -> None:
    """Move a server started with --clock-offset-file to `seconds` ahead (a new file, so
    the server sees the change at once)."""
    temporary = path.with_suffix(".new")
    temporary.write_text(str(seconds))
    os.replace(temporary, path)


class ServerProcess:
    def __init__(self, data_dir: Path, extra_args: Sequence[str] = (),
                 env: dict[str, str] | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.extra_args = list(extra_args)
        self.env = env
        self.process: subprocess.Popen[str] | None = None
        self.url = ""
        self.output: list[str] = []

    def start(self, timeout: float = 30) -> ServerProcess:
        command = [sys.executable, "-m", "snapferry.cli", "serve", "--port", "0",
                   "--data-dir", str(self.data_dir), *self.extra_args]
        self.process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env={**os.environ, **(self.env or {})},
        )
        ready = threading.Event()

        def pump() -> None:
            assert self.process is not None and self.process.stdout is not None
            for line in self.process.stdout:
                self.output.append(line)
                if line.startswith(READY_PREFIX):
                    self.url = line[len(READY_PREFIX):].strip()
                    ready.set()
            ready.set()  # the process ended: wake the waiter either way

        threading.Thread(target=pump, daemon=True).start()
        if not ready.wait(timeout) or not self.url:
            self.kill()
            raise RuntimeError("snapferry did not start:\n" + "".join(self.output))
        return self

    def stop(self, timeout: float = 20) -> int:
        """SIGTERM, as a service manager would; returns the exit code."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        try:
            self.stop()
        finally:
            self.kill()
