"""CopySnapshot's PresignedUrl: every form a genuine SDK writes verifies, every forgery is
refused with a message that says what is wrong.

The genuine forms are made by the signers themselves: boto3's own CopySnapshot path (the URL
botocore injects into the request), botocore's SigV4 query signer arranged as the JavaScript
SDK v3 arranges it (host signed without the port, `https`, every member in the query), and
as the Go SDKs do (no X-Amz-Expires). tests/unit/test_presigned_js.py adds URLs made by the
JavaScript SDK's own code.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from unittest import mock
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import botocore.session
import pytest
from botocore.auth import SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from hypothesis import given, settings
from hypothesis import strategies as st

from snapferry.domain.accounts import AccessKey
from snapferry.domain.copies import CopyFailed, CopyJob
from snapferry.engine.presigned import check_presigned_url
from tests.unit.signers import NoExpiresQueryAuth

NOW = dt.datetime(2026, 11, 22, 12, 0, 0, tzinfo=dt.UTC)
SRC, DST = "us-west-2", "eu-west-1"
SNAPSHOT = "snap-0123456789abcdef0"
OURS = AccessKey("111111111111", "AKIDOURS", "our-secret")
THEIRS = AccessKey("222222222222", "AKIDTHEIRS", "their-secret")
KEYS = {key.access_key_id: key for key in (OURS, THEIRS)}
ENDPOINT = "http://127.0.0.1:4747"


def job(created_at: dt.datetime = NOW, url: str | None = None, **changes: str) -> CopyJob:
    base = CopyJob(job_id="j", snapshot_id="snap-0000000000000000a", account_id=OURS.account_id,
                   access_key_id=OURS.access_key_id, dest_region=DST, source_region=SRC,
                   source_snapshot_id=SNAPSHOT, source_lineage_id="l", state="queued", cursor=0,
                   blocks_done=0, bytes_moved=0, fencing=0, created_at=created_at,
                   presigned_url=url)
    return dataclasses.replace(base, **changes)


def refusal(url: str, **job_changes: object) -> str:
    with pytest.raises(CopyFailed) as caught:
        check_presigned_url(job(url=url, **job_changes), KEYS.get)  # type: ignore[arg-type]
    return str(caught.value)


def accepted(url: str, created_at: dt.datetime = NOW) -> None:
    check_presigned_url(job(url=url, created_at=created_at), KEYS.get)


def boto3_url(key: AccessKey = OURS, when: dt.datetime = NOW, region: str = DST,
              **params: object) -> str:
    """The PresignedUrl exactly as boto3's CopySnapshot puts it in the request: the request
    is built and signed by botocore, captured before it leaves, and never sent."""
    session = botocore.session.get_session()
    ec2 = session.create_client("ec2", region_name=region, endpoint_url=ENDPOINT,
                                aws_access_key_id=key.access_key_id,
                                aws_secret_access_key=key.secret_access_key)

    class Captured(Exception):
        pass

    def capture(request: AWSRequest, **_: object) -> None:
        body = request.body.decode() if isinstance(request.body, bytes) else request.body
        raise Captured(dict(parse_qsl(body))["PresignedUrl"])

    ec2.meta.events.register("before-send.ec2.CopySnapshot", capture)
    with mock.patch("botocore.auth.get_current_datetime", return_value=when), \
            pytest.raises(Captured) as sent:
        ec2.copy_snapshot(SourceRegion=SRC, SourceSnapshotId=SNAPSHOT, **params)
    return str(sent.value)


def signed_url(query: dict[str, str], *, signed_host: str = "127.0.0.1:4747",
               url_host: str = "127.0.0.1:4747", scheme: str = "http", key: AccessKey = OURS,
               when: dt.datetime = NOW, region: str = SRC, service: str = "ec2",
               expires: int | None = 3600) -> str:
    """A presigned GET signed over `signed_host`, then written out with `url_host` and
    `scheme`, as the JavaScript SDK v3 writes the port back after signing."""
    request = AWSRequest(method="GET", url=f"{scheme}://{signed_host}/?{urlencode(query)}")
    credentials = Credentials(key.access_key_id, key.secret_access_key)
    signer = (SigV4QueryAuth(credentials, service, region, expires=expires) if expires
              else NoExpiresQueryAuth(credentials, service, region, expires=1))
    with mock.patch("botocore.auth.get_current_datetime", return_value=when):
        signer.add_auth(request)
    url = urlsplit(request.url)
    return urlunsplit(url._replace(netloc=url_host))


def members(**extra: str) -> dict[str, str]:
    """Every member of the input, stringified, as the JS SDK v3 puts them in the query."""
    return {"Action": "CopySnapshot", "Version": "2016-11-15", "SourceRegion": SRC,
            "SourceSnapshotId": SNAPSHOT, "DestinationRegion": DST, **extra}


# --- genuine forms ----------------------------------------------------------------------


def test_boto3s_own_copy_snapshot_url_verifies() -> None:
    url = boto3_url(Encrypted=True, KmsKeyId="alias/backup", Description="nightly")
    assert "X-Amz-Expires=3600" in url and "Encrypted=true" in url
    accepted(url)


def test_javascript_sdk_form_host_signed_without_port() -> None:
    url = signed_url(members(Encrypted="true", KmsKeyId="alias/backup",
                             TagSpecifications="[object Object]"),
                     signed_host="127.0.0.1", url_host="127.0.0.1:4747", scheme="https")
    accepted(url)


def test_go_sdk_form_without_expires_lives_for_the_skew_window() -> None:
    url = signed_url(members(Encrypted="true"), expires=None)
    assert "X-Amz-Expires" not in url
    accepted(url, created_at=NOW + dt.timedelta(minutes=14))
    assert "expired" in refusal(url, created_at=NOW + dt.timedelta(minutes=16))


def test_an_endpoint_without_a_port_verifies() -> None:
    accepted(signed_url(members(), signed_host="ebs.example", url_host="ebs.example"))


def test_expiry_is_judged_when_the_copy_was_requested() -> None:
    url = boto3_url()  # 3600 s
    accepted(url, created_at=NOW + dt.timedelta(minutes=59))
    assert "expired" in refusal(url, created_at=NOW + dt.timedelta(minutes=61))
    assert "expired" in refusal(url, created_at=NOW - dt.timedelta(minutes=16))  # not yet valid


@settings(max_examples=40, deadline=None)
@given(description=st.text(max_size=40), encrypted=st.booleans(),
       kms=st.sampled_from(["alias/a b", "arn:aws:kms:eu-west-1:111111111111:key/x", "k+1"]))
def test_any_genuine_member_values_verify(description: str, encrypted: bool, kms: str) -> None:
    query = members(Description=description, Encrypted=str(encrypted).lower(), KmsKeyId=kms)
    accepted(signed_url(query))
    accepted(signed_url(query, signed_host="127.0.0.1", scheme="https"))


# --- forgeries ----------------------------------------------------------------------------


def test_another_accounts_key_is_refused() -> None:
    assert "not signed by a key of the copying account" in refusal(boto3_url(key=THEIRS))


def test_a_wrong_secret_is_refused() -> None:
    forged = AccessKey(OURS.account_id, OURS.access_key_id, "not-our-secret")
    assert "signature does not verify" in refusal(boto3_url(key=forged))


def test_an_unknown_key_is_refused() -> None:
    stranger = AccessKey(OURS.account_id, "AKIDNOBODY", "x")
    assert "not signed by a key of the copying account" in refusal(boto3_url(key=stranger))


@pytest.mark.parametrize(("name", "value"), [
    ("SourceSnapshotId", "snap-0ffffffffffffffff"), ("SourceRegion", "us-east-2"),
    ("DestinationRegion", "us-east-1"), ("Action", "CopyImage")])
def test_a_url_for_another_copy_is_refused(name: str, value: str) -> None:
    """Signed correctly, but for a different copy than the one requested."""
    assert name in refusal(signed_url(members(**{name: value})))


def test_signed_for_the_wrong_region_or_service_is_refused() -> None:
    assert "source region" in refusal(signed_url(members(), region=DST))
    assert "source region" in refusal(signed_url(members(), service="kms"))


def test_a_host_never_signed_is_refused() -> None:
    """Only the URL's own host, with or without its port, can have been signed."""
    url = signed_url(members(), signed_host="127.0.0.1:9999", url_host="127.0.0.1:4747")
    assert "signature does not verify" in refusal(url)


