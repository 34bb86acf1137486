"""Rules that no test guarded (issue 9, item 5), end to end through boto3: encrypted copies
never at rest in plaintext, incremental copies never across keys, sharing with one account
only, EBS direct writes by the owner only, copies untagged and under the default key set
with ModifyEbsDefaultKmsKeyId, `aws:` refused in any case, a damaged block detected on read,
a deleted pending copy cancelled, the copy quota per account and region."""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest

from snapferry.testing import ServerProcess

from .blocks import (
    BLOCK,
    digests,
    random_blocks,
    read_digests,
    stored_bytes,
    stored_objects,
    write_snapshot,
)
from .conftest import NO_RETRIES, ClientFactory, add_account
from .test_copies import copy_jobs, finished
from .test_foundation import refused

X = ("666666666666", "KEYFORACCOUNTX", "secret-of-account-x")  # shared with
Y = ("777777777777", "KEYFORACCOUNTY", "secret-of-account-y")  # a third party
SRC, DST = "sa-east-1", "ca-central-1"
COPY_KEY_OPERATIONS = ["DescribeKey", "Decrypt", "CreateGrant", "ReEncryptFrom",
                       "GenerateDataKeyWithoutPlaintext", "ReEncryptTo", "Encrypt"]


@pytest.fixture(scope="module")
def accounts(server: ServerProcess, data_dir: Path) -> tuple[str, str]:
    return add_account(data_dir, *X), add_account(data_dir, *Y)


def as_x(client: ClientFactory, service: str, region: str = SRC) -> object:
    return client(service, region=region, key=X[1], secret=X[2])


def as_y(client: ClientFactory, service: str, region: str = SRC) -> object:
    return client(service, region=region, key=Y[1], secret=Y[2])


