"""The local engines (snapferry/localengines.py) do not outlive whoever started them: a test
run killed with -9 must not leave PostgreSQL or SeaweedFS running in /tmp."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path


def _run_starter(body: str) -> str:
    """Run `body` in a child Python and return everything written to its stdout. The reaper
    inherits that stdout, so reading to EOF waits for the reaper to finish too."""
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(body)], capture_output=True,
                          text=True, timeout=120)
    return done.stdout


def test_a_reaper_cleans_up_when_its_starter_is_killed() -> None:
    out = _run_starter("""
        import os, signal
        from snapferry.localengines import _Reaper
        reaper = _Reaper("echo reaped")
        print("started", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    assert out.split() == ["started", "reaped"]


def test_a_dismissed_reaper_does_not_clean_up() -> None:
    out = _run_starter("""
        from snapferry.localengines import _Reaper
        reaper = _Reaper("echo reaped")
        reaper.dismiss()
        print("stopped", flush=True)
    """)
    assert out.split() == ["stopped"]


def _running(directory: str) -> bool:
    found = subprocess.run(["pgrep", "-f", directory], capture_output=True)
    return found.returncode == 0


def test_a_killed_starter_leaves_no_postgres_running() -> None:
    out = _run_starter("""
        import os, signal
        from snapferry.localengines import LocalPostgres
        postgres = LocalPostgres(durable=False).start()
        print(postgres.root, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    root = out.strip()
    assert root.startswith("/"), out
    assert not _running(root)
    assert not Path(root).exists()
