"""S3 on the same port, through boto3 (botocore's own serializer, signer and parser): buckets,
objects, listing, copies, multipart uploads, ACLs, ownership controls, bucket policies, S3's
errors; aws-chunked bodies (signed chunk by chunk, and unsigned with trailing checksums);
presigned URLs; virtual-host addressing."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import io
import json
import os
import urllib.error
import urllib.request
import zlib
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from snapferry.domain.s3_access import EC2_CANONICAL_ID, canonical_id
from snapferry.testing import ServerProcess

from .conftest import ACCOUNT_B, NO_RETRIES, ClientFactory, add_account
from .s3_wire import (
    crc32_b64,
    send,
    signed_chunked_put,
    signed_headers,
    unsigned_trailer_put,
    via_loopback,
)

MIB = 1024 * 1024
OTHER_ID, OTHER_KEY, OTHER_SECRET = ACCOUNT_B


@pytest.fixture(scope="module")
def s3(client: ClientFactory) -> Any:
    return client("s3")


@pytest.fixture(scope="module")
def other(client: ClientFactory, data_dir: Path, server: ServerProcess) -> Any:
    """A client of another account."""
    add_account(data_dir, OTHER_ID, OTHER_KEY, OTHER_SECRET)
    return client("s3", key=OTHER_KEY, secret=OTHER_SECRET)


def code(error: pytest.ExceptionInfo[ClientError]) -> str:
    return error.value.response["Error"]["Code"]


def status(error: pytest.ExceptionInfo[ClientError]) -> int:
    return error.value.response["ResponseMetadata"]["HTTPStatusCode"]


def bucket(s3: Any, name: str, **kwargs: Any) -> str:
    s3.create_bucket(Bucket=name, **kwargs)
    return name


# ---- buckets ---------------------------------------------------------------------------------

def test_bucket_lifecycle(s3: Any, client: ClientFactory) -> None:
    name = bucket(s3, "lifecycle-bucket")
    assert name in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert s3.head_bucket(Bucket=name)["BucketRegion"] == "us-east-1"
    assert s3.get_bucket_location(Bucket=name)["LocationConstraint"] is None
    s3.put_object(Bucket=name, Key="k", Body=b"x")
    with pytest.raises(ClientError) as full:
        s3.delete_bucket(Bucket=name)
    assert code(full) == "BucketNotEmpty" and status(full) == 409
    s3.delete_object(Bucket=name, Key="k")
    s3.delete_bucket(Bucket=name)
    with pytest.raises(ClientError) as gone:
        s3.head_bucket(Bucket=name)
    assert status(gone) == 404
    with pytest.raises(ClientError) as missing:
        s3.list_objects_v2(Bucket=name)
    assert code(missing) == "NoSuchBucket"


def test_bucket_in_another_region(client: ClientFactory) -> None:
    west = client("s3", region="eu-west-3")
    west.create_bucket(Bucket="west-bucket",
                       CreateBucketConfiguration={"LocationConstraint": "eu-west-3"})
    assert west.get_bucket_location(Bucket="west-bucket")["LocationConstraint"] == "eu-west-3"
    with pytest.raises(ClientError) as no_constraint:
        west.create_bucket(Bucket="west-bucket-2")
    assert code(no_constraint) == "IllegalLocationConstraintException"
    with pytest.raises(ClientError) as explicit_east:
        client("s3").create_bucket(Bucket="east-named",
                                   CreateBucketConfiguration={"LocationConstraint": "us-east-1"})
    assert code(explicit_east) == "InvalidLocationConstraint"
    # A client of another region is told where the bucket is, and botocore follows.
    east = client("s3", region="us-east-1")
    east.put_object(Bucket="west-bucket", Key="k", Body=b"followed")
    assert west.get_object(Bucket="west-bucket", Key="k")["Body"].read() == b"followed"


@pytest.mark.parametrize("name", ["ab", "a" * 64, "Upper", "-lead", "trail-", "a..b",
                                  "192.168.1.1", "xn--abc", "bad_char", "name-s3alias"])
def test_bucket_names_are_checked(s3: Any, name: str) -> None:
    with pytest.raises(ClientError) as bad:
        s3.create_bucket(Bucket=name)
    assert code(bad) == "InvalidBucketName"
    assert name not in [b["Name"] for b in s3.list_buckets()["Buckets"]]


def test_bucket_names_are_one_namespace(s3: Any, other: Any) -> None:
    name = bucket(s3, "taken-bucket")
    with pytest.raises(ClientError) as mine:
        s3.create_bucket(Bucket=name)
    assert code(mine) == "BucketAlreadyOwnedByYou"
    with pytest.raises(ClientError) as theirs:
        other.create_bucket(Bucket=name)
    assert code(theirs) == "BucketAlreadyExists" and status(theirs) == 409
    assert name not in [b["Name"] for b in other.list_buckets()["Buckets"]]


# ---- objects ---------------------------------------------------------------------------------

def test_put_get_head_with_metadata(s3: Any) -> None:
    name = bucket(s3, "objects-bucket")
    data = os.urandom(3000)
    put = s3.put_object(Bucket=name, Key="dir/file.bin", Body=data, ContentType="image/png",
                        Metadata={"origin": "test"}, CacheControl="no-cache")
    assert put["ETag"] == f'"{hashlib.md5(data).hexdigest()}"'
    got = s3.get_object(Bucket=name, Key="dir/file.bin")
    assert got["Body"].read() == data
    assert got["ContentType"] == "image/png" and got["Metadata"] == {"origin": "test"}
    assert got["CacheControl"] == "no-cache" and got["ContentLength"] == 3000
    head = s3.head_object(Bucket=name, Key="dir/file.bin")
    assert head["ContentLength"] == 3000 and head["ETag"] == put["ETag"]
    with pytest.raises(ClientError) as missing:
        s3.get_object(Bucket=name, Key="nothing-here")
    assert code(missing) == "NoSuchKey" and status(missing) == 404


def test_ranges_and_conditions(s3: Any) -> None:
    name = bucket(s3, "ranges-bucket")
    data = bytes(range(256)) * 4
    etag = s3.put_object(Bucket=name, Key="r", Body=data)["ETag"]
    part = s3.get_object(Bucket=name, Key="r", Range="bytes=10-19")
    assert part["Body"].read() == data[10:20]
    assert part["ContentRange"] == "bytes 10-19/1024"
    assert part["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert s3.get_object(Bucket=name, Key="r", Range="bytes=-5")["Body"].read() == data[-5:]
    assert s3.get_object(Bucket=name, Key="r", Range="bytes=1000-")["Body"].read() == data[1000:]
    with pytest.raises(ClientError) as past_end:
        s3.get_object(Bucket=name, Key="r", Range="bytes=5000-")
    assert code(past_end) == "InvalidRange" and status(past_end) == 416
    with pytest.raises(ClientError) as not_modified:
        s3.get_object(Bucket=name, Key="r", IfNoneMatch=etag)
    assert status(not_modified) == 304
    with pytest.raises(ClientError) as failed:
        s3.get_object(Bucket=name, Key="r", IfMatch='"0000"')
    assert code(failed) == "PreconditionFailed" and status(failed) == 412
    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    with pytest.raises(ClientError) as unchanged:
        s3.get_object(Bucket=name, Key="r", IfModifiedSince=later)
    assert status(unchanged) == 304
    assert s3.get_object(Bucket=name, Key="r", IfMatch=etag)["Body"].read() == data
    # A conditional write: If-None-Match * refuses to replace.
    with pytest.raises(ClientError) as exists:
        s3.put_object(Bucket=name, Key="r", Body=b"new", IfNoneMatch="*")
    assert status(exists) == 412
    assert s3.get_object(Bucket=name, Key="r")["Body"].read() == data


def test_digests_are_verified_and_a_bad_one_stores_nothing(s3: Any) -> None:
    name = bucket(s3, "digest-bucket")
    data = b"the real bytes"
    wrong = base64.b64encode(hashlib.md5(b"other").digest()).decode()
    with pytest.raises(ClientError) as md5:
        s3.put_object(Bucket=name, Key="k", Body=data, ContentMD5=wrong)
    assert code(md5) == "BadDigest"
    with pytest.raises(ClientError) as crc:
        s3.put_object(Bucket=name, Key="k", Body=data, ChecksumCRC32=crc32_b64(b"other"))
    assert code(crc) == "BadDigest"
    with pytest.raises(ClientError) as sha:
        s3.put_object(Bucket=name, Key="k", Body=data, ChecksumSHA256=base64.b64encode(
            hashlib.sha256(b"other").digest()).decode())
    assert code(sha) == "BadDigest"
    assert s3.list_objects_v2(Bucket=name)["KeyCount"] == 0
    ok = s3.put_object(Bucket=name, Key="k", Body=data, ChecksumAlgorithm="SHA256")
    assert ok["ChecksumSHA256"] == base64.b64encode(hashlib.sha256(data).digest()).decode()
    got = s3.get_object(Bucket=name, Key="k", ChecksumMode="ENABLED")
    assert got["ChecksumSHA256"] == ok["ChecksumSHA256"] and got["Body"].read() == data
    # The standard check values of CRC-32C and CRC-64/NVME (the CRC of "123456789"), given
    # as values (botocore computes these two only with awscrt).
    crc32c = base64.b64encode(bytes.fromhex("e3069283")).decode()
    crc64 = base64.b64encode(bytes.fromhex("ae8b14860a799888")).decode()
    assert s3.put_object(Bucket=name, Key="c", Body=b"123456789",
                         ChecksumCRC32C=crc32c)["ChecksumCRC32C"] == crc32c
    assert s3.put_object(Bucket=name, Key="n", Body=b"123456789",
                         ChecksumCRC64NVME=crc64)["ChecksumCRC64NVME"] == crc64
    for wrong in ({"ChecksumCRC32C": crc32c}, {"ChecksumCRC64NVME": crc64}):
        with pytest.raises(ClientError) as mismatch:
            s3.put_object(Bucket=name, Key="w", Body=b"12345678", **wrong)
        assert code(mismatch) == "BadDigest"


def test_delete_objects(s3: Any) -> None:
    name = bucket(s3, "delete-many")
    for key in ("a", "b", "c"):
        s3.put_object(Bucket=name, Key=key, Body=key.encode())
    done = s3.delete_objects(Bucket=name, Delete={"Objects": [{"Key": "a"}, {"Key": "b"},
                                                              {"Key": "never"}]})
    assert sorted(d["Key"] for d in done["Deleted"]) == ["a", "b", "never"]
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=name)["Contents"]] == ["c"]


def test_listing_prefix_delimiter_paging(s3: Any) -> None:
    name = bucket(s3, "listing-bucket")
    keys = ["a/1", "a/2", "b/1", "b/c/1", "top", "top2", "z/ü +?&.txt"]
    for key in keys:
        s3.put_object(Bucket=name, Key=key, Body=b"")
    everything = s3.list_objects_v2(Bucket=name)
    assert [o["Key"] for o in everything["Contents"]] == keys
    folders = s3.list_objects_v2(Bucket=name, Delimiter="/")
    assert [p["Prefix"] for p in folders["CommonPrefixes"]] == ["a/", "b/", "z/"]
    assert [o["Key"] for o in folders["Contents"]] == ["top", "top2"]
    inside = s3.list_objects_v2(Bucket=name, Prefix="b/", Delimiter="/")
    assert [o["Key"] for o in inside["Contents"]] == ["b/1"]
    assert [p["Prefix"] for p in inside["CommonPrefixes"]] == ["b/c/"]
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=name, PaginationConfig={
        "PageSize": 2})
    seen = [o["Key"] for page in pages for o in page.get("Contents", [])]
    assert seen == keys
    delimited = s3.get_paginator("list_objects_v2").paginate(
        Bucket=name, Delimiter="/", PaginationConfig={"PageSize": 1})
    prefixes = [p["Prefix"] for page in delimited for p in page.get("CommonPrefixes", [])]
    assert prefixes == ["a/", "b/", "z/"]
    after = s3.list_objects_v2(Bucket=name, StartAfter="b/c/1")
    assert [o["Key"] for o in after["Contents"]] == ["top", "top2", "z/ü +?&.txt"]
    v1 = s3.list_objects(Bucket=name, Marker="top")
    assert [o["Key"] for o in v1["Contents"]] == ["top2", "z/ü +?&.txt"]
    # Asked for explicitly, the encoding stays (botocore decodes only what it asked for).
    encoded = s3.list_objects_v2(Bucket=name, Prefix="z/", EncodingType="url")
    assert [o["Key"] for o in encoded["Contents"]] == ["z/%C3%BC%20%2B%3F%26.txt"]


def test_copy_object(s3: Any) -> None:
    name = bucket(s3, "copy-bucket")
    data = os.urandom(5000)
    s3.put_object(Bucket=name, Key="src", Body=data, ContentType="text/x-src",
                  Metadata={"m": "1"})
    s3.copy_object(Bucket=name, Key="same-meta", CopySource={"Bucket": name, "Key": "src"})
    copied = s3.get_object(Bucket=name, Key="same-meta")
    assert copied["Body"].read() == data and copied["Metadata"] == {"m": "1"}
    assert copied["ContentType"] == "text/x-src"
    s3.copy_object(Bucket=name, Key="new-meta", CopySource=f"{name}/src",
                   MetadataDirective="REPLACE", Metadata={"m": "2"}, ContentType="text/plain")
    replaced = s3.head_object(Bucket=name, Key="new-meta")
    assert replaced["Metadata"] == {"m": "2"} and replaced["ContentType"] == "text/plain"
    with pytest.raises(ClientError) as onto_itself:
        s3.copy_object(Bucket=name, Key="src", CopySource=f"{name}/src")
    assert code(onto_itself) == "InvalidRequest"
    with pytest.raises(ClientError) as no_source:
        s3.copy_object(Bucket=name, Key="x", CopySource=f"{name}/missing")
    assert code(no_source) == "NoSuchKey"


# ---- multipart -------------------------------------------------------------------------------

def test_multipart_upload(s3: Any) -> None:
    name = bucket(s3, "multipart-bucket")
    parts_data = [os.urandom(5 * MIB), os.urandom(5 * MIB), os.urandom(1234)]
    upload = s3.create_multipart_upload(Bucket=name, Key="big", ContentType="app/x")
    upload_id = upload["UploadId"]
    assert [u["UploadId"] for u in s3.list_multipart_uploads(Bucket=name)["Uploads"]] == [
        upload_id]
    etags = []
    for number, data in enumerate(parts_data, 1):
        etags.append(s3.upload_part(Bucket=name, Key="big", UploadId=upload_id,
                                    PartNumber=number, Body=data)["ETag"])
    listed = s3.list_parts(Bucket=name, Key="big", UploadId=upload_id)
    assert [(p["PartNumber"], p["Size"]) for p in listed["Parts"]] == [
        (1, 5 * MIB), (2, 5 * MIB), (3, 1234)]
    with pytest.raises(ClientError) as order:
        s3.complete_multipart_upload(Bucket=name, Key="big", UploadId=upload_id,
                                     MultipartUpload={"Parts": [
                                         {"PartNumber": 2, "ETag": etags[1]},
                                         {"PartNumber": 1, "ETag": etags[0]}]})
    assert code(order) == "InvalidPartOrder"
    with pytest.raises(ClientError) as wrong_etag:
        s3.complete_multipart_upload(Bucket=name, Key="big", UploadId=upload_id,
                                     MultipartUpload={"Parts": [
                                         {"PartNumber": 1, "ETag": '"beef"'}]})
    assert code(wrong_etag) == "InvalidPart"
    done = s3.complete_multipart_upload(
        Bucket=name, Key="big", UploadId=upload_id,
        MultipartUpload={"Parts": [{"PartNumber": n, "ETag": e}
                                   for n, e in enumerate(etags, 1)]})
    digests = b"".join(hashlib.md5(d).digest() for d in parts_data)
    assert done["ETag"] == f'"{hashlib.md5(digests).hexdigest()}-3"'
    got = s3.get_object(Bucket=name, Key="big")
    assert got["Body"].read() == b"".join(parts_data) and got["ContentType"] == "app/x"
    second = s3.get_object(Bucket=name, Key="big", PartNumber=2)
    assert second["Body"].read() == parts_data[1] and second["PartsCount"] == 3
    assert s3.list_multipart_uploads(Bucket=name).get("Uploads", []) == []
    with pytest.raises(ClientError) as finished:
        s3.list_parts(Bucket=name, Key="big", UploadId=upload_id)
    assert code(finished) == "NoSuchUpload"


def test_small_parts_abort_and_part_copy(s3: Any) -> None:
    name = bucket(s3, "parts-bucket")
    source = os.urandom(6 * MIB)
    s3.put_object(Bucket=name, Key="source", Body=source)
    upload_id = s3.create_multipart_upload(Bucket=name, Key="t")["UploadId"]
    small = [s3.upload_part(Bucket=name, Key="t", UploadId=upload_id, PartNumber=n,
                            Body=b"tiny")["ETag"] for n in (1, 2)]
    with pytest.raises(ClientError) as too_small:
        s3.complete_multipart_upload(Bucket=name, Key="t", UploadId=upload_id,
                                     MultipartUpload={"Parts": [
                                         {"PartNumber": n, "ETag": e}
                                         for n, e in enumerate(small, 1)]})
    assert code(too_small) == "EntityTooSmall"
    s3.abort_multipart_upload(Bucket=name, Key="t", UploadId=upload_id)
    with pytest.raises(ClientError) as aborted:
        s3.upload_part(Bucket=name, Key="t", UploadId=upload_id, PartNumber=3, Body=b"x")
    assert code(aborted) == "NoSuchUpload"
    upload_id = s3.create_multipart_upload(Bucket=name, Key="copied")["UploadId"]
    first = s3.upload_part_copy(Bucket=name, Key="copied", UploadId=upload_id, PartNumber=1,
                                CopySource={"Bucket": name, "Key": "source"},
                                CopySourceRange=f"bytes=0-{5 * MIB - 1}")
    rest = s3.upload_part_copy(Bucket=name, Key="copied", UploadId=upload_id, PartNumber=2,
                               CopySource={"Bucket": name, "Key": "source"},
                               CopySourceRange=f"bytes={5 * MIB}-{6 * MIB - 1}")
    s3.complete_multipart_upload(Bucket=name, Key="copied", UploadId=upload_id,
                                 MultipartUpload={"Parts": [
                                     {"PartNumber": 1, "ETag": first["CopyPartResult"]["ETag"]},
                                     {"PartNumber": 2, "ETag": rest["CopyPartResult"]["ETag"]}]})
    assert s3.get_object(Bucket=name, Key="copied")["Body"].read() == source


def test_transfer_manager_round_trip(s3: Any, tmp_path: Path) -> None:
    """boto3's upload_file/download_file: multipart with CRC32 part checksums, ranged GETs."""
    name = bucket(s3, "transfer-bucket")
    data = os.urandom(20 * MIB + 17)
    path = tmp_path / "big.bin"
    path.write_bytes(data)
    s3.upload_file(str(path), name, "big.bin")
    head = s3.head_object(Bucket=name, Key="big.bin")
    assert head["ContentLength"] == len(data) and head["ETag"].endswith('-3"')
    out = io.BytesIO()
    s3.download_fileobj(name, "big.bin", out)
    assert out.getvalue() == data


