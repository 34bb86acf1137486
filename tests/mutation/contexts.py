"""A pytest plugin for `run.py --select`: under `coverage run`, record each line as run by the
test that ran it (its node id), so a mutant of that line can be tested by those tests alone.

What a test's setup or teardown runs (fixtures, perhaps module-scoped ones that later tests
reuse) is recorded as `<node id>@setup`: `select.py` widens those lines to the whole file,
since any test of the file may depend on what the fixture built.
"""

from __future__ import annotations

from collections.abc import Iterator

import coverage
import pytest


def _switch(context: str) -> None:
    current = coverage.Coverage.current()
    if current is not None:
        current.switch_context(context)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    _switch(f"{item.nodeid}@setup")
    yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    _switch(item.nodeid)
    yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Iterator[None]:
    _switch(f"{item.nodeid}@setup")
    yield
    _switch("")
