"""Slow and idle connections are closed, and the server serves meanwhile (issue 9, item 3).

Hundreds of sockets hold the server the slowloris way: half their headers, headers and a
short body, or nothing at all. Each must be closed within a bound of the configured
timeouts, while a normal client's requests are answered all along. Past the connection
cap, requests get 503 until the slow ones are gone.
"""

from __future__ import annotations

import http.client
import select
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import boto3
import pytest
from botocore.auth import S3SigV4Auth, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from snapferry.testing import ServerProcess
from tests.integration.conftest import NO_RETRIES, wait_for

HEADER_TIMEOUT = 4  # long enough that five calls fit before it on a loaded 2-core machine
BODY_TIMEOUT = 2
# Generous for two shared cores: the timeouts plus time to close hundreds of sockets.
CLOSED_WITHIN = HEADER_TIMEOUT + BODY_TIMEOUT + 10
HALF_HEADERS = b"POST / HTTP/1.1\r\nHost: slow\r\nContent-Type: application/x-www-form-"
SHORT_BODY = (b"POST / HTTP/1.1\r\nHost: slow\r\nContent-Type: application/x-www-form-urlencoded"
              b"\r\nContent-Length: 1000\r\n\r\nAction=DescribeRegions&")


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    args = ["--header-timeout", str(HEADER_TIMEOUT), "--body-timeout", str(BODY_TIMEOUT),
            "--max-connections", "400"]
    with ServerProcess(tmp_path_factory.mktemp("slow"), args) as server:
        yield server


def address(server: ServerProcess) -> tuple[str, int]:
    parts = urlsplit(server.url)
    assert parts.hostname is not None and parts.port is not None
    return parts.hostname, parts.port


def open_slow(server: ServerProcess, payload: bytes) -> socket.socket:
    sock = socket.create_connection(address(server), timeout=10)
    if payload:
        sock.sendall(payload)
    sock.setblocking(False)
    return sock


def drain(sockets: dict[socket.socket, bytearray], deadline: float) -> list[bytes]:
    """Read every socket until the server closes it (EOF or reset) or the deadline passes;
    what each closed socket had received. The sockets still open stay in `sockets`."""
    closed = []
    while sockets and time.monotonic() < deadline:
        readable, _, _ = select.select(list(sockets), [], [], 0.2)
        for sock in readable:
            try:
                data = sock.recv(65536)
            except ConnectionResetError:
                data = b""
            if data:
                sockets[sock] += data
                continue
            sock.close()
            closed.append(bytes(sockets.pop(sock)))
    return closed


def caller_identity(server: ServerProcess) -> str:
    sts = boto3.client("sts", region_name="us-east-1", endpoint_url=server.url,
                       aws_access_key_id="test", aws_secret_access_key="test",
                       config=NO_RETRIES)
    return sts.get_caller_identity()["Account"]


def signed_head(server: ServerProcess, request: AWSRequest, content_length: int) -> bytes:
    """A signed request's head as raw bytes, to send with as much (or as little) of its body as
    a test wants: the request line, Host as the server sees it, the declared length, and the
    signature's headers."""
    path = urlsplit(request.url).path
    head = [f"{request.method} {path} HTTP/1.1", f"Host: {urlsplit(server.url).netloc}",
            f"Content-Length: {content_length}"]
    head += [f"{k}: {v}" for k, v in request.prepare().headers.items()
             if k.lower() not in ("host", "content-length")]
    return ("\r\n".join(head) + "\r\n\r\n").encode()


def test_slow_connections_are_closed_while_others_are_served(guarded: ServerProcess) -> None:
    sts = boto3.client("sts", region_name="us-east-1", endpoint_url=guarded.url,
                       aws_access_key_id="test", aws_secret_access_key="test",
                       config=NO_RETRIES)  # made before the clock starts: it takes a while
    sockets: dict[socket.socket, bytearray] = {}
    for payload in (HALF_HEADERS, SHORT_BODY, b""):  # b"": connected, silent
        for _ in range(100):
            sockets[open_slow(guarded, payload)] = bytearray()
    started = time.monotonic()
    # Held by 300 slow sockets, the server still answers a real client, at once.
    for _ in range(5):
        assert sts.get_caller_identity()["Account"] == "000000000000"
    assert time.monotonic() - started < HEADER_TIMEOUT + 1  # before any slow one was closed
    closed = drain(sockets, started + CLOSED_WITHIN)
    assert not sockets, f"{len(sockets)} slow connections still open after {CLOSED_WITHIN}s"
    assert len(closed) == 300
    # The short bodies are answered in their protocol before the connection closes.
    timed_out_bodies = [reply for reply in closed if reply]
    assert len(timed_out_bodies) == 100
    assert all(reply.startswith(b"HTTP/1.1 400") and b"<Code>RequestTimeout</Code>" in reply
               for reply in timed_out_bodies)
    assert caller_identity(guarded) == "000000000000"


