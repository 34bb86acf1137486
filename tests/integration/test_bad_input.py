"""Input that once answered 500 (issue 9, item 2): each gets AWS's 4xx code, a message that
says what is wrong, and changes nothing. Sent by botocore with its own parameter validation
off, as a careless or hostile client would, or as raw HTTP where botocore cannot."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from snapferry.testing import ServerProcess
from tests.integration.conftest import ClientFactory
from tests.integration.http import error_code, send, signed

UNCHECKED = Config(parameter_validation=False, retries={"max_attempts": 1, "mode": "standard"},
                   connect_timeout=5, read_timeout=30)
HUGE = 10**20


def refusal(call: Callable[[], Any]) -> tuple[int, str, str]:
    """(status, code, message) of a call that must fail with a client error."""
    with pytest.raises(ClientError) as raised:
        call()
    response = raised.value.response
    return (response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]["Code"],
            response["Error"].get("Message", ""))


@pytest.fixture(scope="module")
def unchecked(client: ClientFactory) -> ClientFactory:
    def make(service: str, **kwargs: Any) -> Any:
        return client(service, config=UNCHECKED, **kwargs)
    return make


def test_a_date_header_past_year_9999_is_a_signature_error(server: ServerProcess) -> None:
    authorization = ("AWS4-HMAC-SHA256 Credential=test/99991231/us-east-1/ec2/aws4_request, "
                     "SignedHeaders=host, Signature=" + "0" * 64)
    for headers in ({"Date": "Fri, 31 Dec 9999 23:59:59 -2359", "Authorization": authorization},
                    {"X-Amz-Date": "Fri, 31 Dec 9999 23:59:59 -2359",
                     "Authorization": authorization}):
        response = send(server.url + "/", b"Action=DescribeRegions", headers)
        assert response.status == 400, response.body
        assert error_code(response) == "IncompleteSignature"
        assert b"is not a date" in response.body


@pytest.mark.parametrize("operation,filters", [
    ("describe_snapshots", [{"Name": "description", "Values": [str(i) for i in range(1000)]}]),
    ("describe_snapshots", [{"Name": "description", "Values": ["a"]}] * 1000),
    ("describe_snapshots", [{"Name": "tag:k", "Values": [str(i) for i in range(201)]}]),
    ("describe_snapshots", [{"Name": "tag-key", "Values": []}] * 51),
    ("describe_volumes", [{"Name": "status", "Values": [str(i) for i in range(1000)]}]),
    ("describe_volumes", [{"Name": "size", "Values": ["1"]}] * 1000),
    ("describe_tags", [{"Name": "key", "Values": [str(i) for i in range(1000)]}]),
    ("describe_tags", [{"Name": "tag:x", "Values": ["v"]}] * 1000),
    ("describe_regions", [{"Name": "region-name", "Values": ["x"] * 201}]),
    ("describe_snapshots", [{"Name": "description", "Values": ["x" * 256]}]),
])
def test_filters_past_ec2s_caps_are_refused(unchecked: ClientFactory, operation: str,
                                            filters: list[dict[str, Any]]) -> None:
    status, code, message = refusal(lambda: getattr(unchecked("ec2"), operation)(Filters=filters))
    assert (status, code) == (400, "FilterLimitExceeded"), message
    assert "maximum" in message


def test_filters_at_ec2s_caps_are_served(unchecked: ClientFactory) -> None:
    ec2 = unchecked("ec2", region="eu-north-1")
    ebs = unchecked("ebs", region="eu-north-1")
    snapshot = ebs.start_snapshot(VolumeSize=1, Description="x" * 255)["SnapshotId"]
    values = ["x" * 255] + [f"other-{i}" for i in range(199)]
    found = ec2.describe_snapshots(Filters=[{"Name": "description", "Values": values}])
    assert [s["SnapshotId"] for s in found["Snapshots"]] == [snapshot]
    many = [{"Name": "description", "Values": ["x*"]}] * 50
    assert len(ec2.describe_snapshots(Filters=many)["Snapshots"]) == 1


@pytest.mark.parametrize("operation,name,value", [
    ("describe_snapshots", "volume-size", "100000000000000000000"),
    ("describe_snapshots", "progress", "100000000000000000000%"),
    ("describe_snapshots", "progress", "101%"),
    ("describe_snapshots", "volume-size", "\u00b2"),  # a digit to str.isdigit, not to int()
    ("describe_volumes", "size", "100000000000000000000"),
    ("describe_volumes", "size", "\u0663"),
])
def test_numeric_filters_out_of_range_are_invalid(unchecked: ClientFactory, operation: str,
                                                  name: str, value: str) -> None:
    status, code, message = refusal(lambda: getattr(unchecked("ec2"), operation)(
        Filters=[{"Name": name, "Values": [value]}]))
    assert (status, code) == (400, "InvalidParameterValue")
    assert name in message and "whole number" in message


def test_time_filters_match_aws_text_with_wildcards(unchecked: ClientFactory) -> None:
    ec2, ebs = unchecked("ec2", region="eu-west-3"), unchecked("ebs", region="eu-west-3")
    snapshot = ebs.start_snapshot(VolumeSize=1)["SnapshotId"]
    started = ec2.describe_snapshots(SnapshotIds=[snapshot])["Snapshots"][0]["StartTime"]
    day = started.strftime("%Y-%m-%d")
    for value, hits in ((f"{day}T*", 1), ("1999-*", 0), ("not a time", 0)):
        found = ec2.describe_snapshots(Filters=[{"Name": "start-time", "Values": [value]}])
        assert len(found["Snapshots"]) == hits, value
    volume = ec2.create_volume(AvailabilityZone="eu-west-3a", Size=1)["VolumeId"]
    found = ec2.describe_volumes(Filters=[{"Name": "create-time", "Values": [f"{day}T*"]}])
    assert [v["VolumeId"] for v in found["Volumes"]] == [volume]


def test_thousands_of_ids_are_answered(unchecked: ClientFactory) -> None:
    ec2 = unchecked("ec2", region="ap-south-2")
    ebs = unchecked("ebs", region="ap-south-2")
    mine = ebs.start_snapshot(VolumeSize=1)["SnapshotId"]
    ids = [f"snap-{i:017x}" for i in range(20000)]
    status, code, _ = refusal(lambda: ec2.describe_snapshots(SnapshotIds=ids))
    assert (status, code) == (400, "InvalidSnapshot.NotFound")
    filtered = ec2.describe_snapshots(SnapshotIds=[*ids, mine],
                                      Filters=[{"Name": "status", "Values": ["pending"]}])
    assert [s["SnapshotId"] for s in filtered["Snapshots"]] == [mine]
    accounts = [f"{i:012d}" for i in range(3000)]
    assert ec2.describe_snapshots(RestorableByUserIds=accounts)["Snapshots"] == []
    assert [s["SnapshotId"] for s in ec2.describe_snapshots(
        RestorableByUserIds=[*accounts, "self"])["Snapshots"]] == [mine]
    assert [s["SnapshotId"] for s in ec2.describe_snapshots(
        OwnerIds=[*accounts, "self"])["Snapshots"]] == [mine]
    volume_ids = [f"vol-{i:017x}" for i in range(20000)]
    status, code, _ = refusal(lambda: ec2.describe_volumes(VolumeIds=volume_ids))
    assert (status, code) == (400, "InvalidVolume.NotFound")


CREATE_VOLUME_REFUSALS = [
    (dict(Iops=HUGE), "InvalidParameterValue"),
    (dict(VolumeType="gp3", Throughput=HUGE), "InvalidParameterValue"),
    (dict(Size=HUGE), "InvalidParameterValue"),
    (dict(Iops=-5), "InvalidParameterCombination"),  # gp2 takes no Iops
    (dict(VolumeType="st1", Size=125, Iops=500), "InvalidParameterCombination"),
    (dict(VolumeType="sc1", Size=125, Iops=500), "InvalidParameterCombination"),
    (dict(VolumeType="standard", Iops=100), "InvalidParameterCombination"),
    (dict(VolumeType="io1", Size=100), "InvalidParameterCombination"),  # Iops required
    (dict(VolumeType="io2", Size=100), "InvalidParameterCombination"),
    (dict(VolumeType="io1", Size=100, Iops=99), "InvalidParameterValue"),
    (dict(VolumeType="io1", Size=2000, Iops=64001), "InvalidParameterValue"),
    (dict(VolumeType="io1", Size=10, Iops=501), "InvalidParameterValue"),  # 50 IOPS per GiB
    (dict(VolumeType="io2", Size=100, Iops=256001), "InvalidParameterValue"),
    (dict(VolumeType="io2", Size=10, Iops=10001), "InvalidParameterValue"),  # 1000 per GiB
    (dict(VolumeType="gp3", Iops=2999), "InvalidParameterValue"),
    (dict(VolumeType="gp3", Size=1000, Iops=80001), "InvalidParameterValue"),
    (dict(VolumeType="gp3", Size=10, Iops=5001), "InvalidParameterValue"),  # 500 per GiB
    (dict(VolumeType="gp3", Throughput=124), "InvalidParameterValue"),
    (dict(VolumeType="gp3", Throughput=2001), "InvalidParameterValue"),
    (dict(Throughput=125), "InvalidParameterCombination"),  # gp2
    (dict(VolumeType="io1", Size=100, Iops=1000, Throughput=125), "InvalidParameterCombination"),
]


@pytest.mark.parametrize("args,code", CREATE_VOLUME_REFUSALS)
def test_create_volume_checks_iops_and_throughput_per_type(
        unchecked: ClientFactory, args: dict[str, Any], code: str) -> None:
    ec2 = unchecked("ec2", region="ca-west-1")
    arguments = {"Size": 10, **args}
    status, got, message = refusal(lambda: ec2.create_volume(AvailabilityZone="ca-west-1a",
                                                             **arguments))
    assert (status, got) == (400, code), message
    assert ec2.describe_volumes()["Volumes"] == []  # nothing was created


def test_create_volume_accepts_iops_and_throughput_in_range(unchecked: ClientFactory) -> None:
    ec2 = unchecked("ec2", region="ca-central-1")
    made = [
        ec2.create_volume(AvailabilityZone="ca-central-1a", Size=1, VolumeType="gp3",
                          Iops=3000, Throughput=125),
        ec2.create_volume(AvailabilityZone="ca-central-1a", Size=160, VolumeType="gp3",
                          Iops=80000, Throughput=2000),
        ec2.create_volume(AvailabilityZone="ca-central-1a", Size=10, VolumeType="io1", Iops=500),
        ec2.create_volume(AvailabilityZone="ca-central-1a", Size=10, VolumeType="io2",
                          Iops=10000),
    ]
    assert [(v["Iops"], v.get("Throughput")) for v in made] == [
        (3000, 125), (80000, 2000), (500, None), (10000, None)]


def test_volumes_report_their_types_baseline_performance(unchecked: ClientFactory) -> None:
    ec2 = unchecked("ec2", region="ca-central-1")
    shapes = [("gp3", 1), ("gp3", 500), ("gp2", 1), ("gp2", 100), ("gp2", 6000), ("st1", 125)]
    made = [ec2.create_volume(AvailabilityZone="ca-central-1a", Size=size, VolumeType=kind)
            for kind, size in shapes]
    described = {v["VolumeId"]: v for v in ec2.describe_volumes(
        VolumeIds=[v["VolumeId"] for v in made])["Volumes"]}
    assert [(described[v["VolumeId"]].get("Iops"), described[v["VolumeId"]].get("Throughput"))
            for v in made] == [(3000, 125), (3000, 125), (100, None), (300, None),
                               (16000, None), (None, None)]


SURROGATE_CALLS = [
    ("kms", "create_key", dict(Description="\ud800")),
    ("kms", "create_key", dict(Tags=[{"TagKey": "k", "TagValue": "\udfff"}])),
    ("kms", "create_key", dict(Tags=[{"TagKey": "\ud800x", "TagValue": "v"}])),
    ("kms", "retire_grant", dict(GrantToken="\ud800")),
    ("kms", "encrypt", dict(KeyId="alias/aws/ebs", Plaintext=b"x",
                            EncryptionContext={"\ud800": "v"})),
    ("ebs", "start_snapshot", dict(VolumeSize=1, Description="\ud800")),
    ("ebs", "start_snapshot", dict(VolumeSize=1, ClientToken="\ud800")),
]


@pytest.mark.parametrize("service,operation,args", SURROGATE_CALLS)
def test_unpaired_surrogates_in_json_are_refused(unchecked: ClientFactory, service: str,
                                                 operation: str, args: dict[str, Any]) -> None:
    client = unchecked(service, region="ap-east-1")

    def made() -> list[Any]:
        if service == "kms":
            return client.list_keys()["Keys"]
        return unchecked("ec2", region="ap-east-1").describe_snapshots(
            OwnerIds=["self"])["Snapshots"]

    before = made()
    status, code, message = refusal(lambda: getattr(client, operation)(**args))
    assert (status, code) == (400, "ValidationException"), message
    assert "surrogate" in message
    assert made() == before


def test_paired_surrogates_are_one_character(unchecked: ClientFactory) -> None:
    kms = unchecked("kms", region="ap-east-1")
    key = kms.create_key(Description="disk \U0001f4be")["KeyMetadata"]["KeyId"]
    assert kms.describe_key(KeyId=key)["KeyMetadata"]["Description"] == "disk \U0001f4be"
    kms.schedule_key_deletion(KeyId=key, PendingWindowInDays=7)


@pytest.mark.parametrize("body", [
    "Action=DescribeSnapshots&Version=2016-11-15&x=1&x..y=2",
    "Action=DescribeSnapshots&Version=2016-11-15&Filter.1.Name=a&Filter.1.Name..b=2",
    "Action=DescribeSnapshots&Version=2016-11-15&Filter.=a",
    "Action=DescribeSnapshots&Version=2016-11-15&.Filter=a",
])
def test_empty_parameter_segments_are_unknown_parameters(server: ServerProcess,
                                                         body: str) -> None:
    response = signed(server.url + "/", body.encode())
    assert response.status == 400, response.body
    assert error_code(response) == "UnknownParameter"
    assert b"is not recognized" in response.body


@pytest.mark.parametrize("service,operation,args", [
    ("ec2", "describe_snapshots", dict(MaxResults=HUGE)),
    ("ec2", "describe_volumes", dict(MaxResults=-HUGE)),
    ("kms", "list_keys", dict(Limit=2**31)),
    ("ebs", "start_snapshot", dict(VolumeSize=2**63)),
])
def test_integers_past_their_type_are_invalid(unchecked: ClientFactory, service: str,
                                              operation: str, args: dict[str, Any]) -> None:
    status, code, message = refusal(lambda: getattr(unchecked(service), operation)(**args))
    assert status == 400
    assert code in ("InvalidParameterValue", "ValidationException")
    assert "out of range" in message
