"""The S3 block store's hot calls (storage/blocks/s3wire.py) against a real SeaweedFS that
checks signatures (an IAM configuration with one key), and its retries against a loopback
HTTP server that fails on purpose."""

from __future__ import annotations

import base64
import hashlib
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import pytest
from botocore.config import Config
from urllib3.exceptions import ReadTimeoutError

from snapferry.localengines import LocalSeaweed
from snapferry.storage.blocks import BlockNotFound
from snapferry.storage.blocks.s3 import S3BlockStore
from snapferry.storage.blocks.s3wire import Credentials, S3Error, S3Wire
from snapferry.storage.engines import unavailable

KEY_ID, SECRET = "blockwriter", "block-secret-0123456789"
BUCKET = "blocks"
HANG = -1


def boto(weed: LocalSeaweed) -> Any:
    """A boto3 client of the same store, to look at what the block store wrote."""
    return boto3.client("s3", endpoint_url=weed.endpoint, region_name="us-east-1",
                        aws_access_key_id=KEY_ID, aws_secret_access_key=SECRET,
                        config=Config(s3={"addressing_style": "path"}))


@pytest.fixture(scope="module")
def weed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalSeaweed]:
    started = LocalSeaweed(tmp_path_factory.mktemp("weed"), credentials={KEY_ID: SECRET})
    started.start()
    boto(started).create_bucket(Bucket=BUCKET)
    yield started
    started.destroy()


@pytest.fixture
def store(weed: LocalSeaweed, monkeypatch: pytest.MonkeyPatch) -> S3BlockStore:
    monkeypatch.setenv("SNAPFERRY_S3_ACCESS_KEY_ID", KEY_ID)
    monkeypatch.setenv("SNAPFERRY_S3_SECRET_ACCESS_KEY", SECRET)
    return S3BlockStore(f"s3://{BUCKET}/t{os.urandom(4).hex()}", weed.endpoint)


def block(size: int = 64 * 1024) -> tuple[str, bytes]:
    data = os.urandom(size)
    return hashlib.sha256(data).hexdigest(), data


def wire_for(endpoint: str, key_id: str = KEY_ID, secret: str = SECRET,
             attempts: int = 5) -> S3Wire:
    fixed = Credentials(key_id, secret)
    return S3Wire(endpoint, "us-east-1", lambda: fixed, 4, 2, 5, attempts)


def test_round_trip_carries_and_stores_the_sha256(store: S3BlockStore,
                                                  weed: LocalSeaweed) -> None:
    key, data = block()
    assert not store.exists(key)
    store.put(key, data)
    assert store.exists(key)
    assert store.get(key) == data
    assert list(store.keys()) == [key]
    stored = boto(weed).head_object(Bucket=BUCKET, Key=store.prefix + key,
                                    ChecksumMode="ENABLED")
    assert stored["ChecksumSHA256"] == base64.b64encode(hashlib.sha256(data).digest()).decode()


def test_a_body_that_does_not_match_its_checksum_is_refused(store: S3BlockStore) -> None:
    key, data = block()
    damaged = data[:-1] + bytes([data[-1] ^ 1])
    with pytest.raises(S3Error) as refused:
        store.wire.put_object(store.bucket, store.prefix + key, damaged,
                              hashlib.sha256(data).digest(), if_none_match=True)
    assert 400 <= refused.value.status < 500
    assert not unavailable(refused.value)  # a refusal, not an outage to wait out
    assert not store.exists(key)


def test_a_conditional_create_keeps_the_stored_object(store: S3BlockStore) -> None:
    key, first = block()
    assert store.put(key, first) is True
    # The 412 is "already stored", not an error; False tells the copier it moved nothing.
    assert store.put(key, os.urandom(len(first))) is False
    assert store.conditional  # the engine honoured If-None-Match: no fallback learnt
    assert store.get(key) == first


def test_a_missing_object(store: S3BlockStore) -> None:
    key, _ = block()
    assert not store.exists(key)
    with pytest.raises(BlockNotFound):
        store.get(key)
    store.delete(key)  # idempotent


@pytest.mark.parametrize(("key_id", "secret"), [(KEY_ID, "not-the-secret"),
                                                ("nobody", SECRET)])
