"""Snapshot data is the server's alone (issue 9, item 4): under a umask of 022 the data dir
is 0700 and every file in it 0600, and a data dir open to others stops start-up."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import boto3
import pytest

from snapferry.testing import ServerProcess
from tests.integration.blocks import random_blocks, write_snapshot
from tests.integration.conftest import NO_RETRIES, run_cli


@contextmanager
def umask(mask: int) -> Iterator[None]:
    """The umask a child process is started with (it inherits ours at fork)."""
    previous = os.umask(mask)
    try:
        yield
    finally:
        os.umask(previous)


def modes(root: Path) -> dict[str, int]:
    found = {".": stat.S_IMODE(root.stat().st_mode)}
    for path in root.rglob("*"):
        found[str(path.relative_to(root))] = stat.S_IMODE(path.lstat().st_mode)
    return found


@pytest.mark.embedded_only("looks for the SQLite and block files under the data dir")
def test_everything_under_the_data_dir_is_private_whatever_the_umask(tmp_path: Path) -> None:
    data_dir = tmp_path / "fresh" / "data"
    with umask(0o022):
        server = ServerProcess(data_dir).start()
    try:
        ebs = boto3.client("ebs", region_name="us-east-1", endpoint_url=server.url,
                           aws_access_key_id="test", aws_secret_access_key="test",
                           config=NO_RETRIES)
        write_snapshot(ebs, random_blocks([0, 1]))
        found = modes(data_dir)
    finally:
        server.stop()
    names = set(found)
    assert {"metadata.sqlite3", "metadata.sqlite3-wal", "metadata.sqlite3-shm",
            "master.key", "blocks"} <= names
    assert sum(1 for name in names if name.count("/") == 2) >= 2  # block files
    wrong = {name: f"{mode:o}" for name, mode in found.items()
             if mode != (0o700 if (data_dir / name).is_dir() else 0o600)}
    assert wrong == {}


def test_a_data_dir_open_to_others_stops_start_up(tmp_path: Path) -> None:
    data_dir = tmp_path / "shared"
    assert run_cli("accounts", "list", data_dir=data_dir).returncode == 0
    data_dir.chmod(0o755)
    refused = run_cli("accounts", "list", data_dir=data_dir)
    assert refused.returncode == 2
    assert f"chmod 700 {data_dir}" in refused.stderr
    server = ServerProcess(data_dir)
    try:
        server.start(timeout=30)
        raise AssertionError("snapferry served a data dir that others can read")
    except RuntimeError:
        pass
    assert server.process is not None and server.process.wait(10) == 2
    assert "chmod 700" in "".join(server.output)
    data_dir.chmod(0o700)
    assert run_cli("accounts", "list", data_dir=data_dir).returncode == 0


@pytest.mark.embedded_only("an older version's SQLite files")
def test_database_files_left_open_by_an_older_version_are_closed_up(tmp_path: Path) -> None:
    data_dir = tmp_path / "old"
    assert run_cli("accounts", "list", data_dir=data_dir).returncode == 0
    database = data_dir / "metadata.sqlite3"
    database.chmod(0o644)
    assert run_cli("accounts", "list", data_dir=data_dir).returncode == 0
    assert stat.S_IMODE(database.stat().st_mode) == 0o600