# ---- access ----------------------------------------------------------------------------------

def test_other_accounts_are_refused_by_default(s3: Any, other: Any) -> None:
    name = bucket(s3, "private-bucket")
    s3.put_object(Bucket=name, Key="k", Body=b"secret")
    for call in (lambda: other.get_object(Bucket=name, Key="k"),
                 lambda: other.list_objects_v2(Bucket=name),
                 lambda: other.put_object(Bucket=name, Key="x", Body=b"x"),
                 lambda: other.delete_object(Bucket=name, Key="k"),
                 lambda: other.get_bucket_acl(Bucket=name),
                 lambda: other.delete_bucket(Bucket=name),
                 lambda: other.get_bucket_policy(Bucket=name)):
        with pytest.raises(ClientError) as refused:
            call()
        assert code(refused) == "AccessDenied" and status(refused) == 403
    assert s3.get_object(Bucket=name, Key="k")["Body"].read() == b"secret"


def test_acls_with_ownership_controls(s3: Any, other: Any) -> None:
    enforced = bucket(s3, "enforced-bucket")
    assert s3.get_bucket_ownership_controls(Bucket=enforced)["OwnershipControls"]["Rules"] == [
        {"ObjectOwnership": "BucketOwnerEnforced"}]
    with pytest.raises(ClientError) as disabled:
        s3.put_object(Bucket=enforced, Key="k", Body=b"x", ACL="public-read")
    assert code(disabled) == "AccessControlListNotSupported"
    with pytest.raises(ClientError) as on_create:
        s3.create_bucket(Bucket="enforced-public", ACL="public-read")
    assert code(on_create) == "InvalidBucketAclWithObjectOwnership"

    name = bucket(s3, "exec-read-bucket", ObjectOwnership="ObjectWriter", ACL="aws-exec-read")
    grants = s3.get_bucket_acl(Bucket=name)["Grants"]
    assert {"Grantee": {"Type": "CanonicalUser", "ID": EC2_CANONICAL_ID}, "Permission": "READ"} \
        in grants
    s3.put_object(Bucket=name, Key="image.part.0", Body=b"part", ACL="aws-exec-read")
    acl = s3.get_object_acl(Bucket=name, Key="image.part.0")
    assert acl["Owner"]["ID"] == canonical_id("000000000000")
    assert [g["Permission"] for g in acl["Grants"]] == ["FULL_CONTROL", "READ"]

    with pytest.raises(ClientError) as before:
        other.get_object(Bucket=name, Key="image.part.0")
    assert code(before) == "AccessDenied"
    s3.put_object_acl(Bucket=name, Key="image.part.0",
                      GrantRead=f'id="{canonical_id(OTHER_ID)}"')
    assert other.get_object(Bucket=name, Key="image.part.0")["Body"].read() == b"part"
    s3.put_object_acl(Bucket=name, Key="image.part.0", ACL="private")
    with pytest.raises(ClientError) as after:
        other.get_object(Bucket=name, Key="image.part.0")
    assert code(after) == "AccessDenied"
    # A bucket READ grant lets the other account list, not read objects.
    s3.put_bucket_acl(Bucket=name, ACL="public-read")
    assert other.list_objects_v2(Bucket=name)["KeyCount"] == 1
    s3.put_bucket_ownership_controls(Bucket=name, OwnershipControls={
        "Rules": [{"ObjectOwnership": "BucketOwnerPreferred"}]})
    with pytest.raises(ClientError) as bad_grant:
        s3.put_bucket_acl(Bucket=name, GrantRead='id="not-a-canonical-id"')
    assert code(bad_grant) == "InvalidArgument"


