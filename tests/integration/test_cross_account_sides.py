"""Both sides of a cross-account decision in one evaluation: the caller's identity policies
and the resource's own say (a snapshot's createVolumePermission, a KMS key's policy). The
encoded authorization message says which side allowed and which did not.

Three accounts: A (the development account) owns the snapshot and the key and shares them
with B; C is shared nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from snapferry.testing import ServerProcess

from .blocks import random_blocks, write_snapshot
from .conftest import add_account, sts_clients
from .test_foundation import refused
from .test_permissions import Creds, allow, new_user

REGION = "us-east-1"
B_ACCOUNT, B_KEY, B_SECRET = "333333333333", "ROOTKEYOFTHEB", "root-secret-of-the-b"
C_ACCOUNT, C_KEY, C_SECRET = "444444444444", "ROOTKEYOFTHEC", "root-secret-of-the-c"
B_ROOT: Creds = (B_KEY, B_SECRET, None)
C_ROOT: Creds = (C_KEY, C_SECRET, None)


@pytest.fixture(scope="module")
def server(data_dir: Path) -> Iterator[ServerProcess]:
    add_account(data_dir, B_ACCOUNT, B_KEY, B_SECRET)
    add_account(data_dir, C_ACCOUNT, C_KEY, C_SECRET)
    with ServerProcess(data_dir) as process:
        yield process


@pytest.fixture(scope="module")
def make(server: ServerProcess) -> Any:
    return sts_clients(server)


@pytest.fixture(scope="module")
def shared(make: Any) -> str:
    """A's snapshot, shared with B."""
    snapshot_id = write_snapshot(make("ebs"), random_blocks([0, 2]))
    make("ec2").modify_snapshot_attribute(SnapshotId=snapshot_id,
                                          Attribute="createVolumePermission",
                                          OperationType="add", UserIds=[B_ACCOUNT])
    return snapshot_id


def decoded(make: Any, root: Creds, message: str) -> dict[str, Any]:
    encoded = message.rsplit("Encoded authorization failure message: ", 1)[1]
    text = make("sts", root).decode_authorization_message(EncodedMessage=encoded)
    return dict(json.loads(text["DecodedMessage"]))


def sources(message: dict[str, Any]) -> set[tuple[str, str, str]]:
    return {(m["source"], m["policy"], m["effect"])
            for m in message["matchedStatements"]["items"]}


def test_the_permission_list_allows_and_the_identity_side_is_what_refuses(
        make: Any, shared: str) -> None:
    """B's user may copy snapshots tagged share=dr (IfExists: the new snapshot has no tags
    yet): before the lookup that may hold, so the decision is made on the snapshot found,
    with A's list as its resource side."""
    make("ec2").create_tags(Resources=[shared], Tags=[{"Key": "share", "Value": "later"}])
    tagged = allow("ec2:CopySnapshot", Condition={"StringEqualsIfExists": {
        "ec2:ResourceTag/share": "dr"}})
    copier = make("ec2", new_user(make, tagged, root=B_ROOT))
    code, _, message = refused(lambda: copier.copy_snapshot(SourceRegion=REGION,
                                                            SourceSnapshotId=shared))
    assert code == "UnauthorizedOperation"
    assert "because no identity-based policy allows the ec2:CopySnapshot action" in message
    found = decoded(make, B_ROOT, message)
    assert found["allowed"] is False and found["explicitDeny"] is False
    # The resource side allowed: A's createVolumePermission names B.
    assert sources(found) == {("resource-based policy", "createVolumePermission", "ALLOW")}
    assert [f["source"] for f in found["failures"]["items"]] == ["identity-based policy"]
    # With the identity side too, B's user copies it.
    make("ec2").create_tags(Resources=[shared], Tags=[{"Key": "share", "Value": "dr"}])
    copy = copier.copy_snapshot(SourceRegion=REGION, SourceSnapshotId=shared)["SnapshotId"]
    assert copy.startswith("snap-")


def test_an_explicit_deny_on_the_shared_snapshot_decides_over_the_list(
        make: Any, shared: str) -> None:
    denied = make("ec2", new_user(make, allow("ec2:*"), {"Version": "2012-10-17", "Statement": [{
        "Sid": "NotFromA", "Effect": "Deny", "Action": "ec2:CopySnapshot",
        "Resource": f"arn:aws:ec2:{REGION}::snapshot/{shared}"}]}, root=B_ROOT))
    code, _, message = refused(lambda: denied.copy_snapshot(SourceRegion=REGION,
                                                            SourceSnapshotId=shared))
    assert code == "UnauthorizedOperation" and "with an explicit deny" in message
    found = decoded(make, B_ROOT, message)
    assert found["explicitDeny"] is True
    assert ("identity-based policy", "p1", "DENY") in sources(found)


def test_a_third_account_is_shared_nothing(make: Any, shared: str) -> None:
    """C's user may copy snapshots by its own policies, but A's list does not name C: EC2
    hides what is not shared with it. C's user without the action is refused first."""
    everything = make("ec2", new_user(make, allow("ec2:*"), root=C_ROOT))
    assert refused(lambda: everything.copy_snapshot(
        SourceRegion=REGION, SourceSnapshotId=shared))[0] == "InvalidSnapshot.NotFound"
    nothing = make("ec2", new_user(make, allow("ec2:DescribeSnapshots"), root=C_ROOT))
    code, _, message = refused(lambda: nothing.copy_snapshot(
        SourceRegion=REGION, SourceSnapshotId=shared))
    assert code == "UnauthorizedOperation"
    assert decoded(make, C_ROOT, message)["matchedStatements"]["items"] == []
    # Once A shares it with C too, the same user copies it.
    make("ec2").modify_snapshot_attribute(SnapshotId=shared, Attribute="createVolumePermission",
                                          OperationType="add", UserIds=[C_ACCOUNT])
    try:
        assert everything.copy_snapshot(SourceRegion=REGION,
                                        SourceSnapshotId=shared)["SnapshotId"]
    finally:
        make("ec2").modify_snapshot_attribute(
            SnapshotId=shared, Attribute="createVolumePermission", OperationType="remove",
            UserIds=[C_ACCOUNT])


def test_a_key_policy_is_the_resource_side_of_kms(make: Any) -> None:
    key_arn = make("kms").create_key(Policy=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Sid": "Owner", "Effect": "Allow",
         "Principal": {"AWS": "arn:aws:iam::000000000000:root"}, "Action": "kms:*",
         "Resource": "*"},
        {"Sid": "B", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{B_ACCOUNT}:root"},
         "Action": "kms:DescribeKey", "Resource": "*"}]}))["KeyMetadata"]["Arn"]
    b_user = make("kms", new_user(make, allow("kms:DescribeKey"), root=B_ROOT))
    assert b_user.describe_key(KeyId=key_arn)["KeyMetadata"]["Arn"] == key_arn
    b_nobody = make("kms", new_user(make, root=B_ROOT))
    code, _, message = refused(lambda: b_nobody.describe_key(KeyId=key_arn))
    assert code == "AccessDeniedException"
    assert "because no identity-based policy allows" in message
    c_user = make("kms", new_user(make, allow("kms:DescribeKey"), root=C_ROOT))
    code, _, message = refused(lambda: c_user.describe_key(KeyId=key_arn))
    assert code == "AccessDeniedException"
    assert "because no resource-based policy allows" in message
