"""Who sees what: createVolumePermission between accounts, DescribeSnapshots' visibility,
filters and paging, tags, and volumes."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from snapferry.testing import ServerProcess

from .blocks import digests, random_blocks, read_digests, stored_objects, write_snapshot
from .conftest import ClientFactory, add_account, wait_for
from .test_foundation import refused

B_ACCOUNT, B_KEY, B_SECRET = "333333333333", "SHARINGKEYB", "sharing-secret-b"


@pytest.fixture(scope="module")
def account_b(server: ServerProcess, data_dir: Path) -> str:
    return add_account(data_dir, B_ACCOUNT, B_KEY, B_SECRET)


def test_private_until_shared_then_private_again(client: ClientFactory, account_b: str) -> None:
    a_ebs, a_ec2 = client("ebs"), client("ec2")
    b_ebs, b_ec2 = client("ebs", key=B_KEY, secret=B_SECRET), client("ec2", key=B_KEY,
                                                                       secret=B_SECRET)
    blocks = random_blocks([0, 9, 100])
    snap = write_snapshot(a_ebs, blocks)

    def b_is_locked_out() -> None:
        assert refused(lambda: b_ec2.describe_snapshots(SnapshotIds=[snap]))[0] == (
            "InvalidSnapshot.NotFound")
        assert snap not in {s["SnapshotId"] for s in b_ec2.describe_snapshots()["Snapshots"]}
        assert refused(lambda: b_ebs.list_snapshot_blocks(SnapshotId=snap))[:2] == (
            "ResourceNotFoundException", 404)
        assert refused(lambda: b_ec2.create_volume(AvailabilityZone="us-east-1a",
                                                   SnapshotId=snap))[0] == (
            "InvalidSnapshot.NotFound")

    b_is_locked_out()
    for call in (
        lambda: b_ec2.describe_snapshot_attribute(SnapshotId=snap,
                                                  Attribute="createVolumePermission"),
        lambda: b_ec2.modify_snapshot_attribute(
            SnapshotId=snap, CreateVolumePermission={"Add": [{"UserId": account_b}]}),
        lambda: b_ec2.delete_snapshot(SnapshotId=snap),
    ):
        assert refused(call)[0] == "InvalidSnapshot.NotFound"

    a_ec2.modify_snapshot_attribute(SnapshotId=snap,
                                    CreateVolumePermission={"Add": [{"UserId": account_b}]})
    attribute = a_ec2.describe_snapshot_attribute(SnapshotId=snap,
                                                  Attribute="createVolumePermission")
    assert attribute["CreateVolumePermissions"] == [{"UserId": account_b}]
    restorable = b_ec2.describe_snapshots(RestorableByUserIds=["self"])["Snapshots"]
    assert snap in {s["SnapshotId"] for s in restorable}
    assert b_ec2.describe_snapshots(SnapshotIds=[snap])["Snapshots"][0]["OwnerId"] == (
        "000000000000")
    assert read_digests(b_ebs, snap) == digests(blocks)
    volume = b_ec2.create_volume(AvailabilityZone="us-east-1a", SnapshotId=snap)
    assert volume["OwnerId"] == account_b
    # B may read it but not write, complete or delete it.
    assert refused(lambda: b_ec2.delete_snapshot(SnapshotId=snap))[0] == (
        "InvalidSnapshot.NotFound")
    own = {s["SnapshotId"] for s in b_ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]}
    assert snap not in own

    a_ec2.modify_snapshot_attribute(SnapshotId=snap,
                                    CreateVolumePermission={"Remove": [{"UserId": account_b}]})
    b_is_locked_out()
    # Legacy form and reset.
    a_ec2.modify_snapshot_attribute(SnapshotId=snap, Attribute="createVolumePermission",
                                    OperationType="add", UserIds=[account_b])
    assert b_ec2.describe_snapshots(SnapshotIds=[snap])["Snapshots"]
    a_ec2.reset_snapshot_attribute(SnapshotId=snap, Attribute="createVolumePermission")
    b_is_locked_out()


def test_public_snapshots_are_seen_but_not_read_by_ebs_direct(client: ClientFactory,
                                                             account_b: str) -> None:
    a_ebs, a_ec2 = client("ebs"), client("ec2")
    b_ebs, b_ec2 = client("ebs", key=B_KEY, secret=B_SECRET), client("ec2", key=B_KEY,
                                                                       secret=B_SECRET)
    snap = write_snapshot(a_ebs, random_blocks([1]))
    a_ec2.modify_snapshot_attribute(SnapshotId=snap,
                                    CreateVolumePermission={"Add": [{"Group": "all"}]})
    public = b_ec2.describe_snapshots(RestorableByUserIds=["all"])["Snapshots"]
    assert snap in {s["SnapshotId"] for s in public}
    assert refused(lambda: b_ebs.list_snapshot_blocks(SnapshotId=snap))[0] == (
        "ResourceNotFoundException")
    code, _, _ = refused(lambda: a_ec2.modify_snapshot_attribute(
        SnapshotId=snap, CreateVolumePermission={"Add": [{"UserId": "x"}],
                                                 "Remove": [{"Group": "all"}]}))
    assert code in ("InvalidParameterCombination", "InvalidAMIAttributeItemValue")


def test_a_thousand_snapshots_page_by_tag_exactly_once(client: ClientFactory) -> None:
    ec2 = client("ec2", region="eu-north-1")
    volume = ec2.create_volume(AvailabilityZone="eu-north-1a", Size=1)["VolumeId"]

    def make(n: int) -> tuple[str, bool]:
        blue = n % 3 == 0
        tags = [{"Key": "team", "Value": "blue" if blue else "red"}, {"Key": "n", "Value": str(n)}]
        created = ec2.create_snapshot(
            VolumeId=volume, TagSpecifications=[{"ResourceType": "snapshot", "Tags": tags}])
        return created["SnapshotId"], blue

    with ThreadPoolExecutor(4) as pool:
        made = list(pool.map(make, range(1000)))
    blue = {snapshot_id for snapshot_id, is_blue in made if is_blue}
    seen: list[str] = []
    pages = ec2.get_paginator("describe_snapshots").paginate(
        OwnerIds=["self"], Filters=[{"Name": "tag:team", "Values": ["blue"]}],
        PaginationConfig={"PageSize": 50})
    page_sizes = []
    for page in pages:
        page_sizes.append(len(page["Snapshots"]))
        seen.extend(s["SnapshotId"] for s in page["Snapshots"])
    assert len(seen) == len(set(seen)) == len(blue) and set(seen) == blue
    assert max(page_sizes) == 50 and len(page_sizes) == -(-len(blue) // 50)

    both = ec2.describe_snapshots(Filters=[{"Name": "tag:team", "Values": ["blue"]},
                                           {"Name": "tag:n", "Values": ["3", "4", "6"]}])
    numbers = [{t["Key"]: t["Value"] for t in s["Tags"]}["n"] for s in both["Snapshots"]]
    assert sorted(numbers) == ["3", "6"]
    wild = ec2.describe_snapshots(Filters=[{"Name": "tag:n", "Values": ["99?"]}])["Snapshots"]
    assert len(wild) == 10
    assert ec2.describe_snapshots(Filters=[{"Name": "tag-key", "Values": ["nope"]}])[
        "Snapshots"] == []
    wait_for(lambda: not ec2.describe_snapshots(
        Filters=[{"Name": "status", "Values": ["pending"]}])["Snapshots"])
    done = ec2.describe_snapshots(Filters=[{"Name": "status", "Values": ["completed"]},
                                           {"Name": "volume-id", "Values": [volume]},
                                           {"Name": "progress", "Values": ["100%"]}])
    assert len(done["Snapshots"]) == 1000
    assert refused(lambda: ec2.describe_snapshots(
        Filters=[{"Name": "colour", "Values": ["x"]}]))[0] == "InvalidParameterValue"
    assert refused(lambda: ec2.describe_snapshots(MaxResults=5, NextToken="garbage!"))[0] == (
        "InvalidNextToken")


def test_tags_follow_ec2_rules(client: ClientFactory) -> None:
    ec2 = client("ec2")
    volume = ec2.create_volume(AvailabilityZone="us-east-1c", Size=1)["VolumeId"]
    ec2.create_tags(Resources=[volume], Tags=[{"Key": "a", "Value": "1"}, {"Key": "b"},
                                              {"Key": "c", "Value": "3"}])

    def tags() -> dict[str, str]:
        found = ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [volume]}])
        return {t["Key"]: t["Value"] for t in found["Tags"]}

    assert tags() == {"a": "1", "b": "", "c": "3"}
    ec2.delete_tags(Resources=[volume], Tags=[{"Key": "a", "Value": "not-1"}])
    assert "a" in tags()  # a value that does not match deletes nothing
    ec2.delete_tags(Resources=[volume], Tags=[{"Key": "a"}, {"Key": "b", "Value": ""}])
    assert tags() == {"c": "3"}
    assert refused(lambda: ec2.create_tags(Resources=[volume],
                                           Tags=[{"Key": "aws:x", "Value": "1"}]))[0] == (
        "InvalidTagKey.Malformed")
    many = [{"Key": f"k{i}", "Value": "v"} for i in range(50)]
    assert refused(lambda: ec2.create_tags(Resources=[volume], Tags=many))[0] == (
        "TagLimitExceeded")
    assert tags() == {"c": "3"}  # the refused request changed nothing
    assert refused(lambda: ec2.create_tags(Resources=["i-12345678"],
                                           Tags=[{"Key": "k", "Value": "v"}]))[0] == "InvalidID"
    ec2.delete_tags(Resources=[volume])
    assert tags() == {}


def test_describe_tags_pages_through_many_ids_in_order(client: ClientFactory) -> None:
    """DescribeTags by resource id, paged: every tag once, in (resource id, key) order, with
    its type and value; a wildcard id beside the exact ones still matches."""
    ec2 = client("ec2")
    volumes = [ec2.create_volume(AvailabilityZone="us-east-1c", Size=1)["VolumeId"]
               for _ in range(6)]
    for n, volume in enumerate(volumes):
        ec2.create_tags(Resources=[volume], Tags=[{"Key": "name", "Value": f"v<{n}>&"},
                                                  {"Key": "n", "Value": str(n)}])
    other = ec2.create_volume(AvailabilityZone="us-east-1c", Size=1)["VolumeId"]
    ec2.create_tags(Resources=[other], Tags=[{"Key": "name", "Value": "not asked for"}])
    expected = sorted((volume, key, value) for n, volume in enumerate(volumes)
                      for key, value in (("name", f"v<{n}>&"), ("n", str(n))))
    ids = [*volumes, "vol-nothere0000000", *volumes[:2]]  # unknown and repeated ids
    pages, token = [], None
    while True:
        page = ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": ids}],
                                 MaxResults=5, **({"NextToken": token} if token else {}))
        pages.append(page["Tags"])
        token = page.get("NextToken")
        if not token:
            break
    assert [len(tags) for tags in pages] == [5, 5, 2]
    found = [tag for tags in pages for tag in tags]
    assert [(t["ResourceId"], t["Key"], t["Value"]) for t in found] == expected
    assert {t["ResourceType"] for t in found} == {"volume"}
    wild = ec2.describe_tags(Filters=[{"Name": "resource-id",
                                       "Values": [volumes[0], volumes[1][:-2] + "*"]}])["Tags"]
    assert sorted((t["ResourceId"], t["Key"]) for t in wild) == [
        (v, k) for v in sorted(volumes[:2]) for k in ("n", "name")]


def test_volumes_follow_ec2_rules(client: ClientFactory) -> None:
    ec2, ebs = client("ec2"), client("ebs")
    pending = ebs.start_snapshot(VolumeSize=8)["SnapshotId"]
    assert refused(lambda: ec2.create_volume(AvailabilityZone="us-east-1a",
                                             SnapshotId=pending))[0] == "IncorrectState"
    done = write_snapshot(ebs, random_blocks([0]), size_gib=8)
    cases: dict[str, Any] = {
        "smaller than its snapshot": (dict(SnapshotId=done, Size=4), "InvalidParameterValue"),
        "io1 too small": (dict(Size=1, VolumeType="io1"), "InvalidParameterValue"),
        "unknown type": (dict(Size=1, VolumeType="floppy"), "InvalidParameterValue"),
        "neither size nor snapshot": ({}, "MissingParameter"),
        "malformed snapshot id": (dict(SnapshotId="snap-xyz"), "InvalidSnapshotID.Malformed"),
    }
    for name, (args, code) in cases.items():
        got = refused(lambda a=args: ec2.create_volume(AvailabilityZone="us-east-1a", **a))[0]
        assert got == code, name
    assert refused(lambda: ec2.create_volume(AvailabilityZone="us-east-1q", Size=1))[0] == (
        "InvalidZone.NotFound")
    first = ec2.create_volume(AvailabilityZone="us-east-1a", Size=3, ClientToken="tok-1")
    again = ec2.create_volume(AvailabilityZone="us-east-1a", Size=3, ClientToken="tok-1")
    assert first["VolumeId"] == again["VolumeId"]
    assert refused(lambda: ec2.create_volume(AvailabilityZone="us-east-1a", Size=4,
                                             ClientToken="tok-1"))[0] == (
        "IdempotentParameterMismatch")
    found = ec2.describe_volumes(Filters=[{"Name": "size", "Values": ["3"]}])["Volumes"]
    assert first["VolumeId"] in {v["VolumeId"] for v in found}
    assert ec2.describe_volumes(VolumeIds=[first["VolumeId"]])["Volumes"][0]["AvailabilityZoneId"]
    code, status, _ = refused(lambda: ec2.delete_volume(VolumeId=first["VolumeId"], DryRun=True))
    assert (code, status) == ("DryRunOperation", 412)
    ec2.delete_volume(VolumeId=first["VolumeId"])
    assert refused(lambda: ec2.describe_volumes(VolumeIds=[first["VolumeId"]]))[0] == (
        "InvalidVolume.NotFound")


def test_deleting_frees_only_unshared_blocks(data_dir: Path, client: ClientFactory) -> None:
    ebs, ec2 = client("ebs", region="sa-east-1"), client("ec2", region="sa-east-1")
    base = stored_objects(data_dir)
    parent_blocks = random_blocks([0, 1, 2, 3])
    parent = write_snapshot(ebs, parent_blocks)
    child_blocks = random_blocks([1])
    child = write_snapshot(ebs, child_blocks, parent=parent)
    assert stored_objects(data_dir) == base + 5
    volume = ec2.create_volume(AvailabilityZone="sa-east-1a", SnapshotId=child)["VolumeId"]
    ec2.delete_snapshot(SnapshotId=parent)
    assert stored_objects(data_dir) == base + 4  # only parent's old block 1 was unshared
    ec2.delete_snapshot(SnapshotId=child)
    assert stored_objects(data_dir) == base + 4  # the volume still holds them
    expected = {**digests(parent_blocks), **digests(child_blocks)}
    copy = ec2.create_snapshot(VolumeId=volume)["SnapshotId"]
    wait_for(lambda: ec2.describe_snapshots(SnapshotIds=[copy])["Snapshots"][0]["State"]
             == "completed")
    assert read_digests(ebs, copy) == expected
    ec2.delete_volume(VolumeId=volume)
    ec2.delete_snapshot(SnapshotId=copy)
    assert stored_objects(data_dir) == base
