"""The command-line faces: the AWS CLI against the server, and `snapferry accounts`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from snapferry.testing import ServerProcess

from .conftest import run_cli

pytestmark = pytest.mark.long(seconds=95)  # scheduled first: tests/conftest.py


def aws(server: ServerProcess, *args: str, key: str = "test",
        secret: str = "test") -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": key,
        "AWS_SECRET_ACCESS_KEY": secret,
        "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_ENDPOINT_URL": server.url,  # the variable the README tells users to set
        "AWS_MAX_ATTEMPTS": "1",
    }
    return subprocess.run([sys.executable, "-m", "awscli", *args, "--output", "json"],
                          capture_output=True, text=True, env=env, timeout=120)


def test_aws_cli_sts_and_ec2(server: ServerProcess) -> None:
    identity = aws(server, "sts", "get-caller-identity")
    assert identity.returncode == 0, identity.stderr
    assert json.loads(identity.stdout)["Account"] == "000000000000"
    regions = aws(server, "ec2", "describe-regions", "--region-names", "eu-west-1", "us-west-2")
    assert regions.returncode == 0, regions.stderr
    names = sorted(r["RegionName"] for r in json.loads(regions.stdout)["Regions"])
    assert names == ["eu-west-1", "us-west-2"]


def test_aws_cli_reports_refusals(server: ServerProcess) -> None:
    refused = aws(server, "ec2", "describe-regions", secret="wrong")
    assert refused.returncode != 0
    assert "AuthFailure" in refused.stderr


def test_accounts_add_refuses_bad_input_and_changes_nothing(tmp_path: Path) -> None:
    before = run_cli("accounts", "list", data_dir=tmp_path)
    assert before.returncode == 0 and "000000000000  test" in before.stdout
    attempts = [
        ("--account-id", "1234567890123", "--access-key-id", "GOODKEY1",
         "--secret-access-key", "goodsecret"),
        ("--account-id", "12345678901a", "--access-key-id", "GOODKEY2",
         "--secret-access-key", "goodsecret"),
        ("--account-id", "333333333333", "--access-key-id", "bad key!",
         "--secret-access-key", "goodsecret"),
        ("--account-id", "333333333333", "--access-key-id", "test",  # taken by the dev account
         "--secret-access-key", "goodsecret"),
    ]
    for attempt in attempts:
        result = run_cli("accounts", "add", *attempt, data_dir=tmp_path)
        assert result.returncode == 2, (attempt, result.stdout, result.stderr)
        assert result.stderr.startswith("snapferry: ")
    after = run_cli("accounts", "list", data_dir=tmp_path)
    assert after.stdout == before.stdout
    missing_flag = run_cli("accounts", "add", "--account-id", "333333333333", data_dir=tmp_path)
    assert missing_flag.returncode != 0 and "--access-key-id" in missing_flag.stderr


def test_accounts_add_then_list(tmp_path: Path) -> None:
    for key in ("FIRSTKEY", "SECONDKEY"):
        added = run_cli("accounts", "add", "--account-id", "444444444444", "--access-key-id",
                        key, "--secret-access-key", "s3cret-value", data_dir=tmp_path)
        assert added.returncode == 0, added.stderr
    listing = run_cli("accounts", "list", data_dir=tmp_path).stdout.splitlines()
    assert listing[1:] == ["000000000000  test", "444444444444  FIRSTKEY",
                           "444444444444  SECONDKEY"]
