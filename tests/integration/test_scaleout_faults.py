"""Faults of the scale-out configuration (issue 13): a worker process killed mid-copy,
PostgreSQL restarted mid-copy, SeaweedFS restarted mid-copy. Each copy ends `completed` with
every block identical by SHA-256, and the bucket holds exactly the blocks the database
accounts for: nothing lost, nothing leaked.

These tests restart their engines, so they run on engines of their own (one PostgreSQL
cluster and one SeaweedFS for the module), never on the run's shared ones; they run in both
configurations of `make test`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from sqlalchemy import create_engine, select

from snapferry.localengines import LocalPostgres, LocalSeaweed
from snapferry.storage.metadata import block_intents, blocks, copy_jobs, event_counts, manifests
from snapferry.testing import ServerProcess

from .blocks import digests, random_blocks, read_digests, write_snapshot
from .conftest import NO_RETRIES, wait_for

pytestmark = pytest.mark.long(seconds=160)  # scheduled first: tests/conftest.py

SRC, DST = "us-east-1", "eu-west-1"
SIZE = 64  # blocks: 32 MiB
LEASE = ["--copy-lease-seconds", "6"]
SLOW = ["--copy-rate-limit", str(2 * 2**20), *LEASE]  # ~16 s a copy
# A user's SDK set to ride out a storage restart: 503s retried with back-off.
PATIENT = Config(retries={"max_attempts": 12, "mode": "standard"}, connect_timeout=5,
                 read_timeout=60)


class Engines:
    def __init__(self) -> None:
        self.postgres = LocalPostgres().start()  # durable: it is restarted under load
        self.weed = LocalSeaweed().start()
        self.count = 0

    def env(self) -> dict[str, str]:
        """A fresh database and bucket."""
        self.count += 1
        name = f"faults{self.count}"
        return {"SNAPFERRY_DATABASE_URL": self.postgres.create_database(name),
                "SNAPFERRY_BLOCK_STORE": f"s3://{self.weed.create_bucket(name)}",
                "SNAPFERRY_S3_ENDPOINT_URL": self.weed.endpoint,
                "SNAPFERRY_S3_ACCESS_KEY_ID": "snapferry",
                "SNAPFERRY_S3_SECRET_ACCESS_KEY": "snapferry"}


@pytest.fixture(scope="module")
def engines() -> Iterator[Engines]:
    started = Engines()
    yield started
    started.weed.destroy()
    started.postgres.destroy()


def clients(url: str, config: Config = NO_RETRIES) -> tuple[Any, Any, Any]:
    kw = {"endpoint_url": url, "aws_access_key_id": "test", "aws_secret_access_key": "test",
          "config": config}
    return (boto3.client("ebs", region_name=SRC, **kw), boto3.client("ec2", region_name=DST, **kw),
            boto3.client("ebs", region_name=DST, **kw))


def job(env: dict[str, str], snapshot_id: str) -> Any:
    engine = create_engine(env["SNAPFERRY_DATABASE_URL"])
    try:
        with engine.connect() as conn:
            return conn.execute(select(copy_jobs).where(
                copy_jobs.c.snapshot_id == snapshot_id)).one()
    finally:
        engine.dispose()


def assert_bucket_matches_database(env: dict[str, str], weed: LocalSeaweed) -> None:
    """Every object in the bucket has a block row and every manifest's block an object:
    nothing leaked, nothing lost, and no writer's intent left over."""
    engine = create_engine(env["SNAPFERRY_DATABASE_URL"])
    try:
        with engine.connect() as conn:
            rows = set(conn.execute(select(blocks.c.block_id)).scalars())
            referenced = set(conn.execute(select(manifests.c.block_id)).scalars())
            intents = list(conn.execute(select(block_intents.c.block_id)).scalars())
    finally:
        engine.dispose()
    bucket = env["SNAPFERRY_BLOCK_STORE"].removeprefix("s3://")
    stored = set()
    for page in weed.client().get_paginator("list_objects_v2").paginate(Bucket=bucket):
        stored |= {entry["Key"].removeprefix("blocks/") for entry in page.get("Contents", [])}
    assert referenced <= rows
    assert stored == rows, (len(stored - rows), len(rows - stored))
    assert intents == []


def copy_underway(url: str) -> tuple[str, dict[int, bytes], Any]:
    ebs, ec2, _ = clients(url)
    data = random_blocks(list(range(SIZE)))
    source = write_snapshot(ebs, data)
    copy = ec2.copy_snapshot(SourceRegion=SRC, SourceSnapshotId=source)["SnapshotId"]
    return copy, data, ec2


def progress(ec2: Any, snapshot_id: str) -> int:
    return int(ec2.describe_snapshots(SnapshotIds=[snapshot_id])["Snapshots"][0][
        "Progress"].rstrip("%"))


