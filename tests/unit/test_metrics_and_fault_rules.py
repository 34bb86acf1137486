"""engine/metrics.py over a real SQLite data dir (each figure from the database rows it
counts), the copies listing's rate column, and the bounds of domain/faults.py's rules.

Before these, metrics.py was guarded only by tests/integration/test_operations.py (a server
start per mutant); tests/mutation/run.py runs this file first.
"""

from __future__ import annotations

import datetime as dt
import uuid
import warnings

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import insert
from sqlalchemy.exc import SADeprecationWarning

from snapferry.domain import copies as rules
from snapferry.domain import faults
from snapferry.domain.copies import CopyJob
from snapferry.domain.faults import COPY, HOLD, THROTTLE, FaultRule
from snapferry.engine import background
from snapferry.engine.metrics import CONTENT_TYPE, LATENCY_BUCKETS, Metrics, rate_text
from snapferry.storage import copies as job_store
from snapferry.storage import faults as fault_store
from snapferry.storage.datadir import Storage
from snapferry.storage.metadata import blocks

NOW = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.UTC)
MIB = 2**20


class FixedClock:
    def now(self) -> dt.datetime:
        return NOW


def job(state: str, mode: str | None = None, moved: int = 0,
        started: dt.datetime | None = None, finished: dt.datetime | None = None) -> CopyJob:
    return CopyJob(job_id=str(uuid.uuid4()), snapshot_id=f"snap-{uuid.uuid4().hex[:17]}",
                   account_id="111111111111",
                   access_key_id="k", dest_region="eu-west-1", source_region="us-east-1",
                   source_snapshot_id="snap-0", source_lineage_id=str(uuid.uuid4()),
                   state=state, cursor=0, blocks_done=0, bytes_moved=moved, fencing=0,
                   created_at=NOW, mode=mode, started_at=started, finished_at=finished)


