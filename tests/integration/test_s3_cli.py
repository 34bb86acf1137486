"""The AWS CLI's S3 commands against a live snapferry, v1 (.venv/bin/aws) and v2
(/usr/bin/aws, its own bundled botocore): `aws s3 mb`, `cp` of a 20 MiB file (multipart),
`ls`, `sync` of a 100 MiB tree both ways (multipart for its big files), and `rb`."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

import pytest

from snapferry.testing import ServerProcess

from .conftest import add_account
from .test_aws_cli import CLI_V1, CLI_V2

pytestmark = pytest.mark.long(seconds=150)  # scheduled first: tests/conftest.py

MIB = 1024 * 1024
S3_ACCOUNT, S3_KEY, S3_SECRET = "787878787878", "S3CLIKEY", "secret-of-the-s3-cli"


@pytest.fixture(scope="module")
def account(server: ServerProcess, data_dir: Path) -> str:
    return add_account(data_dir, S3_ACCOUNT, S3_KEY, S3_SECRET)


def aws(binary: Path, server: ServerProcess, *args: str) -> subprocess.CompletedProcess[str]:
    assert binary.is_file(), f"{binary} is missing: run scripts/test-deps.sh (make test does)"
    env = {**os.environ, "AWS_ACCESS_KEY_ID": S3_KEY, "AWS_SECRET_ACCESS_KEY": S3_SECRET,
           "AWS_PAGER": "", "AWS_MAX_ATTEMPTS": "1"}
    done = subprocess.run([str(binary), "s3", *args, "--endpoint-url", server.url,
                           "--region", "us-east-1"], capture_output=True, text=True, env=env,
                          timeout=600)
    assert done.returncode == 0, f"aws s3 {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done


def tree(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("binary", [CLI_V1, CLI_V2], ids=["v1", "v2"])
def test_cp_ls_sync(binary: Path, server: ServerProcess, account: str, tmp_path: Path) -> None:
    bucket = f"cli-{'v1' if binary == CLI_V1 else 'v2'}-bucket"
    aws(binary, server, "mb", f"s3://{bucket}")

    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(20 * MIB))
    aws(binary, server, "cp", str(big), f"s3://{bucket}/single/big.bin")
    back = tmp_path / "back.bin"
    aws(binary, server, "cp", f"s3://{bucket}/single/big.bin", str(back))
    assert back.read_bytes() == big.read_bytes()

    source = tmp_path / "tree"
    sizes = [30 * MIB, 25 * MIB, 20 * MIB, 15 * MIB] + [MIB] * 19 + [0, 1, 4096]
    for index, size in enumerate(sizes):
        path = source / f"d{index % 4}" / f"f {index}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(os.urandom(size))
    assert sum(sizes) >= 100 * MIB
    aws(binary, server, "sync", str(source), f"s3://{bucket}/tree")
    listed = aws(binary, server, "ls", "--recursive", f"s3://{bucket}/tree/").stdout
    assert len(listed.strip().splitlines()) == len(sizes)
    top = aws(binary, server, "ls", f"s3://{bucket}/tree/").stdout
    assert sorted(line.split()[-1] for line in top.splitlines()) == ["d0/", "d1/", "d2/", "d3/"]
    # A second sync finds nothing to do; a changed file goes again.
    again = aws(binary, server, "sync", str(source), f"s3://{bucket}/tree")
    assert "upload:" not in again.stdout
    (source / "d1" / "f 5.bin").write_bytes(b"changed")
    changed = aws(binary, server, "sync", str(source), f"s3://{bucket}/tree")
    assert changed.stdout.count("upload:") == 1

    copy = tmp_path / "copy"
    aws(binary, server, "sync", f"s3://{bucket}/tree", str(copy))
    assert tree(copy) == tree(source)

    aws(binary, server, "rb", f"s3://{bucket}", "--force")
    buckets = aws(binary, server, "ls").stdout
    assert bucket not in buckets