def test_bucket_policy(s3: Any, other: Any) -> None:
    name = bucket(s3, "policy-bucket")
    s3.put_object(Bucket=name, Key="shared/a", Body=b"A")
    s3.put_object(Bucket=name, Key="private/b", Body=b"B")
    with pytest.raises(ClientError) as none_yet:
        s3.get_bucket_policy(Bucket=name)
    assert code(none_yet) == "NoSuchBucketPolicy"
    policy = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{OTHER_ID}:root"},
         "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{name}/shared/*"},
        {"Effect": "Deny", "Principal": "*", "Action": "s3:DeleteObject",
         "Resource": f"arn:aws:s3:::{name}/*"}]}
    s3.put_bucket_policy(Bucket=name, Policy=json.dumps(policy))
    assert json.loads(s3.get_bucket_policy(Bucket=name)["Policy"]) == policy
    assert other.get_object(Bucket=name, Key="shared/a")["Body"].read() == b"A"
    with pytest.raises(ClientError) as not_shared:
        other.get_object(Bucket=name, Key="private/b")
    assert code(not_shared) == "AccessDenied"
    with pytest.raises(ClientError) as denied_owner:
        s3.delete_object(Bucket=name, Key="shared/a")
    assert code(denied_owner) == "AccessDenied"
    with pytest.raises(ClientError) as malformed:
        s3.put_bucket_policy(Bucket=name, Policy='{"Statement": "nope"}')
    assert code(malformed) == "MalformedPolicy"
    with pytest.raises(ClientError) as elsewhere:
        s3.put_bucket_policy(Bucket=name, Policy=json.dumps({"Statement": [{
            "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
            "Resource": "arn:aws:s3:::another-bucket/*"}]}))
    assert code(elsewhere) == "MalformedPolicy"
    s3.delete_bucket_policy(Bucket=name)
    s3.delete_object(Bucket=name, Key="shared/a")
    with pytest.raises(ClientError) as revoked:
        other.get_object(Bucket=name, Key="private/b")
    assert code(revoked) == "AccessDenied"


