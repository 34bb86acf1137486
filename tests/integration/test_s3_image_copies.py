"""CopyImage of instance-store images with boto3: the bundle (uploaded with boto3, written by
snapferry.disks.bundle) copied by the copy engine into the regional amis-for-... bucket, made
once and reused; byte-identical parts; across regions and accounts; each permission the copy
needs; Encrypted refused; a pending copy stopped by DeregisterImage; a killed server's copy
resumed by the next one. Pending copies are held by an operator fault rule (a pace in
seconds per GiB), never by sleeping."""

from __future__ import annotations

import hashlib
import http.client
import json
import re
import urllib.parse
import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest

from snapferry.domain.bundle_copies import regional_bucket
from snapferry.domain.images import STORAGE_FORBIDDEN
from snapferry.domain.s3_access import EC2_CANONICAL_ID
from snapferry.testing import ServerProcess

from .conftest import DEV, NO_RETRIES, ClientFactory, add_account, run_cli, wait_for
from .test_copies import copy_jobs
from .test_foundation import refused
from .test_s3_bundles import upload_bundle

DEV_ACCOUNT = "000000000000"
B_ID, B_KEY, B_SECRET = "474747474747", "BUNDLECOPYB", "secret-of-bundle-copy-b"
SRC = "eu-central-1"
COPY_ACTIONS = ("s3:CreateBucket", "s3:PutBucketOwnershipControls", "s3:GetBucketAcl",
                "s3:ListAllMyBuckets", "s3:GetObject", "s3:PutObject", "s3:PutObjectAcl")
HOLD = "100000000"  # seconds per GiB: a copy this slow stays pending while a test looks


@pytest.fixture(scope="module")
def account_b(server: ServerProcess, data_dir: Path) -> str:
    return add_account(data_dir, B_ID, B_KEY, B_SECRET)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def registered(client: ClientFactory, tmp_path: Path, key: str = DEV[0],
               secret: str = DEV[1]) -> tuple[str, str, list[Path]]:
    """A bundle in a new bucket in SRC, registered: (image id, manifest key, part files)."""
    s3 = client("s3", region=SRC, key=key, secret=secret)
    bucket = unique("bundles")
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": SRC})
    location, _, parts = upload_bundle(s3, bucket, "images", tmp_path)
    image_id = client("ec2", region=SRC, key=key, secret=secret).register_image(
        ImageLocation=location, Name=unique("bundled"))["ImageId"]
    return image_id, location, parts


def settled(ec2: Any, image_id: str, timeout: float = 60) -> dict[str, Any]:
    found: dict[str, Any] = {}

    def done() -> bool:
        found.clear()
        found.update(ec2.describe_images(ImageIds=[image_id])["Images"][0])
        return found["State"] != "pending"

    wait_for(done, timeout=timeout)
    return found


def keys_under(s3: Any, bucket: str, prefix: str) -> list[str]:
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=prefix)
    return [o["Key"] for o in listed.get("Contents", [])]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def assert_identical_bundle(s3: Any, location: str, parts: list[Path], source: str) -> None:
    """The copy's manifest is the source's (`source`: its SHA-256), and so is every part."""
    bucket, _, manifest_key = location.partition("/")
    directory = manifest_key.rpartition("/")[0]
    for part in parts:
        body = s3.get_object(Bucket=bucket, Key=f"{directory}/{part.name}")["Body"].read()
        assert sha256(body) == sha256(part.read_bytes()), part.name
    copied = s3.get_object(Bucket=bucket, Key=manifest_key)["Body"].read()
    assert sha256(copied) == source


def faults(*args: str, data_dir: Path) -> None:
    done = run_cli("faults", *args, data_dir=data_dir)
    assert done.returncode == 0, done.stderr


