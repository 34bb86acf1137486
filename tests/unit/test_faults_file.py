"""The faults file's format: what it turns into, what it refuses and why; replacing the
file's rules leaves the CLI's alone."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from snapferry.domain.faults import COPY, THROTTLE, FaultRule
from snapferry.faults_file import FaultsFileError, FaultsFileWatcher, parse
from snapferry.storage import faults as fault_store
from snapferry.storage import metadata


def test_copy_and_throttle_tables_become_rules() -> None:
    rules = parse("""
[[copy]]
id = "drill"
region = "eu-west-1"
account_id = "111111111111"
image_id = "ami-0123"
fail_at = 1
message = "gone"
seconds_per_gib = 30

[[copy]]
snapshot_id = "snap-1"
seconds_per_gib = 2.5

[[throttle]]
service = "kms"
operation = "Decrypt"
fraction = 0.25
count = 3
""")
    assert rules == [
        FaultRule("file:drill", COPY, region="eu-west-1", account_id="111111111111",
                  resource_id="ami-0123", fail_at=1.0, message="gone", seconds_per_gib=30.0),
        FaultRule("file:copy-2", COPY, resource_id="snap-1", seconds_per_gib=2.5),
        FaultRule("file:throttle-1", THROTTLE, service="kms", operation="Decrypt",
                  fraction=0.25, remaining=3),
    ]
    assert parse("") == []


@pytest.mark.parametrize("text, problem", [
    ("[[copy]\n", "not TOML"),
    ("[[delete]]\nx = 1\n", "unknown section"),
    ("[copy]\nfail_at = 0.5\n", "array of tables"),
    ('[[copy]]\nfail_at = 0.5\nmesage = "typo"\n', "unknown key 'mesage'"),
    ('[[copy]]\nfail_at = "half"\nmessage = "m"\n', "fail_at has the wrong type"),
    ("[[throttle]]\noperation = \"X\"\ncount = true\n", "count has the wrong type"),
    ('[[copy]]\nfail_at = 0.5\n', "--message"),
    ('[[throttle]]\noperation = "X"\nfraction = 0\n', "--fraction"),
    ('[[copy]]\nimage_id = "snap-1"\nseconds_per_gib = 1\n', "not an ami- id"),
    ('[[copy]]\nid = "' + "x" * 28 + '"\nseconds_per_gib = 1\n', "longer than 27"),
    ('[[copy]]\nid = "a"\nseconds_per_gib = 1\n[[throttle]]\nid = "a"\noperation = "X"\n',
     "file:a name more than one rule"),
])
def test_a_bad_file_is_refused_with_its_reason(text: str, problem: str) -> None:
    with pytest.raises(FaultsFileError, match=problem):
        parse(text)


def test_the_watcher_replaces_only_the_files_rules(tmp_path: Path) -> None:
    from types import SimpleNamespace

    engine = metadata.open_engine(metadata.sqlite_url(tmp_path))
    metadata.migrate(engine, seed=lambda conn: None)
    with engine.begin() as conn:
        fault_store.add_rule(conn, FaultRule("by-hand", THROTTLE, operation="A"),
                             dt.datetime.now(dt.UTC))
    path = tmp_path / "faults.toml"
    path.write_text('[[throttle]]\nid = "one"\noperation = "B"\n')
    watcher = FaultsFileWatcher(path, SimpleNamespace(engine=engine, data_dir=tmp_path))
    assert watcher.load() == 1
    path.write_text('[[throttle]]\nid = "second"\noperation = "C"\n')
    watcher.check()
    with engine.connect() as conn:
        assert [rule.rule_id for rule in fault_store.list_rules(conn)] == ["by-hand",
                                                                          "file:second"]
    path.write_text('[[throttle]]\nid = "three"\n')  # bad: no operation
    watcher.check()
    with engine.connect() as conn:
        assert [rule.rule_id for rule in fault_store.list_rules(conn)] == ["by-hand",
                                                                          "file:second"]
    engine.dispose()
