"""Mutation testing with cosmic-ray: `make mutation`, or `python -m tests.mutation.run [MODULE...]`.

Each module is mutated in a scratch copy of the tree (`.mutation/tree-PID`), never in the working
tree, so an interrupted run cannot leave a mutant behind in the source. Tests run from that
copy with PYTHONPATH pointing at it, so the `snapferry serve` subprocess that integration tests
start imports the mutant too (cosmic-ray edits files in place and runs any command; mutmut 3's
copied tree and in-process trampolines do not reach that subprocess: see RELIABILITY.md).

Each module is tested by the fast tests that exercise it (TARGETS), with `-x` so a kill stops
at its first failing test, and a per-mutant timeout of a few times the clean run. Results stay
in `.mutation/<module>-<package>.sqlite`; `--resume` keeps the killed ones and retests only what is
pending or survived (after adding tests). A report of scores and survivors is written to
`.mutation/report.md`.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import functools
import json
import os
import shlex
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.mutation import warm
from tests.mutation.select import PYTEST_ARGS

ROOT = Path(__file__).resolve().parents[2]
WORK = ROOT / ".mutation"
# One scratch tree per run, so two runs (on different modules) can go side by side.
TREE = WORK / f"tree-{os.getpid()}"
SESSIONS = WORK  # --sessions: another folder, e.g. to measure with --without some tests
WITHOUT: set[str] = set()
# Per-mutant timeout as a multiple of the module's clean run (--timeout-factor). 4 by
# default; a module whose mutants often hang (pace loops, polls) pays that per hang.
TIMEOUT_FACTOR = 4.0
# --shard K/N: this process tests every N-th mutant (the K-th of each N) in a session of its
# own, so N processes can go side by side on a module whose mutants mostly wait on real
# clocks (the copier's). The others are marked skipped with this output and counted nowhere.
SHARD: tuple[int, int] | None = None
OTHER_SHARD = "another shard"

# A `file::test` entry names tests that need no hypothesis in a file whose other tests do:
# here the table of cases, which kills most mutants, runs in the cheap first stage and the
# property tests of the same file only for what survives it.
_POLICY_TESTS = ["tests/unit/test_policy_edges.py", "tests/unit/test_policy_unknown.py",
                 "tests/unit/test_policy_rules.py",
                 "tests/unit/test_policy_documents.py",
                 "tests/unit/test_domain_rules.py",
                 "tests/unit/test_policy_cases.py::test_policy_case",
                 "tests/unit/test_policy_cases.py"]

# The small domain modules' rules, one by one: most of their mutants die here, before any
# integration file starts a server.
_SMALL = "tests/unit/test_small_domain_rules.py"

# Module -> the tests that exercise it, unit tests first. Data and security first: the order
# is the order of a run, so a bounded run covers what matters most.
TARGETS: dict[str, list[str]] = {
    "snapferry/domain/encryption.py": ["tests/unit/test_encryption_rules.py"],
    # The policy evaluator (policy.py and the four modules it is split over) is guarded by
    # unit tests alone: every rule is reachable without a server.
    "snapferry/domain/policy.py": _POLICY_TESTS,
    "snapferry/domain/conditions.py": _POLICY_TESTS,
    "snapferry/domain/wildcards.py": _POLICY_TESTS,
    "snapferry/domain/arns.py": _POLICY_TESTS,
    "snapferry/domain/policy_documents.py": _POLICY_TESTS,
    "snapferry/domain/copies.py": ["tests/unit/test_domain_rules.py",
                                   "tests/unit/test_presigned.py"],
    "snapferry/domain/envelope.py": ["tests/unit/test_domain_rules.py",
                                     "tests/integration/test_kms_and_encryption.py"],
    "snapferry/domain/tokens.py": ["tests/unit/test_domain_rules.py",
                                   "tests/integration/test_block_tokens.py",
                                   "tests/integration/test_ebs_direct.py"],
    "snapferry/engine/presigned.py": ["tests/unit/test_presigned.py",
                                      "tests/unit/test_presigned_rules.py"],
    "snapferry/wire/sigv4.py": ["tests/unit/test_sigv4_rules.py", "tests/unit/test_sigv4.py",
                                "tests/unit/test_presigned.py",
                                "tests/integration/test_foundation.py"],
    "snapferry/domain/keys.py": ["tests/unit/test_domain_rules.py",
                                 "tests/integration/test_key_deletion_window.py",
                                 "tests/integration/test_kms_and_encryption.py"],
    "snapferry/domain/snapshots.py": ["tests/unit/test_domain_rules.py",
                                      "tests/integration/test_ebs_direct.py"],
    "snapferry/services/context.py": ["tests/unit/test_request_context_rules.py",
                                      "tests/unit/test_authorize.py",
                                      "tests/integration/test_authorize_first.py",
                                      "tests/integration/test_permissions.py",
                                      "tests/integration/test_kms_and_encryption.py"],
    "snapferry/services/keyring.py": ["tests/unit/test_keyring_rules.py",
                                      "tests/unit/test_copier_rules.py",
                                      "tests/integration/test_kms_and_encryption.py"],
    # The clocks: the shifted one is how integration tests move a server's time.
    "snapferry/domain/clock.py": ["tests/unit/test_clock.py",
                                  "tests/integration/test_permissions.py"],
    "snapferry/domain/accounts.py": [_SMALL, "tests/integration/test_foundation.py"],
    "snapferry/domain/blocks.py": [_SMALL, "tests/integration/test_ebs_direct.py"],
    "snapferry/domain/filters.py": [_SMALL, "tests/integration/test_sharing_and_describe.py"],
    "snapferry/domain/idempotency.py": [_SMALL, "tests/integration/test_foundation.py"],
    "snapferry/domain/ids.py": [_SMALL, "tests/integration/test_foundation.py"],
    "snapferry/domain/regions.py": [_SMALL, "tests/integration/test_foundation.py"],
    "snapferry/domain/tags.py": [_SMALL, "tests/integration/test_sharing_and_describe.py"],
    "snapferry/domain/volumes.py": [_SMALL, "tests/integration/test_foundation.py"],
    "snapferry/engine/background.py": ["tests/unit/test_background_rules.py",
                                       "tests/unit/test_storage.py",
                                       "tests/unit/test_collection_races.py",
                                       "tests/unit/test_metrics_and_fault_rules.py",
                                       "tests/integration/test_ebs_direct.py"],
    "snapferry/engine/metrics.py": ["tests/unit/test_metrics_and_fault_rules.py",
                                    "tests/integration/test_operations.py"],
    "snapferry/engine/copier.py": ["tests/unit/test_copier_rules.py",
                                   "tests/unit/test_copy_engine.py",
                                   "tests/integration/test_copies.py",
                                   "tests/integration/test_operations.py"],
    "snapferry/domain/faults.py": ["tests/unit/test_faults.py",
                                   "tests/unit/test_metrics_and_fault_rules.py",
                                   "tests/unit/test_copier_rules.py",
                                   "tests/integration/test_operations.py"],
    # The security modules of IAM, STS and S3 (fourth pass): their rules' unit tests, then
    # the integration files that drive them through a real server.
    "snapferry/domain/s3_access.py": ["tests/unit/test_s3_access_rules.py",
                                      "tests/integration/test_s3.py",
                                      "tests/integration/test_s3_iam.py"],
    "snapferry/domain/s3_actions.py": ["tests/unit/test_s3_actions.py",
                                       "tests/unit/test_actions.py",
                                       "tests/integration/test_s3_iam.py"],
    "snapferry/domain/sessions.py": ["tests/unit/test_sessions.py",
                                     "tests/unit/test_policy_documents.py",
                                     "tests/integration/test_iam_api.py"],
    "snapferry/domain/iam.py": ["tests/unit/test_iam_rules.py",
                                "tests/unit/test_policy_documents.py",
                                "tests/integration/test_iam_api.py"],
    "snapferry/domain/actions.py": ["tests/unit/test_actions.py",
                                    "tests/unit/test_s3_actions.py",
                                    "tests/unit/test_policy_unknown.py",
                                    "tests/integration/test_authorize_first.py",
                                    "tests/integration/test_permissions.py"],
    # Unit tests of their own since session 22, then the integration files that reach them
    # through a server.
    "snapferry/domain/authorization_messages.py": ["tests/unit/test_authorization_messages.py",
                                                   "tests/integration/test_permissions.py",
                                                   "tests/integration/test_cross_account_sides.py"],
    "snapferry/domain/managed_policies.py": ["tests/unit/test_managed_policies.py",
                                             "tests/integration/test_iam_api.py",
                                             "tests/integration/test_permissions.py"],
    "snapferry/domain/buckets.py": ["tests/unit/test_bucket_rules.py",
                                    "tests/unit/test_s3_actions.py",
                                    "tests/integration/test_s3.py",
                                    "tests/integration/test_s3_cli.py"],
    "snapferry/domain/checksums.py": ["tests/unit/test_checksum_rules.py",
                                      "tests/integration/test_s3.py"],
    "snapferry/domain/bundles.py": ["tests/unit/test_bundle_rules.py",
                                    "tests/integration/test_s3_bundles.py",
                                    "tests/integration/test_s3_image_copies.py"],
    "snapferry/domain/bundle_copies.py": ["tests/unit/test_bundle_rules.py",
                                          "tests/unit/test_s3_actions.py",
                                          "tests/integration/test_s3_image_copies.py"],
    "snapferry/engine/bundle_copier.py": ["tests/unit/test_bundle_copier_rules.py",
                                          "tests/integration/test_s3_image_copies.py"],
    "snapferry/domain/images.py": ["tests/unit/test_image_rules.py",
                                   "tests/unit/test_images.py",
                                   "tests/integration/test_images.py",
                                   "tests/integration/test_copy_image.py"],
}

# Replacing an arithmetic operator by a bitwise one, a shift or a power adds ten mutants per
# `+` (mostly string concatenation here) and finds nothing the arithmetic swaps do not.
EXCLUDED_OPERATORS = [r"core/ReplaceBinaryOperator_.*_(Pow|RShift|LShift|BitOr|BitAnd|BitXor)$"]


def _bin(name: str) -> str:
    return str(Path(sys.executable).with_name(name))


def _copy_tree() -> None:
    shutil.rmtree(TREE, ignore_errors=True)
    TREE.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for part in ("snapferry", "tests"):
        shutil.copytree(ROOT / part, TREE / part, ignore=ignore)
    shutil.copy2(ROOT / "pyproject.toml", TREE / "pyproject.toml")


def _exists(test: str) -> bool:
    return (TREE / test.split("::")[0]).exists()


def _plugins(tests: list[str]) -> list[str]:
    return [] if any("hypothesis" in (TREE / t).read_text() for t in tests) else \
        ["-p", "no:hypothesispytest"]


def _stages(module: str) -> list[list[str]]:
    """The module's tests in stages, cheapest first, as pytest's arguments; each stage runs
    only if the one before passed: most mutants die in the first, plain unit tests, for a
    second or two each. (Loading hypothesis costs seconds per process; integration tests
    start a server.)"""
    tests = [t for t in TARGETS[module] if _exists(t) and t not in WITHOUT]
    plain = [t for t in tests if "/unit/" in t and ("::" in t or
                                                   "hypothesis" not in (TREE / t).read_text())]
    generated = [t for t in tests if "/unit/" in t and t not in plain]
    integration = [t for t in tests if "/unit/" not in t]
    stages = [["-p", "no:hypothesispytest", *plain] if plain else [], generated,
              [*_plugins(integration), *integration] if integration else []]
    return [[*PYTEST_ARGS, *stage] for stage in stages if stage]


def _test_command(module: str) -> str:
    """The stages as one shell command, for cosmic-ray without `--select`."""
    pytest = shlex.join([sys.executable, "-m", "pytest"])
    return "sh -c " + shlex.quote(" && ".join(f"{pytest} {shlex.join(stage)}"
                                              for stage in _stages(module)))


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(TREE), "PYTHONDONTWRITEBYTECODE": "1"}


def _baseline(module: str) -> float:
    """Run the module's tests on the clean copy: they must pass; their time sets the timeout."""
    started = time.monotonic()
    done = subprocess.run(shlex.split(_test_command(module)), cwd=TREE, env=_env(),
                          capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{module}: its tests fail before any mutation:\n{done.stdout[-3000:]}")
    return time.monotonic() - started


def _shard_suffix(shard: tuple[int, int] | None) -> str:
    return f".shard{shard[0]}of{shard[1]}" if shard else ""


def _stem(module: str, shard: tuple[int, int] | None = None) -> str:
    """The module's file names in SESSIONS: one set per shard, so shards never share one."""
    return Path(module).stem + "-" + Path(module).parent.name + _shard_suffix(shard)


def _config(module: str, timeout: float, command: str) -> Path:
    path = SESSIONS / (_stem(module, SHARD) + ".toml")
    excluded = ", ".join(json.dumps(e) for e in EXCLUDED_OPERATORS)
    path.write_text(
        "[cosmic-ray]\n"
        f"module-path = {json.dumps(module)}\n"
        f"timeout = {timeout:.0f}\n"
        "excluded-modules = []\n"
        f"test-command = {json.dumps(command)}\n"
        "[cosmic-ray.distributor]\nname = \"local\"\n"
        f"[cosmic-ray.filters.operators-filter]\nexclude-operators = [{excluded}]\n"
    )
    return path


@functools.cache
def _annotation_spans(module: str) -> tuple[tuple[int, int, int, int], ...]:
    """Where the module's type annotations are: (line, col, end line, end col)."""
    spans = []
    for node in ast.walk(ast.parse((ROOT / module).read_text())):
        found = []
        if isinstance(node, ast.arg | ast.AnnAssign) and node.annotation is not None:
            found.append(node.annotation)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.returns:
            found.append(node.returns)
        spans += [(a.lineno, a.col_offset, a.end_lineno or a.lineno, a.end_col_offset or 0)
                  for a in found]
    return tuple(spans)


def in_annotation(module: str, start: tuple[int, int]) -> bool:
    """Every module here has `from __future__ import annotations`: its annotations are never
    evaluated, so mutating one (`bool | None` -> `bool + None`) is an equivalent mutant."""
    return any((line, col) <= tuple(start) < (end_line, end_col)
               for line, col, end_line, end_col in _annotation_spans(module))


def _skip_annotations(module: str, session: Path) -> None:
    from cosmic_ray.work_db import WorkDB, use_db
    from cosmic_ray.work_item import WorkerOutcome, WorkResult

    with use_db(str(session), WorkDB.Mode.open) as db:
        for item in list(db.pending_work_items):
            if in_annotation(module, item.mutations[0].start_pos):
                db.set_result(item.job_id, WorkResult(output="type annotation",
                                                      worker_outcome=WorkerOutcome.SKIPPED))


def _session(module: str, shard: tuple[int, int] | None = None) -> Path:
    return SESSIONS / (_stem(module, shard) + ".sqlite")


def _shard_sessions(module: str) -> list[Path]:
    return sorted(SESSIONS.glob(_stem(module) + ".shard*of*.sqlite"))


def _mutant_key(item: Any) -> tuple[Any, ...]:
    """A mutant's identity across sessions (job ids are random per `cosmic-ray init`)."""
    mutation = item.mutations[0]
    return (str(mutation.module_path), tuple(mutation.start_pos), tuple(mutation.end_pos),
            mutation.operator_name, mutation.occurrence)


def _keep_shard(session: Path, shard: tuple[int, int]) -> None:
    """Mark every mutant not in this shard skipped. The order is the mutants' own (place,
    operator, occurrence), the same in every shard's session, so the N shards split the
    module's mutants between them with none left out and none tested twice."""
    from cosmic_ray.work_db import WorkDB, use_db
    from cosmic_ray.work_item import WorkerOutcome, WorkResult

    with use_db(str(session), WorkDB.Mode.open) as db:
        items = {_mutant_key(item): item for item in db.work_items}
        mine = in_shard(list(items), shard)
        for key, item in items.items():
            if key not in mine:
                db.set_result(item.job_id, WorkResult(output=OTHER_SHARD,
                                                      worker_outcome=WorkerOutcome.SKIPPED))


def in_shard(keys: list[tuple[Any, ...]], shard: tuple[int, int]) -> set[tuple[Any, ...]]:
    """The K-th of every N keys in their sorted order (shard = (K, N), K from 1)."""
    number, count = shard
    return {key for index, key in enumerate(sorted(keys)) if index % count == number - 1}


def _merge_shards(module: str) -> None:
    """The shards' results in the module's one session (for an unsharded --resume): a copy of
    the first shard's session, with each mutant another shard tested given that result."""
    from cosmic_ray.work_db import WorkDB, use_db

    shards = _shard_sessions(module)
    results: dict[tuple[Any, ...], Any] = {}
    for path in shards:
        with use_db(str(path), WorkDB.Mode.open) as db:
            for item, result in db.completed_work_items:
                if result.output != OTHER_SHARD:
                    results[_mutant_key(item)] = result
    session = _session(module)
    shutil.copy2(shards[0], session)
    with sqlite3.connect(session) as plain:  # what no shard got to is pending again
        plain.execute("DELETE FROM work_results WHERE output = ?", (OTHER_SHARD,))
    with use_db(str(session), WorkDB.Mode.open) as db:
        for item in db.work_items:
            if (result := results.get(_mutant_key(item))) is not None:
                db.set_result(item.job_id, result)
    for path in shards:
        path.unlink()


def _forget_survivors(session: Path) -> None:
    """Make survivors, and mutants the tool failed to run, pending again."""
    with sqlite3.connect(session) as db:
        db.execute("DELETE FROM work_results WHERE test_outcome = 'SURVIVED'"
                   " OR worker_outcome IN ('EXCEPTION', 'ABNORMAL')")


def _select_command(module: str) -> str:
    """--select: map the module's lines to the unit tests that run them (one run under
    coverage), and test each mutant by the tests of its line only (tests/mutation/select.py)."""
    from tests.mutation.select import build_map

    tests = [t for t in TARGETS[module] if _exists(t) and t not in WITHOUT]
    unit = [t for t in tests if "/unit/" in t]
    integration = [t for t in tests if "/unit/" not in t]
    out = SESSIONS / (_stem(module, SHARD) + ".select.json")
    started = time.monotonic()
    if unit:
        found = build_map(module, TREE, unit, integration, _stages(module), out)
        covered = len(found["lines"])
        print(f"{module}: {covered} lines mapped to their tests in "
              f"{time.monotonic() - started:.0f}s", flush=True)
    else:  # nothing to map: every mutant runs the integration files
        out.write_text(json.dumps({"module": module, "source": (TREE / module).read_text(),
                                   "lines": {}, "at_import": [], "unit": [],
                                   "integration": integration, "hypothesis": [],
                                   "full": _stages(module)}))
    return f"{sys.executable} -m tests.mutation.select {out}"


@contextlib.contextmanager
def _warm_server(wanted: bool) -> Iterator[None]:
    """With --select, the warm server (warm.py) that forks each mutant's pytest stages from
    a process that has the third-party imports done; its address in the environment that
    cosmic-ray passes to select.py."""
    if not wanted:
        yield
        return
    address = WORK / f"warm-{os.getpid()}.sock"
    server = subprocess.Popen([sys.executable, "-m", "tests.mutation.warm", str(address)],
                              cwd=TREE, env=_env(), stdout=subprocess.PIPE, text=True)
    try:
        if server.stdout is None or server.stdout.readline().strip() != "ready":
            sys.exit("the warm server did not start; --cold runs without it")
        os.environ[warm.ADDRESS] = str(address)
        yield
    finally:
        os.environ.pop(warm.ADDRESS, None)
        server.kill()
        server.wait()
        address.unlink(missing_ok=True)


def run_module(module: str, resume: bool, select: bool = False) -> None:
    if not any(_exists(t) and t not in WITHOUT for t in TARGETS[module]):
        sys.exit(f"{module}: none of its tests {TARGETS[module]} exist")
    if SHARD is None and resume and not _session(module).exists() and _shard_sessions(module):
        _merge_shards(module)
    session = _session(module, SHARD)
    clean = _baseline(module)
    timeout = max(60.0, TIMEOUT_FACTOR * clean)
    command = _select_command(module) if select else _test_command(module)
    config = _config(module, timeout, command)
    run = {"cwd": TREE, "env": _env(), "check": True}
    if resume and session.exists():
        _forget_survivors(session)
    else:
        session.unlink(missing_ok=True)
        subprocess.run([_bin("cosmic-ray"), "init", str(config), str(session)], **run)
        subprocess.run([_bin("cr-filter-operators"), str(session), str(config)], **run)
        subprocess.run([_bin("cr-filter-pragma"), str(session)], **run)
        _skip_annotations(module, session)
        if SHARD:
            _keep_shard(session, SHARD)
    print(f"{module}: clean run {clean:.0f}s, timeout {timeout:.0f}s", flush=True)
    started = time.monotonic()
    subprocess.run([_bin("cosmic-ray"), "exec", str(config), str(session)], **run)
    print(f"{module}: mutants tested in {time.monotonic() - started:.0f}s", flush=True)


def _dumped(module: str) -> Iterator[tuple[dict[str, Any], dict[str, Any] | None]]:
    """Every mutant of the module with its result: from its session, or else from its shards'
    (each mutant from the shard that tested it)."""
    sessions = [_session(module)] if _session(module).exists() else _shard_sessions(module)
    for session in sessions:
        dump = subprocess.run([_bin("cosmic-ray"), "dump", str(session)],
                              capture_output=True, text=True, check=True)
        for line in dump.stdout.splitlines():
            item, result = json.loads(line)
            if result is None or result.get("output") != OTHER_SHARD:
                yield item, result


def _results(module: str) -> tuple[dict[str, int], list[str]]:
    """Counts by outcome, and a line per survivor: where, which operator, the diff."""
    counts = {"killed": 0, "survived": 0, "skipped": 0, "pending": 0, "incompetent": 0,
              "error": 0}
    survivors: list[str] = []
    for item, result in _dumped(module):
        if result is None:
            counts["pending"] += 1
            continue
        mutation = item["mutations"][0]
        if result["worker_outcome"] == "skipped" or in_annotation(module,
                                                                  mutation["start_pos"]):
            counts["skipped"] += 1
            continue
        if result["worker_outcome"] != "normal":  # the tool failed, not the tests: rerun
            counts["error"] += 1
            continue
        outcome = (result.get("test_outcome") or "incompetent").lower()
        counts[outcome] = counts.get(outcome, 0) + 1
        if outcome == "survived":
            diff = [d for d in (result.get("diff") or "").splitlines()
                    if d[:1] in "+-" and not d.startswith(("+++", "---"))]
            survivors.append(f"- {module}:{mutation['start_pos'][0]} "
                             f"{mutation['operator_name']}: `{' / '.join(diff)}`")
    return counts, survivors


def report(modules: list[str]) -> str:
    lines = ["| module | mutants tested | killed | survived | score | not yet run |",
             "|---|---|---|---|---|---|"]
    survivors: list[str] = []
    totals = [0, 0, 0]
    for module in modules:
        counts, found = _results(module)
        tested = counts["killed"] + counts["survived"] + counts["incompetent"]
        waiting = counts["pending"] + counts["error"]
        if not tested:
            lines.append(f"| {module} | not run | | | | |")
            continue
        killed = counts["killed"] + counts["incompetent"]
        totals = [totals[0] + tested, totals[1] + killed, totals[2] + counts["survived"]]
        lines.append(f"| {module} | {tested} | {killed} | {counts['survived']} | "
                     f"{100 * killed / tested:.1f}% | {waiting or ''} |")
        survivors += found
    if totals[0]:
        lines.append(f"| **all run** | {totals[0]} | {totals[1]} | {totals[2]} | "
                     f"{100 * totals[1] / totals[0]:.1f}% | |")
    return "\n".join([*lines, "", "Survivors:", *survivors, ""])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="*", help="paths under snapferry/ (default: all)")
    parser.add_argument("--resume", action="store_true",
                        help="keep recorded kills; retest pending and surviving mutants")
    parser.add_argument("--select", action="store_true",
                        help="test each mutant only by the tests that run its line")
    parser.add_argument("--cold", action="store_true",
                        help="with --select: start every pytest fresh, not from the warm server")
    parser.add_argument("--shard", metavar="K/N",
                        help="test only the K-th of every N mutants, in a session of its own")
    parser.add_argument("--report-only", action="store_true")
    parser.add_argument("--without", action="append", default=[], metavar="TEST_FILE",
                        help="leave these tests out (to measure what they add)")
    parser.add_argument("--timeout-factor", type=float, default=4.0,
                        help="per-mutant timeout as a multiple of the clean run (default 4)")
    parser.add_argument("--sessions", type=Path, default=WORK, help="where results are kept")
    args = parser.parse_args()
    global SESSIONS
    SESSIONS = args.sessions.resolve()
    SESSIONS.mkdir(parents=True, exist_ok=True)
    WITHOUT.update(args.without)
    global TIMEOUT_FACTOR
    TIMEOUT_FACTOR = args.timeout_factor
    if args.shard:
        global SHARD
        number, count = (int(part) for part in args.shard.split("/"))
        if not 1 <= number <= count:
            sys.exit(f"--shard {args.shard}: K must be 1 to N")
        SHARD = (number, count)
    modules = [m if m.startswith("snapferry/") else f"snapferry/{m}" for m in args.modules]
    unknown = [m for m in modules if m not in TARGETS]
    if unknown:
        sys.exit(f"no tests mapped for {unknown}; add them to TARGETS")
    modules = modules or list(TARGETS)
    WORK.mkdir(exist_ok=True)
    if not args.report_only:
        _copy_tree()
        try:
            with _warm_server(args.select and not args.cold):
                for module in modules:
                    run_module(module, args.resume, args.select)
        finally:
            shutil.rmtree(TREE, ignore_errors=True)
    text = report(modules)
    (SESSIONS / f"report{_shard_suffix(SHARD)}.md").write_text(text)  # shards side by side
    print(text)


if __name__ == "__main__":
    main()
