"""The foundation end to end: a real server, real signed requests from boto3."""

from __future__ import annotations

import datetime as dt
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError

from snapferry.testing import ServerProcess

from .conftest import ACCOUNT_B, NO_RETRIES, ClientFactory, add_account, run_cli
from .http import error_code, send, signed

FORM = "Action=DescribeRegions&Version=2016-11-15"
ACCOUNT_E = ("444444444444", "KEYFORACCOUNTE", "secret-of-account-e")
REGIONS_IN_BOTOCORE = 34


def refused(call: Callable[[], Any]) -> tuple[str, int, str]:
    with pytest.raises(ClientError) as caught:
        call()
    response = caught.value.response
    return (response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"],
            response["Error"]["Message"])


@pytest.fixture(scope="module")
def account_b(server: ServerProcess, data_dir: Path) -> str:
    return add_account(data_dir, *ACCOUNT_B)


def test_two_accounts_have_two_identities(server: ServerProcess, data_dir: Path,
                                          client: ClientFactory) -> None:
    # Added while the server runs: it must see the key at once, no restart. An account of
    # this test's own, so that it stands alone.
    added = run_cli("accounts", "add", "--account-id", ACCOUNT_E[0], "--access-key-id",
                    ACCOUNT_E[1], "--secret-access-key", ACCOUNT_E[2], data_dir=data_dir)
    assert added.returncode == 0, added.stderr
    dev = client("sts").get_caller_identity()
    other = client("sts", key=ACCOUNT_E[1], secret=ACCOUNT_E[2]).get_caller_identity()
    assert (dev["Account"], other["Account"]) == ("000000000000", ACCOUNT_E[0])
    assert other["Arn"] == f"arn:aws:iam::{ACCOUNT_E[0]}:root"
    assert dev["ResponseMetadata"]["RequestId"] != other["ResponseMetadata"]["RequestId"]


@pytest.mark.parametrize("region", ["us-east-1", "eu-west-1", "ap-southeast-2"])
def test_regions_and_zones_answer_in_each_region(client: ClientFactory, region: str) -> None:
    ec2 = client("ec2", region=region)
    regions = ec2.describe_regions()["Regions"]
    assert len(regions) == REGIONS_IN_BOTOCORE
    by_name = {r["RegionName"]: r for r in regions}
    assert by_name[region]["Endpoint"] == f"ec2.{region}.amazonaws.com"
    zones = ec2.describe_availability_zones()["AvailabilityZones"]
    assert [z["ZoneName"] for z in zones] == [f"{region}a", f"{region}b", f"{region}c"]
    assert {z["RegionName"] for z in zones} == {region}
    assert all(z["State"] == "available" for z in zones)


def test_region_and_zone_filters(client: ClientFactory) -> None:
    ec2 = client("ec2")
    eu = ec2.describe_regions(Filters=[{"Name": "region-name", "Values": ["eu-*"]}])["Regions"]
    assert eu and all(r["RegionName"].startswith("eu-") for r in eu)
    two = ec2.describe_regions(RegionNames=["us-west-2", "sa-east-1"])["Regions"]
    assert sorted(r["RegionName"] for r in two) == ["sa-east-1", "us-west-2"]
    zone = ec2.describe_availability_zones(ZoneIds=["use1-az2"])["AvailabilityZones"]
    assert [z["ZoneName"] for z in zone] == ["us-east-1b"]
    code, status, message = refused(
        lambda: ec2.describe_regions(Filters=[{"Name": "colour", "Values": ["red"]}]))
    assert (code, status) == ("InvalidParameterValue", 400) and "colour" in message
    code, _, _ = refused(lambda: ec2.describe_regions(RegionNames=["moon-east-1"]))
    assert code == "InvalidParameterValue"
    code, _, _ = refused(lambda: ec2.describe_availability_zones(ZoneNames=["us-east-1z"]))
    assert code == "InvalidParameterValue"


