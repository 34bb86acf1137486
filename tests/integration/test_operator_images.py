"""What only operators do to images, run as an operator would (`snapferry images ...` on the
data dir of a running server), checked through boto3 as users see it: imported public images
owned by `amazon`, Marketplace product codes, regions without paravirtual support."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import boto3
import pytest

from snapferry.testing import ServerProcess

from .blocks import BLOCK, random_blocks, read_digests, write_snapshot
from .conftest import NO_RETRIES, ClientFactory, add_account, run_cli, wait_for
from .test_foundation import refused

AMAZON = "137112412989"
B_ACCOUNT, B_KEY, B_SECRET = "555555555555", "OPERATORIMAGESB", "operator-images-secret-b"
MARKETPLACE_REFUSED = "Images from AWS Marketplace cannot be copied to another AWS account."


@pytest.fixture(scope="module")
def account_b(server: ServerProcess, data_dir: Path) -> str:
    return add_account(data_dir, B_ACCOUNT, B_KEY, B_SECRET)


def unique(prefix: str) -> str:
    return f"{prefix}-{os.urandom(4).hex()}"


def disk_file(path: Path, blocks: dict[int, bytes], tail: int = 1000) -> dict[int, str]:
    """A raw image holding `blocks` (and zeros between them) plus a short last block; returns
    the SHA-256 of every non-zero block as a volume would read it (zero-padded)."""
    last = max(blocks) + 1
    with path.open("wb") as image:
        for index, data in blocks.items():
            image.seek(index * BLOCK)
            image.write(data)
        image.seek(last * BLOCK)
        image.write(b"\x07" * tail)
    padded = {**blocks, last: (b"\x07" * tail).ljust(BLOCK, b"\0")}
    return {index: hashlib.sha256(data).hexdigest() for index, data in padded.items()}


def import_image(data_dir: Path, image: Path, name: str, regions: str, *extra: str
                 ) -> dict[str, tuple[str, str]]:
    done = run_cli("images", "import", str(image), "--name", name, "--regions", regions,
                   *extra, data_dir=data_dir)
    assert done.returncode == 0, done.stderr
    found = {}
    for line in done.stdout.splitlines():
        region, image_id, snapshot_id = line.split()
        found[region] = (image_id, snapshot_id)
    return found


def settled(ec2: Any, image_id: str) -> dict[str, Any]:
    found: dict[str, Any] = {}

    def done() -> bool:
        found.update(ec2.describe_images(ImageIds=[image_id])["Images"][0])
        return found["State"] != "pending"

    wait_for(done, timeout=60)
    return found


def test_an_imported_image_is_amazons_public_image(client: ClientFactory, data_dir: Path,
                                                   tmp_path: Path) -> None:
    expected = disk_file(tmp_path / "al2023.img", random_blocks([0, 1, 7]))
    name = unique("al2023-ami-2023.6.20250101.0-kernel-6.1-x86_64")
    imported = import_image(data_dir, tmp_path / "al2023.img", name, "us-east-1,eu-central-1",
                            "--description", "Amazon Linux 2023 AMI", "--boot-mode",
                            "uefi-preferred")
    assert set(imported) == {"us-east-1", "eu-central-1"}
    ec2 = client("ec2", region="eu-central-1")
    # What Terraform's data "aws_ami" sends: owners, a name filter, then the newest.
    found = ec2.describe_images(Owners=["amazon"], Filters=[
        {"Name": "name", "Values": ["al2023-ami-2023.6.*"]},
        {"Name": "architecture", "Values": ["x86_64"]}])["Images"]
    mine = [image for image in found if image["Name"] == name]
    assert len(mine) == 1
    image = mine[0]
    assert image["ImageId"] == imported["eu-central-1"][0]
    assert (image["OwnerId"], image["ImageOwnerAlias"], image["Public"], image["State"],
            image["VirtualizationType"], image["BootMode"], image["RootDeviceName"],
            image["Description"], image["ImageLocation"]) == (
        AMAZON, "amazon", True, "available", "hvm", "uefi-preferred", "/dev/xvda",
        "Amazon Linux 2023 AMI", f"amazon/{name}")
    root = image["BlockDeviceMappings"][0]["Ebs"]
    assert (root["SnapshotId"], root["VolumeSize"], root["Encrypted"]) == (
        imported["eu-central-1"][1], 1, False)
    # Found by the owner's account id too, by executable users `all`, and not as "self".
    by_id = ec2.describe_images(Owners=[AMAZON], Filters=[{"Name": "name", "Values": [name]}])
    assert [i["ImageId"] for i in by_id["Images"]] == [image["ImageId"]]
    assert image["ImageId"] in {i["ImageId"] for i in ec2.describe_images(
        ExecutableUsers=["all"], Filters=[{"Name": "name", "Values": [name]}])["Images"]}
    assert ec2.describe_images(Owners=["self"], Filters=[
        {"Name": "name", "Values": [name]}])["Images"] == []
    snapshot = ec2.describe_snapshots(SnapshotIds=[root["SnapshotId"]])["Snapshots"][0]
    assert (snapshot["OwnerId"], snapshot["State"]) == (AMAZON, "completed")
    assert root["SnapshotId"] in {s["SnapshotId"] for s in ec2.describe_snapshots(
        RestorableByUserIds=["all"], OwnerIds=["amazon"])["Snapshots"]}

    # Any account copies it; the copy is its own and holds the file's blocks.
    there = client("ec2", region="eu-west-2")
    copy_id = there.copy_image(SourceRegion="eu-central-1", SourceImageId=image["ImageId"],
                               Name=unique("my-al2023"))["ImageId"]
    copy = settled(there, copy_id)
    assert (copy["State"], copy["OwnerId"], copy.get("ImageOwnerAlias"), copy["Public"]) == (
        "available", "000000000000", None, False)
    copied = copy["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
    assert read_digests(client("ebs", region="eu-west-2"), copied) == expected
    ancestry = there.get_image_ancestry(ImageId=copy_id)["ImageAncestryEntries"]
    assert [(e["ImageId"], e.get("ImageOwnerAlias")) for e in ancestry] == [
        (copy_id, None), (image["ImageId"], "amazon")]


def test_refused_imports_leave_nothing(client: ClientFactory, data_dir: Path,
                                       tmp_path: Path) -> None:
    ec2 = client("ec2", region="ap-south-1")

    def listed() -> list[str]:
        return [i["ImageId"] for i in ec2.describe_images(Owners=["amazon"])["Images"]]

    raw = tmp_path / "disk.img"
    disk_file(raw, random_blocks([0]))
    name = unique("base")
    first = import_image(data_dir, raw, name, "ap-south-1")
    before = listed()
    assert before == [first["ap-south-1"][0]]
    qcow = tmp_path / "disk.qcow2"
    qcow.write_bytes(b"QFI\xfb" + bytes(4096))
    empty = tmp_path / "empty.img"
    empty.write_bytes(b"")
    for args, says in [
        ((str(qcow), "--name", unique("q"), "--regions", "ap-south-1"), "qemu-img convert"),
        ((str(empty), "--name", unique("e"), "--regions", "ap-south-1"), "is empty"),
        ((str(raw), "--name", "no", "--regions", "ap-south-1"), "between 3 and 128"),
        ((str(raw), "--name", unique("r"), "--regions", "ap-south-1,mars-east-1"),
         "not a region: mars-east-1"),
        # The name is taken in one of the regions: nothing is written in the other either
        # (af-south-1 is imported into first).
        ((str(raw), "--name", name, "--regions", "ap-south-1,af-south-1"), "already in use"),
        ((str(raw), "--name", unique("a"), "--regions", "ap-south-1", "--architecture",
          "sparc"), "sparc"),
    ]:
        done = run_cli("images", "import", *args, data_dir=data_dir)
        assert done.returncode == 2 and says in done.stderr, (args, done.stderr)
    assert listed() == before
    elsewhere = client("ec2", region="af-south-1")
    assert elsewhere.describe_images(Owners=["amazon"])["Images"] == []
    assert elsewhere.describe_snapshots(OwnerIds=["amazon"])["Snapshots"] == []


def test_marketplace_images_of_other_accounts_cannot_be_copied(
        client: ClientFactory, data_dir: Path, account_b: str) -> None:
    seller = client("ec2", region="us-west-2", key=B_KEY, secret=B_SECRET)
    snapshot = write_snapshot(client("ebs", region="us-west-2", key=B_KEY, secret=B_SECRET),
                              random_blocks([0, 3]))
    image_id = seller.register_image(
        Name=unique("product"), RootDeviceName="/dev/xvda", VirtualizationType="hvm",
        BlockDeviceMappings=[{"DeviceName": "/dev/xvda",
                              "Ebs": {"SnapshotId": snapshot}}])["ImageId"]
    seller.modify_image_attribute(ImageId=image_id, LaunchPermission={
        "Add": [{"UserId": "000000000000"}]})
    seller.modify_snapshot_attribute(SnapshotId=snapshot, Attribute="createVolumePermission",
                                     OperationType="add", UserIds=["000000000000"])
    buyer = client("ec2", region="us-west-1")
    # Shared, without a product code: the buyer may copy it.
    plain = buyer.copy_image(SourceRegion="us-west-2", SourceImageId=image_id,
                             Name=unique("plain"))["ImageId"]
    assert settled(buyer, plain)["ProductCodes"] == []

    code = "aw0evgkw8e5c1q413zgy5pjce"
    marked = run_cli("images", "product-code", image_id, "--region", "us-west-2", "--code",
                     code, data_dir=data_dir)
    assert marked.returncode == 0, marked.stderr
    codes = [{"ProductCodeId": code, "ProductCodeType": "marketplace"}]
    assert seller.describe_images(ImageIds=[image_id])["Images"][0]["ProductCodes"] == codes
    assert seller.describe_image_attribute(ImageId=image_id, Attribute="productCodes")[
        "ProductCodes"] == codes
    assert [i["ImageId"] for i in seller.describe_images(Owners=["self"], Filters=[
        {"Name": "product-code", "Values": [code]},
        {"Name": "product-code.type", "Values": ["marketplace"]}])["Images"]] == [image_id]
    assert seller.describe_images(Owners=["self"], Filters=[
        {"Name": "product-code.type", "Values": ["devpay"]}])["Images"] == []

    owned = {i["ImageId"] for i in buyer.describe_images(Owners=["self"])["Images"]}
    assert refused(lambda: buyer.copy_image(
        SourceRegion="us-west-2", SourceImageId=image_id, Name=unique("pirate"))) == (
        "InvalidRequest", 400, MARKETPLACE_REFUSED)
    assert {i["ImageId"] for i in buyer.describe_images(Owners=["self"])["Images"]} == owned
    # Its owner copies it, and the copy keeps the code: shared on, it is refused too.
    own_copy = seller.copy_image(SourceRegion="us-west-2", SourceImageId=image_id,
                                 Name=unique("derived"))["ImageId"]
    assert settled(seller, own_copy)["ProductCodes"] == codes
    seller.modify_image_attribute(ImageId=own_copy, LaunchPermission={
        "Add": [{"UserId": "000000000000"}]})
    for device in seller.describe_images(ImageIds=[own_copy])["Images"][0][
            "BlockDeviceMappings"]:
        seller.modify_snapshot_attribute(
            SnapshotId=device["Ebs"]["SnapshotId"], Attribute="createVolumePermission",
            OperationType="add", UserIds=["000000000000"])
    assert refused(lambda: client("ec2", region="us-west-2").copy_image(
        SourceRegion="us-west-2", SourceImageId=own_copy, Name=unique("pirate")))[2] == \
        MARKETPLACE_REFUSED
    # And an image with a product code is never made public.
    code_, status, message = refused(lambda: seller.modify_image_attribute(
        ImageId=image_id, LaunchPermission={"Add": [{"Group": "all"}]}))
    assert (code_, status) == ("InvalidParameterValue", 400) and "Marketplace" in message
    assert seller.describe_images(ImageIds=[image_id])["Images"][0]["Public"] is False


def test_product_code_command_refuses_bad_input(data_dir: Path, client: ClientFactory) -> None:
    for args, says in [
        (("ami-0123456789abcdef0", "--region", "us-east-1", "--code", "abcdefgh1234"),
         "does not exist"),
        (("ami-0123456789abcdef0", "--region", "us-east-1", "--code", "NOT-A-CODE"),
         "lowercase letters and digits"),
    ]:
        done = run_cli("images", "product-code", *args, data_dir=data_dir)
        assert done.returncode == 2 and says in done.stderr, done.stderr


def test_regions_without_paravirtual_support(tmp_path: Path) -> None:
    bad = run_cli("serve", "--port", "0", "--no-paravirtual-regions", "eu-west-3,nowhere-1",
                  data_dir=tmp_path / "bad")
    assert bad.returncode == 2 and "not a region: nowhere-1" in bad.stderr
    with ServerProcess(tmp_path / "data", ["--no-paravirtual-regions", "eu-west-3,eu-north-1",
                                           "--copy-workers", "0"]) as server:
        kw: dict[str, Any] = {"endpoint_url": server.url, "aws_access_key_id": "test",
                              "aws_secret_access_key": "test", "config": NO_RETRIES}
        old, new = (boto3.client("ec2", region_name=r, **kw) for r in ("us-east-1",
                                                                       "eu-west-3"))
        here = write_snapshot(boto3.client("ebs", region_name="us-east-1", **kw),
                              random_blocks([0]))
        there = write_snapshot(boto3.client("ebs", region_name="eu-west-3", **kw),
                               random_blocks([0]))

        def register(ec2: Any, snapshot: str, **kind: Any) -> str:
            return ec2.register_image(
                Name=unique("img"), RootDeviceName="/dev/sda1", **kind,
                BlockDeviceMappings=[{"DeviceName": "/dev/sda1",
                                      "Ebs": {"SnapshotId": snapshot}}])["ImageId"]

        # RegisterImage's default is paravirtual: refused there, as an explicit PV is.
        for kind in ({}, {"VirtualizationType": "paravirtual"}):
            code, status, message = refused(lambda kind=kind: register(new, there, **kind))
            assert (code, status) == ("InvalidParameterValue", 400)
            assert "Paravirtual (PV) images are not supported in eu-west-3" in message
        assert new.describe_images(Owners=["self"])["Images"] == []
        assert new.describe_images(ImageIds=[register(new, there, VirtualizationType="hvm")])[
            "Images"][0]["VirtualizationType"] == "hvm"

        pv, hvm = register(old, here), register(old, here, VirtualizationType="hvm")
        images = len(new.describe_images(Owners=["self"])["Images"])
        code, status, message = refused(lambda: new.copy_image(
            SourceRegion="us-east-1", SourceImageId=pv, Name=unique("pv")))
        assert (code, status) == ("UnsupportedOperation", 400) and "eu-west-3" in message
        assert len(new.describe_images(Owners=["self"])["Images"]) == images
        snapshots = new.describe_snapshots(OwnerIds=["self"])["Snapshots"]
        assert [s["SnapshotId"] for s in snapshots] == [there]  # no snapshot copy queued
        new.copy_image(SourceRegion="us-east-1", SourceImageId=hvm, Name=unique("hvm"))
        # Elsewhere PV images copy as before.
        boto3.client("ec2", region_name="eu-west-1", **kw).copy_image(
            SourceRegion="us-east-1", SourceImageId=pv, Name=unique("pv"))


def test_uefi_data_of_an_image_id_is_answered_as_aws_does(client: ClientFactory) -> None:
    """Terraform reads every AMI's UEFI data this way and ignores the error: no instances run
    here, so an instance id is unknown and an image id is not an instance id."""
    ec2 = client("ec2")
    assert refused(lambda: ec2.get_instance_uefi_data(InstanceId="ami-0123456789abcdef0"))[
        :2] == ("InvalidInstanceID.Malformed", 400)
    code, status, message = refused(lambda: ec2.get_instance_uefi_data(
        InstanceId="i-0123456789abcdef0"))
    assert (code, status, message) == (
        "InvalidInstanceID.NotFound", 400, "The instance ID 'i-0123456789abcdef0' does not exist")
