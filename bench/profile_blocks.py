"""Where the server's CPU goes on PutSnapshotBlock and GetSnapshotBlock, without the network.

    python -m bench.profile_blocks [BLOCKS] [--profile]

botocore signs real requests (the client's cost is paid before the clock starts); they are
handed to `Dispatcher.handle` in this process, one after another, and the CPU time
(`time.process_time`, this process only) per call is printed. With --profile, cProfile's
cumulative table of the puts follows. The gap to bench.blocks' server CPU per block is
uvicorn receiving and sending the body.
"""

from __future__ import annotations

import base64
import cProfile
import hashlib
import json
import os
import pstats
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from snapferry.config import Settings
from snapferry.server import Dispatcher
from snapferry.storage.blocks.fs import FileBlockStore
from snapferry.storage.datadir import open_storage
from snapferry.testing import SignedRequests
from snapferry.wire.http import IncomingRequest

BLOCK = 512 * 1024
DEFAULT_BLOCKS = 256


def cpu() -> tuple[float, float]:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime, usage.ru_stime


def per_call(work: Callable[[], Any], count: int) -> tuple[float, float, Any]:
    """User and system CPU seconds per call of `work` (which makes `count` calls)."""
    user, system = cpu()
    result = work()
    user_after, system_after = cpu()
    return (user_after - user) / count, (system_after - system) / count, result


def run(dispatcher: Dispatcher, requests: list[IncomingRequest]) -> tuple[float, float, Any]:
    return per_call(lambda: [dispatcher.handle(request) for request in requests], len(requests))


def floor(blocks: list[bytes], root: Path) -> str:
    """The same run's floor: SHA-256 of each block and FileBlockStore.put of it."""
    store = FileBlockStore(root)
    user, system, _ = per_call(lambda: [hashlib.sha256(b).digest() for b in blocks], len(blocks))
    put_user, put_system, _ = per_call(
        lambda: [store.put(hashlib.sha256(b).hexdigest(), b) for b in blocks], len(blocks))
    return (f"floor     SHA-256 {(user + system) * 1e3:5.2f} ms, SHA-256 + FileBlockStore.put "
            f"{(put_user + put_system) * 1e3:5.2f} ms (user {put_user * 1e3:.2f} + system "
            f"{put_system * 1e3:.2f})")


def main(argv: list[str]) -> int:
    sort = "tottime" if "--tottime" in argv else "cumulative"
    count = int(next((a for a in argv if a.isdigit()), DEFAULT_BLOCKS))
    capture = SignedRequests()
    with tempfile.TemporaryDirectory(prefix="snapferry-profile-blocks-") as tmp:
        settings = Settings(data_dir=Path(tmp))
        storage = open_storage(settings)
        try:
            dispatcher = Dispatcher(storage, settings)
            for label, encrypted in (("plain", False), ("encrypted", True)):
                start = dispatcher.handle(capture.request(
                    "start_snapshot", VolumeSize=1, Encrypted=encrypted))
                assert start.status in (200, 201), start.body
                snapshot_id = json.loads(start.body)["SnapshotId"]
                blocks = [os.urandom(BLOCK) for _ in range(count)]
                puts = [capture.request(
                    "put_snapshot_block", SnapshotId=snapshot_id, BlockIndex=index,
                    BlockData=data, DataLength=BLOCK, ChecksumAlgorithm="SHA256",
                    Checksum=base64.b64encode(hashlib.sha256(data).digest()).decode())
                    for index, data in enumerate(blocks)]
                wanted = "--profile" in argv and not encrypted
                profile = cProfile.Profile(time.process_time) if wanted else None
                if profile:
                    profile.enable()
                put_user, put_sys, responses = run(dispatcher, puts)
                if profile:
                    profile.disable()
                assert all(r.status == 201 or r.status == 200 for r in responses), \
                    responses[0].body
                done = dispatcher.handle(capture.request(
                    "complete_snapshot", SnapshotId=snapshot_id, ChangedBlocksCount=count))
                assert done.status in (200, 202), done.body
                listing = dispatcher.handle(capture.request(
                    "list_snapshot_blocks", SnapshotId=snapshot_id))
                tokens = {b["BlockIndex"]: b["BlockToken"]
                          for b in json.loads(listing.body)["Blocks"]}
                gets = [capture.request("get_snapshot_block", SnapshotId=snapshot_id,
                                        BlockIndex=index, BlockToken=tokens[index])
                        for index in range(count)]
                get_user, get_sys, responses = run(dispatcher, gets)
                assert all(r.body == blocks[i] for i, r in enumerate(responses))
                print(f"{label:9} PutSnapshotBlock {(put_user + put_sys) * 1e3:5.2f} ms CPU "
                      f"per block (user {put_user * 1e3:.2f} + system {put_sys * 1e3:.2f}), "
                      f"GetSnapshotBlock {(get_user + get_sys) * 1e3:5.2f} ms (user "
                      f"{get_user * 1e3:.2f} + system {get_sys * 1e3:.2f}); {count} blocks")
                if not encrypted:
                    print(floor(blocks, Path(tmp) / "floor"))
                if profile:
                    pstats.Stats(profile).sort_stats(sort).print_stats(45)
        finally:
            storage.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