def test_dry_run_says_it_would_have_succeeded(client: ClientFactory) -> None:
    code, status, message = refused(lambda: client("ec2").describe_regions(DryRun=True))
    assert (code, status) == ("DryRunOperation", 412)
    assert message == "Request would have succeeded, but DryRun flag is set."


def test_wrong_secret_is_refused(client: ClientFactory) -> None:
    ec2 = client("ec2", secret="not-the-secret")
    assert refused(ec2.describe_regions)[:2] == ("AuthFailure", 401)
    sts = client("sts", secret="not-the-secret")
    assert refused(sts.get_caller_identity)[:2] == ("SignatureDoesNotMatch", 403)


def test_unknown_key_is_refused(client: ClientFactory) -> None:
    assert refused(client("ec2", key="NOSUCHKEY").describe_regions)[:2] == ("AuthFailure", 401)
    sts = client("sts", key="NOSUCHKEY")
    assert refused(sts.get_caller_identity)[:2] == ("InvalidClientTokenId", 403)


def test_unsigned_request_is_refused(client: ClientFactory) -> None:
    unsigned = Config(signature_version=UNSIGNED, retries={"max_attempts": 1})
    ec2 = client("ec2", config=unsigned)
    assert refused(ec2.describe_regions)[:2] == ("MissingAuthenticationToken", 401)
    sts = client("sts", config=unsigned)
    assert refused(sts.get_caller_identity)[:2] == ("MissingAuthenticationToken", 403)


def test_request_signed_twenty_minutes_ago_is_refused(client: ClientFactory) -> None:
    # The client's clock is 20 minutes slow: botocore dates and signs with it.
    past = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=20)
    ec2, sts = client("ec2"), client("sts")
    with mock.patch("botocore.auth.get_current_datetime", return_value=past):
        assert refused(ec2.describe_regions)[:2] == ("RequestExpired", 400)
        assert refused(sts.get_caller_identity)[:2] == ("RequestExpired", 400)
    # Ten minutes of skew is within AWS's fifteen.
    near = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=10)
    with mock.patch("botocore.auth.get_current_datetime", return_value=near):
        assert ec2.describe_regions()["Regions"]


def test_presigned_url_works_until_it_expires(client: ClientFactory) -> None:
    ec2 = client("ec2")
    url = ec2.generate_presigned_url("describe_regions", Params={"RegionNames": ["us-east-2"]},
                                     ExpiresIn=600)
    ok = send(url, method="GET")
    assert ok.status == 200 and b"<regionName>us-east-2</regionName>" in ok.body
    tampered = send(url.replace("us-east-2", "us-west-2"), method="GET")
    assert (tampered.status, error_code(tampered)) == (401, "AuthFailure")
    past = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=20)
    with mock.patch("botocore.auth.get_current_datetime", return_value=past):
        stale = ec2.generate_presigned_url("describe_regions", ExpiresIn=300)
    expired = send(stale, method="GET")
    assert (expired.status, error_code(expired)) == (400, "RequestExpired")


def test_bad_requests_get_4xx_and_the_server_keeps_serving(server: ServerProcess,
                                                           client: ClientFactory) -> None:
    url = server.url + "/"
    cases = {
        "unknown parameter": signed(url, f"{FORM}&Colour=red".encode()),
        "broken list index": signed(url, f"{FORM}&RegionName.x=us-east-1".encode()),
        "not utf-8": signed(url, FORM.encode() + b"&RegionName.1=\xff\xfe"),
        "not a boolean": signed(url, f"{FORM}&AllRegions=perhaps".encode()),
        "garbage authorization": send(url, FORM.encode(), {"Authorization": "garbage !!"}),
        "oversized body": send(url, FORM.encode() + b"&x=" + b"a" * (2 * 1024 * 1024)),
        "unknown action": signed(url, b"Action=LaunchRockets&Version=2016-11-15"),
        "no action": signed(url, b"Version=2016-11-15"),
        "region outside the partition": signed(url, FORM.encode(), region="moon-east-1"),
    }
    expected = {
        "unknown parameter": (400, "UnknownParameter"),
        "broken list index": (400, "UnknownParameter"),
        "not utf-8": (400, "InvalidParameterValue"),
        "not a boolean": (400, "InvalidParameterValue"),
        "garbage authorization": (400, "IncompleteSignature"),
        "oversized body": (413, "RequestEntityTooLarge"),
        "unknown action": (400, "InvalidAction"),
        "no action": (400, "MissingAction"),
        "region outside the partition": (401, "AuthFailure"),
    }
    got = {name: (response.status, error_code(response)) for name, response in cases.items()}
    assert got == expected
    assert all(b"<RequestID>" in response.body for response in cases.values())
    assert client("ec2").describe_regions()["Regions"]


