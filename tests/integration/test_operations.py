"""What operators use around the APIs: Prometheus metrics scraped from the real server (with
copies run by a separate `snapferry worker`), fault rules observed through boto3, and copies
given a minimum duration."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from prometheus_client.parser import text_string_to_metric_families

from snapferry.testing import ServerProcess, engine_env

from .blocks import BLOCK, digests, random_blocks, read_digests, write_snapshot
from .conftest import NO_RETRIES, ClientFactory, run_cli, wait_for
from .http import error_code, signed
from .test_copies import copy_jobs, finished

SRC, DST = "us-east-1", "eu-central-1"
# No retry at all (conftest's NO_RETRIES, max_attempts 1, still allows one retry).
SINGLE_TRY = Config(retries={"mode": "standard", "total_max_attempts": 1})
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(url: str, path: str = "/_snapferry/metrics") -> Samples:
    with urllib.request.urlopen(url + path, timeout=30) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = response.read().decode()
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def clients(url: str, config: Config = NO_RETRIES) -> tuple[Any, Any, Any]:
    kw = {"endpoint_url": url, "aws_access_key_id": "test", "aws_secret_access_key": "test",
          "config": config}
    return (boto3.client("ebs", region_name=SRC, **kw), boto3.client("ec2", region_name=DST, **kw),
            boto3.client("ebs", region_name=DST, **kw))


def test_metrics_count_requests_and_copies_run_by_a_separate_worker(tmp_path: Path) -> None:
    with ServerProcess(tmp_path, ["--copy-workers", "0"]) as api:
        ebs, ec2, _ = clients(api.url)
        before = scrape(api.url)
        ec2.describe_snapshots(OwnerIds=["self"])
        with pytest.raises(ClientError):
            ec2.describe_snapshots(SnapshotIds=["snap-0123456789abcdef0"])
        after = scrape(api.url)
        ok = {"service": "ec2", "operation": "DescribeSnapshots", "status": "200"}
        missing = {**ok, "status": "400"}
        latency = {"service": "ec2", "operation": "DescribeSnapshots"}
        assert value(after, "snapferry_requests_total", **ok) - value(
            before, "snapferry_requests_total", **ok) == 1
        assert value(after, "snapferry_requests_total", **missing) - value(
            before, "snapferry_requests_total", **missing) == 1
        assert value(after, "snapferry_request_duration_seconds_count", **latency) - value(
            before, "snapferry_request_duration_seconds_count", **latency) == 2
        assert value(after, "snapferry_request_duration_seconds_bucket", le="+Inf",
                     **latency) == value(after, "snapferry_request_duration_seconds_count",
                                         **latency)

        blocks = random_blocks([0, 1, 2, 5])
        source = write_snapshot(ebs, blocks)
        copy = ec2.copy_snapshot(SourceRegion=SRC, SourceSnapshotId=source)["SnapshotId"]
        queued = scrape(api.url)
        assert value(queued, "snapferry_copy_queue_depth") == 1
        assert value(queued, "snapferry_copies", state="queued", mode="unplanned") == 1
        assert value(queued, "snapferry_block_store_objects") == 4
        assert value(queued, "snapferry_block_store_bytes") >= 4 * BLOCK
        stored_before = value(queued, "snapferry_block_store_bytes")

        worker = subprocess.Popen([sys.executable, "-m", "snapferry.cli", "worker",
                                   "--data-dir", str(tmp_path)], stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True,
                                  env={**os.environ, **engine_env(tmp_path)})
        try:
            assert finished(ec2, copy)["State"] == "completed"
        finally:
            worker.send_signal(signal.SIGTERM)
            assert worker.wait(timeout=30) == 0
        done = scrape(api.url)
        assert value(done, "snapferry_copy_queue_depth") == 0
        assert value(done, "snapferry_copies", state="queued", mode="unplanned") == 0
        assert value(done, "snapferry_copies", state="completed", mode="full") == 1
        moved = int(copy_jobs(tmp_path)[copy]["bytes"])
        assert moved == 4 * BLOCK
        assert value(done, "snapferry_copy_bytes_moved_total", mode="full") == moved
        assert value(done, "snapferry_block_store_objects") == 8
        assert value(done, "snapferry_block_store_bytes") == 2 * stored_before
        assert value(done, "snapferry_copy_lease_takeovers_total") == 0
        # Today's path is an alias of the same exposition.
        alias = scrape(api.url, "/metrics")
        assert value(alias, "snapferry_copy_bytes_moved_total", mode="full") == moved


def test_request_metrics_label_only_operations_the_model_has(tmp_path: Path) -> None:
    """An Action or X-Amz-Target no model has is counted as operation "unknown": a label set
    per text a client sends would grow the process's metrics without bound."""
    with ServerProcess(tmp_path) as api:
        before = scrape(api.url)
        for number in range(3):
            assert error_code(signed(api.url, f"Action=NoSuchCall{number}&Version=2016-11-15"
                                     .encode())) == "InvalidAction"
        kms = signed(api.url, b"{}", service="kms", content_type="application/x-amz-json-1.1",
                     extra_headers={"X-Amz-Target": "TrentService.NoSuchCall"})
        assert (kms.status, json.loads(kms.body)["__type"]) == (400,
                                                                "UnknownOperationException")
        after = scrape(api.url)
        names = {dict(labels).get("operation") for _, labels in after}
        assert not any(str(name).startswith("NoSuchCall") for name in names)
        for service, count in (("ec2", 3), ("kms", 1)):
            unknown = {"service": service, "operation": "unknown", "status": "400"}
            assert value(after, "snapferry_requests_total", **unknown) - value(
                before, "snapferry_requests_total", **unknown) == count