# ---- signatures and bodies -------------------------------------------------------------------

def test_bad_signature_and_unknown_key(server: ServerProcess, s3: Any) -> None:
    bucket(s3, "signed-bucket")
    wrong = boto3.client("s3", endpoint_url=server.url, region_name="us-east-1",
                         aws_access_key_id="test", aws_secret_access_key="wrong",
                         config=NO_RETRIES)
    with pytest.raises(ClientError) as bad:
        wrong.list_objects_v2(Bucket="signed-bucket")
    assert code(bad) == "SignatureDoesNotMatch" and status(bad) == 403
    unknown = boto3.client("s3", endpoint_url=server.url, region_name="us-east-1",
                           aws_access_key_id="NOSUCHKEY", aws_secret_access_key="x",
                           config=NO_RETRIES)
    with pytest.raises(ClientError) as nobody:
        unknown.put_object(Bucket="signed-bucket", Key="k", Body=b"x")
    assert code(nobody) == "InvalidAccessKeyId"
    assert s3.list_objects_v2(Bucket="signed-bucket")["KeyCount"] == 0


def test_presigned_urls(server: ServerProcess, s3: Any) -> None:
    name = bucket(s3, "presigned-bucket")
    v2 = s3.generate_presigned_url("get_object", Params={"Bucket": name, "Key": "p"})
    with pytest.raises(urllib.error.HTTPError) as old_form:
        urllib.request.urlopen(v2, timeout=30)  # botocore's default for S3: Signature V2
    assert old_form.value.code == 403 and b"s3v4" in old_form.value.read()
    s3 = boto3.client("s3", endpoint_url=server.url, region_name="us-east-1",
                      aws_access_key_id="test", aws_secret_access_key="test",
                      config=Config(signature_version="s3v4", retries={"max_attempts": 1}))
    put_url = s3.generate_presigned_url("put_object", Params={"Bucket": name, "Key": "p"},
                                        ExpiresIn=300)
    request = urllib.request.Request(put_url, data=b"via presigned PUT", method="PUT")
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200
    get_url = s3.generate_presigned_url("get_object", Params={"Bucket": name, "Key": "p"})
    with urllib.request.urlopen(get_url, timeout=30) as response:
        assert response.read() == b"via presigned PUT"
    tampered = get_url.replace(f"/{name}/p?", f"/{name}/q?")
    assert tampered != get_url
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(tampered, timeout=30)
    assert refused.value.code == 403 and b"SignatureDoesNotMatch" in refused.value.read()
    expired = s3.generate_presigned_url("get_object", Params={"Bucket": name, "Key": "p"},
                                        ExpiresIn=1)
    stamp = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    expired = expired.replace(
        expired.split("X-Amz-Date=")[1][:16], stamp.strftime("%Y%m%dT%H%M%SZ"))
    with pytest.raises(urllib.error.HTTPError) as late:
        urllib.request.urlopen(expired, timeout=30)
    assert late.value.code == 403 and b"expired" in late.value.read()


