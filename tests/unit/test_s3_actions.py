"""S3 operations ask IAM for S3's actions (the Service Authorization Reference), not for
their own names; the resources are bucket and object ARNs; the s3: condition keys come from
the request."""

from __future__ import annotations

import pytest

from snapferry.domain import actions, s3_actions
from snapferry.domain.buckets import check_bucket_name
from snapferry.domain.bundle_copies import regional_bucket
from snapferry.services.s3 import SERVICE

EXPECTED = {
    "ListBuckets": "s3:ListAllMyBuckets",
    "CreateBucket": "s3:CreateBucket",
    "DeleteBucket": "s3:DeleteBucket",
    "HeadBucket": "s3:ListBucket",
    "GetBucketLocation": "s3:GetBucketLocation",
    "ListObjects": "s3:ListBucket",
    "ListObjectsV2": "s3:ListBucket",
    "ListMultipartUploads": "s3:ListBucketMultipartUploads",
    "GetBucketAcl": "s3:GetBucketAcl",
    "PutBucketAcl": "s3:PutBucketAcl",
    "GetBucketPolicy": "s3:GetBucketPolicy",
    "PutBucketPolicy": "s3:PutBucketPolicy",
    "DeleteBucketPolicy": "s3:DeleteBucketPolicy",
    "GetBucketOwnershipControls": "s3:GetBucketOwnershipControls",
    "PutBucketOwnershipControls": "s3:PutBucketOwnershipControls",
    "DeleteBucketOwnershipControls": "s3:PutBucketOwnershipControls",
    "GetObject": "s3:GetObject",
    "HeadObject": "s3:GetObject",
    "PutObject": "s3:PutObject",
    "CopyObject": "s3:PutObject",
    "DeleteObject": "s3:DeleteObject",
    "DeleteObjects": "s3:DeleteObject",
    "GetObjectAcl": "s3:GetObjectAcl",
    "PutObjectAcl": "s3:PutObjectAcl",
    "CreateMultipartUpload": "s3:PutObject",
    "UploadPart": "s3:PutObject",
    "UploadPartCopy": "s3:PutObject",
    "CompleteMultipartUpload": "s3:PutObject",
    "AbortMultipartUpload": "s3:AbortMultipartUpload",
    "ListParts": "s3:ListMultipartUploadParts",
}
WHERE = actions.Where("000000000000", "us-east-1")


def test_every_served_operation_is_in_the_table() -> None:
    assert set(SERVICE.handlers) == set(EXPECTED)


@pytest.mark.parametrize(("operation", "action"), sorted(EXPECTED.items()))
def test_each_operation_asks_for_its_iam_action(operation: str, action: str) -> None:
    asked = actions.asked("s3", "s3", operation, {"Bucket": "b", "Key": "k/x"}, WHERE)
    assert asked.action == action


def test_resources_are_buckets_and_objects() -> None:
    params = {"Bucket": "b", "Key": "dir/file"}
    assert actions.asked("s3", "s3", "GetObject", params, WHERE).resources == (
        "arn:aws:s3:::b/dir/file",)
    assert actions.asked("s3", "s3", "ListObjectsV2", params, WHERE).resources == (
        "arn:aws:s3:::b",)
    assert actions.asked("s3", "s3", "ListBuckets", {}, WHERE).resources == ("*",)


def test_condition_keys_come_from_the_request() -> None:
    listing = s3_actions.conditions("ListObjectsV2", {"Prefix": "home/", "Delimiter": "/",
                                                      "MaxKeys": 10})
    assert (listing["s3:prefix"], listing["s3:delimiter"], listing["s3:max-keys"]) == (
        "home/", "/", "10")
    assert s3_actions.conditions("ListObjectsV2", {})["s3:prefix"] == ""
    put = s3_actions.conditions("PutObject", {"ACL": "public-read", "Prefix": "x"})
    assert put["s3:x-amz-acl"] == "public-read" and "s3:prefix" not in put
    assert "s3:x-amz-acl" not in s3_actions.conditions("PutObject", {})
    asked = actions.asked("s3", "s3", "CopyObject", {"Bucket": "b", "Key": "k",
                                                     "CopySource": "src/key"}, WHERE)
    assert asked.conditions["s3:x-amz-copy-source"] == "src/key"
    assert asked.conditions["aws:RequestedRegion"] == "us-east-1"


def test_the_regional_bucket_is_stable_and_valid() -> None:
    name = regional_bucket("123456789012", "us-east-2")
    assert name == regional_bucket("123456789012", "us-east-2")
    suffix = name.rsplit("-", 1)[1]
    assert name == f"amis-for-123456789012-in-us-east-2-{suffix}"
    assert len(suffix) == 8 and suffix.isalnum() and suffix == suffix.lower()
    assert regional_bucket("123456789012", "us-west-2") != name
    assert regional_bucket("210987654321", "us-east-2") != name
    check_bucket_name(regional_bucket("123456789012", "ap-southeast-2"))


def test_an_operation_on_no_bucket_or_on_no_resource_acts_on_everything() -> None:
    # A bucket or object operation whose request names no bucket (refused later, by the
    # handler) asks about "*", never about a bucket named "None".
    for operation in ("ListObjectsV2", "GetObject", "DeleteBucket"):
        assert s3_actions.resources(operation, {}) == ["*"]
        assert s3_actions.resources(operation, {"Bucket": ""}) == ["*"]
    # ListAllMyBuckets, and an operation not in the table, act on "*" whatever they name.
    for operation in ("ListBuckets", "GetBucketWebsite"):
        assert s3_actions.resources(operation, {"Bucket": "b", "Key": "k"}) == ["*"]
    assert s3_actions.action("GetBucketWebsite") == "s3:GetBucketWebsite"
