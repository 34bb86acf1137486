"""The bodies of S3 objects and parts: one immutable file each under `<data dir>/s3/objects`,
named by a random id that a metadata row refers to.

Promises:
- `ObjectWriter.commit` makes the file whole on disk (written to a temp file, fsynced,
  renamed, directory fsynced) before it returns its id; a crash before that leaves only a
  temp file in `s3/tmp`, which no row names and `sweep_tmp` removes.
- A file is never changed after commit. Replacing an object writes a new file, points the
  row at it in one transaction, then deletes the old file: a reader holding the old id
  either reads the old bytes whole or finds it gone (`ObjectGone`), never a mix.
- A file whose row was never written (a crash between commit and the transaction) costs
  space, never data: nothing reads a file no row names.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from snapferry.storage.files import PRIVATE_FILE, fsync_dir, make_private_dir

PIECE = 1024 * 1024


class ObjectGone(Exception):
    """The file was deleted (its object replaced or removed) under a reader."""


class ObjectWriter:
    """A new file being written; `commit` makes it whole, `discard` drops it."""

    def __init__(self, files: ObjectFiles) -> None:
        self.files = files
        self.file_id = os.urandom(16).hex()
        self.tmp = files.tmp_dir / f"{self.file_id}.part"
        fd = os.open(self.tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
        self.handle: BinaryIO = os.fdopen(fd, "wb")

    def write(self, data: bytes) -> None:
        self.handle.write(data)

    def commit(self) -> str:
        self.handle.flush()
        os.fsync(self.handle.fileno())
        self.handle.close()
        final = self.files.path(self.file_id)
        make_private_dir(final.parent)
        os.replace(self.tmp, final)
        fsync_dir(final.parent)
        return self.file_id

    def discard(self) -> None:
        with contextlib.suppress(OSError):
            self.handle.close()
        self.tmp.unlink(missing_ok=True)

    def __enter__(self) -> ObjectWriter:
        return self

    def __exit__(self, kind: object, *rest: object) -> None:
        if kind is not None:
            self.discard()


class ObjectFiles:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.tmp_dir = root / "tmp"
        make_private_dir(self.tmp_dir)
        make_private_dir(root / "objects")

    def path(self, file_id: str) -> Path:
        return self.root / "objects" / file_id[:2] / file_id

    def writer(self) -> ObjectWriter:
        return ObjectWriter(self)

    def adopt(self, spooled: Path) -> str:
        """Make a spooled request body (already in `tmp_dir`) an object file, by rename."""
        file_id = os.urandom(16).hex()
        with open(spooled, "rb+") as handle:
            os.fsync(handle.fileno())
        final = self.path(file_id)
        make_private_dir(final.parent)
        os.replace(spooled, final)
        fsync_dir(final.parent)
        return file_id

    def read(self, file_id: str, start: int = 0, length: int | None = None) -> Iterator[bytes]:
        """The file's bytes from `start`, `length` of them (all when None), piece by piece.
        Opened now, so a later delete does not cut the stream short."""
        try:
            handle = open(self.path(file_id), "rb")  # noqa: SIM115 - closed by the generator
        except FileNotFoundError:
            raise ObjectGone(file_id) from None
        handle.seek(start)

        def pieces() -> Iterator[bytes]:
            with handle:
                remaining = length
                while remaining is None or remaining > 0:
                    piece = handle.read(PIECE if remaining is None else min(PIECE, remaining))
                    if not piece:
                        return
                    if remaining is not None:
                        remaining -= len(piece)
                    yield piece

        return pieces()

    def copy_into(self, file_id: str, writer: ObjectWriter, start: int = 0,
                  length: int | None = None) -> None:
        for piece in self.read(file_id, start, length):
            writer.write(piece)

    def open(self, file_id: str) -> BinaryIO:
        try:
            return open(self.path(file_id), "rb")
        except FileNotFoundError:
            raise ObjectGone(file_id) from None

    def delete(self, file_id: str) -> None:
        self.path(file_id).unlink(missing_ok=True)

    def sweep_tmp(self) -> None:
        """Drop temp files a crashed process left (call only when no request is running)."""
        shutil.rmtree(self.tmp_dir, ignore_errors=True)
        make_private_dir(self.tmp_dir)
