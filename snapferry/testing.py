"""Run a real `snapferry serve` in a subprocess: for the integration tests and benchmarks.

The server picks its own free port (`--port 0`) and prints its URL; we read it from the
first line of its output, so there is no guessing and no sleeping.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from snapferry.config import Settings
    from snapferry.storage.blocks import BlockStore
    from snapferry.wire.http import IncomingRequest

READY_PREFIX = "snapferry listening on "

# The integration suite's engines: `embedded` (SQLite and files in the data dir, one
# process) or `scaleout` (PostgreSQL + SeaweedFS, 2 API processes and 2 worker processes;
# tests/conftest.py starts the engines once per run and names them in SNAPFERRY_TEST_PG and
# SNAPFERRY_TEST_S3).
BACKEND = os.environ.get("SNAPFERRY_TEST_BACKEND", "embedded")
SCALEOUT_API_PROCESSES = 2
SCALEOUT_WORKER_PROCESSES = 2
_prepared: set[str] = set()


def engine_env(data_dir: Path) -> dict[str, str]:
    """The environment that points snapferry at this data dir's engines: nothing for the
    embedded backend; for scaleout, a database and a bucket of its own, named after the data
    dir (made on first use, kept after: a server restarted on the data dir finds its data)."""
    return scaleout_env(data_dir) if BACKEND == "scaleout" else {}


def scaleout_env(data_dir: Path) -> dict[str, str]:
    """engine_env on the scale-out engines, whatever the backend of the run."""
    import hashlib

    name = "sf" + hashlib.sha256(str(Path(data_dir).resolve()).encode()).hexdigest()[:20]
    base, endpoint = os.environ["SNAPFERRY_TEST_PG"], os.environ["SNAPFERRY_TEST_S3"]
    if name not in _prepared:
        _prepare_engines(base, endpoint, name)
        _prepared.add(name)
    # One bucket for the run, a prefix per data dir: SeaweedFS gives every bucket volumes of
    # its own, and a hundred buckets would exhaust a small test store.
    return {"SNAPFERRY_DATABASE_URL": f"{base}/{name}",
            "SNAPFERRY_BLOCK_STORE": f"s3://{TEST_BUCKET}/{name}",
            "SNAPFERRY_S3_ENDPOINT_URL": endpoint,
            "SNAPFERRY_S3_ACCESS_KEY_ID": "snapferry",
            "SNAPFERRY_S3_SECRET_ACCESS_KEY": "snapferry"}


TEST_BUCKET = "snapferry-test"


def _prepare_engines(base: str, endpoint: str, name: str) -> None:
    import boto3
    import psycopg
    from botocore.config import Config

    url = base.replace("postgresql+psycopg://", "postgresql://") + "/postgres"
    with psycopg.connect(url, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() \
                is None:
            conn.execute(f'CREATE DATABASE "{name}"')
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                      aws_access_key_id="snapferry", aws_secret_access_key="snapferry",
                      config=Config(s3={"addressing_style": "path"}))
    try:
        s3.create_bucket(Bucket=TEST_BUCKET)
    except s3.exceptions.BucketAlreadyOwnedByYou:
        pass
    except s3.exceptions.BucketAlreadyExists:
        pass


def scaleout_args(args: Sequence[str]) -> list[str]:
    """`serve` arguments for the scaleout backend: the API in 2 processes and copies in 2
    worker processes (none when the test asks for no copy workers)."""
    args = list(args)
    if "--processes" not in args:
        args += ["--processes", str(SCALEOUT_API_PROCESSES)]
    if "--worker-processes" not in args:
        args += ["--worker-processes", str(SCALEOUT_WORKER_PROCESSES)]
    return args


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
                 env: dict[str, str] | None = None, cwd: Path | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.extra_args = list(extra_args)
        self.env = env
        self.cwd = cwd  # `python -m` imports from here first (bench: an earlier tree)
        self.process: subprocess.Popen[str] | None = None
        self.url = ""
        self.output: list[str] = []

    def start(self, timeout: float | None = None) -> ServerProcess:
        # Only a bound on a server that will never start: on a loaded machine (2 cores shared
        # by many test processes) a healthy start-up has taken over 30 s.
        timeout = timeout or 180.0
        args = scaleout_args(self.extra_args) if BACKEND == "scaleout" else self.extra_args
        command = [sys.executable, "-m", "snapferry.cli", "serve", "--port", "0",
                   "--data-dir", str(self.data_dir), *args]
        self.process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env={**os.environ, **engine_env(self.data_dir), **(self.env or {})},
            cwd=self.cwd,
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


def scaleout_settings(data_dir: Path) -> Settings:
    """Settings for this data dir on the scale-out engines (scaleout_env), in this process:
    the S3 credentials go into os.environ, where the block store reads them."""
    from snapferry.config import Settings

    env = scaleout_env(data_dir)
    os.environ.update({name: value for name, value in env.items() if "_S3_" in name})
    return Settings(data_dir=Path(data_dir), database_url=env["SNAPFERRY_DATABASE_URL"],
                    block_store=env["SNAPFERRY_BLOCK_STORE"],
                    s3_endpoint_url=env["SNAPFERRY_S3_ENDPOINT_URL"])


@contextlib.contextmanager
def block_store_of(data_dir: Path) -> Iterator[BlockStore | None]:
    """This data dir's block store (files or bucket), opened as the server opens it, for an
    audit or a test that tampers with stored objects; None when nothing was stored yet."""
    from snapferry.config import Settings
    from snapferry.storage.datadir import open_block_store

    env = engine_env(data_dir)
    settings = Settings(data_dir=Path(data_dir), block_store=env.get("SNAPFERRY_BLOCK_STORE"),
                        s3_endpoint_url=env.get("SNAPFERRY_S3_ENDPOINT_URL"))
    if settings.block_store is None and not (Path(data_dir) / "blocks").exists():
        yield None
        return
    previous = {name: os.environ.get(name) for name in env}
    os.environ.update(env)  # the store's credentials
    try:
        yield open_block_store(settings)
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def stored_block_keys(data_dir: Path) -> list[str]:
    """The keys of every block object of this data dir's block store (files or bucket),
    listed as an audit would: the service itself never lists the store."""
    with block_store_of(data_dir) as store:
        return [] if store is None else list(store.keys())


def stored_block_contents(data_dir: Path) -> Iterator[tuple[str, bytes]]:
    """(s3://bucket/key, bytes) of every block object in this data dir's bucket on the
    scale-out backend; nothing on the embedded one (its blocks are files in the data dir)."""
    env = engine_env(data_dir)
    if not env:
        return
    from snapferry.storage.blocks.s3 import S3BlockStore

    os.environ.update({name: value for name, value in env.items() if "_S3_" in name})
    store = S3BlockStore(env["SNAPFERRY_BLOCK_STORE"], env["SNAPFERRY_S3_ENDPOINT_URL"])
    for key in store.keys():  # noqa: SIM118 (a block store, not a dict)
        yield f"s3://{store.bucket}/{store.prefix}{key}", store.get(key)


class _Captured(Exception):
    pass


class SignedRequests:
    """boto3's ebs client, signing real requests that are handed back instead of sent, to
    give to a Dispatcher in this process (a profile, or a test without a server)."""

    HOST = "127.0.0.1:4747"

    def __init__(self) -> None:
        import boto3  # here: the server never imports this module's clients

        self.client = boto3.client("ebs", region_name="us-east-1",
                                   endpoint_url=f"http://{self.HOST}",
                                   aws_access_key_id="test", aws_secret_access_key="test")
        self.client.meta.events.register("before-send", self._grab)
        self.last: IncomingRequest | None = None

    def _grab(self, request: Any, **_: Any) -> None:
        from snapferry.wire.http import IncomingRequest

        path, _, query = request.url.split(self.HOST, 1)[1].partition("?")
        headers = {k.lower(): [v if isinstance(v, str) else v.decode()]
                   for k, v in request.headers.items()}
        body = request.body or b""
        body = body.read() if hasattr(body, "read") else body
        body = body.encode() if isinstance(body, str) else bytes(body)
        headers["host"], headers["content-length"] = [self.HOST], [str(len(body))]
        self.last = IncomingRequest(request.method, path, query, headers, body)
        raise _Captured

    def request(self, operation: str, **params: Any) -> IncomingRequest:
        """The signed request `operation` with `params` would send."""
        with contextlib.suppress(_Captured):
            getattr(self.client, operation)(**params)
        assert self.last is not None
        return self.last
