"""Sessions under `serve --processes 2`: every API process keeps the clock the test moves
(--clock-offset-file reaches the children), and what IAM ends, it ends in every process at
once (no process answers from a key it remembered).

Each check makes many requests on fresh connections, so both processes answer some of them;
a process that disagreed would let one through.
"""

from __future__ import annotations

import datetime as dt
import json
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

from snapferry.testing import ServerProcess, shift_clock

from .conftest import sts_clients
from .test_copies_page_http import call, cookie_value
from .test_foundation import refused
from .test_permissions import Creds, allow, unique

TRIES = 16  # fresh connections per check: both processes answer some of them


@pytest.fixture(scope="module")
def clock_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("clock") / "offset"


@pytest.fixture(scope="module")
def server(data_dir: Path, clock_file: Path) -> Iterator[ServerProcess]:
    args = ["--processes", "2", "--clock-offset-file", str(clock_file)]
    with ServerProcess(data_dir, args) as process:
        yield process


@pytest.fixture(scope="module")
def make(server: ServerProcess) -> Any:
    return sts_clients(server)


def user_with_key(make: Any) -> tuple[str, Creds]:
    iam = make("iam")
    name = unique("user")
    iam.create_user(UserName=name)
    iam.put_user_policy(UserName=name, PolicyName="regions",
                        PolicyDocument=json.dumps(allow("ec2:DescribeRegions")))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return name, (key["AccessKeyId"], key["SecretAccessKey"], None)


def session_of(make: Any, creds: Creds) -> Creds:
    got = make("sts", creds).get_session_token(DurationSeconds=900)["Credentials"]
    return got["AccessKeyId"], got["SecretAccessKey"], got["SessionToken"]


def test_every_process_keeps_the_shifted_clock(make: Any, clock_file: Path) -> None:
    _, creds = user_with_key(make)
    session = session_of(make, creds)
    for _ in range(TRIES):
        assert make("ec2", session).describe_regions()["Regions"]
    later = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=901)
    shift_clock(clock_file, 901)
    try:
        with mock.patch("botocore.auth.get_current_datetime", return_value=later):
            for _ in range(TRIES):
                assert refused(make("sts", session).get_caller_identity)[:2] == (
                    "ExpiredToken", 403)
            # The user's own key is not temporary: it still works in every process.
            for _ in range(TRIES):
                assert make("ec2", creds).describe_regions()["Regions"]
    finally:
        shift_clock(clock_file, 0)


def test_a_deleted_key_ends_its_web_sessions_in_every_process(
        make: Any, server: ServerProcess) -> None:
    name, (key, secret, _) = user_with_key(make)
    form = urllib.parse.urlencode({"access_key_id": key, "secret_access_key": secret})
    status, headers, _ = call(server.url, "/_snapferry/login", form.encode())
    assert status == 303
    cookie = f"snapferry_session={cookie_value(headers)}"
    for _ in range(TRIES):
        assert call(server.url, "/_snapferry/live", Cookie=cookie)[0] == 200
    make("iam").delete_access_key(UserName=name, AccessKeyId=key)
    for _ in range(TRIES):
        assert call(server.url, "/_snapferry/live", Cookie=cookie)[0] == 401


def test_sts_sessions_outlive_their_key_as_on_aws_but_not_their_user(make: Any) -> None:
    """AWS: temporary credentials "are valid through the expiration period and cannot be
    revoked"; their permissions are read on every request. So deleting the key that called
    GetSessionToken leaves its session working, with the user's policies of the moment;
    deleting the user (or its policies) ends what the session may do, in every process."""
    name, creds = user_with_key(make)
    session = session_of(make, creds)
    iam = make("iam")
    iam.delete_access_key(UserName=name, AccessKeyId=creds[0])
    for _ in range(TRIES):
        assert refused(make("sts", creds).get_caller_identity)[0] == "InvalidClientTokenId"
        assert make("ec2", session).describe_regions()["Regions"]
    iam.delete_user_policy(UserName=name, PolicyName="regions")
    for _ in range(TRIES):
        assert refused(make("ec2", session).describe_regions)[0] == "UnauthorizedOperation"
    iam.delete_user(UserName=name)
    for _ in range(TRIES):
        assert refused(make("sts", session).get_caller_identity)[0] == "InvalidClientTokenId"
