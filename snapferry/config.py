"""One settings object: where data lives, where to listen, what limits to enforce."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_PORT = 4747
DEFAULT_DATA_DIR = "./snapferry-data"


MIB = 1024 * 1024


@dataclass(frozen=True)
class CopySettings:
    """The copy engine's knobs (CopySnapshot)."""

    # AWS's quota: snapshot copies in flight per account and destination region.
    quota: int = 20
    # AWS's quota: image copies in flight per account and destination region.
    image_quota: int = 100
    # Worker threads inside `snapferry serve` (0: leave copies to `snapferry worker`).
    workers: int = 2
    # An operator's cap on every copy, bytes/s (None: as fast as the disk goes). Tests use
    # it to make copies slow enough to interrupt.
    rate_limit: int | None = None
    # Time-based copies, as AWS documents them: per copy and per source/destination pair.
    time_based_copy_rate: int = 500 * MIB
    time_based_pair_rate: int = 2000 * MIB
    # A minimum duration for every copy, in seconds per GiB of blocks it walks (None: as fast
    # as the disk goes). Fault rules may ask for a slower pace (domain/faults.py).
    min_seconds_per_gib: float | None = None
    # A worker that stops renewing its lease for this long is presumed dead.
    lease_seconds: float = 10.0


@dataclass(frozen=True)
class ImageSettings:
    """Machine image rules an operator sets per deployment."""

    # Regions that run no paravirtual (PV) guests: RegisterImage and CopyImage of a PV
    # image there are refused (AWS: every region opened since about 2014). Empty: PV works
    # everywhere, as the model's defaults (RegisterImage defaults to paravirtual) expect.
    no_paravirtual_regions: frozenset[str] = frozenset()


@dataclass(frozen=True)
class ConnectionSettings:
    """What one client may hold of the server (README, "Connections")."""

    # Seconds from a connection's start (or a kept-alive request's first byte) to the end
    # of the request's headers; a slower connection is closed.
    header_timeout: float = 10.0
    # Seconds from the end of the headers to the end of the body (1 MiB at 35 KB/s); a
    # slower request is answered RequestTimeout and its connection closed.
    body_timeout: float = 30.0
    # Seconds an idle kept-alive connection stays open (uvicorn's default).
    keep_alive_timeout: float = 5.0
    # Open connections (or requests in progress) past which new requests get 503. Each
    # takes a file descriptor: keep it below `ulimit -n`.
    max_connections: int = 512


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    # Larger bodies are refused before they are read. The biggest legitimate body is an
    # EBS PutSnapshotBlock of 512 KiB; EC2 query bodies are far smaller.
    max_body_bytes: int = 1024 * 1024
    # None: SQLite in the data dir. Otherwise any SQLAlchemy URL (PostgreSQL at scale:
    # postgresql+psycopg://user:password@host/database).
    database_url: str | None = None
    # None: files under the data dir. `s3://bucket` or `s3://bucket/prefix`: an S3-compatible
    # object store at `s3_endpoint_url` (None: AWS's own, from the usual boto3 settings).
    block_store: str | None = None
    s3_endpoint_url: str | None = None
    copies: CopySettings = field(default_factory=lambda: CopySettings())
    connections: ConnectionSettings = field(default_factory=lambda: ConnectionSettings())
    images: ImageSettings = field(default_factory=lambda: ImageSettings())
    # A writer's intent older than this, with no block row, marks an abandoned object
    # (storage/manifests.py). Any value is safe; the crash harness uses a short one.
    orphan_grace_seconds: float = 3600.0
    # S3 virtual-host addressing: a request to `<bucket>.<s3_domain>[:port]` names a bucket.
    s3_domain: str = "localhost"
    # S3 request bodies (objects, parts) are spooled to disk, not held in memory; past this
    # size they are refused (5 GiB, S3's single-PUT limit, plus aws-chunked framing).
    max_s3_body_bytes: int = 5 * 1024**3 + 64 * 1024**2

    @staticmethod
    def engine_option(given: str | None, variable: str) -> str | None:
        """A flag, else its SNAPFERRY_* environment variable, else None ("" counts as None)."""
        return given or os.environ.get(variable) or None

    @classmethod
    def data_dir_from(cls, given: str | None) -> Path:
        return Path(given or os.environ.get("SNAPFERRY_DATA_DIR") or DEFAULT_DATA_DIR).resolve()
