"""What each S3 operation asks IAM (the Service Authorization Reference for Amazon S3): its
action, the resource it acts on and the s3: condition keys the request supplies.

S3's actions are not its operation names: ListObjectsV2 is s3:ListBucket, HeadObject is
s3:GetObject, every step of a multipart upload is s3:PutObject. Some operations need a
second action on top, checked by the handler where it applies: CopyObject and UploadPartCopy
s3:GetObject on the source, DeleteObjects s3:DeleteObject per key, a missing key
s3:ListBucket (to tell NoSuchKey from AccessDenied), a write that sets an ACL
s3:PutObjectAcl, CreateBucket with an ObjectOwnership s3:PutBucketOwnershipControls.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

BUCKET, OBJECT, ANY = "bucket", "object", "*"

# operation -> (IAM action, the resource kind it acts on)
ACTIONS: dict[str, tuple[str, str]] = {
    "ListBuckets": ("s3:ListAllMyBuckets", ANY),
    "CreateBucket": ("s3:CreateBucket", BUCKET),
    "DeleteBucket": ("s3:DeleteBucket", BUCKET),
    "HeadBucket": ("s3:ListBucket", BUCKET),
    "GetBucketLocation": ("s3:GetBucketLocation", BUCKET),
    "ListObjects": ("s3:ListBucket", BUCKET),
    "ListObjectsV2": ("s3:ListBucket", BUCKET),
    "ListMultipartUploads": ("s3:ListBucketMultipartUploads", BUCKET),
    "GetBucketAcl": ("s3:GetBucketAcl", BUCKET),
    "PutBucketAcl": ("s3:PutBucketAcl", BUCKET),
    "GetBucketPolicy": ("s3:GetBucketPolicy", BUCKET),
    "PutBucketPolicy": ("s3:PutBucketPolicy", BUCKET),
    "DeleteBucketPolicy": ("s3:DeleteBucketPolicy", BUCKET),
    "GetBucketOwnershipControls": ("s3:GetBucketOwnershipControls", BUCKET),
    "PutBucketOwnershipControls": ("s3:PutBucketOwnershipControls", BUCKET),
    "DeleteBucketOwnershipControls": ("s3:PutBucketOwnershipControls", BUCKET),
    "GetObject": ("s3:GetObject", OBJECT),
    "HeadObject": ("s3:GetObject", OBJECT),
    "PutObject": ("s3:PutObject", OBJECT),
    "CopyObject": ("s3:PutObject", OBJECT),
    "DeleteObject": ("s3:DeleteObject", OBJECT),
    "DeleteObjects": ("s3:DeleteObject", BUCKET),  # decided per key by the handler
    "GetObjectAcl": ("s3:GetObjectAcl", OBJECT),
    "PutObjectAcl": ("s3:PutObjectAcl", OBJECT),
    "CreateMultipartUpload": ("s3:PutObject", OBJECT),
    "UploadPart": ("s3:PutObject", OBJECT),
    "UploadPartCopy": ("s3:PutObject", OBJECT),
    "CompleteMultipartUpload": ("s3:PutObject", OBJECT),
    "AbortMultipartUpload": ("s3:AbortMultipartUpload", OBJECT),
    "ListParts": ("s3:ListMultipartUploadParts", OBJECT),
}

# Request members -> the s3: condition key each supplies.
_CONDITION_MEMBERS = {
    "Prefix": "s3:prefix",
    "Delimiter": "s3:delimiter",
    "MaxKeys": "s3:max-keys",
    "ACL": "s3:x-amz-acl",
    "CopySource": "s3:x-amz-copy-source",
    "MetadataDirective": "s3:x-amz-metadata-directive",
    "ObjectOwnership": "s3:x-amz-object-ownership",
    "GrantRead": "s3:x-amz-grant-read",
    "GrantWrite": "s3:x-amz-grant-write",
    "GrantReadACP": "s3:x-amz-grant-read-acp",
    "GrantWriteACP": "s3:x-amz-grant-write-acp",
    "GrantFullControl": "s3:x-amz-grant-full-control",
}
_LIST_OPERATIONS = ("ListObjects", "ListObjectsV2")


def action(operation: str) -> str:
    """The IAM action of an S3 operation (s3:<Operation> for one not in the table)."""
    return ACTIONS.get(operation, (f"s3:{operation}", ANY))[0]


def resources(operation: str, params: Mapping[str, Any]) -> list[str]:
    kind = ACTIONS.get(operation, ("", ANY))[1]
    bucket = params.get("Bucket")
    if kind == ANY or not bucket:
        return ["*"]
    if kind == OBJECT and params.get("Key") is not None:
        return [f"arn:aws:s3:::{bucket}/{params['Key']}"]
    return [f"arn:aws:s3:::{bucket}"]


def conditions(operation: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """The s3: condition keys of one request. s3:prefix, s3:delimiter and s3:max-keys are
    ListBucket's; the x-amz-* keys come from the headers the request sent."""
    found: dict[str, Any] = {"s3:signatureversion": "AWS4-HMAC-SHA256",
                             "s3:authType": "REST-HEADER"}
    for member, key in _CONDITION_MEMBERS.items():
        value = params.get(member)
        if value is None:
            continue
        if key in ("s3:prefix", "s3:delimiter", "s3:max-keys") and \
                operation not in _LIST_OPERATIONS:
            continue
        found[key] = str(value)
    if operation in _LIST_OPERATIONS and "s3:prefix" not in found:
        found["s3:prefix"] = ""  # S3 treats a listing without one as the empty prefix
    return found
