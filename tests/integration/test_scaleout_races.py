"""Read-then-write rules that must hold across API processes on PostgreSQL (READ
COMMITTED): a ClientToken names one resource however many processes receive it at once, a
resource never passes 50 tags, and an API machine that starts leaves alone the volumes a
live machine is creating. Every request here goes to a server of 2 API processes, the same
request from many threads at once (a connection each: both processes get some)."""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from snapferry.domain import volumes as volume_rules
from snapferry.domain.accounts import DEV_ACCOUNT_ID
from snapferry.domain.volumes import Volume
from snapferry.storage import volumes as volume_store
from snapferry.storage.creators import Creating
from snapferry.storage.datadir import open_storage
from snapferry.testing import ServerProcess, scaleout_env, scaleout_settings

from .blocks import random_blocks, write_snapshot
from .conftest import NO_RETRIES, wait_for

REGION, OTHER = "us-east-1", "eu-west-1"
CALLERS = 12


@pytest.fixture
def api(scaleout_engines: object, tmp_path: Path) -> Iterator[ServerProcess]:
    with ServerProcess(tmp_path, ["--processes", "2", "--worker-processes", "0",
                                  "--copy-workers", "0"], env=scaleout_env(tmp_path)) as server:
        yield server


def client(url: str, service: str, region: str = REGION) -> Any:
    return boto3.client(service, region_name=region, endpoint_url=url,
                        aws_access_key_id="test", aws_secret_access_key="test",
                        config=NO_RETRIES)


def at_once(url: str, service: str, call: Callable[[Any, int], Any],
            region: str = REGION) -> tuple[list[Any], list[str]]:
    """`call(client, n)` from CALLERS threads released together: (answers, error codes)."""
    answers: list[Any] = []
    refused: list[str] = []
    gate = threading.Barrier(CALLERS)

    def one(number: int) -> None:
        mine = client(url, service, region)
        gate.wait(60)
        try:
            answers.append(call(mine, number))
        except ClientError as error:
            refused.append(error.response["Error"]["Code"])

    threads = [threading.Thread(target=one, args=(n,)) for n in range(CALLERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return answers, refused


def test_one_client_token_makes_one_volume_and_one_snapshot(api: ServerProcess) -> None:
    token = uuid.uuid4().hex
    volumes, refused = at_once(api.url, "ec2", lambda ec2, _: ec2.create_volume(
        AvailabilityZone=f"{REGION}a", Size=1, ClientToken=token)["VolumeId"])
    assert refused == [] and len(volumes) == CALLERS
    assert len(set(volumes)) == 1
    assert [v["VolumeId"] for v in client(api.url, "ec2").describe_volumes()["Volumes"]] == \
        volumes[:1]
    snapshots, refused = at_once(api.url, "ebs", lambda ebs, _: ebs.start_snapshot(
        VolumeSize=1, ClientToken=token)["SnapshotId"])
    assert refused == [] and len(set(snapshots)) == 1
    found = client(api.url, "ec2").describe_snapshots(OwnerIds=["self"])["Snapshots"]
    assert [s["SnapshotId"] for s in found] == snapshots[:1]


def test_one_client_token_makes_one_image_copy(api: ServerProcess) -> None:
    ebs, ec2 = client(api.url, "ebs"), client(api.url, "ec2")
    root = write_snapshot(ebs, random_blocks([0]))
    source = ec2.register_image(
        Name=f"source-{uuid.uuid4().hex[:8]}", RootDeviceName="/dev/xvda",
        Architecture="x86_64", VirtualizationType="hvm",
        BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": root}}],
    )["ImageId"]
    token = uuid.uuid4().hex
    images, refused = at_once(api.url, "ec2", lambda there, _: there.copy_image(
        SourceRegion=REGION, SourceImageId=source, Name="copy", ClientToken=token)["ImageId"],
        region=OTHER)
    assert refused == [] and len(set(images)) == 1
    found = client(api.url, "ec2", OTHER).describe_images(Owners=["self"])["Images"]
    assert [image["ImageId"] for image in found] == images[:1]


def test_tags_added_at_once_never_pass_fifty(api: ServerProcess) -> None:
    """12 callers adding 6 new tags each to a volume with none: 8 fit (48), 4 are refused."""
    ec2 = client(api.url, "ec2")
    volume = ec2.create_volume(AvailabilityZone=f"{REGION}a", Size=1)["VolumeId"]
    added, refused = at_once(api.url, "ec2", lambda mine, n: mine.create_tags(
        Resources=[volume], Tags=[{"Key": f"k{n}-{i}", "Value": "v"} for i in range(6)]))
    tags = ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [volume]}])["Tags"]
    assert (len(added), refused) == (8, ["TagLimitExceeded"] * 4)
    assert len(tags) == 48


def test_user_tags_added_at_once_never_pass_fifty(api: ServerProcess) -> None:
    iam = client(api.url, "iam")
    iam.create_user(UserName="tagged")
    added, refused = at_once(api.url, "iam", lambda mine, n: mine.tag_user(
        UserName="tagged", Tags=[{"Key": f"k{n}-{i}", "Value": "v"} for i in range(6)]))
    assert (len(added), refused) == (8, ["LimitExceeded"] * 4)
    assert len(iam.list_user_tags(UserName="tagged")["Tags"]) == 48


def test_a_starting_api_machine_leaves_a_live_machines_creating_volume_alone(
        scaleout_engines: object, tmp_path: Path) -> None:
    """Machine A (this test's process, by the same code as CreateVolume) is encrypting a
    volume's blocks anew; machine B starts on the same database: the volume stays
    `creating`. Once A is gone without finishing it, B fails it (its background round)."""
    storage = open_storage(scaleout_settings(tmp_path))
    volume = Volume(volume_id=f"vol-{uuid.uuid4().hex[:17]}", account_id=DEV_ACCOUNT_ID,
                    region=REGION, availability_zone=f"{REGION}a", size=1,
                    volume_type="gp3", snapshot_id="", state=volume_rules.CREATING,
                    encrypted=True, lineage_id=str(uuid.uuid4()),
                    create_time=dt.datetime.now(dt.UTC))
    machine_a = Creating(storage.engine, volume.volume_id).__enter__()
    try:
        with storage.engine.begin() as conn:
            volume_store.insert_volume(conn, volume)
        with ServerProcess(tmp_path, ["--processes", "1", "--worker-processes", "0",
                                      "--copy-workers", "0"],
                           env=scaleout_env(tmp_path)) as machine_b:
            ec2 = client(machine_b.url, "ec2")

            def state() -> str:
                return str(ec2.describe_volumes(VolumeIds=[volume.volume_id])[
                    "Volumes"][0]["State"])

            assert state() == "creating"  # B did its start-up work before it listened
            machine_a.__exit__(None, None, None)  # A's process is gone, the volume unfinished
            wait_for(lambda: state() == "error", timeout=60, every=0.25)
    finally:
        machine_a.__exit__(None, None, None)
        storage.close()