def test_signed_aws_chunked_upload(server: ServerProcess, s3: Any) -> None:
    name = bucket(s3, "chunked-bucket")
    data = os.urandom(200_000)
    code_, body = signed_chunked_put(server.url, f"/{name}/signed", data)
    assert code_ == 200, body
    assert s3.get_object(Bucket=name, Key="signed")["Body"].read() == data
    code_, body = signed_chunked_put(server.url, f"/{name}/trailer", data, trailer=True)
    assert code_ == 200, body
    assert s3.get_object(Bucket=name, Key="trailer")["Body"].read() == data
    code_, body = signed_chunked_put(server.url, f"/{name}/broken", data, corrupt_chunk=2)
    assert code_ == 403 and b"SignatureDoesNotMatch" in body
    with pytest.raises(ClientError):
        s3.head_object(Bucket=name, Key="broken")


def test_unsigned_payload_with_trailing_checksum(server: ServerProcess, s3: Any) -> None:
    name = bucket(s3, "trailer-bucket")
    data = os.urandom(50_000)
    code_, body = unsigned_trailer_put(server.url, f"/{name}/ok", data)
    assert code_ == 200, body
    got = s3.get_object(Bucket=name, Key="ok", ChecksumMode="ENABLED")
    assert got["Body"].read() == data and got["ChecksumCRC32"] == crc32_b64(data)
    code_, body = unsigned_trailer_put(server.url, f"/{name}/bad", data,
                                       checksum=crc32_b64(b"other"))
    assert code_ == 400 and b"BadDigest" in body
    assert "Contents" not in s3.list_objects_v2(Bucket=name, Prefix="bad")


