"""A kill -9 harness: a real `snapferry serve` and a separate `snapferry worker`, killed with
SIGKILL at random moments of EBS direct writes, copies and deletes.

Each cycle starts a few client operations at once (write a snapshot, copy one, delete one),
kills the server, the worker or both at a random moment, restarts what it killed, and lets
every operation finish (the client retries as a backup tool would: StartSnapshot by its
ClientToken, a copy found again by its Description, a delete until NotFound). Then it checks
the whole store:
- lost: a snapshot the client was told is completed (or saw completed) that is gone, not
  completed, or has a block that cannot be read;
- torn: a completed snapshot whose blocks differ from what the client wrote (SHA-256);
- stuck: a snapshot still pending once everything had time to finish;
- orphans: objects that nothing accounts for (no block row and no writer's intent) and block
  rows whose object is missing.
After the last cycle everything is stopped cleanly and the server started once with no grace
period, so that what crashed writers left is collected; the final orphan count (objects with
no row, rows with no object, intents left) is taken after that clean stop.

`python -m tests.crash.harness --cycles 100` prints the figures (`make crash`); a short run
is a pytest test (tests/crash/test_crash.py).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from snapferry.testing import ServerProcess

BLOCK = 524288
SRC, DST = "us-east-1", "eu-central-1"
LEASE = "1"
GRACE = "2"  # seconds: crashed writers' objects are collected while the harness runs
CLIENT = Config(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=3,
                read_timeout=20)
FINISH_SECONDS = 90.0
LIVE_SNAPSHOTS = 6  # past this many, each cycle deletes one


class Interrupted(Exception):
    """The server went away under a client call: retry after the restart."""


@dataclass
class Figures:
    cycles: int = 0
    kills: dict[str, int] = field(default_factory=lambda: {"serve": 0, "worker": 0})
    lost: int = 0
    torn: int = 0
    stuck: int = 0
    orphan_objects: int = 0  # objects with no block row and no intent, summed over cycles
    missing_objects: int = 0  # block rows with no object, summed over cycles
    final_orphan_objects: int = -1  # after the clean stop
    final_missing_objects: int = -1
    final_intents: int = -1
    snapshots_checked: int = 0
    blocks_checked: int = 0
    problems: list[str] = field(default_factory=list)

    def clean(self) -> bool:
        return (self.lost == self.torn == self.stuck == self.orphan_objects
                == self.missing_objects == self.final_orphan_objects
                == self.final_missing_objects == self.final_intents == 0)

    def report(self) -> str:
        return "\n".join([
            f"cycles: {self.cycles}  kills: serve {self.kills['serve']}, "
            f"worker {self.kills['worker']}",
            f"snapshots checked: {self.snapshots_checked}  blocks checked: "
            f"{self.blocks_checked}",
            f"lost: {self.lost}  torn: {self.torn}  stuck: {self.stuck}",
            f"orphans during the run: {self.orphan_objects} objects with no row, "
            f"{self.missing_objects} rows with no object",
            f"after a clean stop: {self.final_orphan_objects} objects with no row, "
            f"{self.final_missing_objects} rows with no object, {self.final_intents} "
            "intents left",
            *[f"  problem: {problem}" for problem in self.problems[:20]],
        ])


def checksum(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


@dataclass
class Snap:
    region: str
    snapshot_id: str | None
    digests: dict[int, str]  # what the client wrote (or the copy's source holds)
    acknowledged: bool = False  # the client was told (or saw) it completed
    deleted: bool = False


class Cluster:
    """The server and one separate worker process on one data dir."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.server: ServerProcess | None = None
        self.worker: subprocess.Popen[bytes] | None = None

    def start_server(self, grace: str = GRACE, workers: str = "1") -> None:
        self.server = ServerProcess(self.data_dir, [
            "--copy-workers", workers, "--copy-lease-seconds", LEASE,
            "--orphan-grace-seconds", grace]).start(timeout=60)

    def start_worker(self) -> None:
        self.worker = subprocess.Popen(
            [sys.executable, "-m", "snapferry.cli", "worker", "--data-dir",
             str(self.data_dir), "--copy-workers", "1", "--copy-lease-seconds", LEASE],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def kill(self, which: str) -> None:
        process = (self.server.process if which == "serve" and self.server else
                   self.worker if which == "worker" else None)
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGKILL)
            process.wait(30)

    def stop(self) -> None:
        if self.worker is not None and self.worker.poll() is None:
            self.worker.send_signal(signal.SIGTERM)
            self.worker.wait(60)
        if self.server is not None:
            code = self.server.stop(60)
            assert code == 0, f"serve exited {code}: " + "".join(self.server.output)

    def client(self, service: str, region: str) -> Any:
        assert self.server is not None
        return boto3.client(service, region_name=region, endpoint_url=self.server.url,
                            aws_access_key_id="test", aws_secret_access_key="test",
                            config=CLIENT)


