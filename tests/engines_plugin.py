"""The scale-out test backend (SNAPFERRY_TEST_BACKEND=scaleout, snapferry/testing.py).

One PostgreSQL cluster and one SeaweedFS for the whole run, started here in the controlling
pytest process before xdist starts its workers (they inherit the addresses through the
environment); every data dir then gets a database and a bucket of its own.

Tests that look inside the data dir's SQLite file or block files carry
`@pytest.mark.embedded_only("why")`; on the scale-out backend they are deselected, and the
run says which and why in its header, never silently.
"""

from __future__ import annotations

import os

import pytest

from snapferry import testing

_engines: list[object] = []
_deselected: list[str] = []


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "embedded_only(reason): reads the embedded engines' files (SQLite, block "
                   "files) directly; not run on the scale-out backend")
    if testing.BACKEND != "scaleout" or hasattr(config, "workerinput"):
        return
    if os.environ.get("SNAPFERRY_TEST_PG") and os.environ.get("SNAPFERRY_TEST_S3"):
        return  # engines given by the caller
    from snapferry.localengines import LocalPostgres, LocalSeaweed

    postgres = LocalPostgres(durable=False).start()
    _engines.append(postgres)
    weed = LocalSeaweed().start()
    _engines.append(weed)
    os.environ["SNAPFERRY_TEST_PG"] = postgres.url_base
    os.environ["SNAPFERRY_TEST_S3"] = weed.endpoint


def pytest_unconfigure(config: pytest.Config) -> None:
    while _engines:
        _engines.pop().destroy()  # type: ignore[attr-defined]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if testing.BACKEND != "scaleout":
        return
    kept, dropped = [], []
    for item in items:
        marker = item.get_closest_marker("embedded_only")
        if marker is None:
            kept.append(item)
        else:
            dropped.append(item)
            _deselected.append(f"{item.nodeid}: {marker.args[0] if marker.args else ''}")
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept
    if hasattr(config, "workeroutput"):  # an xdist worker: tell the controller
        config.workeroutput["embedded_only"] = list(_deselected)  # type: ignore[attr-defined]


def pytest_testnodedown(node, error) -> None:  # type: ignore[no-untyped-def]
    """xdist: the controller gathers what its workers deselected (each collects it all)."""
    for line in getattr(node, "workeroutput", {}).get("embedded_only", []):
        if line not in _deselected:
            _deselected.append(line)


def pytest_report_header(config: pytest.Config) -> list[str]:
    return [f"snapferry test backend: {testing.BACKEND}"]


def pytest_terminal_summary(terminalreporter) -> None:  # type: ignore[no-untyped-def]
    if _deselected:
        terminalreporter.write_line(
            f"embedded-only tests not run on the {testing.BACKEND} backend:")
        for line in _deselected:
            terminalreporter.write_line(f"  {line}")


@pytest.fixture(scope="session")
def scaleout_engines() -> object:
    """(PostgreSQL URL base, S3 endpoint) of the run's engines: those of the scale-out backend
    when it runs, else a pair started for this process (unit tests of the scale-out engines
    run in every configuration)."""
    if not (os.environ.get("SNAPFERRY_TEST_PG") and os.environ.get("SNAPFERRY_TEST_S3")):
        from snapferry.localengines import LocalPostgres, LocalSeaweed

        postgres = LocalPostgres(durable=False).start()
        _engines.append(postgres)
        weed = LocalSeaweed().start()
        _engines.append(weed)
        os.environ["SNAPFERRY_TEST_PG"] = postgres.url_base
        os.environ["SNAPFERRY_TEST_S3"] = weed.endpoint
    return os.environ["SNAPFERRY_TEST_PG"], os.environ["SNAPFERRY_TEST_S3"]
