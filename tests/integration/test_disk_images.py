"""`snapferry upload` and `snapferry download`, run as a user runs them against a live
server: a sparse raw image round-trips bit for bit, zero blocks are never sent, an
interrupted upload resumes, and images in other formats are refused with advice."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from snapferry.testing import ServerProcess

from .blocks import BLOCK, list_blocks
from .conftest import DEV, ClientFactory, wait_for

MIB = 1024 * 1024


def snapferry(*args: str, env: dict[str, str], **kwargs: object) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "snapferry.cli", *args, "--quiet"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, **kwargs)  # type: ignore[call-overload]


def finish(process: subprocess.Popen[str]) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=120)
    return process.returncode, out, err


@pytest.fixture
def user_env(server: ServerProcess, tmp_path: Path) -> dict[str, str]:
    """A user's shell: credentials and endpoint in the environment, a cache of their own."""
    return {**os.environ, "AWS_ENDPOINT_URL": server.url, "AWS_ACCESS_KEY_ID": DEV[0],
            "AWS_SECRET_ACCESS_KEY": DEV[1], "AWS_DEFAULT_REGION": "us-east-1",
            "XDG_CACHE_HOME": str(tmp_path / "cache")}


def sparse_image(path: Path, size: int, extents: list[tuple[int, int]]) -> dict[int, bytes]:
    """A sparse file of `size` bytes with random data at (offset, length) extents; returns
    the non-zero 512 KiB blocks it then holds."""
    with path.open("wb") as image:
        image.truncate(size)
        for offset, length in extents:
            image.seek(offset)
            image.write(os.urandom(length))
    data = path.read_bytes()
    blocks = {i // BLOCK: data[i:i + BLOCK] for i in range(0, size, BLOCK)}
    return {i: b for i, b in blocks.items() if b.strip(b"\0")}


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_sparse_image_round_trips(user_env: dict[str, str], client: ClientFactory,
                                    tmp_path: Path) -> None:
    image = tmp_path / "disk.img"
    # Extents straddle block boundaries; the image's length is not a whole number of GiB.
    held = sparse_image(image, 256 * MIB, [(0, 300_000), (5 * MIB + 100, 2 * MIB),
                                           (100 * MIB - 10, 20), (256 * MIB - 4096, 4096)])
    code, out, err = finish(snapferry("upload", str(image), "--description", "golden",
                                      env=user_env))
    assert code == 0, err
    snapshot_id, printed = out.split()
    assert printed == f"sha256:{sha256_of(image)}"

    ebs = client("ebs")
    assert sorted(list_blocks(ebs, snapshot_id)) == sorted(held)  # zero blocks never sent
    snapshot = client("ec2").describe_snapshots(SnapshotIds=[snapshot_id])["Snapshots"][0]
    assert (snapshot["State"], snapshot["VolumeSize"], snapshot["Description"]) == (
        "completed", 1, "golden")

    back = tmp_path / "back.img"
    code, out, err = finish(snapferry("download", snapshot_id, str(back), env=user_env))
    assert code == 0, err
    assert out.split()[-1] == f"sha256:{sha256_of(image)}"
    assert back.read_bytes() == image.read_bytes()
    assert back.stat().st_blocks * 512 < 64 * MIB  # holes stay holes

    whole = tmp_path / "whole.img"
    code, out, err = finish(snapferry("download", snapshot_id, str(whole), "--whole-volume",
                                      env=user_env))
    assert code == 0, err
    volume = hashlib.sha256(image.read_bytes())
    for _ in range(768):  # the rest of the 1 GiB volume reads as zeros
        volume.update(bytes(MIB))
    assert out.split()[1:] == [str(1024 * MIB), "bytes", f"sha256:{volume.hexdigest()}"]
    assert whole.stat().st_size == 1024 * MIB


def test_an_interrupted_upload_resumes(user_env: dict[str, str], client: ClientFactory,
                                       tmp_path: Path) -> None:
    image = tmp_path / "disk.img"
    held = sparse_image(image, 64 * MIB, [(0, 16 * MIB)])
    journals = tmp_path / "cache" / "snapferry" / "uploads"

    def sent() -> int:
        found = list(journals.glob("snap-*.blocks")) if journals.exists() else []
        return len(found[0].read_text().split()) if found else 0

    # 1 MiB/s: 16 s for all of it, so the kill lands well inside the upload.
    slow = snapferry("upload", str(image), "--rate-limit", str(MIB), "--threads", "1",
                     env=user_env)
    try:
        wait_for(lambda: sent() >= 2, timeout=60)
    finally:
        slow.send_signal(signal.SIGKILL)
        slow.wait()
    pending_id = next(journals.glob("snap-*.blocks")).name.removesuffix(".blocks")
    already = sent()
    assert 2 <= already < len(held)

    code, out, err = finish(snapferry("upload", str(image), env=user_env))
    assert code == 0, err
    snapshot_id, printed = out.split()
    assert snapshot_id == pending_id  # the same snapshot, picked up by its ClientToken
    assert f"resumed: {already} blocks were already uploaded, {len(held) - already} sent now" \
        in err
    assert printed == f"sha256:{sha256_of(image)}"
    assert sorted(list_blocks(client("ebs"), snapshot_id)) == sorted(held)
    assert not journals.exists() or not list(journals.iterdir())  # nothing left behind


def test_a_journal_that_claims_too_much_is_not_trusted(user_env: dict[str, str],
                                                       client: ClientFactory,
                                                       tmp_path: Path) -> None:
    """The server is the judge: blocks the journal lists but the server never got are sent
    again, and the snapshot still completes whole."""
    image = tmp_path / "disk.img"
    held = sparse_image(image, 8 * MIB, [(MIB, 3 * MIB)])
    slow = snapferry("upload", str(image), "--rate-limit", str(MIB // 4), "--threads", "1",
                     env=user_env)
    journals = tmp_path / "cache" / "snapferry" / "uploads"
    try:
        wait_for(lambda: journals.exists() and any(journals.iterdir()), timeout=60)
    finally:
        slow.send_signal(signal.SIGKILL)
        slow.wait()
    journal = next(journals.iterdir())
    journal.write_text("".join(f"{index}\n" for index in held))  # a lie: "all sent"
    code, out, err = finish(snapferry("upload", str(image), env=user_env))
    assert code == 0, err
    snapshot_id = out.split()[0]
    assert sorted(list_blocks(client("ebs"), snapshot_id)) == sorted(held)


@pytest.mark.parametrize(("name", "magic", "offset"), [
    ("qcow2", b"QFI\xfb\x00\x00\x00\x03", 0), ("vmdk", b"KDMV", 0),
    ("vhdx", b"vhdxfile", 0), ("vpc", b"conectix", MIB - 512)])
def test_other_formats_are_refused_with_advice(user_env: dict[str, str], client: ClientFactory,
                                               tmp_path: Path, name: str, magic: bytes,
                                               offset: int) -> None:
    image = tmp_path / f"disk.{name}"
    with image.open("wb") as handle:
        handle.truncate(MIB)
        handle.seek(offset)
        handle.write(magic)
    before = client("ec2").describe_snapshots(OwnerIds=["self"])["Snapshots"]
    code, out, err = finish(snapferry("upload", str(image), env=user_env))
    assert code == 2 and not out
    assert f"is a {name} image" in err and f"qemu-img convert -f {name} -O raw" in err
    assert client("ec2").describe_snapshots(OwnerIds=["self"])["Snapshots"] == before


def test_a_missing_snapshot_is_a_clear_error(user_env: dict[str, str], tmp_path: Path) -> None:
    target = tmp_path / "never.img"
    code, _, err = finish(snapferry("download", "snap-0123456789abcdef0", str(target),
                                    env=user_env))
    assert code == 2 and "ResourceNotFoundException" in err
    assert not target.exists() and not list(tmp_path.glob("*.snapferry-part"))
