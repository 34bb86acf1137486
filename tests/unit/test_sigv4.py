"""SigV4 verification against what botocore signs: every form it produces must verify, and
any change to a signed part must not."""

from __future__ import annotations

import datetime as dt
from unittest import mock
from urllib.parse import urlsplit

import pytest
from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from hypothesis import given, settings
from hypothesis import strategies as st

from snapferry.wire import sigv4
from snapferry.wire.http import IncomingRequest
from snapferry.wire.protocol import AuthProblem
from tests.unit.signers import NoExpiresQueryAuth

SECRETS = {"AKIDEXAMPLE": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"}
NOW = dt.datetime(2026, 11, 22, 12, 0, 0, tzinfo=dt.UTC)


def sign(request: AWSRequest, service: str = "ec2", region: str = "us-east-1",
         when: dt.datetime = NOW, presign_expires: int | None = None,
         key: str = "AKIDEXAMPLE") -> IncomingRequest:
    credentials = Credentials(key, SECRETS.get(key, "whatever"))
    signer = (SigV4Auth(credentials, service, region) if presign_expires is None
              else SigV4QueryAuth(credentials, service, region, expires=presign_expires))
    with mock.patch("botocore.auth.get_current_datetime", return_value=when):
        signer.add_auth(request)
    prepared = request.prepare()
    url = urlsplit(prepared.url)
    headers: dict[str, list[str]] = {"host": [url.netloc]}
    for name, value in prepared.headers.items():
        headers.setdefault(name.lower(), []).append(value)
    body = prepared.body or b""
    return IncomingRequest(prepared.method, url.path or "/", url.query, headers,
                           body if isinstance(body, bytes) else body.encode())


def verify(request: IncomingRequest, now: dt.datetime = NOW) -> None:
    signed = sigv4.read_signature(request)
    assert signed is not None
    sigv4.verify(request, signed, SECRETS.get, now)


def problem(request: IncomingRequest, now: dt.datetime = NOW) -> AuthProblem:
    with pytest.raises(sigv4.AuthenticationError) as caught:
        verify(request, now)
    return caught.value.problem


def form_post(body: bytes = b"Action=DescribeRegions&Version=2016-11-15") -> AWSRequest:
    return AWSRequest(method="POST", url="http://127.0.0.1:4747/", data=body,
                      headers={"Content-Type": "application/x-www-form-urlencoded"})


def test_header_signed_post_verifies() -> None:
    verify(sign(form_post()))


def test_tampered_parts_do_not_verify() -> None:
    good = sign(form_post())
    tampered_body = IncomingRequest(good.method, good.raw_path, good.raw_query, good.headers,
                                    good.body + b"&DryRun=true")
    assert problem(tampered_body) is AuthProblem.BAD_SIGNATURE
    moved = IncomingRequest(good.method, "/other", good.raw_query, good.headers, good.body)
    assert problem(moved) is AuthProblem.BAD_SIGNATURE
    headers = {**good.headers, "host": ["evil.example:1"]}
    rehosted = IncomingRequest(good.method, good.raw_path, good.raw_query, headers, good.body)
    assert problem(rehosted) is AuthProblem.BAD_SIGNATURE


def test_unknown_key_and_clock_skew() -> None:
    assert problem(sign(form_post(), key="NOBODY")) is AuthProblem.UNKNOWN_KEY
    late = NOW + dt.timedelta(minutes=16)
    assert problem(sign(form_post()), now=late) is AuthProblem.EXPIRED
    early = NOW - dt.timedelta(minutes=16)
    assert problem(sign(form_post()), now=early) is AuthProblem.EXPIRED
    verify(sign(form_post()), now=NOW + dt.timedelta(minutes=14))


def test_declared_payload_hash_must_match_unless_unsigned() -> None:
    block = b"\x01" * 1024
    unsigned = AWSRequest(method="PUT", url="http://h:1/snapshots/snap-0a/blocks/7", data=block,
                          headers={"X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"})
    verify(sign(unsigned, service="ebs"))
    lying = AWSRequest(method="PUT", url="http://h:1/snapshots/snap-0a/blocks/7", data=block,
                       headers={"X-Amz-Content-SHA256": "0" * 64})
    assert problem(sign(lying, service="ebs")) is AuthProblem.BAD_SIGNATURE


def test_presigned_get_verifies_until_expiry() -> None:
    request = AWSRequest(method="GET", url="http://127.0.0.1:4747/",
                         params={"Action": "DescribeRegions", "Version": "2016-11-15"})
    presigned = sign(request, presign_expires=300)
    verify(presigned, now=NOW + dt.timedelta(seconds=299))
    assert problem(presigned, now=NOW + dt.timedelta(seconds=301)) is AuthProblem.EXPIRED
    assert problem(presigned, now=NOW - dt.timedelta(minutes=16)) is AuthProblem.EXPIRED


def test_presigned_without_expires_lives_for_the_skew_window() -> None:
    request = AWSRequest(method="GET", url="http://127.0.0.1:4747/",
                         params={"Action": "DescribeRegions", "Version": "2016-11-15"})
    with mock.patch("botocore.auth.get_current_datetime", return_value=NOW):
        NoExpiresQueryAuth(Credentials("AKIDEXAMPLE", SECRETS["AKIDEXAMPLE"]), "ec2",
                           "us-east-1", expires=1).add_auth(request)
    prepared = request.prepare()
    url = urlsplit(prepared.url)
    assert "X-Amz-Expires" not in url.query
    presigned = IncomingRequest("GET", url.path, url.query, {"host": [url.netloc]}, b"")
    verify(presigned, now=NOW + dt.timedelta(minutes=14))
    assert problem(presigned, now=NOW + dt.timedelta(minutes=16)) is AuthProblem.EXPIRED


@pytest.mark.parametrize("authorization", [
    "garbage",
    "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261122/us-east-1/ec2, SignedHeaders=host, "
    "Signature=" + "0" * 64,
    "AWS4-HMAC-SHA256 SignedHeaders=host, Signature=" + "0" * 64,
    "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261122/us-east-1/ec2/aws4_request, "
    "SignedHeaders=host, Signature=xyz",
])
def test_unreadable_authorization_is_malformed(authorization: str) -> None:
    request = IncomingRequest("POST", "/", "", {"authorization": [authorization],
                                                "x-amz-date": ["20261122T120000Z"],
                                                "host": ["h"]}, b"")
    with pytest.raises(sigv4.AuthenticationError) as caught:
        sigv4.read_signature(request)
    assert caught.value.problem is AuthProblem.MALFORMED


def test_scope_date_must_match_request_date() -> None:
    good = sign(form_post())
    headers = {**good.headers, "x-amz-date": ["20261123T120000Z"]}
    redated = IncomingRequest(good.method, good.raw_path, good.raw_query, headers, good.body)
    assert problem(redated, now=NOW + dt.timedelta(days=1)) is AuthProblem.MALFORMED


query_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12)


@settings(max_examples=60, deadline=None)
@given(
    params=st.dictionaries(st.text(alphabet="abcXYZ019-_.~ /=&+%", min_size=1, max_size=8),
                           query_text, max_size=5),
    segments=st.lists(st.text(alphabet="abc019-_.~ %+=:@", min_size=1, max_size=6),
                      min_size=1, max_size=3),
    method=st.sampled_from(["GET", "DELETE", "PUT", "POST"]),
    body=st.binary(max_size=64),
)
def test_whatever_botocore_signs_verifies(params: dict[str, str], segments: list[str],
                                          method: str, body: bytes) -> None:
    from urllib.parse import quote

    path = "/" + "/".join(quote(s, safe="") for s in segments)
    request = AWSRequest(method=method, url=f"http://127.0.0.1:4747{path}", params=params,
                         data=body if method in ("PUT", "POST") else b"")
    verify(sign(request, service="ebs", region="eu-west-3"))