def test_copy_across_regions_into_the_bucket_made_once(client: ClientFactory,
                                                       tmp_path: Path) -> None:
    dst = "ap-south-1"
    source, location, parts = registered(client, tmp_path)
    here = client("s3", region=SRC)
    src_bucket, _, src_key = location.partition("/")
    manifest = here.get_object(Bucket=src_bucket, Key=src_key)["Body"].read()
    ec2 = client("ec2", region=dst)
    s3 = client("s3", region=dst)
    bucket = regional_bucket(DEV_ACCOUNT, dst)
    assert bucket.startswith(f"amis-for-{DEV_ACCOUNT}-in-{dst}-") and len(bucket.rsplit(
        "-", 1)[1]) == 8
    assert bucket not in {b["Name"] for b in s3.list_buckets()["Buckets"]}
    # The source is shared with another account: that permission does not travel.
    client("ec2", region=SRC).modify_image_attribute(
        ImageId=source, LaunchPermission={"Add": [{"UserId": "121212121212"}]})

    first = ec2.copy_image(SourceRegion=SRC, SourceImageId=source, Name=unique("c1"))["ImageId"]
    done = settled(ec2, first)
    assert done["State"] == "available", done.get("StateReason")
    assert done["RootDeviceType"] == "instance-store" and done["SourceImageId"] == source
    assert done["ImageLocation"] == f"{bucket}/{first}/{Path(src_key).name}"
    assert_identical_bundle(s3, done["ImageLocation"], parts, sha256(manifest))
    assert ec2.describe_image_attribute(ImageId=first, Attribute="launchPermission")[
        "LaunchPermissions"] == []

    made = [b for b in s3.list_buckets()["Buckets"] if b["Name"].startswith("amis-for-")
            and b["BucketRegion"] == dst]
    assert [b["Name"] for b in made] == [bucket]
    grants = s3.get_bucket_acl(Bucket=bucket)["Grants"]
    assert {"Grantee": {"Type": "CanonicalUser", "ID": EC2_CANONICAL_ID},
            "Permission": "READ"} in grants  # aws-exec-read
    object_grants = s3.get_object_acl(Bucket=bucket, Key=f"{first}/{parts[0].name}")["Grants"]
    assert any(g["Grantee"].get("ID") == EC2_CANONICAL_ID for g in object_grants)

    # A second copy reuses the bucket; the copied manifest registers as an image there.
    second = ec2.copy_image(SourceRegion=SRC, SourceImageId=source,
                            Name=unique("c2"))["ImageId"]
    assert settled(ec2, second)["State"] == "available"
    again = [b for b in s3.list_buckets()["Buckets"] if b["Name"].startswith("amis-for-")
             and b["BucketRegion"] == dst]
    assert again == made  # same name, same creation date
    assert len(keys_under(s3, bucket, f"{second}/")) == len(parts) + 1
    reregistered = ec2.register_image(ImageLocation=done["ImageLocation"], Name=unique("r"))
    assert ec2.describe_images(ImageIds=[reregistered["ImageId"]])["Images"][0][
        "RootDeviceType"] == "instance-store"


def test_encryption_cannot_change(client: ClientFactory, tmp_path: Path) -> None:
    source, _, _ = registered(client, tmp_path)
    ec2 = client("ec2", region="ca-central-1")
    for extra in ({"Encrypted": True},
                  {"Encrypted": True, "KmsKeyId": "alias/aws/ebs"}):
        code, status, message = refused(lambda e=extra: ec2.copy_image(
            SourceRegion=SRC, SourceImageId=source, Name=unique("enc"), **e))
        assert (code, status) == ("InvalidParameterCombination", 400)
        assert "instance-store" in message
    assert ec2.describe_images(Owners=["self"])["Images"] == []
    bucket = regional_bucket(DEV_ACCOUNT, "ca-central-1")
    assert bucket not in {b["Name"] for b in client("s3").list_buckets()["Buckets"]}


