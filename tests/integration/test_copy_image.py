"""CopyImage end to end with boto3: a pending image at once, its backing snapshots copied by
the copy engine and read back block by block, `available` or `failed` with a reason, the
encryption table, ClientToken, tags, accounts, stopping a pending copy, the quota."""

from __future__ import annotations

import json
import os
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
import pytest

from snapferry.testing import ServerProcess

from .blocks import digests, random_blocks, read_digests, stored_objects, write_snapshot
from .conftest import NO_RETRIES, ClientFactory, add_account, wait_for
from .test_foundation import refused

B_ACCOUNT, B_KEY, B_SECRET = "666666666666", "COPYIMAGEKEYB", "copy-image-secret-b"
SRC, DST = "us-east-1", "eu-west-1"
STORAGE_FORBIDDEN = "You do not have permission to access the storage of this ami"


@pytest.fixture(scope="module")
def account_b(server: ServerProcess, data_dir: Path) -> str:
    return add_account(data_dir, B_ACCOUNT, B_KEY, B_SECRET)


def unique(prefix: str) -> str:
    return f"{prefix}-{os.urandom(4).hex()}"


def two_disk_image(ec2: Any, ebs: Any, blocks: tuple[dict[int, bytes], dict[int, bytes]],
                   **start: Any) -> tuple[str, list[str]]:
    """An image of a root and a data snapshot, registered in the clients' region."""
    snapshots = [write_snapshot(ebs, blocks[0], **start), write_snapshot(ebs, blocks[1], **start)]
    image_id = ec2.register_image(
        Name=unique("source"), Description="two disks", RootDeviceName="/dev/xvda",
        Architecture="arm64", VirtualizationType="hvm", BootMode="uefi", EnaSupport=True,
        BlockDeviceMappings=[
            {"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": snapshots[0],
                                                "VolumeType": "gp3"}},
            {"DeviceName": "/dev/sdf", "Ebs": {"SnapshotId": snapshots[1],
                                               "DeleteOnTermination": False}},
            {"DeviceName": "/dev/sdb", "VirtualName": "ephemeral0"}])["ImageId"]
    return image_id, snapshots


def image_of(ec2: Any, image_id: str) -> dict[str, Any]:
    found = ec2.describe_images(ImageIds=[image_id])["Images"]
    assert len(found) == 1
    return found[0]


def settled(ec2: Any, image_id: str, timeout: float = 60) -> dict[str, Any]:
    """The image once it is no longer pending."""
    found: dict[str, Any] = {}

    def done() -> bool:
        found.update(image_of(ec2, image_id))
        return found["State"] != "pending"

    wait_for(done, timeout=timeout)
    return found


def snapshot_ids(image: dict[str, Any]) -> list[str]:
    return [m["Ebs"]["SnapshotId"] for m in image["BlockDeviceMappings"]
            if "Ebs" in m and "SnapshotId" in m["Ebs"]]


def own_snapshots(ec2: Any) -> set[str]:
    return {s["SnapshotId"] for s in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]}


