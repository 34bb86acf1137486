"""Fault rules from `--faults-file`, changed while the server runs, and rules that name an
image: all observed through boto3."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from botocore.config import Config

from snapferry.testing import ServerProcess

from .blocks import random_blocks, write_snapshot
from .conftest import ClientFactory, run_cli, wait_for
from .test_copies import finished
from .test_copy_image import settled, two_disk_image

# Several API processes refuse --faults-file (cli.py); they read `snapferry faults` rules.
pytestmark = pytest.mark.embedded_only("the faults file is watched by a single-process serve")

SRC, DST = "us-east-1", "ap-northeast-1"
FAILED_IMAGE = "Copy image failed with an internal error"


def write_atomically(path: Path, text: str) -> None:
    """As an editor saves: a new file moved over the old one, never read half-written."""
    temp = path.with_name(path.name + ".tmp")
    temp.write_text(text)
    os.replace(temp, path)


@pytest.fixture(scope="module")
def faults_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("faults") / "faults.toml"
    path.write_text("# no rules yet\n")
    return path


@pytest.fixture(scope="module")
def server(data_dir: Path, faults_path: Path) -> Iterator[ServerProcess]:
    with ServerProcess(data_dir, ["--faults-file", str(faults_path)]) as process:
        yield process


@pytest.fixture(autouse=True)
def no_rules(faults_path: Path, data_dir: Path) -> Iterator[None]:
    """Each test starts and ends with no rule, from the file or the CLI."""
    yield
    write_atomically(faults_path, "")
    assert run_cli("faults", "clear", data_dir=data_dir).returncode == 0
    wait_for(lambda: listed(data_dir) == "")


def listed(data_dir: Path) -> str:
    done = run_cli("faults", "list", data_dir=data_dir)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_files_rules_apply_and_change_while_running(
        client: ClientFactory, faults_path: Path, data_dir: Path) -> None:
    ebs, ec2 = client("ebs", region=SRC), client("ec2", region=DST)
    source = write_snapshot(ebs, random_blocks(list(range(8))))
    write_atomically(faults_path, f"""
[[copy]]
id = "drill"
snapshot_id = "{source}"
fail_at = 0.5
message = "Simulated outage from the faults file."
""")
    wait_for(lambda: "file:drill" in listed(data_dir))
    assert f"snapshot={source}: fail at 50%" in listed(data_dir)
    copy = ec2.copy_snapshot(SourceRegion=SRC, SourceSnapshotId=source)["SnapshotId"]
    ended = finished(ec2, copy)
    assert (ended["State"], ended["StateMessage"]) == (
        "error", "Simulated outage from the faults file.")

    # Changed while running: the copy rule goes, a throttle rule comes.
    write_atomically(faults_path, """
