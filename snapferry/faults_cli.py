"""`snapferry faults add copy|hold|throttle`, `faults list`, `faults clear`: the operator's fault
rules (domain/faults.py), written to the database of a data dir, where a running server and
its workers read them at the next request or copy checkpoint."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from collections.abc import Callable

from snapferry.domain import faults
from snapferry.domain.faults import FaultRule
from snapferry.faults_file import FILE_PREFIX


def _open(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from snapferry.cli import _settings
    from snapferry.storage.datadir import open_storage

    return open_storage(_settings(args))


def add(args: argparse.Namespace) -> int:
    from snapferry.storage import faults as fault_store

    rule = FaultRule(
        rule_id=args.rule_id or "", kind=args.kind, region=args.region,
        account_id=args.account_id,
        resource_id=getattr(args, "snapshot_id", None) or getattr(args, "image_id", None),
        service=getattr(args, "service", None), operation=getattr(args, "operation", None),
        fail_at=getattr(args, "fail_at", None), message=getattr(args, "message", None),
        seconds_per_gib=getattr(args, "seconds_per_gib", None),
        fraction=getattr(args, "fraction", None) or 1.0,
        remaining=getattr(args, "count", None))
    try:
        faults.check(rule)
        image_id = getattr(args, "image_id", None)
        if image_id is not None and not image_id.startswith("ami-"):
            raise ValueError(f"--image-id {image_id!r} is not an ami- id")
        if rule.rule_id.startswith(FILE_PREFIX):
            raise ValueError(f"rule ids starting {FILE_PREFIX!r} are the faults file's")
    except ValueError as problem:
        print(f"snapferry: {problem}", file=sys.stderr)
        return 2
    storage = _open(args)
    try:
        with storage.engine.begin() as conn:
            rule = fault_store.add_rule(conn, rule, dt.datetime.now(dt.UTC))
        fault_store.mark_changed(storage.data_dir)
    finally:
        storage.close()
    print(f"added fault rule {rule.rule_id}")
    return 0


def describe(rule: FaultRule) -> str:
    """One line: where the rule applies, then what it does."""
    where = [f"{name}={value}" for name, value in (
        ("region", rule.region), ("account", rule.account_id),
        ("image" if (rule.resource_id or "").startswith("ami-") else "snapshot",
         rule.resource_id),
        ("service", rule.service), ("operation", rule.operation)) if value is not None]
    does = []
    if rule.kind == faults.HOLD:
        does.append(f"hold at {rule.fail_at or 0:.0%} until removed")
    elif rule.fail_at is not None:
        does.append(f"fail at {rule.fail_at:.0%} with {rule.message!r}")
    if rule.seconds_per_gib is not None:
        does.append(f"take at least {rule.seconds_per_gib:g} s/GiB")
    if rule.kind == faults.THROTTLE:
        count = "" if rule.remaining is None else f", {rule.remaining} call(s) left"
        does.append(f"throttle {rule.fraction:.0%} of calls{count}")
    return f"{rule.rule_id}  {rule.kind:8}  {' '.join(where) or 'everything'}: {'; '.join(does)}"


def listing(args: argparse.Namespace) -> int:
    from snapferry.storage import faults as fault_store

    storage = _open(args)
    try:
        with storage.engine.connect() as conn:
            rules = fault_store.list_rules(conn)
    finally:
        storage.close()
    for rule in rules:
        print(describe(rule))
    return 0


def clear(args: argparse.Namespace) -> int:
    from snapferry.storage import faults as fault_store

    storage = _open(args)
    try:
        with storage.engine.begin() as conn:
            gone = fault_store.clear(conn, args.rule_id)
        fault_store.mark_changed(storage.data_dir)
    finally:
        storage.close()
    if args.rule_id and not gone:
        print(f"snapferry: no fault rule {args.rule_id}", file=sys.stderr)
        return 2
    print(f"removed {gone} fault rule(s)")
    return 0


def add_commands(commands: argparse._SubParsersAction,  # type: ignore[type-arg]
                 data_dir: Callable[[argparse.ArgumentParser], None]) -> None:
    top = commands.add_parser("faults", help="inject failures for disaster-recovery tests")
    sub = top.add_subparsers(dest="faults_command", required=True)

    def common(parser: argparse.ArgumentParser, kind: str) -> None:
        data_dir(parser)
        parser.set_defaults(func=add, kind=kind)
        parser.add_argument("--rule-id", help="a name for the rule (default: generated)")
        parser.add_argument("--region", help="only in this region (a copy's destination)")
        parser.add_argument("--account-id", help="only for this account")

    adding = sub.add_parser("add", help="add a rule (copy, hold or throttle)")
    kinds = adding.add_subparsers(dest="kind_command", required=True)
    copy = kinds.add_parser("copy", help="fail and/or slow down matching snapshot copies")
    common(copy, faults.COPY)
    which = copy.add_mutually_exclusive_group()
    which.add_argument("--snapshot-id", help="only copies of or to this snapshot")
    which.add_argument("--image-id",
                       help="only the snapshot copies of image copies of or to this image")
    copy.add_argument("--fail-at", type=float, metavar="FRACTION",
                      help="fail once this fraction of the copy is done (0 to 1)")
    copy.add_argument("--message", help="the StateMessage the failed copy shows")
    copy.add_argument("--seconds-per-gib", type=float,
                      help="make matching copies take at least this long per GiB")

    hold = kinds.add_parser("hold", help="stop matching snapshot copies at a point of their "
                            "progress until the rule is removed")
    common(hold, faults.HOLD)
    held = hold.add_mutually_exclusive_group()
    held.add_argument("--snapshot-id", help="only copies of or to this snapshot")
    held.add_argument("--image-id",
                      help="only the snapshot copies of image copies of or to this image")
    hold.add_argument("--at", dest="fail_at", type=float, metavar="FRACTION", required=True,
                      help="wait once this fraction of the copy is done (0 to below 1)")

    throttle = kinds.add_parser("throttle",
                              help="answer matching API calls with AWS's throttling error")
    common(throttle, faults.THROTTLE)
    throttle.add_argument("--service", help=f"one of {', '.join(sorted(faults.THROTTLE_ERRORS))}")
    throttle.add_argument("--operation", help="an operation name, e.g. DescribeSnapshots")
    throttle.add_argument("--fraction", type=float,
                          help="the share of matching calls throttled (default 1: all)")
    throttle.add_argument("--count", type=int,
                          help="throttle only the next COUNT matching calls")

    show = sub.add_parser("list", help="list the fault rules")
    data_dir(show)
    show.set_defaults(func=listing)
    drop = sub.add_parser("clear", help="remove one fault rule, or all of them")
    data_dir(drop)
    drop.add_argument("rule_id", nargs="?", help="the rule to remove (default: every rule)")
    drop.set_defaults(func=clear)