def finished(ec2: Any, snapshot_id: str, timeout: float = 180) -> dict[str, Any]:
    def state() -> str:
        return ec2.describe_snapshots(SnapshotIds=[snapshot_id])["Snapshots"][0]["State"]

    wait_for(lambda: state() != "pending", timeout=timeout, every=0.25)
    return ec2.describe_snapshots(SnapshotIds=[snapshot_id])["Snapshots"][0]


def worker(data_dir: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "snapferry.cli", "worker", "--data-dir", str(data_dir),
         "--copy-workers", "1", *LEASE], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, env={**os.environ, **env})
    assert process.stdout is not None
    line = process.stdout.readline()
    assert line.startswith("snapferry worker "), line
    threading.Thread(target=process.stdout.read, daemon=True).start()  # keep the pipe flowing
    return process


def faults(env: dict[str, str], data_dir: Path, *args: str) -> None:
    """`snapferry faults ...` on this test's engines, as an operator would run it."""
    done = subprocess.run([sys.executable, "-m", "snapferry.cli", "faults", *args,
                           "--data-dir", str(data_dir)], capture_output=True, text=True,
                          timeout=60, env={**os.environ, **env})
    assert done.returncode == 0, done.stderr


def test_a_worker_killed_mid_copy_is_taken_over_after_its_lease(
        engines: Engines, tmp_path: Path) -> None:
    env = engines.env()
    with ServerProcess(tmp_path, ["--processes", "2", "--worker-processes", "0",
                                  "--copy-workers", "0"], env=env) as api:
        copy, data, ec2 = copy_underway(api.url)
        # Held at half way (checkpointed, lease kept) until the rule goes: the kill lands at
        # a known point, whatever the machine's load.
        faults(env, tmp_path, "add", "hold", "--rule-id", "half", "--snapshot-id", copy,
               "--at", "0.5")
        first, second = worker(tmp_path, env), worker(tmp_path, env)
        try:
            wait_for(lambda: job(env, copy).blocks_done == SIZE // 2, timeout=120, every=0.5)
            owner = job(env, copy).lease_owner
            holder, other = ((first, second) if f":{first.pid}:" in owner else (second, first))
            assert f":{holder.pid}:" in owner
            holder.send_signal(signal.SIGKILL)
            holder.wait(30)
            assert job(env, copy).blocks_done == SIZE // 2
            faults(env, tmp_path, "clear", "half")
            done = finished(ec2, copy)
            assert done["State"] == "completed", done.get("StateMessage")
            taken = job(env, copy)
            assert f":{other.pid}:" not in (taken.lease_owner or "")  # released when done
            engine = create_engine(env["SNAPFERRY_DATABASE_URL"])
            with engine.connect() as conn:
                takeovers = conn.execute(select(event_counts.c.value).where(
                    event_counts.c.name == "lease_takeovers")).scalar()
            engine.dispose()
            assert takeovers == 1
        finally:
            for process in (first, second):
                if process.poll() is None:
                    process.send_signal(signal.SIGTERM)
                    assert process.wait(30) == 0
        _, _, read = clients(api.url)
        assert read_digests(read, copy) == digests(data)
    assert_bucket_matches_database(env, engines.weed)


class Describer:
    """DescribeSnapshots in a loop from another thread, through a storage restart, with an
    SDK that retries 5xx: every call must end in an answer."""

    def __init__(self, url: str, snapshot_id: str) -> None:
        _, self.ec2, _ = clients(url, PATIENT)
        self.snapshot_id = snapshot_id
        self.calls = 0
        self.errors: list[BaseException] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                self.ec2.describe_snapshots(SnapshotIds=[self.snapshot_id])
                self.calls += 1
            except BaseException as error:
                self.errors.append(error)

    def finish(self) -> None:
        self.stop.set()
        self.thread.join(120)
        assert self.errors == [] and self.calls > 0


@pytest.mark.parametrize("engine", ["postgresql", "seaweedfs"])
def test_copies_resume_after_a_storage_restart(engines: Engines, tmp_path: Path,
                                               engine: str) -> None:
    env = engines.env()
    with ServerProcess(tmp_path, ["--processes", "2", "--worker-processes", "2", *SLOW],
                       env=env) as api:
        copy, data, ec2 = copy_underway(api.url)
        wait_for(lambda: progress(ec2, copy) >= 10, timeout=60)
        describer = Describer(api.url, copy)
        if engine == "postgresql":
            engines.postgres.restart()
        else:
            engines.weed.restart(graceful=False)  # killed: a crash, not a clean stop
        assert progress(ec2, copy) < 100  # the restart landed mid-copy
        _, patient, read = clients(api.url, PATIENT)
        done = finished(patient, copy)
        describer.finish()
        assert done["State"] == "completed", done.get("StateMessage")
        assert read_digests(read, copy) == digests(data)
    assert_bucket_matches_database(env, engines.weed)
