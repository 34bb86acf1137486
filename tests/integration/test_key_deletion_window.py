"""ScheduleKeyDeletion's waiting period is 7 to 30 days, as in AWS, and 30 when not given."""

from __future__ import annotations

import pytest

from .conftest import ClientFactory
from .test_foundation import refused


@pytest.mark.parametrize("days", [6, 31])
def test_a_window_outside_7_to_30_days_is_refused(client: ClientFactory, days: int) -> None:
    kms = client("kms")
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    assert refused(lambda: kms.schedule_key_deletion(KeyId=key, PendingWindowInDays=days))[
        0] == "ValidationException"
    assert kms.describe_key(KeyId=key)["KeyMetadata"]["KeyState"] == "Enabled"


@pytest.mark.parametrize("days", [7, 30, None])
def test_a_window_of_7_to_30_days_is_accepted(client: ClientFactory, days: int | None) -> None:
    kms = client("kms")
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    window = {} if days is None else {"PendingWindowInDays": days}
    scheduled = kms.schedule_key_deletion(KeyId=key, **window)
    assert scheduled["PendingWindowInDays"] == (days or 30)
    assert kms.describe_key(KeyId=key)["KeyMetadata"]["KeyState"] == "PendingDeletion"
