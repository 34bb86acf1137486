"""The authorization table (domain/actions.py): each operation's IAM action, resource ARNs
and condition keys, as the Service Authorization Reference gives them."""

from __future__ import annotations

from typing import Any

import pytest

from snapferry.domain.actions import Where, asked

HERE = Where("111111111111", "eu-west-1", "alice")
TAGS = [{"ResourceType": "snapshot", "Tags": [{"Key": "team", "Value": "blue"},
                                              {"Key": "env", "Value": "prod"}]}]

ROWS: list[tuple[str, str, str, dict[str, Any], tuple[str, ...]]] = [
    ("ec2", "ec2", "CopySnapshot", {"SourceRegion": "us-east-1",
                                    "SourceSnapshotId": "snap-1"},
     ("arn:aws:ec2:us-east-1::snapshot/snap-1", "arn:aws:ec2:eu-west-1::snapshot/*")),
    # CopyImage: the new image only, never the source.
    ("ec2", "ec2", "CopyImage", {"SourceRegion": "us-east-1", "SourceImageId": "ami-1"},
     ("arn:aws:ec2:eu-west-1::image/*",)),
    ("ec2", "ec2", "DeleteSnapshot", {"SnapshotId": "snap-2"},
     ("arn:aws:ec2:eu-west-1::snapshot/snap-2",)),
    ("ec2", "ec2", "CreateSnapshot", {"VolumeId": "vol-1"},
     ("arn:aws:ec2:eu-west-1:111111111111:volume/vol-1", "arn:aws:ec2:eu-west-1::snapshot/*")),
    ("ec2", "ec2", "CreateVolume", {"SnapshotId": "snap-3"},
     ("arn:aws:ec2:eu-west-1:111111111111:volume/*",
      "arn:aws:ec2:eu-west-1::snapshot/snap-3")),
    ("ec2", "ec2", "CreateVolume", {}, ("arn:aws:ec2:eu-west-1:111111111111:volume/*",)),
    ("ec2", "ec2", "CreateTags", {"Resources": ["snap-4", "ami-5", "vol-6"]},
     ("arn:aws:ec2:eu-west-1::snapshot/snap-4", "arn:aws:ec2:eu-west-1::image/ami-5",
      "arn:aws:ec2:eu-west-1:111111111111:volume/vol-6")),
    ("ec2", "ec2", "DeleteTags", {"Resources": ["snap-4", "vol-6"]},
     ("arn:aws:ec2:eu-west-1::snapshot/snap-4",
      "arn:aws:ec2:eu-west-1:111111111111:volume/vol-6")),
    ("ec2", "ec2", "ModifyImageAttribute", {"ImageId": "ami-7"},
     ("arn:aws:ec2:eu-west-1::image/ami-7",)),
    ("ec2", "ec2", "DescribeSnapshots", {"SnapshotIds": ["snap-1"]}, ("*",)),
    ("ebs", "ebs", "StartSnapshot", {}, ("arn:aws:ec2:eu-west-1::snapshot/*",)),
    ("ebs", "ebs", "PutSnapshotBlock", {"SnapshotId": "snap-8"},
     ("arn:aws:ec2:eu-west-1::snapshot/snap-8",)),
    ("ebs", "ebs", "ListChangedBlocks", {"FirstSnapshotId": "snap-1",
                                         "SecondSnapshotId": "snap-2"},
     ("arn:aws:ec2:eu-west-1::snapshot/snap-1", "arn:aws:ec2:eu-west-1::snapshot/snap-2")),
    ("iam", "iam", "CreateUser", {"UserName": "bob"}, ("arn:aws:iam::111111111111:user/bob",)),
    ("iam", "iam", "AttachRolePolicy", {"RoleName": "r", "PolicyArn": "arn:p"},
     ("arn:aws:iam::111111111111:role/r",)),
    ("iam", "iam", "AddUserToGroup", {"GroupName": "g", "UserName": "bob"},
     ("arn:aws:iam::111111111111:group/g",)),
    ("iam", "iam", "ListGroupsForUser", {"UserName": "bob"},
     ("arn:aws:iam::111111111111:user/bob",)),
    ("iam", "iam", "AttachGroupPolicy", {"GroupName": "g", "PolicyArn": "arn:p"},
     ("arn:aws:iam::111111111111:group/g",)),
    ("iam", "iam", "GetRole", {"RoleName": "r"}, ("arn:aws:iam::111111111111:role/r",)),
    ("iam", "iam", "GetPolicy", {"PolicyArn": "arn:aws:iam::aws:policy/X"},
     ("arn:aws:iam::aws:policy/X",)),
    ("iam", "iam", "CreatePolicy", {"PolicyName": "p", "Path": "/ops/"},
     ("arn:aws:iam::111111111111:policy/ops/p",)),
    # Self-service: no UserName means the caller's own user.
    ("iam", "iam", "CreateAccessKey", {}, ("arn:aws:iam::111111111111:user/alice",)),
    ("iam", "iam", "ListPolicies", {}, ("*",)),
    ("sts", "sts", "AssumeRole", {"RoleArn": "arn:aws:iam::2:role/x"},
     ("arn:aws:iam::2:role/x",)),
    ("kms", "kms", "CreateKey", {}, ("*",)),
]


@pytest.mark.parametrize(("service", "prefix", "operation", "params", "resources"), ROWS)
def test_each_operation_asks_about_its_resources(service: str, prefix: str, operation: str,
                                                 params: dict[str, Any],
                                                 resources: tuple[str, ...]) -> None:
    found = asked(service, prefix, operation, params, HERE)
    assert found.action == f"{prefix}:{operation}"
    assert found.resources == resources


