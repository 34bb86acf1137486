"""SigV4's rules at their edges: the clock-skew and expiry boundaries, what a signature must
carry, and which alternative forms are accepted and which are not. Signed by botocore."""

from __future__ import annotations

import datetime as dt
import hashlib
from unittest import mock
from urllib.parse import urlencode, urlsplit

import pytest
from botocore.auth import S3SigV4Auth, SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from snapferry.wire import sigv4
from snapferry.wire.http import IncomingRequest
from snapferry.wire.protocol import AuthProblem

KEY, SECRET = "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
NOW = dt.datetime(2026, 11, 22, 12, 0, 0, tzinfo=dt.UTC)
SKEW = dt.timedelta(minutes=15)
SECOND = dt.timedelta(seconds=1)


def sign(method: str = "POST", presign: int | None = None, body: bytes = b"Action=X",
         headers: dict[str, str] | None = None, params: dict[str, str] | None = None,
         service: str = "ec2", path: str = "/") -> IncomingRequest:
    request = AWSRequest(method=method, url=f"http://127.0.0.1:4747{path}", data=body,
                         headers=headers or {}, params=params or {})
    credentials = Credentials(KEY, SECRET)
    signer = (SigV4Auth(credentials, service, "us-east-1") if presign is None
              else SigV4QueryAuth(credentials, service, "us-east-1", expires=presign))
    if service == "s3" and presign is None and "X-Amz-Content-SHA256" not in (headers or {}):
        # S3's signer leaves the path as it is, but would replace a declared payload hash.
        signer = S3SigV4Auth(credentials, service, "us-east-1")
    with mock.patch("botocore.auth.get_current_datetime", return_value=NOW):
        signer.add_auth(request)
    prepared = request.prepare()
    url = urlsplit(prepared.url)
    all_headers: dict[str, list[str]] = {"host": [url.netloc]}
    for name, value in prepared.headers.items():
        all_headers.setdefault(name.lower(), []).append(value)
    raw = prepared.body or b""
    return IncomingRequest(method, url.path or "/", url.query, all_headers,
                           raw if isinstance(raw, bytes) else raw.encode())


def check(request: IncomingRequest, now: dt.datetime = NOW,
          method: str | None = None) -> AuthProblem | None:
    """None when the request verifies, else the problem."""
    if method:
        request = IncomingRequest(method, request.raw_path, request.raw_query, request.headers,
                                  request.body)
    try:
        signed = sigv4.read_signature(request)
        assert signed is not None
        sigv4.verify(request, signed, {KEY: SECRET}.get, now)
    except sigv4.AuthenticationError as refused:
        return refused.problem
    return None


def test_a_signed_request_is_good_for_exactly_15_minutes_either_side() -> None:
    request = sign()
    assert check(request, NOW + SKEW) is None
    assert check(request, NOW - SKEW) is None
    assert check(request, NOW + SKEW + SECOND) is AuthProblem.EXPIRED
    assert check(request, NOW - SKEW - SECOND) is AuthProblem.EXPIRED


def test_a_presigned_url_lives_exactly_its_expiry() -> None:
    request = sign("GET", presign=300, body=b"")
    assert check(request, NOW + dt.timedelta(seconds=300)) is None
    assert check(request, NOW + dt.timedelta(seconds=301)) is AuthProblem.EXPIRED
    # Dated in the future: good up to the skew window ahead, not beyond.
    assert check(request, NOW - SKEW) is None
    assert check(request, NOW - SKEW - SECOND) is AuthProblem.EXPIRED


def test_a_presigned_url_without_expires_lives_for_the_skew_window() -> None:
    request = sign("GET", presign=300, body=b"")
    query = "&".join(p for p in request.raw_query.split("&") if not p.startswith("X-Amz-Expires"))
    bare = IncomingRequest("GET", "/", query, request.headers, b"")
    signed = sigv4.read_signature(bare)
    assert signed is not None and signed.expires is None
    sigv4.check_time(signed, NOW + SKEW)
    with pytest.raises(sigv4.AuthenticationError) as caught:
        sigv4.check_time(signed, NOW + SKEW + SECOND)
    assert caught.value.problem is AuthProblem.EXPIRED


def presigned_query(**changes: str | None) -> IncomingRequest:
    fields: dict[str, str | None] = {
        "X-Amz-Algorithm": sigv4.ALGORITHM,
        "X-Amz-Credential": f"{KEY}/20261122/us-east-1/ec2/aws4_request",
        "X-Amz-Date": "20261122T120000Z", "X-Amz-Expires": "300",
        "X-Amz-SignedHeaders": "host", "X-Amz-Signature": "0" * 64, **changes}
    query = urlencode({k: v for k, v in fields.items() if v is not None})
    return IncomingRequest("GET", "/", query, {"host": ["h"]}, b"")


