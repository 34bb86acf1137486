"""The mutation runner's warm server (tests/mutation/warm.py): a forked child must see the
tree as it is on disk now (the mutant), report pytest's exit code, and die with every process
it started when its caller is killed by cosmic-ray's timeout."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.mutation import warm

ROOT = Path(__file__).resolve().parents[2]

TESTS = '''
import os, subprocess, sys, time
from value import VALUE

def test_value_is_one():
    assert VALUE == 1

def test_fails():
    assert False

def test_hangs_with_a_subprocess(tmp_path):
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    with open(os.environ["PIDS"] + ".tmp", "w") as out:
        out.write(f"{os.getpid()} {child.pid}")
    os.rename(os.environ["PIDS"] + ".tmp", os.environ["PIDS"])
    time.sleep(600)
'''


@pytest.fixture(scope="module")
def warm_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One server for the file (its start is the slow part); the socket's path."""
    address = tmp_path_factory.mktemp("warm") / "warm.sock"
    process = subprocess.Popen([sys.executable, "-m", "tests.mutation.warm", str(address)],
                               cwd=ROOT, stdout=subprocess.PIPE, text=True,
                               env={**os.environ, "PYTHONPATH": str(ROOT),
                                    "PYTHONDONTWRITEBYTECODE": "1"})
    try:
        assert process.stdout is not None and process.stdout.readline().strip() == "ready"
        yield address
    finally:
        process.kill()
        process.wait()


@pytest.fixture
def server(warm_server: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A tree of this test's own, the caller in it, pointed at the server."""
    (tmp_path / "value.py").write_text("VALUE = 1\n")
    (tmp_path / "test_warm_subject.py").write_text(TESTS)
    monkeypatch.setenv(warm.ADDRESS, str(warm_server))
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    monkeypatch.chdir(tmp_path)
    return tmp_path


ARGS = ["-q", "-p", "no:randomly", "-p", "no:cacheprovider"]


def test_a_child_reports_pytests_exit_code(server: Path) -> None:
    assert warm.run_pytest([*ARGS, "test_warm_subject.py::test_value_is_one"]) == 0
    assert warm.run_pytest([*ARGS, "test_warm_subject.py::test_fails"]) == 1


def test_each_child_imports_the_tree_as_it_is_on_disk_now(server: Path) -> None:
    """What makes a warm run count a mutant: nothing of the tree is cached in the server."""
    assert warm.run_pytest([*ARGS, "test_warm_subject.py::test_value_is_one"]) == 0
    (server / "value.py").write_text("VALUE = 2\n")  # the mutant
    assert warm.run_pytest([*ARGS, "test_warm_subject.py::test_value_is_one"]) == 1
    (server / "value.py").write_text("VALUE = 1\n")
    assert warm.run_pytest([*ARGS, "test_warm_subject.py::test_value_is_one"]) == 0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie the server has not reaped yet is gone for our purpose
    status = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    return status != "Z"


def test_a_killed_caller_takes_its_child_and_the_childs_processes_with_it(server: Path) -> None:
    pids = server / "pids"
    args = [*ARGS, "test_warm_subject.py::test_hangs_with_a_subprocess"]
    caller = subprocess.Popen(
        [sys.executable, "-c", "import sys; from tests.mutation.warm import run_pytest; "
         f"sys.exit(run_pytest({args!r}))"],
        env={**os.environ, "PYTHONPATH": str(ROOT), "PIDS": str(pids)})
    deadline = time.monotonic() + 60
    while not pids.exists():  # the hanging test has started, and its subprocess
        assert time.monotonic() < deadline and caller.poll() is None
        time.sleep(0.05)
    child, grandchild = (int(p) for p in pids.read_text().split())
    assert _alive(child) and _alive(grandchild)
    caller.kill()  # as cosmic-ray's timeout does
    caller.wait()
    while _alive(child) or _alive(grandchild):
        assert time.monotonic() < deadline, "the timed-out child kept running"
        time.sleep(0.05)
    # and the server goes on serving the next mutant
    assert warm.run_pytest([*ARGS, "test_warm_subject.py::test_value_is_one"]) == 0


def test_without_a_server_the_caller_runs_pytest_itself(monkeypatch: pytest.MonkeyPatch,
                                                        tmp_path: Path) -> None:
    monkeypatch.delenv(warm.ADDRESS, raising=False)
    assert warm.run_pytest(ARGS) is None
    monkeypatch.setenv(warm.ADDRESS, str(tmp_path / "nobody.sock"))
    assert warm.run_pytest(ARGS) is None
