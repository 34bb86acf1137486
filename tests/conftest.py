"""What every test needs, whatever its folder."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True, scope="session")
def _isolated_aws_config(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Keep the developer's own ~/.aws and AWS_* variables out of every test."""
    empty = tmp_path_factory.mktemp("aws") / "none"
    for name in ("AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        os.environ[name] = str(empty)
    for name in ("AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                 "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_DEFAULT_REGION"):
        os.environ.pop(name, None)


# The scale-out backend's engines and the embedded_only marker (tests/engines_plugin.py).
pytest_plugins = ["tests.engines_plugin"]
