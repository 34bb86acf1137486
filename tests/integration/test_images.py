"""Machine images against the real server with boto3: RegisterImage's rules, DescribeImages'
visibility, filters and paging, launch permissions across three accounts, deregistration,
attributes, deprecation, deregistration protection, tags and ancestry."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from botocore.config import Config

from snapferry.testing import ServerProcess

from .blocks import random_blocks, stored_objects, write_snapshot
from .conftest import ClientFactory, add_account, wait_for
from .test_foundation import refused

B_ACCOUNT, B_KEY, B_SECRET = "444444444444", "IMAGESKEYB", "images-secret-b"
C_ACCOUNT, C_KEY, C_SECRET = "555555555555", "IMAGESKEYC", "images-secret-c"
ORG = "arn:aws:organizations::123456789012:organization/o-abcdef1234"
OU = "arn:aws:organizations::123456789012:ou/o-abcdef1234/ou-ab12-cdef5678"


@pytest.fixture(scope="module")
def accounts(server: ServerProcess, data_dir: Path) -> tuple[str, str]:
    return (add_account(data_dir, B_ACCOUNT, B_KEY, B_SECRET),
            add_account(data_dir, C_ACCOUNT, C_KEY, C_SECRET))


def unique(prefix: str) -> str:
    return f"{prefix}-{os.urandom(4).hex()}"


def root(snapshot_id: str, device: str = "/dev/xvda", **ebs: Any) -> dict[str, Any]:
    return {"DeviceName": device, "Ebs": {"SnapshotId": snapshot_id, **ebs}}


def register(ec2: Any, snapshot_id: str, name: str | None = None, **extra: Any) -> str:
    args: dict[str, Any] = {"Name": name or unique("image"), "RootDeviceName": "/dev/xvda",
                            "BlockDeviceMappings": [root(snapshot_id)],
                            "VirtualizationType": "hvm", "Architecture": "x86_64", **extra}
    return ec2.register_image(**args)["ImageId"]


def image_of(ec2: Any, image_id: str, **args: Any) -> dict[str, Any]:
    found = ec2.describe_images(ImageIds=[image_id], **args)["Images"]
    assert len(found) == 1
    return found[0]


def own_ids(ec2: Any) -> set[str]:
    return {i["ImageId"] for i in ec2.describe_images(Owners=["self"])["Images"]}


def all_ids(ec2: Any, **args: Any) -> set[str]:
    found: set[str] = set()
    for page in ec2.get_paginator("describe_images").paginate(**args):
        found |= {i["ImageId"] for i in page["Images"]}
    return found


@pytest.fixture(scope="module")
def snap(client: ClientFactory) -> str:
    """A completed 2 GiB snapshot of the dev account, for images that need just any."""
    return write_snapshot(client("ebs"), random_blocks([0, 3]), size_gib=2)


def test_register_image_describes_as_aws_does(client: ClientFactory, snap: str) -> None:
    ec2, ebs = client("ec2"), client("ebs")
    data = write_snapshot(ebs, random_blocks([1]), size_gib=1)
    name = unique("web (v1.0) [x86] @home's_build/one")
    image_id = ec2.register_image(
        Name=name, Description="the web tier", RootDeviceName="/dev/xvda",
        Architecture="arm64", VirtualizationType="hvm", BootMode="uefi", EnaSupport=True,
        SriovNetSupport="simple", TpmSupport="v2.0", ImdsSupport="v2.0",
        BlockDeviceMappings=[
            root(snap),
            {"DeviceName": "/dev/sdf", "Ebs": {"SnapshotId": data, "VolumeSize": 8,
                                               "VolumeType": "gp3", "DeleteOnTermination": False}},
            {"DeviceName": "/dev/sdg", "Ebs": {"VolumeSize": 4}},
            {"DeviceName": "/dev/sdb", "VirtualName": "ephemeral0"},
        ],
        TagSpecifications=[{"ResourceType": "image", "Tags": [{"Key": "tier", "Value": "web"}]}],
    )["ImageId"]
    assert image_id.startswith("ami-") and len(image_id) == 21
    image = image_of(ec2, image_id)
    created = dt.datetime.strptime(image.pop("CreationDate"), "%Y-%m-%dT%H:%M:%S.%fZ")
    assert abs(created - dt.datetime.utcnow()) < dt.timedelta(minutes=1)
    assert image == {
        "ImageId": image_id, "ImageLocation": f"000000000000/{name}", "State": "available",
        "OwnerId": "000000000000", "Public": False, "ProductCodes": [],
        "Architecture": "arm64", "ImageType": "machine", "Name": name,
        "Description": "the web tier", "RootDeviceName": "/dev/xvda", "RootDeviceType": "ebs",
        "VirtualizationType": "hvm", "Hypervisor": "xen", "EnaSupport": True,
        "SriovNetSupport": "simple", "BootMode": "uefi", "TpmSupport": "v2.0",
        "ImdsSupport": "v2.0", "PlatformDetails": "Linux/UNIX", "UsageOperation": "RunInstances",
        "DeregistrationProtection": "disabled", "Tags": [{"Key": "tier", "Value": "web"}],
        "BlockDeviceMappings": [
            {"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": snap, "VolumeSize": 2,
                                                "VolumeType": "gp2", "DeleteOnTermination": True,
                                                "Encrypted": False}},
            {"DeviceName": "/dev/sdf", "Ebs": {"SnapshotId": data, "VolumeSize": 8,
                                               "VolumeType": "gp3", "DeleteOnTermination": False,
                                               "Encrypted": False}},
            {"DeviceName": "/dev/sdg", "Ebs": {"VolumeSize": 4, "VolumeType": "gp2",
                                               "DeleteOnTermination": True, "Encrypted": False}},
            {"DeviceName": "/dev/sdb", "VirtualName": "ephemeral0"},
        ],
    }
    # AWS's documented defaults: i386 and paravirtual.
    plain = image_of(ec2, ec2.register_image(Name=unique("defaults"), RootDeviceName="/dev/sda1",
                                             BlockDeviceMappings=[root(snap, "/dev/sda1")]
                                             )["ImageId"])
    assert (plain["Architecture"], plain["VirtualizationType"]) == ("i386", "paravirtual")
    assert "Description" not in plain and "BootMode" not in plain


def test_encrypted_snapshot_gives_an_encrypted_mapping(client: ClientFactory) -> None:
    ec2 = client("ec2")
    encrypted = write_snapshot(client("ebs"), random_blocks([0]), Encrypted=True)
    key = ec2.describe_snapshots(SnapshotIds=[encrypted])["Snapshots"][0]["KmsKeyId"]
    image = image_of(ec2, register(ec2, encrypted))
    assert image["BlockDeviceMappings"][0]["Ebs"]["Encrypted"] is True
    assert image["BlockDeviceMappings"][0]["Ebs"]["KmsKeyId"] == key
    hits = ec2.describe_images(Owners=["self"], Filters=[
        {"Name": "block-device-mapping.encrypted", "Values": ["true"]}])["Images"]
    assert image["ImageId"] in {i["ImageId"] for i in hits}
    # Encrypted images are never public, and the AWS managed key cannot be shared.
    for permission in ({"Group": "all"}, {"UserId": "123456789012"}):
        code, status, _ = refused(lambda p=permission: ec2.modify_image_attribute(
            ImageId=image["ImageId"], LaunchPermission={"Add": [p]}))
        assert (code, status) == ("InvalidParameterValue", 400)
    assert ec2.describe_image_attribute(ImageId=image["ImageId"], Attribute="launchPermission"
                                        )["LaunchPermissions"] == []


def test_customer_key_images_share_with_accounts_but_never_publicly(
        client: ClientFactory, accounts: tuple[str, str]) -> None:
    ec2 = client("ec2")
    key = client("kms").create_key(Policy=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::000000000000:root"},
                       "Action": "kms:*", "Resource": "*"}]}))["KeyMetadata"]["Arn"]
    encrypted = write_snapshot(client("ebs"), random_blocks([0]), Encrypted=True, KmsKeyArn=key)
    image_id = register(ec2, encrypted)
    assert image_of(ec2, image_id)["BlockDeviceMappings"][0]["Ebs"]["KmsKeyId"] == key
    assert refused(lambda: ec2.modify_image_attribute(
        ImageId=image_id, LaunchPermission={"Add": [{"Group": "all"}]}))[:2] == (
        "InvalidParameterValue", 400)
    ec2.modify_image_attribute(ImageId=image_id,
                               LaunchPermission={"Add": [{"UserId": B_ACCOUNT}]})
    assert ec2.describe_image_attribute(ImageId=image_id, Attribute="launchPermission")[
        "LaunchPermissions"] == [{"UserId": B_ACCOUNT}]


def test_refused_registrations_leave_nothing(client: ClientFactory, snap: str,
                                             accounts: tuple[str, str]) -> None:
    ec2, ebs = client("ec2"), client("ebs")
    # botocore checks minimum lengths itself; other clients leave them to the server.
    unchecked = client("ec2", config=Config(parameter_validation=False,
                                            retries={"max_attempts": 1}))
    b_ebs = client("ebs", key=B_KEY, secret=B_SECRET)
    others = write_snapshot(b_ebs, random_blocks([0]))
    pending = ebs.start_snapshot(VolumeSize=1)["SnapshotId"]
    taken = unique("taken")
    register(ec2, snap, taken)
    before = own_ids(ec2)
    malformed = ("InvalidAMIName.Malformed", 400,
                 "AMI names must be between 3 and 128 characters long, and may contain letters, "
                 "numbers, '(', ')', '.', '-', '/' and '_'")
    cases: list[tuple[dict[str, Any], str]] = [
        ({"Name": "ab"}, "InvalidAMIName.Malformed"),
        ({"Name": "x" * 129}, "InvalidAMIName.Malformed"),
        ({"Name": "web#1"}, "InvalidAMIName.Malformed"),
        ({"Name": taken}, "InvalidAMIName.Duplicate"),
        ({"ImageLocation": "bucket/image.manifest.xml", "BlockDeviceMappings": []},
         "InvalidManifest"),
        ({"ImageLocation": "bucket/image.manifest.xml"}, "InvalidBlockDeviceMapping"),
        ({"BlockDeviceMappings": []}, "MissingParameter"),
        ({"RootDeviceName": "/dev/sdz"}, "InvalidBlockDeviceMapping"),
        ({"BlockDeviceMappings": [root(snap, VolumeSize=1)]}, "InvalidBlockDeviceMapping"),
        ({"BlockDeviceMappings": [root(snap, Encrypted=False)]}, "InvalidBlockDeviceMapping"),
        ({"BlockDeviceMappings": [root(snap), root(snap)]}, "InvalidBlockDeviceMapping"),
        ({"BlockDeviceMappings": [root(snap, VolumeType="io9")]}, "InvalidParameterValue"),
        ({"BlockDeviceMappings": [{"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 8}}]},
         "InvalidBlockDeviceMapping"),
        ({"BlockDeviceMappings": [root("snap-0123456789abcdef0")]}, "InvalidSnapshot.NotFound"),
        ({"BlockDeviceMappings": [root(others)]}, "InvalidSnapshot.NotFound"),
        ({"BlockDeviceMappings": [root(pending)]}, "IncorrectState"),
        ({"BlockDeviceMappings": [root("snap-xyz")]}, "InvalidSnapshotID.Malformed"),
        ({"Architecture": "sparc"}, "InvalidParameterValue"),
        ({"VirtualizationType": "pv"}, "InvalidParameterValue"),
        ({"BootMode": "bios"}, "InvalidParameterValue"),
        ({"TagSpecifications": [{"ResourceType": "snapshot",
                                 "Tags": [{"Key": "k", "Value": "v"}]}]},
         "InvalidParameterValue"),
        ({"TagSpecifications": [{"ResourceType": "image", "Tags": [{"Key": "aws:x"}]}]},
         "InvalidTagKey.Malformed"),
    ]
    for overrides, code in cases:
        args: dict[str, Any] = {"Name": unique("refused"), "RootDeviceName": "/dev/xvda",
                                "BlockDeviceMappings": [root(snap)], **overrides}
        got = refused(lambda a=args: unchecked.register_image(**a))
        assert got[:2] == (code, 400), (overrides, got)
        if code == "InvalidAMIName.Malformed":
            assert got == malformed
    assert own_ids(ec2) == before
    assert not ec2.describe_tags(Filters=[{"Name": "resource-type", "Values": ["image"]},
                                          {"Name": "key", "Values": ["k", "aws:x"]}])["Tags"]
    # The same name is free in another region and for another account.
    client("ec2", region="eu-west-1").register_image(
        Name=taken, RootDeviceName="/dev/xvda",
        BlockDeviceMappings=[root(write_snapshot(client("ebs", region="eu-west-1"),
                                                 random_blocks([0])))])
    register(client("ec2", key=B_KEY, secret=B_SECRET), others, taken)


def test_a_shared_snapshot_may_back_an_image(client: ClientFactory,
                                             accounts: tuple[str, str]) -> None:
    b_ec2 = client("ec2", key=B_KEY, secret=B_SECRET)
    mine = write_snapshot(client("ebs"), random_blocks([0]))
    assert refused(lambda: register(b_ec2, mine))[0] == "InvalidSnapshot.NotFound"
    client("ec2").modify_snapshot_attribute(
        SnapshotId=mine, CreateVolumePermission={"Add": [{"UserId": B_ACCOUNT}]})
    image = image_of(b_ec2, register(b_ec2, mine))
    assert image["OwnerId"] == B_ACCOUNT
    assert image["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"] == mine
    # B's image names A's snapshot: A cannot delete it while the image exists.
    assert refused(lambda: client("ec2").delete_snapshot(SnapshotId=mine))[0] == (
        "InvalidSnapshot.InUse")


def test_describe_filters_ids_and_paging(client: ClientFactory, snap: str) -> None:
    ec2, ebs = client("ec2"), client("ebs")
    other = write_snapshot(ebs, random_blocks([0]), size_gib=3)
    tag = unique("batch")
    made = []
    for n in range(7):
        made.append(ec2.register_image(
            Name=f"{tag}-{n}", Description=f"build {n}", RootDeviceName="/dev/xvda",
            Architecture="arm64" if n % 2 else "x86_64", VirtualizationType="hvm",
            BlockDeviceMappings=[root(other if n == 6 else snap, VolumeType="gp3" if n == 5
                                      else "gp2")],
            TagSpecifications=[{"ResourceType": "image",
                                "Tags": [{"Key": "batch", "Value": tag},
                                         {"Key": f"only-{n}", "Value": ""}]}])["ImageId"])

    def hits(*filters: tuple[str, list[str]], **args: Any) -> set[str]:
        return all_ids(ec2, Filters=[{"Name": name, "Values": values} for name, values in
                                     [("tag:batch", [tag]), *filters]], **args)

    everything = set(made)
    assert hits() == everything
    assert hits(("name", [f"{tag}-1", f"{tag}-2"])) == set(made[1:3])
    assert hits(("name", [f"{tag}-?"])) == everything
    assert hits(("name", [f"{tag[:-2]}*-6"])) == {made[6]}
    assert hits(("architecture", ["arm64"])) == {made[1], made[3], made[5]}
    assert hits(("description", ["build 4"])) == {made[4]}
    assert hits(("state", ["available"]), ("image-type", ["machine"]),
                ("root-device-type", ["ebs"]), ("virtualization-type", ["hvm"]),
                ("owner-id", ["000000000000"]), ("is-public", ["false"]),
                ("hypervisor", ["xen"])) == everything
    assert hits(("state", ["pending", "failed"])) == set()
    assert hits(("is-public", ["true"])) == set()
    assert hits(("image-id", [made[0], made[3]])) == {made[0], made[3]}
    assert hits(("tag-key", ["only-2", "only-4"])) == {made[2], made[4]}
    assert hits(("block-device-mapping.snapshot-id", [other])) == {made[6]}
    assert hits(("block-device-mapping.volume-size", ["3"])) == {made[6]}
    assert hits(("block-device-mapping.volume-type", ["gp3"])) == {made[5]}
    assert hits(("block-device-mapping.device-name", ["/dev/xvda"])) == everything
    assert hits(("block-device-mapping.encrypted", ["false"])) == everything
    assert hits(("source-image-id", ["ami-0123456789abcdef0"])) == set()
    assert hits(("source-image-region", ["us-east-1"])) == set()
    assert hits(("owner-alias", ["amazon"])) == set()
    year = dt.datetime.utcnow().strftime("%Y")
    assert hits(("creation-date", [f"{year}-*"])) == everything
    assert hits(("creation-date", ["1999-*"])) == set()
    # Ids and filters AND together.
    assert all_ids(ec2, ImageIds=[made[0], made[1]],
                   Filters=[{"Name": "architecture", "Values": ["arm64"]}]) == {made[1]}
    assert hits(Owners=["amazon"]) == set()
    assert hits(Owners=["self"]) == hits(Owners=["000000000000"]) == everything
    # Paging in the database: pages of 5, no image twice, none lost.
    pages = list(ec2.get_paginator("describe_images").paginate(
        Filters=[{"Name": "tag:batch", "Values": [tag]}], PaginationConfig={"PageSize": 5}))
    assert [len(p["Images"]) for p in pages] == [5, 2]
    assert [i["ImageId"] for p in pages for i in p["Images"]] == sorted(everything)
    for call, code in [
        (lambda: ec2.describe_images(Filters=[{"Name": "colour", "Values": ["red"]}]),
         "InvalidParameterValue"),
        (lambda: ec2.describe_images(ImageIds=[made[0]], MaxResults=5),
         "InvalidParameterCombination"),
        (lambda: ec2.describe_images(MaxResults=4), "InvalidParameterValue"),
        (lambda: ec2.describe_images(NextToken="bogus"), "InvalidNextToken"),
        (lambda: ec2.describe_images(Owners=["someone"]), "InvalidUserID.Malformed"),
        (lambda: ec2.describe_images(ExecutableUsers=["everyone"]), "InvalidUserID.Malformed"),
        (lambda: ec2.describe_images(ImageIds=["ami-zz"]), "InvalidAMIID.Malformed"),
    ]:
        assert refused(call)[:2] == (code, 400)
    unknown = "ami-0123456789abcdef0"
    assert refused(lambda: ec2.describe_images(ImageIds=[unknown, made[0]])) == (
        "InvalidAMIID.NotFound", 400, f"The image id '[{unknown}]' does not exist")
    # An image in another region is not here.
    assert refused(lambda: client("ec2", region="us-west-2").describe_images(
        ImageIds=[made[0]]))[0] == "InvalidAMIID.NotFound"


def test_launch_permissions_across_three_accounts(client: ClientFactory, snap: str,
                                                  accounts: tuple[str, str]) -> None:
    a = client("ec2")
    b = client("ec2", key=B_KEY, secret=B_SECRET)
    c = client("ec2", key=C_KEY, secret=C_SECRET)
    image_id = register(a, snap)

    def sees(ec2: Any) -> bool:
        """Listed by default and by id, or neither (NotFound by id)."""
        listed = image_id in all_ids(ec2)
        if listed:
            assert image_of(ec2, image_id)["ImageId"] == image_id
        else:
            assert refused(lambda: ec2.describe_images(ImageIds=[image_id]))[0] == (
                "InvalidAMIID.NotFound")
        return listed

    def shown() -> list[dict[str, str]]:
        return a.describe_image_attribute(ImageId=image_id,
                                          Attribute="launchPermission")["LaunchPermissions"]

    assert (sees(a), sees(b), sees(c)) == (True, False, False)
    assert refused(lambda: c.deregister_image(ImageId=image_id))[0] == "InvalidAMIID.NotFound"
    a.modify_image_attribute(ImageId=image_id, LaunchPermission={"Add": [{"UserId": B_ACCOUNT}]})
    assert shown() == [{"UserId": B_ACCOUNT}]
    assert (sees(b), sees(c)) == (True, False)
    seen_by_b = image_of(b, image_id)
    assert seen_by_b["OwnerId"] == "000000000000" and seen_by_b["Public"] is False
    assert image_id in all_ids(b, ExecutableUsers=["self"])
    assert image_id in all_ids(b, ExecutableUsers=[B_ACCOUNT])
    assert image_id not in all_ids(b, Owners=["self"])
    assert image_id not in all_ids(b, ExecutableUsers=["all"])
    assert image_id in all_ids(a, ExecutableUsers=[B_ACCOUNT])
    assert image_id not in all_ids(a, ExecutableUsers=[C_ACCOUNT])
    # Whom else the owner shared it with is the owner's business, not B's.
    a.modify_image_attribute(ImageId=image_id, LaunchPermission={"Add": [{"UserId": "1" * 12}]})
    assert image_id in all_ids(a, ExecutableUsers=["1" * 12])
    assert image_id not in all_ids(b, ExecutableUsers=["1" * 12])
    a.modify_image_attribute(ImageId=image_id,
                             LaunchPermission={"Remove": [{"UserId": "1" * 12}]})
    assert image_id not in all_ids(a, ExecutableUsers=["self"])  # own, not shared with self
    # B may see and use it, not change it.
    for call in (lambda: b.describe_image_attribute(ImageId=image_id, Attribute="description"),
                 lambda: b.deregister_image(ImageId=image_id),
                 lambda: b.modify_image_attribute(ImageId=image_id,
                                                  Description={"Value": "mine now"})):
        assert refused(call)[:3] == ("AuthFailure", 401, f"Not authorized for image:{image_id}")
    # Organizations and OUs are kept and shown; no account here belongs to one.
    a.modify_image_attribute(ImageId=image_id, LaunchPermission={
        "Add": [{"OrganizationArn": ORG}, {"OrganizationalUnitArn": OU}]})
    assert sorted(shown(), key=str) == sorted(
        [{"UserId": B_ACCOUNT}, {"OrganizationArn": ORG}, {"OrganizationalUnitArn": OU}], key=str)
    assert not sees(c)
    # Public: everyone sees it.
    a.modify_image_attribute(ImageId=image_id, Attribute="launchPermission",
                             OperationType="add", UserGroups=["all"])
    assert sees(c) and image_of(c, image_id)["Public"] is True
    assert image_id in all_ids(c, ExecutableUsers=["all"])
    assert image_id in all_ids(c, Filters=[{"Name": "is-public", "Values": ["true"]}])
    a.modify_image_attribute(ImageId=image_id, LaunchPermission={"Remove": [{"Group": "all"}]})
    assert not sees(c)
    a.modify_image_attribute(ImageId=image_id, OperationType="remove", UserIds=[B_ACCOUNT])
    assert not sees(b)
    a.modify_image_attribute(ImageId=image_id, LaunchPermission={"Add": [{"UserId": C_ACCOUNT}]})
    assert sees(c)
    a.reset_image_attribute(ImageId=image_id, Attribute="launchPermission")
    assert shown() == [] and not sees(c)
    # Bad grants are refused and change nothing.
    for change, code in [
        ({"LaunchPermission": {"Add": [{"UserId": "12345"}]}}, "InvalidAMIAttributeItemValue"),
        ({"LaunchPermission": {"Add": [{"Group": "friends"}]}}, "InvalidAMIAttributeItemValue"),
        ({"LaunchPermission": {"Add": [{"OrganizationArn": "arn:aws:iam::1:root"}]}},
         "InvalidAMIAttributeItemValue"),
        ({"LaunchPermission": {"Add": [{"UserId": B_ACCOUNT}],
                               "Remove": [{"UserId": C_ACCOUNT}]}},
         "InvalidParameterCombination"),
        ({"Attribute": "launchPermission", "UserIds": [B_ACCOUNT]}, "MissingParameter"),
    ]:
        assert refused(lambda ch=change: a.modify_image_attribute(ImageId=image_id, **ch))[:2] == (
            code, 400)
    assert shown() == [] and not sees(b)
    # Once deregistered, the id answers an empty list to everyone, as AWS does.
    a.modify_image_attribute(ImageId=image_id, LaunchPermission={"Add": [{"UserId": B_ACCOUNT}]})
    a.deregister_image(ImageId=image_id)
    for ec2 in (a, b, c):
        assert ec2.describe_images(ImageIds=[image_id])["Images"] == []


def test_deregister_image(client: ClientFactory, data_dir: Path, snap: str) -> None:
    ec2, ebs = client("ec2"), client("ebs")
    first = write_snapshot(ebs, random_blocks([0, 1, 2]))
    second = write_snapshot(ebs, random_blocks([5]))
    name = unique("short-lived")
    image_id = ec2.register_image(
        Name=name, RootDeviceName="/dev/xvda",
        BlockDeviceMappings=[root(first), root(second, "/dev/sdf"), root(snap, "/dev/sdg")])[
        "ImageId"]
    ec2.create_tags(Resources=[image_id], Tags=[{"Key": "gone", "Value": "soon"}])
    keeps = register(ec2, snap)  # snap stays in use by this one
    objects = stored_objects(data_dir)
    result = ec2.deregister_image(ImageId=image_id, DeleteAssociatedSnapshots=True)
    assert result["Return"] is True
    assert sorted(result["DeleteSnapshotResults"], key=lambda r: r["SnapshotId"]) == sorted([
        {"SnapshotId": first, "ReturnCode": "success"},
        {"SnapshotId": second, "ReturnCode": "success"},
        {"SnapshotId": snap, "ReturnCode": "skipped"},
    ], key=lambda r: r["SnapshotId"])
    wait_for(lambda: stored_objects(data_dir) == objects - 4)
    remaining = {s["SnapshotId"] for s in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]}
    assert snap in remaining and first not in remaining and second not in remaining
    # Gone from every Describe: by id an empty list (as AWS answers), not NotFound.
    assert ec2.describe_images(ImageIds=[image_id])["Images"] == []
    assert image_id not in all_ids(ec2)
    assert not ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [image_id]}])["Tags"]
    assert refused(lambda: ec2.deregister_image(ImageId=image_id))[:2] == (
        "InvalidAMIID.Unavailable", 400)
    assert refused(lambda: ec2.create_tags(Resources=[image_id], Tags=[{"Key": "k"}]))[0] == (
        "InvalidAMIID.NotFound")
    # Its name is free again; without the flag every snapshot is kept.
    again = register(ec2, snap, name)
    assert ec2.deregister_image(ImageId=again).get("DeleteSnapshotResults", []) == []
    assert snap in {s["SnapshotId"] for s in ec2.describe_snapshots(SnapshotIds=[snap])[
        "Snapshots"]}
    assert refused(lambda: ec2.deregister_image(ImageId="ami-0123456789abcdef0"))[0] == (
        "InvalidAMIID.NotFound")
    assert image_of(ec2, keeps)["State"] == "available"


def test_snapshot_in_use_by_an_image_cannot_be_deleted(client: ClientFactory) -> None:
    ec2 = client("ec2")
    snapshot = write_snapshot(client("ebs"), random_blocks([0]))
    image_id = register(ec2, snapshot)
    assert refused(lambda: ec2.delete_snapshot(SnapshotId=snapshot)) == (
        "InvalidSnapshot.InUse", 400,
        f"The snapshot {snapshot} is currently in use by {image_id}")
    assert ec2.describe_snapshots(SnapshotIds=[snapshot])["Snapshots"]
    ec2.deregister_image(ImageId=image_id)
    ec2.delete_snapshot(SnapshotId=snapshot)
    assert refused(lambda: ec2.describe_snapshots(SnapshotIds=[snapshot]))[0] == (
        "InvalidSnapshot.NotFound")


def test_image_attributes(client: ClientFactory, snap: str) -> None:
    ec2 = client("ec2")
    image_id = register(ec2, snap, Description="first", BootMode="uefi-preferred",
                        TpmSupport="v2.0", SriovNetSupport="simple")

    def attribute(name: str) -> dict[str, Any]:
        answer = ec2.describe_image_attribute(ImageId=image_id, Attribute=name)
        answer.pop("ResponseMetadata")
        assert answer.pop("ImageId") == image_id
        return answer

    assert attribute("description") == {"Description": {"Value": "first"}}
    assert attribute("bootMode") == {"BootMode": {"Value": "uefi-preferred"}}
    assert attribute("tpmSupport") == {"TpmSupport": {"Value": "v2.0"}}
    assert attribute("sriovNetSupport") == {"SriovNetSupport": {"Value": "simple"}}
    assert attribute("productCodes") == {"ProductCodes": []}
    assert attribute("launchPermission") == {"LaunchPermissions": []}
    assert attribute("deregistrationProtection") == {
        "DeregistrationProtection": {"Value": "disabled"}}
    for empty in ("kernel", "ramdisk", "uefiData", "lastLaunchedTime", "imdsSupport"):
        assert list(attribute(empty).values()) in ([{}], [])
    assert refused(lambda: attribute("blockDeviceMapping"))[:2] == ("AuthFailure", 401)
    assert refused(lambda: attribute("colour"))[:2] == ("InvalidRequest", 400)

    ec2.modify_image_attribute(ImageId=image_id, Description={"Value": "second"})
    assert attribute("description") == {"Description": {"Value": "second"}}
    ec2.modify_image_attribute(ImageId=image_id, Attribute="description", Value="third")
    assert image_of(ec2, image_id)["Description"] == "third"
    ec2.modify_image_attribute(ImageId=image_id, ImdsSupport={"Value": "v2.0"})
    assert attribute("imdsSupport") == {"ImdsSupport": {"Value": "v2.0"}}
    for change, code in [
        ({"ImdsSupport": {"Value": "v1.0"}}, "InvalidParameterValue"),
        ({"Attribute": "bootMode", "Value": "legacy-bios"}, "InvalidParameterValue"),
        ({"ProductCodes": ["abc123"]}, "InvalidParameterValue"),
        ({"Description": {"Value": "d" * 256}}, "InvalidParameterValue"),
        ({"Description": {"Value": "x"}, "ImdsSupport": {"Value": "v2.0"}},
         "InvalidParameterCombination"),
    ]:
        assert refused(lambda ch=change: ec2.modify_image_attribute(ImageId=image_id, **ch))[
            :2] == (code, 400)
    assert attribute("description") == {"Description": {"Value": "third"}}
    assert attribute("bootMode") == {"BootMode": {"Value": "uefi-preferred"}}
    assert refused(lambda: ec2.reset_image_attribute(ImageId=image_id, Attribute="description")
                   )[:2] == ("InvalidParameterValue", 400)


def test_deprecation(client: ClientFactory, snap: str) -> None:
    ec2 = client("ec2")
    image_id = register(ec2, snap)
    when = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(days=30, seconds=40)
    assert ec2.enable_image_deprecation(ImageId=image_id, DeprecateAt=when)["Return"] is True
    rounded = (when + dt.timedelta(seconds=30)).replace(second=0)
    assert image_of(ec2, image_id)["DeprecationTime"] == rounded.strftime(
        "%Y-%m-%dT%H:%M:%S.000Z")
    assert image_id in all_ids(ec2, Filters=[{"Name": "deprecation-time",
                                              "Values": [rounded.strftime("%Y-%m-%dT%H:%M*")]}])
    # Not yet deprecated: every account with permission sees it without IncludeDeprecated.
    assert image_id in all_ids(ec2, IncludeDeprecated=False)
    for past in (dt.datetime(2001, 1, 1, tzinfo=dt.UTC),
                 dt.datetime.now(dt.UTC) + dt.timedelta(days=3700)):
        assert refused(lambda p=past: ec2.enable_image_deprecation(
            ImageId=image_id, DeprecateAt=p))[:2] == ("InvalidParameterValue", 400)
    assert image_of(ec2, image_id)["DeprecationTime"].startswith(rounded.strftime("%Y-%m-%d"))
    assert ec2.disable_image_deprecation(ImageId=image_id)["Return"] is True
    assert "DeprecationTime" not in image_of(ec2, image_id)


def test_deregistration_protection(client: ClientFactory, snap: str) -> None:
    ec2 = client("ec2")
    image_id = register(ec2, snap)
    ec2.enable_image_deregistration_protection(ImageId=image_id)
    assert image_of(ec2, image_id)["DeregistrationProtection"] == "enabled-without-cooldown"
    assert refused(lambda: ec2.deregister_image(ImageId=image_id))[:2] == (
        "OperationNotPermitted", 400)
    assert image_of(ec2, image_id)["State"] == "available"
    ec2.disable_image_deregistration_protection(ImageId=image_id)
    assert image_of(ec2, image_id)["DeregistrationProtection"] == "disabled"
    ec2.deregister_image(ImageId=image_id)

    cooled = register(ec2, snap)
    ec2.enable_image_deregistration_protection(ImageId=cooled, WithCooldown=True)
    assert image_of(ec2, cooled)["DeregistrationProtection"] == "enabled-with-cooldown"
    ec2.disable_image_deregistration_protection(ImageId=cooled)
    shown = image_of(ec2, cooled)["DeregistrationProtection"]
    until = dt.datetime.strptime(shown, "disabled-until-%Y-%m-%dT%H:%M:%S.000Z")
    assert dt.timedelta(hours=23) < until - dt.datetime.utcnow() <= dt.timedelta(hours=24)
    # For 24 hours after the disable, still protected.
    assert refused(lambda: ec2.deregister_image(ImageId=cooled))[0] == "OperationNotPermitted"


def test_image_tags(client: ClientFactory, snap: str, accounts: tuple[str, str]) -> None:
    ec2 = client("ec2")
    image_id = register(ec2, snap)
    ec2.create_tags(Resources=[image_id, snap], Tags=[{"Key": "team", "Value": "blue"}])
    tags = ec2.describe_tags(Filters=[{"Name": "resource-type", "Values": ["image"]},
                                      {"Name": "resource-id", "Values": [image_id]}])["Tags"]
    assert tags == [{"ResourceId": image_id, "ResourceType": "image", "Key": "team",
                     "Value": "blue"}]
    assert image_of(ec2, image_id)["Tags"] == [{"Key": "team", "Value": "blue"}]
    assert image_id in all_ids(ec2, Filters=[{"Name": "tag:team", "Values": ["bl*"]}])
    ec2.delete_tags(Resources=[image_id], Tags=[{"Key": "team"}])
    assert "Tags" not in image_of(ec2, image_id)
    b = client("ec2", key=B_KEY, secret=B_SECRET)
    assert refused(lambda: b.create_tags(Resources=[image_id], Tags=[{"Key": "k"}]))[0] == (
        "InvalidAMIID.NotFound")


def test_ancestry_of_a_registered_image_is_itself(client: ClientFactory, snap: str,
                                                  accounts: tuple[str, str]) -> None:
    ec2 = client("ec2")
    image_id = register(ec2, snap)
    entries = ec2.get_image_ancestry(ImageId=image_id)["ImageAncestryEntries"]
    assert [e["ImageId"] for e in entries] == [image_id]
    assert "SourceImageId" not in entries[0]
    assert refused(lambda: client("ec2", key=C_KEY, secret=C_SECRET).get_image_ancestry(
        ImageId=image_id))[0] == "InvalidAMIID.NotFound"


def test_dry_run_changes_nothing(client: ClientFactory, snap: str) -> None:
    ec2 = client("ec2")
    before = own_ids(ec2)
    assert refused(lambda: ec2.register_image(
        Name=unique("dry"), RootDeviceName="/dev/xvda", BlockDeviceMappings=[root(snap)],
        DryRun=True))[:2] == ("DryRunOperation", 412)
    assert own_ids(ec2) == before


def test_aws_cli_register_wait_describe(server: ServerProcess, client: ClientFactory) -> None:
    snapshot = write_snapshot(client("ebs", region="eu-west-1"), random_blocks([0]))
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
           "AWS_DEFAULT_REGION": "eu-west-1", "AWS_ENDPOINT_URL": server.url,
           "AWS_MAX_ATTEMPTS": "1"}

    def aws(*args: str) -> Any:
        done = subprocess.run([sys.executable, "-m", "awscli", *args, "--output", "json"],
                              capture_output=True, text=True, env=env, timeout=120)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout) if done.stdout.strip() else None

    name = unique("cli-image")
    image_id = aws("ec2", "register-image", "--name", name, "--root-device-name", "/dev/xvda",
                   "--architecture", "x86_64", "--virtualization-type", "hvm",
                   "--block-device-mappings",
                   json.dumps([{"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": snapshot}}])
                   )["ImageId"]
    assert aws("ec2", "wait", "image-available", "--image-ids", image_id) is None
    images = aws("ec2", "describe-images", "--owners", "self")["Images"]
    mine = [i for i in images if i["ImageId"] == image_id]
    assert len(mine) == 1 and mine[0]["Name"] == name and mine[0]["State"] == "available"