def call(function: Any, **kwargs: Any) -> Any:
    try:
        return function(**kwargs)
    except (BotoCoreError, ConnectionError) as error:
        raise Interrupted(str(error)) from error
    except ClientError as error:
        if error.response["ResponseMetadata"].get("HTTPStatusCode", 0) >= 500:
            raise Interrupted(str(error)) from error
        raise


class Harness:
    def __init__(self, data_dir: Path, seed: int) -> None:
        self.cluster = Cluster(data_dir)
        self.random = random.Random(seed)
        self.figures = Figures()
        self.snaps: list[Snap] = []
        self.lock = threading.Lock()

    # ---- client operations, each resumable after a crash -------------------------------

    def write(self, token: str, blocks: dict[int, bytes], snap: Snap) -> None:
        ebs = self.cluster.client("ebs", SRC)
        started = call(ebs.start_snapshot, VolumeSize=1, ClientToken=token, Timeout=60)
        snap.snapshot_id = started["SnapshotId"]
        state = self._state(SRC, snap.snapshot_id)
        if state == "completed":
            snap.acknowledged = True
            return
        for index, data in blocks.items():
            call(ebs.put_snapshot_block, SnapshotId=snap.snapshot_id, BlockIndex=index,
                 BlockData=data, DataLength=BLOCK, Checksum=checksum(data),
                 ChecksumAlgorithm="SHA256")
        status = call(ebs.complete_snapshot, SnapshotId=snap.snapshot_id,
                      ChangedBlocksCount=len(blocks))["Status"]
        snap.acknowledged = status == "completed"

    def copy(self, source: Snap, snap: Snap, description: str, encrypted: bool) -> None:
        ec2 = self.cluster.client("ec2", snap.region)
        if snap.snapshot_id is None:  # the request may have landed before the crash
            found = call(ec2.describe_snapshots, OwnerIds=["self"], Filters=[
                {"Name": "description", "Values": [description]}])["Snapshots"]
            if found:
                snap.snapshot_id = found[0]["SnapshotId"]
            else:
                args: dict[str, Any] = {"SourceRegion": source.region,
                                        "SourceSnapshotId": source.snapshot_id,
                                        "Description": description}
                if encrypted:
                    args["Encrypted"] = True
                snap.snapshot_id = call(ec2.copy_snapshot, **args)["SnapshotId"]
        deadline = time.monotonic() + FINISH_SECONDS
        while (state := self._state(snap.region, snap.snapshot_id)) == "pending":
            if time.monotonic() > deadline:
                return  # counted as stuck by the check
            time.sleep(0.05)  # polling an observable state
        snap.acknowledged = state == "completed"
        if state != "completed":
            self.figures.problems.append(f"copy {snap.snapshot_id} ended {state}")

    def delete(self, snap: Snap) -> None:
        ec2 = self.cluster.client("ec2", snap.region)
        try:
            call(ec2.delete_snapshot, SnapshotId=snap.snapshot_id)
        except ClientError as error:
            if error.response["Error"]["Code"] != "InvalidSnapshot.NotFound":
                raise
        snap.deleted = True

    def _state(self, region: str, snapshot_id: str | None) -> str | None:
        ec2 = self.cluster.client("ec2", region)
        try:
            found = call(ec2.describe_snapshots, SnapshotIds=[snapshot_id])["Snapshots"]
        except ClientError as error:
            if error.response["Error"]["Code"] == "InvalidSnapshot.NotFound":
                return None
            raise
        return found[0]["State"] if found else None

    # ---- one cycle --------------------------------------------------------------------

    def cycle(self) -> None:
        live = [s for s in self.snaps if s.acknowledged and not s.deleted]
        tasks: list[Any] = []
        blocks = {index: os.urandom(BLOCK)
                  for index in self.random.sample(range(2048), self.random.randint(2, 10))}
        written = Snap(SRC, None, {i: hashlib.sha256(d).hexdigest() for i, d in blocks.items()})
        token = uuid.uuid4().hex
        self.snaps.append(written)
        tasks.append(lambda: self.write(token, blocks, written))
        sources = [s for s in live if s.region == SRC]
        if sources:
            source = self.random.choice(sources)
            encrypted = self.random.random() < 0.4
            region = SRC if encrypted and self.random.random() < 0.5 else DST
            copied = Snap(region, None, dict(source.digests))
            self.snaps.append(copied)
            description = f"harness-copy-{uuid.uuid4().hex}"
            tasks.append(lambda: self.copy(source, copied, description, encrypted))
            busy = {id(source)}
        else:
            busy = set()
        doomed = [s for s in live if id(s) not in busy]
        # Delete as many as this cycle adds, past LIVE_SNAPSHOTS: the store stays small.
        for victim in self.random.sample(doomed, min(len(doomed), len(tasks),
                                                     max(0, len(live) + 2 - LIVE_SNAPSHOTS))):
            tasks.append(lambda victim=victim: self.delete(victim))

        began = time.monotonic()
        threads = self._run(tasks)
        time.sleep(self.random.uniform(0.0, 1.2))  # a random phase of the work to kill in
        victims = self.random.choice([["serve"], ["worker"], ["serve", "worker"]])
        for which in victims:
            self.cluster.kill(which)
            self.figures.kills[which] += 1
        failed = [task for task, thread in threads if thread.join(120) or thread.failed]
        for which in victims:
            (self.cluster.start_server if which == "serve" else self.cluster.start_worker)()
        attempts = 0
        while failed:  # finish what the crash interrupted, as a client would
            attempts += 1
            if attempts > 20:
                self.figures.problems.append("operations never finished")
                break
            failed = [task for task, thread in self._run(failed)
                      if thread.join(FINISH_SECONDS + 30) or thread.failed]
        finished = time.monotonic()
        self.check()
        if os.environ.get("CRASH_DEBUG"):
            print(f"cycle {self.figures.cycles}: killed {victims}, ops "
                  f"{finished - began:.1f} s, check {time.monotonic() - finished:.1f} s",
                  flush=True)
        self.figures.cycles += 1

    def _run(self, tasks: list[Any]) -> list[tuple[Any, Any]]:
        started = []
        for task in tasks:
            thread = _Task(task)
            thread.start()
            started.append((task, thread))
        return started

    # ---- the checks -------------------------------------------------------------------

    def check(self) -> None:
        figures = self.figures
        for snap in self.snaps:
            if snap.deleted or snap.snapshot_id is None:
                continue
            state = self._state(snap.region, snap.snapshot_id)
            if state == "pending":
                figures.stuck += 1
                figures.problems.append(f"stuck: {snap.snapshot_id}")
                continue
            if state != "completed":
                if snap.acknowledged:
                    figures.lost += 1
                    figures.problems.append(f"lost: {snap.snapshot_id} is {state}")
                continue
            snap.acknowledged = True
            figures.snapshots_checked += 1
            read = self._read(snap)
            figures.blocks_checked += len(read)
            if any(digest is None for digest in read.values()):
                figures.lost += 1
                figures.problems.append(f"lost: a block of {snap.snapshot_id} is unreadable")
            elif read != snap.digests:
                figures.torn += 1
                figures.problems.append(f"torn: {snap.snapshot_id}")
        objects, missing = audit(self.cluster.data_dir)
        figures.orphan_objects += objects
        figures.missing_objects += missing
        if objects or missing:
            figures.problems.append(f"cycle {figures.cycles}: {objects} objects with no row, "
                                    f"{missing} rows with no object")

    def _read(self, snap: Snap) -> dict[int, str | None]:
        ebs = self.cluster.client("ebs", snap.region)
        found: dict[int, str | None] = {}
        args: dict[str, Any] = {"SnapshotId": snap.snapshot_id}
        while True:
            page = call(ebs.list_snapshot_blocks, **args)
            for block in page["Blocks"]:
                try:
                    data = call(ebs.get_snapshot_block, SnapshotId=snap.snapshot_id,
                                BlockIndex=block["BlockIndex"],
                                BlockToken=block["BlockToken"])["BlockData"].read()
                    found[block["BlockIndex"]] = hashlib.sha256(data).hexdigest()
                except (Interrupted, ClientError):
                    found[block["BlockIndex"]] = None
            if not page.get("NextToken"):
                return found
            args["NextToken"] = page["NextToken"]

    # ---- the whole run ----------------------------------------------------------------

    def run(self, cycles: int) -> Figures:
        self.cluster.start_server()
        self.cluster.start_worker()
        try:
            for _ in range(cycles):
                self.cycle()
            self.cluster.stop()
            # What crashed writers left is collected at start-up once its grace has passed:
            # a grace of 0 here, with every writer stopped.
            self.cluster.start_server(grace="0", workers="0")
            self.cluster.stop()
            objects, missing = audit(self.cluster.data_dir)
            self.figures.final_orphan_objects = objects
            self.figures.final_missing_objects = missing
            self.figures.final_intents = intents_left(self.cluster.data_dir)
        finally:
            self.cluster.kill("worker")
            self.cluster.kill("serve")
        return self.figures