def _tamper(url: str, change: str, name: str) -> str:
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    if change == "edit":
        query = [(k, v + "x" if k == name else v) for k, v in query]
    elif change == "drop":
        query = [(k, v) for k, v in query if k != name]
    elif change == "add":
        query.append((name + "Extra", "1"))
    else:  # path
        return urlunsplit(parts._replace(path="/other"))
    return urlunsplit(parts._replace(query=urlencode(query)))


@settings(max_examples=60, deadline=None)
@given(change=st.sampled_from(["edit", "drop", "add", "path"]),
       name=st.sampled_from(["Encrypted", "KmsKeyId", "Description", "Version", "X-Amz-Date",
                             "X-Amz-Expires", "X-Amz-Credential", "X-Amz-SignedHeaders",
                             "X-Amz-Signature"]),
       go_form=st.booleans())
def test_any_tampering_is_refused(change: str, name: str, go_form: bool) -> None:
    genuine = signed_url(members(Encrypted="true", KmsKeyId="alias/k", Description="d"),
                         expires=None if go_form else 3600)
    accepted(genuine)
    tampered = _tamper(genuine, change, name)
    if tampered == genuine:
        return
    with pytest.raises(CopyFailed):
        check_presigned_url(job(url=tampered), KEYS.get)


def test_not_a_presigned_url_is_refused() -> None:
    assert "not signed" in refusal(f"{ENDPOINT}/?Action=CopySnapshot")
    assert "not a valid URL" in refusal("http://[::1/?X-Amz-Signature=1")
    bad_expiry = boto3_url().replace("X-Amz-Expires=3600", "X-Amz-Expires=99999999999999")
    assert "X-Amz-Expires" in refusal(bad_expiry)