@pytest.mark.parametrize("body", [
    b"zz;chunk-signature=00\r\n",  # not a hexadecimal size
    b"10\r\nshort",  # ends inside a chunk
    b"5\r\nhello" + b"x" * 5000,  # no CRLF after the data, and no end
    b"ffffffffffffffffff\r\n",  # a size past any limit
])
def test_malformed_chunked_bodies_are_4xx(server: ServerProcess, s3: Any, body: bytes) -> None:
    name = bucket(s3, f"malformed-{hashlib.md5(body).hexdigest()[:12]}")
    headers = {"X-Amz-Content-SHA256": "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
               "Content-Encoding": "aws-chunked", "X-Amz-Trailer": "x-amz-checksum-crc32"}
    signed, _, _ = signed_headers(server.url, "PUT", f"/{name}/k", headers)
    signed["Content-Length"] = str(len(body))
    code_, payload, _ = send(server.url, "PUT", f"/{name}/k", signed, body)
    assert 400 <= code_ < 500, payload
    assert "Contents" not in s3.list_objects_v2(Bucket=name)


def test_malformed_xml_is_refused(server: ServerProcess, s3: Any) -> None:
    name = bucket(s3, "xml-bucket")
    for document in (b"<Delete><Object><Key>a</Key>", b"not xml at all",
                     b'<!DOCTYPE d [<!ENTITY a "aaaa">]><Delete>&a;</Delete>'):
        headers = {"X-Amz-Content-SHA256": hashlib.sha256(document).hexdigest(),
                   "Content-MD5": base64.b64encode(hashlib.md5(document).digest()).decode()}
        signed, _, _ = signed_headers(server.url, "POST", f"/{name}?delete", headers)
        code_, payload, _ = send(server.url, "POST", f"/{name}?delete", signed, document)
        assert code_ == 400 and b"MalformedXML" in payload, payload


