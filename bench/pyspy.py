"""py-spy (pinned in the `bench` extra), shared by the profilers of bench/: where its binary
is, and its raw (collapsed) output read back."""

from __future__ import annotations

import shutil
import sys
from collections import Counter
from pathlib import Path


def binary() -> str:
    """The bench extra's py-spy beside this interpreter, else the PATH's."""
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else (shutil.which("py-spy") or "py-spy")


def read_raw(path: Path) -> Counter[tuple[str, ...]]:
    """py-spy's raw format, `frame;frame;... count` a line, as sample counts by stack."""
    stacks: Counter[tuple[str, ...]] = Counter()
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            stacks[tuple(stack.split(";"))] += int(count)
    return stacks
