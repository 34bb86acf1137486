"""A real KMS and encryption at rest: keys named four ways, policies and grants between
accounts, encrypted snapshots whose plaintext never reaches the disk."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from snapferry.testing import ServerProcess, block_store_of, stored_block_keys

from .blocks import (
    BLOCK,
    digests,
    list_blocks,
    random_blocks,
    read_digests,
    stored_bytes,
    write_snapshot,
)
from .conftest import ClientFactory, add_account, wait_for
from .test_foundation import refused

C_ACCOUNT, C_KEY, C_SECRET = "444444444444", "KMSKEYOFC", "kms-secret-of-c"


@pytest.fixture(scope="module")
def account_c(server: ServerProcess, data_dir: Path) -> str:
    return add_account(data_dir, C_ACCOUNT, C_KEY, C_SECRET)


def key_forms(kms, alias: str):  # type: ignore[no-untyped-def]
    key = kms.create_key(Description="forms")["KeyMetadata"]
    kms.create_alias(AliasName=alias, TargetKeyId=key["KeyId"])
    region, account = key["Arn"].split(":")[3:5]
    return key, [key["KeyId"], key["Arn"], alias, f"arn:aws:kms:{region}:{account}:{alias}"]


def test_every_key_form_names_the_same_key(client: ClientFactory) -> None:
    kms, ec2 = client("kms"), client("ec2")
    key, forms = key_forms(kms, "alias/four-forms")
    for form in forms:
        assert kms.describe_key(KeyId=form)["KeyMetadata"]["Arn"] == key["Arn"]
        assert kms.encrypt(KeyId=form, Plaintext=b"x")["KeyId"] == key["Arn"]
        volume = ec2.create_volume(AvailabilityZone="us-east-1a", Size=1, Encrypted=True,
                                   KmsKeyId=form)
        assert (volume["Encrypted"], volume["KmsKeyId"]) == (True, key["Arn"])
    assert refused(lambda: kms.describe_key(KeyId="alias/nope"))[0] == "NotFoundException"
    assert refused(lambda: kms.describe_key(KeyId="not-a-key"))[0] == "NotFoundException"
    code, _, _ = refused(lambda: ec2.create_volume(AvailabilityZone="us-east-1a", Size=1,
                                                   KmsKeyId=key["Arn"]))
    assert code == "InvalidParameterDependency"


def test_encrypt_decrypt_and_key_states(client: ClientFactory) -> None:
    kms = client("kms")
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    context = {"purpose": "test"}
    blob = kms.encrypt(KeyId=key, Plaintext=b"secret bytes", EncryptionContext=context)
    assert b"secret bytes" not in blob["CiphertextBlob"]
    plain = kms.decrypt(CiphertextBlob=blob["CiphertextBlob"], EncryptionContext=context)
    assert plain["Plaintext"] == b"secret bytes"
    assert refused(lambda: kms.decrypt(CiphertextBlob=blob["CiphertextBlob"]))[0] == (
        "InvalidCiphertextException")
    other = kms.create_key()["KeyMetadata"]["KeyId"]
    assert refused(lambda: kms.decrypt(CiphertextBlob=blob["CiphertextBlob"], KeyId=other,
                                       EncryptionContext=context))[0] == "IncorrectKeyException"
    moved = kms.re_encrypt(CiphertextBlob=blob["CiphertextBlob"], DestinationKeyId=other,
                           SourceEncryptionContext=context)
    assert kms.decrypt(CiphertextBlob=moved["CiphertextBlob"])["Plaintext"] == b"secret bytes"
    data_key = kms.generate_data_key(KeyId=key, KeySpec="AES_256")
    assert len(data_key["Plaintext"]) == 32
    assert kms.decrypt(CiphertextBlob=data_key["CiphertextBlob"])["Plaintext"] == (
        data_key["Plaintext"])

    kms.disable_key(KeyId=key)
    assert refused(lambda: kms.encrypt(KeyId=key, Plaintext=b"x"))[0] == "DisabledException"
    assert refused(lambda: kms.decrypt(CiphertextBlob=blob["CiphertextBlob"],
                                       EncryptionContext=context))[0] == "DisabledException"
    kms.enable_key(KeyId=key)
    assert kms.decrypt(CiphertextBlob=blob["CiphertextBlob"], EncryptionContext=context)
    kms.schedule_key_deletion(KeyId=key, PendingWindowInDays=7)
    assert refused(lambda: kms.encrypt(KeyId=key, Plaintext=b"x"))[0] == (
        "KMSInvalidStateException")
    assert kms.cancel_key_deletion(KeyId=key)["KeyId"].endswith(key)
    assert kms.describe_key(KeyId=key)["KeyMetadata"]["KeyState"] == "Disabled"
    assert refused(lambda: kms.schedule_key_deletion(KeyId=key, PendingWindowInDays=3))[0] == (
        "ValidationException")
    assert refused(lambda: kms.create_alias(AliasName="alias/aws/mine", TargetKeyId=key))[
        0] == "InvalidAliasNameException"
    managed = kms.describe_key(KeyId="alias/aws/ebs")["KeyMetadata"]
    assert managed["KeyManager"] == "AWS"
    assert refused(lambda: kms.disable_key(KeyId=managed["KeyId"]))[0] == (
        "UnsupportedOperationException")


def test_another_account_uses_a_key_only_when_allowed(client: ClientFactory,
                                                      account_c: str) -> None:
    kms = client("kms")
    other = client("kms", key=C_KEY, secret=C_SECRET)
    key = kms.create_key()["KeyMetadata"]
    kms.create_alias(AliasName="alias/shared-later", TargetKeyId=key["KeyId"])
    alias_arn = key["Arn"].split(":key/")[0] + ":alias/shared-later"
    blob = kms.encrypt(KeyId=key["Arn"], Plaintext=b"for c")["CiphertextBlob"]

    assert refused(lambda: other.encrypt(KeyId=key["Arn"], Plaintext=b"x"))[0] == (
        "AccessDeniedException")
    assert refused(lambda: other.decrypt(CiphertextBlob=blob))[0] == "AccessDeniedException"
    assert refused(lambda: other.describe_key(KeyId=key["KeyId"]))[0] == "NotFoundException"

    # A grant lets C decrypt, and nothing else.
    grant = kms.create_grant(KeyId=key["KeyId"], GranteePrincipal=f"arn:aws:iam::{account_c}:root",
                             Operations=["Decrypt"])
    assert other.decrypt(CiphertextBlob=blob)["Plaintext"] == b"for c"
    assert refused(lambda: other.encrypt(KeyId=key["Arn"], Plaintext=b"x"))[0] == (
        "AccessDeniedException")
    kms.revoke_grant(KeyId=key["KeyId"], GrantId=grant["GrantId"])
    assert refused(lambda: other.decrypt(CiphertextBlob=blob))[0] == "AccessDeniedException"

    # The key policy lets C use the key, by key ARN or alias ARN.
    policy = json.loads(kms.get_key_policy(KeyId=key["KeyId"])["Policy"])
    policy["Statement"].append({
        "Sid": "Let C use it", "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{account_c}:root"},
        "Action": ["kms:Encrypt", "kms:Decrypt", "kms:DescribeKey"], "Resource": "*"})
    kms.put_key_policy(KeyId=key["KeyId"], Policy=json.dumps(policy))
    assert other.decrypt(CiphertextBlob=blob)["Plaintext"] == b"for c"
    assert other.encrypt(KeyId=alias_arn, Plaintext=b"x")["KeyId"] == key["Arn"]
    assert other.describe_key(KeyId=key["Arn"])["KeyMetadata"]["KeyId"] == key["KeyId"]
    # A policy that would lock its own account out is refused.
    lockout = {"Version": "2012-10-17", "Statement": [policy["Statement"][1]]}
    assert refused(lambda: kms.put_key_policy(KeyId=key["KeyId"], Policy=json.dumps(lockout)))[
        0] == "MalformedPolicyDocumentException"


def test_encrypted_snapshots_never_store_plaintext(data_dir: Path, client: ClientFactory) -> None:
    ebs, ec2, kms = client("ebs", region="ap-south-1"), client("ec2", region="ap-south-1"), \
        client("kms", region="ap-south-1")
    marker = b"SNAPFERRY-PLAINTEXT-MARKER-0123456789abcdef"  # a pattern to look for
    pattern = (marker * (BLOCK // len(marker) + 1))[:BLOCK]
    blocks = {0: pattern, 7: pattern, 100: pattern[::-1]}
    key = kms.create_key()["KeyMetadata"]["Arn"]
    snap = write_snapshot(ebs, blocks, Encrypted=True, KmsKeyArn=key)
    described = ec2.describe_snapshots(SnapshotIds=[snap])["Snapshots"][0]
    assert (described["Encrypted"], described["KmsKeyId"]) == (True, key)
    assert read_digests(ebs, snap) == digests(blocks)

    # A volume under a new key re-encrypts every block; its snapshot reads back the same.
    other_key = kms.create_key()["KeyMetadata"]["Arn"]
    volume = ec2.create_volume(AvailabilityZone="ap-south-1a", SnapshotId=snap,
                               Encrypted=True, KmsKeyId=other_key)
    assert (volume["State"], volume["KmsKeyId"]) == ("available", other_key)
    again = ec2.create_snapshot(VolumeId=volume["VolumeId"])["SnapshotId"]
    wait_for(lambda: ec2.describe_snapshots(SnapshotIds=[again])["Snapshots"][0]["State"]
             == "completed")
    assert ec2.describe_snapshots(SnapshotIds=[again])["Snapshots"][0]["KmsKeyId"] == other_key
    assert read_digests(ebs, again) == digests(blocks)

    needle = marker * 2
    for where, content in stored_bytes(data_dir):
        assert needle not in content, f"plaintext found in {where}"

    token = ebs.list_snapshot_blocks(SnapshotId=snap)["Blocks"][0]["BlockToken"]
    kms.disable_key(KeyId=key)
    code, _, message = refused(lambda: ebs.get_snapshot_block(SnapshotId=snap, BlockIndex=0,
                                                              BlockToken=token))
    assert code == "ValidationException" and "disabled" in message  # unreadable now
    kms.enable_key(KeyId=key)
    assert ebs.get_snapshot_block(SnapshotId=snap, BlockIndex=0, BlockToken=token)[
        "BlockData"].read() == pattern


def test_a_corrupted_or_swapped_encrypted_block_is_an_error_not_data(
        data_dir: Path, client: ClientFactory) -> None:
    """Reads of encrypted blocks trust AES-GCM instead of hashing the plaintext again
    (storage/blockdata.py read): that holds only while a tampered object and another valid
    object of the same lineage put in a block's place are both refused."""
    ebs = client("ebs", region="eu-north-1")
    blocks = random_blocks([0, 1])
    before = set(stored_block_keys(data_dir))
    snap = write_snapshot(ebs, blocks, Encrypted=True)
    keys = sorted(set(stored_block_keys(data_dir)) - before)
    assert len(keys) == 2  # this snapshot's two objects, one lineage, one data key
    tokens = list_blocks(ebs, snap)

    def read(index: int) -> bytes:
        return bytes(ebs.get_snapshot_block(SnapshotId=snap, BlockIndex=index,
                                            BlockToken=tokens[index])["BlockData"].read())

    with block_store_of(data_dir) as store:
        assert store is not None
        first, second = store.get(keys[0]), store.get(keys[1])

        def replace(key: str, content: bytes) -> None:
            store.delete(key)  # a bucket refuses to overwrite an object
            store.put(key, content)

        try:
            # Swapped: each object holds the other block, valid ciphertext under the same key.
            replace(keys[0], second)
            replace(keys[1], first)
            for index in (0, 1):
                code, status, _ = refused(lambda index=index: read(index))  # type: ignore[misc]
                assert (code, status) == ("InternalServerException", 500)
            # Corrupted: one bit of one object's ciphertext flipped.
            replace(keys[1], second)
            replace(keys[0], first[:1000] + bytes([first[1000] ^ 1]) + first[1001:])
            outcomes = {}
            for index in (0, 1):
                try:
                    outcomes[index] = read(index) == blocks[index]
                except ClientError as error:
                    assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 500
                    outcomes[index] = False
            assert sorted(outcomes.values()) == [False, True]  # the flipped one only
        finally:
            replace(keys[0], first)
            replace(keys[1], second)
    assert {index: read(index) for index in (0, 1)} == blocks  # whole again