def test_self_service_without_a_user_acts_on_nothing_named() -> None:
    assert asked("iam", "iam", "CreateAccessKey", {}, Where("1", "us-east-1")).resources == (
        "*",)


def test_request_tags_come_from_every_way_services_take_them() -> None:
    ec2 = asked("ec2", "ec2", "CopySnapshot", {"SourceRegion": "us-east-1",
                                               "SourceSnapshotId": "s",
                                               "TagSpecifications": TAGS,
                                               "Encrypted": True}, HERE).conditions
    assert ec2["aws:RequestTag/team"] == "blue" and ec2["aws:RequestTag/env"] == "prod"
    assert ec2["aws:TagKeys"] == ["team", "env"]
    assert ec2["aws:RequestedRegion"] == "eu-west-1"
    assert ec2["ec2:Encrypted"] is True and ec2["ec2:SourceRegion"] == "us-east-1"
    iam = asked("iam", "iam", "CreateUser", {"UserName": "u", "Tags": [
        {"Key": "k", "Value": "v"}]}, HERE).conditions
    assert (iam["aws:RequestTag/k"], iam["aws:TagKeys"]) == ("v", ["k"])
    kms = asked("kms", "kms", "CreateKey", {"Tags": [{"TagKey": "a", "TagValue": "b"}]},
                HERE).conditions
    assert kms["aws:RequestTag/a"] == "b"
    bare = asked("ec2", "ec2", "DescribeRegions", {}, HERE).conditions
    assert "aws:TagKeys" not in bare and "ec2:Encrypted" not in bare


def test_service_condition_keys() -> None:
    sts = asked("sts", "sts", "AssumeRole", {"RoleArn": "arn:aws:iam::2:role/x",
                                             "ExternalId": "e", "RoleSessionName": "s"},
                HERE).conditions
    assert (sts["sts:ExternalId"], sts["sts:RoleSessionName"]) == ("e", "s")
    iam = asked("iam", "iam", "AttachUserPolicy", {"UserName": "u", "PolicyArn": "arn:p"},
                HERE).conditions
    assert iam["iam:PolicyARN"] == "arn:p"
    by_value = asked("".join(["i", "am"]), "iam", "AttachUserPolicy",
                     {"UserName": "u", "PolicyArn": "arn:p"}, HERE).conditions
    assert by_value["iam:PolicyARN"] == "arn:p"
    for encrypted in (True, False):
        ec2 = asked("".join(["e", "c2"]), "ec2", "CreateVolume", {"Encrypted": encrypted},
                    HERE).conditions
        assert ec2["ec2:Encrypted"] is encrypted
    assert "sts:ExternalId" not in asked("ec2", "ec2", "X", {"ExternalId": "e"}, HERE).conditions


def test_only_kms_asks_about_the_key_a_request_names() -> None:
    # The service compared by value (a name that is not the literal), and no service that
    # sorts after "kms" (sts, s3) treats a KeyId as a KMS key.
    kms = "".join(["k", "ms"])
    assert asked(kms, "kms", "Decrypt", {"KeyId": "k-1"}, HERE).resources == (
        "arn:aws:kms:eu-west-1:111111111111:key/k-1",)
    assert asked("sts", "sts", "GetCallerIdentity", {"KeyId": "k-1"}, HERE).resources == ("*",)
    assert asked(kms, "kms", "ListAliases", {"KeyId": "k-1"}, HERE).resources == ("*",)


@pytest.mark.parametrize(("service", "prefix", "operation", "params", "resources"), ROWS)
def test_services_and_operations_are_compared_by_value(service: str, prefix: str,
                                                       operation: str, params: dict[str, Any],
                                                       resources: tuple[str, ...]) -> None:
    # As a request gives them: new string objects, not the literals of the table.
    found = asked("".join(list(service)), prefix, "".join(list(operation)), params, HERE)
    assert found.resources == resources
    assert found == asked(service, prefix, operation, params, HERE)


def test_a_kms_alias_and_a_bare_key_id_name_arns_in_the_callers_account() -> None:
    assert asked("kms", "kms", "Encrypt", {"KeyId": "alias/backup"}, HERE).resources == (
        "arn:aws:kms:eu-west-1:111111111111:alias/backup",)
    assert asked("kms", "kms", "Encrypt", {"KeyId": "1234abcd"}, HERE).resources == (
        "arn:aws:kms:eu-west-1:111111111111:key/1234abcd",)
    arn = "arn:aws:kms:us-east-1:222222222222:key/k"
    assert asked("kms", "kms", "Encrypt", {"KeyId": arn}, HERE).resources == (arn,)


def test_sts_operations_other_than_assume_role_act_on_everything() -> None:
    for operation in ("GetCallerIdentity", "GetSessionToken"):
        assert asked("sts", "sts", operation, {}, HERE).resources == ("*",)


def test_only_user_operations_default_to_the_callers_own_user() -> None:
    # A group or role operation naming none acts on "*", not on the calling user (the
    # entity kinds "group" and "role" sort before "user").
    for operation in ("ListGroups", "ListRoles"):
        assert asked("iam", "iam", operation, {}, HERE).resources == ("*",)
    assert asked("iam", "iam", "GetUser", {}, HERE).resources == (
        "arn:aws:iam::111111111111:user/alice",)