def marked(marker: bytes) -> bytes:
    return (marker * (BLOCK // len(marker) + 1))[:BLOCK]


def test_copies_of_encrypted_snapshots_store_no_plaintext(
        client: ClientFactory, data_dir: Path, accounts: tuple[str, str]) -> None:
    ebs, ec2, kms = client("ebs", region=SRC), client("ec2", region=SRC), client("kms", region=SRC)
    marker = b"GUARDED-COPY-PLAINTEXT-MARKER-fedcba9876543210"
    blocks = {0: marked(marker), 9: marked(marker)[::-1]}
    key = kms.create_key()["KeyMetadata"]["Arn"]
    snap = write_snapshot(ebs, blocks, Encrypted=True, KmsKeyArn=key)
    there = client("ec2", region=DST)
    copies = {}
    # Full, across regions (under the destination's default key).
    copies["full"] = (there, there.copy_snapshot(SourceRegion=SRC, SourceSnapshotId=snap)[
        "SnapshotId"], blocks)
    finished(there, copies["full"][1])
    # Incremental: a child of the source, copied after the first copy completed.
    changed = {**blocks, 4: marked(marker[::-1])}
    child = write_snapshot(ebs, {4: changed[4]}, parent=snap)
    copies["incremental"] = (there, there.copy_snapshot(SourceRegion=SRC,
                                                        SourceSnapshotId=child)["SnapshotId"],
                             changed)
    # Re-encrypting, in the same region, under another key.
    other = kms.create_key()["KeyMetadata"]["Arn"]
    copies["re-encrypting"] = (ec2, ec2.copy_snapshot(
        SourceRegion=SRC, SourceSnapshotId=snap, Encrypted=True, KmsKeyId=other)["SnapshotId"],
        blocks)
    # Cross-account: shared with X, whose copy re-encrypts under X's own default key.
    ec2.modify_snapshot_attribute(SnapshotId=snap, Attribute="createVolumePermission",
                                  OperationType="add", UserIds=[X[0]])
    kms.create_grant(KeyId=key, GranteePrincipal=f"arn:aws:iam::{X[0]}:root",
                     Operations=COPY_KEY_OPERATIONS)
    x_ec2 = as_x(client, "ec2")
    copies["cross-account"] = (x_ec2, x_ec2.copy_snapshot(  # type: ignore[attr-defined]
        SourceRegion=SRC, SourceSnapshotId=snap)["SnapshotId"], blocks)
    for kind, (owner, copy_id, expected) in copies.items():
        done = finished(owner, copy_id)
        assert (done["State"], done["Encrypted"]) == ("completed", True), (kind, done)
        region = owner.meta.region_name  # type: ignore[attr-defined]
        reader = client("ebs", region=region) if owner is not x_ec2 else as_x(client, "ebs")
        assert read_digests(reader, copy_id) == digests(expected), kind
    assert copy_jobs(data_dir)[copies["incremental"][1]]["mode"] == "incremental"
    needle = marker * 2
    for where, content in stored_bytes(data_dir):
        assert needle not in content, f"plaintext found in {where}"
        assert needle[::-1] not in content, f"plaintext found in {where}"


def test_an_incremental_copy_never_joins_a_lineage_under_another_key(
        client: ClientFactory, data_dir: Path) -> None:
    ebs, there, kms = client("ebs", region=SRC), client("ec2", region=DST), \
        client("kms", region=DST)
    blocks = random_blocks([1, 2])
    snap = write_snapshot(ebs, blocks)
    first_key, second_key = (kms.create_key()["KeyMetadata"]["Arn"] for _ in range(2))
    first = finished(there, there.copy_snapshot(SourceRegion=SRC, SourceSnapshotId=snap,
                                                Encrypted=True, KmsKeyId=first_key)[
        "SnapshotId"])
    same = finished(there, there.copy_snapshot(SourceRegion=SRC, SourceSnapshotId=snap,
                                               Encrypted=True, KmsKeyId=first_key)[
        "SnapshotId"])
    other = finished(there, there.copy_snapshot(SourceRegion=SRC, SourceSnapshotId=snap,
                                                Encrypted=True, KmsKeyId=second_key)[
        "SnapshotId"])
    jobs = copy_jobs(data_dir)
    assert jobs[same["SnapshotId"]]["mode"] == "incremental"
    assert same["DataEncryptionKeyId"] == first["DataEncryptionKeyId"]
    assert jobs[other["SnapshotId"]]["mode"] == "full"
    assert other["DataEncryptionKeyId"] != first["DataEncryptionKeyId"]
    assert other["KmsKeyId"] == second_key
    assert read_digests(client("ebs", region=DST), other["SnapshotId"]) == digests(blocks)


def test_sharing_with_one_account_lets_no_third_account_restore(
        client: ClientFactory, accounts: tuple[str, str]) -> None:
    ebs, ec2 = client("ebs", region=SRC), client("ec2", region=SRC)
    snap = write_snapshot(ebs, random_blocks([3]))
    ec2.modify_snapshot_attribute(SnapshotId=snap, Attribute="createVolumePermission",
                                  OperationType="add", UserIds=[X[0]])
    x_ec2, y_ec2, y_ebs = as_x(client, "ec2"), as_y(client, "ec2"), as_y(client, "ebs")
    volume = x_ec2.create_volume(  # type: ignore[attr-defined]
        AvailabilityZone=f"{SRC}a", SnapshotId=snap)
    assert volume["SnapshotId"] == snap
    assert refused(lambda: y_ec2.create_volume(  # type: ignore[attr-defined]
        AvailabilityZone=f"{SRC}a", SnapshotId=snap))[0] == "InvalidSnapshot.NotFound"
    assert refused(lambda: y_ec2.copy_snapshot(  # type: ignore[attr-defined]
        SourceRegion=SRC, SourceSnapshotId=snap))[0] == "InvalidSnapshot.NotFound"
    assert refused(lambda: y_ebs.list_snapshot_blocks(  # type: ignore[attr-defined]
        SnapshotId=snap))[0] == "ResourceNotFoundException"
    assert y_ec2.describe_snapshots(  # type: ignore[attr-defined]
        RestorableByUserIds=["self"], SnapshotIds=[snap])["Snapshots"] == []


def test_only_the_owner_writes_or_completes_an_ebs_direct_snapshot(
        client: ClientFactory, accounts: tuple[str, str]) -> None:
    ebs, ec2 = client("ebs", region=SRC), client("ec2", region=SRC)
    pending = ebs.start_snapshot(VolumeSize=1)["SnapshotId"]
    ec2.modify_snapshot_attribute(SnapshotId=pending, Attribute="createVolumePermission",
                                  OperationType="add", UserIds=[X[0]])
    from .blocks import put

    data = random_blocks([0])[0]
    for other in (as_x(client, "ebs"), as_y(client, "ebs")):
        assert refused(lambda other=other: put(other, pending, 0, data))[0] in (
            "AccessDeniedException", "ResourceNotFoundException")
        assert refused(lambda other=other: other.complete_snapshot(  # type: ignore[attr-defined]
            SnapshotId=pending, ChangedBlocksCount=0))[0] in (
            "AccessDeniedException", "ResourceNotFoundException")
    assert ec2.describe_snapshots(SnapshotIds=[pending])["Snapshots"][0]["State"] == "pending"
    assert ebs.complete_snapshot(SnapshotId=pending, ChangedBlocksCount=0)["Status"] == (
        "completed")  # nothing was written into it


def test_copies_carry_no_source_tags_and_honour_the_default_key(client: ClientFactory) -> None:
    ebs, ec2 = client("ebs", region=SRC), client("ec2", region=SRC)
    there, kms = client("ec2", region=DST), client("kms", region=DST)
    snap = write_snapshot(ebs, random_blocks([5]))
    ec2.create_tags(Resources=[snap], Tags=[{"Key": "team", "Value": "storage"}])
    key = kms.create_key()["KeyMetadata"]["Arn"]
    there.modify_ebs_default_kms_key_id(KmsKeyId=key)
    try:
        copy = there.copy_snapshot(SourceRegion=SRC, SourceSnapshotId=snap, Encrypted=True,
                                   TagSpecifications=[{"ResourceType": "snapshot", "Tags": [
                                       {"Key": "copy", "Value": "yes"}]}])
        done = finished(there, copy["SnapshotId"])
    finally:
        there.reset_ebs_default_kms_key_id()
    assert done["State"] == "completed", done
    assert done["KmsKeyId"] == key
    assert done.get("Tags") == [{"Key": "copy", "Value": "yes"}]
    untagged = finished(there, there.copy_snapshot(SourceRegion=SRC, SourceSnapshotId=snap)[
        "SnapshotId"])
    assert untagged.get("Tags", []) == []


def test_the_aws_prefix_is_refused_in_any_case(client: ClientFactory) -> None:
    ebs, ec2 = client("ebs", region=SRC), client("ec2", region=SRC)
    snap = write_snapshot(ebs, random_blocks([6]))
    for key in ("aws:x", "AWS:x", "Aws:x", "aWs:x"):
        assert refused(lambda key=key: ec2.create_tags(
            Resources=[snap], Tags=[{"Key": key, "Value": "v"}]))[0] == (
            "InvalidTagKey.Malformed"), key
        assert refused(lambda key=key: ec2.delete_tags(
            Resources=[snap], Tags=[{"Key": key}]))[0] == "InvalidTagKey.Malformed", key
    assert "Tags" not in ec2.describe_snapshots(SnapshotIds=[snap])["Snapshots"][0]


@pytest.mark.embedded_only("damages block files in the data dir; the S3 store's reads go "
                           "through the same SHA-256 check (storage/blockdata.py)")
def test_a_block_damaged_on_disk_is_never_returned(client: ClientFactory,
                                                   data_dir: Path) -> None:
    ebs = client("ebs", region=SRC)
    blocks = random_blocks([0, 1])
    before = {p for p in (data_dir / "blocks").glob("??/*")}
    snap = write_snapshot(ebs, blocks)
    written = sorted({p for p in (data_dir / "blocks").glob("??/*")} - before)
    assert len(written) == 2
    for path in written:
        stored = path.read_bytes()
        path.write_bytes(bytes([stored[0] ^ 0xFF]) + stored[1:])  # always a change
    tokens = {b["BlockIndex"]: b["BlockToken"]
              for b in ebs.list_snapshot_blocks(SnapshotId=snap)["Blocks"]}
    for index, token in tokens.items():
        code, status, message = refused(lambda index=index, token=token: ebs.get_snapshot_block(
            SnapshotId=snap, BlockIndex=index, BlockToken=token))
        # EBS direct's own error for a failure on its side, with what went wrong.
        assert (code, status) == ("InternalServerException", 500)
        assert "does not match its checksum" in message


def test_deleting_a_pending_copy_cancels_it_and_the_quota_is_per_account_and_region(
        tmp_path: Path) -> None:
    # No workers: copies stay pending, deterministically.
    with ServerProcess(tmp_path, ["--copy-workers", "0", "--copy-quota", "2"]) as idle:
        add_account(tmp_path, *X)
        kw = {"endpoint_url": idle.url, "config": NO_RETRIES}
        mine = {"aws_access_key_id": "test", "aws_secret_access_key": "test"}
        ebs = boto3.client("ebs", region_name=SRC, **kw, **mine)
        src_ec2 = boto3.client("ec2", region_name=SRC, **kw, **mine)
        there = boto3.client("ec2", region_name=DST, **kw, **mine)
        elsewhere = boto3.client("ec2", region_name="us-west-2", **kw, **mine)
        x_there = boto3.client("ec2", region_name=DST, aws_access_key_id=X[1],
                               aws_secret_access_key=X[2], **kw)
        snap = write_snapshot(ebs, random_blocks([0]))
        src_ec2.modify_snapshot_attribute(SnapshotId=snap, Attribute="createVolumePermission",
                                          OperationType="add", UserIds=[X[0]])
        doomed = there.copy_snapshot(SourceRegion=SRC, SourceSnapshotId=snap)["SnapshotId"]
        there.copy_snapshot(SourceRegion=SRC, SourceSnapshotId=snap)
        assert refused(lambda: there.copy_snapshot(SourceRegion=SRC, SourceSnapshotId=snap))[
            0] == "ResourceLimitExceeded"
        # Another region of the same account, and another account in the same region.
        elsewhere.copy_snapshot(SourceRegion=SRC, SourceSnapshotId=snap)
        x_there.copy_snapshot(SourceRegion=SRC, SourceSnapshotId=snap)
        # Deleting a pending copy cancels its job, and frees its place in the quota.
        there.delete_snapshot(SnapshotId=doomed)
        assert copy_jobs(tmp_path)[doomed]["state"] == "failed"
        there.copy_snapshot(SourceRegion=SRC, SourceSnapshotId=snap)
        assert stored_objects(tmp_path) == 1  # nothing was copied