def test_lease_takeovers_are_counted_across_processes(tmp_path: Path) -> None:
    """A server stopped cleanly hands its copy back (no takeover); a killed one's copy is
    taken over by the next server once its lease runs out: exactly one takeover. Each
    interruption lands at a known point: a hold rule stops the copy there (checkpointed,
    lease kept) until it is removed, so no timing decides where a server stops."""
    size = 64  # blocks; held at 16, then at 32
    lease = ["--copy-lease-seconds", "6"]
    first = ServerProcess(tmp_path, lease).start()
    ebs, ec2, _ = clients(first.url)
    source = write_snapshot(ebs, random_blocks(list(range(size))))
    faults("add", "hold", "--rule-id", "hold", "--snapshot-id", source, "--at", "0.25",
           data_dir=tmp_path)
    assert (f"hold  hold      snapshot={source}: hold at 25% until removed"
            in faults("list", data_dir=tmp_path))
    copy = ec2.copy_snapshot(SourceRegion=SRC, SourceSnapshotId=source)["SnapshotId"]

    def done() -> int:
        progress = copy_jobs(tmp_path)[copy]["progress"]
        return 0 if progress == "-" else int(progress.split("/")[0])

    wait_for(lambda: done() == 16, timeout=120, every=0.5)
    assert first.stop() == 0
    assert done() == 16  # handed back where it was held
    faults("clear", "hold", data_dir=tmp_path)
    faults("add", "hold", "--rule-id", "hold", "--snapshot-id", source, "--at", "0.5",
           data_dir=tmp_path)
    second = ServerProcess(tmp_path, lease).start()
    wait_for(lambda: done() == 32, timeout=120, every=0.5)
    assert value(scrape(second.url), "snapferry_copy_lease_takeovers_total") == 0
    assert second.process is not None
    second.process.send_signal(signal.SIGKILL)
    second.process.wait(timeout=30)
    assert done() == 32
    faults("clear", "hold", data_dir=tmp_path)
    with ServerProcess(tmp_path, lease) as third:
        _, ec2, _ = clients(third.url)
        assert finished(ec2, copy, timeout=120)["State"] == "completed"
        assert value(scrape(third.url), "snapferry_copy_lease_takeovers_total") == 1


