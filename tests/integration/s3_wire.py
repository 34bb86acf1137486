"""Requests S3 clients send that boto3 does not make on its own: aws-chunked bodies signed
chunk by chunk (STREAMING-AWS4-HMAC-SHA256-PAYLOAD, what the Java and Go SDKs and many S3
tools send), unsigned bodies with trailing checksums, and virtual-host addressing where
`<bucket>.localhost` does not resolve. Signatures come from botocore's own signer."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import http.client
import zlib
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

EMPTY = hashlib.sha256(b"").hexdigest()


def crc32_b64(data: bytes) -> str:
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


def send(url: str, method: str, path: str, headers: dict[str, str], body: bytes,
         host: str | None = None) -> tuple[int, bytes, dict[str, str]]:
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    headers = {**headers, "Host": host or parts.netloc}
    connection.request(method, path, body=body, headers=headers)
    response = connection.getresponse()
    payload = response.read()
    connection.close()
    return response.status, payload, {k.lower(): v for k, v in response.getheaders()}


class _Signer(S3SigV4Auth):
    """botocore's S3 signer, signing the payload hash the request declares (botocore itself
    would hash the body it was given, which here is not built yet)."""

    def __init__(self, credentials: Credentials, region: str, payload_hash: str) -> None:
        super().__init__(credentials, "s3", region)
        self.payload_hash = payload_hash

    def payload(self, request: Any) -> str:
        return self.payload_hash


def signed_headers(url: str, method: str, path: str, headers: dict[str, str],
                   key: str = "test", secret: str = "test", region: str = "us-east-1",
                   host: str | None = None) -> tuple[dict[str, str], str, str]:
    """Headers botocore's S3 signer writes for this request, with its signature and date;
    the payload hash is whatever `headers['X-Amz-Content-SHA256']` says."""
    netloc = host or urlsplit(url).netloc
    request = AWSRequest(method=method, url=f"http://{netloc}{path}", headers=dict(headers))
    signer = _Signer(Credentials(key, secret), region, headers["X-Amz-Content-SHA256"])
    signer.add_auth(request)
    signed = dict(request.headers.items())
    signature = signed["Authorization"].rsplit("Signature=", 1)[1]
    return signed, signature, signed["X-Amz-Date"]


def _signing_key(secret: str, date: str, region: str) -> bytes:
    key = hmac.digest(f"AWS4{secret}".encode(), date.encode(), "sha256")
    for part in (region, "s3", "aws4_request"):
        key = hmac.digest(key, part.encode(), "sha256")
    return key


def signed_chunked_put(url: str, path: str, data: bytes, chunk: int = 65536,
                       corrupt_chunk: int | None = None, secret: str = "test",
                       region: str = "us-east-1", trailer: bool = False,
                       extra: dict[str, str] | None = None) -> tuple[int, bytes]:
    """PUT with STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]: each chunk signed in a chain
    from the request's signature; `corrupt_chunk` breaks that chunk's signature."""
    mode = ("STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER" if trailer
            else "STREAMING-AWS4-HMAC-SHA256-PAYLOAD")
    pieces = [data[i:i + chunk] for i in range(0, len(data), chunk)] + [b""]
    headers = {"X-Amz-Content-SHA256": mode, "Content-Encoding": "aws-chunked",
               "X-Amz-Decoded-Content-Length": str(len(data)), **(extra or {})}
    if trailer:
        headers["X-Amz-Trailer"] = "x-amz-checksum-crc32"
    # The framed length is what goes on the wire; sign it as the SDKs do.
    signed, previous, stamp = signed_headers(url, "PUT", path, headers, secret=secret,
                                             region=region)
    scope = f"{stamp[:8]}/{region}/s3/aws4_request"
    key = _signing_key(secret, stamp[:8], region)
    body = b""
    for index, piece in enumerate(pieces):
        text = "\n".join(("AWS4-HMAC-SHA256-PAYLOAD", stamp, scope, previous, EMPTY,
                          hashlib.sha256(piece).hexdigest()))
        signature = hmac.new(key, text.encode(), "sha256").hexdigest()
        previous = signature
        if index == corrupt_chunk:
            signature = "0" * 64
        body += f"{len(piece):x};chunk-signature={signature}\r\n".encode() + piece
        body += b"\r\n" if piece or not trailer else b""
    if trailer:
        trailer_text = f"x-amz-checksum-crc32:{crc32_b64(data)}\n"
        text = "\n".join(("AWS4-HMAC-SHA256-TRAILER", stamp, scope, previous,
                          hashlib.sha256(trailer_text.encode()).hexdigest()))
        trailer_signature = hmac.new(key, text.encode(), "sha256").hexdigest()
        body += (f"x-amz-checksum-crc32:{crc32_b64(data)}\r\n"
                 f"x-amz-trailer-signature:{trailer_signature}\r\n\r\n").encode()
    signed["Content-Length"] = str(len(body))
    status, payload, _ = send(url, "PUT", path, signed, body)
    return status, payload


def unsigned_trailer_put(url: str, path: str, data: bytes, checksum: str | None = None,
                         chunk: int = 8192) -> tuple[int, bytes]:
    """PUT with STREAMING-UNSIGNED-PAYLOAD-TRAILER and a trailing x-amz-checksum-crc32, as
    boto3 (over https) and the JS SDK v3 send a streamed upload."""
    headers = {"X-Amz-Content-SHA256": "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
               "Content-Encoding": "aws-chunked", "X-Amz-Trailer": "x-amz-checksum-crc32",
               "X-Amz-Decoded-Content-Length": str(len(data))}
    signed, _, _ = signed_headers(url, "PUT", path, headers)
    body = b"".join(f"{len(data[i:i + chunk]):x}\r\n".encode() + data[i:i + chunk] + b"\r\n"
                    for i in range(0, len(data), chunk))
    body += f"0\r\nx-amz-checksum-crc32:{checksum or crc32_b64(data)}\r\n\r\n".encode()
    signed["Content-Length"] = str(len(body))
    status, payload, _ = send(url, "PUT", path, signed, body)
    return status, payload


def via_loopback(request: Any, **_: Any) -> None:
    """botocore `before-send` hook: send a request for `<bucket>.localhost:PORT` to
    127.0.0.1:PORT with its Host header unchanged (the signature covers it), as a resolver
    that maps *.localhost to loopback would."""
    parts = urlsplit(request.url)
    request.headers["Host"] = parts.netloc
    request.url = urlunsplit(parts._replace(netloc=f"127.0.0.1:{parts.port}"))


def now_stamp() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
