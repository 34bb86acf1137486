"""Running the AWS SDK for JavaScript v3 in tests/clients/js from Python tests.

Node and the folder's node_modules (`npm ci`, done by `make test`) are required: a test that
needs them fails, with what to run, when they are missing. It never skips.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

JS_DIR = Path(__file__).parent / "js"
QUIET = {"AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED": "true"}


def node() -> str:
    found = shutil.which("node")
    assert found, "node (20 or later) is not on the PATH: run scripts/test-deps.sh"
    lockfile = JS_DIR / "node_modules" / ".package-lock.json"
    assert lockfile.is_file(), f"{JS_DIR}/node_modules is missing: run `npm ci` there " \
        "(make test does)"
    return found


def run_node(*args: str, env: dict[str, str] | None = None,
             timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([node(), *args], cwd=JS_DIR, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **QUIET, **(env or {})})


def presigned_copy_snapshot_urls(requests: list[dict[str, Any]]) -> list[str]:
    """The PresignedUrl @aws-sdk/client-ec2 writes for each of these requests, in one node
    run (see presign-copy-snapshot.js for the members of a request)."""
    done = run_node("presign-copy-snapshot.js", json.dumps(requests), timeout=120)
    assert done.returncode == 0, done.stderr
    urls = done.stdout.splitlines()
    assert len(urls) == len(requests), done.stdout
    return urls