def test_a_kept_alive_connection_gets_a_header_deadline_too(guarded: ServerProcess) -> None:
    connection = http.client.HTTPConnection(*address(guarded), timeout=CLOSED_WITHIN)
    connection.request("GET", "/metrics")
    response = connection.getresponse()
    response.read()
    assert response.status == 200
    sock = connection.sock
    assert sock is not None
    sock.sendall(HALF_HEADERS)  # a second request on the same connection, stalled
    started = time.monotonic()
    sock.settimeout(CLOSED_WITHIN)
    assert sock.recv(1024) == b""  # closed by the server, not by our timeout
    assert time.monotonic() - started < CLOSED_WITHIN
    connection.close()


def test_past_the_connection_cap_requests_get_503_until_slow_ones_close(
        tmp_path: Path) -> None:
    # The cap is each API process's own: with the scale-out backend's two, the kernel may
    # hand 12 connections over as 5 and 7 and neither process is past 10. One process here.
    args = ["--header-timeout", str(HEADER_TIMEOUT), "--max-connections", "10",
            "--processes", "1"]
    with ServerProcess(tmp_path / "capped", args) as server:
        held = [open_slow(server, HALF_HEADERS) for _ in range(12)]

        def status() -> int:
            connection = http.client.HTTPConnection(*address(server), timeout=10)
            try:
                connection.request("GET", "/metrics")
                return connection.getresponse().status
            finally:
                connection.close()

        assert status() == 503
        wait_for(lambda: status() == 200, timeout=CLOSED_WITHIN)
        for sock in held:
            sock.close()


def test_a_body_cut_off_by_a_disconnect_is_not_run(guarded: ServerProcess) -> None:
    """The form's prefix is itself a valid request (without its DryRun): it must not run."""
    meant = (b"Action=CreateVolume&Version=2016-11-15&AvailabilityZone=sa-east-1a&Size=1"
             b"&DryRun=true")
    request = AWSRequest(method="POST", url=guarded.url + "/", data=meant, headers={
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"})
    SigV4Auth(Credentials("test", "test"), "ec2", "sa-east-1").add_auth(request)
    sock = socket.create_connection(address(guarded), timeout=10)
    sock.sendall(signed_head(guarded, request, len(meant)) + meant[: meant.index(b"&DryRun")])
    sock.close()
    ec2 = boto3.client("ec2", region_name="sa-east-1", endpoint_url=guarded.url,
                       aws_access_key_id="test", aws_secret_access_key="test",
                       config=NO_RETRIES)
    with pytest.raises(AssertionError):  # a cut-off request that ran shows within moments
        wait_for(lambda: bool(ec2.describe_volumes()["Volumes"]), timeout=3)


def test_a_stalled_upload_to_disk_gets_request_timeout(guarded: ServerProcess) -> None:
    """An S3 upload over max_body_bytes is spooled to a file as it arrives; one that stalls
    gets S3's 400 RequestTimeout like any slow body (it was a 500 from the server's own
    timeout escaping), and leaves no spool file behind."""
    declared = 2 * 1024 * 1024  # over the 1 MiB read into memory: spooled
    request = AWSRequest(method="PUT", url=guarded.url + "/stalled-bucket/stalled-key",
                         headers={"X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"})
    S3SigV4Auth(Credentials("test", "test"), "s3", "us-east-1").add_auth(request)
    sock = open_slow(guarded, signed_head(guarded, request, declared) + b"x" * 65536)
    replies = drain({sock: bytearray()}, time.monotonic() + CLOSED_WITHIN)
    assert len(replies) == 1, "the stalled upload's connection was not closed"
    assert replies[0].startswith(b"HTTP/1.1 400"), replies[0][:200]
    assert b"<Code>RequestTimeout</Code>" in replies[0]
    assert "Traceback" not in "".join(guarded.output)
    assert not list((guarded.data_dir / "s3" / "tmp").glob("spool-*"))