def test_a_two_snapshot_image_copied_across_regions(client: ClientFactory) -> None:
    here, there = client("ec2", region=SRC), client("ec2", region=DST)
    blocks = (random_blocks([0, 1, 700]), random_blocks([3, 2047]))
    source, source_snaps = two_disk_image(here, client("ebs", region=SRC), blocks)
    here.create_tags(Resources=[source], Tags=[{"Key": "team", "Value": "web"}])
    here.modify_image_attribute(ImageId=source,
                                LaunchPermission={"Add": [{"UserId": "123456789012"}]})
    name = unique("copy")
    copy = there.copy_image(
        SourceRegion=SRC, SourceImageId=source, Name=name, Description="the copy",
        CopyImageTags=True,
        TagSpecifications=[{"ResourceType": "image", "Tags": [{"Key": "k", "Value": "v"}]},
                           {"ResourceType": "snapshot", "Tags": [{"Key": "s", "Value": "1"}]}],
    )["ImageId"]
    # Pending at once, its source recorded, no snapshot ids yet (as AWS shows it).
    pending = image_of(there, copy)
    assert (pending["State"], pending["SourceImageId"], pending["SourceImageRegion"],
            pending["Name"], pending["Description"]) == ("pending", source, SRC, name,
                                                          "the copy")
    assert snapshot_ids(pending) == []
    assert there.describe_images(Filters=[{"Name": "source-image-id", "Values": [source]}])[
        "Images"][0]["ImageId"] == copy
    there.get_waiter("image_available").wait(ImageIds=[copy],
                                             WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    done = image_of(there, copy)
    assert done["State"] == "available" and "StateReason" not in done
    assert (done["Architecture"], done["VirtualizationType"], done["BootMode"],
            done["EnaSupport"], done["RootDeviceName"]) == ("arm64", "hvm", "uefi", True,
                                                            "/dev/xvda")
    # Own user tags copied, plus the request's; launch permissions never.
    assert {t["Key"]: t["Value"] for t in done["Tags"]} == {"team": "web", "k": "v"}
    assert there.describe_image_attribute(ImageId=copy, Attribute="launchPermission")[
        "LaunchPermissions"] == []
    mappings = {m["DeviceName"]: m for m in done["BlockDeviceMappings"]}
    assert mappings["/dev/sdb"] == {"DeviceName": "/dev/sdb", "VirtualName": "ephemeral0"}
    assert mappings["/dev/xvda"]["Ebs"]["VolumeType"] == "gp3"
    assert mappings["/dev/sdf"]["Ebs"]["DeleteOnTermination"] is False
    new = snapshot_ids(done)
    assert len(new) == 2 and not set(new) & set(source_snaps)
    snaps = {s["SnapshotId"]: s for s in there.describe_snapshots(SnapshotIds=new)["Snapshots"]}
    for snapshot_id in new:
        assert snaps[snapshot_id]["State"] == "completed"
        assert snaps[snapshot_id]["Tags"] == [{"Key": "s", "Value": "1"}]
        assert copy in snaps[snapshot_id]["Description"]
    # Deregistering the source (and deleting its snapshots) leaves the copy whole.
    here.deregister_image(ImageId=source, DeleteAssociatedSnapshots=True)
    dst_ebs = client("ebs", region=DST)
    for snapshot_id, data in zip(new, blocks, strict=True):
        assert read_digests(dst_ebs, snapshot_id) == digests(data)
    assert image_of(there, copy)["State"] == "available"
    assert refused(lambda: there.copy_image(SourceRegion=SRC, SourceImageId=source,
                                            Name=unique("gone")))[0] == "InvalidAMIID.NotFound"
    ancestry = there.get_image_ancestry(ImageId=copy)["ImageAncestryEntries"]
    assert [(e["ImageId"], e.get("SourceImageId")) for e in ancestry] == [
        (copy, source), (source, None)]


def test_encryption_follows_the_table(client: ClientFactory) -> None:
    here, there, kms = client("ec2", region=SRC), client("ec2", region=DST), \
        client("kms", region=DST)
    blocks = (random_blocks([0]), random_blocks([1]))
    plain, _ = two_disk_image(here, client("ebs", region=SRC), blocks)
    managed = kms.describe_key(KeyId="alias/aws/ebs")["KeyMetadata"]["Arn"]
    key = kms.create_key()["KeyMetadata"]
    alias = f"alias/{unique('image-key')}"
    kms.create_alias(AliasName=alias, TargetKeyId=key["KeyId"])

    def copied(**args: Any) -> dict[str, Any]:
        image_id = there.copy_image(SourceRegion=SRC, SourceImageId=plain,
                                    Name=unique("enc"), **args)["ImageId"]
        done = settled(there, image_id)
        assert done["State"] == "available", done.get("StateReason")
        return done

    def keys(image: dict[str, Any]) -> set[tuple[bool, str | None]]:
        snaps = there.describe_snapshots(SnapshotIds=snapshot_ids(image))["Snapshots"]
        assert {(m["Ebs"]["Encrypted"], m["Ebs"].get("KmsKeyId"))
                for m in image["BlockDeviceMappings"] if "Ebs" in m} == {
            (s["Encrypted"], s.get("KmsKeyId")) for s in snaps}
        return {(s["Encrypted"], s.get("KmsKeyId")) for s in snaps}

    assert keys(copied()) == {(False, None)}
    assert keys(copied(Encrypted=True)) == {(True, managed)}
    encrypted = copied(Encrypted=True, KmsKeyId=alias)
    assert keys(encrypted) == {(True, key["Arn"])}
    # Every other way of naming the key: its id, its ARN, the alias's ARN.
    alias_arn = key["Arn"].replace(f"key/{key['KeyId']}", alias)
    for form in (key["KeyId"], key["Arn"], alias_arn):
        assert keys(copied(Encrypted=True, KmsKeyId=form)) == {(True, key["Arn"])}, form
    dst_ebs = client("ebs", region=DST)
    for snapshot_id, data in zip(snapshot_ids(encrypted), blocks, strict=True):
        assert read_digests(dst_ebs, snapshot_id) == digests(data)
    # Encrypted=false on an encrypted source (Terraform and Ansible send it): still encrypted.
    again = there.copy_image(SourceRegion=DST, SourceImageId=encrypted["ImageId"],
                             Name=unique("stays"), Encrypted=False)["ImageId"]
    assert keys(settled(there, again)) == {(True, key["Arn"])}
    # Re-encrypted under another key.
    other = kms.create_key()["KeyMetadata"]["Arn"]
    moved = there.copy_image(SourceRegion=DST, SourceImageId=encrypted["ImageId"],
                             Name=unique("moved"), Encrypted=True, KmsKeyId=other)["ImageId"]
    assert keys(settled(there, moved)) == {(True, other)}
    # Encryption by default applies to every snapshot of the copy.
    there.enable_ebs_encryption_by_default()
    try:
        assert keys(copied()) == {(True, managed)}
    finally:
        there.disable_ebs_encryption_by_default()
    assert refused(lambda: there.copy_image(SourceRegion=SRC, SourceImageId=plain,
                                            Name=unique("x"), KmsKeyId=other))[0] == (
        "InvalidParameterDependency")


def test_a_bad_key_fails_the_copy_asynchronously(client: ClientFactory) -> None:
    here, there = client("ec2", region=SRC), client("ec2", region=DST)
    source, _ = two_disk_image(here, client("ebs", region=SRC),
                               (random_blocks([0, 1]), random_blocks([2])))
    before = own_snapshots(there)
    copy = there.copy_image(SourceRegion=SRC, SourceImageId=source, Name=unique("bad"),
                            Encrypted=True, KmsKeyId="alias/no-such-key")["ImageId"]
    done = settled(there, copy)
    assert done["State"] == "failed"
    assert done["StateReason"]["Code"] == "Server.InternalError"
    assert done["StateReason"]["Message"].startswith("Copy image failed with an internal error")
    assert "Given key ID is not accessible" in done["StateReason"]["Message"]
    # Both snapshot copies are gone: the failed one and its sibling.
    wait_for(lambda: own_snapshots(there) == before)
    with pytest.raises(Exception, match=r"ResourceNotReady|failed"):
        there.get_waiter("image_available").wait(ImageIds=[copy],
                                                 WaiterConfig={"Delay": 1, "MaxAttempts": 5})


def test_client_token_names_one_copy(client: ClientFactory) -> None:
    here, there = client("ec2", region=SRC), client("ec2", region=DST)
    source, _ = two_disk_image(here, client("ebs", region=SRC),
                               (random_blocks([0]), random_blocks([1])))
    args = {"SourceRegion": SRC, "SourceImageId": source, "Name": unique("token"),
            "ClientToken": unique("token")}
    here.create_tags(Resources=[source], Tags=[{"Key": "team", "Value": "web"}])
    first = there.copy_image(**args)["ImageId"]
    assert "Tags" not in image_of(there, first)  # tags only with CopyImageTags
    assert there.copy_image(**args)["ImageId"] == first
    assert settled(there, first)["State"] == "available"
    assert there.copy_image(**args)["ImageId"] == first  # also once the copy finished
    assert len(there.describe_images(
        Filters=[{"Name": "name", "Values": [args["Name"]]}])["Images"]) == 1
    code, status, _ = refused(lambda: there.copy_image(**{**args, "Description": "other"}))
    assert (code, status) == ("IdempotentParameterMismatch", 400)


def test_synchronous_refusals_change_nothing(client: ClientFactory) -> None:
    here, there = client("ec2", region=SRC), client("ec2", region=DST)
    source, _ = two_disk_image(here, client("ebs", region=SRC),
                               (random_blocks([0]), random_blocks([1])))
    taken = unique("taken")
    settled(there, there.copy_image(SourceRegion=SRC, SourceImageId=source,
                                    Name=taken)["ImageId"])
    images = {i["ImageId"] for i in there.describe_images(Owners=["self"])["Images"]}
    snaps = own_snapshots(there)
    good = {"SourceRegion": SRC, "SourceImageId": source, "Name": unique("ok")}
    cases: dict[str, tuple[dict[str, Any], str]] = {
        "unknown image": ({**good, "SourceImageId": "ami-0123456789abcdef0"},
                          "InvalidAMIID.NotFound"),
        "wrong region": ({**good, "SourceRegion": DST}, "InvalidAMIID.NotFound"),
        "bad name": ({**good, "Name": "bad!name"}, "InvalidAMIName.Malformed"),
        "duplicate name": ({**good, "Name": taken}, "InvalidAMIName.Duplicate"),
        "key without Encrypted": ({**good, "KmsKeyId": "alias/aws/ebs"},
                                  "InvalidParameterDependency"),
        "duration not a multiple of 15": ({**good, "SnapshotCopyCompletionDurationMinutes": 20},
                                          "InvalidParameterValue"),
        "dry run": ({**good, "DryRun": True}, "DryRunOperation"),
        "volume tags": ({**good, "TagSpecifications": [
            {"ResourceType": "volume", "Tags": [{"Key": "a", "Value": "b"}]}]},
            "InvalidParameterValue"),
    }
    for label, (args, code) in cases.items():
        got, status, _ = refused(lambda args=args: there.copy_image(**args))
        assert (got, status) == (code, 412 if code == "DryRunOperation" else 400), label
    assert {i["ImageId"] for i in there.describe_images(Owners=["self"])["Images"]} == images
    assert own_snapshots(there) == snaps
    # Time-based: every snapshot copy carries the duration.
    timed = there.copy_image(**good, SnapshotCopyCompletionDurationMinutes=15)["ImageId"]
    done = settled(there, timed)
    assert done["State"] == "available", done.get("StateReason")
    assert {(s["TransferType"], s["CompletionDurationMinutes"]) for s in there.describe_snapshots(
        SnapshotIds=snapshot_ids(done))["Snapshots"]} == {("time-based", 15)}


def test_cross_account_copies(client: ClientFactory, account_b: str) -> None:
    a_ec2 = client("ec2", region=SRC)
    b_ec2 = client("ec2", region=DST, key=B_KEY, secret=B_SECRET)
    blocks = (random_blocks([0, 9]), random_blocks([4]))
    source, snaps = two_disk_image(a_ec2, client("ebs", region=SRC), blocks)
    a_ec2.create_tags(Resources=[source], Tags=[{"Key": "owner", "Value": "a"}])
    args = {"SourceRegion": SRC, "SourceImageId": source, "Name": unique("theirs"),
            "CopyImageTags": True}
    assert refused(lambda: b_ec2.copy_image(**args))[0] == "InvalidAMIID.NotFound"
    a_ec2.modify_image_attribute(ImageId=source,
                                 LaunchPermission={"Add": [{"UserId": account_b}]})
    assert refused(lambda: b_ec2.copy_image(**args))[::2] == ("InvalidRequest",
                                                               STORAGE_FORBIDDEN)
    a_ec2.modify_snapshot_attribute(SnapshotId=snaps[0],
                                    CreateVolumePermission={"Add": [{"UserId": account_b}]})
    # Every backing snapshot must be shared, not just one.
    assert refused(lambda: b_ec2.copy_image(**args))[::2] == ("InvalidRequest",
                                                               STORAGE_FORBIDDEN)
    a_ec2.modify_snapshot_attribute(SnapshotId=snaps[1],
                                    CreateVolumePermission={"Add": [{"UserId": account_b}]})
    copy = b_ec2.copy_image(**args)["ImageId"]
    done = settled(b_ec2, copy)
    assert (done["State"], done["OwnerId"]) == ("available", account_b)
    assert "Tags" not in done  # another account's tags are never copied
    b_snaps = b_ec2.describe_snapshots(SnapshotIds=snapshot_ids(done))["Snapshots"]
    assert {s["OwnerId"] for s in b_snaps} == {account_b}
    b_ebs = client("ebs", region=DST, key=B_KEY, secret=B_SECRET)
    for snapshot_id, data in zip(snapshot_ids(done), blocks, strict=True):
        assert read_digests(b_ebs, snapshot_id) == digests(data)


def test_cross_account_copy_needs_the_source_key(client: ClientFactory, account_b: str) -> None:
    """Launch and createVolumePermission given, an image under a customer key another
    account may not use fails asynchronously; once the key policy lets it, the copy works."""
    a_ec2, a_kms = client("ec2", region=SRC), client("kms", region=SRC)
    b_ec2 = client("ec2", region=DST, key=B_KEY, secret=B_SECRET)
    key = a_kms.create_key()["KeyMetadata"]
    blocks = (random_blocks([0, 3]), random_blocks([1]))
    source, snaps = two_disk_image(a_ec2, client("ebs", region=SRC), blocks, Encrypted=True,
                                   KmsKeyArn=key["Arn"])
    a_ec2.modify_image_attribute(ImageId=source,
                                 LaunchPermission={"Add": [{"UserId": account_b}]})
    for snapshot in snaps:
        a_ec2.modify_snapshot_attribute(
            SnapshotId=snapshot, CreateVolumePermission={"Add": [{"UserId": account_b}]})
    before = {s["SnapshotId"] for s in b_ec2.describe_snapshots(OwnerIds=["self"])[
        "Snapshots"]}
    failed = settled(b_ec2, b_ec2.copy_image(SourceRegion=SRC, SourceImageId=source,
                                             Name=unique("nokey"))["ImageId"])
    assert failed["State"] == "failed"
    assert "Given key ID is not accessible" in failed["StateReason"]["Message"]
    wait_for(lambda: {s["SnapshotId"] for s in b_ec2.describe_snapshots(OwnerIds=["self"])[
        "Snapshots"]} == before)

    policy = json.loads(a_kms.get_key_policy(KeyId=key["KeyId"])["Policy"])
    policy["Statement"].append({
        "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{account_b}:root"},
        "Action": ["kms:Decrypt", "kms:DescribeKey", "kms:CreateGrant", "kms:ReEncrypt*"],
        "Resource": "*"})
    a_kms.put_key_policy(KeyId=key["KeyId"], Policy=json.dumps(policy))
    done = settled(b_ec2, b_ec2.copy_image(SourceRegion=SRC, SourceImageId=source,
                                           Name=unique("withkey"))["ImageId"])
    assert done["State"] == "available", done.get("StateReason")
    b_managed = client("kms", region=DST, key=B_KEY, secret=B_SECRET).describe_key(
        KeyId="alias/aws/ebs")["KeyMetadata"]["Arn"]
    b_ebs = client("ebs", region=DST, key=B_KEY, secret=B_SECRET)
    for snapshot_id, data in zip(snapshot_ids(done), blocks, strict=True):
        snapshot = b_ec2.describe_snapshots(SnapshotIds=[snapshot_id])["Snapshots"][0]
        assert (snapshot["OwnerId"], snapshot["KmsKeyId"]) == (account_b, b_managed)
        assert read_digests(b_ebs, snapshot_id) == digests(data)


