"""Fault rules: what they match, which fails first, the pace, the throttle draw, and the
schema step that adds their table."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import insert, inspect, select

from snapferry.domain import faults
from snapferry.domain.faults import COPY, THROTTLE, FaultRule
from snapferry.storage import faults as fault_store
from snapferry.storage import metadata


def copy_rule(**fields: object) -> FaultRule:
    return FaultRule(**{"rule_id": "r", "kind": COPY, "fail_at": 0.5, "message": "m",
                        **fields})  # type: ignore[arg-type]


def test_copy_rules_match_region_account_and_either_snapshot() -> None:
    rules = [copy_rule(rule_id="any"), copy_rule(rule_id="region", region="eu-west-1"),
             copy_rule(rule_id="account", account_id="111111111111"),
             copy_rule(rule_id="source", resource_id="snap-src"),
             copy_rule(rule_id="dest", resource_id="snap-dst"),
             FaultRule("throttle", THROTTLE, operation="CopySnapshot")]
    found = faults.copy_rules(rules, "eu-west-1", "111111111111", ("snap-src", "snap-dst"))
    assert [rule.rule_id for rule in found] == ["any", "region", "account", "source", "dest"]
    elsewhere = faults.copy_rules(rules, "us-east-1", "222222222222", ("snap-other", "snap-x"))
    assert [rule.rule_id for rule in elsewhere] == ["any"]


def test_the_earliest_failure_wins_and_the_slowest_pace() -> None:
    late, early = copy_rule(rule_id="late", fail_at=0.9), copy_rule(rule_id="early", fail_at=0.2)
    slow = copy_rule(rule_id="slow", fail_at=None, message=None, seconds_per_gib=30.0)
    assert faults.failing([late, early, slow]) == early
    assert faults.failing([slow]) is None
    assert faults.seconds_per_gib([slow], None) == 30.0
    assert faults.seconds_per_gib([slow], 60.0) == 60.0
    assert faults.seconds_per_gib([late], None) is None


def test_throttle_rules_match_service_operation_and_draw_their_fraction() -> None:
    half = FaultRule("half", THROTTLE, service="ec2", operation="DescribeSnapshots",
                     fraction=0.5)
    assert faults.throttle_rules([half], "ec2", "DescribeSnapshots", "us-east-1", "1") == [half]
    assert faults.throttle_rules([half], "ec2", "DescribeVolumes", "us-east-1", "1") == []
    assert faults.throttle_rules([half], "kms", "DescribeSnapshots", "us-east-1", "1") == []
    assert faults.rolls(half, draw=0.49) and not faults.rolls(half, draw=0.5)
    error = faults.throttled("ec2", "DescribeSnapshots")
    assert (error.code, error.status) == ("RequestLimitExceeded", 503)
    assert (faults.throttled("kms", "Decrypt").code, faults.throttled("ebs", "x").code) == (
        "ThrottlingException", "RequestThrottledException")


@pytest.mark.parametrize("rule, problem", [
    (copy_rule(fail_at=None, message=None), "--fail-at"),
    (copy_rule(fail_at=1.5), "from 0 to 1"),
    (copy_rule(message=None), "--message"),
    (copy_rule(fail_at=None, seconds_per_gib=0.0), "positive"),
    (FaultRule("t", THROTTLE), "--operation"),
    (FaultRule("t", THROTTLE, service="s3", operation="GetObject"), "--service"),
    (FaultRule("t", THROTTLE, operation="X", fraction=0.0), "--fraction"),
    (FaultRule("t", THROTTLE, operation="X", remaining=0), "--count"),
])
def test_rules_that_could_do_nothing_are_refused(rule: FaultRule, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        faults.check(rule)


def test_a_version_4_database_gains_the_fault_rules(tmp_path: Path) -> None:
    engine = metadata.open_engine(metadata.sqlite_url(tmp_path))
    version_4 = [t for t in metadata.metadata.sorted_tables
                 if t.name not in ("fault_rules", "event_counts")]
    with engine.begin() as conn:
        metadata.metadata.create_all(conn, tables=version_4)
        conn.execute(insert(metadata.schema_version).values(version=4))
    metadata.migrate(engine, seed=lambda conn: pytest.fail("seeded an existing database"))
    with engine.connect() as conn:
        assert {"fault_rules", "event_counts"} <= set(inspect(conn).get_table_names())
        # On to the latest version (later steps follow this one).
        assert conn.execute(select(metadata.schema_version.c.version)).scalar() == (
            metadata.SCHEMA_VERSION)
    engine.dispose()


def test_the_rule_cache_reads_again_when_the_rules_change(tmp_path: Path) -> None:
    """API requests read the rules from memory; a change made through `snapferry faults`
    (which replaces the stamp) is seen once the stamp is looked at again (every 10 ms at
    most), and any change within a second."""
    engine = metadata.open_engine(metadata.sqlite_url(tmp_path))
    metadata.migrate(engine, seed=lambda conn: None)
    now = [100.0]
    cache = fault_store.RuleCache(engine, tmp_path, monotonic=lambda: now[0])
    assert cache.rules() == []
    rule = FaultRule(rule_id="", kind=THROTTLE, operation="DescribeVolumes")
    with engine.begin() as conn:
        fault_store.add_rule(conn, rule, dt.datetime.now(dt.UTC))
    assert cache.rules() == []  # from memory: the database was not asked
    fault_store.mark_changed(tmp_path)
    now[0] += fault_store.STAMP_CHECK_SECONDS
    assert [r.operation for r in cache.rules()] == ["DescribeVolumes"]
    with engine.begin() as conn:
        fault_store.clear(conn)  # as another machine would: no stamp here
    assert len(cache.rules()) == 1
    now[0] += fault_store.FRESH_FOR_SECONDS
    assert cache.rules() == []
    engine.dispose()


def test_a_cached_rule_cannot_be_changed_by_whoever_reads_it(tmp_path: Path) -> None:
    """Every request thread of a process shares the RuleCache's rule objects: a caller
    that changed one (a throttle's `remaining` counted down in place, say) would change the
    rule for every other thread and never for the database. Rules are immutable values."""
    engine = metadata.open_engine(metadata.sqlite_url(tmp_path))
    metadata.migrate(engine, seed=lambda conn: None)
    with engine.begin() as conn:
        fault_store.add_rule(conn, FaultRule(rule_id="", kind=THROTTLE, operation="DescribeVolumes",
                                             remaining=3), dt.datetime.now(dt.UTC))
    cache = fault_store.RuleCache(engine, tmp_path)
    (rule,) = cache.rules()
    with pytest.raises(dataclasses.FrozenInstanceError):
        rule.remaining = 2  # type: ignore[misc]
    assert [r.remaining for r in cache.rules()] == [3]
    engine.dispose()
