"""Who may do what (issue 11), end to end with boto3 against a real server: IAM users and
their policies decide EC2, EBS and KMS calls; roles assumed across accounts; temporary
credentials that expire on the server's (injected) clock; encoded authorization messages.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

from snapferry.testing import ServerProcess, shift_clock

from .blocks import random_blocks, write_snapshot
from .conftest import DEV, add_account, run_cli, sts_clients, wait_for
from .test_foundation import refused

B_ACCOUNT, B_KEY, B_SECRET = "777777777777", "ROOTKEYOFB", "root-secret-of-account-b"
SRC, DST = "us-east-1", "eu-west-1"


@pytest.fixture(scope="module")
def clock_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("clock") / "offset"


@pytest.fixture(scope="module")
def server(data_dir: Path, clock_file: Path) -> Iterator[ServerProcess]:
    add_account(data_dir, B_ACCOUNT, B_KEY, B_SECRET)
    with ServerProcess(data_dir, ["--clock-offset-file", str(clock_file)]) as process:
        yield process


Creds = tuple[str, str, str | None]


@pytest.fixture(scope="module")
def make(server: ServerProcess) -> Any:
    return sts_clients(server, SRC)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def new_user(make: Any, *policies: dict[str, Any], managed: tuple[str, ...] = (),
             root: Creds = (*DEV, None)) -> Creds:
    """A fresh IAM user with inline `policies` and `managed` AWS policies; its key."""
    iam = make("iam", root)
    name = unique("user")
    iam.create_user(UserName=name)
    for index, document in enumerate(policies):
        iam.put_user_policy(UserName=name, PolicyName=f"p{index}",
                            PolicyDocument=json.dumps(document))
    for policy in managed:
        iam.attach_user_policy(UserName=name, PolicyArn=f"arn:aws:iam::aws:policy/{policy}")
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return key["AccessKeyId"], key["SecretAccessKey"], None


def allow(action: Any, resource: Any = "*", **extra: Any) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": action, "Resource": resource, **extra}]}


def snapshot(make: Any, creds: Creds = (*DEV, None), region: str = SRC) -> str:
    return write_snapshot(make("ebs", creds, region), random_blocks([0, 3]))


def completed(ec2: Any, snapshot_id: str) -> dict[str, Any]:
    found: dict[str, Any] = {}

    def done() -> bool:
        found.update(ec2.describe_snapshots(SnapshotIds=[snapshot_id])["Snapshots"][0])
        return found["State"] != "pending"

    wait_for(done, timeout=60)
    return found


# ---- the must-show cases ----------------------------------------------------------------------

def test_ec2_read_only_user_describes_but_may_not_copy_not_even_dry_run(make: Any) -> None:
    source = snapshot(make)
    reader = new_user(make, managed=("AmazonEC2ReadOnlyAccess",))
    ec2 = make("ec2", reader)
    assert ec2.describe_snapshots(SnapshotIds=[source])["Snapshots"][0]["SnapshotId"] == source
    code, status, message = refused(lambda: ec2.copy_snapshot(
        SourceRegion=SRC, SourceSnapshotId=source))
    assert (code, status) == ("UnauthorizedOperation", 403)
    assert (f"is not authorized to perform: ec2:CopySnapshot on resource: "
            f"arn:aws:ec2:{SRC}::snapshot/{source} because no identity-based policy allows "
            "the ec2:CopySnapshot action") in message
    assert refused(lambda: ec2.copy_snapshot(SourceRegion=SRC, SourceSnapshotId=source,
                                             DryRun=True))[:2] == ("UnauthorizedOperation", 403)
    # The same user with the action allowed: its DryRun would succeed, and nothing was copied.
    copier = new_user(make, allow("ec2:CopySnapshot"), managed=("AmazonEC2ReadOnlyAccess",))
    assert refused(lambda: make("ec2", copier).copy_snapshot(
        SourceRegion=SRC, SourceSnapshotId=source, DryRun=True))[:2] == ("DryRunOperation", 412)
    mine = make("ec2").describe_snapshots(OwnerIds=["self"])["Snapshots"]
    assert not [s for s in mine if s.get("Description") == "never"]


def test_an_explicit_deny_on_one_snapshot_beats_an_allow_on_everything(make: Any) -> None:
    kept, other = snapshot(make), snapshot(make)
    user = new_user(make, allow("ec2:*"), {"Version": "2012-10-17", "Statement": [{
        "Sid": "KeepThisOne", "Effect": "Deny", "Action": "ec2:DeleteSnapshot",
        "Resource": f"arn:aws:ec2:{SRC}::snapshot/{kept}"}]})
    ec2 = make("ec2", user)
    code, _, message = refused(lambda: ec2.delete_snapshot(SnapshotId=kept))
    assert code == "UnauthorizedOperation" and "with an explicit deny" in message
    ec2.delete_snapshot(SnapshotId=other)  # the Allow on * still holds elsewhere
    assert make("ec2").describe_snapshots(SnapshotIds=[kept])["Snapshots"]
    # The encoded message decodes to the statement that decided.
    encoded = message.rsplit("Encoded authorization failure message: ", 1)[1]
    decoded = json.loads(make("sts").decode_authorization_message(
        EncodedMessage=encoded)["DecodedMessage"])
    assert decoded["allowed"] is False and decoded["explicitDeny"] is True
    [matched] = decoded["matchedStatements"]["items"]
    assert (matched["statementId"], matched["effect"], matched["policy"]) == (
        "KeepThisOne", "DENY", "p1")
    assert decoded["context"]["action"] == "ec2:DeleteSnapshot"
    assert decoded["context"]["resource"] == f"arn:aws:ec2:{SRC}::snapshot/{kept}"
    # Only the account it was issued to may decode it.
    assert refused(lambda: make("sts", (B_KEY, B_SECRET, None)).decode_authorization_message(
        EncodedMessage=encoded))[0] == "InvalidAuthorizationMessageException"


def test_a_requested_region_condition_confines_a_user_to_one_region(make: Any) -> None:
    user = new_user(make, allow("ec2:Describe*", Condition={
        "StringEquals": {"aws:RequestedRegion": SRC}}))
    assert "Snapshots" in make("ec2", user, SRC).describe_snapshots(OwnerIds=["self"])
    assert refused(lambda: make("ec2", user, DST).describe_snapshots(
        OwnerIds=["self"]))[:2] == ("UnauthorizedOperation", 403)


def test_a_request_tag_condition_decides_copy_snapshot_and_copy_image(make: Any) -> None:
    source = snapshot(make)
    ec2 = make("ec2")
    image = ec2.register_image(Name=unique("img"), RootDeviceName="/dev/xvda",
                               BlockDeviceMappings=[{"DeviceName": "/dev/xvda",
                                                     "Ebs": {"SnapshotId": source}}])["ImageId"]
    user = new_user(make, allow(["ec2:CopySnapshot", "ec2:CopyImage", "ec2:CreateTags"],
                                Condition={"StringEquals": {"aws:RequestTag/team": "blue"}}))
    mine = make("ec2", user)

    def tagged(kind: str, team: str) -> list[dict[str, Any]]:
        return [{"ResourceType": kind, "Tags": [{"Key": "team", "Value": team}]}]

    assert refused(lambda: mine.copy_snapshot(
        SourceRegion=SRC, SourceSnapshotId=source,
        TagSpecifications=tagged("snapshot", "red")))[0] == "UnauthorizedOperation"
    assert refused(lambda: mine.copy_snapshot(
        SourceRegion=SRC, SourceSnapshotId=source))[0] == "UnauthorizedOperation"
    copy = mine.copy_snapshot(SourceRegion=SRC, SourceSnapshotId=source,
                              TagSpecifications=tagged("snapshot", "blue"))["SnapshotId"]
    assert completed(ec2, copy)["State"] == "completed"
    assert refused(lambda: mine.copy_image(
        SourceRegion=SRC, SourceImageId=image, Name=unique("c"),
        TagSpecifications=tagged("image", "red")))[0] == "UnauthorizedOperation"
    assert mine.copy_image(SourceRegion=SRC, SourceImageId=image, Name=unique("c"),
                           TagSpecifications=tagged("image", "blue"))["ImageId"]


def test_copy_image_permissions_name_the_new_image_only(make: Any) -> None:
    source = snapshot(make)
    image = make("ec2").register_image(
        Name=unique("img"), RootDeviceName="/dev/xvda",
        BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": source}}]
    )["ImageId"]
    # Allowed on new images in DST only: the source image's ARN is never asked about.
    user = new_user(make, allow("ec2:CopyImage", f"arn:aws:ec2:{DST}::image/*"))
    assert make("ec2", user, DST).copy_image(SourceRegion=SRC, SourceImageId=image,
                                             Name=unique("c"))["ImageId"]
    assert refused(lambda: make("ec2", user, SRC).copy_image(
        SourceRegion=SRC, SourceImageId=image, Name=unique("c")))[0] == "UnauthorizedOperation"


def test_inactive_and_deleted_access_keys_are_refused(make: Any) -> None:
    iam = make("iam")
    user = new_user(make)
    name = make("sts", user).get_caller_identity()["Arn"].rsplit("/", 1)[1]
    iam.update_access_key(UserName=name, AccessKeyId=user[0], Status="Inactive")
    assert refused(make("sts", user).get_caller_identity)[:2] == ("InvalidClientTokenId", 403)
    assert refused(make("ec2", user).describe_regions)[:2] == ("AuthFailure", 401)
    iam.update_access_key(UserName=name, AccessKeyId=user[0], Status="Active")
    assert make("sts", user).get_caller_identity()["Account"] == "000000000000"
    # A long-term key carries no session token; one that claims a token is refused.
    assert refused(make("sts", (user[0], user[1], "a-token"))
                   .get_caller_identity)[:2] == ("InvalidClientTokenId", 403)
    iam.delete_access_key(UserName=name, AccessKeyId=user[0])
    assert refused(make("sts", user).get_caller_identity)[:2] == ("InvalidClientTokenId", 403)


def test_a_role_in_b_assumed_from_a_copies_a_shared_snapshot_into_b_until_it_expires(
        make: Any, clock_file: Path) -> None:
    b_root: Creds = (B_KEY, B_SECRET, None)
    shared = snapshot(make)
    make("ec2").modify_snapshot_attribute(SnapshotId=shared, Attribute="createVolumePermission",
                                          OperationType="add", UserIds=[B_ACCOUNT])
    trust = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::000000000000:root"},
        "Action": "sts:AssumeRole",
        "Condition": {"StringEquals": {"sts:ExternalId": "dr-2026"}}}]}
    b_iam = make("iam", b_root)
    role = b_iam.create_role(RoleName=unique("dr"), AssumeRolePolicyDocument=json.dumps(trust),
                             MaxSessionDuration=7200)["Role"]
    b_iam.put_role_policy(RoleName=role["RoleName"], PolicyName="copy",
                          PolicyDocument=json.dumps(allow(["ec2:CopySnapshot",
                                                           "ec2:DescribeSnapshots"])))
    a_user = new_user(make, allow("sts:AssumeRole", role["Arn"]))
    sts = make("sts", a_user)
    assert refused(lambda: sts.assume_role(RoleArn=role["Arn"], RoleSessionName="dr"))[:2] == (
        "AccessDenied", 403)  # no ExternalId
    assert refused(lambda: sts.assume_role(RoleArn=role["Arn"], RoleSessionName="dr",
                                           ExternalId="wrong"))[0] == "AccessDenied"
    assert refused(lambda: sts.assume_role(RoleArn=role["Arn"], RoleSessionName="dr",
                                           ExternalId="dr-2026", DurationSeconds=7201)
                   )[0] == "ValidationError"  # over the role's MaxSessionDuration
    assumed = sts.assume_role(RoleArn=role["Arn"], RoleSessionName="dr", ExternalId="dr-2026",
                              DurationSeconds=900)
    creds = assumed["Credentials"]
    session: Creds = (creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"])
    arn = f"arn:aws:sts::{B_ACCOUNT}:assumed-role/{role['RoleName']}/dr"
    assert assumed["AssumedRoleUser"]["Arn"] == arn
    assert make("sts", session).get_caller_identity()["Arn"] == arn
    b_ec2 = make("ec2", session)
    copy = b_ec2.copy_snapshot(SourceRegion=SRC, SourceSnapshotId=shared)["SnapshotId"]
    found = completed(b_ec2, copy)
    assert (found["State"], found["OwnerId"]) == ("completed", B_ACCOUNT)
    # The role may copy, not delete.
    assert refused(lambda: b_ec2.delete_snapshot(SnapshotId=copy))[0] == "UnauthorizedOperation"
    # A forged token is not the session's.
    forged: Creds = (session[0], session[1], "forged")
    assert refused(make("sts", forged).get_caller_identity)[:2] == ("InvalidClientTokenId", 403)
    # Fifteen minutes later (the server's clock and the client's, no sleeping) it expired.
    later = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=901)
    shift_clock(clock_file, 901)
    try:
        with mock.patch("botocore.auth.get_current_datetime", return_value=later):
            assert refused(make("sts", session).get_caller_identity)[:2] == ("ExpiredToken", 403)
            assert refused(lambda: make("ec2", session).describe_snapshots(
                SnapshotIds=[copy]))[:2] == ("RequestExpired", 400)
            assert make("sts", a_user).get_caller_identity()["Account"] == "000000000000"
    finally:
        shift_clock(clock_file, 0)


def test_a_copy_acts_with_the_permissions_of_who_asked_for_it(make: Any) -> None:
    """A user allowed CopySnapshot but not kms:Decrypt on the source key: the copy is
    accepted, then fails in `error` when the engine, acting as that user, needs the key."""
    kms = make("kms")
    key = kms.create_key()["KeyMetadata"]["Arn"]
    ebs = make("ebs")
    source = write_snapshot(ebs, random_blocks([1]), Encrypted=True, KmsKeyArn=key)
    ec2 = make("ec2")
    no_decrypt = new_user(make, allow(["ec2:CopySnapshot", "ec2:DescribeSnapshots"]))
    failed = make("ec2", no_decrypt).copy_snapshot(SourceRegion=SRC,
                                                   SourceSnapshotId=source)["SnapshotId"]
    assert completed(ec2, failed)["State"] == "error"
    # With kms:Decrypt and the rest of what EBS needs of the key, through EC2 only.
    via_ec2 = {"StringEquals": {"kms:ViaService": f"ec2.{SRC}.amazonaws.com"}}
    with_key = new_user(make, allow(["ec2:CopySnapshot", "ec2:DescribeSnapshots"]),
                        allow(["kms:Decrypt", "kms:DescribeKey", "kms:GenerateDataKey*",
                               "kms:ReEncrypt*", "kms:CreateGrant"], key, Condition=via_ec2))
    copy = make("ec2", with_key).copy_snapshot(SourceRegion=SRC,
                                               SourceSnapshotId=source)["SnapshotId"]
    assert completed(ec2, copy)["State"] == "completed"
    # kms:ViaService is not set when the user calls KMS itself.
    blob = kms.encrypt(KeyId=key, Plaintext=b"x")["CiphertextBlob"]
    code, _, message = refused(lambda: make("kms", with_key).decrypt(CiphertextBlob=blob))
    assert code == "AccessDeniedException"
    assert "is not authorized to perform: kms:Decrypt on resource: " + key in message


def test_iam_and_kms_refusals_say_who_what_and_why(make: Any) -> None:
    nobody = new_user(make)
    name = make("sts", nobody).get_caller_identity()["Arn"]
    code, status, message = refused(lambda: make("iam", nobody).create_user(UserName="x"))
    assert (code, status) == ("AccessDenied", 403)
    assert message == (f"User: {name} is not authorized to perform: iam:CreateUser on "
                       "resource: arn:aws:iam::000000000000:user/x because no identity-based "
                       "policy allows the iam:CreateUser action")
    assert refused(lambda: make("kms", nobody).create_key())[0] == "AccessDeniedException"
    assert refused(lambda: make("ebs", nobody).start_snapshot(VolumeSize=1))[:2] == (
        "AccessDeniedException", 403)
    # Account roots keep full power in their own account.
    assert make("iam").get_user()["User"]["Arn"] == "arn:aws:iam::000000000000:root"


def test_a_user_may_manage_its_own_keys_by_policy_variable(make: Any) -> None:
    self_service = new_user(make, allow(["iam:CreateAccessKey", "iam:ListAccessKeys"],
                                        "arn:aws:iam::000000000000:user/${aws:username}"))
    iam = make("iam", self_service)
    assert len(iam.list_access_keys()["AccessKeyMetadata"]) == 1
    other = unique("other")
    make("iam").create_user(UserName=other)
    assert refused(lambda: iam.list_access_keys(UserName=other))[0] == "AccessDenied"


def test_session_policies_cap_what_the_role_allows(make: Any) -> None:
    iam = make("iam")
    trust = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::000000000000:root"},
        "Action": ["sts:AssumeRole", "sts:TagSession"]}]}
    role = iam.create_role(RoleName=unique("capped"), MaxSessionDuration=7200,
                           AssumeRolePolicyDocument=json.dumps(trust))["Role"]
    iam.attach_role_policy(RoleName=role["RoleName"],
                           PolicyArn="arn:aws:iam::aws:policy/AdministratorAccess")
    sts = make("sts")
    only_regions = json.dumps(allow("ec2:DescribeRegions"))
    creds = sts.assume_role(RoleArn=role["Arn"], RoleSessionName="capped",
                            Policy=only_regions,
                            Tags=[{"Key": "team", "Value": "blue"}])["Credentials"]
    session = (creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"])
    ec2 = make("ec2", session)
    assert ec2.describe_regions()["Regions"]
    assert refused(lambda: ec2.describe_snapshots(OwnerIds=["self"]))[0] == (
        "UnauthorizedOperation")
    # The session tag is the session's aws:PrincipalTag/team.
    tagged = allow("ec2:DescribeRegions", Condition={
        "StringEquals": {"aws:PrincipalTag/team": "red"}})
    creds = sts.assume_role(RoleArn=role["Arn"], RoleSessionName="red", Policy=json.dumps(
        tagged), Tags=[{"Key": "team", "Value": "blue"}])["Credentials"]
    blue = (creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"])
    assert refused(make("ec2", blue).describe_regions)[0] == "UnauthorizedOperation"
    # Role chaining: a session assuming a role gets at most an hour, whatever the role allows.
    creds = sts.assume_role(RoleArn=role["Arn"], RoleSessionName="plain",
                            DurationSeconds=7200)["Credentials"]
    plain = make("sts", (creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"]))
    assert refused(lambda: plain.assume_role(RoleArn=role["Arn"], RoleSessionName="chained",
                                             DurationSeconds=3601))[0] == "ValidationError"
    assert plain.assume_role(RoleArn=role["Arn"], RoleSessionName="chained",
                             DurationSeconds=3600)["Credentials"]["AccessKeyId"]


def test_get_session_token_acts_as_the_user(make: Any) -> None:
    user = new_user(make, allow("ec2:DescribeRegions"))
    arn = make("sts", user).get_caller_identity()["Arn"]
    creds = make("sts", user).get_session_token(DurationSeconds=900)["Credentials"]
    session = (creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"])
    assert make("sts", session).get_caller_identity()["Arn"] == arn
    assert make("ec2", session).describe_regions()["Regions"]
    assert refused(lambda: make("ec2", session).describe_volumes())[0] == (
        "UnauthorizedOperation")
    assert refused(lambda: make("sts", session).get_session_token())[0] == "AccessDenied"
    # Without MFA, GetSessionToken's credentials may not call IAM, even as a root.
    code, _, message = refused(lambda: make("iam", session).list_users())
    assert code == "AccessDenied" and "GetSessionToken without MFA" in message
    root = make("sts").get_session_token(DurationSeconds=900)["Credentials"]
    root_session = (root["AccessKeyId"], root["SecretAccessKey"], root["SessionToken"])
    assert refused(lambda: make("iam", root_session).list_users())[0] == "AccessDenied"
    assert make("ec2", root_session).describe_volumes()["Volumes"] is not None
    assert refused(lambda: make("sts", user).get_session_token(DurationSeconds=129601)
                   )[0] == "ValidationError"


def test_operators_create_accounts_and_list_their_users(make: Any, data_dir: Path) -> None:
    created = run_cli("accounts", "create", data_dir=data_dir)
    assert created.returncode == 0, created.stderr
    lines = created.stdout.splitlines()
    account = lines[0].rsplit(" ", 1)[1]
    key, secret = lines[1].split()[-1], lines[2].split()[-1]
    root: Creds = (key, secret, None)
    assert make("sts", root).get_caller_identity()["Arn"] == f"arn:aws:iam::{account}:root"
    user = new_user(make, root=root)
    listed = run_cli("accounts", "users", "--account-id", account, data_dir=data_dir)
    assert listed.returncode == 0, listed.stderr
    [row] = listed.stdout.splitlines()[1:]
    assert row.split()[1].startswith(f"arn:aws:iam::{account}:user/user-")
    assert f"{user[0]} (Active)" in row
    # Users' keys are IAM's: `accounts list` shows the roots' keys only.
    roots = run_cli("accounts", "list", data_dir=data_dir).stdout
    assert key in roots and user[0] not in roots
    again = run_cli("accounts", "create", "--account-id", account, data_dir=data_dir)
    assert again.returncode == 2 and "already exists" in again.stderr


def test_a_resource_tag_condition_reads_the_resources_tags(make: Any) -> None:
    scratch, kept = snapshot(make), snapshot(make)
    make("ec2").create_tags(Resources=[scratch], Tags=[{"Key": "env", "Value": "scratch"}])
    user = new_user(make, allow("ec2:DeleteSnapshot", Condition={
        "StringEquals": {"ec2:ResourceTag/env": "scratch"}}))
    ec2 = make("ec2", user)
    assert refused(lambda: ec2.delete_snapshot(SnapshotId=kept))[0] == "UnauthorizedOperation"
    ec2.delete_snapshot(SnapshotId=scratch)
    assert make("ec2").describe_snapshots(SnapshotIds=[kept])["Snapshots"]


def test_a_deleted_roles_sessions_are_refused(make: Any) -> None:
    iam = make("iam")
    trust = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::000000000000:root"},
        "Action": "sts:AssumeRole"}]}
    role = iam.create_role(RoleName=unique("gone"), AssumeRolePolicyDocument=json.dumps(trust))
    creds = make("sts").assume_role(RoleArn=role["Role"]["Arn"],
                                    RoleSessionName="s1")["Credentials"]
    session = (creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"])
    assert make("sts", session).get_caller_identity()["Account"] == "000000000000"
    # Session tags need sts:TagSession in the trust policy, which this one lacks.
    assert refused(lambda: make("sts").assume_role(
        RoleArn=role["Role"]["Arn"], RoleSessionName="s3",
        Tags=[{"Key": "team", "Value": "x"}]))[:2] == ("AccessDenied", 403)
    iam.delete_role(RoleName=role["Role"]["RoleName"])
    assert refused(make("sts", session).get_caller_identity)[:2] == ("InvalidClientTokenId", 403)
    assert refused(lambda: make("sts").assume_role(
        RoleArn=role["Role"]["Arn"], RoleSessionName="s2"))[:2] == ("AccessDenied", 403)
