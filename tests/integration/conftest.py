"""Integration fixtures: a real `snapferry serve` subprocess and boto3 clients for it."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from snapferry.testing import ServerProcess, engine_env

DEV = ("test", "test")
ACCOUNT_B = ("222222222222", "KEYFORACCOUNTB", "secret-of-account-b")
NO_RETRIES = Config(retries={"total_max_attempts": 1, "mode": "standard"}, connect_timeout=5,
                    read_timeout=30)


def run_cli(*args: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "snapferry.cli", *args, "--data-dir", str(data_dir)],
        capture_output=True, text=True, timeout=60,
        env={**os.environ, **engine_env(data_dir)},
    )


def add_account(data_dir: Path, account_id: str, key: str, secret: str) -> str:
    """`snapferry accounts add`, as an operator would run it (the server may be running)."""
    added = run_cli("accounts", "add", "--account-id", account_id, "--access-key-id", key,
                    "--secret-access-key", secret, data_dir=data_dir)
    assert added.returncode == 0, added.stderr
    return account_id


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("data")


@pytest.fixture(scope="module")
def server(data_dir: Path) -> Iterator[ServerProcess]:
    with ServerProcess(data_dir) as process:
        yield process


ClientFactory = Callable[..., Any]


@pytest.fixture(scope="module")
def client(server: ServerProcess) -> ClientFactory:
    """client(service, region=..., key=..., secret=...) -> a boto3 client for the server."""

    def make(service: str, region: str = "us-east-1", key: str = DEV[0], secret: str = DEV[1],
             **kwargs: Any) -> Any:
        return boto3.client(
            service, region_name=region, endpoint_url=server.url, aws_access_key_id=key,
            aws_secret_access_key=secret, config=kwargs.pop("config", NO_RETRIES), **kwargs,
        )

    return make


def sts_clients(server: ServerProcess, default_region: str = "us-east-1") -> ClientFactory:
    """client(service, (key, secret, session token or None), region) -> a boto3 client for
    the server: one new connection per client, temporary credentials welcome."""

    def make(service: str, creds: tuple[str, str, str | None] = (*DEV, None),
             region: str = default_region) -> Any:
        key, secret, token = creds
        return boto3.client(service, region_name=region, endpoint_url=server.url,
                            aws_access_key_id=key, aws_secret_access_key=secret,
                            aws_session_token=token, config=NO_RETRIES)

    return make


def wait_for(condition: Callable[[], bool], timeout: float = 20.0, every: float = 0.05) -> None:
    """Poll `condition` until true: synchronisation on an observable state, not a guess."""
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(every)
