"""IAM before existence: a caller its own policies refuse learns nothing of what exists.

AWS evaluates IAM before it looks a resource up: a user without ec2:DeleteSnapshot gets
UnauthorizedOperation for a snapshot that does not exist, not InvalidSnapshot.NotFound.
Conditions on the resource's own keys (ec2:ResourceTag/*) are judged once it is found; for a
resource that is not there they are missing, and a condition on a missing key does not hold
(unless ...IfExists). Also IAM paths: the ARN a policy judges carries the entity's path.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from snapferry.testing import ServerProcess

from .blocks import random_blocks, write_snapshot
from .conftest import sts_clients
from .test_foundation import refused
from .test_permissions import allow, new_user, unique

REGION = "us-east-1"
NO_SNAPSHOT = "snap-0000000000000000f"
NO_VOLUME = "vol-0000000000000000f"
NO_IMAGE = "ami-0000000000000000f"
NO_KEY = "0000000f-0000-4000-8000-00000000000f"


@pytest.fixture(scope="module")
def make(server: ServerProcess) -> Any:
    return sts_clients(server)


def snapshot_arn(snapshot_id: str) -> str:
    return f"arn:aws:ec2:{REGION}::snapshot/{snapshot_id}"


def new_snapshot(make: Any, tags: dict[str, str] | None = None) -> str:
    snapshot_id = write_snapshot(make("ebs"), random_blocks([0]))
    if tags:
        make("ec2").create_tags(Resources=[snapshot_id],
                                Tags=[{"Key": k, "Value": v} for k, v in tags.items()])
    return snapshot_id


def code_of(call: Any) -> str:
    return str(refused(call)[0])


# ---- EC2 ------------------------------------------------------------------------------------

def test_a_user_without_the_action_is_refused_before_the_lookup(make: Any) -> None:
    nobody = make("ec2", new_user(make))
    assert code_of(lambda: nobody.delete_snapshot(SnapshotId=NO_SNAPSHOT)) == \
        "UnauthorizedOperation"
    assert code_of(lambda: nobody.delete_snapshot(SnapshotId=NO_SNAPSHOT, DryRun=True)) == \
        "UnauthorizedOperation"
    assert code_of(lambda: nobody.delete_volume(VolumeId=NO_VOLUME)) == "UnauthorizedOperation"
    assert code_of(lambda: nobody.deregister_image(ImageId=NO_IMAGE)) == "UnauthorizedOperation"
    # With the actions allowed, the same requests find nothing: the refusal was IAM's.
    allowed = make("ec2", new_user(make, allow(
        ["ec2:DeleteSnapshot", "ec2:DeleteVolume", "ec2:DeregisterImage"])))
    assert code_of(lambda: allowed.delete_snapshot(SnapshotId=NO_SNAPSHOT)) == \
        "InvalidSnapshot.NotFound"
    assert code_of(lambda: allowed.delete_volume(VolumeId=NO_VOLUME)) == "InvalidVolume.NotFound"
    assert code_of(lambda: allowed.deregister_image(ImageId=NO_IMAGE)) == "InvalidAMIID.NotFound"


def test_a_user_allowed_on_one_snapshot_is_refused_on_another_whether_it_exists_or_not(
        make: Any) -> None:
    mine, other = new_snapshot(make), new_snapshot(make)
    ec2 = make("ec2", new_user(make, allow("ec2:DescribeSnapshotAttribute", snapshot_arn(mine))))
    got = ec2.describe_snapshot_attribute(SnapshotId=mine, Attribute="createVolumePermission")
    assert got["SnapshotId"] == mine
    for snapshot_id in (other, NO_SNAPSHOT):
        code, _, message = refused(lambda s=snapshot_id: ec2.describe_snapshot_attribute(
            SnapshotId=s, Attribute="createVolumePermission"))
        assert code == "UnauthorizedOperation"
        assert f"on resource: {snapshot_arn(snapshot_id)}" in message


def test_the_refusal_comes_before_the_resources_state_is_judged(make: Any) -> None:
    """A snapshot an image uses cannot be deleted (InvalidSnapshot.InUse), but a caller who
    may not delete it is told that, not the state of someone else's snapshot."""
    snapshot_id = new_snapshot(make)
    make("ec2").register_image(Name=unique("in-use"), RootDeviceName="/dev/xvda",
                               BlockDeviceMappings=[{"DeviceName": "/dev/xvda",
                                                     "Ebs": {"SnapshotId": snapshot_id}}])
    nobody = make("ec2", new_user(make, allow("ec2:Describe*")))
    assert code_of(lambda: nobody.delete_snapshot(SnapshotId=snapshot_id)) == \
        "UnauthorizedOperation"
    allowed = make("ec2", new_user(make, allow("ec2:DeleteSnapshot")))
    assert code_of(lambda: allowed.delete_snapshot(SnapshotId=snapshot_id)) == \
        "InvalidSnapshot.InUse"