def read_problem(request: IncomingRequest) -> AuthProblem | None:
    try:
        sigv4.read_signature(request)
    except sigv4.AuthenticationError as refused:
        return refused.problem
    return None


@pytest.mark.parametrize("expires", ["1", "604800"])
def test_expiry_from_one_second_to_seven_days_is_read(expires: str) -> None:
    signed = sigv4.read_signature(presigned_query(**{"X-Amz-Expires": expires}))
    assert signed is not None and signed.presigned and signed.expires == int(expires)


@pytest.mark.parametrize("expires", ["0", "604801", "-1", "abc", "", "\u0663", "1" * 10,
                                     "0000000001", "1" * 5000])
def test_expiry_outside_one_second_to_seven_days_is_malformed(expires: str) -> None:
    assert read_problem(presigned_query(**{"X-Amz-Expires": expires})) is AuthProblem.MALFORMED


@pytest.mark.parametrize("changes", [
    {"X-Amz-Algorithm": "AWS4-HMAC-SHA1"}, {"X-Amz-Algorithm": None},
    {"X-Amz-Credential": None}, {"X-Amz-SignedHeaders": ""}, {"X-Amz-Signature": None},
    {"X-Amz-Signature": ""}, {"X-Amz-Date": None}, {"X-Amz-Date": "yesterday"},
    {"X-Amz-Credential": f"{KEY}/20261122/us-east-1/ec2"},
    {"X-Amz-Credential": f"{KEY}/20261122/us-east-1/ec2/aws4_request/x"},
    {"X-Amz-Credential": f"{KEY}/20261122/us-east-1/ec2/aws5_request"},
    {"X-Amz-Credential": f"{KEY}/20261122/us-east-1/ec2/aws3_request"},
    {"X-Amz-Credential": f"{KEY}//us-east-1/ec2/aws4_request"},
])
def test_a_presigned_url_missing_or_mangling_a_part_is_malformed(
        changes: dict[str, str | None]) -> None:
    assert read_problem(presigned_query(**changes)) is AuthProblem.MALFORMED


def test_a_request_without_any_signature_reads_as_unsigned() -> None:
    assert sigv4.read_signature(IncomingRequest("GET", "/", "Action=X", {}, b"")) is None
    # Either half of a presigned signature alone is a broken signature, not no signature.
    only_credential = presigned_query(**{"X-Amz-Signature": None})
    assert read_problem(only_credential) is AuthProblem.MALFORMED
    only_signature = presigned_query(**{"X-Amz-Credential": None})
    assert read_problem(only_signature) is AuthProblem.MALFORMED


def test_the_scope_is_read_in_order() -> None:
    signed = sigv4.read_signature(presigned_query())
    assert signed is not None
    assert (signed.scope.access_key_id, signed.scope.date, signed.scope.region,
            signed.scope.service) == (KEY, "20261122", "us-east-1", "ec2")
    assert signed.scope.text == "20261122/us-east-1/ec2/aws4_request"
    assert signed.timestamp == NOW and signed.signed_headers == ("host",)


def test_an_rfc_1123_date_header_dates_a_request() -> None:
    request = sign()
    headers = {k: v for k, v in request.headers.items() if k != "x-amz-date"}
    headers["date"] = ["Sun, 22 Nov 2026 12:00:00 GMT"]
    signed = sigv4.read_signature(IncomingRequest("POST", "/", "", headers, request.body))
    assert signed is not None and signed.timestamp == NOW and not signed.presigned
    del headers["date"]
    assert read_problem(IncomingRequest("POST", "/", "", headers, b"")) is AuthProblem.MALFORMED


@pytest.mark.parametrize("date", ["20261121T120000Z", "20261123T120000Z"])
def test_the_scope_date_must_be_the_request_date(date: str) -> None:
    request = sign()
    headers = {**request.headers, "x-amz-date": [date]}
    redated = IncomingRequest("POST", "/", "", headers, request.body)
    signed = sigv4.read_signature(redated)
    assert signed is not None
    with pytest.raises(sigv4.AuthenticationError) as caught:
        sigv4.check_time(signed, signed.timestamp)
    assert caught.value.problem is AuthProblem.MALFORMED


def test_an_unsigned_payload_is_assumed_for_a_presigned_url_only() -> None:
    """Signed over UNSIGNED-PAYLOAD without declaring it: a presigned URL may be (it has no
    header to declare it in), a header-signed request may not."""
    request = sign()
    read = sigv4.read_signature(request)
    assert read is not None
    for presigned, problem in ((True, None), (False, AuthProblem.BAD_SIGNATURE)):
        claim = sigv4.SignedRequest(read.scope, read.signed_headers, "", read.timestamp,
                                    presigned, None)
        signature = sigv4.expected_signature(request, claim, SECRET, "UNSIGNED-PAYLOAD", "POST")
        signed = sigv4.SignedRequest(read.scope, read.signed_headers, signature,
                                     read.timestamp, presigned, None)
        try:
            sigv4.verify(request, signed, {KEY: SECRET}.get, NOW)
            found = None
        except sigv4.AuthenticationError as refused:
            found = refused.problem
        assert found is problem


