"""CopySnapshot's PresignedUrl (issue 9, item 5): a URL naming another DestinationRegion,
signed for another region, or signed by another account's key ends the copy in `error`;
the same URL done right completes."""

from __future__ import annotations

from pathlib import Path

import pytest

from snapferry.testing import ServerProcess

from .blocks import random_blocks, write_snapshot
from .conftest import ClientFactory, add_account
from .test_copies import finished

SRC, DST = "eu-north-1", "eu-south-1"
Z = ("888888888888", "KEYFORACCOUNTZ", "secret-of-account-z")


@pytest.fixture(scope="module")
def account_z(server: ServerProcess, data_dir: Path) -> str:
    return add_account(data_dir, *Z)


def presigned(client: ClientFactory, snapshot: str, signing_region: str = SRC,
              destination: str = DST, key: str = "test", secret: str = "test") -> str:
    signer = client("ec2", region=signing_region, key=key, secret=secret)
    return signer.generate_presigned_url("copy_snapshot", Params={
        "SourceRegion": SRC, "SourceSnapshotId": snapshot, "DestinationRegion": destination})


@pytest.mark.parametrize("case", ["right", "DestinationRegion", "scope region",
                                  "another account's key"])
def test_the_presigned_url_must_match_the_copy(client: ClientFactory, account_z: str,
                                               case: str) -> None:
    snap = write_snapshot(client("ebs", region=SRC), random_blocks([1]))
    url = {
        "right": lambda: presigned(client, snap),
        "DestinationRegion": lambda: presigned(client, snap, destination="us-west-2"),
        "scope region": lambda: presigned(client, snap, signing_region="us-east-2"),
        "another account's key": lambda: presigned(client, snap, key=Z[1], secret=Z[2]),
    }[case]()
    there = client("ec2", region=DST)
    copy = there.copy_snapshot(SourceRegion=SRC, SourceSnapshotId=snap, PresignedUrl=url)
    done = finished(there, copy["SnapshotId"])
    if case == "right":
        assert done["State"] == "completed", done.get("StateMessage")
    else:
        assert done["State"] == "error", case
        assert "PresignedUrl" in done["StateMessage"], done["StateMessage"]