def test_cross_account_needs_launch_permission_and_read_access(
        client: ClientFactory, account_b: str, tmp_path: Path) -> None:
    dst = "eu-north-1"
    source, location, parts = registered(client, tmp_path)
    theirs = client("ec2", region=dst, key=B_KEY, secret=B_SECRET)

    def copy() -> str:
        return str(theirs.copy_image(SourceRegion=SRC, SourceImageId=source,
                                     Name=unique("b"))["ImageId"])

    assert refused(copy)[0] == "InvalidAMIID.NotFound"
    client("ec2", region=SRC).modify_image_attribute(
        ImageId=source, LaunchPermission={"Add": [{"UserId": account_b}]})
    code, _, message = refused(copy)
    assert code == "InvalidRequest" and STORAGE_FORBIDDEN in message
    bucket = location.partition("/")[0]
    read = {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{account_b}:root"}}
    client("s3", region=SRC).put_bucket_policy(Bucket=bucket, Policy=json.dumps({
        "Version": "2012-10-17", "Statement": [
            {**read, "Action": "s3:GetBucketAcl", "Resource": f"arn:aws:s3:::{bucket}"}]}))
    assert refused(copy)[0] == "InvalidRequest"  # the bucket's ACL but not its objects
    client("s3", region=SRC).put_bucket_policy(Bucket=bucket, Policy=json.dumps({
        "Version": "2012-10-17", "Statement": [
            {**read, "Action": "s3:GetBucketAcl", "Resource": f"arn:aws:s3:::{bucket}"},
            {**read, "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/*"}]}))
    copied = copy()
    done = settled(theirs, copied)
    assert done["State"] == "available" and done["OwnerId"] == account_b
    assert done["ImageLocation"].startswith(regional_bucket(account_b, dst) + "/")
    mine = client("s3", region=dst, key=B_KEY, secret=B_SECRET)
    assert_identical_bundle(mine, done["ImageLocation"], parts, sha256(
        client("s3", region=SRC).get_object(Bucket=bucket, Key=location.partition("/")[2])[
            "Body"].read()))
    # The source account cannot read the copy: B's bucket has no grant for it.
    assert refused(lambda: client("s3", region=dst).get_object(
        Bucket=regional_bucket(account_b, dst),
        Key=done["ImageLocation"].partition("/")[2]))[0] == "AccessDenied"


def _user(client: ClientFactory, actions: list[str]) -> tuple[str, str, str]:
    """A new IAM user allowed ec2:* and `actions`: (key, secret, name)."""
    iam = client("iam")
    name = unique("copier")
    iam.create_user(UserName=name)
    iam.put_user_policy(UserName=name, PolicyName="copy", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": ["ec2:*"], "Resource": "*"},
            {"Effect": "Allow", "Action": actions, "Resource": "*"}]}))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return key["AccessKeyId"], key["SecretAccessKey"], name


# Each permission, and the region copied into (a fresh one where the bucket must be made: no
# other test of this module may copy into sa-east-1 or eu-west-3, whatever the order).
AT_REQUEST = {"s3:ListAllMyBuckets": "us-west-1", "s3:CreateBucket": "sa-east-1",
              "s3:PutBucketOwnershipControls": "eu-west-3", "s3:GetBucketAcl": "us-west-1",
              "s3:GetObject": "us-west-1"}
IN_THE_COPY = ("s3:PutObject", "s3:PutObjectAcl")


def test_each_missing_permission_refuses_the_copy(client: ClientFactory,
                                                  tmp_path: Path) -> None:
    source, location, parts = registered(client, tmp_path)
    # With every permission an IAM user copies; that makes us-west-1's bucket.
    key, secret, _ = _user(client, list(COPY_ACTIONS))
    ec2 = client("ec2", region="us-west-1", key=key, secret=secret)
    image = ec2.copy_image(SourceRegion=SRC, SourceImageId=source, Name=unique("ok"))["ImageId"]
    assert settled(ec2, image)["State"] == "available"

    for missing, region in AT_REQUEST.items():
        key, secret, _ = _user(client, [a for a in COPY_ACTIONS if a != missing])
        theirs = client("ec2", region=region, key=key, secret=secret)
        before = client("ec2", region=region).describe_images(Owners=["self"])["Images"]
        code, status, message = refused(lambda t=theirs: t.copy_image(
            SourceRegion=SRC, SourceImageId=source, Name=unique("no")))
        if missing in ("s3:GetBucketAcl", "s3:GetObject"):
            assert (code, message) == ("InvalidRequest", STORAGE_FORBIDDEN), missing
        else:
            assert (code, status) == ("UnauthorizedOperation", 403), missing
            assert missing in message
        assert client("ec2", region=region).describe_images(
            Owners=["self"])["Images"] == before, missing
        if region != "us-west-1":
            assert regional_bucket(DEV_ACCOUNT, region) not in {
                b["Name"] for b in client("s3").list_buckets()["Buckets"]}

    # Once the bucket exists, s3:CreateBucket and s3:PutBucketOwnershipControls are not needed.
    key, secret, _ = _user(client, [a for a in COPY_ACTIONS if a not in (
        "s3:CreateBucket", "s3:PutBucketOwnershipControls")])
    theirs = client("ec2", region="us-west-1", key=key, secret=secret)
    reused = theirs.copy_image(SourceRegion=SRC, SourceImageId=source,
                               Name=unique("reuse"))["ImageId"]
    assert settled(theirs, reused)["State"] == "available"

    s3 = client("s3", region="us-west-1")
    bucket = regional_bucket(DEV_ACCOUNT, "us-west-1")
    for missing in IN_THE_COPY:
        key, secret, _ = _user(client, [a for a in COPY_ACTIONS if a != missing])
        theirs = client("ec2", region="us-west-1", key=key, secret=secret)
        copied = theirs.copy_image(SourceRegion=SRC, SourceImageId=source,
                                   Name=unique("late"))["ImageId"]
        done = settled(theirs, copied)
        assert done["State"] == "failed", missing
        assert f"not authorized to perform: {missing}" in done["StateReason"]["Message"]
        assert keys_under(s3, bucket, f"{copied}/") == []

    # Read access to one prefix only: the manifest is readable, its parts are not.
    key, secret, name = _user(client, [a for a in COPY_ACTIONS if a != "s3:GetObject"])
    src_bucket, _, manifest_key = location.partition("/")
    client("iam").put_user_policy(
        UserName=name,
        PolicyName="manifest-only", PolicyDocument=json.dumps({
            "Version": "2012-10-17", "Statement": [{
                "Effect": "Allow", "Action": "s3:GetObject",
                "Resource": f"arn:aws:s3:::{src_bucket}/{manifest_key}"}]}))
    theirs = client("ec2", region="us-west-1", key=key, secret=secret)
    copied = theirs.copy_image(SourceRegion=SRC, SourceImageId=source,
                               Name=unique("parts"))["ImageId"]
    done = settled(theirs, copied)
    assert done["State"] == "failed"
    assert "not authorized to perform: s3:GetObject" in done["StateReason"]["Message"]
    assert parts[0].name in done["StateReason"]["Message"]