def test_host_must_be_signed_in_a_header_signature() -> None:
    request = sign()
    signed = sigv4.read_signature(request)
    assert signed is not None
    unhosted = sigv4.SignedRequest(signed.scope, ("x-amz-date",), signed.signature,
                                   signed.timestamp, False, None)
    with pytest.raises(sigv4.AuthenticationError) as caught:
        sigv4.verify(request, unhosted, {KEY: SECRET}.get, NOW)
    assert caught.value.problem is AuthProblem.MALFORMED


def test_a_signed_header_that_is_absent_fails_the_signature() -> None:
    request = sign(headers={"X-Custom": "a"})
    assert check(request) is None
    headers = {k: v for k, v in request.headers.items() if k != "x-custom"}
    stripped = IncomingRequest("POST", "/", "", headers, request.body)
    assert check(stripped) is AuthProblem.BAD_SIGNATURE


def test_header_values_are_compared_with_whitespace_folded() -> None:
    request = sign(headers={"X-Custom": "a  b"})
    assert check(request) is None
    changed = IncomingRequest("POST", "/", "", {**request.headers, "x-custom": ["ab"]},
                              request.body)
    assert check(changed) is AuthProblem.BAD_SIGNATURE


def test_only_a_presigned_get_may_have_been_signed_as_post() -> None:
    presigned_post = sign("POST", presign=300, body=b"")
    assert check(presigned_post, method="GET") is None
    assert check(presigned_post, method="PUT") is AuthProblem.BAD_SIGNATURE
    assert check(presigned_post, method="DELETE") is AuthProblem.BAD_SIGNATURE
    header_post = sign("POST", body=b"")
    assert check(header_post, method="GET") is AuthProblem.BAD_SIGNATURE


def test_an_unsigned_payload_is_assumed_only_for_presigned_urls() -> None:
    request = sign(headers={"X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"})
    assert check(request) is None  # declared, so honoured
    headers = {k: v for k, v in request.headers.items() if k != "x-amz-content-sha256"}
    undeclared = IncomingRequest("POST", "/", "", headers, request.body)
    assert check(undeclared) is AuthProblem.BAD_SIGNATURE
    trailer = sign(headers={"X-Amz-Content-SHA256": "STREAMING-UNSIGNED-PAYLOAD-TRAILER"})
    assert check(trailer) is None


@pytest.mark.parametrize("declared", ["0" * 64, "f" * 64])
def test_a_declared_payload_hash_that_is_not_the_bodys_is_refused(declared: str) -> None:
    # Signed over the declared hash, so only comparing it with the body's catches the lie.
    assert check(sign(headers={"X-Amz-Content-SHA256": declared})) is AuthProblem.BAD_SIGNATURE


@pytest.mark.parametrize("body", [b"", b"Action=X"])
def test_a_declared_payload_hash_that_is_the_bodys_is_honoured(body: bytes) -> None:
    declared = hashlib.sha256(body).hexdigest()  # a string of its own, as a header's is
    assert check(sign(body=body, headers={"X-Amz-Content-SHA256": declared})) is None


def test_the_signature_parameter_is_left_out_only_of_presigned_canonical_queries() -> None:
    presigned = sign("GET", presign=300, body=b"")
    assert check(presigned) is None
    signed_query = sign("GET", body=b"", params={"X-Amz-Signature": "x", "a": "1"})
    assert check(signed_query) is None


def test_the_signing_key_is_the_published_derivation() -> None:
    # AWS's own example in the SigV4 documentation (iam, us-east-1, 20120215).
    key = sigv4.signing_key(SECRET, "20120215", "us-east-1", "iam")
    assert key.hex() == "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d"


def test_the_scope_is_found_even_in_a_badly_signed_request() -> None:
    credential = f"{KEY}/20261122/eu-west-1/ebs/aws4_request"
    broken = IncomingRequest("POST", "/", "", {"authorization": [
        f"AWS4-HMAC-SHA256 Credential={credential}, Signature=bad"]}, b"")
    hint = sigv4.scope_hint(broken)
    assert hint is not None
    assert (hint.access_key_id, hint.region, hint.service) == (KEY, "eu-west-1", "ebs")
    query = IncomingRequest("GET", "/", urlencode({"X-Amz-Credential": credential}), {}, b"")
    hint = sigv4.scope_hint(query)
    assert hint is not None and hint.region == "eu-west-1"
    assert sigv4.scope_hint(sign()) is not None and sigv4.scope_hint(sign()).region == "us-east-1"
    assert sigv4.scope_hint(IncomingRequest("GET", "/", "", {}, b"")) is None
    mangled = IncomingRequest("POST", "/", "", {"authorization": [
        "AWS4-HMAC-SHA256 Credential=a/b, Signature=bad"]}, b"")
    assert sigv4.scope_hint(mangled) is None