def tag_condition(operator: str) -> dict[str, Any]:
    return allow("ec2:DeleteSnapshot", Condition={operator: {"ec2:ResourceTag/team": "blue"}})


def test_a_resource_tag_condition_is_judged_on_the_found_resource_and_missing_otherwise(
        make: Any) -> None:
    blue, red = new_snapshot(make, {"team": "blue"}), new_snapshot(make, {"team": "red"})
    ec2 = make("ec2", new_user(make, tag_condition("StringEquals")))
    assert code_of(lambda: ec2.delete_snapshot(SnapshotId=red)) == "UnauthorizedOperation"
    # Not there: ec2:ResourceTag/team is missing, so the condition does not hold.
    assert code_of(lambda: ec2.delete_snapshot(SnapshotId=NO_SNAPSHOT)) == \
        "UnauthorizedOperation"
    assert code_of(lambda: ec2.delete_snapshot(SnapshotId=blue, DryRun=True)) == \
        "DryRunOperation"
    ec2.delete_snapshot(SnapshotId=blue)
    # ...IfExists holds when the key is missing: then the snapshot's absence is the answer.
    if_exists = make("ec2", new_user(make, tag_condition("StringEqualsIfExists")))
    assert code_of(lambda: if_exists.delete_snapshot(SnapshotId=NO_SNAPSHOT)) == \
        "InvalidSnapshot.NotFound"
    assert code_of(lambda: if_exists.delete_snapshot(SnapshotId=red)) == "UnauthorizedOperation"


def test_a_deny_on_a_resource_tag_waits_for_the_resource(make: Any) -> None:
    kept = new_snapshot(make, {"keep": "yes"})
    ec2 = make("ec2", new_user(make, allow("ec2:*"), {"Version": "2012-10-17", "Statement": [{
        "Effect": "Deny", "Action": "ec2:DeleteSnapshot", "Resource": "*",
        "Condition": {"StringEquals": {"ec2:ResourceTag/keep": "yes"}}}]}))
    assert code_of(lambda: ec2.delete_snapshot(SnapshotId=kept)) == "UnauthorizedOperation"
    assert code_of(lambda: ec2.delete_snapshot(SnapshotId=NO_SNAPSHOT)) == \
        "InvalidSnapshot.NotFound"
    ec2.delete_snapshot(SnapshotId=new_snapshot(make, {"keep": "no"}))


# ---- EBS direct, KMS, IAM -------------------------------------------------------------------

def test_ebs_direct_refuses_before_the_lookup(make: Any) -> None:
    nobody = make("ebs", new_user(make))
    assert code_of(lambda: nobody.list_snapshot_blocks(SnapshotId=NO_SNAPSHOT)) == \
        "AccessDeniedException"
    reader = make("ebs", new_user(make, allow("ebs:ListSnapshotBlocks")))
    assert code_of(lambda: reader.list_snapshot_blocks(SnapshotId=NO_SNAPSHOT)) == \
        "ResourceNotFoundException"


def test_kms_refuses_before_the_lookup_but_a_key_policy_may_still_name_the_caller(
        make: Any) -> None:
    creds = new_user(make)
    nobody = make("kms", creds)
    code, _, message = refused(lambda: nobody.describe_key(KeyId=NO_KEY))
    assert code == "AccessDeniedException"
    assert f"on resource: arn:aws:kms:{REGION}:000000000000:key/{NO_KEY}" in message
    assert code_of(lambda: nobody.describe_key(KeyId="alias/nothing-here")) == \
        "AccessDeniedException"
    describer = make("kms", new_user(make, allow("kms:DescribeKey")))
    assert code_of(lambda: describer.describe_key(KeyId=NO_KEY)) == "NotFoundException"
    # A key policy naming the user allows it with no identity policy at all.
    user_arn = make("sts", creds).get_caller_identity()["Arn"]
    key_id = make("kms").create_key(Policy=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::000000000000:root"},
         "Action": "kms:*", "Resource": "*"},
        {"Effect": "Allow", "Principal": {"AWS": user_arn}, "Action": "kms:DescribeKey",
         "Resource": "*"}]}))["KeyMetadata"]["KeyId"]
    assert nobody.describe_key(KeyId=key_id)["KeyMetadata"]["KeyId"] == key_id
    # An identity Deny refuses whatever the key says, before the key is looked up.
    denied = make("kms", new_user(make, allow("kms:*"), {"Version": "2012-10-17", "Statement": [
        {"Effect": "Deny", "Action": "kms:DescribeKey", "Resource": "*"}]}))
    assert code_of(lambda: denied.describe_key(KeyId=NO_KEY)) == "AccessDeniedException"


