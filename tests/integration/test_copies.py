"""CopySnapshot end to end: real blocks copied between regions and accounts, checked block
by block by SHA-256; the encryption rules; asynchronous key and PresignedUrl failures;
incremental copies; a copy surviving SIGKILL."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any
from unittest import mock

import boto3
import pytest

from snapferry.testing import ServerProcess, engine_env

from .blocks import (
    BLOCK,
    digests,
    random_blocks,
    read_digests,
    stored_objects,
    write_snapshot,
)
from .conftest import NO_RETRIES, ClientFactory, add_account, run_cli, wait_for
from .test_foundation import refused

D_ACCOUNT, D_KEY, D_SECRET = "555555555555", "COPIERKEYD", "copier-secret-of-d"
SRC, DST = "us-east-1", "eu-central-1"


def finished(ec2: Any, snapshot_id: str, timeout: float = 60) -> dict[str, Any]:
    """The snapshot once it is no longer pending."""
    found: dict[str, Any] = {}

    def done() -> bool:
        found.update(ec2.describe_snapshots(SnapshotIds=[snapshot_id])["Snapshots"][0])
        return found["State"] != "pending"

    wait_for(done, timeout=timeout)
    return found


def copy_jobs(data_dir: Path) -> dict[str, dict[str, str]]:
    """`snapferry copies`, parsed: destination (snapshot, or a bundle copy's image) id ->
    its columns."""
    listing = run_cli("copies", data_dir=data_dir)
    assert listing.returncode == 0, listing.stderr
    jobs = {}
    for line in listing.stdout.splitlines()[1:]:
        copy, kind, source, dest, state, mode, progress, moved, *_ = line.split()
        jobs[copy] = {"kind": kind, "source": source, "dest": dest, "state": state,
                      "mode": mode, "progress": progress, "bytes": moved}
    return jobs


@pytest.fixture(scope="module")
def account_d(server: ServerProcess, data_dir: Path) -> str:
    return add_account(data_dir, D_ACCOUNT, D_KEY, D_SECRET)


def test_copies_within_and_across_regions(client: ClientFactory, data_dir: Path) -> None:
    ebs = client("ebs", region=SRC)
    blocks = random_blocks([0, 1, 500, 2047])
    source = write_snapshot(ebs, blocks, Description="source")
    here, there = client("ec2", region=SRC), client("ec2", region=DST)

    same = here.copy_snapshot(SourceRegion=SRC, SourceSnapshotId=source, Description="same")
    across = there.copy_snapshot(
        SourceRegion=SRC, SourceSnapshotId=source, Description="across",
        TagSpecifications=[{"ResourceType": "snapshot", "Tags": [{"Key": "k", "Value": "v"}]}])
    assert across["Tags"] == [{"Key": "k", "Value": "v"}]
    pending = there.describe_snapshots(SnapshotIds=[across["SnapshotId"]])["Snapshots"][0]
    assert (pending["VolumeId"], pending["VolumeSize"], pending["OwnerId"],
            pending["Description"]) == ("vol-ffffffff", 1, "000000000000", "across")
    for ec2, copy, region in ((here, same, SRC), (there, across, DST)):
        done = finished(ec2, copy["SnapshotId"])
        assert (done["State"], done["Progress"], done["TransferType"]) == (
            "completed", "100%", "standard")
        assert read_digests(client("ebs", region=region), copy["SnapshotId"]) == digests(blocks)
    # The copy exists only in its destination region.
    assert refused(lambda: here.describe_snapshots(SnapshotIds=[across["SnapshotId"]]))[0] == (
        "InvalidSnapshot.NotFound")
    assert finished(there, across["SnapshotId"])["Tags"] == [{"Key": "k", "Value": "v"}]
    jobs = copy_jobs(data_dir)
    assert jobs[same["SnapshotId"]]["mode"] == "shared"
    assert jobs[same["SnapshotId"]]["bytes"] == "0"  # a same-region copy moves no data
    assert jobs[across["SnapshotId"]]["mode"] == "full"
    assert jobs[across["SnapshotId"]]["bytes"] == str(4 * BLOCK)


def test_encryption_rules_and_the_four_key_forms(client: ClientFactory) -> None:
    ebs, kms_dst = client("ebs", region=SRC), client("kms", region=DST)
    here, there = client("ec2", region=SRC), client("ec2", region=DST)
    blocks = random_blocks([3, 4])
    plain = write_snapshot(ebs, blocks)
    managed_dst = kms_dst.describe_key(KeyId="alias/aws/ebs")["KeyMetadata"]["Arn"]

    def copied(ec2: Any, **args: Any) -> dict[str, Any]:
        copy = ec2.copy_snapshot(SourceRegion=SRC, **args)
        done = finished(ec2, copy["SnapshotId"])
        assert done["State"] == "completed", done.get("StateMessage")
        region = SRC if ec2 is here else DST
        assert read_digests(client("ebs", region=region), copy["SnapshotId"]) == digests(blocks)
        return done

    assert copied(there, SourceSnapshotId=plain)["Encrypted"] is False
    assert copied(there, SourceSnapshotId=plain, Encrypted=True)["KmsKeyId"] == managed_dst
    key = kms_dst.create_key()["KeyMetadata"]
    kms_dst.create_alias(AliasName="alias/copy-target", TargetKeyId=key["KeyId"])
    alias_arn = key["Arn"].split(":key/")[0] + ":alias/copy-target"
    for form in (key["KeyId"], key["Arn"], "alias/copy-target", alias_arn):
        done = copied(there, SourceSnapshotId=plain, Encrypted=True, KmsKeyId=form)
        assert (done["Encrypted"], done["KmsKeyId"]) == (True, key["Arn"])

    # Encrypted sources stay encrypted: the own key within the region, the destination's
    # default key across regions, the named key when one is named.
    kms_src = client("kms", region=SRC)
    src_key = kms_src.create_key()["KeyMetadata"]["Arn"]
    secret = write_snapshot(ebs, blocks, Encrypted=True, KmsKeyArn=src_key)
    assert copied(here, SourceSnapshotId=secret)["KmsKeyId"] == src_key
    assert copied(there, SourceSnapshotId=secret)["KmsKeyId"] == managed_dst
    for form in (key["KeyId"], key["Arn"], "alias/copy-target", alias_arn):
        assert copied(there, SourceSnapshotId=secret, Encrypted=True, KmsKeyId=form)[
            "KmsKeyId"] == key["Arn"]
    src_alias = kms_src.create_alias(AliasName="alias/copy-source", TargetKeyId=src_key)
    assert src_alias["ResponseMetadata"]["HTTPStatusCode"] == 200
    other_src = kms_src.create_key()["KeyMetadata"]["Arn"]
    for form in (src_key.rsplit("/", 1)[1], src_key, "alias/copy-source",
                 src_key.split(":key/")[0] + ":alias/copy-source"):
        assert copied(here, SourceSnapshotId=secret, Encrypted=True, KmsKeyId=form)[
            "KmsKeyId"] == src_key  # the same key named any way: no re-encryption
    assert copied(here, SourceSnapshotId=secret, Encrypted=True, KmsKeyId=other_src)[
        "KmsKeyId"] == other_src
    assert refused(lambda: there.copy_snapshot(SourceRegion=SRC, SourceSnapshotId=secret,
                                               Encrypted=False))[0] == "InvalidParameterValue"

    # Encryption by default in the destination encrypts copies of unencrypted snapshots.
    there.enable_ebs_encryption_by_default()
    try:
        assert copied(there, SourceSnapshotId=plain)["KmsKeyId"] == managed_dst
    finally:
        there.disable_ebs_encryption_by_default()


def test_bad_keys_fail_the_copy_asynchronously(client: ClientFactory, account_d: str) -> None:
    ebs, there, kms_dst = client("ebs", region=SRC), client("ec2", region=DST), \
        client("kms", region=DST)
    plain = write_snapshot(ebs, random_blocks([9]))
    disabled = kms_dst.create_key()["KeyMetadata"]["KeyId"]
    kms_dst.disable_key(KeyId=disabled)
    deleting = kms_dst.create_key()["KeyMetadata"]["KeyId"]
    kms_dst.schedule_key_deletion(KeyId=deleting, PendingWindowInDays=7)
    foreign = client("kms", region=DST, key=D_KEY, secret=D_SECRET).create_key()[
        "KeyMetadata"]["Arn"]
    for bad in ("alias/no-such-key", "0123abcd-0123-0123-0123-0123456789ab", disabled,
                deleting, foreign):
        copy = there.copy_snapshot(SourceRegion=SRC, SourceSnapshotId=plain, Encrypted=True,
                                   KmsKeyId=bad)
        done = finished(there, copy["SnapshotId"])
        assert (done["State"], done["StateMessage"]) == ("error",
                                                         "Given key ID is not accessible"), bad


def test_presigned_urls_are_checked(client: ClientFactory) -> None:
    ebs, there = client("ebs", region=SRC), client("ec2", region=DST)
    plain = write_snapshot(ebs, random_blocks([2]))
    source_client = client("ec2", region=SRC)
    params = {"SourceRegion": SRC, "SourceSnapshotId": plain, "DestinationRegion": DST}
    good = source_client.generate_presigned_url("copy_snapshot", Params=params)
    past = dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)
    with mock.patch("botocore.auth.get_current_datetime", return_value=past):
        stale = source_client.generate_presigned_url("copy_snapshot", Params=params,
                                                     ExpiresIn=3600)
    other_snapshot = write_snapshot(ebs, random_blocks([2]))
    cases = {
        "good": (good, "completed", None),
        "tampered": (good + "&Description=changed", "error", "signature does not verify"),
        "expired": (stale, "error", "expired"),
        "another snapshot": (good.replace(plain, other_snapshot), "error", "SourceSnapshotId"),
    }
    for name, (url, state, message) in cases.items():
        copy = there.copy_snapshot(SourceRegion=SRC, SourceSnapshotId=plain, PresignedUrl=url)
        done = finished(there, copy["SnapshotId"])
        assert done["State"] == state, (name, done.get("StateMessage"))
        if message:
            assert message in done["StateMessage"], (name, done["StateMessage"])


def test_cross_account_copies_of_shared_snapshots(client: ClientFactory, account_d: str) -> None:
    a_ebs, a_ec2, a_kms = client("ebs", region=SRC), client("ec2", region=SRC), \
        client("kms", region=SRC)
    d_ec2 = client("ec2", region=SRC, key=D_KEY, secret=D_SECRET)
    d_ebs = client("ebs", region=SRC, key=D_KEY, secret=D_SECRET)
    blocks = random_blocks([5, 6, 7])
    plain = write_snapshot(a_ebs, blocks)
    assert refused(lambda: d_ec2.copy_snapshot(SourceRegion=SRC, SourceSnapshotId=plain))[
        0] == "InvalidSnapshot.NotFound"
    a_ec2.modify_snapshot_attribute(SnapshotId=plain,
                                    CreateVolumePermission={"Add": [{"UserId": account_d}]})
    copy = d_ec2.copy_snapshot(SourceRegion=SRC, SourceSnapshotId=plain)
    done = finished(d_ec2, copy["SnapshotId"])
    assert (done["State"], done["OwnerId"]) == ("completed", account_d)
    assert read_digests(d_ebs, copy["SnapshotId"]) == digests(blocks)

    key = a_kms.create_key()["KeyMetadata"]
    secret = write_snapshot(a_ebs, blocks, Encrypted=True, KmsKeyArn=key["Arn"])
    a_ec2.modify_snapshot_attribute(SnapshotId=secret,
                                    CreateVolumePermission={"Add": [{"UserId": account_d}]})
    before = d_ec2.copy_snapshot(SourceRegion=SRC, SourceSnapshotId=secret)
    failed = finished(d_ec2, before["SnapshotId"])
    assert (failed["State"], failed["StateMessage"]) == ("error", "Given key ID is not accessible")

    policy = json.loads(a_kms.get_key_policy(KeyId=key["KeyId"])["Policy"])
    policy["Statement"].append({
        "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{account_d}:root"},
        "Action": ["kms:Decrypt", "kms:DescribeKey", "kms:CreateGrant", "kms:ReEncrypt*",
                   "kms:GenerateDataKey*"], "Resource": "*"})
    a_kms.put_key_policy(KeyId=key["KeyId"], Policy=json.dumps(policy))
    after = d_ec2.copy_snapshot(SourceRegion=SRC, SourceSnapshotId=secret)
    done = finished(d_ec2, after["SnapshotId"])
    assert done["State"] == "completed", done.get("StateMessage")
    d_managed = client("kms", region=SRC, key=D_KEY, secret=D_SECRET).describe_key(
        KeyId="alias/aws/ebs")["KeyMetadata"]["Arn"]
    assert done["KmsKeyId"] == d_managed  # a shared source gets the copier's default key
    assert read_digests(d_ebs, after["SnapshotId"]) == digests(blocks)


def test_synchronous_refusals_leave_nothing(client: ClientFactory) -> None:
    ebs, there = client("ebs", region=SRC), client("ec2", region=DST)
    plain = write_snapshot(ebs, random_blocks([1]))
    pending = ebs.start_snapshot(VolumeSize=1)["SnapshotId"]
    before = {s["SnapshotId"] for s in there.describe_snapshots(OwnerIds=["self"])["Snapshots"]}
    copy = {"SourceRegion": SRC, "SourceSnapshotId": plain}
    cases: dict[str, tuple[dict[str, Any], str]] = {
        "invalid region": ({**copy, "SourceRegion": "moon-1"}, "InvalidRegion"),
        "malformed id": ({**copy, "SourceSnapshotId": "snap-xyz"}, "InvalidSnapshotID.Malformed"),
        "unknown id": ({**copy, "SourceSnapshotId": "snap-0123456789abcdef0"},
                       "InvalidSnapshot.NotFound"),
        "wrong region": ({**copy, "SourceRegion": "us-west-1"}, "InvalidSnapshot.NotFound"),
        "pending source": ({**copy, "SourceSnapshotId": pending}, "IncorrectState"),
        "key without encrypted": ({**copy, "KmsKeyId": "alias/aws/ebs"},
                                  "InvalidParameterDependency"),
        "tags for a volume": ({**copy, "TagSpecifications": [
            {"ResourceType": "volume", "Tags": [{"Key": "a", "Value": "b"}]}]},
            "InvalidParameterValue"),
        "aws: tag": ({**copy, "TagSpecifications": [
            {"ResourceType": "snapshot", "Tags": [{"Key": "aws:x", "Value": "b"}]}]},
            "InvalidTagKey.Malformed"),
        "duration not a multiple of 15": ({**copy, "CompletionDurationMinutes": 20},
                                          "InvalidParameterValue"),
        "duration too long": ({**copy, "CompletionDurationMinutes": 2895},
                              "InvalidParameterValue"),
        "outpost": ({**copy, "DestinationOutpostArn": "arn:aws:outposts:x"},
                    "UnsupportedOperation"),
        "dry run": ({**copy, "DryRun": True}, "DryRunOperation"),
    }
    for name, (args, code) in cases.items():
        assert refused(lambda a=args: there.copy_snapshot(**a))[0] == code, name
    after = {s["SnapshotId"] for s in there.describe_snapshots(OwnerIds=["self"])["Snapshots"]}
    assert after == before


def test_time_based_copies_keep_their_duration(client: ClientFactory) -> None:
    ebs, there = client("ebs", region=SRC), client("ec2", region=DST)
    plain = write_snapshot(ebs, random_blocks([1]))
    copy = there.copy_snapshot(SourceRegion=SRC, SourceSnapshotId=plain,
                               CompletionDurationMinutes=15)
    done = finished(there, copy["SnapshotId"])
    assert (done["State"], done["TransferType"], done["CompletionDurationMinutes"]) == (
        "completed", "time-based", 15)
    assert done["CompletionTime"] - done["StartTime"] < dt.timedelta(minutes=15)
    time_based = there.describe_snapshots(Filters=[{"Name": "transfer-type",
                                                    "Values": ["time-based"]}])["Snapshots"]
    assert copy["SnapshotId"] in {s["SnapshotId"] for s in time_based}


def test_incremental_copies_move_only_what_changed(client: ClientFactory, data_dir: Path) -> None:
    ebs, there = client("ebs", region="ap-northeast-1"), client("ec2", region="ap-southeast-1")
    parent_blocks = random_blocks(list(range(128)))  # 64 MiB
    parent = write_snapshot(ebs, parent_blocks)
    first = there.copy_snapshot(SourceRegion="ap-northeast-1", SourceSnapshotId=parent)
    assert finished(there, first["SnapshotId"])["State"] == "completed"

    changed = random_blocks([10, 90])  # about 1.5 % of the blocks
    child = write_snapshot(ebs, changed, parent=parent)
    second = there.copy_snapshot(SourceRegion="ap-northeast-1", SourceSnapshotId=child)
    assert finished(there, second["SnapshotId"])["State"] == "completed"
    expected = {**digests(parent_blocks), **digests(changed)}
    ebs_there = client("ebs", region="ap-southeast-1")
    assert read_digests(ebs_there, second["SnapshotId"]) == expected
    jobs = copy_jobs(data_dir)
    assert (jobs[first["SnapshotId"]]["mode"], jobs[first["SnapshotId"]]["bytes"]) == (
        "full", str(128 * BLOCK))
    assert (jobs[second["SnapshotId"]]["mode"], jobs[second["SnapshotId"]]["bytes"]) == (
        "incremental", str(2 * BLOCK))

    # With the previous copy's source gone there is nothing to diff against: every block is
    # checked, and still only those the destination lacks move.
    more = random_blocks([50])
    grandchild = write_snapshot(ebs, more, parent=child)
    client("ec2", region="ap-northeast-1").delete_snapshot(SnapshotId=child)
    walked = there.copy_snapshot(SourceRegion="ap-northeast-1", SourceSnapshotId=grandchild)
    assert finished(there, walked["SnapshotId"])["State"] == "completed"
    assert (copy_jobs(data_dir)[walked["SnapshotId"]]["mode"],
            copy_jobs(data_dir)[walked["SnapshotId"]]["bytes"]) == ("incremental", str(BLOCK))
    expected = {**expected, **digests(more)}
    assert read_digests(ebs_there, walked["SnapshotId"]) == expected
    child = grandchild

    # The most recent copy deleted: the next copy is full again.
    for copy in (walked, second, first):
        there.delete_snapshot(SnapshotId=copy["SnapshotId"])
    third = there.copy_snapshot(SourceRegion="ap-northeast-1", SourceSnapshotId=child)
    assert finished(there, third["SnapshotId"])["State"] == "completed"
    assert (copy_jobs(data_dir)[third["SnapshotId"]]["mode"],
            copy_jobs(data_dir)[third["SnapshotId"]]["bytes"]) == ("full", str(128 * BLOCK))
    assert read_digests(ebs_there, third["SnapshotId"]) == expected


def test_aws_cli_waits_for_a_copy(server: ServerProcess, client: ClientFactory) -> None:
    plain = write_snapshot(client("ebs", region=SRC), random_blocks([0]))
    copy = client("ec2", region=DST).copy_snapshot(SourceRegion=SRC, SourceSnapshotId=plain)
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
           "AWS_DEFAULT_REGION": DST, "AWS_ENDPOINT_URL": server.url}
    waited = subprocess.run([sys.executable, "-m", "awscli", "ec2", "wait", "snapshot-completed",
                             "--snapshot-ids", copy["SnapshotId"]],
                            capture_output=True, text=True, env=env, timeout=300)
    assert waited.returncode == 0, waited.stderr


def test_the_twenty_first_copy_is_refused(tmp_path: Path) -> None:
    # No workers: copies stay in flight, so the quota is reached deterministically.
    with ServerProcess(tmp_path, ["--copy-workers", "0"]) as idle:
        kw = {"endpoint_url": idle.url, "aws_access_key_id": "test",
              "aws_secret_access_key": "test", "config": NO_RETRIES}
        ebs = boto3.client("ebs", region_name=SRC, **kw)
        there = boto3.client("ec2", region_name=DST, **kw)
        plain = write_snapshot(ebs, random_blocks([0]))
        for _ in range(20):
            there.copy_snapshot(SourceRegion=SRC, SourceSnapshotId=plain)
        assert refused(lambda: there.copy_snapshot(SourceRegion=SRC, SourceSnapshotId=plain))[
            0] == "ResourceLimitExceeded"
        assert len(there.describe_snapshots(OwnerIds=["self"])["Snapshots"]) == 20
        # A copy in flight pins its source.
        assert refused(lambda: boto3.client("ec2", region_name=SRC, **kw).delete_snapshot(
            SnapshotId=plain))[0] == "InvalidSnapshot.InUse"


def test_a_killed_copy_resumes_where_it_stopped(tmp_path: Path) -> None:
    """SIGKILL mid-copy, then a new server resumes at the last checkpoint. What the killed
    worker had put past its checkpoint is found in place and adopted (0 bytes moved): the
    figures account for it, so they hold whatever the machine's load."""
    size = 128  # blocks: 64 MiB, copied at 4 MiB/s: ~16 s, killed after ~3 s
    slow = ["--copy-rate-limit", str(4 * 2**20), "--copy-lease-seconds", "6"]
    first = ServerProcess(tmp_path, slow).start()
    kw = {"endpoint_url": first.url, "aws_access_key_id": "test",
          "aws_secret_access_key": "test", "config": NO_RETRIES}
    blocks = random_blocks(list(range(size)))
    source = write_snapshot(boto3.client("ebs", region_name=SRC, **kw), blocks, size_gib=1)
    there = boto3.client("ec2", region_name=DST, **kw)
    copy = there.copy_snapshot(SourceRegion=SRC, SourceSnapshotId=source)
    snapshot_id = copy["SnapshotId"]

    def progress() -> int:
        return int(there.describe_snapshots(SnapshotIds=[snapshot_id])["Snapshots"][0][
            "Progress"].rstrip("%"))

    wait_for(lambda: progress() >= 20, timeout=60)
    assert first.process is not None
    first.process.send_signal(signal.SIGKILL)
    first.process.wait(timeout=30)
    at_kill = copy_jobs(tmp_path)[snapshot_id]
    done_at_kill = int(at_kill["progress"].split("/")[0])
    assert at_kill["progress"] == f"{done_at_kill}/{size}"
    assert 0 < done_at_kill < size
    # Every block before the checkpoint was moved by the first worker, none adopted.
    assert int(at_kill["bytes"]) == done_at_kill * BLOCK
    # Put past the checkpoint, not recorded: the next worker adopts these.
    adopted = stored_objects(tmp_path) - size - done_at_kill
    assert 0 <= adopted <= size - done_at_kill

    with ServerProcess(tmp_path, ["--copy-lease-seconds", "6"]) as again:
        kw["endpoint_url"] = again.url
        there = boto3.client("ec2", region_name=DST, **kw)
        done = finished(there, snapshot_id, timeout=120)
        assert done["State"] == "completed", done.get("StateMessage")
        assert read_digests(boto3.client("ebs", region_name=DST, **kw), snapshot_id) == (
            digests(blocks))
        after = copy_jobs(tmp_path)[snapshot_id]
        # Resumed at the checkpoint: the blocks walked add up to the snapshot exactly (a
        # restart at block 0 would count the first worker's blocks twice), and the bytes
        # moved are the first worker's plus every block past the checkpoint not adopted.
        assert after["progress"] == f"{size}/{size}"
        assert int(after["bytes"]) == (size - adopted) * BLOCK
    # Every object belongs to the source or the copy: nothing orphaned.
    assert stored_objects(tmp_path) == 2 * size


def test_a_separate_worker_process_carries_out_copies(tmp_path: Path) -> None:
    with ServerProcess(tmp_path, ["--copy-workers", "0"]) as api:
        kw = {"endpoint_url": api.url, "aws_access_key_id": "test",
              "aws_secret_access_key": "test", "config": NO_RETRIES}
        blocks = random_blocks([0, 1, 2])
        source = write_snapshot(boto3.client("ebs", region_name=SRC, **kw), blocks)
        there = boto3.client("ec2", region_name=DST, **kw)
        copy = there.copy_snapshot(SourceRegion=SRC, SourceSnapshotId=source)["SnapshotId"]
        assert copy_jobs(tmp_path)[copy]["state"] == "queued"  # nothing in the API process
        worker = subprocess.Popen([sys.executable, "-m", "snapferry.cli", "worker",
                                   "--data-dir", str(tmp_path)], stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True,
                                  env={**os.environ, **engine_env(tmp_path)})
        try:
            done = finished(there, copy)
            assert done["State"] == "completed", done.get("StateMessage")
            assert read_digests(boto3.client("ebs", region_name=DST, **kw), copy) == (
                digests(blocks))
        finally:
            worker.send_signal(signal.SIGTERM)
            assert worker.wait(timeout=30) == 0