def test_deregistering_a_pending_copy_stops_it(client: ClientFactory, data_dir: Path,
                                               tmp_path: Path) -> None:
    dst = "ap-northeast-1"
    source, _, parts = registered(client, tmp_path)
    rule = unique("hold")
    faults("add", "copy", "--rule-id", rule, "--image-id", source, "--seconds-per-gib", HOLD,
           data_dir=data_dir)
    try:
        ec2, s3 = client("ec2", region=dst), client("s3", region=dst)
        bucket = regional_bucket(DEV_ACCOUNT, dst)
        copied = ec2.copy_image(SourceRegion=SRC, SourceImageId=source,
                                Name=unique("stopped"))["ImageId"]
        wait_for(lambda: len(keys_under(s3, bucket, f"{copied}/")) == 1, timeout=30)
        assert ec2.describe_images(ImageIds=[copied])["Images"][0]["State"] == "pending"
        ec2.deregister_image(ImageId=copied)
        assert ec2.describe_images(ImageIds=[copied])["Images"] == []
        assert keys_under(s3, bucket, f"{copied}/") == []
        # Another copy of the same image, no longer held, fails at the rule's point.
        faults("clear", rule, data_dir=data_dir)
        faults("add", "copy", "--rule-id", unique("fail"), "--image-id", source,
               "--fail-at", "0.5", "--message", "drill: the bundle copy broke",
               data_dir=data_dir)
        failed = ec2.copy_image(SourceRegion=SRC, SourceImageId=source,
                                Name=unique("failing"))["ImageId"]
        done = settled(ec2, failed)
        assert done["State"] == "failed"
        assert "drill: the bundle copy broke" in done["StateReason"]["Message"]
        assert keys_under(s3, bucket, f"{failed}/") == []
        assert len(parts) >= 2
    finally:
        faults("clear", data_dir=data_dir)


def live_page(url: str, key: str = DEV[0], secret: str = DEV[1]) -> str:
    """The copies page's live fragment, as the page's own poll reads it after logging in."""
    where = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(where.hostname, where.port, timeout=30)
    try:
        connection.request("POST", "/_snapferry/login", urllib.parse.urlencode(
            {"access_key_id": key, "secret_access_key": secret}),
            {"Content-Type": "application/x-www-form-urlencoded"})
        answer = connection.getresponse()
        answer.read()
        cookie = (answer.getheader("Set-Cookie") or "").split(";")[0]
        assert answer.status in (302, 303) and cookie, answer.status
        connection.request("GET", "/_snapferry/live", headers={"Cookie": cookie})
        answer = connection.getresponse()
        assert answer.status == 200
        return answer.read().decode()
    finally:
        connection.close()