class _Task(threading.Thread):
    def __init__(self, task: Any) -> None:
        super().__init__(daemon=True)
        self.task = task
        self.failed = False

    def run(self) -> None:
        try:
            self.task()
        except Interrupted:
            self.failed = True
        except ClientError as error:  # e.g. InvalidSnapshot.InUse: try again next round
            self.failed = error.response["Error"]["Code"] not in ("InvalidSnapshot.NotFound",)


def _objects(data_dir: Path) -> set[str]:
    return {path.name for path in (data_dir / "blocks").glob("??/*") if len(path.name) == 64}


def _database(data_dir: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{data_dir / 'metadata.sqlite3'}?mode=ro", uri=True,
                           timeout=30)


def audit(data_dir: Path) -> tuple[int, int]:
    """Objects with no block row and no intent; block rows with no object. Each is checked
    again after the listing, so that a collector deleting a row and its object in one
    transaction at that moment is not miscounted."""
    objects = _objects(data_dir)
    with _database(data_dir) as db:
        rows = {row[0] for row in db.execute("SELECT block_id FROM blocks")}
        intents = {row[0] for row in db.execute("SELECT block_id FROM block_intents")}
    unaccounted = [key for key in objects - rows - intents
                   if (data_dir / "blocks" / key[:2] / key).exists()]
    missing = rows - objects
    if missing:
        with _database(data_dir) as db:
            still = {row[0] for row in db.execute("SELECT block_id FROM blocks")}
        missing = {key for key in missing & still
                   if not (data_dir / "blocks" / key[:2] / key).exists()}
    return len(unaccounted), len(missing)


def intents_left(data_dir: Path) -> int:
    with _database(data_dir) as db:
        return db.execute("SELECT count(*) FROM block_intents").fetchone()[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=100)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--data-dir", help="default: a new temporary directory")
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(2**32)
    data_dir = Path(args.data_dir or tempfile.mkdtemp(prefix="snapferry-crash-"))
    os.environ.setdefault("AWS_CONFIG_FILE", os.devnull)
    os.environ.setdefault("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    started = time.monotonic()
    figures = Harness(data_dir, seed).run(args.cycles)
    print(f"seed: {seed}  data dir: {data_dir}  time: {time.monotonic() - started:.0f} s")
    print(figures.report())
    return 0 if figures.clean() else 1


if __name__ == "__main__":
    sys.exit(main())
