"""Write an instance-store image bundle from a raw disk image, as `ec2-bundle-image` would
lay it out (ec2-ami-tools is not available): the image gzip-compressed and cut into parts
(`<name>.part.0`, `.part.1`, ...), and `<name>.manifest.xml` naming each part's SHA-1.

Unlike ec2-bundle-image the parts are not encrypted to EC2's certificate nor is the manifest
signed (snapferry holds neither key); `cat <name>.part.* | gunzip` gives the image back.

    python -m snapferry.disks.bundle DISK.img OUT_DIR [--name NAME] [--part-size BYTES]
    then: aws s3 cp OUT_DIR s3://bucket/prefix/ --recursive
          aws ec2 register-image --image-location bucket/prefix/NAME.manifest.xml --name ...
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import sys
from pathlib import Path
from xml.sax.saxutils import escape

from snapferry.domain.bundles import MANIFEST_VERSION

DEFAULT_PART_SIZE = 10 * 1024 * 1024  # ec2-bundle-image's


def write_bundle(image: Path, out_dir: Path, name: str | None = None,
                 part_size: int = DEFAULT_PART_SIZE, architecture: str = "x86_64",
                 account_id: str = "000000000000") -> Path:
    """Write the parts and the manifest into `out_dir`; returns the manifest's path."""
    name = name or image.name
    out_dir.mkdir(parents=True, exist_ok=True)
    compressed = out_dir / f".{name}.gz.tmp"
    whole = hashlib.sha1()
    with open(image, "rb") as source, gzip.open(compressed, "wb") as sink:
        while piece := source.read(1024 * 1024):
            whole.update(piece)
            sink.write(piece)
    parts: list[tuple[str, str]] = []
    with open(compressed, "rb") as source:
        while piece := source.read(part_size):
            filename = f"{name}.part.{len(parts)}"
            (out_dir / filename).write_bytes(piece)
            parts.append((filename, hashlib.sha1(piece).hexdigest()))
    bundled = compressed.stat().st_size
    compressed.unlink()
    listed = "".join(
        f'<part index="{i}"><filename>{escape(f)}</filename>'
        f'<digest algorithm="SHA1">{d}</digest></part>' for i, (f, d) in enumerate(parts))
    manifest = (
        f'<?xml version="1.0" ?><manifest><version>{MANIFEST_VERSION}</version>'
        f"<bundler><name>snapferry</name><version>1</version><release>1</release></bundler>"
        f"<machine_configuration><architecture>{escape(architecture)}</architecture>"
        f"<block_device_mapping><mapping><virtual>ami</virtual><device>sda1</device></mapping>"
        f"<mapping><virtual>root</virtual><device>/dev/sda1</device></mapping>"
        f"<mapping><virtual>ephemeral0</virtual><device>sdb</device></mapping>"
        f"</block_device_mapping></machine_configuration>"
        f"<image><name>{escape(name)}</name><user>{escape(account_id)}</user>"
        f"<type>machine</type><digest algorithm=\"SHA1\">{whole.hexdigest()}</digest>"
        f"<size>{image.stat().st_size}</size><bundled_size>{bundled}</bundled_size>"
        f'<parts count="{len(parts)}">{listed}</parts></image></manifest>')
    path = out_dir / f"{name}.manifest.xml"
    path.write_text(manifest)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m snapferry.disks.bundle",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("image", type=Path)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--name")
    parser.add_argument("--part-size", type=int, default=DEFAULT_PART_SIZE)
    parser.add_argument("--architecture", default="x86_64")
    parser.add_argument("--account-id", default="000000000000")
    args = parser.parse_args(argv)
    if not args.image.is_file() or args.part_size < 1:
        print(f"{args.image} is not a file (or --part-size is below 1)", file=sys.stderr)
        return 2
    print(write_bundle(args.image, args.out_dir, args.name, args.part_size, args.architecture,
                       args.account_id))
    return 0


if __name__ == "__main__":
    sys.exit(main())
