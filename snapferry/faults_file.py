"""Fault rules from a TOML file (`snapferry serve --faults-file faults.toml`), beside the ones
`snapferry faults` adds. The server reads the file at start (refusing to start on a bad one)
and again whenever it changes, replacing every rule it put there before in one transaction,
so workers in other processes see the file's rules the way they see the CLI's. A file that
turns bad while running is logged and its last good rules stay.

    [[copy]]                      # fail and/or slow down snapshot copies
    id = "dr-drill"               # optional; listed as file:dr-drill
    region = "eu-west-1"          # optional: the copy's destination region
    account_id = "111111111111"   # optional
    snapshot_id = "snap-..."      # optional: a copy of or to this snapshot; or
    image_id = "ami-..."          #   every snapshot copy of an image copy of or to this image
    fail_at = 0.5                 # with message: fail at this fraction of progress
    message = "Simulated outage"
    seconds_per_gib = 60          # take at least this long per GiB

    [[throttle]]                  # answer API calls with AWS's throttling error
    service = "ec2"               # and/or operation
    operation = "DescribeSnapshots"
    fraction = 0.5                # optional, default 1: the share of calls throttled
    count = 3                     # optional: only the next 3 calls (reset when the file changes)
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import threading
import tomllib
from pathlib import Path
from typing import Any

from snapferry.domain import faults
from snapferry.domain.faults import FaultRule

log = logging.getLogger("snapferry")

FILE_PREFIX = "file:"  # the ids of the rules the file made; the CLI refuses to use it
MAX_ID = 32 - len(FILE_PREFIX)  # the rule_id column holds 32 characters
# How often the file's mtime is looked at: the longest a change waits to apply.
POLL_SECONDS = 0.25

_COMMON = {"id": str, "region": str, "account_id": str}
_KEYS: dict[str, dict[str, type | tuple[type, ...]]] = {
    faults.COPY: {**_COMMON, "snapshot_id": str, "image_id": str, "fail_at": (int, float),
                  "message": str, "seconds_per_gib": (int, float)},
    faults.THROTTLE: {**_COMMON, "service": str, "operation": str, "fraction": (int, float),
                      "count": int},
}


class FaultsFileError(ValueError):
    """The file cannot be used; the message names the file and the rule."""


def _rule(kind: str, number: int, table: Any) -> FaultRule:
    where = f"[[{kind}]] number {number}"
    if not isinstance(table, dict):
        raise FaultsFileError(f"{where} is not a table")
    allowed = _KEYS[kind]
    for key, value in table.items():
        if key not in allowed:
            raise FaultsFileError(f"{where}: unknown key {key!r} (known: "
                                  f"{', '.join(sorted(allowed))})")
        # bool is an int to isinstance, never a count or a fraction here
        if isinstance(value, bool) or not isinstance(value, allowed[key]):
            raise FaultsFileError(f"{where}: {key} has the wrong type ({value!r})")
    name = table.get("id") or f"{kind}-{number}"
    if len(name) > MAX_ID:
        raise FaultsFileError(f"{where}: id {name!r} is longer than {MAX_ID} characters")
    if table.get("snapshot_id") and table.get("image_id"):
        raise FaultsFileError(f"{where}: name a snapshot_id or an image_id, not both")
    image_id = table.get("image_id")
    if image_id is not None and not image_id.startswith("ami-"):
        raise FaultsFileError(f"{where}: image_id {image_id!r} is not an ami- id")

    def number_of(key: str) -> float | None:
        value = table.get(key)
        return None if value is None else float(value)

    rule = FaultRule(
        rule_id=FILE_PREFIX + name, kind=kind, region=table.get("region"),
        account_id=table.get("account_id"),
        resource_id=table.get("snapshot_id") or image_id,
        service=table.get("service"), operation=table.get("operation"),
        fail_at=number_of("fail_at"), message=table.get("message"),
        seconds_per_gib=number_of("seconds_per_gib"),
        fraction=float(table.get("fraction", 1.0)),
        remaining=table.get("count"))
    try:
        faults.check(rule)
    except ValueError as problem:
        raise FaultsFileError(f"{where}: {problem}") from None
    return rule


def parse(text: str) -> list[FaultRule]:
    """The rules a faults file holds, or FaultsFileError saying what is wrong."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as problem:
        raise FaultsFileError(f"not TOML: {problem}") from None
    unknown = set(document) - set(_KEYS)
    if unknown:
        raise FaultsFileError(f"unknown section(s) {', '.join(sorted(unknown))}: a faults file "
                              "holds [[copy]] and [[throttle]] tables")
    rules: list[FaultRule] = []
    for kind in _KEYS:
        tables = document.get(kind, [])
        if not isinstance(tables, list):
            raise FaultsFileError(f"{kind} must be an array of tables: write [[{kind}]]")
        rules.extend(_rule(kind, number, table) for number, table in enumerate(tables, 1))
    ids = [rule.rule_id for rule in rules]
    repeated = sorted({rule_id for rule_id in ids if ids.count(rule_id) > 1})
    if repeated:
        raise FaultsFileError(f"the id(s) {', '.join(repeated)} name more than one rule")
    return rules


def read(path: Path) -> list[FaultRule]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as problem:
        raise FaultsFileError(f"cannot read it: {problem}") from None
    return parse(text)


def _signature(path: Path) -> tuple[int, int, int] | None:
    """What changes when the file does: an edit in place (mtime, size) or a replacement
    (a new inode, as editors and `mv` make)."""
    try:
        found = os.stat(path)
    except OSError:
        return None
    return found.st_ino, found.st_mtime_ns, found.st_size


class FaultsFileWatcher:
    """Keeps the database's file rules equal to the file's, from start to stop."""

    def __init__(self, path: Path, storage: Any) -> None:
        self.path = path
        self.storage = storage
        self._seen: tuple[int, int, int] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def load(self) -> int:
        """Read the file and install its rules; FaultsFileError leaves the old ones."""
        from snapferry.storage import faults as fault_store

        seen = _signature(self.path)
        rules = read(self.path)
        with self.storage.engine.begin() as conn:
            fault_store.replace_rules(conn, FILE_PREFIX, rules, dt.datetime.now(dt.UTC))
        fault_store.mark_changed(self.storage.data_dir)
        self._seen = seen
        return len(rules)

    def check(self) -> None:
        """Load the file again if it changed since the last load (or the last failure)."""
        seen = _signature(self.path)
        if seen == self._seen:
            return
        try:
            count = self.load()
        except FaultsFileError as problem:
            self._seen = seen  # not again until it changes again
            log.error("faults file %s: %s; keeping its previous rules", self.path, problem)
            return
        log.warning("faults file %s: %d rule(s) loaded", self.path, count)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="snapferry-faults-file",
                                        daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(POLL_SECONDS):
            try:
                self.check()
            except Exception:  # a database hiccup: try again at the next poll
                log.exception("faults file %s: could not apply it", self.path)
                self._seen = None

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