def test_virtual_host_addressing(server: ServerProcess, s3: Any) -> None:
    port = server.url.rsplit(":", 1)[1]
    virtual = boto3.client("s3", endpoint_url=f"http://localhost:{port}",
                           region_name="us-east-1", aws_access_key_id="test",
                           aws_secret_access_key="test",
                           config=Config(s3={"addressing_style": "virtual"},
                                         retries={"max_attempts": 1}))
    virtual.meta.events.register("before-send.s3", via_loopback)
    sent: list[str] = []
    virtual.meta.events.register("before-send.s3",
                                 lambda request, **_: sent.append(request.headers["Host"]))
    virtual.create_bucket(Bucket="virtual-bucket")
    virtual.put_object(Bucket="virtual-bucket", Key="dir/v.txt", Body=b"virtual")
    assert s3.get_object(Bucket="virtual-bucket", Key="dir/v.txt")["Body"].read() == b"virtual"
    assert virtual.list_objects_v2(Bucket="virtual-bucket")["Contents"][0]["Key"] == "dir/v.txt"
    assert all(host.startswith("virtual-bucket.localhost:") for host in sent), sent


def test_crc32_of_parts(s3: Any) -> None:
    """A multipart upload with CRC32 checksums: a COMPOSITE checksum of the parts'."""
    name = bucket(s3, "composite-bucket")
    upload_id = s3.create_multipart_upload(Bucket=name, Key="c", ChecksumAlgorithm="CRC32")[
        "UploadId"]
    parts = [os.urandom(5 * MIB), b"tail"]
    sent = []
    for number, data in enumerate(parts, 1):
        done = s3.upload_part(Bucket=name, Key="c", UploadId=upload_id, PartNumber=number,
                              Body=data, ChecksumAlgorithm="CRC32")
        assert done["ChecksumCRC32"] == crc32_b64(data)
        sent.append({"PartNumber": number, "ETag": done["ETag"],
                     "ChecksumCRC32": done["ChecksumCRC32"]})
    done = s3.complete_multipart_upload(Bucket=name, Key="c", UploadId=upload_id,
                                        MultipartUpload={"Parts": sent})
    joined = b"".join(base64.b64decode(p["ChecksumCRC32"]) for p in sent)
    assert done["ChecksumCRC32"] == f"{crc32_b64(joined)}-2"
    assert zlib.crc32(b"") == 0  # (the helper's own sanity)


