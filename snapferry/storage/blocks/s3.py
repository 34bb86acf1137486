"""Blocks as objects in an S3-compatible bucket: `s3://bucket/prefix` -> `<prefix><key>`.

Each put is one whole-object PUT carrying its SHA-256 (`x-amz-checksum-sha256`), so the store
refuses a body damaged on the way, and a reader sees the whole object or none: there is no
temp object and nothing for a crash to leave half-written. Where the engine supports it the
PUT is a conditional create (`If-None-Match: *`): a key names its content, so an object
already there is the same block and is kept as it is. Encrypted blocks arrive here as
AES-GCM ciphertext and are stored as they are.

The service never lists the bucket (collection is driven by the database, see
storage/collector.py); `keys` exists for audits and tests. One boto3 client per process and
endpoint is shared by every thread (boto3 clients are thread-safe), with a connection pool
sized for the copy engine's I/O threads plus the request threads.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlparse

from snapferry.storage.blocks import BlockNotFound

_KEY = re.compile(r"[0-9a-f]{64}")
POOL_CONNECTIONS = 64
_clients: dict[tuple[str | None, str | None], Any] = {}
_clients_lock = threading.Lock()


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
                region_name=os.environ.get("SNAPFERRY_S3_REGION", "us-east-1"),
                config=Config(
                    s3={"addressing_style": "path"} if endpoint_url else {},
                    retries={"max_attempts": 5, "mode": "standard"},
                    max_pool_connections=POOL_CONNECTIONS, connect_timeout=5, read_timeout=30,
                    # A checksum only where we send one (the PUTs); not on every request.
                    request_checksum_calculation="when_required",
                    response_checksum_validation="when_required"),
                **credentials)
        return _clients[pid_key]


def _code(error: Exception) -> str:
    response = getattr(error, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def _status(error: Exception) -> int:
    response = getattr(error, "response", None) or {}
    return int(response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)


class S3BlockStore:
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

    def put(self, key: str, data: bytes | bytearray) -> None:
        name = self._name(key)
        data = bytes(data)  # botocore's body handling wants bytes; the network dominates here
        checksum = base64.b64encode(hashlib.sha256(data).digest()).decode()
        arguments: dict[str, Any] = {"Bucket": self.bucket, "Key": name, "Body": data,
                                     "ChecksumSHA256": checksum}
        if self.conditional:
            arguments["IfNoneMatch"] = "*"
        try:
            self.client.put_object(**arguments)
        except Exception as error:
            code = _code(error)
            if code in ("PreconditionFailed", "ConditionalRequestConflict") or (
                    _status(error) == 412):
                return  # already stored: the same block (keys name content)
            if self.conditional and (code == "NotImplemented" or _status(error) == 501):
                self.conditional = False
                self.put(key, data)
                return
            raise

    def get(self, key: str) -> bytes:
        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=self._name(key))
        except Exception as error:
            if _code(error) in ("NoSuchKey", "404") or _status(error) == 404:
                raise BlockNotFound(key) from None
            raise
        return bytes(answer["Body"].read())

    def exists(self, key: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=self._name(key))
        except Exception as error:
            if _status(error) == 404 or _code(error) in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
        return True

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
