"""Blocks as objects in an S3-compatible bucket: `s3://bucket/prefix` -> `<prefix><key>`.

Each put is one whole-object PUT carrying its SHA-256 (`x-amz-checksum-sha256`), so the store
refuses a body damaged on the way, and a reader sees the whole object or none: there is no
temp object and nothing for a crash to leave half-written. Where the engine supports it the
PUT is a conditional create (`If-None-Match: *`): a key names its content, so an object
already there is the same block and is kept as it is. Encrypted blocks arrive here as
AES-GCM ciphertext and are stored as they are.

The service never lists the bucket (collection is driven by the database, see
storage/collector.py); `keys` exists for audits and tests. The hot calls (GET, HEAD, PUT of a
block) go through blocks/s3wire.py, a small signer on a pooled urllib3 PoolManager; the rest
(DELETE, listing) through boto3. One of each per process and endpoint, shared by every thread,
with connection pools sized for the copy engine's I/O threads plus the request threads.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlparse

from snapferry.storage.blocks import BlockNotFound
from snapferry.storage.blocks.s3wire import Credentials, S3Error, S3Wire

_KEY = re.compile(r"[0-9a-f]{64}")
POOL_CONNECTIONS = 64
CONNECT_TIMEOUT, READ_TIMEOUT = 5, 30
_clients: dict[tuple[str | None, str | None], Any] = {}
_wires: dict[tuple[str | None, str | None], S3Wire] = {}
_clients_lock = threading.Lock()


def _region() -> str:
    return os.environ.get("SNAPFERRY_S3_REGION", "us-east-1")


def _credentials() -> Callable[[], Credentials]:
    """How the wire client finds its key: SNAPFERRY_S3_ACCESS_KEY_ID and
    SNAPFERRY_S3_SECRET_ACCESS_KEY when set, else botocore's usual chain (environment,
    profile, instance role), asked on each request so a role's rotating key is followed."""
    key_id = os.environ.get("SNAPFERRY_S3_ACCESS_KEY_ID")
    if key_id:
        fixed = Credentials(key_id, os.environ.get("SNAPFERRY_S3_SECRET_ACCESS_KEY", ""))
        return lambda: fixed
    import botocore.session

    found = botocore.session.get_session().get_credentials()
    if found is None:
        raise RuntimeError("no S3 credentials: set SNAPFERRY_S3_ACCESS_KEY_ID and "
                           "SNAPFERRY_S3_SECRET_ACCESS_KEY, or AWS credentials")

    def current() -> Credentials:
        frozen = found.get_frozen_credentials()
        return Credentials(frozen.access_key, frozen.secret_key, frozen.token)

    return current


def _wire(endpoint_url: str | None) -> S3Wire:
    """The process's wire client for this endpoint (a fork gets its own pool)."""
    pid_key = (endpoint_url, f"{os.getpid()}:{os.environ.get('SNAPFERRY_S3_ACCESS_KEY_ID')}")
    with _clients_lock:
        if pid_key not in _wires:
            _wires[pid_key] = S3Wire(endpoint_url, _region(), _credentials(),
                                     POOL_CONNECTIONS, CONNECT_TIMEOUT, READ_TIMEOUT)
        return _wires[pid_key]


def _client(endpoint_url: str | None) -> Any:
    """The process's client for this endpoint. Credentials: SNAPFERRY_S3_ACCESS_KEY_ID and
    SNAPFERRY_S3_SECRET_ACCESS_KEY when set, else boto3's usual chain (environment, profile,
    instance role)."""
    key_id = os.environ.get("SNAPFERRY_S3_ACCESS_KEY_ID")
    pid_key = (endpoint_url, f"{os.getpid()}:{key_id}")
    with _clients_lock:
        if pid_key not in _clients:
            import boto3
            from botocore.config import Config

            credentials = ({"aws_access_key_id": key_id,
                            "aws_secret_access_key": os.environ.get(
                                "SNAPFERRY_S3_SECRET_ACCESS_KEY", "")}
                           if key_id else {})
            _clients[pid_key] = boto3.session.Session().client(
                "s3", endpoint_url=endpoint_url,
                region_name=_region(),
                config=Config(
                    s3={"addressing_style": "path"} if endpoint_url else {},
                    retries={"max_attempts": 5, "mode": "standard"},
                    max_pool_connections=POOL_CONNECTIONS, connect_timeout=CONNECT_TIMEOUT,
                    read_timeout=READ_TIMEOUT,
                    # A checksum only where we send one (the PUTs); not on every request.
                    request_checksum_calculation="when_required",
                    response_checksum_validation="when_required"),
                **credentials)
        return _clients[pid_key]


class S3BlockStore:
    # The PUT is a conditional create: an object already there is kept, and the 412 says
    # so, so no HEAD goes before it (on an engine without If-None-Match the PUT rewrites the
    # same content: harmless, and rare, as writers skip blocks the database knows).
    probe_before_put = False

    def __init__(self, location: str, endpoint_url: str | None = None) -> None:
        parsed = urlparse(location)
        if parsed.scheme != "s3" or not parsed.netloc:
            raise ValueError(f"a block store is s3://bucket[/prefix], not {location!r}")
        self.bucket = parsed.netloc
        prefix = parsed.path.strip("/")
        self.prefix = f"{prefix}/" if prefix else "blocks/"
        self.endpoint_url = endpoint_url
        # Learnt on the first refusal: an engine without conditional writes answers 501.
        self.conditional = True

    @property
    def client(self) -> Any:
        return _client(self.endpoint_url)

    def _name(self, key: str) -> str:
        if not _KEY.fullmatch(key):
            raise ValueError(f"not a block key: {key!r}")
        return self.prefix + key

    @property
    def wire(self) -> S3Wire:
        return _wire(self.endpoint_url)

    def put(self, key: str, data: bytes | bytearray) -> bool:
        name = self._name(key)
        try:
            self.wire.put_object(self.bucket, name, data, hashlib.sha256(data).digest(),
                                 if_none_match=self.conditional)
        except S3Error as error:
            if error.code in ("PreconditionFailed", "ConditionalRequestConflict") or (
                    error.status == 412):
                return False  # already stored: the same block (keys name content)
            if self.conditional and (error.code == "NotImplemented" or error.status == 501):
                self.conditional = False
                return self.put(key, data)
            raise
        return True

    def get(self, key: str) -> bytes:
        try:
            return self.wire.get_object(self.bucket, self._name(key))
        except S3Error as error:
            if error.code in ("NoSuchKey", "404") or error.status == 404:
                raise BlockNotFound(key) from None
            raise

    def exists(self, key: str) -> bool:
        return self.wire.head_object(self.bucket, self._name(key))

    def delete(self, key: str) -> None:
        # S3's DELETE of a missing key succeeds: idempotent as the contract asks.
        self.client.delete_object(Bucket=self.bucket, Key=self._name(key))

    def keys(self) -> Iterator[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.prefix)
        for page in pages:
            for entry in page.get("Contents", []):
                key = entry["Key"][len(self.prefix):]
                if _KEY.fullmatch(key):
                    yield key

    def discard_incomplete(self) -> int:
        """Nothing: every object is written by one PUT, which the store makes whole or not at
        all (no multipart uploads, no temp objects). Start-up lists nothing."""
        return 0