def test_the_101st_concurrent_image_copy_is_refused(tmp_path: Path) -> None:
    """AWS's figure, with no flag: 100 image copies in flight per account and region."""
    with ServerProcess(tmp_path, ["--copy-workers", "0"]) as server:
        kw = {"endpoint_url": server.url, "aws_access_key_id": "test",
              "aws_secret_access_key": "test", "config": NO_RETRIES}
        here = boto3.client("ec2", region_name=SRC, **kw)
        source, _ = two_disk_image(here, boto3.client("ebs", region_name=SRC, **kw),
                                   (random_blocks([0]), random_blocks([1])))

        def copy(number: int) -> str:
            there = boto3.client("ec2", region_name=DST, **kw)
            return str(there.copy_image(SourceRegion=SRC, SourceImageId=source,
                                        Name=f"copy-{number}")["ImageId"])

        with ThreadPoolExecutor(4) as pool:
            assert len(set(pool.map(copy, range(100)))) == 100
        there = boto3.client("ec2", region_name=DST, **kw)
        code, _, message = refused(lambda: copy(100))
        assert code == "ResourceLimitExceeded" and "at most 100 image copies" in message
        assert len(there.describe_images(Owners=["self"])["Images"]) == 100


def test_deregistering_a_pending_copy_removes_what_it_wrote(tmp_path: Path) -> None:
    slow = ["--copy-rate-limit", str(2 * 2**20), "--copy-lease-seconds", "6"]
    with ServerProcess(tmp_path, slow) as server:
        kw = {"endpoint_url": server.url, "aws_access_key_id": "test",
              "aws_secret_access_key": "test", "config": NO_RETRIES}
        here = boto3.client("ec2", region_name=SRC, **kw)
        there = boto3.client("ec2", region_name=DST, **kw)
        source, _ = two_disk_image(here, boto3.client("ebs", region_name=SRC, **kw),
                                   (random_blocks(list(range(48))), random_blocks([0, 1])))
        objects = stored_objects(tmp_path)
        copy = there.copy_image(SourceRegion=SRC, SourceImageId=source,
                                Name=unique("stopped"), Encrypted=True)["ImageId"]

        def moving() -> bool:
            snaps = there.describe_snapshots(OwnerIds=["self"])["Snapshots"]
            return any(s["State"] == "pending" and int(s["Progress"].rstrip("%")) > 0
                       for s in snaps)

        wait_for(moving, timeout=60)
        assert image_of(there, copy)["State"] == "pending"
        assert stored_objects(tmp_path) > objects
        there.deregister_image(ImageId=copy)
        assert there.describe_images(ImageIds=[copy])["Images"] == []
        assert there.describe_snapshots(OwnerIds=["self"])["Snapshots"] == []
        wait_for(lambda: stored_objects(tmp_path) == objects, timeout=30)
        assert here.describe_images(ImageIds=[source])["Images"][0]["State"] == "available"


