"""`snapferry download snap-... DISK.img`: a snapshot becomes a raw disk image.

Blocks are fetched in parallel with GetSnapshotBlock and each is checked against the
SHA-256 the server sends with it; blocks the snapshot does not hold stay holes (the file is
sparse). The image is written beside its final name and renamed into place only when
complete and synced, so an interrupted download never leaves a file that looks whole.
A snapshot made by `snapferry upload` carries its image's byte length, and the download
gives back exactly that many bytes; other snapshots come back as the whole volume.
"""

from __future__ import annotations

import base64
import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from snapferry.disks.session import BLOCK, GIB, IMAGE_BYTES_TAG, ZERO_BLOCK, Target, progress_bar


class DownloadFailed(Exception):
    pass


@dataclass(frozen=True)
class Downloaded:
    size: int
    sha256: str
    blocks: int


def _block_tokens(ebs: Any, snapshot_id: str) -> tuple[int, dict[int, str]]:
    """The volume size in bytes, and block index -> block token for every block held."""
    tokens: dict[int, str] = {}
    args: dict[str, Any] = {"SnapshotId": snapshot_id, "MaxResults": 10000}
    while True:
        page = ebs.list_snapshot_blocks(**args)
        if page["BlockSize"] != BLOCK:
            raise DownloadFailed(f"{snapshot_id} has {page['BlockSize']}-byte blocks; "
                                 f"only {BLOCK} is understood.")
        tokens.update((block["BlockIndex"], block["BlockToken"]) for block in page["Blocks"])
        if not page.get("NextToken"):
            return page["VolumeSize"] * GIB, tokens
        args["NextToken"] = page["NextToken"]


def _image_bytes(target: Target, snapshot_id: str, volume_bytes: int) -> int:
    """The image length recorded by `snapferry upload`, else the whole volume."""
    ec2 = target.client("ec2")
    found = ec2.describe_snapshots(SnapshotIds=[snapshot_id])["Snapshots"]
    tags = {tag["Key"]: tag["Value"] for tag in (found[0].get("Tags", []) if found else [])}
    recorded = tags.get(IMAGE_BYTES_TAG, "")
    if recorded.isdigit() and 0 < int(recorded) <= volume_bytes:
        return int(recorded)
    return volume_bytes


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as image:
        while chunk := image.read(8 * 1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


def download(snapshot_id: str, path: Path, target: Target, whole_volume: bool = False,
             quiet: bool = False) -> Downloaded:
    ebs = target.client("ebs")
    volume_bytes, tokens = _block_tokens(ebs, snapshot_id)
    size = volume_bytes if whole_volume else _image_bytes(target, snapshot_id, volume_bytes)
    wanted = {index: token for index, token in tokens.items() if index * BLOCK < size}
    partial = path.with_name(path.name + ".snapferry-part")
    fd = os.open(partial, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.ftruncate(fd, size)  # holes wherever no block is written

        def fetch(item: tuple[int, str]) -> int:
            index, token = item
            response = ebs.get_snapshot_block(SnapshotId=snapshot_id, BlockIndex=index,
                                              BlockToken=token)
            data = response["BlockData"].read()
            digest = base64.b64encode(hashlib.sha256(data).digest()).decode()
            if len(data) != BLOCK or digest != response["Checksum"]:
                raise DownloadFailed(f"Block {index} of {snapshot_id} arrived damaged "
                                     "(its SHA-256 does not match); nothing was kept.")
            if data != ZERO_BLOCK:
                offset = index * BLOCK
                os.pwrite(fd, data[:size - offset], offset)
            return len(data)

        with progress_bar(f"download {snapshot_id}", len(wanted) * BLOCK, quiet) as advance, \
                ThreadPoolExecutor(target.threads) as pool:
            for moved in pool.map(fetch, sorted(wanted.items())):
                advance(moved)
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        partial.unlink(missing_ok=True)
        raise
    os.close(fd)
    os.replace(partial, path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
    return Downloaded(size, _file_sha256(path), len(wanted))