def test_an_explicit_deny_beats_an_acl_grant(s3: Any, other: Any) -> None:
    name = bucket(s3, "deny-over-acl", ObjectOwnership="ObjectWriter")
    s3.put_object(Bucket=name, Key="k", Body=b"v", GrantRead=f'id="{canonical_id(OTHER_ID)}"')
    assert other.get_object(Bucket=name, Key="k")["Body"].read() == b"v"
    s3.put_bucket_policy(Bucket=name, Policy=json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Deny", "Principal": {"AWS": f"arn:aws:iam::{OTHER_ID}:root"},
        "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{name}/*"}]}))
    with pytest.raises(ClientError) as denied:
        other.get_object(Bucket=name, Key="k")
    assert code(denied) == "AccessDenied"


def test_a_bucket_named_metrics_is_listed_not_scraped(s3: Any, server: ServerProcess) -> None:
    """GET /metrics is the Prometheus alias only unsigned; signed (a ListObjects with no
    query, as curl --aws-sigv4 sends it), it lists the bucket."""
    s3.put_object(Bucket=bucket(s3, "metrics"), Key="k", Body=b"v")
    headers, _, _ = signed_headers(server.url, "GET", "/metrics",
                                   {"X-Amz-Content-SHA256": hashlib.sha256(b"").hexdigest()})
    answer, body, _ = send(server.url, "GET", "/metrics", headers, b"")
    assert (answer, b"<Key>k</Key>" in body) == (200, True), body[:200]
    with urllib.request.urlopen(f"{server.url}/metrics", timeout=10) as scrape:
        assert b"# TYPE" in scrape.read()
