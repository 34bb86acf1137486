"""Blocks as files under the data dir: `<root>/<first two hex digits>/<key>`.

Each put writes a temp file, fsyncs it, renames it into place and fsyncs the directory, so a
crash leaves the old state or the new. The 256-way fan-out keeps directories small. Temp
files live in `<root>/tmp`, so finding a crash's leftovers lists that directory only, never
the store.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

from snapferry.storage.blocks import BlockNotFound
from snapferry.storage.files import PRIVATE_DIR, make_private_dir, write_atomic

_KEY = re.compile(r"[0-9a-f]{64}")
TMP_DIR = "tmp"


class FileBlockStore:
    probe_before_put = True  # a stat; a put writes and fsyncs whatever is there
    def __init__(self, root: Path) -> None:
        self.root = root
        make_private_dir(root)
        self.tmp = root / TMP_DIR
        make_private_dir(self.tmp)
        self._root = str(root)
        self._made: set[str] = set()  # fan-out directories known to exist

    def _path(self, key: str) -> Path:
        if not _KEY.fullmatch(key):
            raise ValueError(f"not a block key: {key!r}")
        return self.root / key[:2] / key

    def put(self, key: str, data: bytes | bytearray) -> bool:
        path = self._path(key)
        if key[:2] not in self._made:  # one mkdir per fan-out directory, not one per put
            path.parent.mkdir(mode=PRIVATE_DIR, exist_ok=True)
            self._made.add(key[:2])
        write_atomic(path, data, tmp_dir=self.tmp)  # mode 0600
        return True

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            raise BlockNotFound(key) from None

    def exists(self, key: str) -> bool:
        if not _KEY.fullmatch(key):
            raise ValueError(f"not a block key: {key!r}")
        # A plain string, no Path objects: every block write asks twice.
        return os.path.exists(f"{self._root}/{key[:2]}/{key}")

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def discard_incomplete(self) -> int:
        """Temp files (`tmp/.<key>.<pid>.<random>.tmp`, see storage/files.py) whose writing
        process is gone."""
        removed = 0
        for path in self.tmp.glob(".*.tmp"):
            parts = path.name.split(".")
            pid = int(parts[2]) if len(parts) == 5 and parts[2].isdigit() else None
            if pid is not None and _alive(pid):
                continue
            path.unlink(missing_ok=True)
            removed += 1
        return removed

    def keys(self) -> Iterator[str]:
        for directory in self.root.iterdir():
            if directory.is_dir() and len(directory.name) == 2:
                for entry in os.scandir(directory):
                    if _KEY.fullmatch(entry.name):
                        yield entry.name


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
