"""One settings object: where data lives, where to listen, what limits to enforce."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_PORT = 4747
DEFAULT_DATA_DIR = "./snapferry-data"


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    # Larger bodies are refused before they are read. The biggest legitimate body is an
    # EBS PutSnapshotBlock of 512 KiB; EC2 query bodies are far smaller.
    max_body_bytes: int = 1024 * 1024
    # None: SQLite in the data dir. Otherwise any SQLAlchemy URL (PostgreSQL at scale).
    database_url: str | None = None

    @classmethod
    def data_dir_from(cls, given: str | None) -> Path:
        return Path(given or os.environ.get("SNAPFERRY_DATA_DIR") or DEFAULT_DATA_DIR).resolve()