def test_concurrent_image_copies_are_limited(tmp_path: Path) -> None:
    with ServerProcess(tmp_path, ["--copy-workers", "0", "--copy-image-quota", "2"]) as server:
        kw = {"endpoint_url": server.url, "aws_access_key_id": "test",
              "aws_secret_access_key": "test", "config": NO_RETRIES}
        here = boto3.client("ec2", region_name=SRC, **kw)
        there = boto3.client("ec2", region_name=DST, **kw)
        source, _ = two_disk_image(here, boto3.client("ebs", region_name=SRC, **kw),
                                   (random_blocks([0]), random_blocks([1])))
        for _ in range(2):
            there.copy_image(SourceRegion=SRC, SourceImageId=source, Name=unique("q"))
        code, _, message = refused(lambda: there.copy_image(
            SourceRegion=SRC, SourceImageId=source, Name=unique("q")))
        assert code == "ResourceLimitExceeded" and "at most 2 image copies" in message
        assert len(there.describe_images(Owners=["self"])["Images"]) == 2
        pending = there.describe_images(Owners=["self"])["Images"][0]["ImageId"]
        code, _, message = refused(lambda: here.copy_image(
            SourceRegion=DST, SourceImageId=pending, Name=unique("q")))
        assert code == "InvalidAMIID.Unavailable" and "pending" in message
        # Another region is not limited by these.
        here.copy_image(SourceRegion=SRC, SourceImageId=source, Name=unique("q"))


def test_the_cli_waiter_returns_for_a_copy(client: ClientFactory, server: ServerProcess,
                                           tmp_path: Path) -> None:
    here, there = client("ec2", region=SRC), client("ec2", region=DST)
    source, _ = two_disk_image(here, client("ebs", region=SRC),
                               (random_blocks([0]), random_blocks([1])))
    copy = there.copy_image(SourceRegion=SRC, SourceImageId=source,
                            Name=unique("waited"))["ImageId"]
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
           "AWS_DEFAULT_REGION": DST, "AWS_CONFIG_FILE": str(tmp_path / "none"),
           "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none")}
    waited = subprocess.run(["aws", "--endpoint-url", server.url, "ec2", "wait",
                             "image-available", "--image-ids", copy], env=env,
                            capture_output=True, text=True, timeout=120)
    assert waited.returncode == 0, waited.stderr
    assert image_of(there, copy)["State"] == "available"
    assert json.loads(subprocess.run(
        ["aws", "--endpoint-url", server.url, "ec2", "describe-images", "--image-ids", copy],
        env=env, capture_output=True, text=True, timeout=60).stdout)["Images"][0][
        "SourceImageId"] == source
