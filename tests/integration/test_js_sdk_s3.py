"""The AWS SDK for JavaScript v3's S3 client, unchanged, against a live snapferry:
tests/clients/js/s3-suite.js (objects and NoSuchKey, a streamed body sent aws-chunked with a
trailing CRC32, a multipart upload) run as `node --test`."""

from __future__ import annotations

from pathlib import Path

from snapferry.testing import ServerProcess
from tests.clients.js_sdk import run_node

from .conftest import add_account

JS_ACCOUNT, JS_KEY, JS_SECRET = "676767676767", "JSSDKS3KEY", "secret-of-the-js-s3-sdk"


def test_the_js_sdk_s3_suite_passes(server: ServerProcess, data_dir: Path) -> None:
    add_account(data_dir, JS_ACCOUNT, JS_KEY, JS_SECRET)
    env = {"SNAPFERRY_ENDPOINT": server.url, "SNAPFERRY_ACCESS_KEY_ID": JS_KEY,
           "SNAPFERRY_SECRET_ACCESS_KEY": JS_SECRET, "SNAPFERRY_ACCOUNT_ID": JS_ACCOUNT}
    done = run_node("--test", "--test-reporter=tap", "s3-suite.js", env=env, timeout=600)
    assert done.returncode == 0, f"node --test failed:\n{done.stdout}\n{done.stderr}"
    assert "# fail 0" in done.stdout and "# pass 3" in done.stdout, done.stdout
