"""Malformed HTTP against the real server: truncated, oversized, badly encoded, badly
signed, wrong Content-Length, garbage chunking, random bytes. Each is answered below 500 or
closed, within a bound, and the server serves normal clients afterwards."""

from __future__ import annotations

import contextlib
import select
import socket
import time
from urllib.parse import urlsplit

import boto3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from snapferry.testing import ServerProcess
from tests.fuzz.conftest import ANSWERED_WITHIN, EXAMPLES, count

FORM = "application/x-www-form-urlencoded; charset=utf-8"
AUTH = ("AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/ec2/aws4_request, "
        "SignedHeaders=host;x-amz-date, Signature=" + "0" * 64)


def signed_request(url: str, body: bytes, service: str = "ec2", path: str = "/",
                   headers: dict[str, str] | None = None, method: str = "POST") -> bytes:
    """The bytes of a correctly signed request, for the cases to break."""
    request = AWSRequest(method=method, url=url + path, data=body,
                         headers={"Content-Type": FORM, **(headers or {})})
    SigV4Auth(Credentials("test", "test"), service, "us-east-1").add_auth(request)
    prepared = request.prepare()
    lines = [f"{method} {path} HTTP/1.1", f"Host: {urlsplit(url).netloc}"]
    lines += [f"{k}: {v}" for k, v in prepared.headers.items()
              if k.lower() not in ("host", "content-length")]
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def cases(url: str) -> dict[str, bytes]:
    host = urlsplit(url).netloc
    good = b"Action=DescribeRegions&Version=2016-11-15"
    valid = signed_request(url, good)
    head, _, body = valid.partition(b"\r\n\r\n")
    kms = signed_request(url, b'{"Description": "\\ud800"}', "kms",
                         headers={"X-Amz-Target": "TrentService.CreateKey",
                                  "Content-Type": "application/x-amz-json-1.1"})
    plain = f"POST / HTTP/1.1\r\nHost: {host}\r\n".encode()
    return {
        "valid (control)": valid,
        "truncated request line": b"POST / HTT",
        "truncated headers": valid[: len(head) // 2],
        "truncated body": valid[:-10],
        "no blank line": head + b"\r\n",
        "oversized header": plain + b"X-Big: " + b"a" * 200_000 + b"\r\n\r\n",
        "many headers": plain + b"".join(b"X-%d: v\r\n" % i for i in range(5000)) + b"\r\n",
        "oversized body declared": plain + b"Content-Length: 99999999999\r\n\r\n" + good,
        "oversized body sent": plain + b"Content-Length: 3000000\r\n\r\n" + b"a" * 3_000_000,
        "negative content-length": plain + b"Content-Length: -5\r\n\r\n" + good,
        "text content-length": plain + b"Content-Length: ten\r\n\r\n" + good,
        "latin-1 digit content-length": plain + b"Content-Length: \xb2\r\n\r\n" + good,
        "two content-lengths": plain + b"Content-Length: 3\r\nContent-Length: 40\r\n\r\n" + good,
        "content-length and chunked": plain + b"Content-Length: 5\r\n"
                                      b"Transfer-Encoding: chunked\r\n\r\n" + good,
        "chunked garbage": plain + b"Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
        "chunk size overflow": plain + b"Transfer-Encoding: chunked\r\n\r\n"
                               b"ffffffffffffffffffff\r\nx\r\n",
        "chunked, never ends": plain + b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
        "chunked valid form": plain + b"Transfer-Encoding: chunked\r\n\r\n"
                              + b"%x\r\n" % len(good) + good + b"\r\n0\r\n\r\n",
        "non-UTF-8 form": signed_request(url, b"Action=DescribeRegions&Version=2016-11-15&x=\xff"),
        "bad percent-encoding": signed_request(url, good + b"&Filter.1.Name=%zz%"),
        "percent-encoded non-UTF-8": signed_request(url, good + b"&RegionName.1=%ff%fe"),
        "latin-1 header": head.replace(b"Host:", b"X-Odd: \xe9\xff\r\nHost:") + b"\r\n\r\n"
                          + body,
        "NUL in path": f"GET /\x00x HTTP/1.1\r\nHost: {host}\r\n\r\n".encode(),
        "non-ASCII path": b"GET /snapshots/\xc3\xa9/blocks HTTP/1.1\r\nHost: x\r\n\r\n",
        "absolute URL": f"GET http://{host}/metrics HTTP/1.1\r\nHost: {host}\r\n\r\n".encode(),
        "HTTP/1.0": b"POST / HTTP/1.0\r\nContent-Length: 41\r\n\r\n" + good,
        "HTTP/2 preface": b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        "unknown method": f"BREW / HTTP/1.1\r\nHost: {host}\r\n\r\n".encode(),
        "garbage authorization": plain + b"Authorization: AWS4-HMAC-SHA256 \xff\xfe\r\n"
                                 b"Content-Length: 41\r\n\r\n" + good,
        "wrong signature": plain + f"Authorization: {AUTH}\r\nX-Amz-Date: 20260101T000000Z\r\n"
                           "Content-Length: 41\r\n\r\n".encode() + good,
        "scope with 9 parts": plain + b"Authorization: AWS4-HMAC-SHA256 Credential=a/b/c/d/e/f/g/"
                              b"h/i, SignedHeaders=host, Signature=" + b"0" * 64 + b"\r\n\r\n",
        "date past 9999": plain + f"Authorization: {AUTH}\r\nDate: Fri, 31 Dec 9999 23:59:59 "
                          "-2359\r\n\r\n".encode(),
        "date before 1": plain + f"Authorization: {AUTH}\r\nX-Amz-Date: 00000101T000000Z\r\n"
                         "\r\n".encode(),
        "presigned garbage": f"GET /?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=%ff&"
                             f"X-Amz-Expires=99999999999999999999&X-Amz-Signature=x HTTP/1.1\r\n"
                             f"Host: {host}\r\n\r\n".encode(),
        "presigned huge expiry": f"GET /?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential="
                                 f"test/20260101/us-east-1/ec2/aws4_request&X-Amz-Date="
                                 f"99991231T235959Z&X-Amz-SignedHeaders=host&X-Amz-Expires="
                                 f"604800&X-Amz-Signature={'0' * 64} HTTP/1.1\r\nHost: {host}"
                                 f"\r\n\r\n".encode(),
        "json surrogate": kms,
        "json garbage": signed_request(url, b"{\"a\": [[[[[[[[" * 2000, "kms", headers={
            "X-Amz-Target": "TrentService.ListKeys",
            "Content-Type": "application/x-amz-json-1.1"}),
        "json deep": signed_request(url, b"[" * 100_000 + b"]" * 100_000, "kms", headers={
            "X-Amz-Target": "TrentService.ListKeys",
            "Content-Type": "application/x-amz-json-1.1"}),
        "rest-json unknown path": signed_request(url, b"", "ebs", path="/snapshots/%ff/x/y",
                                                 method="GET"),
        "expect 100-continue": plain + b"Expect: 100-continue\r\nContent-Length: 41\r\n\r\n",
        "pipelined": valid + valid + b"GARBAGE\r\n\r\n",
        "nothing at all": b"",
    }


def exchange(server: ServerProcess, payloads: list[bytes]) -> list[bytes]:
    """Send each payload on its own connection, all at once, then read every connection
    until the server closes it; what each received. Fails past ANSWERED_WITHIN."""
    parts = urlsplit(server.url)
    sockets: dict[socket.socket, bytearray] = {}
    order = []
    for payload in payloads:
        sock = socket.create_connection((parts.hostname, parts.port), timeout=10)
        # Closed on us mid-send (an oversized request): read what was answered.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(payload)
        sock.setblocking(False)
        sockets[sock] = bytearray()
        order.append(sock)
    received = {}
    deadline = time.monotonic() + ANSWERED_WITHIN
    while sockets and time.monotonic() < deadline:
        readable, _, _ = select.select(list(sockets), [], [], 0.2)
        for sock in readable:
            try:
                data = sock.recv(1 << 20)
            except ConnectionResetError:
                data = b""
            if data:
                sockets[sock] += data
                continue
            received[sock] = bytes(sockets.pop(sock))
            sock.close()
    assert not sockets, f"{len(sockets)} connections neither answered nor closed in time"
    return [received[sock] for sock in order]


def statuses(reply: bytes) -> list[int]:
    """The status of every response in what a connection received."""
    found = []
    for line in reply.split(b"\r\n"):
        if line.startswith(b"HTTP/1.") and len(line) >= 12 and line[9:12].isdigit():
            found.append(int(line[9:12]))
    return found


def check(replies: list[bytes], names: list[str]) -> None:
    for name, reply in zip(names, replies, strict=True):
        got = statuses(reply)
        for status in got or [None]:
            count(status)
        assert all(status < 500 for status in got), (name, reply[:300])


def still_serves(server: ServerProcess) -> None:
    sts = boto3.client("sts", region_name="us-east-1", endpoint_url=server.url,
                       aws_access_key_id="test", aws_secret_access_key="test")
    assert sts.get_caller_identity()["Account"] == "000000000000"


def test_malformed_requests_get_no_5xx_and_no_hang(fuzz_server: ServerProcess) -> None:
    named = cases(fuzz_server.url)
    replies = exchange(fuzz_server, list(named.values()))
    check(replies, list(named))
    control = statuses(replies[0])
    assert control == [200], replies[0][:300]
    still_serves(fuzz_server)


MUTANTS_PER_EXAMPLE = 10


def mutant(data: st.DataObject, base: bytes) -> bytes:
    """`base` with bytes flipped, cut, inserted or deleted, anywhere."""
    mutated = bytearray(base)
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, max(len(mutated) - 1, 0)))
        action = data.draw(st.sampled_from(["flip", "cut", "insert", "delete"]))
        if action == "flip" and mutated:
            mutated[at] = data.draw(st.integers(0, 255))
        elif action == "cut":
            del mutated[at:]
        elif action == "insert":
            mutated[at:at] = data.draw(st.binary(min_size=1, max_size=64))
        elif mutated:
            del mutated[at]
    return bytes(mutated)


@settings(max_examples=max(EXAMPLES, 3), deadline=None, database=None,
          derandomize=EXAMPLES < 50, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_mutated_requests_get_no_5xx_and_no_hang(fuzz_server: ServerProcess,
                                                 data: st.DataObject) -> None:
    """Valid signed requests (form, JSON, chunked) mutated, sent side by side: a cut one
    waits for the header or body deadline, so they wait together."""
    named = cases(fuzz_server.url)
    bases = [named["valid (control)"], named["json surrogate"], named["chunked valid form"]]
    mutants = [mutant(data, data.draw(st.sampled_from(bases)))
               for _ in range(MUTANTS_PER_EXAMPLE)]
    check(exchange(fuzz_server, mutants), ["mutated"] * len(mutants))
    still_serves(fuzz_server)
