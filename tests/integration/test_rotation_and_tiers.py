"""KMS automatic key rotation (stored per key, reported as AWS reports it) and the snapshot
archive tier (refused clearly): the calls Terraform's AWS provider makes, through boto3."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from botocore.config import Config

from snapferry.testing import ServerProcess

from .blocks import random_blocks, write_snapshot
from .conftest import NO_RETRIES, ClientFactory, add_account
from .test_foundation import refused

E_ACCOUNT, E_KEY, E_SECRET = "666666666666", "ROTATORKEYE", "rotation-secret-of-e"
DAY = dt.timedelta(days=1)


@pytest.fixture(scope="module")
def account_e(server: ServerProcess, data_dir: Path) -> str:
    return add_account(data_dir, E_ACCOUNT, E_KEY, E_SECRET)


def near(when: dt.datetime, expected: dt.datetime) -> bool:
    return abs(when - expected) < dt.timedelta(minutes=5)


def test_rotation_is_stored_per_key(client: ClientFactory) -> None:
    kms = client("kms")
    key = kms.create_key(Description="rotating")["KeyMetadata"]
    other = kms.create_key(Description="not rotating")["KeyMetadata"]["KeyId"]
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"before rotation")["CiphertextBlob"]
    status = kms.get_key_rotation_status(KeyId=key["KeyId"])
    assert (status["KeyRotationEnabled"], status["KeyId"]) == (False, key["Arn"])
    assert "RotationPeriodInDays" not in status and "NextRotationDate" not in status

    kms.enable_key_rotation(KeyId=key["KeyId"])
    now = dt.datetime.now(dt.UTC)
    status = kms.get_key_rotation_status(KeyId=key["Arn"])
    assert (status["KeyRotationEnabled"], status["RotationPeriodInDays"]) == (True, 365)
    assert near(status["NextRotationDate"], now + 365 * DAY)
    first_date = status["NextRotationDate"]
    kms.enable_key_rotation(KeyId=key["KeyId"])  # again, no period: the schedule stays
    assert kms.get_key_rotation_status(KeyId=key["KeyId"])["NextRotationDate"] == first_date
    assert kms.get_key_rotation_status(KeyId=other)["KeyRotationEnabled"] is False

    kms.enable_key_rotation(KeyId=key["KeyId"], RotationPeriodInDays=90)
    status = kms.get_key_rotation_status(KeyId=key["KeyId"])
    assert status["RotationPeriodInDays"] == 90
    assert near(status["NextRotationDate"], now + 90 * DAY)
    unchecked = client("kms", config=NO_RETRIES.merge(Config(parameter_validation=False)))
    for days in (89, 2561):  # botocore itself refuses these; other clients may not
        code, http, message = refused(lambda d=days: unchecked.enable_key_rotation(
            KeyId=key["KeyId"], RotationPeriodInDays=d))
        assert (code, http) == ("ValidationException", 400) and "RotationPeriodInDays" in message
    assert kms.get_key_rotation_status(KeyId=key["KeyId"])["RotationPeriodInDays"] == 90

    # Rotation keeps every older ciphertext readable (the material itself is not replaced).
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"before rotation"
    kms.disable_key_rotation(KeyId=key["KeyId"])
    status = kms.get_key_rotation_status(KeyId=key["KeyId"])
    assert status["KeyRotationEnabled"] is False and "RotationPeriodInDays" not in status


def test_rotation_rules(client: ClientFactory, account_e: str) -> None:
    kms = client("kms")
    managed = kms.describe_key(KeyId="alias/aws/ebs")["KeyMetadata"]
    status = kms.get_key_rotation_status(KeyId=managed["KeyId"])
    assert (status["KeyRotationEnabled"], status["RotationPeriodInDays"]) == (True, 365)
    assert near(status["NextRotationDate"], managed["CreationDate"] + 365 * DAY)
    for change in (kms.enable_key_rotation, kms.disable_key_rotation):
        assert refused(lambda c=change: c(KeyId=managed["KeyId"]))[:2] == (
            "UnsupportedOperationException", 400)

    disabled = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.disable_key(KeyId=disabled)
    assert refused(lambda: kms.enable_key_rotation(KeyId=disabled))[:2] == (
        "DisabledException", 400)
    doomed = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.schedule_key_deletion(KeyId=doomed, PendingWindowInDays=7)
    assert refused(lambda: kms.enable_key_rotation(KeyId=doomed))[:2] == (
        "KMSInvalidStateException", 400)
    assert kms.get_key_rotation_status(KeyId=doomed)["KeyRotationEnabled"] is False
    assert refused(lambda: kms.get_key_rotation_status(
        KeyId="0b0b0b0b-0b0b-0b0b-0b0b-0b0b0b0b0b0b"))[0] == "NotFoundException"
    # Rotation is named by key id or ARN, never by alias.
    assert refused(lambda: kms.get_key_rotation_status(KeyId="alias/aws/ebs"))[0] == \
        "NotFoundException"

    # Another account reads the status when the key policy lets it, and never changes it.
    key = kms.create_key()["KeyMetadata"]
    kms.enable_key_rotation(KeyId=key["KeyId"])
    stranger = client("kms", key=E_KEY, secret=E_SECRET)
    assert refused(lambda: stranger.get_key_rotation_status(KeyId=key["Arn"]))[0] == \
        "AccessDeniedException"
    policy = json.loads(kms.get_key_policy(KeyId=key["KeyId"])["Policy"])
    policy["Statement"].append({
        "Sid": "E reads and tries to change rotation", "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{account_e}:root"},
        "Action": ["kms:GetKeyRotationStatus", "kms:EnableKeyRotation",
                   "kms:DisableKeyRotation"], "Resource": "*"})
    kms.put_key_policy(KeyId=key["KeyId"], Policy=json.dumps(policy))
    assert stranger.get_key_rotation_status(KeyId=key["Arn"])["KeyRotationEnabled"] is True
    for change in (stranger.enable_key_rotation, stranger.disable_key_rotation):
        assert refused(lambda c=change: c(KeyId=key["Arn"]))[0] == "NotFoundException"
    assert kms.get_key_rotation_status(KeyId=key["KeyId"])["KeyRotationEnabled"] is True


def test_archive_tier_is_refused_and_changes_nothing(client: ClientFactory,
                                                     account_e: str) -> None:
    ec2 = client("ec2")
    snapshot = write_snapshot(client("ebs"), random_blocks([1]))
    code, http, message = refused(lambda: ec2.modify_snapshot_tier(SnapshotId=snapshot,
                                                                   StorageTier="archive"))
    assert (code, http) == ("UnsupportedOperation", 400)
    assert snapshot in message and "standard tier" in message
    assert refused(lambda: ec2.modify_snapshot_tier(SnapshotId=snapshot, StorageTier="cold"))[
        :2] == ("InvalidParameterValue", 400)
    assert refused(lambda: ec2.modify_snapshot_tier(SnapshotId=snapshot, StorageTier="archive",
                                                    DryRun=True))[0] == "UnsupportedOperation"
    code, http, message = refused(lambda: ec2.restore_snapshot_tier(SnapshotId=snapshot,
                                                                    PermanentRestore=True))
    assert (code, http) == ("IncorrectState", 400) and "not archived" in message
    described = ec2.describe_snapshots(SnapshotIds=[snapshot])["Snapshots"][0]
    assert (described["StorageTier"], described["State"]) == ("standard", "completed")

    assert refused(lambda: ec2.modify_snapshot_tier(SnapshotId="snap-0123456789abcdef0",
                                                    StorageTier="archive"))[0] == \
        "InvalidSnapshot.NotFound"
    stranger = client("ec2", key=E_KEY, secret=E_SECRET)
    for call in (lambda: stranger.modify_snapshot_tier(SnapshotId=snapshot, StorageTier="archive"),
                 lambda: stranger.restore_snapshot_tier(SnapshotId=snapshot,
                                                        TemporaryRestoreDays=1)):
        assert refused(call)[0] == "InvalidSnapshot.NotFound"
