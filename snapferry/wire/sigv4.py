"""Verify AWS Signature Version 4: the Authorization header form and the presigned-URL form.

The canonical-request rules are botocore's (path normalisation, header trimming), so what
botocore signs we recompute bit for bit; other SDKs follow the same published algorithm.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from functools import lru_cache
from urllib.parse import quote

from botocore.utils import normalize_url_path

from snapferry.wire.http import IncomingRequest, cached_property
from snapferry.wire.protocol import AuthProblem

ALGORITHM = "AWS4-HMAC-SHA256"
MAX_SKEW = dt.timedelta(minutes=15)
MAX_PRESIGN_EXPIRY = 7 * 24 * 3600
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
UNSIGNED = frozenset(
    {"UNSIGNED-PAYLOAD", "STREAMING-UNSIGNED-PAYLOAD-TRAILER"}
)
# S3's aws-chunked bodies: the header signature covers this literal, and each chunk carries
# its own signature chained from it (wire/chunked.py checks those).
STREAMING_SIGNED = frozenset(
    {"STREAMING-AWS4-HMAC-SHA256-PAYLOAD", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"}
)
_AMZ_DATE = "%Y%m%dT%H%M%SZ"
_HEADER_RE = re.compile(
    r"^AWS4-HMAC-SHA256\s+Credential=([^,\s]+)\s*,\s*SignedHeaders=([^,\s]+)\s*,"
    r"\s*Signature=([0-9a-f]{64})$"
)


class AuthenticationError(Exception):
    def __init__(self, problem: AuthProblem, message: str) -> None:
        super().__init__(message)
        self.problem = problem
        self.message = message


@dataclass(frozen=True)
class CredentialScope:
    access_key_id: str
    date: str  # YYYYMMDD
    region: str
    service: str

    @property
    def text(self) -> str:
        return f"{self.date}/{self.region}/{self.service}/aws4_request"


@dataclass(frozen=True)
class SignedRequest:
    """What a request claims before its signature is checked."""

    scope: CredentialScope
    signed_headers: tuple[str, ...]
    signature: str
    timestamp: dt.datetime
    presigned: bool
    expires: int | None  # seconds, presigned URLs only
    # The X-Amz-Date text when it is already in the string-to-sign's form (what every SDK
    # sends): the stamp without formatting the timestamp again.
    sent_stamp: str | None = None

    @cached_property
    def stamp(self) -> str:
        """The timestamp as the string to sign has it (YYYYMMDDTHHMMSSZ), formatted once."""
        return self.sent_stamp or self.timestamp.strftime(_AMZ_DATE)


def _malformed(message: str) -> AuthenticationError:
    return AuthenticationError(AuthProblem.MALFORMED, message)


@lru_cache(maxsize=256)  # a caller signs with one key and region: the same text each call
def _parse_scope(credential: str) -> CredentialScope:
    parts = credential.split("/")
    if len(parts) != 5 or parts[4] != "aws4_request" or not all(parts):
        raise _malformed(
            f"Credential must have the form <key>/<YYYYMMDD>/<region>/<service>/aws4_request, "
            f"not '{credential[:200]}'."
        )
    return CredentialScope(*parts[:4])


def _stamp_form(text: str | None) -> bool:
    """Whether a date is written YYYYMMDDTHHMMSSZ in ASCII digits (not yet whether it is
    a real date)."""
    return (text is not None and len(text) == 16 and text[8] == "T" and text[15] == "Z"
            and text.isascii() and text[:8].isdigit() and text[9:15].isdigit())


@lru_cache(maxsize=64)  # requests of the same second carry the same text
def _parse_time(text: str | None) -> dt.datetime:
    if not text:
        raise _malformed("The request must carry X-Amz-Date (or Date) to be signed.")
    if _stamp_form(text):
        # What every SDK sends, read without strptime (13% of a simple request's SigV4).
        try:
            return dt.datetime(int(text[:4]), int(text[4:6]), int(text[6:8]), int(text[9:11]),
                               int(text[11:13]), int(text[13:15]), tzinfo=dt.UTC)
        except ValueError:
            pass  # month 13 and the like: the general path below says so
    try:
        return dt.datetime.strptime(text, _AMZ_DATE).replace(tzinfo=dt.UTC)
    except ValueError:
        pass
    try:
        # OverflowError: an RFC 822 date whose offset takes it past year 9999.
        return parsedate_to_datetime(text).astimezone(dt.UTC)
    except (TypeError, ValueError, OverflowError):
        raise _malformed(f"X-Amz-Date '{text[:50]}' is not a date like 20260101T000000Z.") from None


def read_signature(request: IncomingRequest) -> SignedRequest | None:
    """The signature a request carries, or None when it carries none. Does not verify."""
    authorization = request.header("authorization")
    if authorization is not None:
        matched = _HEADER_RE.match(authorization.strip())
        if not matched:
            raise _malformed(
                "Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' "
                "parameters of an AWS4-HMAC-SHA256 signature."
            )
        credential, signed, signature = matched.groups()
        date = request.header("x-amz-date") or request.header("date")
        return SignedRequest(
            scope=_parse_scope(credential),
            signed_headers=tuple(signed.split(";")),
            signature=signature,
            timestamp=_parse_time(date),  # raises unless it is a real date
            presigned=False,
            expires=None,
            sent_stamp=date if _stamp_form(date) else None,
        )
    query = request.query
    if "X-Amz-Signature" not in query and "X-Amz-Credential" not in query:
        return None
    if query.get("X-Amz-Algorithm") != ALGORITHM:
        raise _malformed(f"X-Amz-Algorithm must be {ALGORITHM}.")
    for name in ("X-Amz-Credential", "X-Amz-SignedHeaders", "X-Amz-Signature"):
        if not query.get(name):
            raise _malformed(f"A presigned URL must carry {name}.")
    return SignedRequest(
        scope=_parse_scope(query["X-Amz-Credential"]),
        signed_headers=tuple(query["X-Amz-SignedHeaders"].split(";")),
        signature=query["X-Amz-Signature"],
        timestamp=_parse_time(query.get("X-Amz-Date")),
        presigned=True,
        expires=_parse_expires(query.get("X-Amz-Expires")),
        sent_stamp=query["X-Amz-Date"] if _stamp_form(query.get("X-Amz-Date")) else None,
    )


def _parse_expires(text: str | None) -> int | None:
    """X-Amz-Expires in seconds; None when absent, as the Go SDKs presign CopySnapshot."""
    if text is None:
        return None
    seconds = int(text) if text.isascii() and text.isdigit() and len(text) < 10 else 0
    if not 1 <= seconds <= MAX_PRESIGN_EXPIRY:
        raise _malformed(
            f"X-Amz-Expires must be a number of seconds from 1 to {MAX_PRESIGN_EXPIRY}.")
    return seconds


def _canonical_query(request: IncomingRequest, presigned: bool) -> str:
    pairs = [
        (quote(key, safe="-_.~"), quote(value, safe="-_.~"))
        for key, value in request.query_pairs
        if not (presigned and key == "X-Amz-Signature")
    ]
    return "&".join(f"{key}={value}" for key, value in sorted(pairs))


def _canonical_headers(request: IncomingRequest, names: tuple[str, ...]) -> str:
    lines = []
    for name in names:
        values = request.headers.get(name)
        if values is None:
            raise AuthenticationError(
                AuthProblem.BAD_SIGNATURE, f"The signed header '{name}' is not in the request."
            )
        lines.append(f"{name}:{','.join(' '.join(v.split()) for v in values)}\n")
    return "".join(lines)


def _payload_hashes(request: IncomingRequest, signed: SignedRequest) -> list[str]:
    """The payload hashes the signer may have used, most likely first."""
    presigned = signed.presigned
    declared = request.header("x-amz-content-sha256")
    actual = request.body_sha256.hex() if request.body_size else EMPTY_SHA256
    literal = UNSIGNED | (STREAMING_SIGNED if signed.scope.service == "s3" else frozenset())
    if declared is not None:
        if declared not in literal and declared != actual:
            raise AuthenticationError(
                AuthProblem.BAD_SIGNATURE,
                "The provided 'x-amz-content-sha256' header does not match what was computed.",
            )
        return [declared]
    return [actual, "UNSIGNED-PAYLOAD"] if presigned else [actual]


@lru_cache(maxsize=1024)
def signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    key = hmac.digest(f"AWS4{secret}".encode(), date.encode(), "sha256")
    for part in (region, service, "aws4_request"):
        key = hmac.digest(key, part.encode(), "sha256")
    return key


@lru_cache(maxsize=1024)
def _canonical_path(raw_path: str) -> str:
    """The path as botocore signs it outside S3 (normalised, encoded once): the same few
    paths come again and again ("/" for every query-protocol call)."""
    return quote(normalize_url_path(raw_path), safe="/~")


def expected_signature(
    request: IncomingRequest, signed: SignedRequest, secret: str, payload_hash: str, method: str
) -> str:
    if signed.scope.service == "s3":
        # S3 signs the path as sent: encoded once, never normalised (a key may hold `//`).
        path = request.raw_path or "/"
    else:
        path = _canonical_path(request.raw_path or "/")
    canonical = "\n".join(
        (
            method,
            path,
            _canonical_query(request, signed.presigned),
            _canonical_headers(request, signed.signed_headers),
            ";".join(signed.signed_headers),
            payload_hash,
        )
    )
    string_to_sign = "\n".join(
        (
            ALGORITHM,
            signed.stamp,
            signed.scope.text,
            hashlib.sha256(canonical.encode()).hexdigest(),
        )
    )
    scope = signed.scope
    key = signing_key(secret, scope.date, scope.region, scope.service)
    # hmac.digest: OpenSSL's one-shot HMAC, no HMAC object (hmac.new) per request.
    return hmac.digest(key, string_to_sign.encode(), "sha256").hex()


def check_time(signed: SignedRequest, now: dt.datetime) -> None:
    if signed.stamp.partition("T")[0] != signed.scope.date:
        raise _malformed("The credential scope date does not match X-Amz-Date.")
    if signed.presigned:
        # Without X-Amz-Expires a presigned URL is good for the clock-skew window after its
        # X-Amz-Date, the same 15 minutes a header-signed request gets.
        lifetime = (MAX_SKEW if signed.expires is None
                    else dt.timedelta(seconds=signed.expires))
        if signed.timestamp - now > MAX_SKEW:
            raise AuthenticationError(AuthProblem.EXPIRED, "Request is not yet valid.")
        if now > signed.timestamp + lifetime:
            raise AuthenticationError(AuthProblem.EXPIRED, "Request has expired.")
    elif abs(now - signed.timestamp) > MAX_SKEW:
        raise AuthenticationError(
            AuthProblem.EXPIRED,
            f"Request has expired: it is dated {signed.timestamp:%Y%m%dT%H%M%SZ}, more than 15 "
            f"minutes from the server's time {now:%Y%m%dT%H%M%SZ}.",
        )


def verify(
    request: IncomingRequest,
    signed: SignedRequest,
    secret_for: Callable[[str], str | None],
    now: dt.datetime,
) -> None:
    """Raise AuthenticationError unless the request is signed by the key's secret, in time."""
    check_time(signed, now)
    if "host" not in signed.signed_headers and not signed.presigned:
        raise _malformed("The 'host' header must be signed.")
    secret = secret_for(signed.scope.access_key_id)
    if secret is None:
        raise AuthenticationError(
            AuthProblem.UNKNOWN_KEY,
            "AWS was not able to validate the provided access credentials: the access key "
            f"'{signed.scope.access_key_id[:128]}' does not exist.",
        )
    # botocore's generate_presigned_url signs query-protocol operations as POST, yet the URL
    # is meant to be fetched with GET; accept that pairing (the parameters are the same).
    methods = [request.method.upper()]
    if signed.presigned and methods[0] == "GET":
        methods.append("POST")
    for method in methods:
        for payload_hash in _payload_hashes(request, signed):
            expected = expected_signature(request, signed, secret, payload_hash, method)
            if hmac.compare_digest(expected, signed.signature):
                return
    raise AuthenticationError(
        AuthProblem.BAD_SIGNATURE,
        "The request signature we calculated does not match the signature you provided. "
        "Check your AWS Secret Access Key and signing method.",
    )


def scope_hint(request: IncomingRequest) -> CredentialScope | None:
    """The credential scope, if one can be read, for routing even a badly signed request."""
    try:
        signed = read_signature(request)
    except AuthenticationError:
        credential = request.query.get("X-Amz-Credential")
        authorization = request.header("authorization") or ""
        matched = re.search(r"Credential=([^,\s]+)", authorization)
        credential = matched.group(1) if matched else credential
        try:
            return _parse_scope(credential) if credential else None
        except AuthenticationError:
            return None
    return signed.scope if signed else None
