"""Which disk image format a file is, by its magic bytes: only raw images can be uploaded
block for block, and a user holding a qcow2 or a VMDK should be told how to convert it."""

from __future__ import annotations

import os
from pathlib import Path

# (format, offset, magic); a negative offset counts from the end of the file.
_MAGIC = (
    ("qcow2", 0, b"QFI\xfb"),
    ("vmdk", 0, b"KDMV"),
    ("vmdk", 0, b"# Disk DescriptorFile"),
    ("vhdx", 0, b"vhdxfile"),
    ("vdi", 64, b"\x7f\x10\xda\xbe"),
    ("vpc", 0, b"conectix"),  # a dynamic VHD carries its footer at the start too
    ("vpc", -512, b"conectix"),  # a fixed VHD only at the end
)


class NotRawImage(Exception):
    """The file is a disk image in a format other than raw."""


def detect(path: Path) -> str | None:
    """The image format named as qemu-img names it, or None for raw (or unknown) data."""
    size = path.stat().st_size
    with path.open("rb") as image:
        for name, offset, magic in _MAGIC:
            at = offset if offset >= 0 else size + offset
            if at < 0 or at + len(magic) > size:
                continue
            image.seek(at, os.SEEK_SET)
            if image.read(len(magic)) == magic:
                return name
    return None


def require_raw(path: Path) -> None:
    found = detect(path)
    if found is not None:
        raise NotRawImage(
            f"{path} is a {found} image; snapferry uploads raw images only. Convert it "
            f"first: qemu-img convert -f {found} -O raw {path} {path.with_suffix('.raw')}")
