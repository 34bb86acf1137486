"""Unpaged DescribeSnapshots / DescribeImages / DescribeVolumes read the database a page at a
time and stream their XML (chunked), so memory does not grow with the store (issue 14);
boto3 reads every resource back, in id order, with its tags.

The resources are written straight into the server's database (more than STREAM_PAGE of
each, which through the API would take minutes); every read goes through boto3."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert

from snapferry.domain import ids
from snapferry.domain.accounts import DEV_ACCOUNT_ID
from snapferry.services.ec2.common import STREAM_PAGE
from snapferry.storage import metadata
from snapferry.testing import ServerProcess, engine_env
from tests.integration.conftest import ClientFactory

REGION = "us-east-1"
NOW = dt.datetime(2026, 12, 2, 12, 0, tzinfo=dt.UTC)
COUNT = 2 * STREAM_PAGE + 37  # three database pages


def _database_url(data_dir: Path) -> str:
    return engine_env(data_dir).get("SNAPFERRY_DATABASE_URL") or metadata.sqlite_url(data_dir)


@pytest.fixture(scope="module")
def seeded(server: ServerProcess, data_dir: Path) -> dict[str, list[str]]:
    made: dict[str, list[str]] = {"snap": [], "vol": [], "ami": []}
    rows: dict[Any, list[dict[str, Any]]] = {t: [] for t in (
        metadata.snapshots, metadata.volumes, metadata.images, metadata.tags)}
    for n in range(COUNT):
        sid, vid, iid = ids.new_id("snap"), ids.new_id("vol"), ids.new_id("ami")
        made["snap"].append(sid)
        made["vol"].append(vid)
        made["ami"].append(iid)
        rows[metadata.snapshots].append({
            "snapshot_id": sid, "account_id": DEV_ACCOUNT_ID, "region": REGION,
            "volume_id": vid, "volume_size": 1, "state": "completed", "progress": 100,
            "start_time": NOW, "description": f"streamed {n}", "encrypted": False,
            "lineage_id": uuid.uuid4().hex, "origin": "ebs-direct"})
        rows[metadata.volumes].append({
            "volume_id": vid, "account_id": DEV_ACCOUNT_ID, "region": REGION,
            "availability_zone": "us-east-1a", "size": 1, "volume_type": "gp3",
            "snapshot_id": "", "state": "available", "encrypted": False,
            "lineage_id": uuid.uuid4().hex, "create_time": NOW, "multi_attach": False})
        rows[metadata.images].append({
            "image_id": iid, "account_id": DEV_ACCOUNT_ID, "region": REGION,
            "name": f"streamed-{n}", "state": "available", "creation_date": NOW,
            "image_location": f"{DEV_ACCOUNT_ID}/streamed-{n}", "image_type": "machine",
            "architecture": "x86_64", "virtualization_type": "hvm",
            "root_device_name": "/dev/xvda", "root_device_type": "ebs",
            "deregistration_protection": "disabled"})
        for resource_id, kind in ((sid, "snapshot"), (vid, "volume"), (iid, "image")):
            rows[metadata.tags].append({
                "resource_id": resource_id, "key": "n", "value": str(n),
                "account_id": DEV_ACCOUNT_ID, "region": REGION, "resource_type": kind})
    engine = metadata.open_engine(_database_url(data_dir))
    with engine.begin() as conn:
        for table, table_rows in rows.items():
            conn.execute(insert(table), table_rows)
    engine.dispose()
    return made


def _headers_of(ec2: Any, operation: str) -> dict[str, str]:
    captured: dict[str, str] = {}

    def keep(http_response: Any, **_: Any) -> None:
        captured.update({k.lower(): v for k, v in http_response.headers.items()})

    ec2.meta.events.register(f"after-call.ec2.{operation}", keep)
    return captured


@pytest.mark.parametrize(("operation", "key", "id_key", "prefix", "args"), [
    ("DescribeSnapshots", "Snapshots", "SnapshotId", "snap", {"OwnerIds": ["self"]}),
    ("DescribeVolumes", "Volumes", "VolumeId", "vol", {}),
    ("DescribeImages", "Images", "ImageId", "ami", {"Owners": ["self"]}),
])
def test_unpaged_describe_streams_every_resource(
        client: ClientFactory, seeded: dict[str, list[str]], operation: str, key: str,
        id_key: str, prefix: str, args: dict[str, Any]) -> None:
    ec2 = client("ec2")
    headers = _headers_of(ec2, operation)
    method = getattr(ec2, {"DescribeSnapshots": "describe_snapshots",
                           "DescribeVolumes": "describe_volumes",
                           "DescribeImages": "describe_images"}[operation])
    found = method(**args)[key]
    ours = [item for item in found if item[id_key] in set(seeded[prefix])]
    assert [item[id_key] for item in ours] == sorted(seeded[prefix])
    assert [item[id_key] for item in found] == sorted(item[id_key] for item in found)
    position = {resource_id: n for n, resource_id in enumerate(seeded[prefix])}
    assert all(item["Tags"] == [{"Key": "n", "Value": str(position[item[id_key]])}]
               for item in ours)
    assert headers.get("transfer-encoding") == "chunked" and "content-length" not in headers


def test_a_small_unpaged_answer_is_one_body(client: ClientFactory,
                                            seeded: dict[str, list[str]]) -> None:
    """One page holds it: an ordinary body with its length (nothing to stream)."""
    ec2 = client("ec2")
    headers = _headers_of(ec2, "DescribeSnapshots")
    wanted = seeded["snap"][:3]
    found = ec2.describe_snapshots(Filters=[{"Name": "snapshot-id", "Values": wanted}])
    assert sorted(s["SnapshotId"] for s in found["Snapshots"]) == sorted(wanted)
    assert "content-length" in headers


def test_a_bad_filter_is_refused_before_anything_streams(
        client: ClientFactory, seeded: dict[str, list[str]]) -> None:
    ec2 = client("ec2")
    with pytest.raises(ec2.exceptions.ClientError) as raised:
        ec2.describe_snapshots(Filters=[{"Name": "no-such-filter", "Values": ["x"]}])
    assert raised.value.response["Error"]["Code"] == "InvalidParameterValue"
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
