"""Atomic file writes: temp file, fsync, rename, fsync of the directory. Private modes:
everything under the data dir is the server's alone (directories 0700, files 0600),
whatever the umask."""

from __future__ import annotations

import os
import stat
from pathlib import Path

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600


class ModeError(Exception):
    """A path that other local users can reach; the message says how to fix it."""


def make_private_dir(path: Path) -> None:
    """Create `path` (and missing parents) with mode 0700; an existing one is left as is."""
    path.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)


def check_private(path: Path) -> None:
    """Refuse a file or directory that its group or others may read, write or enter."""
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        wanted = PRIVATE_DIR if path.is_dir() else PRIVATE_FILE
        raise ModeError(
            f"{path} is open to other local users (mode {mode:o}); run: chmod {wanted:o} {path}"
        )


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes | bytearray | memoryview) -> None:
    """os.write until all of `data` is written: straight from the caller's buffer, where a
    buffered file object would copy a 512 KiB block once more. A short write (a signal, a
    pipe) continues from where it stopped, through a memoryview, again without a copy."""
    view = memoryview(data).cast("B")
    while view:
        written = os.write(fd, view)
        view = view[written:]


def write_atomic(path: Path, data: bytes | bytearray | memoryview, mode: int = PRIVATE_FILE,
                 replace: bool = True, tmp_dir: Path | None = None) -> bool:
    """Write `data` at `path` so a crash leaves the old file or the new one, never a torn one.

    With replace=False an existing file wins (no overwrite) and False is returned; two
    processes racing to create the same file then agree on one of them. `tmp_dir` (on the
    same file system) holds the temp file instead of `path`'s directory.
    """
    tmp = (tmp_dir or path.parent) / f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        try:
            _write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
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
