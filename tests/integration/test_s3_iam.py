"""S3 authorized with IAM through boto3: IAM users' and roles' identity policies with S3's
actions (s3:ListBucket for a listing, s3:GetObject for a HEAD, ...) on bucket and object
ARNs, s3: condition keys, session policies; in the caller's own account an identity policy
or the bucket policy allows, across accounts both must; an explicit Deny anywhere wins;
NoSuchKey only for callers who may list the bucket; unsigned reads of public-read objects."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore import UNSIGNED
from botocore.config import Config

from snapferry.testing import ServerProcess

from .conftest import ClientFactory, add_account
from .test_foundation import refused

B_ID, B_KEY, B_SECRET = "585858585858", "S3IAMACCOUNTB", "secret-of-s3-iam-b"
DEV_ACCOUNT = "000000000000"


@pytest.fixture(scope="module")
def account_b(server: ServerProcess, data_dir: Path) -> str:
    return add_account(data_dir, B_ID, B_KEY, B_SECRET)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def document(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def user(client: ClientFactory, *statements: dict[str, Any], key: str = "test",
         secret: str = "test") -> tuple[str, str, str]:
    """A new IAM user (in the account of key/secret) with these statements; (name, key,
    secret)."""
    iam = client("iam", key=key, secret=secret)
    name = unique("s3user")
    iam.create_user(UserName=name)
    if statements:
        iam.put_user_policy(UserName=name, PolicyName="s3", PolicyDocument=document(*statements))
    made = iam.create_access_key(UserName=name)["AccessKey"]
    return name, made["AccessKeyId"], made["SecretAccessKey"]


def allow(action: Any, resource: Any, **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def bucket_with(s3: Any, *keys: str, **create: Any) -> str:
    name = unique("iam-bucket")
    s3.create_bucket(Bucket=name, **create)
    for key in keys:
        s3.put_object(Bucket=name, Key=key, Body=f"body of {key}".encode())
    return name


def test_get_object_on_one_prefix_only(client: ClientFactory) -> None:
    root = client("s3")
    bucket = bucket_with(root, "public/a.txt", "private/b.txt")
    _, key, secret = user(client, allow("s3:GetObject", f"arn:aws:s3:::{bucket}/public/*"))
    s3 = client("s3", key=key, secret=secret)
    assert s3.get_object(Bucket=bucket, Key="public/a.txt")["Body"].read() == \
        b"body of public/a.txt"
    assert s3.head_object(Bucket=bucket, Key="public/a.txt")["ContentLength"] == 20
    assert refused(lambda: s3.get_object(Bucket=bucket, Key="private/b.txt"))[:2] == (
        "AccessDenied", 403)
    # A missing key is AccessDenied to who may not list the bucket, NoSuchKey to who may.
    assert refused(lambda: s3.get_object(Bucket=bucket, Key="public/none"))[:2] == (
        "AccessDenied", 403)
    assert refused(lambda: s3.put_object(Bucket=bucket, Key="public/new", Body=b"x"))[0] == \
        "AccessDenied"
    assert refused(lambda: s3.list_objects_v2(Bucket=bucket))[0] == "AccessDenied"
    assert refused(lambda: s3.list_buckets())[0] == "AccessDenied"
    _, key, secret = user(client, allow("s3:GetObject", f"arn:aws:s3:::{bucket}/public/*"),
                          allow("s3:ListBucket", f"arn:aws:s3:::{bucket}"))
    lister = client("s3", key=key, secret=secret)
    assert refused(lambda: lister.get_object(Bucket=bucket, Key="public/none"))[:2] == (
        "NoSuchKey", 404)
    assert [o["Key"] for o in lister.list_objects_v2(Bucket=bucket)["Contents"]] == [
        "private/b.txt", "public/a.txt"]


def test_actions_are_s3s_not_operation_names(client: ClientFactory) -> None:
    root = client("s3")
    bucket = bucket_with(root, "k")
    arn = f"arn:aws:s3:::{bucket}"
    # Named for the operations, these allow nothing.
    _, key, secret = user(client, allow(["s3:ListObjectsV2", "s3:HeadObject",
                                         "s3:CreateMultipartUpload", "s3:ListBuckets"],
                                        [arn, f"{arn}/*", "*"]))
    wrong = client("s3", key=key, secret=secret)
    for call in (lambda: wrong.list_objects_v2(Bucket=bucket),
                 lambda: wrong.head_object(Bucket=bucket, Key="k"),
                 lambda: wrong.create_multipart_upload(Bucket=bucket, Key="m"),
                 lambda: wrong.list_buckets()):
        assert refused(call)[0] in ("AccessDenied", "403")
    _, key, secret = user(client, allow(["s3:ListBucket", "s3:GetObject", "s3:PutObject",
                                         "s3:ListAllMyBuckets", "s3:AbortMultipartUpload"],
                                        [arn, f"{arn}/*", "*"]))
    right = client("s3", key=key, secret=secret)
    assert right.list_objects_v2(Bucket=bucket)["KeyCount"] == 1
    right.head_bucket(Bucket=bucket)
    assert right.head_object(Bucket=bucket, Key="k")["ContentLength"] == 9
    upload = right.create_multipart_upload(Bucket=bucket, Key="m")["UploadId"]
    right.upload_part(Bucket=bucket, Key="m", UploadId=upload, PartNumber=1, Body=b"p")
    # Listing the parts is its own action, which this user lacks.
    assert refused(lambda: right.list_parts(Bucket=bucket, Key="m", UploadId=upload))[0] == \
        "AccessDenied"
    right.abort_multipart_upload(Bucket=bucket, Key="m", UploadId=upload)
    # Setting an ACL on a write is s3:PutObjectAcl too.
    right.put_object(Bucket=bucket, Key="plain", Body=b"x")
    assert refused(lambda: right.put_object(Bucket=bucket, Key="acl", Body=b"x",
                                            ACL="private"))[0] == "AccessDenied"
    assert bucket in {b["Name"] for b in right.list_buckets()["Buckets"]}
    # DeleteObjects decides every key on its own (s3:DeleteObject).
    _, key, secret = user(client, allow("s3:DeleteObject", f"{arn}/mine/*"))
    deleter = client("s3", key=key, secret=secret)
    root.put_object(Bucket=bucket, Key="mine/x", Body=b"x")
    result = deleter.delete_objects(Bucket=bucket, Delete={"Objects": [
        {"Key": "mine/x"}, {"Key": "k"}]})
    assert [d["Key"] for d in result["Deleted"]] == ["mine/x"]
    assert [(e["Key"], e["Code"]) for e in result["Errors"]] == [("k", "AccessDenied")]


def test_s3_condition_keys(client: ClientFactory) -> None:
    root = client("s3")
    bucket = bucket_with(root, "home/me/a", "other/b", ObjectOwnership="ObjectWriter")
    arn = f"arn:aws:s3:::{bucket}"
    _, key, secret = user(
        client,
        allow("s3:ListBucket", arn, Condition={"StringLike": {"s3:prefix": ["home/*"]}}),
        allow(["s3:PutObject", "s3:PutObjectAcl"], f"{arn}/*",
              Condition={"StringEquals": {"s3:x-amz-acl": "bucket-owner-full-control"}}))
    s3 = client("s3", key=key, secret=secret)
    assert s3.list_objects_v2(Bucket=bucket, Prefix="home/")["KeyCount"] == 1
    assert refused(lambda: s3.list_objects_v2(Bucket=bucket))[0] == "AccessDenied"
    assert refused(lambda: s3.list_objects_v2(Bucket=bucket, Prefix="other/"))[0] == \
        "AccessDenied"
    s3.put_object(Bucket=bucket, Key="up", Body=b"1", ACL="bucket-owner-full-control")
    assert refused(lambda: s3.put_object(Bucket=bucket, Key="up", Body=b"2"))[0] == \
        "AccessDenied"
    assert refused(lambda: s3.put_object(Bucket=bucket, Key="up", Body=b"2",
                                         ACL="public-read"))[0] == "AccessDenied"


def test_same_account_identity_or_bucket_policy_and_deny_wins(client: ClientFactory) -> None:
    root = client("s3")
    bucket = bucket_with(root, "doc")
    arn = f"arn:aws:s3:::{bucket}"
    name, key, secret = user(client)  # no identity policy at all
    s3 = client("s3", key=key, secret=secret)
    assert refused(lambda: s3.get_object(Bucket=bucket, Key="doc"))[0] == "AccessDenied"
    root.put_bucket_policy(Bucket=bucket, Policy=document({
        "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{DEV_ACCOUNT}:user/{name}"},
        "Action": "s3:GetObject", "Resource": f"{arn}/*"}))
    assert s3.get_object(Bucket=bucket, Key="doc")["Body"].read() == b"body of doc"
    # An identity allow, and a Deny in the bucket policy: denied.
    _, key, secret = user(client, allow("s3:GetObject", "*"))
    allowed = client("s3", key=key, secret=secret)
    assert allowed.get_object(Bucket=bucket, Key="doc")["ContentLength"] == 11
    root.put_bucket_policy(Bucket=bucket, Policy=document({
        "Effect": "Deny", "Principal": "*", "Action": "s3:GetObject", "Resource": f"{arn}/*",
        "Condition": {"StringLike": {"aws:PrincipalArn": "*:user/*"}}}))
    assert refused(lambda: allowed.get_object(Bucket=bucket, Key="doc"))[0] == "AccessDenied"
    assert root.get_object(Bucket=bucket, Key="doc")["ContentLength"] == 11  # a root
    # A Deny in the identity policy beats the bucket policy's allow.
    root.delete_bucket_policy(Bucket=bucket)
    name, key, secret = user(client, {"Effect": "Deny", "Action": "s3:*", "Resource": "*"})
    root.put_bucket_policy(Bucket=bucket, Policy=document({
        "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{DEV_ACCOUNT}:user/{name}"},
        "Action": "s3:GetObject", "Resource": f"{arn}/*"}))
    denied = client("s3", key=key, secret=secret)
    assert refused(lambda: denied.get_object(Bucket=bucket, Key="doc"))[0] == "AccessDenied"


def test_another_account_needs_both_sides(client: ClientFactory, account_b: str) -> None:
    root = client("s3")
    bucket = bucket_with(root, "shared")
    arn = f"arn:aws:s3:::{bucket}"
    _, key, secret = user(client, allow("s3:GetObject", f"{arn}/*"), key=B_KEY,
                          secret=B_SECRET)
    theirs = client("s3", key=key, secret=secret)
    assert refused(lambda: theirs.get_object(Bucket=bucket, Key="shared"))[0] == \
        "AccessDenied"  # identity yes, bucket no
    root.put_bucket_policy(Bucket=bucket, Policy=document({
        "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{account_b}:root"},
        "Action": "s3:GetObject", "Resource": f"{arn}/*"}))
    assert theirs.get_object(Bucket=bucket, Key="shared")["ContentLength"] == 14
    _, key, secret = user(client, key=B_KEY, secret=B_SECRET)  # bucket yes, identity no
    bare = client("s3", key=key, secret=secret)
    assert refused(lambda: bare.get_object(Bucket=bucket, Key="shared"))[0] == "AccessDenied"
    # B's root needs only the bucket's word.
    assert client("s3", key=B_KEY, secret=B_SECRET).get_object(
        Bucket=bucket, Key="shared")["ContentLength"] == 14


def test_session_policies_cap_an_assumed_role(client: ClientFactory) -> None:
    root = client("s3")
    bucket = bucket_with(root, "a/1", "b/2")
    arn = f"arn:aws:s3:::{bucket}"
    iam = client("iam")
    role = unique("s3role")
    iam.create_role(RoleName=role, AssumeRolePolicyDocument=document({
        "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{DEV_ACCOUNT}:root"},
        "Action": "sts:AssumeRole"}))
    iam.put_role_policy(RoleName=role, PolicyName="read",
                        PolicyDocument=document(allow("s3:GetObject", f"{arn}/*")))
    credentials = client("sts").assume_role(
        RoleArn=f"arn:aws:iam::{DEV_ACCOUNT}:role/{role}", RoleSessionName="capped",
        Policy=document(allow("s3:GetObject", f"{arn}/a/*")))["Credentials"]
    s3 = client("s3", key=credentials["AccessKeyId"], secret=credentials["SecretAccessKey"],
                aws_session_token=credentials["SessionToken"])
    assert s3.get_object(Bucket=bucket, Key="a/1")["ContentLength"] == 11
    assert refused(lambda: s3.get_object(Bucket=bucket, Key="b/2"))[0] == "AccessDenied"


def test_create_bucket_with_ownership_controls_needs_that_action(client: ClientFactory) -> None:
    _, key, secret = user(client, allow("s3:CreateBucket", "*"))
    s3 = client("s3", key=key, secret=secret)
    s3.create_bucket(Bucket=unique("made"))
    assert refused(lambda: s3.create_bucket(Bucket=unique("owned"),
                                            ObjectOwnership="ObjectWriter"))[0] == \
        "AccessDenied"
    _, key, secret = user(client, allow(["s3:CreateBucket", "s3:PutBucketOwnershipControls"],
                                        "*"))
    client("s3", key=key, secret=secret).create_bucket(Bucket=unique("owned"),
                                                       ObjectOwnership="ObjectWriter")


def test_anonymous_reads_of_public_read_objects(client: ClientFactory,
                                                server: ServerProcess) -> None:
    root = client("s3", region="eu-west-1")
    bucket = unique("public")
    root.create_bucket(Bucket=bucket, ObjectOwnership="ObjectWriter",
                       CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    root.put_object(Bucket=bucket, Key="open", Body=b"for everyone", ACL="public-read")
    root.put_object(Bucket=bucket, Key="closed", Body=b"for the owner")
    # An unsigned client, whatever region it names: the bucket's own region answers.
    anon = boto3.client("s3", region_name="us-east-1", endpoint_url=server.url,
                        config=Config(signature_version=UNSIGNED, retries={"max_attempts": 0}))
    assert anon.get_object(Bucket=bucket, Key="open")["Body"].read() == b"for everyone"
    assert anon.head_object(Bucket=bucket, Key="open")["ContentLength"] == 12
    assert anon.get_object(Bucket=bucket, Key="open", Range="bytes=4-6")["Body"].read() == \
        b"eve"
    assert refused(lambda: anon.get_object(Bucket=bucket, Key="closed"))[:2] == (
        "AccessDenied", 403)
    assert refused(lambda: anon.get_object(Bucket=bucket, Key="none"))[:2] == (
        "AccessDenied", 403)
    assert refused(lambda: anon.get_object(Bucket=unique("nobucket"), Key="x"))[:2] == (
        "NoSuchBucket", 404)
    assert refused(lambda: anon.list_objects_v2(Bucket=bucket))[1] == 403
    assert refused(lambda: anon.put_object(Bucket=bucket, Key="w", Body=b"x"))[1] == 403
    # A Deny to everyone in the bucket policy reaches anonymous callers too.
    root.put_bucket_policy(Bucket=bucket, Policy=document({
        "Effect": "Deny", "Principal": "*", "Action": "s3:GetObject",
        "Resource": f"arn:aws:s3:::{bucket}/open"}))
    assert refused(lambda: anon.get_object(Bucket=bucket, Key="open"))[:2] == (
        "AccessDenied", 403)
