"""Fault rules in the database (domain/faults.py says what they mean), and the shared event
counters the metrics read."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import Engine, delete, insert, select, update
from sqlalchemy.engine import Connection

from snapferry.domain.faults import FaultRule
from snapferry.storage.metadata import (
    event_counts,
    fault_rules,
    image_block_devices,
    images,
    insert_ignoring_conflict,
)

_FIELDS = [field.name for field in dataclasses.fields(FaultRule)]
# Replaced after every change of the rules, so processes on this machine see it at once.
CHANGED_STAMP = "faults.changed"
# How stale a process may see a change made elsewhere (another machine, a shared database).
FRESH_FOR_SECONDS = 1.0
# How stale it may see a change made on this machine (the stamp): the stamp is looked at no
# more often than this, not on every request (a `stat` that fails while no rule was ever
# added: 5-7% of a simple request's Python work, measured under load with py-spy).
STAMP_CHECK_SECONDS = 0.01


def mark_changed(data_dir: Path) -> None:
    """Call after committing a change of the rules: a new stamp file (a new inode)."""
    temp = data_dir / f".{CHANGED_STAMP}.{os.getpid()}"
    os.close(os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600))
    os.replace(temp, data_dir / CHANGED_STAMP)


class RuleCache:
    """The rules as this process last read them, so an API request need not ask the database
    (a throttle check runs on every request). Read again when the stamp changed, or after
    FRESH_FOR_SECONDS. The stamp is looked at (at most every STAMP_CHECK_SECONDS) before the
    rules are read, so a change committed meanwhile is read again at the next look."""

    def __init__(self, engine: Engine, data_dir: Path,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.engine = engine
        self.stamp = data_dir / CHANGED_STAMP
        self._stamp_path = os.fspath(self.stamp)  # os.stat of a str: no pathlib per look
        self.monotonic = monotonic
        self._seen: tuple[int, int] | None = None
        self._read_at = -FRESH_FOR_SECONDS
        self._rules: list[FaultRule] = []
        self._looked: tuple[int, int] | None = None
        self._looked_at = -STAMP_CHECK_SECONDS

    def _stamp(self, now: float) -> tuple[int, int] | None:
        """The stamp's (inode, mtime), looked at again once STAMP_CHECK_SECONDS passed."""
        if now - self._looked_at < STAMP_CHECK_SECONDS:
            return self._looked
        try:
            found = os.stat(self._stamp_path)
        except FileNotFoundError:
            looked = None
        else:
            looked = (found.st_ino, found.st_mtime_ns)
        self._looked, self._looked_at = looked, now
        return looked

    def rules(self) -> list[FaultRule]:
        now = self.monotonic()
        stamp = self._stamp(now)
        if stamp != self._seen or now - self._read_at >= FRESH_FOR_SECONDS:
            with self.engine.connect() as conn:
                self._rules = list_rules(conn)
            self._seen, self._read_at = stamp, now
        return self._rules

    def current(self) -> list[FaultRule] | None:
        """The rules as rules() would give them now without asking the database; None when
        rules() would ask it (changed, or not fresh): the event loop must not wait on it."""
        now = self.monotonic()
        if self._stamp(now) != self._seen or now - self._read_at >= FRESH_FOR_SECONDS:
            return None
        return self._rules


def add_rule(conn: Connection, rule: FaultRule, now: dt.datetime) -> FaultRule:
    rule = dataclasses.replace(rule, rule_id=rule.rule_id or f"fault-{uuid.uuid4().hex[:12]}")
    conn.execute(insert(fault_rules).values(created_at=now, **dataclasses.asdict(rule)))
    return rule


def replace_rules(conn: Connection, prefix: str, rules: list[FaultRule],
                  now: dt.datetime) -> None:
    """Replace every rule whose id starts with `prefix` by `rules` (a faults file's)."""
    conn.execute(delete(fault_rules).where(fault_rules.c.rule_id.startswith(prefix,
                                                                            autoescape=True)))
    for rule in rules:
        add_rule(conn, rule, now)


def list_rules(conn: Connection) -> list[FaultRule]:
    rows = conn.execute(select(*(fault_rules.c[name] for name in _FIELDS))
                        .order_by(fault_rules.c.created_at, fault_rules.c.rule_id)).all()
    return [FaultRule(**row._mapping) for row in rows]


def clear(conn: Connection, rule_id: str | None = None) -> int:
    """Remove one rule, or every rule; returns how many went."""
    statement = delete(fault_rules)
    if rule_id is not None:
        statement = statement.where(fault_rules.c.rule_id == rule_id)
    return conn.execute(statement).rowcount


def take_one(conn: Connection, rule: FaultRule) -> bool:
    """Spend one of a count-limited rule's calls; False when another call took the last one.
    A rule with no count is never used up."""
    if rule.remaining is None:
        return True
    return conn.execute(update(fault_rules).where(
        fault_rules.c.rule_id == rule.rule_id, fault_rules.c.remaining > 0
    ).values(remaining=fault_rules.c.remaining - 1)).rowcount == 1


def image_copy_ids(conn: Connection, snapshot_id: str) -> tuple[str, ...]:
    """The image copy a snapshot copy belongs to (the image whose mappings name its
    destination snapshot), and that image's source: the ids an image fault rule names."""
    row = conn.execute(
        select(images.c.image_id, images.c.source_image_id)
        .join(image_block_devices, images.c.image_id == image_block_devices.c.image_id)
        .where(image_block_devices.c.snapshot_id == snapshot_id,
               images.c.source_image_id.is_not(None)).limit(1)).first()
    return tuple(value for value in row if value) if row else ()


def count_event(conn: Connection, name: str, by: int = 1) -> None:
    insert_ignoring_conflict(conn, event_counts, {"name": name, "value": 0})
    conn.execute(update(event_counts).where(event_counts.c.name == name)
                 .values(value=event_counts.c.value + by))


def event_totals(conn: Connection) -> dict[str, int]:
    # A Row is a tuple (SQLAlchemy 2.1 deprecates Result.tuples()): unpack it directly.
    return {name: value for name, value in
            conn.execute(select(event_counts.c.name, event_counts.c.value))}