def samples(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(metrics.exposition().decode()):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def test_copy_figures_are_counted_from_the_jobs_table(storage: Storage) -> None:
    with storage.engine.begin() as conn:
        for row in (job(rules.QUEUED), job(rules.QUEUED),
                    job(rules.RUNNING, rules.FULL, 4 * MIB, NOW - dt.timedelta(seconds=2)),
                    job(rules.RUNNING, rules.INCREMENTAL, 2 * MIB, NOW - dt.timedelta(seconds=4)),
                    job(rules.RUNNING, rules.FULL, 8 * MIB, None),
                    job(rules.COMPLETED, rules.FULL, 10 * MIB),
                    job(rules.FAILED, rules.SHARED, 0)):
            job_store.insert_job(conn, row)
        conn.execute(insert(blocks), [{"block_id": "a" * 64, "size": 1000},
                                      {"block_id": "b" * 64, "size": 24}])
        fault_store.count_event(conn, job_store.LEASE_TAKEOVERS, by=3)
    found = samples(Metrics(storage, FixedClock()))

    def copies(state: str, mode: str) -> float:
        return found[("snapferry_copies", (("mode", mode), ("state", state)))]

    assert copies("queued", "unplanned") == 2
    assert copies("running", "full") == 2
    assert copies("running", "incremental") == 1
    assert copies("completed", "full") == 1
    assert copies("failed", "shared") == 1
    assert found[("snapferry_copy_bytes_moved_total", (("mode", "full"),))] == 22 * MIB
    assert found[("snapferry_copy_bytes_moved_total", (("mode", "incremental"),))] == 2 * MIB
    assert found[("snapferry_copy_bytes_moved_total", (("mode", "unplanned"),))] == 0
    # 4 MiB over 2 s plus 2 MiB over 4 s; a running job not yet started counts nothing.
    assert found[("snapferry_copy_throughput_bytes_per_second", ())] == 2.5 * MIB
    assert found[("snapferry_copy_queue_depth", ())] == 2
    assert found[("snapferry_block_store_objects", ())] == 2
    assert found[("snapferry_block_store_bytes", ())] == 1024
    assert found[("snapferry_copy_lease_takeovers_total", ())] == 3


def test_event_totals_read_without_a_deprecation_warning(storage: Storage) -> None:
    """The counters as a dict, read with no SQLAlchemy deprecation (Result.tuples() warned
    on every metrics scrape)."""
    with storage.engine.begin() as conn:
        fault_store.count_event(conn, job_store.LEASE_TAKEOVERS, by=2)
        fault_store.count_event(conn, "other", by=5)
        fault_store.count_event(conn, job_store.LEASE_TAKEOVERS)
    with warnings.catch_warnings(), storage.engine.connect() as conn:
        warnings.simplefilter("error", SADeprecationWarning)
        assert fault_store.event_totals(conn) == {job_store.LEASE_TAKEOVERS: 3, "other": 5}


def test_only_running_copies_count_towards_the_throughput(storage: Storage) -> None:
    """Finished and queued copies keep their started_at (a failed one may have moved bytes),
    but only the running ones are moving data now; the queue depth counts queued copies only,
    whatever the other states' counts."""
    ten_s_ago = NOW - dt.timedelta(seconds=10)
    with storage.engine.begin() as conn:
        for row in (job(rules.RUNNING, rules.FULL, 10 * MIB, ten_s_ago),
                    job(rules.COMPLETED, rules.FULL, 40 * MIB, ten_s_ago, NOW),
                    job(rules.FAILED, rules.FULL, 20 * MIB, ten_s_ago, NOW),
                    job(rules.QUEUED, rules.FULL, 0, ten_s_ago),
                    job(rules.COMPLETED, rules.INCREMENTAL, 0)):
            job_store.insert_job(conn, row)
    found = samples(Metrics(storage, FixedClock()))
    assert found[("snapferry_copy_throughput_bytes_per_second", ())] == MIB
    assert found[("snapferry_copy_queue_depth", ())] == 1


def test_a_copy_started_this_instant_does_not_divide_by_zero(storage: Storage) -> None:
    with storage.engine.begin() as conn:
        job_store.insert_job(conn, job(rules.RUNNING, rules.FULL, 1000, NOW))
    found = samples(Metrics(storage, FixedClock()))
    assert found[("snapferry_copy_throughput_bytes_per_second", ())] == 1000 / 1e-3


def test_an_empty_store_has_zero_figures(storage: Storage) -> None:
    found = samples(Metrics(storage, FixedClock()))
    for name in ("snapferry_copy_throughput_bytes_per_second", "snapferry_copy_queue_depth",
                 "snapferry_block_store_objects", "snapferry_block_store_bytes",
                 "snapferry_copy_lease_takeovers_total"):
        assert found[(name, ())] == 0, name


def test_requests_are_counted_by_service_operation_and_status(storage: Storage) -> None:
    metrics = Metrics(storage, FixedClock())
    metrics.observe("ec2", "DescribeSnapshots", 200, 0.003)
    metrics.observe("ec2", "DescribeSnapshots", 200, 0.2)
    metrics.observe("ec2", "DescribeSnapshots", 400, 0.001)
    found = samples(metrics)
    labels = (("operation", "DescribeSnapshots"), ("service", "ec2"))
    assert found[("snapferry_requests_total", (*labels, ("status", "200")))] == 2
    assert found[("snapferry_requests_total", (*labels, ("status", "400")))] == 1
    assert found[("snapferry_request_duration_seconds_count", labels)] == 3
    assert found[("snapferry_request_duration_seconds_bucket", (("le", "0.001"), *labels))] == 1
    assert found[("snapferry_request_duration_seconds_bucket", (("le", "0.005"), *labels))] == 2
    assert found[("snapferry_request_duration_seconds_bucket", (("le", "0.1"), *labels))] == 2
    assert found[("snapferry_request_duration_seconds_bucket", (("le", "0.25"), *labels))] == 3
    assert found[("snapferry_request_duration_seconds_sum", labels)] == pytest.approx(0.204)


def test_label_sets_are_kept_up_to_4096_and_counted_past_them(storage: Storage) -> None:
    """observe() keeps each label set's children so a request does not ask labels() again,
    but at most MAX_CACHED_LABELS of them (an unknown Action is a label set too: a client
    naming random Actions must not grow the cache without bound); past the cap every request
    is still counted."""
    metrics = Metrics(storage, FixedClock())
    metrics.observe("ec2", "DescribeSnapshots", 200, 0.001)
    metrics.observe("ec2", "DescribeSnapshots", 200, 0.001)
    assert list(metrics._children) == [("ec2", "DescribeSnapshots", 200)]
    for n in range(4096):
        metrics.observe("ec2", f"Unknown{n}", 400, 0.001)
    assert len(metrics._children) == 4096
    assert ("ec2", "Unknown4094", 400) in metrics._children
    assert ("ec2", "Unknown4095", 400) not in metrics._children
    metrics.observe("ec2", "Unknown4095", 400, 0.002)
    found = samples(metrics)
    assert found[("snapferry_requests_total", (("operation", "Unknown4095"), ("service", "ec2"),
                                               ("status", "400")))] == 2
    assert found[("snapferry_requests_total", (("operation", "DescribeSnapshots"),
                                               ("service", "ec2"), ("status", "200")))] == 2
    assert found[("snapferry_request_duration_seconds_sum",
                  (("operation", "Unknown4095"), ("service", "ec2")))] == pytest.approx(0.003)


def test_latency_buckets_and_content_type() -> None:
    assert LATENCY_BUCKETS == (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                               2.5, 5.0, 10.0)
    assert CONTENT_TYPE == "text/plain; version=0.0.4; charset=utf-8"


def test_the_rate_column_is_bytes_over_the_copys_time() -> None:
    assert rate_text(job(rules.QUEUED), NOW) == "-"
    assert rate_text(job(rules.RUNNING, moved=0, started=NOW), NOW) == "-"
    running = job(rules.RUNNING, moved=30 * MIB, started=NOW - dt.timedelta(seconds=10))
    assert rate_text(running, NOW) == "3.0 MiB/s"
    done = job(rules.COMPLETED, moved=30 * MIB, started=NOW - dt.timedelta(seconds=20),
               finished=NOW - dt.timedelta(seconds=5))
    assert rate_text(done, NOW) == "2.0 MiB/s"  # over its own time, not until now
    instant = job(rules.COMPLETED, moved=MIB, started=NOW, finished=NOW)
    assert rate_text(instant, NOW) == "1000.0 MiB/s"


def test_the_rate_column_keeps_the_fraction_of_a_mib() -> None:
    """A rate is neither rounded down to whole MiB/s nor to whole bytes/s before it is shown
    (`/` as `//` in either division: 1.5 MiB/s would read 1.0, and 52,428.9 bytes/s, just
    past the 0.05 MiB/s that rounds up, would read 0.0)."""
    three_halves = job(rules.RUNNING, moved=3 * MIB, started=NOW - dt.timedelta(seconds=2))
    assert rate_text(three_halves, NOW) == "1.5 MiB/s"
    done = job(rules.COMPLETED, moved=524_289, started=NOW - dt.timedelta(seconds=20),
               finished=NOW - dt.timedelta(seconds=10))
    assert rate_text(done, NOW) == "0.1 MiB/s"


# --- background's constants -----------------------------------------------------------------

def test_background_runs_every_5_seconds_with_an_hours_orphan_grace() -> None:
    assert background.PERIOD_SECONDS == 5.0
    assert dt.timedelta(hours=1) == background.DEFAULT_ORPHAN_GRACE


# --- fault rules' bounds --------------------------------------------------------------------

@pytest.mark.parametrize("rule", [
    FaultRule("r", COPY, fail_at=0.0, message="m"),
    FaultRule("r", COPY, fail_at=1.0, message="m"),
    FaultRule("r", COPY, seconds_per_gib=0.001),
    FaultRule("r", COPY, fail_at=0.5, message="m", seconds_per_gib=2.0),
    FaultRule("r", THROTTLE, operation="X"),
    FaultRule("r", THROTTLE, service="ec2"),
    FaultRule("r", THROTTLE, service="iam", operation="X", fraction=0.001, remaining=1),
    FaultRule("r", THROTTLE, operation="X", remaining=2),
    FaultRule("r", HOLD, fail_at=0.0),
    FaultRule("r", HOLD, fail_at=0.999),
])
def test_rules_at_their_bounds_are_accepted(rule: FaultRule) -> None:
    faults.check(rule)


@pytest.mark.parametrize(("rule", "problem"), [
    (FaultRule("r", "slow"), "one of copy, hold, throttle, not 'slow'"),
    (FaultRule("r", HOLD), "--at"),
    (FaultRule("r", HOLD, fail_at=1.0), "below 1"),
    (FaultRule("r", HOLD, fail_at=-0.1), "--at"),
    (FaultRule("r", HOLD, fail_at=0.5, message="m"), "only holds"),
    (FaultRule("r", HOLD, fail_at=0.5, seconds_per_gib=1.0), "only holds"),
    (FaultRule("r", COPY, fail_at=-0.01, message="m"), "from 0 to 1"),
    (FaultRule("r", COPY, fail_at=1.01, message="m"), "from 0 to 1"),
    (FaultRule("r", COPY, fail_at=0.5, message=""), "--message"),
    (FaultRule("r", COPY, seconds_per_gib=-1.0), "positive"),
    (FaultRule("r", THROTTLE, operation="X", fraction=1.01), "--fraction"),
    (FaultRule("r", THROTTLE, operation="X", fraction=-0.5), "--fraction"),
    (FaultRule("r", THROTTLE, service="ebs", remaining=-1), "--count"),
    (FaultRule("r", THROTTLE, service="s3"), "one of ebs, ec2, iam, kms, sts"),
])
def test_rules_past_their_bounds_are_refused(rule: FaultRule, problem: str) -> None:
    with pytest.raises(ValueError) as caught:
        faults.check(rule)
    assert problem in str(caught.value)


def test_a_copy_rule_fails_the_copy_at_its_fraction_even_at_zero() -> None:
    zero = FaultRule("zero", COPY, fail_at=0.0, message="m")
    half = FaultRule("half", COPY, fail_at=0.5, message="m")
    assert faults.failing([half, zero]) == zero
    assert faults.failing([zero, half]) == zero
    assert faults.failing([]) is None


def test_a_hold_rule_stops_a_copy_at_its_point_and_never_fails_it() -> None:
    quarter = FaultRule("q", HOLD, fail_at=0.25)
    half = FaultRule("h", HOLD, fail_at=0.5)
    assert faults.failing([quarter, half]) is None  # holding is not failing
    assert faults.next_hold([half, quarter], 0, 64) == 16  # a batch ends at the nearest
    assert faults.next_hold([half, quarter], 16, 64) == 32
    assert faults.next_hold([half, quarter], 32, 64) is None
    assert not faults.holding([half, quarter], 15, 64)
    assert faults.holding([half, quarter], 16, 64)
    assert faults.holding([FaultRule("z", HOLD, fail_at=0.0)], 0, 64)
    # a rule added after the copy passed its point holds it where it is
    assert faults.holding([quarter], 40, 64)
    assert faults.holding([quarter], int("1000"), 4000)  # counts past the small-int cache
    # a failing copy rule is no hold point (the failure ends its own batch)
    assert faults.next_hold([FaultRule("f", COPY, fail_at=0.25, message="m")], 0, 64) is None
    assert not faults.holding([FaultRule("f", COPY, fail_at=0.25, message="m")], 30, 64)
    assert faults.copy_rules([half], "eu-west-1", "111111111111", ("snap-1",)) == [half]


def test_a_copy_of_no_blocks_reaches_every_point_at_zero() -> None:
    # a copy whose size is not known yet, or of nothing, is at its end: never a negative count
    for total in (None, 0):
        assert faults.stop_at(1.0, total) == 0
        assert faults.stop_at(0.5, total) == 0
    assert faults.stop_at(0.5, 3) == 2  # rounded up: the point is reached, not passed short


def test_the_slowest_pace_wins_and_no_pace_is_none() -> None:
    slow = FaultRule("s", COPY, seconds_per_gib=30.0)
    slower = FaultRule("t", COPY, seconds_per_gib=45.0)
    assert faults.seconds_per_gib([slow, slower], 40.0) == 45.0
    assert faults.seconds_per_gib([], 40.0) == 40.0
    assert faults.seconds_per_gib([], None) is None


def test_throttle_rules_match_region_and_account_too() -> None:
    rule = FaultRule("r", THROTTLE, operation="X", region="eu-west-1", account_id="1")
    copy = FaultRule("c", COPY, fail_at=0.5, message="m")
    assert faults.throttle_rules([rule, copy], "ec2", "X", "eu-west-1", "1") == [rule]
    assert faults.throttle_rules([rule], "ec2", "X", "us-east-1", "1") == []
    assert faults.throttle_rules([rule], "ec2", "X", "eu-west-1", "2") == []
    assert faults.copy_rules([rule], "eu-west-1", "1", ("snap-a",)) == []


def test_every_throttled_call_is_its_services_throttling_error() -> None:
    expected = {"ec2": ("RequestLimitExceeded", 503), "kms": ("ThrottlingException", 400),
                "ebs": ("RequestThrottledException", 400), "sts": ("Throttling", 400),
                "iam": ("Throttling", 400), "s3": ("Throttling", 400)}
    for service, (code, status) in expected.items():
        error = faults.throttled(service, "Op")
        assert (error.code, error.status) == (code, status), service
        assert error.message == ("Rate exceeded: Op is throttled by a snapferry fault rule "
                                 "(`snapferry faults list`).")


def test_a_rule_for_every_call_always_rolls() -> None:
    always = FaultRule("r", THROTTLE, operation="X")
    assert always.fraction == 1.0
    assert all(faults.rolls(always) for _ in range(200))
    assert faults.rolls(always, draw=0.999999)
    rare = FaultRule("r", THROTTLE, operation="X", fraction=0.001)
    assert sum(faults.rolls(rare) for _ in range(200)) < 50


def test_rules_read_back_from_storage_are_told_apart_by_value() -> None:
    """A rule's kind comes from the command line or the database: a string object of its
    own, not the module's constant."""
    copy_kind, throttle_kind = "".join(["co", "py"]), "".join(["thr", "ottle"])
    assert copy_kind == COPY and copy_kind is not COPY
    with pytest.raises(ValueError, match="--fail-at"):
        faults.check(FaultRule("r", copy_kind))
    copy = FaultRule("c", copy_kind, fail_at=0.5, message="m")
    throttle = FaultRule("t", throttle_kind, operation="X")
    faults.check(copy)
    faults.check(throttle)
    assert faults.copy_rules([copy, throttle], "r", "a", ("s",)) == [copy]
    assert faults.throttle_rules([copy, throttle], "ec2", "X", "r", "a") == [throttle]
    hold = FaultRule("h", "".join(["ho", "ld"]), fail_at=0.5)
    faults.check(hold)
    assert faults.holding([hold], 32, 64) and faults.next_hold([hold], 0, 64) == 32


def test_only_hold_rules_hold_and_a_hold_at_zero_is_no_point_ahead() -> None:
    throttle = FaultRule("t", THROTTLE, operation="X")
    assert not faults.holding([throttle], 10, 64)
    assert faults.next_hold([throttle], 0, 64) is None
    assert faults.next_hold([FaultRule("z", HOLD, fail_at=0.0)], 0, 64) is None
    with pytest.raises(ValueError, match="--at"):
        faults.check(FaultRule("h", HOLD, fail_at=1.5))


def test_only_a_copy_rule_naming_an_image_makes_a_copy_look_its_image_up() -> None:
    assert faults.names_images([FaultRule("i", COPY, resource_id="ami-1", fail_at=0.5,
                                          message="m")])
    assert not faults.names_images([FaultRule("s", COPY, resource_id="snap-1", fail_at=0.5,
                                              message="m"),
                                    FaultRule("h", HOLD, fail_at=0.5)])
    assert not faults.names_images([FaultRule("t", THROTTLE, operation="X",
                                              resource_id="ami-1")])
