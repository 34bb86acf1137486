"""PresignedUrl rules that must hold for values as they come from storage, not only for the
very objects a test built (a mutation audit found `!=` turned into `is not` unnoticed)."""

from __future__ import annotations

import pytest

from snapferry.domain.accounts import AccessKey
from snapferry.domain.copies import CopyFailed
from snapferry.engine.presigned import check_presigned_url
from tests.unit.test_presigned import OURS, boto3_url, job, members, refusal, signed_url


def test_the_copying_account_is_compared_by_value() -> None:
    # Equal account ids read from two places are equal strings, not the same object.
    stored = AccessKey("".join(OURS.account_id), OURS.access_key_id, OURS.secret_access_key)
    copy_job = job(url=boto3_url(), account_id="".join(list(OURS.account_id)))
    assert copy_job.account_id is not stored.account_id
    check_presigned_url(copy_job, {OURS.access_key_id: stored}.get)


@pytest.mark.parametrize("region", ["ap-south-1", "us-east-1"])  # sorting before and after
def test_a_url_signed_for_any_other_region_is_refused(region: str) -> None:
    url = signed_url(members(SourceRegion="eu-central-1"), region=region)
    assert "source region" in refusal(url, source_region="eu-central-1")


@pytest.mark.parametrize("service", ["ebs", "kms"])  # sorting before and after "ec2"
def test_a_url_signed_for_any_other_service_is_refused(service: str) -> None:
    assert "source region" in refusal(signed_url(members(), service=service))


@pytest.mark.parametrize("account", ["000000000000", "999999999999"])
def test_a_key_of_any_other_account_is_refused(account: str) -> None:
    foreign = AccessKey(account, OURS.access_key_id, OURS.secret_access_key)
    with pytest.raises(CopyFailed, match="not signed by a key of the copying account"):
        check_presigned_url(job(url=boto3_url()), {OURS.access_key_id: foreign}.get)
