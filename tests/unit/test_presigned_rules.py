"""PresignedUrl rules that must hold for values as they come from storage, not only for the
very objects a test built (a mutation audit found `!=` turned into `is not` unnoticed)."""

from __future__ import annotations

from snapferry.domain.accounts import AccessKey
from snapferry.engine.presigned import check_presigned_url
from tests.unit.test_presigned import OURS, boto3_url, job


def test_the_copying_account_is_compared_by_value() -> None:
    # Equal account ids read from two places are equal strings, not the same object.
    stored = AccessKey("".join(OURS.account_id), OURS.access_key_id, OURS.secret_access_key)
    copy_job = job(url=boto3_url(), account_id="".join(list(OURS.account_id)))
    assert copy_job.account_id is not stored.account_id
    check_presigned_url(copy_job, {OURS.access_key_id: stored}.get)
