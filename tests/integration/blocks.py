"""Writing and reading snapshot data through the EBS direct APIs, as a backup tool would."""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from snapferry.testing import stored_block_contents, stored_block_keys

BLOCK = 524288


def checksum(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def random_blocks(indexes: list[int]) -> dict[int, bytes]:
    return {index: os.urandom(BLOCK) for index in indexes}


def put(ebs: Any, snapshot_id: str, index: int, data: bytes, **overrides: Any) -> Any:
    args = {"SnapshotId": snapshot_id, "BlockIndex": index, "BlockData": data,
            "DataLength": len(data), "Checksum": checksum(data), "ChecksumAlgorithm": "SHA256"}
    return ebs.put_snapshot_block(**{**args, **overrides})


def put_all(ebs: Any, snapshot_id: str, blocks: dict[int, bytes], threads: int = 4) -> None:
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(lambda item: put(ebs, snapshot_id, *item), blocks.items()))


def aggregate(blocks: dict[int, bytes]) -> str:
    digest = hashlib.sha256(b"".join(hashlib.sha256(blocks[i]).digest() for i in sorted(blocks)))
    return base64.b64encode(digest.digest()).decode()


def write_snapshot(ebs: Any, blocks: dict[int, bytes], size_gib: int = 1,
                   parent: str | None = None, **start: Any) -> str:
    args: dict[str, Any] = {"VolumeSize": size_gib, **start}
    if parent:
        args["ParentSnapshotId"] = parent
    snapshot_id = ebs.start_snapshot(**args)["SnapshotId"]
    put_all(ebs, snapshot_id, blocks)
    status = ebs.complete_snapshot(SnapshotId=snapshot_id, ChangedBlocksCount=len(blocks),
                                   Checksum=aggregate(blocks), ChecksumAlgorithm="SHA256",
                                   ChecksumAggregationMethod="LINEAR")["Status"]
    assert status == "completed"
    return snapshot_id


def list_blocks(ebs: Any, snapshot_id: str, page: int = 100) -> dict[int, str]:
    """block index -> block token, walking every page."""
    tokens: dict[int, str] = {}
    args: dict[str, Any] = {"SnapshotId": snapshot_id, "MaxResults": page}
    while True:
        response = ebs.list_snapshot_blocks(**args)
        for block in response["Blocks"]:
            assert block["BlockIndex"] not in tokens
            tokens[block["BlockIndex"]] = block["BlockToken"]
        if not response.get("NextToken"):
            return tokens
        args["NextToken"] = response["NextToken"]


def read_digests(ebs: Any, snapshot_id: str, threads: int = 4) -> dict[int, str]:
    """block index -> SHA-256 hex of the data read back, checked against the header."""
    tokens = list_blocks(ebs, snapshot_id)

    def read(item: tuple[int, str]) -> tuple[int, str]:
        index, token = item
        response = ebs.get_snapshot_block(SnapshotId=snapshot_id, BlockIndex=index,
                                          BlockToken=token)
        data = response["BlockData"].read()
        assert response["Checksum"] == checksum(data) and response["DataLength"] == BLOCK
        return index, hashlib.sha256(data).hexdigest()

    with ThreadPoolExecutor(threads) as pool:
        return dict(pool.map(read, sorted(tokens.items())))


def digests(blocks: dict[int, bytes]) -> dict[int, str]:
    return {index: hashlib.sha256(data).hexdigest() for index, data in blocks.items()}


def changed_indexes(ebs: Any, first: str | None, second: str) -> list[int]:
    args: dict[str, Any] = {"SecondSnapshotId": second, "MaxResults": 100}
    if first:
        args["FirstSnapshotId"] = first
    found: list[int] = []
    while True:
        response = ebs.list_changed_blocks(**args)
        found.extend(block["BlockIndex"] for block in response["ChangedBlocks"])
        if not response.get("NextToken"):
            return found
        args["NextToken"] = response["NextToken"]


def stored_objects(data_dir: Any) -> int:
    """Block objects in the data dir's block store (not the temp files of puts in flight):
    files in the data dir, or objects in its bucket on the scale-out backend."""
    return len(stored_block_keys(data_dir))


def stored_bytes(data_dir: Any) -> Iterator[tuple[str, bytes]]:
    """(where, bytes) of every file in the data dir and, on the scale-out backend, of every
    object in its bucket: where a plaintext block must never be found."""
    for path in data_dir.rglob("*"):
        if path.is_file():
            yield str(path), path.read_bytes()
    yield from stored_block_contents(data_dir)