def faults(*args: str, data_dir: Path) -> str:
    done = run_cli("faults", *args, data_dir=data_dir)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_copy_fault_rules_fail_matching_copies_at_their_progress(
        client: ClientFactory, data_dir: Path) -> None:
    ebs, ec2 = client("ebs", region=SRC), client("ec2", region=DST)
    blocks = random_blocks(list(range(20)))
    doomed, spared = write_snapshot(ebs, blocks), write_snapshot(ebs, random_blocks([0, 1]))
    message = "Simulated regional outage (DR drill)."
    faults("add", "copy", "--rule-id", "drill-elsewhere", "--region", "ap-south-1",
           "--fail-at", "0", "--message", "not this one", data_dir=data_dir)
    faults("add", "copy", "--rule-id", "drill", "--snapshot-id", doomed, "--fail-at", "0.5",
           "--message", message, data_dir=data_dir)
    listed = faults("list", data_dir=data_dir)
    assert f"drill  copy      snapshot={doomed}: fail at 50% with {message!r}" in listed
    try:
        failed = ec2.copy_snapshot(SourceRegion=SRC, SourceSnapshotId=doomed)["SnapshotId"]
        other = ec2.copy_snapshot(SourceRegion=SRC, SourceSnapshotId=spared)["SnapshotId"]
        ended = finished(ec2, failed)
        assert ended["State"] == "error"
        assert ended["StateMessage"] == message
        assert ended["Progress"] == "50%"
        assert copy_jobs(data_dir)[failed]["progress"] == "10/20"
        assert finished(ec2, other)["State"] == "completed"  # neither rule matches it
    finally:
        assert "removed 2 fault rule(s)" in faults("clear", data_dir=data_dir)
    assert faults("list", data_dir=data_dir) == ""
    again = ec2.copy_snapshot(SourceRegion=SRC, SourceSnapshotId=doomed)["SnapshotId"]
    assert finished(ec2, again)["State"] == "completed"
    assert read_digests(client("ebs", region=DST), again) == digests(blocks)


def test_throttle_rules_answer_aws_throttling_errors(client: ClientFactory,
                                                     data_dir: Path) -> None:
    faults("add", "throttle", "--rule-id", "slow-ec2", "--service", "ec2", "--operation",
           "DescribeVolumes", "--count", "2", data_dir=data_dir)
    # Exactly three attempts: two throttled, then the answer.
    retrying = client("ec2", config=Config(retries={"mode": "standard",
                                                    "total_max_attempts": 3}))
    answer = retrying.describe_volumes()
    assert answer["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert answer["ResponseMetadata"]["RetryAttempts"] == 2  # both throttles, then success
    assert "0 call(s) left" in faults("list", data_dir=data_dir)

    faults("add", "throttle", "--rule-id", "slow-kms", "--service", "kms", "--operation",
           "ListKeys", "--count", "1", data_dir=data_dir)
    faults("add", "throttle", "--rule-id", "always", "--operation", "DescribeVolumes",
           data_dir=data_dir)
    try:
        with pytest.raises(ClientError) as ec2_error:
            client("ec2", config=SINGLE_TRY).describe_volumes()
        assert ec2_error.value.response["Error"]["Code"] == "RequestLimitExceeded"
        assert ec2_error.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
        with pytest.raises(ClientError) as kms_error:
            client("kms", config=SINGLE_TRY).list_keys()
        assert kms_error.value.response["Error"]["Code"] == "ThrottlingException"
        assert kms_error.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
        client("kms", config=SINGLE_TRY).list_keys()  # the count-limited rule is spent
        client("ec2").describe_snapshots(OwnerIds=["self"])  # other operations unaffected
    finally:
        faults("clear", data_dir=data_dir)
    client("ec2").describe_volumes()


def copy_seconds(ec2: Any, source: str) -> float:
    started = time.monotonic()
    copy = ec2.copy_snapshot(SourceRegion=SRC, SourceSnapshotId=source)["SnapshotId"]
    assert finished(ec2, copy)["State"] == "completed"
    return time.monotonic() - started


def test_copies_take_a_minimum_time_per_gib(tmp_path: Path, client: ClientFactory,
                                            data_dir: Path) -> None:
    blocks = random_blocks(list(range(16)))  # 8 MiB: at 256 s/GiB, at least 2 s
    with ServerProcess(tmp_path, ["--copy-min-seconds-per-gib", "256"]) as paced:
        ebs, ec2, _ = clients(paced.url)
        assert copy_seconds(ec2, write_snapshot(ebs, blocks)) >= 2.0
    # The same from a fault rule, on a server with no minimum of its own.
    source = write_snapshot(client("ebs", region=SRC), blocks)
    faults("add", "copy", "--snapshot-id", source, "--seconds-per-gib", "256",
           data_dir=data_dir)
    try:
        assert copy_seconds(client("ec2", region=DST), source) >= 2.0
    finally:
        faults("clear", data_dir=data_dir)

