"""S3 PUT/GET throughput through boto3, side by side with what is underneath, in one run.

    python -m bench.s3

Measured three times over, interleaved, on the same machine:
- snapferry through boto3: put_object and get_object of 8 MiB objects (1 client thread and
  4), and upload_file/download_file of one 64 MiB file (boto3's transfer manager: multipart
  with 8 MiB parts, ranged GETs);
- the raw object store underneath: storage/objectfiles.py's writer (temp file, fsync,
  rename, directory fsync) and reader for the same bytes;
- SeaweedFS's S3 gateway (`weed server -s3`) through the same boto3 calls, when `weed` is
  on the PATH (the scaleout work installs it); otherwise the line says it was not measured.
Prints MiB/s and each API figure as a ratio of the raw store's.
"""

from __future__ import annotations

import os
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from snapferry.storage.objectfiles import ObjectFiles
from snapferry.testing import ServerProcess

MIB = 1024 * 1024
OBJECT_SIZE = 8 * MIB
OBJECT_COUNT = 16  # 128 MiB per measurement
BIG_FILE = 64 * MIB
REPEATS = 3


def client(endpoint: str, key: str = "test", secret: str = "test") -> Any:
    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id=key, aws_secret_access_key=secret,
                        config=Config(retries={"max_attempts": 2},
                                      s3={"addressing_style": "path"}))


def timed(work: Callable[[], None], size: int) -> float:
    started = time.perf_counter()
    work()
    return size / MIB / (time.perf_counter() - started)


def api_round(endpoint: str, bucket: str, blobs: list[bytes], threads: int,
              tmp: Path) -> dict[str, float]:
    clients = [client(endpoint) for _ in range(threads)]
    keys = [f"o{i}-{os.urandom(4).hex()}" for i in range(len(blobs))]

    def put_all() -> None:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(lambda i: clients[i % threads].put_object(
                Bucket=bucket, Key=keys[i], Body=blobs[i]), range(len(blobs))))

    def get_all() -> None:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(lambda i: clients[i % threads].get_object(
                Bucket=bucket, Key=keys[i])["Body"].read(), range(len(blobs))))

    total = sum(map(len, blobs))
    result = {f"put x{threads}": timed(put_all, total), f"get x{threads}": timed(get_all, total)}
    if threads == 1:
        big = tmp / "big.bin"
        if not big.exists():
            big.write_bytes(os.urandom(BIG_FILE))
        s3 = clients[0]
        result[f"upload_file {BIG_FILE // MIB} MiB"] = timed(
            lambda: s3.upload_file(str(big), bucket, "big"), BIG_FILE)
        result[f"download_file {BIG_FILE // MIB} MiB"] = timed(
            lambda: s3.download_file(bucket, "big", str(tmp / "back.bin")), BIG_FILE)
    return result


def raw_round(root: Path, blobs: list[bytes]) -> dict[str, float]:
    files = ObjectFiles(root)
    ids: list[str] = []

    def put_all() -> None:
        for blob in blobs:
            with files.writer() as writer:
                writer.write(blob)
                ids.append(writer.commit())

    def get_all() -> None:
        for file_id in ids:
            b"".join(files.read(file_id))

    total = sum(map(len, blobs))
    return {"put x1": timed(put_all, total), "get x1": timed(get_all, total)}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_seaweed(tmp: Path) -> tuple[subprocess.Popen[bytes], str] | None:
    weed = shutil.which("weed")
    if weed is None:
        return None
    port, master, volume = free_port(), free_port(), free_port()
    process = subprocess.Popen(
        [weed, "server", f"-dir={tmp}", "-s3", f"-s3.port={port}", f"-master.port={master}",
         f"-volume.port={volume}", "-ip=127.0.0.1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            client(endpoint).list_buckets()
            return process, endpoint
        except Exception:  # not up yet
            time.sleep(0.5)
    process.kill()
    return None


def main() -> None:
    blobs = [os.urandom(OBJECT_SIZE) for _ in range(OBJECT_COUNT)]
    figures: dict[str, dict[str, list[float]]] = {}

    def add(system: str, round_figures: dict[str, float]) -> None:
        for name, value in round_figures.items():
            figures.setdefault(system, {}).setdefault(name, []).append(value)

    with tempfile.TemporaryDirectory() as scratch:
        tmp = Path(scratch)
        seaweed = start_seaweed(tmp / "seaweed")
        with ServerProcess(tmp / "snapferry") as server:
            client(server.url).create_bucket(Bucket="bench")
            if seaweed is not None:
                client(seaweed[1]).create_bucket(Bucket="bench")
            for repeat in range(REPEATS):
                add("raw object files", raw_round(tmp / f"raw{repeat}", blobs))
                for threads in (1, 4):
                    add("snapferry (boto3)", api_round(server.url, "bench", blobs, threads, tmp))
                    if seaweed is not None:
                        add("SeaweedFS (boto3)",
                            api_round(seaweed[1], "bench", blobs, threads, tmp))
        if seaweed is not None:
            seaweed[0].kill()
            seaweed[0].wait()
    raw = {name: statistics.median(values)
           for name, values in figures["raw object files"].items()}
    print(f"S3 throughput, MiB/s (median of {REPEATS}; {OBJECT_COUNT} x {OBJECT_SIZE // MIB} MiB "
          f"objects, and one {BIG_FILE // MIB} MiB file)")
    for system, measured in figures.items():
        for name, values in measured.items():
            median = statistics.median(values)
            writes = name.startswith(("put", "upload"))
            base = raw["put x1"] if writes else raw["get x1"]
            ratio = f"  ({median / base:.2f} of raw)" if base and system != "raw object files" \
                else ""
            print(f"  {system:20} {name:22} {median:8.1f}{ratio}")
    if "SeaweedFS (boto3)" not in figures:
        print("  SeaweedFS            not measured: `weed` is not on the PATH here")


if __name__ == "__main__":
    main()