def test_encryption_by_default_is_per_region(client: ClientFactory) -> None:
    on, off = client("ec2", region="eu-west-2"), client("ec2", region="eu-west-3")
    on_ebs, off_ebs = client("ebs", region="eu-west-2"), client("ebs", region="eu-west-3")
    assert on.enable_ebs_encryption_by_default()["EbsEncryptionByDefault"] is True
    assert on.get_ebs_encryption_by_default()["EbsEncryptionByDefault"] is True
    assert off.get_ebs_encryption_by_default()["EbsEncryptionByDefault"] is False
    assert on.get_ebs_default_kms_key_id()["KmsKeyId"] == "alias/aws/ebs"

    managed = client("kms", region="eu-west-2").describe_key(KeyId="alias/aws/ebs")[
        "KeyMetadata"]["Arn"]
    volume = on.create_volume(AvailabilityZone="eu-west-2a", Size=1)
    assert (volume["Encrypted"], volume["KmsKeyId"]) == (True, managed)
    plain = off.create_volume(AvailabilityZone="eu-west-3a", Size=1)
    assert plain["Encrypted"] is False and "KmsKeyId" not in plain
    snap_on = on_ebs.start_snapshot(VolumeSize=1)
    snap_off = off_ebs.start_snapshot(VolumeSize=1)
    assert snap_on.get("KmsKeyArn") == managed and "KmsKeyArn" not in snap_off

    # An unencrypted snapshot becomes an encrypted volume where encryption is the default.
    plain_snap = write_snapshot(off_ebs, random_blocks([3]))
    assert off.create_volume(AvailabilityZone="eu-west-3a", SnapshotId=plain_snap)[
        "Encrypted"] is False

    mine = client("kms", region="eu-west-2").create_key()["KeyMetadata"]["Arn"]
    assert on.modify_ebs_default_kms_key_id(KmsKeyId=mine)["KmsKeyId"] == mine
    assert on.create_volume(AvailabilityZone="eu-west-2b", Size=1)["KmsKeyId"] == mine
    assert on.reset_ebs_default_kms_key_id()["KmsKeyId"] == managed
    assert on.disable_ebs_encryption_by_default()["EbsEncryptionByDefault"] is False
    assert on.create_volume(AvailabilityZone="eu-west-2a", Size=1)["Encrypted"] is False


def test_snapshots_under_the_managed_key_cannot_be_shared(client: ClientFactory,
                                                          account_c: str) -> None:
    ebs, ec2 = client("ebs", region="ca-central-1"), client("ec2", region="ca-central-1")
    snap = write_snapshot(ebs, random_blocks([0]), Encrypted=True)
    code, _, message = refused(lambda: ec2.modify_snapshot_attribute(
        SnapshotId=snap, CreateVolumePermission={"Add": [{"UserId": account_c}]}))
    assert code == "InvalidParameterValue" and "AWS managed key" in message
    assert ec2.describe_snapshot_attribute(SnapshotId=snap, Attribute="createVolumePermission")[
        "CreateVolumePermissions"] == []
