"""Per-mutant test selection for `run.py --select`.

Before the mutants, `build_map` runs the module's unit tests once under coverage.py with a
context per test (`contexts.py`) and keeps, for each line of the module, the tests that ran
it. Then cosmic-ray's test command is `python -m tests.mutation.select MAP`: it finds the
lines the mutant changed (the mutated file in the scratch tree against the source kept in
the map) and runs only the tests that ran them, with `-x`:

- a line run at import time (a default argument, a decorator, a class body) may change
  what any test sees: the module's whole staged command runs, as without `--select`;
  except a module-level constant that only this module's functions read: the tests that
  run those reads, and the test files that name it;
- a line that fixtures ran (a test's setup or teardown): every test of that file, since
  later tests may use what a module-scoped fixture built;
- a line no unit test ran: the module's integration files (they run it in the server
  subprocess, which the map does not see), or, for a module with none, all its unit tests.

The tests a line selects are those that ran the whole statement around it (for a compound
statement, its header: `if`, `for`, `def` and decorators), so a mutant of the second line
of a call spread over three is tested by whatever ran the call.
"""

from __future__ import annotations

import ast
import difflib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

from tests.mutation.warm import run_pytest

# How every stage runs pytest: stop at the first failure, no cache, the files' own order.
PYTEST_ARGS = ["-x", "-q", "-p", "no:cacheprovider", "-p", "no:randomly"]


def _file(test: str) -> str:
    return test.split("::")[0]


def _uses_hypothesis(tree: Path, test: str) -> bool:
    return "hypothesis" in (tree / _file(test)).read_text()


def build_map(module: str, tree: Path, unit: list[str], integration: list[str],
              full_stages: list[list[str]], out: Path) -> dict[str, object]:
    """Run `unit` under coverage with per-test contexts; write and return the line map."""
    data_file = out.with_suffix(".coverage")
    data_file.unlink(missing_ok=True)
    files = list(dict.fromkeys(_file(t) for t in unit))
    target = tree / module
    env = {**os.environ, "PYTHONPATH": str(tree), "PYTHONDONTWRITEBYTECODE": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "coverage", "run", f"--data-file={data_file}",
         f"--include={target}", "-m", "pytest", "-q", "-p", "no:cacheprovider",
         "-p", "no:randomly", "-p", "tests.mutation.contexts", *files],
        cwd=tree, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{module}: its unit tests fail under coverage:\n{done.stdout[-3000:]}")

    import coverage

    data = coverage.CoverageData(basename=str(data_file))
    data.read()
    by_line = data.contexts_by_lineno(str(target))
    if not by_line:
        sys.exit(f"{module}: coverage saw none of {target} (imported from elsewhere?)")
    order = {f: i for i, f in enumerate(files)}
    lines: dict[str, list[str]] = {}
    at_import: list[int] = []
    for line, contexts in sorted(by_line.items()):
        tests: set[str] = set()
        for context in contexts:
            if not context:  # outside any test: at import (collection) time
                at_import.append(line)
            elif context.endswith("@setup"):
                tests.add(_file(context))
            else:  # one test function; all its parameter sets
                tests.add(re.sub(r"\[.*\]$", "", context))
        # a whole file makes its single tests redundant
        tests = {t for t in tests if "::" not in t or _file(t) not in tests}
        lines[str(line)] = sorted(tests, key=lambda t: (order.get(_file(t), len(order)), t))
    source = target.read_text()
    found = {"module": module, "source": source, "lines": lines,
             "constants": _constants(tree, target, source, lines, set(at_import), files),
             "at_import": at_import, "unit": unit, "integration": integration,
             "full": full_stages,
             "hypothesis": sorted({_file(t) for t in unit if _uses_hypothesis(tree, t)})}
    out.write_text(json.dumps(found))
    data_file.unlink(missing_ok=True)
    return found


