"""The AWS CLI v1 (PyPI `awscli`, .venv/bin/aws) and v2 (Debian's `awscli` 2.9, /usr/bin/aws,
with its own bundled botocore) run the CopySnapshot story against a live snapferry: create a
KMS key, copy a snapshot across regions encrypted under it, wait with the CLI's own waiter,
and read the state and encryption back. Both are required: a missing one fails the test
(`make test` installs v2 through scripts/test-deps.sh)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from snapferry.testing import ServerProcess

from .blocks import digests, random_blocks, read_digests, write_snapshot
from .conftest import ClientFactory, add_account

CLI_V1 = Path(sys.executable).parent / "aws"
CLI_V2 = Path("/usr/bin/aws")
SRC, DST = "us-east-2", "eu-north-1"
CLI_ACCOUNT, CLI_KEY, CLI_SECRET = "777777777777", "AWSCLIKEY", "secret-of-the-aws-cli"


@pytest.fixture(scope="module")
def cli_account(server: ServerProcess, data_dir: Path) -> str:
    return add_account(data_dir, CLI_ACCOUNT, CLI_KEY, CLI_SECRET)


class Cli:
    def __init__(self, binary: Path, server: ServerProcess) -> None:
        assert binary.is_file(), f"{binary} is missing: run scripts/test-deps.sh (make test does)"
        self.binary, self.server = binary, server

    def run(self, *args: str, region: str) -> subprocess.CompletedProcess[str]:
        env = {
            **os.environ,
            "AWS_ACCESS_KEY_ID": CLI_KEY, "AWS_SECRET_ACCESS_KEY": CLI_SECRET,
            "AWS_PAGER": "",  # v2 pipes output through `less` otherwise
            "AWS_MAX_ATTEMPTS": "1",
        }
        # --endpoint-url, not AWS_ENDPOINT_URL: CLI v2 reads that variable only from 2.13 on.
        return subprocess.run(
            [str(self.binary), *args, "--endpoint-url", self.server.url, "--region", region,
             "--output", "json"],
            capture_output=True, text=True, env=env, timeout=300)

    def json(self, *args: str, region: str) -> Any:
        done = self.run(*args, region=region)
        assert done.returncode == 0, f"{self.binary} {' '.join(args)}:\n{done.stderr}"
        return json.loads(done.stdout) if done.stdout.strip() else None


@pytest.fixture(params=[CLI_V1, CLI_V2], ids=["v1", "v2"])
def aws(request: pytest.FixtureRequest, server: ServerProcess, cli_account: str) -> Cli:
    cli = Cli(request.param, server)
    version = cli.run("--version", region=SRC)
    major = "1" if request.param == CLI_V1 else "2"
    assert version.returncode == 0 and f"aws-cli/{major}." in version.stdout + version.stderr
    return cli


def test_cross_region_encrypted_copy(aws: Cli, client: ClientFactory) -> None:
    blocks = random_blocks([0, 9, 1000])
    source = write_snapshot(client("ebs", region=SRC, key=CLI_KEY, secret=CLI_SECRET), blocks)
    key = aws.json("kms", "create-key", "--description", "cli copy target",
                   region=DST)["KeyMetadata"]
    assert (key["KeyState"], key["AWSAccountId"]) == ("Enabled", CLI_ACCOUNT)

    copy = aws.json("ec2", "copy-snapshot", "--source-region", SRC, "--source-snapshot-id",
                    source, "--encrypted", "--kms-key-id", key["KeyId"], "--description",
                    "copied by the CLI", region=DST)
    waited = aws.run("ec2", "wait", "snapshot-completed", "--snapshot-ids", copy["SnapshotId"],
                     region=DST)
    described = aws.json("ec2", "describe-snapshots", "--snapshot-ids", copy["SnapshotId"],
                         region=DST)["Snapshots"]
    assert waited.returncode == 0, (waited.stderr, described)
    assert len(described) == 1
    done = described[0]
    assert (done["State"], done["Encrypted"], done["KmsKeyId"], done["Description"],
            done["OwnerId"]) == ("completed", True, key["Arn"], "copied by the CLI",
                                 CLI_ACCOUNT)
    ebs_dst = client("ebs", region=DST, key=CLI_KEY, secret=CLI_SECRET)
    assert read_digests(ebs_dst, copy["SnapshotId"]) == digests(blocks)


def test_a_refused_copy_shows_ec2s_error_code(aws: Cli, client: ClientFactory) -> None:
    ec2 = client("ec2", region=DST, key=CLI_KEY, secret=CLI_SECRET)
    before = ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]
    refused = aws.run("ec2", "copy-snapshot", "--source-region", SRC, "--source-snapshot-id",
                      "snap-0123456789abcdef0", region=DST)
    assert refused.returncode != 0
    assert "(InvalidSnapshot.NotFound)" in refused.stderr, refused.stderr
    assert ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"] == before  # nothing left


def test_image_waiters_return_for_a_copy(aws: Cli, client: ClientFactory) -> None:
    """`wait image-exists` and `wait image-available` on a CopyImage target, each CLI with its
    own waiter definitions (image-exists retries only while DescribeImages is empty)."""
    snapshot = write_snapshot(client("ebs", region=SRC, key=CLI_KEY, secret=CLI_SECRET),
                              random_blocks([0, 4]))
    source = aws.json("ec2", "register-image", "--name", f"cli-{os.urandom(4).hex()}",
                      "--root-device-name", "/dev/xvda", "--virtualization-type", "hvm",
                      "--block-device-mappings", json.dumps(
                          [{"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": snapshot}}]),
                      region=SRC)["ImageId"]
    copy = aws.json("ec2", "copy-image", "--source-region", SRC, "--source-image-id", source,
                    "--name", f"cli-copy-{os.urandom(4).hex()}", region=DST)["ImageId"]
    for waiter in ("image-exists", "image-available"):
        waited = aws.run("ec2", "wait", waiter, "--image-ids", copy, region=DST)
        assert waited.returncode == 0, (waiter, waited.stderr)
    image = aws.json("ec2", "describe-images", "--image-ids", copy, region=DST)["Images"][0]
    assert (image["State"], image["OwnerId"]) == ("available", CLI_ACCOUNT)
    # (CLI v2.9's own model predates SourceImageId: read it with boto3.)
    assert client("ec2", region=DST, key=CLI_KEY, secret=CLI_SECRET).describe_images(
        ImageIds=[copy])["Images"][0]["SourceImageId"] == source
    copied = image["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
    assert read_digests(client("ebs", region=DST, key=CLI_KEY, secret=CLI_SECRET), copied) == \
        read_digests(client("ebs", region=SRC, key=CLI_KEY, secret=CLI_SECRET), snapshot)