def test_wrong_credentials_are_a_clear_error(weed: LocalSeaweed, key_id: str,
                                             secret: str) -> None:
    wire = wire_for(weed.endpoint, key_id, secret)
    key, data = block(1024)
    for call in (lambda: wire.get_object(BUCKET, key),
                 lambda: wire.put_object(BUCKET, key, data, hashlib.sha256(data).digest(),
                                         if_none_match=True)):
        with pytest.raises(S3Error) as refused:
            call()
        assert refused.value.status == 403
        assert refused.value.code in ("SignatureDoesNotMatch", "InvalidAccessKeyId",
                                      "AccessDenied")
        assert refused.value.code in str(refused.value)
        assert f"s3://{BUCKET}/{key}" in str(refused.value)
        assert not unavailable(refused.value)
    with pytest.raises(S3Error) as refused:
        wire.head_object(BUCKET, key)  # a HEAD's refusal has no body: named by its status
    assert refused.value.status == 403


class Flaky:
    """A loopback HTTP server answering each request with the next scripted reply: a status
    (with an S3 error body), None to drop the connection unanswered, or HANG to answer
    nothing until the test is over."""

    def __init__(self, script: list[int | None], body: bytes) -> None:
        self.script, self.body = list(script), body
        self.seen: list[str] = []
        self.conditions: list[str | None] = []  # each request's If-None-Match
        self.over = threading.Event()
        flaky = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                flaky.seen.append(self.headers.get("authorization", ""))
                flaky.conditions.append(self.headers.get("if-none-match"))
                self.rfile.read(int(self.headers.get("content-length") or 0))
                status = flaky.script.pop(0) if flaky.script else 200
                if status == HANG:
                    flaky.over.wait(30)
                    return
                if status is None:
                    self.close_connection = True
                    self.connection.close()
                    return
                body = flaky.body if status == 200 else (
                    b"<Error><Code>ServiceUnavailable</Code><Message>try again</Message>"
                    b"</Error>" if status >= 500 else
                    b"<Error><Code>InvalidRequest</Code><Message>no</Message></Error>")
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_PUT = do_GET

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __exit__(self, *_: object) -> None:
        self.over.set()
        self.server.shutdown()
        self.server.server_close()


def test_a_5xx_and_a_dropped_connection_are_retried() -> None:
    flaky = Flaky([503, None], b"the block")
    with flaky as endpoint:
        assert wire_for(endpoint).get_object(BUCKET, "k") == b"the block"
    assert len(flaky.seen) == 3
    assert all(seen.startswith("AWS4-HMAC-SHA256 Credential=") for seen in flaky.seen)


def test_retries_give_up_with_the_stores_error() -> None:
    flaky = Flaky([503, 503], b"")
    with flaky as endpoint, pytest.raises(S3Error) as failed:
        wire_for(endpoint, attempts=2).get_object(BUCKET, "k")
    assert (failed.value.status, failed.value.code) == (503, "ServiceUnavailable")
    assert len(flaky.seen) == 2
    assert unavailable(failed.value)  # an outage: a copy is handed back, a request 503s


def test_a_4xx_is_not_retried() -> None:
    flaky = Flaky([400], b"never")
    with flaky as endpoint, pytest.raises(S3Error) as failed:
        wire_for(endpoint).get_object(BUCKET, "k")
    assert failed.value.code == "InvalidRequest"
    assert len(flaky.seen) == 1


def test_a_store_that_does_not_answer_times_out_and_is_retried() -> None:
    flaky = Flaky([HANG, HANG], b"")
    fixed = Credentials(KEY_ID, SECRET)
    with flaky as endpoint, pytest.raises(ReadTimeoutError) as failed:
        S3Wire(endpoint, "us-east-1", lambda: fixed, 4, connect_timeout=2, read_timeout=0.5,
               max_attempts=2).get_object(BUCKET, "k")
    assert len(flaky.seen) == 2
    assert unavailable(failed.value)  # an outage: a copy is handed back, a request 503s


def test_an_engine_without_conditional_writes_gets_plain_puts(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SNAPFERRY_S3_ACCESS_KEY_ID", KEY_ID)
    monkeypatch.setenv("SNAPFERRY_S3_SECRET_ACCESS_KEY", SECRET)
    flaky = Flaky([501], b"")
    with flaky as endpoint:
        store = S3BlockStore(f"s3://{BUCKET}", endpoint)
        key, data = block(1024)
        assert store.put(key, data) is True  # the 501 is learnt from, not retried
        assert not store.conditional
        assert store.put(key, data) is True
    assert flaky.conditions == ["*", None, None]