def test_other_protocols_answer_in_their_own_envelopes(client: ClientFactory) -> None:
    # KMS (json) and IAM (query) operations not served yet say so. EBS (rest-json) errors
    # carry their own envelope.
    code, status, message = refused(
        lambda: client("kms").get_public_key(KeyId="alias/aws/ebs"))
    assert (code, status) == ("UnknownOperationException", 400)
    assert "does not serve kms GetPublicKey" in message
    code, status, _ = refused(client("kms", secret="wrong").list_keys)
    assert (code, status) == ("InvalidSignatureException", 400)
    code, status, _ = refused(
        lambda: client("ebs").list_snapshot_blocks(SnapshotId="snap-0123456789abcdef0"))
    assert (code, status) == ("ResourceNotFoundException", 404)
    code, status, _ = refused(
        lambda: client("ebs", secret="wrong").list_snapshot_blocks(
            SnapshotId="snap-0123456789abcdef0"))
    assert (code, status) == ("InvalidSignatureException", 403)
    code, status, message = refused(client("iam").list_mfa_devices)
    assert (code, status) == ("InvalidAction", 400)
    assert "does not serve iam ListMFADevices" in message


def test_malformed_json_bodies_get_4xx(server: ServerProcess, client: ClientFactory) -> None:
    url = server.url + "/"
    kms = {"X-Amz-Target": "TrentService.ListKeys"}
    for body in (b"{not json", b"[" * 100_000 + b"]" * 100_000, b'{"Limit": "many"}'):
        response = signed(url, body, service="kms", content_type="application/x-amz-json-1.1",
                          extra_headers=kms)
        assert response.status == 400, (body[:20], response.body)
    assert client("kms").list_keys()["Keys"] is not None


@pytest.mark.embedded_only("reads the SQLite file for the sealed secret; PostgreSQL stores "
                           "the same sealed column")
def test_secrets_are_sealed_and_the_master_key_is_private(server: ServerProcess,
                                                          data_dir: Path, account_b: str) -> None:
    assert stat.S_IMODE((data_dir / "master.key").stat().st_mode) == 0o600
    everything = b"".join(p.read_bytes() for p in data_dir.rglob("*") if p.is_file())
    assert ACCOUNT_B[1].encode() in everything  # the key id is stored, in the clear
    assert ACCOUNT_B[2].encode() not in everything  # its secret is not


def test_accounts_survive_a_restart(tmp_path: Path) -> None:
    # A server of its own: stopping the module's would break the tests that run after.
    with ServerProcess(tmp_path) as first:
        add_account(tmp_path, *ACCOUNT_B)
        assert first.stop() == 0  # SIGTERM is a clean shutdown
    with ServerProcess(tmp_path) as again:
        import boto3

        sts = boto3.client("sts", region_name="eu-central-1", endpoint_url=again.url,
                           aws_access_key_id=ACCOUNT_B[1], aws_secret_access_key=ACCOUNT_B[2],
                           config=NO_RETRIES)
        assert sts.get_caller_identity()["Account"] == ACCOUNT_B[0]