def _constants(tree: Path, target: Path, source: str, lines: dict[str, list[str]],
               at_import: set[int], files: list[str]) -> dict[str, list[str]]:
    """Module-level `NAME = ...` run at import, but matter only where NAME is read: for a
    name no other module of the package mentions and that only function bodies read, the
    tests that run those reads, and the test files that name it. (A name read at import
    time, or by another module, is left out: its mutants run the whole command.)"""
    module_ast = ast.parse(source)
    others = [p.read_text() for p in (tree / "snapferry").rglob("*.py") if p != target]
    tests_text = {f: (tree / f).read_text() for f in files}
    found: dict[str, list[str]] = {}
    for node in module_ast.body:
        if not isinstance(node, ast.Assign | ast.AnnAssign):
            continue
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        names = [n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)]
        if not names or any(re.search(rf"\b{re.escape(n)}\b", text)
                            for n in names for text in others):
            continue
        tests: set[str] = {f for f, text in tests_text.items()
                           if any(re.search(rf"\b{re.escape(n)}\b", text) for n in names)}
        read_at_import = False
        for use in ast.walk(module_ast):
            if isinstance(use, ast.Name) and use.id in names and isinstance(use.ctx, ast.Load):
                for at in _statement_lines(source, use.lineno):
                    read_at_import |= at in at_import
                    tests |= set(lines.get(str(at), []))
        if read_at_import:
            continue
        tests = {t for t in tests if "::" not in t or _file(t) not in tests}
        for line in range(node.lineno, (node.end_lineno or node.lineno) + 1):
            found[str(line)] = sorted(tests)
    return found


def _statement_lines(source: str, line: int) -> range:
    """The lines of the smallest statement around `line` (a compound one: its header)."""
    best: tuple[int, int] | None = None
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.stmt | ast.excepthandler):
            continue
        start = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", []))])
        body = getattr(node, "body", None)
        end = body[0].lineno - 1 if body and isinstance(body, list) else node.end_lineno
        end = max(start, end or start)
        if start <= line <= end and (best is None or end - start < best[1] - best[0]):
            best = (start, end)
    return range(best[0], best[1] + 1) if best else range(line, line + 1)


def changed_lines(original: str, mutated: str) -> list[int]:
    before, after = original.splitlines(), mutated.splitlines()
    lines: list[int] = []
    for tag, i1, i2, _, _ in difflib.SequenceMatcher(None, before, after,
                                                      autojunk=False).get_opcodes():
        if tag != "equal":
            lines += list(range(i1 + 1, max(i1, i2) + 1)) or [max(1, i1)]
    return lines


def choose(found: dict, mutated: str) -> tuple[str, list[str]]:
    """('full', []) or ('tests', node ids) or ('integration', files) for this mutant."""
    source = found["source"]
    wanted: list[str] = []
    for line in changed_lines(source, mutated):
        for at in _statement_lines(source, line):
            if str(at) in found.get("constants", {}):
                wanted += [t for t in found["constants"][str(at)] if t not in wanted]
                continue
            if at in found["at_import"]:
                return "full", []
            wanted += [t for t in found["lines"].get(str(at), []) if t not in wanted]
    if wanted:
        return "tests", wanted
    if found["integration"]:
        return "integration", found["integration"]
    return "full", []


def _stages(found: dict, kind: str, tests: list[str]) -> list[list[str]]:
    """pytest's arguments for each stage of this mutant's run, cheapest first."""
    if kind == "full":
        return found["full"]
    if kind == "integration":
        plugins = [] if any(f in found["hypothesis"] for f in tests) else \
            ["-p", "no:hypothesispytest"]
        return [[*PYTEST_ARGS, *plugins, *tests]]
    plain = [t for t in tests if _file(t) not in found["hypothesis"]]
    generated = [t for t in tests if t not in plain]
    return [s for s in ([*PYTEST_ARGS, "-p", "no:hypothesispytest", *plain] if plain else [],
                        [*PYTEST_ARGS, *generated] if generated else []) if s]


def _run_stage(args: list[str]) -> int:
    """In a child of the warm server (warm.py) if run.py started one, else a fresh pytest."""
    code = run_pytest(args)
    if code is None:
        code = subprocess.run([sys.executable, "-m", "pytest", *args]).returncode
    return code


def main() -> int:
    found = json.loads(Path(sys.argv[1]).read_text())
    mutated = Path(found["module"]).read_text()  # cwd is the scratch tree
    for stage in _stages(found, *choose(found, mutated)):
        code = _run_stage(stage)
        if code:
            return code
    return 0


if __name__ == "__main__":
    sys.exit(main())
