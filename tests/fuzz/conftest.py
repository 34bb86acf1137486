"""The fuzz run's server and its tally.

FUZZ_EXAMPLES sets hypothesis's examples per operation: small in `make test`, large in
`make fuzz`. Every request sent is counted by status class and the tally printed at the end.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator

import pytest

from snapferry.testing import ServerProcess

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "4"))
# Short deadlines, so the truncated requests of the raw HTTP fuzz end quickly.
HEADER_TIMEOUT = 1
BODY_TIMEOUT = 1
# No request may take longer than this to be answered (or closed).
ANSWERED_WITHIN = 15

TALLY: Counter[str] = Counter()


@pytest.fixture(scope="session")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    args = ["--header-timeout", str(HEADER_TIMEOUT), "--body-timeout", str(BODY_TIMEOUT)]
    with ServerProcess(tmp_path_factory.mktemp("fuzz"), args) as server:
        yield server
        assert "Traceback" not in "".join(server.output), "".join(server.output)[-5000:]


def count(status: int | None) -> None:
    TALLY["sent"] += 1
    TALLY["closed without answer" if status is None else f"{status // 100}xx"] += 1


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if TALLY:
        figures = ", ".join(f"{key} {value}" for key, value in sorted(TALLY.items()))
        terminalreporter.write_line(f"fuzz: {figures} (FUZZ_EXAMPLES={EXAMPLES})")
