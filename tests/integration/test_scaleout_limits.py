"""Limits that must hold across processes on the scale-out engines (issue 13, item 4): the
copy quota, counted by two API processes at once, and the time-based copies' region-pair
rate, paid by two worker processes at once. Both are kept in PostgreSQL, not per process."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from sqlalchemy import create_engine, select

from snapferry.storage.metadata import copy_jobs
from snapferry.testing import ServerProcess, scaleout_env

from .blocks import random_blocks, write_snapshot
from .conftest import NO_RETRIES, wait_for

pytestmark = pytest.mark.long(seconds=70)  # scheduled first: tests/conftest.py

SRC, DST = "us-east-1", "eu-west-1"
MIB = 2**20


def clients(url: str) -> tuple[Any, Any]:
    kw = {"endpoint_url": url, "aws_access_key_id": "test", "aws_secret_access_key": "test",
          "config": NO_RETRIES}
    return boto3.client("ebs", region_name=SRC, **kw), boto3.client("ec2", region_name=DST, **kw)


def test_two_api_processes_admit_no_more_copies_than_the_quota(
        scaleout_engines: object, tmp_path: Path) -> None:
    env = scaleout_env(tmp_path)
    with ServerProcess(tmp_path, ["--processes", "2", "--worker-processes", "0",
                                  "--copy-workers", "0", "--copy-quota", "3"], env=env) as api:
        ebs, _ = clients(api.url)
        sources = [write_snapshot(ebs, random_blocks([0])) for _ in range(12)]
        admitted: list[str] = []
        refused: list[str] = []
        gate = threading.Barrier(len(sources))

        def request(source: str) -> None:
            _, ec2 = clients(api.url)  # a connection each: both processes get some
            gate.wait(30)
            try:
                admitted.append(ec2.copy_snapshot(SourceRegion=SRC,
                                                  SourceSnapshotId=source)["SnapshotId"])
            except ClientError as error:
                refused.append(error.response["Error"]["Code"])

        threads = [threading.Thread(target=request, args=(s,)) for s in sources]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        assert len(admitted) == 3, admitted
        assert refused == ["ResourceLimitExceeded"] * 9


def test_two_worker_processes_share_the_region_pair_rate(
        scaleout_engines: object, tmp_path: Path) -> None:
    """Two time-based copies of 4 MiB, one in each worker process, on a pair capped at
    1 MiB/s: together they take 8 s or more (per process, each would take 4 s)."""
    env = scaleout_env(tmp_path)
    with ServerProcess(tmp_path, ["--copy-workers", "0"], env=env) as api:
        ebs, ec2 = clients(api.url)
        sources = [write_snapshot(ebs, random_blocks(list(range(8)))) for _ in range(2)]
        workers = [subprocess.Popen(
            [sys.executable, "-m", "snapferry.cli", "worker", "--data-dir", str(tmp_path),
             "--copy-workers", "1", "--copy-time-based-pair-rate", str(MIB)],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
            env={**os.environ, **env})
            for _ in range(2)]
        try:
            for process in workers:  # both copying before the copies are asked for
                assert process.stdout is not None
                assert process.stdout.readline().startswith("snapferry worker")
            copies = [ec2.copy_snapshot(SourceRegion=SRC, SourceSnapshotId=source,
                                        CompletionDurationMinutes=15)["SnapshotId"]
                      for source in sources]

            def states() -> set[str]:
                return {s["State"] for s in ec2.describe_snapshots(SnapshotIds=copies)[
                    "Snapshots"]}

            wait_for(lambda: states() == {"completed"}, timeout=180, every=0.25)
        finally:
            for worker in workers:
                worker.send_signal(signal.SIGTERM)
            for worker in workers:
                worker.wait(30)
    engine = create_engine(env["SNAPFERRY_DATABASE_URL"])
    with engine.connect() as conn:
        rows = conn.execute(select(copy_jobs.c.started_at, copy_jobs.c.finished_at)).all()
    engine.dispose()
    starts = [row.started_at for row in rows]
    assert len(rows) == 2
    # They ran side by side (in the two processes), not one after the other: the second
    # started before the first finished (no bound on how soon: the machine may be loaded)...
    assert max(starts) < min(row.finished_at for row in rows)
    # ...and still took the pair's 8 MiB at 1 MiB/s.
    assert max(row.finished_at for row in rows) - min(starts) >= dt.timedelta(seconds=7.5)
