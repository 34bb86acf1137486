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


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "long(seconds): a file of few tests that take minutes (Terraform, kill "
                   "cycles, many client runs), with its whole time in a run of the suite on a "
                   "loaded machine: run first, longest first, so the suite does not end "
                   "waiting on it")


def _long_seconds(item: pytest.Item) -> float:
    marker = item.get_closest_marker("long")
    return float(marker.kwargs["seconds"]) if marker else 0.0


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The order xdist hands files out in (`make test` runs `--dist loadfile
    --no-loadscope-reorder`): files marked long first, longest first, then the rest by their
    number of tests, most first. xdist's own reorder (by number of tests alone) put the
    few-test long files last, where the two Terraform files alone were the run's last
    minutes. A stable sort: pytest-randomly's shuffle decides the rest."""
    per_file: dict[str, int] = {}
    for item in items:
        per_file[item.location[0]] = per_file.get(item.location[0], 0) + 1
    items.sort(key=lambda item: (-_long_seconds(item), -per_file[item.location[0]]))