[[throttle]]
service = "ec2"
operation = "DescribeVolumes"
count = 2
""")
    wait_for(lambda: "file:throttle-1" in listed(data_dir))
    assert "file:drill" not in listed(data_dir)
    retrying = client("ec2", config=Config(retries={"mode": "standard",
                                                    "total_max_attempts": 3}))
    answer = retrying.describe_volumes()
    assert answer["ResponseMetadata"]["RetryAttempts"] == 2  # two throttled, then success
    again = ec2.copy_snapshot(SourceRegion=SRC, SourceSnapshotId=source)["SnapshotId"]
    assert finished(ec2, again)["State"] == "completed"


def test_a_bad_file_keeps_the_last_good_rules_and_cli_rules_stay(
        client: ClientFactory, faults_path: Path, data_dir: Path,
        server: ServerProcess) -> None:
    added = run_cli("faults", "add", "throttle", "--rule-id", "by-hand", "--operation",
                    "DescribeKeyPairs", data_dir=data_dir)
    assert added.returncode == 0, added.stderr
    write_atomically(faults_path, '[[throttle]]\nid = "good"\noperation = "DescribeImages"\n')
    wait_for(lambda: "file:good" in listed(data_dir))
    write_atomically(faults_path, '[[throttle]]\nid = "bad"\noperation = "X"\nfraction = 2\n')
    wait_for(lambda: any("--fraction" in line for line in server.output))
    rules = listed(data_dir)
    assert "file:good" in rules and "file:bad" not in rules and "by-hand" in rules
    # The file's rules are replaced as a set; the CLI's are not touched.
    write_atomically(faults_path, "")
    wait_for(lambda: "file:good" not in listed(data_dir))
    assert "by-hand" in listed(data_dir)
    refused = run_cli("faults", "add", "throttle", "--rule-id", "file:mine", "--operation",
                      "X", data_dir=data_dir)
    assert refused.returncode == 2 and "faults file" in refused.stderr


def test_a_bad_file_at_start_stops_the_server(tmp_path: Path) -> None:
    path = tmp_path / "faults.toml"
    path.write_text('[[copy]]\nsnapshot_id = "snap-1"\nimage_id = "ami-1"\nfail_at = 0.1\n'
                    'message = "m"\n')
    started = subprocess.run(
        [sys.executable, "-m", "snapferry.cli", "serve", "--port", "0", "--data-dir",
         str(tmp_path / "data"), "--faults-file", str(path)],
        capture_output=True, text=True, timeout=60)
    assert started.returncode == 2
    assert "a snapshot_id or an image_id, not both" in started.stderr
    assert "listening" not in started.stdout


def test_several_processes_refuse_the_file_and_say_what_to_use(tmp_path: Path) -> None:
    path = tmp_path / "faults.toml"
    path.write_text("")
    started = subprocess.run(
        [sys.executable, "-m", "snapferry.cli", "serve", "--port", "0", "--data-dir",
         str(tmp_path / "data"), "--processes", "2", "--faults-file", str(path)],
        capture_output=True, text=True, timeout=60)
    assert started.returncode == 2
    assert "snapferry faults add" in started.stderr
    assert "listening" not in started.stdout


def test_an_image_rule_fails_every_snapshot_copy_of_its_image_copies(
        client: ClientFactory, data_dir: Path) -> None:
    here, there = client("ec2", region=SRC), client("ec2", region=DST)
    source, _ = two_disk_image(here, client("ebs", region=SRC),
                               (random_blocks([0, 1, 2, 3]), random_blocks([5, 6])))
    spared, _ = two_disk_image(here, client("ebs", region=SRC),
                               (random_blocks([0]), random_blocks([1])))
    added = run_cli("faults", "add", "copy", "--image-id", source, "--fail-at", "0.5",
                    "--message", "Simulated AMI copy outage.", data_dir=data_dir)
    assert added.returncode == 0, added.stderr
    assert f"image={source}: fail at 50%" in listed(data_dir)
    failed = settled(there, there.copy_image(Name="doomed", SourceImageId=source,
                                             SourceRegion=SRC)["ImageId"])
    assert failed["State"] == "failed"
    assert failed["StateReason"]["Message"] == f"{FAILED_IMAGE}: Simulated AMI copy outage."
    assert settled(there, there.copy_image(Name="spared", SourceImageId=spared,
                                           SourceRegion=SRC)["ImageId"])["State"] == "available"


def test_file_rules_slow_an_image_copy_by_its_source_and_fail_it_by_its_new_id(
        client: ClientFactory, faults_path: Path, data_dir: Path) -> None:
    here, there = client("ec2", region=SRC), client("ec2", region=DST)
    source, _ = two_disk_image(here, client("ebs", region=SRC),
                               (random_blocks(list(range(8))), random_blocks([0])))
    # 4 MiB at 1536 s/GiB: six seconds, time for the second rule to arrive.
    slow = f'[[copy]]\nid = "slow"\nimage_id = "{source}"\nseconds_per_gib = 1536\n'
    write_atomically(faults_path, slow)
    wait_for(lambda: "file:slow" in listed(data_dir))
    copy = there.copy_image(Name="paced", SourceImageId=source, SourceRegion=SRC)["ImageId"]
    write_atomically(faults_path, slow + f'[[copy]]\nid = "named"\nimage_id = "{copy}"\n'
                                         'fail_at = 0\nmessage = "Named by its new id."\n')
    image = settled(there, copy, timeout=50)
    assert image["State"] == "failed"
    assert image["StateReason"]["Message"] == f"{FAILED_IMAGE}: Named by its new id."
