"""Block tokens live as long as AWS's do: ListSnapshotBlocks and ListChangedBlocks say when
their tokens expire, seven days after they were handed out."""

from __future__ import annotations

import datetime as dt

from .blocks import random_blocks, write_snapshot
from .conftest import ClientFactory

WEEK = dt.timedelta(days=7)


def test_block_tokens_expire_seven_days_after_listing(client: ClientFactory) -> None:
    ebs = client("ebs")
    snapshot_id = write_snapshot(ebs, random_blocks([0, 5]))
    before = dt.datetime.now(dt.UTC)
    listed = ebs.list_snapshot_blocks(SnapshotId=snapshot_id)
    changed = ebs.list_changed_blocks(SecondSnapshotId=snapshot_id)
    after = dt.datetime.now(dt.UTC)
    for response in (listed, changed):
        expiry = response["ExpiryTime"]
        # The wire carries whole or fractional seconds: allow a second either side.
        assert before + WEEK - dt.timedelta(seconds=1) <= expiry
        assert expiry <= after + WEEK + dt.timedelta(seconds=1)
