"""The IAM API with boto3 (issue 11, item 1): users, access keys, groups, roles, inline and
managed policies with versions, AWS managed policies, attachments, tags, and IAM's errors."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from .conftest import ACCOUNT_B, ClientFactory, add_account
from .test_foundation import refused

ACCOUNT = "000000000000"
DOC = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": "ec2:DescribeRegions", "Resource": "*"}]})
TRUST = json.dumps({"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
    "Action": "sts:AssumeRole"}]})


@pytest.fixture(scope="module", autouse=True)
def account_b(data_dir: Path) -> str:
    return add_account(data_dir, *ACCOUNT_B)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_users_are_created_read_listed_renamed_tagged_and_deleted(client: ClientFactory) -> None:
    iam = client("iam")
    name = unique("ann")
    user = iam.create_user(UserName=name, Path="/ops/", Tags=[{"Key": "team", "Value": "a"}])
    assert user["User"]["Arn"] == f"arn:aws:iam::{ACCOUNT}:user/ops/{name}"
    assert user["User"]["UserId"].startswith("AIDA")
    got = iam.get_user(UserName=name)["User"]
    assert (got["Path"], got["Tags"]) == ("/ops/", [{"Key": "team", "Value": "a"}])
    assert name in [u["UserName"] for u in iam.list_users(PathPrefix="/ops/")["Users"]]
    assert name not in [u["UserName"] for u in iam.list_users(PathPrefix="/dev/")["Users"]]
    assert refused(lambda: iam.create_user(UserName=name.upper()))[:2] == (
        "EntityAlreadyExists", 409)
    iam.tag_user(UserName=name, Tags=[{"Key": "env", "Value": "prod"}])
    iam.untag_user(UserName=name, TagKeys=["team"])
    assert iam.list_user_tags(UserName=name)["Tags"] == [{"Key": "env", "Value": "prod"}]
    renamed = unique("bea")
    iam.update_user(UserName=name, NewUserName=renamed)
    assert refused(lambda: iam.get_user(UserName=name))[:2] == ("NoSuchEntity", 404)
    assert iam.list_user_tags(UserName=renamed)["Tags"] == [{"Key": "env", "Value": "prod"}]
    iam.delete_user(UserName=renamed)
    assert refused(lambda: iam.get_user(UserName=renamed))[0] == "NoSuchEntity"
    assert refused(lambda: iam.create_user(UserName="bad name!"))[:2] == ("ValidationError", 400)


def test_a_user_with_keys_policies_or_groups_cannot_be_deleted(client: ClientFactory) -> None:
    iam = client("iam")
    name, group = unique("del"), unique("grp")
    iam.create_user(UserName=name)
    iam.create_group(GroupName=group)
    key = iam.create_access_key(UserName=name)["AccessKey"]["AccessKeyId"]
    iam.put_user_policy(UserName=name, PolicyName="inline", PolicyDocument=DOC)
    iam.attach_user_policy(UserName=name, PolicyArn="arn:aws:iam::aws:policy/ReadOnlyAccess")
    iam.add_user_to_group(UserName=name, GroupName=group)
    steps = [lambda: iam.delete_access_key(UserName=name, AccessKeyId=key),
             lambda: iam.delete_user_policy(UserName=name, PolicyName="inline"),
             lambda: iam.detach_user_policy(UserName=name,
                                            PolicyArn="arn:aws:iam::aws:policy/ReadOnlyAccess"),
             lambda: iam.remove_user_from_group(UserName=name, GroupName=group)]
    for step in steps:
        code, status, message = refused(lambda: iam.delete_user(UserName=name))
        assert (code, status) == ("DeleteConflict", 409) and "must" in message
        assert iam.get_user(UserName=name)["User"]["UserName"] == name  # nothing changed
        step()
    iam.delete_user(UserName=name)
    iam.delete_group(GroupName=group)


def test_access_keys_two_per_user_status_and_last_use(client: ClientFactory) -> None:
    iam = client("iam")
    name = unique("keys")
    iam.create_user(UserName=name)
    iam.put_user_policy(UserName=name, PolicyName="regions", PolicyDocument=DOC)
    first = iam.create_access_key(UserName=name)["AccessKey"]
    assert first["AccessKeyId"].startswith("AKIA") and first["Status"] == "Active"
    second = iam.create_access_key(UserName=name)["AccessKey"]
    assert refused(lambda: iam.create_access_key(UserName=name))[:2] == ("LimitExceeded", 409)
    listed = iam.list_access_keys(UserName=name)["AccessKeyMetadata"]
    assert {k["AccessKeyId"] for k in listed} == {first["AccessKeyId"], second["AccessKeyId"]}
    assert "SecretAccessKey" not in listed[0]
    unused = iam.get_access_key_last_used(AccessKeyId=first["AccessKeyId"])
    assert unused["UserName"] == name
    assert unused["AccessKeyLastUsed"] == {"ServiceName": "N/A", "Region": "N/A"}
    client("ec2", region="eu-west-1", key=first["AccessKeyId"],
           secret=first["SecretAccessKey"]).describe_regions()
    used = iam.get_access_key_last_used(AccessKeyId=first["AccessKeyId"])["AccessKeyLastUsed"]
    assert (used["ServiceName"], used["Region"]) == ("ec2", "eu-west-1")
    assert "LastUsedDate" in used
    iam.update_access_key(UserName=name, AccessKeyId=second["AccessKeyId"], Status="Inactive")
    statuses = {k["AccessKeyId"]: k["Status"]
                for k in iam.list_access_keys(UserName=name)["AccessKeyMetadata"]}
    assert statuses[second["AccessKeyId"]] == "Inactive"
    assert refused(lambda: iam.delete_access_key(UserName=name, AccessKeyId="AKIANOSUCHKEY000")
                   )[:2] == ("NoSuchEntity", 404)


def test_malformed_policy_documents_are_refused_naming_the_problem(client: ClientFactory
                                                                   ) -> None:
    iam = client("iam")
    name = unique("mal")
    iam.create_user(UserName=name)
    cases = {
        "{not json": "not valid JSON",
        json.dumps({"Statement": [{"Effect": "Allow", "Resource": "*"}]}): "Action",
        json.dumps({"Statement": [{"Effect": "Maybe", "Action": "*", "Resource": "*"}]}):
            "effect",
        json.dumps({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "*", "Resource": "*",
             "Principal": "*"}]}): "principal",
    }
    for document, problem in cases.items():
        code, status, message = refused(lambda d=document: iam.put_user_policy(
            UserName=name, PolicyName="p", PolicyDocument=d))
        assert (code, status) == ("MalformedPolicyDocument", 400) and problem in message
        assert refused(lambda d=document: iam.create_policy(
            PolicyName=unique("bad"), PolicyDocument=d))[0] == "MalformedPolicyDocument"
    assert iam.list_user_policies(UserName=name)["PolicyNames"] == []
    assert refused(lambda: iam.create_role(
        RoleName=unique("r"), AssumeRolePolicyDocument=DOC))[0] == "MalformedPolicyDocument"


def test_managed_policies_have_versions(client: ClientFactory) -> None:
    iam = client("iam")
    name = unique("pol")
    policy = iam.create_policy(PolicyName=name, PolicyDocument=DOC, Description="d")["Policy"]
    arn = policy["Arn"]
    assert arn == f"arn:aws:iam::{ACCOUNT}:policy/{name}"
    assert (policy["DefaultVersionId"], policy["AttachmentCount"]) == ("v1", 0)
    assert refused(lambda: iam.create_policy(PolicyName=name, PolicyDocument=DOC))[:2] == (
        "EntityAlreadyExists", 409)
    wider = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "ec2:Describe*", "Resource": "*"}]})
    assert iam.create_policy_version(PolicyArn=arn, PolicyDocument=wider,
                                     SetAsDefault=True)["PolicyVersion"]["VersionId"] == "v2"
    for _ in range(3):
        iam.create_policy_version(PolicyArn=arn, PolicyDocument=DOC)
    assert refused(lambda: iam.create_policy_version(PolicyArn=arn, PolicyDocument=DOC)
                   )[:2] == ("LimitExceeded", 409)
    versions = iam.list_policy_versions(PolicyArn=arn)["Versions"]
    assert [v["VersionId"] for v in versions] == ["v5", "v4", "v3", "v2", "v1"]
    assert [v["VersionId"] for v in versions if v["IsDefaultVersion"]] == ["v2"]
    got = iam.get_policy_version(PolicyArn=arn, VersionId="v2")["PolicyVersion"]
    assert got["Document"]["Statement"][0]["Action"] == "ec2:Describe*"  # URL-decoded by boto3
    assert refused(lambda: iam.delete_policy_version(PolicyArn=arn, VersionId="v2"))[:2] == (
        "DeleteConflict", 409)
    iam.delete_policy_version(PolicyArn=arn, VersionId="v1")
    iam.set_default_policy_version(PolicyArn=arn, VersionId="v3")
    assert iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"] == "v3"
    role = unique("role")
    iam.create_role(RoleName=role, AssumeRolePolicyDocument=TRUST)
    iam.attach_role_policy(RoleName=role, PolicyArn=arn)
    assert iam.get_policy(PolicyArn=arn)["Policy"]["AttachmentCount"] == 1
    assert refused(lambda: iam.delete_policy(PolicyArn=arn))[:2] == ("DeleteConflict", 409)
    assert refused(lambda: iam.delete_role(RoleName=role))[:2] == ("DeleteConflict", 409)
    assert iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"] == [
        {"PolicyName": name, "PolicyArn": arn}]
    iam.detach_role_policy(RoleName=role, PolicyArn=arn)
    iam.delete_role(RoleName=role)
    iam.delete_policy(PolicyArn=arn)
    assert refused(lambda: iam.get_policy(PolicyArn=arn))[:2] == ("NoSuchEntity", 404)


def test_aws_managed_policies_exist_in_every_account_and_cannot_change(client: ClientFactory
                                                                       ) -> None:
    iam = client("iam")
    listed = {p["PolicyName"]: p for p in iam.list_policies(Scope="AWS")["Policies"]}
    assert {"AdministratorAccess", "ReadOnlyAccess", "AmazonEC2FullAccess",
            "AmazonEC2ReadOnlyAccess"} <= set(listed)
    arn = listed["AmazonEC2ReadOnlyAccess"]["Arn"]
    assert arn == "arn:aws:iam::aws:policy/AmazonEC2ReadOnlyAccess"
    version = iam.get_policy_version(PolicyArn=arn, VersionId="v1")["PolicyVersion"]
    assert {"Effect": "Allow", "Action": "ec2:Describe*", "Resource": "*"} in (
        version["Document"]["Statement"])
    assert refused(lambda: iam.delete_policy(PolicyArn=arn))[0] == "UnmodifiableEntity"
    assert refused(lambda: iam.create_policy_version(PolicyArn=arn, PolicyDocument=DOC)
                   )[0] == "UnmodifiableEntity"
    assert refused(lambda: iam.get_policy(PolicyArn="arn:aws:iam::aws:policy/NoSuchPolicy")
                   )[0] == "NoSuchEntity"
    # Another account's customer managed policy is not this account's to attach.
    theirs = client("iam", key=ACCOUNT_B[1], secret=ACCOUNT_B[2]).create_policy(
        PolicyName=unique("theirs"), PolicyDocument=DOC)["Policy"]["Arn"]
    mine = unique("mine")
    iam.create_user(UserName=mine)
    assert refused(lambda: iam.attach_user_policy(UserName=mine, PolicyArn=theirs))[:2] == (
        "NoSuchEntity", 404)


def test_group_policies_apply_to_their_members(client: ClientFactory) -> None:
    iam = client("iam")
    name, group = unique("member"), unique("readers")
    iam.create_user(UserName=name)
    key = iam.create_access_key(UserName=name)["AccessKey"]
    ec2 = client("ec2", key=key["AccessKeyId"], secret=key["SecretAccessKey"])
    assert refused(ec2.describe_regions)[0] == "UnauthorizedOperation"
    iam.create_group(GroupName=group)
    iam.put_group_policy(GroupName=group, PolicyName="regions", PolicyDocument=DOC)
    iam.add_user_to_group(GroupName=group, UserName=name)
    assert ec2.describe_regions()["Regions"]
    assert [g["GroupName"] for g in iam.list_groups_for_user(UserName=name)["Groups"]] == [
        group]
    assert [u["UserName"] for u in iam.get_group(GroupName=group)["Users"]] == [name]
    assert iam.get_group_policy(GroupName=group, PolicyName="regions")["PolicyDocument"][
        "Statement"][0]["Action"] == "ec2:DescribeRegions"
    assert refused(lambda: iam.delete_group(GroupName=group))[0] == "DeleteConflict"
    iam.delete_group_policy(GroupName=group, PolicyName="regions")
    assert refused(ec2.describe_regions)[0] == "UnauthorizedOperation"
    assert refused(lambda: iam.delete_group(GroupName=group))[0] == "DeleteConflict"  # members
    iam.remove_user_from_group(GroupName=group, UserName=name)
    assert refused(lambda: iam.remove_user_from_group(GroupName=group, UserName=name))[0] == (
        "NoSuchEntity")
    iam.delete_group(GroupName=group)


def test_roles_trust_policies_and_tags(client: ClientFactory) -> None:
    iam = client("iam")
    name = unique("role")
    role = iam.create_role(RoleName=name, AssumeRolePolicyDocument=TRUST, Description="dr",
                           MaxSessionDuration=7200,
                           Tags=[{"Key": "team", "Value": "dr"}])["Role"]
    assert role["Arn"] == f"arn:aws:iam::{ACCOUNT}:role/{name}"
    assert role["RoleId"].startswith("AROA") and role["MaxSessionDuration"] == 7200
    got = iam.get_role(RoleName=name)["Role"]
    assert got["AssumeRolePolicyDocument"] == json.loads(TRUST)
    assert got["Tags"] == [{"Key": "team", "Value": "dr"}]
    assert name in [r["RoleName"] for r in iam.list_roles()["Roles"]]
    nobody = json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::999999999999:root"},
        "Action": "sts:AssumeRole"}]})
    iam.update_assume_role_policy(RoleName=name, PolicyDocument=nobody)
    assert refused(lambda: client("sts").assume_role(RoleArn=role["Arn"],
                                                     RoleSessionName="ss"))[:2] == (
        "AccessDenied", 403)
    iam.update_role(RoleName=name, MaxSessionDuration=3600)
    assert iam.get_role(RoleName=name)["Role"]["MaxSessionDuration"] == 3600
    assert refused(lambda: iam.update_role(RoleName=name, MaxSessionDuration=60000))[0] == (
        "ValidationError")
    iam.put_role_policy(RoleName=name, PolicyName="inline", PolicyDocument=DOC)
    assert iam.list_role_policies(RoleName=name)["PolicyNames"] == ["inline"]
    iam.delete_role_policy(RoleName=name, PolicyName="inline")
    iam.untag_role(RoleName=name, TagKeys=["team"])
    assert iam.list_role_tags(RoleName=name)["Tags"] == []
    iam.delete_role(RoleName=name)
    assert refused(lambda: iam.get_role(RoleName=name))[:2] == ("NoSuchEntity", 404)