def test_a_bundle_copy_is_listed_with_its_kind(client: ClientFactory, server: ServerProcess,
                                               data_dir: Path, tmp_path: Path) -> None:
    """`snapferry copies` and the copies page show a pending instance-store image copy as
    what it is: a bundle job (not a snapshot copy), and on the page one image row whose
    progress is that job's."""
    dst = "us-west-2"  # not sa-east-1 or eu-west-3: AT_REQUEST needs them without a bucket
    source, _, _ = registered(client, tmp_path)
    rule = unique("hold")
    faults("add", "copy", "--rule-id", rule, "--image-id", source, "--seconds-per-gib", HOLD,
           data_dir=data_dir)
    ec2 = client("ec2", region=dst)
    copied = ec2.copy_image(SourceRegion=SRC, SourceImageId=source,
                            Name=unique("listed"))["ImageId"]
    try:
        listed = copy_jobs(data_dir)[copied]
        assert (listed["kind"], listed["source"], listed["dest"]) == (
            "bundle", f"{SRC}:{source}", dst)
        rows = re.findall(rf'<tr class="copy ([a-z-]+)" data-id="{copied}">(.*?)</tr>',
                          live_page(server.url), re.S)
        assert [css for css, _ in rows] == ["image-copy"], rows  # once, as the image's copy
        cells = rows[0][1]
        assert "<td>image (S3 bundle)</td>" in cells and f"{SRC}:{source}" in cells
        assert '<progress max="100" value="' in cells, cells  # the bundle job's files
    finally:
        faults("clear", rule, data_dir=data_dir)
        ec2.deregister_image(ImageId=copied)


def test_a_killed_servers_copy_resumes(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    lease = ["--copy-lease-seconds", "2"]
    kw = {"endpoint_url": "", "aws_access_key_id": "test", "aws_secret_access_key": "test",
          "config": NO_RETRIES}
    first = ServerProcess(data, lease).start()
    try:
        kw["endpoint_url"] = first.url

        def make(service: str, region: str = "us-east-1", **_: Any) -> Any:
            return boto3.client(service, region_name=region, **kw)

        source, location, parts = registered(make, tmp_path / "bundle")
        faults("add", "copy", "--rule-id", "hold", "--image-id", source, "--seconds-per-gib",
               HOLD, data_dir=data)
        dst = "us-east-2"
        copied = make("ec2", region=dst).copy_image(SourceRegion=SRC, SourceImageId=source,
                                                    Name="resumed")["ImageId"]
        bucket = regional_bucket(DEV_ACCOUNT, dst)
        wait_for(lambda: len(keys_under(make("s3", region=dst), bucket, f"{copied}/")) == 1,
                 timeout=30)
    finally:
        first.kill()
    faults("clear", data_dir=data)
    with ServerProcess(data, lease) as second:
        kw["endpoint_url"] = second.url
        ec2 = boto3.client("ec2", region_name=dst, **kw)
        done = settled(ec2, copied)
        assert done["State"] == "available", done.get("StateReason")
        s3 = boto3.client("s3", region_name=dst, **kw)
        src_bucket, _, key = location.partition("/")
        manifest = boto3.client("s3", region_name=SRC, **kw).get_object(
            Bucket=src_bucket, Key=key)["Body"].read()
        assert_identical_bundle(s3, done["ImageLocation"], parts, sha256(manifest))
        assert len(keys_under(s3, bucket, f"{copied}/")) == len(parts) + 1


def test_a_bucket_name_taken_by_another_account_refuses_the_copy(
        client: ClientFactory, account_b: str, tmp_path: Path) -> None:
    dst = "eu-south-1"
    source, _, _ = registered(client, tmp_path)
    squatted = regional_bucket(DEV_ACCOUNT, dst)
    client("s3", region=dst, key=B_KEY, secret=B_SECRET).create_bucket(
        Bucket=squatted, CreateBucketConfiguration={"LocationConstraint": dst})
    ec2 = client("ec2", region=dst)
    code, _, message = refused(lambda: ec2.copy_image(SourceRegion=SRC, SourceImageId=source,
                                                      Name=unique("squat")))
    assert code == "InvalidRequest" and squatted in message
    assert ec2.describe_images(Owners=["self"])["Images"] == []