@pytest.mark.parametrize("literal", sorted(sigv4.STREAMING_SIGNED))
def test_a_chunk_signed_payload_is_s3s_only(literal: str) -> None:
    # S3's aws-chunked bodies are signed over the literal (each chunk then signs itself);
    # any other service must sign the body's own hash.
    headers = {"X-Amz-Content-SHA256": literal}
    assert check(sign("PUT", headers=headers, service="s3", path="/b/k")) is None
    # Services whose names sort before and after s3's.
    for service in ("ec2", "sts"):
        assert check(sign(headers=headers, service=service)) is AuthProblem.BAD_SIGNATURE


def test_s3_signs_the_path_as_sent_other_services_normalised() -> None:
    for path in ("/bucket/a//b", "/bucket/a/./b/../c", "/bucket/k%20ey"):
        as_sent = sign("GET", body=b"", service="s3", path=path)
        assert as_sent.raw_path == path
        assert check(as_sent) is None, path
    for path in ("/a//b", "/a/./b/../c"):
        for service in ("ec2", "sts"):  # sorting before and after s3
            normalised = sign("GET", body=b"", path=path, service=service)
            assert normalised.raw_path == path
            assert check(normalised) is None, (path, service)
    # An empty path is signed as "/" by either.
    for service in ("s3", "ec2"):
        request = sign("GET", body=b"", service=service)
        bare = IncomingRequest("GET", "", request.raw_query, request.headers, b"")
        assert check(bare) is None, service


@pytest.mark.parametrize(("stamp", "when"), [
    ("20261122T123456Z", dt.datetime(2026, 11, 22, 12, 34, 56, tzinfo=dt.UTC)),
    ("20261231T235959Z", dt.datetime(2026, 12, 31, 23, 59, 59, tzinfo=dt.UTC)),
    ("20260101T000000Z", dt.datetime(2026, 1, 1, tzinfo=dt.UTC)),
    ("20261122T090530Z", dt.datetime(2026, 11, 22, 9, 5, 30, tzinfo=dt.UTC)),
    ("20260102T010203Z", dt.datetime(2026, 1, 2, 1, 2, 3, tzinfo=dt.UTC)),
    ("09991122T120000Z", dt.datetime(999, 11, 22, 12, tzinfo=dt.UTC)),
])
def test_a_stamp_is_read_to_the_second(stamp: str, when: dt.datetime) -> None:
    credential = f"{KEY}/{stamp[:8]}/us-east-1/ec2/aws4_request"
    signed = sigv4.read_signature(presigned_query(**{"X-Amz-Date": stamp,
                                                     "X-Amz-Credential": credential}))
    assert signed is not None and signed.timestamp == when and signed.stamp == stamp


@pytest.mark.parametrize("stamp", ["20261122 120000Z", "20261122-120000Z", "20261122T120000ZZ",
                                   "20261122T12000 Z", "20261122T1200 0Z", "2026112 T120000Z",
                                   "20261322T120000Z", "20261122T120000", "20261122T 10000Z",
                                   "20261122T+10000Z", "20261122X120000Z", "20261122T1200001",
                                   "20261122T120000~"])
def test_a_date_almost_in_the_stamps_form_is_malformed(stamp: str) -> None:
    assert read_problem(presigned_query(**{"X-Amz-Date": stamp})) is AuthProblem.MALFORMED


RFC_1123 = "Sun, 22 Nov 2026 12:00:00 GMT"


def test_a_date_in_another_form_is_signed_as_a_stamp() -> None:
    """The string to sign has YYYYMMDDTHHMMSSZ whatever form the date came in: an RFC 1123
    date is written again as a stamp, which the credential scope's date must match."""
    request = sign()
    headers = {k: v for k, v in request.headers.items() if k != "x-amz-date"}
    headers["date"] = [RFC_1123]
    header_signed = sigv4.read_signature(IncomingRequest("POST", "/", "", headers, b""))
    query_signed = sigv4.read_signature(presigned_query(**{"X-Amz-Date": RFC_1123}))
    for signed in (header_signed, query_signed):
        assert signed is not None and signed.stamp == "20261122T120000Z"
        sigv4.check_time(signed, NOW)
    # A stamp as sent is the stamp signed.
    signed = sigv4.read_signature(presigned_query())
    assert signed is not None and signed.sent_stamp == "20261122T120000Z"