def test_iam_refuses_before_the_lookup(make: Any) -> None:
    nobody = make("iam", new_user(make))
    assert code_of(lambda: nobody.delete_user(UserName=unique("ghost"))) == "AccessDenied"
    assert code_of(lambda: nobody.get_role(RoleName=unique("ghost"))) == "AccessDenied"
    deleter = make("iam", new_user(make, allow(["iam:DeleteUser", "iam:GetRole"])))
    assert code_of(lambda: deleter.delete_user(UserName=unique("ghost"))) == "NoSuchEntity"
    assert code_of(lambda: deleter.get_role(RoleName=unique("ghost"))) == "NoSuchEntity"
    # A user with a policy attached cannot be deleted (DeleteConflict), but only a caller who
    # may delete users is told so.
    busy = unique("busy")
    root = make("iam")
    root.create_user(UserName=busy)
    root.put_user_policy(UserName=busy, PolicyName="p", PolicyDocument=json.dumps(allow("s3:*")))
    assert code_of(lambda: nobody.delete_user(UserName=busy)) == "AccessDenied"
    assert code_of(lambda: deleter.delete_user(UserName=busy)) == "DeleteConflict"


# ---- IAM paths ------------------------------------------------------------------------------

def test_entities_created_with_a_path_carry_it_in_their_arns_and_policies_match_it(
        make: Any) -> None:
    iam = make("iam")
    account = "000000000000"
    name, flat = unique("pathed"), unique("flat")
    user = iam.create_user(UserName=name, Path="/division/team/")["User"]
    assert user["Arn"] == f"arn:aws:iam::{account}:user/division/team/{name}"
    iam.create_user(UserName=flat)
    role = iam.create_role(RoleName=name, Path="/division/", AssumeRolePolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                  "Principal": {"AWS": account}}]}))["Role"]
    assert role["Arn"] == f"arn:aws:iam::{account}:role/division/{name}"
    group = iam.create_group(GroupName=name, Path="/division/")["Group"]
    assert group["Arn"] == f"arn:aws:iam::{account}:group/division/{name}"
    policy = iam.create_policy(PolicyName=name, Path="/division/",
                               PolicyDocument=json.dumps(allow("ec2:Describe*")))["Policy"]
    assert policy["Arn"] == f"arn:aws:iam::{account}:policy/division/{name}"
    # PathPrefix filters every list.
    assert [u["UserName"] for u in iam.list_users(PathPrefix="/division/")["Users"]
            if u["UserName"] in (name, flat)] == [name]
    assert name in [r["RoleName"] for r in iam.list_roles(PathPrefix="/division/")["Roles"]]
    assert name not in [r["RoleName"] for r in iam.list_roles(PathPrefix="/other/")["Roles"]]
    listed = iam.list_policies(Scope="Local", PathPrefix="/division/")["Policies"]
    assert name in [p["PolicyName"] for p in listed]
    assert name not in [p["PolicyName"] for p in iam.list_policies(
        Scope="Local", PathPrefix="/other/")["Policies"]]
    # A policy on user/division/* matches the user with that path, not the one without.
    reader = make("iam", new_user(make, allow("iam:GetUser",
                                              "arn:aws:iam::*:user/division/*")))
    assert reader.get_user(UserName=name)["User"]["Arn"] == user["Arn"]
    code, _, message = refused(lambda: reader.get_user(UserName=flat))
    assert code == "AccessDenied"
    assert f"on resource: arn:aws:iam::{account}:user/{flat}" in message


def test_paths_are_validated_as_aws_does(make: Any) -> None:
    iam = make("iam")
    for path in ("division", "/division", "division/", "/a//b/ c/", "/" + "a" * 512 + "/"):
        assert code_of(lambda p=path: iam.create_user(UserName=unique("bad"), Path=p)) == \
            "ValidationError", path
    assert code_of(lambda: iam.create_role(
        RoleName=unique("bad"), Path="nope", AssumeRolePolicyDocument="{}")) == "ValidationError"
    assert code_of(lambda: iam.list_users(PathPrefix="division/")) == "ValidationError"


def test_an_assumed_roles_arn_leaves_its_path_out(make: Any) -> None:
    iam = make("iam")
    name = unique("ops")
    iam.create_role(RoleName=name, Path="/ops/team/", AssumeRolePolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                  "Principal": {"AWS": "000000000000"}}]}))
    assumed = make("sts").assume_role(RoleArn=f"arn:aws:iam::000000000000:role/ops/team/{name}",
                                      RoleSessionName="night")
    arn = f"arn:aws:sts::000000000000:assumed-role/{name}/night"
    assert assumed["AssumedRoleUser"]["Arn"] == arn
    creds = assumed["Credentials"]
    session = (creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"])
    assert make("sts", session).get_caller_identity()["Arn"] == arn
