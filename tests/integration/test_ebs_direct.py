"""Snapshots that hold real data: written and read through the EBS direct APIs, turned into
volumes and back into snapshots, every block checked by SHA-256."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from snapferry.testing import ServerProcess

from .blocks import (
    BLOCK,
    changed_indexes,
    digests,
    random_blocks,
    read_digests,
    stored_objects,
    write_snapshot,
)
from .conftest import ClientFactory, wait_for
from .test_foundation import refused


@pytest.fixture(scope="module")
def ebs(client: ClientFactory):  # type: ignore[no-untyped-def]
    return client("ebs")


@pytest.fixture(scope="module")
def ec2(client: ClientFactory):  # type: ignore[no-untyped-def]
    return client("ec2")


def test_an_encrypted_child_shares_its_parents_data_key(ebs, ec2) -> None:  # type: ignore[no-untyped-def]
    parent = write_snapshot(ebs, random_blocks([0, 5]), Encrypted=True)
    child = write_snapshot(ebs, random_blocks([5]), parent=parent)
    other = write_snapshot(ebs, random_blocks([1]), Encrypted=True)
    listed = {s["SnapshotId"]: s["DataEncryptionKeyId"]
              for s in ec2.describe_snapshots(SnapshotIds=[parent, child, other])["Snapshots"]}
    assert listed[child] == listed[parent] != listed[other]


def test_blocks_read_back_identical_and_children_diff_exactly(ebs, ec2) -> None:  # type: ignore[no-untyped-def]
    rng = random.Random(7)
    parent_blocks = random_blocks(sorted(rng.sample(range(2048), 300)))
    parent = write_snapshot(ebs, parent_blocks, Description="parent")
    assert read_digests(ebs, parent) == digests(parent_blocks)

    changed = rng.sample(sorted(parent_blocks), 20)
    added = sorted(rng.sample(sorted(set(range(2048)) - set(parent_blocks)), 15))
    child_blocks = random_blocks(changed + added)
    child = write_snapshot(ebs, child_blocks, parent=parent)
    assert changed_indexes(ebs, parent, child) == sorted(changed + added)
    expected_child = {**digests(parent_blocks), **digests(child_blocks)}
    assert read_digests(ebs, child) == expected_child

    # Without a first snapshot, every block of the second is "changed".
    assert changed_indexes(ebs, None, child) == sorted(expected_child)

    listed = ec2.describe_snapshots(SnapshotIds=[parent, child])["Snapshots"]
    assert [s.get("DataEncryptionKeyId") for s in listed] == [None, None]  # not encrypted
    sizes = {s["SnapshotId"]: s["FullSnapshotSizeInBytes"] for s in listed}
    assert sizes == {parent: 300 * BLOCK, child: len(expected_child) * BLOCK}

    volume = ec2.create_volume(AvailabilityZone="us-east-1b", SnapshotId=child, Size=2)
    assert (volume["Size"], volume["SnapshotId"], volume["State"]) == (2, child, "available")
    snapshot = ec2.create_snapshot(VolumeId=volume["VolumeId"], Description="of the volume")
    assert (snapshot["State"], snapshot["Progress"]) == ("pending", "0%")
    wait_for(lambda: ec2.describe_snapshots(SnapshotIds=[snapshot["SnapshotId"]])[
        "Snapshots"][0]["State"] == "completed")
    again = ec2.describe_snapshots(SnapshotIds=[snapshot["SnapshotId"]])["Snapshots"][0]
    assert (again["Progress"], again["VolumeId"], again["VolumeSize"]) == (
        "100%", volume["VolumeId"], 2)
    assert read_digests(ebs, snapshot["SnapshotId"]) == expected_child
    assert changed_indexes(ebs, child, snapshot["SnapshotId"]) == []


def test_unrelated_snapshots_cannot_be_compared(ebs) -> None:  # type: ignore[no-untyped-def]
    first = write_snapshot(ebs, random_blocks([0]))
    second = write_snapshot(ebs, random_blocks([0]))
    code, status, _ = refused(lambda: ebs.list_changed_blocks(FirstSnapshotId=first,
                                                               SecondSnapshotId=second))
    assert (code, status) == ("ValidationException", 400)
    with pytest.raises(Exception) as caught:
        ebs.list_changed_blocks(FirstSnapshotId=first, SecondSnapshotId=second)
    assert caught.value.response["Reason"] == "UNRELATED_SNAPSHOTS"  # type: ignore[attr-defined]


def test_block_tokens_are_bound_to_their_block(ebs) -> None:  # type: ignore[no-untyped-def]
    blocks = random_blocks([1, 2])
    one = write_snapshot(ebs, blocks)
    other = write_snapshot(ebs, blocks)
    token = ebs.list_snapshot_blocks(SnapshotId=one)["Blocks"][0]["BlockToken"]
    forged = token[:30] + ("A" if token[30] != "A" else "B") + token[31:]  # inside the MAC
    for attempt in (
        {"SnapshotId": one, "BlockIndex": 2, "BlockToken": token},  # another block's token
        {"SnapshotId": other, "BlockIndex": 1, "BlockToken": token},  # another snapshot's
        {"SnapshotId": one, "BlockIndex": 1, "BlockToken": forged},
    ):
        code, status, _ = refused(lambda a=attempt: ebs.get_snapshot_block(**a))
        assert (code, status) == ("ValidationException", 400)


def test_client_token_makes_start_snapshot_idempotent(ebs) -> None:  # type: ignore[no-untyped-def]
    first = ebs.start_snapshot(VolumeSize=1, ClientToken="same-token", Description="d")
    second = ebs.start_snapshot(VolumeSize=1, ClientToken="same-token", Description="d")
    assert first["SnapshotId"] == second["SnapshotId"]
    code, status, _ = refused(lambda: ebs.start_snapshot(VolumeSize=2, ClientToken="same-token"))
    assert (code, status) == ("ConflictException", 409)


def test_bad_writes_are_refused_and_leave_nothing(tmp_path: Path) -> None:
    # A server of its own, which this test restarts (the module's must keep serving).
    server, data_dir = ServerProcess(tmp_path).start(), tmp_path
    try:
        _bad_writes_then_restart(server, data_dir)
    finally:
        server.kill()


def _bad_writes_then_restart(server: ServerProcess, data_dir: Path) -> None:
    import boto3

    from .conftest import NO_RETRIES

    own = {"region_name": "us-east-1", "endpoint_url": server.url, "aws_access_key_id": "test",
           "aws_secret_access_key": "test", "config": NO_RETRIES}
    ebs, ec2 = boto3.client("ebs", **own), boto3.client("ec2", **own)
    good = random_blocks([0, 1])
    completed = write_snapshot(ebs, good)
    pending = ebs.start_snapshot(VolumeSize=1)["SnapshotId"]
    objects_before = stored_objects(data_dir)
    data = random_blocks([5])[5]
    from .blocks import checksum, put

    cases = {
        "wrong checksum": lambda: put(ebs, pending, 5, data, Checksum=checksum(b"other")),
        "short block": lambda: put(ebs, pending, 5, data[:4096]),
        "beyond the volume": lambda: put(ebs, pending, 2048, data),
        "into a completed snapshot": lambda: put(ebs, completed, 5, data),
        "unknown snapshot": lambda: put(ebs, "snap-0123456789abcdef0", 5, data),
        "malformed id": lambda: ebs.list_snapshot_blocks(SnapshotId="snap-NOTHEX"),
        "read a pending snapshot": lambda: ebs.list_snapshot_blocks(SnapshotId=pending),
        "wrong changed-block count": lambda: ebs.complete_snapshot(SnapshotId=pending,
                                                                   ChangedBlocksCount=3),
        "bad aggregate checksum": lambda: ebs.complete_snapshot(
            SnapshotId=pending, ChangedBlocksCount=0, Checksum=checksum(b"x"),
            ChecksumAlgorithm="SHA256", ChecksumAggregationMethod="LINEAR"),
    }
    got = {name: refused(call)[:2] for name, call in cases.items()}
    assert got == {
        "wrong checksum": ("ValidationException", 400),
        "short block": ("ValidationException", 400),
        "beyond the volume": ("ValidationException", 400),
        "into a completed snapshot": ("ValidationException", 400),
        "unknown snapshot": ("ResourceNotFoundException", 404),
        "malformed id": ("ValidationException", 400),
        "read a pending snapshot": ("ValidationException", 400),
        "wrong changed-block count": ("ValidationException", 400),
        "bad aggregate checksum": ("ValidationException", 400),
    }
    code, _, _ = refused(lambda: ec2.describe_snapshots(SnapshotIds=["snap-zz"]))
    assert code == "InvalidSnapshotID.Malformed"
    code, _, _ = refused(lambda: ec2.describe_snapshots(SnapshotIds=["snap-0123456789abcdef0"]))
    assert code == "InvalidSnapshot.NotFound"

    assert stored_objects(data_dir) == objects_before  # nothing half-written
    state = ec2.describe_snapshots(SnapshotIds=[pending, completed])["Snapshots"]
    assert {s["SnapshotId"]: s["State"] for s in state} == {pending: "pending",
                                                           completed: "completed"}
    assert read_digests(ebs, completed) == digests(good)

    # The same state after a restart.
    assert server.stop() == 0
    with ServerProcess(data_dir) as again:
        import boto3

        from .conftest import NO_RETRIES

        kw = {"region_name": "us-east-1", "endpoint_url": again.url, "aws_access_key_id": "test",
              "aws_secret_access_key": "test", "config": NO_RETRIES}
        ebs2, ec2_2 = boto3.client("ebs", **kw), boto3.client("ec2", **kw)
        state2 = ec2_2.describe_snapshots(SnapshotIds=[pending, completed])["Snapshots"]
        assert {s["SnapshotId"]: s["State"] for s in state2} == {pending: "pending",
                                                                completed: "completed"}
        assert read_digests(ebs2, completed) == digests(good)
        assert stored_objects(data_dir) == objects_before
        # The pending snapshot still takes its blocks after the restart.
        write_into = random_blocks([3])
        from .blocks import aggregate

        put(ebs2, pending, 3, write_into[3])
        assert ebs2.complete_snapshot(SnapshotId=pending, ChangedBlocksCount=1,
                                      Checksum=aggregate(write_into), ChecksumAlgorithm="SHA256",
                                      ChecksumAggregationMethod="LINEAR")["Status"] == "completed"
        assert read_digests(ebs2, pending) == digests(write_into)
