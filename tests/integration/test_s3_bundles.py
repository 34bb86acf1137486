"""RegisterImage with an ImageLocation: a bundle written by snapferry.disks.bundle from a raw
image, uploaded with boto3, registered as an instance-store image; manifests whose parts are
missing, changed, unreadable by the caller or malformed are InvalidManifest and register
nothing."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from snapferry.disks.bundle import write_bundle
from snapferry.testing import ServerProcess

from .conftest import ClientFactory, add_account

OTHER_ID, OTHER_KEY, OTHER_SECRET = "353535353535", "BUNDLEOTHER", "secret-of-bundle-other"
REGION = "eu-central-1"


@pytest.fixture(scope="module")
def other_account(server: ServerProcess, data_dir: Path) -> str:
    return add_account(data_dir, OTHER_ID, OTHER_KEY, OTHER_SECRET)


def upload_bundle(s3: Any, bucket: str, prefix: str, tmp_path: Path,
                  part_size: int = 1024 * 1024) -> tuple[str, Path, list[Path]]:
    """A raw image bundled and uploaded; returns (ImageLocation, image, part files)."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    image = tmp_path / "disk.img"
    image.write_bytes(os.urandom(2_500_000) + bytes(1_000_000))
    out = tmp_path / "bundle"
    manifest = write_bundle(image, out, part_size=part_size)
    parts = sorted(out.glob("disk.img.part.*"), key=lambda p: int(p.name.rsplit(".", 1)[1]))
    for path in [manifest, *parts]:
        s3.put_object(Bucket=bucket, Key=f"{prefix}/{path.name}", Body=path.read_bytes())
    return f"{bucket}/{prefix}/{manifest.name}", image, parts


def refused(call: Any) -> str:
    with pytest.raises(ClientError) as error:
        call()
    return error.value.response["Error"]["Code"]


def test_register_an_instance_store_image(client: ClientFactory, tmp_path: Path) -> None:
    s3, ec2 = client("s3", region=REGION), client("ec2", region=REGION)
    s3.create_bucket(Bucket="bundles-good", CreateBucketConfiguration={
        "LocationConstraint": REGION})
    location, image, parts = upload_bundle(s3, "bundles-good", "images/v1", tmp_path)
    assert len(parts) >= 3
    # The helper's bundle is the image, gzip-compressed and cut into parts.
    assert gzip.decompress(b"".join(p.read_bytes() for p in parts)) == image.read_bytes()

    image_id = ec2.register_image(ImageLocation=location, Name="from-a-bundle")["ImageId"]
    found = ec2.describe_images(ImageIds=[image_id])["Images"][0]
    assert found["RootDeviceType"] == "instance-store"
    assert found["ImageLocation"] == location and found["State"] == "available"
    assert found["Architecture"] == "x86_64" and found["RootDeviceName"] == "/dev/sda1"
    mappings = found.get("BlockDeviceMappings", [])
    assert all("Ebs" not in m for m in mappings)
    assert {"DeviceName": "/dev/sdb", "VirtualName": "ephemeral0"} in mappings
    assert not ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]  # no snapshots made
    # Copying one: tests/integration/test_s3_image_copies.py.


def test_bad_bundles_are_invalid_manifest(client: ClientFactory, tmp_path: Path) -> None:
    s3, ec2 = client("s3", region=REGION), client("ec2", region=REGION)
    s3.create_bucket(Bucket="bundles-bad", CreateBucketConfiguration={
        "LocationConstraint": REGION})
    before = {i["ImageId"] for i in ec2.describe_images(Owners=["self"])["Images"]}

    missing, _, parts = upload_bundle(s3, "bundles-bad", "missing", tmp_path / "a")
    s3.delete_object(Bucket="bundles-bad", Key=f"missing/{parts[1].name}")
    changed, _, parts = upload_bundle(s3, "bundles-bad", "changed", tmp_path / "b")
    s3.put_object(Bucket="bundles-bad", Key=f"changed/{parts[0].name}", Body=b"not the part")
    s3.put_object(Bucket="bundles-bad", Key="junk/x.manifest.xml", Body=b"<manifest><oops>")
    s3.put_object(Bucket="bundles-bad", Key="old/x.manifest.xml",
                  Body=b"<manifest><version>2005-01-01</version></manifest>")
    for location in (missing, changed, "bundles-bad/junk/x.manifest.xml",
                     "bundles-bad/old/x.manifest.xml", "bundles-bad/nothing.manifest.xml",
                     "no-such-bundle-bucket/x.manifest.xml"):
        assert refused(lambda loc=location: ec2.register_image(
            ImageLocation=loc, Name="never-registered")) == "InvalidManifest", location
    # A bundle in another region's bucket is not readable from here.
    good, _, _ = upload_bundle(s3, "bundles-bad", "good", tmp_path / "c")
    assert refused(lambda: client("ec2", region="us-west-1").register_image(
        ImageLocation=good, Name="elsewhere")) == "InvalidManifest"
    after = {i["ImageId"] for i in ec2.describe_images(Owners=["self"])["Images"]}
    assert after == before


def test_another_account_needs_read_access(client: ClientFactory, other_account: str,
                                           tmp_path: Path) -> None:
    s3 = client("s3", region=REGION)
    theirs = client("ec2", region=REGION, key=OTHER_KEY, secret=OTHER_SECRET)
    s3.create_bucket(Bucket="bundles-shared", CreateBucketConfiguration={
        "LocationConstraint": REGION})
    location, _, _ = upload_bundle(s3, "bundles-shared", "img", tmp_path)
    assert refused(lambda: theirs.register_image(ImageLocation=location,
                                                 Name="not-yet")) == "InvalidManifest"
    s3.put_bucket_policy(Bucket="bundles-shared", Policy=json.dumps({
        "Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{OTHER_ID}:root"},
            "Action": "s3:GetObject", "Resource": "arn:aws:s3:::bundles-shared/img/*"}]}))
    image_id = theirs.register_image(ImageLocation=location, Name="now-readable")["ImageId"]
    assert theirs.describe_images(ImageIds=[image_id])["Images"][0]["OwnerId"] == OTHER_ID
