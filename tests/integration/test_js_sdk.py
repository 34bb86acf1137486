"""The AWS SDK for JavaScript v3, unchanged, against a live snapferry: tests/clients/js's
node suite (CopySnapshot across regions, encrypted by key id, alias and ARN; the SDK's waiter;
EBS direct write and read back by SHA-256; a refusal's error code) run as `node --test`."""

from __future__ import annotations

from pathlib import Path

from snapferry.testing import ServerProcess
from tests.clients.js_sdk import run_node

from .conftest import add_account

JS_ACCOUNT, JS_KEY, JS_SECRET = "666666666666", "JSSDKKEY", "secret-of-the-js-sdk"


def test_the_js_sdk_suite_passes(server: ServerProcess, data_dir: Path) -> None:
    # Its own account, so what it creates cannot meet what other tests create.
    add_account(data_dir, JS_ACCOUNT, JS_KEY, JS_SECRET)
    env = {
        "SNAPFERRY_ENDPOINT": server.url, "SNAPFERRY_ACCESS_KEY_ID": JS_KEY,
        "SNAPFERRY_SECRET_ACCESS_KEY": JS_SECRET, "SNAPFERRY_ACCOUNT_ID": JS_ACCOUNT,
        # The standard variables, for the test that relies on nothing else.
        "AWS_ENDPOINT_URL": server.url, "AWS_ACCESS_KEY_ID": JS_KEY,
        "AWS_SECRET_ACCESS_KEY": JS_SECRET,
    }
    done = run_node("--test", "--test-reporter=tap", env=env, timeout=600)
    assert done.returncode == 0, f"node --test failed:\n{done.stdout}\n{done.stderr}"
    assert "# fail 0" in done.stdout and "# pass 5" in done.stdout, done.stdout
