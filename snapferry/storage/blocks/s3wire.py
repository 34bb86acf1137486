"""A small S3 client for the block store's hot calls: GET, HEAD and PUT of one object.

Why not boto3 for these: a scale-out worker spent about 33 ms of CPU per MiB copied, most of it
in botocore building, signing, parsing and running hooks for each block's requests. A block
is one whole object under a fixed-form key, so a request is a method, a path, a few headers
and a SigV4 signature (the signing key derivation is wire/sigv4.py's, cached per day), sent
on one pooled urllib3 PoolManager per process. Everything else (buckets, deletes, listing)
stays on boto3 (blocks/s3.py).

What the boto3 client gave and this one keeps: retries of 429, 5xx and connection errors with
exponential backoff and full jitter (botocore's "standard" mode, 5 attempts), connect and read
timeouts, and errors that carry botocore's `response` shape ({"Error": {"Code", "Message"},
"ResponseMetadata": {"HTTPStatusCode"}}), so callers and storage/engines.py read them as
before. The payload is signed: its SHA-256, computed once, is both x-amz-content-sha256 and
x-amz-checksum-sha256.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import os
import random
import time
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

import urllib3
from urllib3.exceptions import HTTPError as Urllib3Error

from snapferry.wire.sigv4 import ALGORITHM, EMPTY_SHA256, signing_key

MAX_ATTEMPTS = 5  # as botocore's standard mode
MAX_BACKOFF = 20.0  # seconds
RETRIED_STATUSES = frozenset({429, 500, 502, 503, 504})
RETRIED_CODES = frozenset({"Throttling", "ThrottlingException", "SlowDown",
                           "RequestTimeout", "RequestTimeTooSkewed", "InternalError"})


@dataclass(frozen=True)
class Credentials:
    access_key_id: str
    secret_access_key: str
    session_token: str | None = None


class S3Error(Exception):
    """The store's answer to a request that failed, shaped like botocore's ClientError."""

    def __init__(self, operation: str, status: int, code: str, message: str,
                 target: str) -> None:
        super().__init__(f"An error occurred ({code}) when calling the {operation} operation "
                         f"on {target}: {message or f'HTTP {status}'}")
        self.operation = operation
        self.response = {"Error": {"Code": code, "Message": message},
                         "ResponseMetadata": {"HTTPStatusCode": status}}

    @property
    def status(self) -> int:
        return int(self.response["ResponseMetadata"]["HTTPStatusCode"])

    @property
    def code(self) -> str:
        return str(self.response["Error"]["Code"])


@dataclass(frozen=True)
class Answer:
    status: int
    headers: Mapping[str, str]
    body: bytes


def _error(operation: str, answer: Answer, target: str) -> S3Error:
    code, message = "", ""
    if answer.body:
        try:
            root = ElementTree.fromstring(answer.body)
            code = root.findtext("Code") or ""
            message = root.findtext("Message") or ""
        except ElementTree.ParseError:
            message = answer.body[:200].decode(errors="replace")
    if not code:  # a HEAD's error has no body; botocore names it by its status
        code = {404: "NotFound", 403: "Forbidden"}.get(answer.status, str(answer.status))
        code = "NoSuchKey" if operation == "GetObject" and answer.status == 404 else code
    return S3Error(operation, answer.status, code, message, target)


class S3Wire:
    """One endpoint's client; thread-safe (the pool is, and nothing else changes)."""

    def __init__(self, endpoint_url: str | None, region: str,
                 credentials: Callable[[], Credentials], pool_size: int,
                 connect_timeout: float = 5, read_timeout: float = 30,
                 max_attempts: int = MAX_ATTEMPTS) -> None:
        self.region = region
        self.credentials = credentials
        self.max_attempts = max_attempts
        if endpoint_url:  # an S3-compatible store: path-style, as boto3 was configured
            parts = urlsplit(endpoint_url)
            self.scheme, self.netloc = parts.scheme, parts.netloc
            self.base_path = parts.path.rstrip("/")
            self.virtual_hosted = False
        else:  # AWS itself: virtual-hosted style, boto3's default there
            self.scheme, self.netloc = "https", f"s3.{region}.amazonaws.com"
            self.base_path = ""
            self.virtual_hosted = True
        options: dict[str, object] = {}
        if self.scheme == "https":
            from botocore.httpsession import get_cert_path

            options["ca_certs"] = os.environ.get("AWS_CA_BUNDLE") or get_cert_path(True)
        # block=False: a burst beyond the pool opens extra connections rather than waiting.
        self.pool = urllib3.PoolManager(
            num_pools=4, maxsize=pool_size, block=False, retries=False,
            timeout=urllib3.Timeout(connect=connect_timeout, read=read_timeout), **options)

    # ---- the three calls ---------------------------------------------------------------------

    def get_object(self, bucket: str, key: str) -> bytes:
        """The object's bytes; S3Error NoSuchKey (404) when there is none."""
        return self._call("GetObject", "GET", bucket, key).body

    def head_object(self, bucket: str, key: str) -> bool:
        """Whether the object exists (a 404 is False, any other failure raises)."""
        try:
            self._call("HeadObject", "HEAD", bucket, key)
        except S3Error as error:
            if error.status == 404:
                return False
            raise
        return True

    def put_object(self, bucket: str, key: str, body: bytes | bytearray, sha256: bytes,
                   if_none_match: bool) -> None:
        """One whole-object PUT of `body`, whose SHA-256 is `sha256`: signed as the payload
        hash and sent as x-amz-checksum-sha256, so the store refuses a body that does not
        match. With `if_none_match`, a conditional create (If-None-Match: *)."""
        headers = {"x-amz-checksum-sha256": base64.b64encode(sha256).decode()}
        if if_none_match:
            headers["if-none-match"] = "*"
        self._call("PutObject", "PUT", bucket, key, body, sha256.hex(), headers)

    # ---- requests ----------------------------------------------------------------------------

    def _call(self, operation: str, method: str, bucket: str, key: str,
              body: bytes | bytearray = b"", payload_hash: str = EMPTY_SHA256,
              headers: Mapping[str, str] | None = None) -> Answer:
        if self.virtual_hosted:
            host, path = f"{bucket}.{self.netloc}", f"/{quote(key, safe='/~')}"
        else:
            host = self.netloc
            path = f"{self.base_path}/{quote(bucket, safe='~')}/{quote(key, safe='/~')}"
        url = f"{self.scheme}://{host}{path}"
        target = f"s3://{bucket}/{key}"
        attempt = 0
        while True:
            attempt += 1
            try:
                # Signed anew per attempt: the date moves, and a refreshed role key may too.
                signed = self._sign(method, host, path, payload_hash, dict(headers or {}))
                response = self.pool.request(method, url, body=body or None, headers=signed,
                                             preload_content=True, redirect=False)
                answer = Answer(response.status, response.headers, response.data or b"")
            except Urllib3Error:
                if attempt >= self.max_attempts:
                    raise  # storage/engines.py reads it as the store being unavailable
                self._back_off(attempt)
                continue
            if answer.status < 300:
                return answer
            error = _error(operation, answer, target)
            if attempt >= self.max_attempts or not (
                    answer.status in RETRIED_STATUSES or error.code in RETRIED_CODES):
                raise error
            self._back_off(attempt)

    @staticmethod
    def _back_off(attempt: int) -> None:
        # Full jitter over an exponential ceiling, as botocore's standard retry mode.
        time.sleep(random.uniform(0, min(MAX_BACKOFF, 2.0 ** (attempt - 1))))

    def _sign(self, method: str, host: str, path: str, payload_hash: str,
              headers: dict[str, str]) -> dict[str, str]:
        """SigV4 in the Authorization header, signing every header sent but the length
        (which urllib3 adds); the S3 form: the path as sent, never normalised."""
        credentials = self.credentials()
        now = dt.datetime.now(dt.UTC)
        stamp = now.strftime("%Y%m%dT%H%M%SZ")
        date = stamp[:8]
        headers.update({"host": host, "x-amz-date": stamp, "x-amz-content-sha256": payload_hash})
        if credentials.session_token:
            headers["x-amz-security-token"] = credentials.session_token
        names = sorted(headers)
        signed_names = ";".join(names)
        canonical = "\n".join((
            method, path, "",
            "".join(f"{name}:{' '.join(headers[name].split())}\n" for name in names),
            signed_names, payload_hash))
        scope = f"{date}/{self.region}/s3/aws4_request"
        to_sign = "\n".join((ALGORITHM, stamp, scope,
                             hashlib.sha256(canonical.encode()).hexdigest()))
        key = signing_key(credentials.secret_access_key, date, self.region, "s3")
        signature = hmac.new(key, to_sign.encode(), "sha256").hexdigest()
        headers["authorization"] = (
            f"{ALGORITHM} Credential={credentials.access_key_id}/{scope}, "
            f"SignedHeaders={signed_names}, Signature={signature}")
        return headers
