"""Atomic file writes: temp file, fsync, rename, fsync of the directory."""

from __future__ import annotations

import os
from pathlib import Path


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes, mode: int = 0o644, replace: bool = True,
                 tmp_dir: Path | None = None) -> bool:
    """Write `data` at `path` so a crash leaves the old file or the new one, never a torn one.

    With replace=False an existing file wins (no overwrite) and False is returned; two
    processes racing to create the same file then agree on one of them. `tmp_dir` (on the
    same file system) holds the temp file instead of `path`'s directory.
    """
    tmp = (tmp_dir or path.parent) / f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if replace:
            os.replace(tmp, path)
            created = True
        else:
            try:
                os.link(tmp, path)
                created = True
            except FileExistsError:
                created = False
            os.unlink(tmp)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
    return created
