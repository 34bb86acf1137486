"""Fault injection for disaster-recovery testing: the operator's rules and what they match.

Two kinds of rule, stored in the database so every process (API and `snapferry worker`)
sees the same rules, and a change applies to the next request or checkpoint:

- copy: copies whose destination region, account, snapshot id (source or destination) or
  image id (an image copy's, or its source image's: every snapshot copy of it) match fail
  with the rule's StateMessage once they reach the rule's fraction of progress, and/or take
  at least the rule's seconds per GiB walked;
- hold: snapshot copies that match stop once they reach the rule's fraction of progress
  (checkpointed there, the lease kept) and wait until the rule is removed: a copy held at a
  known point, for drills and tests of stops, kills and takeovers (no timing involved);
- throttle: API operations that match answer AWS's throttling error (the code and status
  each SDK retries) for a fraction of calls, or for the next `count` calls.

Empty match fields match anything.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from snapferry.errors import ServiceError

COPY, HOLD, THROTTLE = "copy", "hold", "throttle"
KINDS = (COPY, HOLD, THROTTLE)
HOLD_CHECK_SECONDS = 0.25  # how often a held copy looks whether its rule is still there

# (code, HTTP status) as each service answers a throttled call; every one is in botocore's
# standard-mode throttling list, so SDKs back off and retry.
THROTTLE_ERRORS: dict[str, tuple[str, int]] = {
    "ec2": ("RequestLimitExceeded", 503),
    "kms": ("ThrottlingException", 400),
    "ebs": ("RequestThrottledException", 400),  # EBS direct's modelled throttling error
    "sts": ("Throttling", 400),
    "iam": ("Throttling", 400),
}


@dataclass(frozen=True)
class FaultRule:
    rule_id: str
    kind: str
    region: str | None = None
    account_id: str | None = None
    resource_id: str | None = None  # copy: a snapshot id (source or destination) or image id
    service: str | None = None  # throttle
    operation: str | None = None  # throttle
    # copy: fraction of progress at which it fails; hold: at which it waits
    fail_at: float | None = None
    message: str | None = None  # copy: the StateMessage it fails with
    seconds_per_gib: float | None = None  # copy: its minimum duration
    fraction: float = 1.0  # throttle: share of matching calls throttled
    remaining: int | None = None  # throttle: calls left to throttle (None: no limit)


def check(rule: FaultRule) -> None:
    """Refuse a rule that could never do anything, or could not be told apart."""
    if rule.kind not in KINDS:
        raise ValueError(f"a fault rule is one of {', '.join(KINDS)}, not {rule.kind!r}")
    if rule.kind == HOLD:
        if rule.fail_at is None or not 0 <= rule.fail_at < 1:
            raise ValueError("a hold rule needs --at, a fraction of progress from 0 to below 1")
        if rule.message is not None or rule.seconds_per_gib is not None:
            raise ValueError("a hold rule only holds: no --message or --seconds-per-gib")
    elif rule.kind == COPY:
        if rule.fail_at is None and rule.seconds_per_gib is None:
            raise ValueError("a copy rule needs --fail-at (with --message) or --seconds-per-gib")
        if rule.fail_at is not None and not 0 <= rule.fail_at <= 1:
            raise ValueError("--fail-at is a fraction of progress, from 0 to 1")
        if rule.fail_at is not None and not rule.message:
            raise ValueError("a failing copy rule needs the --message copies end with")
        if rule.seconds_per_gib is not None and rule.seconds_per_gib <= 0:
            raise ValueError("--seconds-per-gib must be positive")
    else:
        if not rule.operation and not rule.service:
            raise ValueError("a throttle rule needs --operation and/or --service")
        if rule.service and rule.service not in THROTTLE_ERRORS:
            raise ValueError(f"--service is one of {', '.join(sorted(THROTTLE_ERRORS))}")
        if not 0 < rule.fraction <= 1:
            raise ValueError("--fraction is a share of calls, above 0 and at most 1")
        if rule.remaining is not None and rule.remaining < 1:
            raise ValueError("--count must be at least 1")


def _same(wanted: str | None, value: str) -> bool:
    return wanted is None or wanted == value


def copy_rules(rules: list[FaultRule], region: str, account_id: str,
               resource_ids: tuple[str, ...]) -> list[FaultRule]:
    """The copy and hold rules that apply to a copy into `region` for `account_id` of or to one of
    `resource_ids` (its snapshots, and the images of the image copy it belongs to)."""
    return [rule for rule in rules if rule.kind in (COPY, HOLD) and _same(rule.region, region)
            and _same(rule.account_id, account_id)
            and (rule.resource_id is None or rule.resource_id in resource_ids)]


def names_images(rules: list[FaultRule]) -> bool:
    """Whether any copy rule names an image, so a copy must look up the image it serves."""
    return any(rule.kind in (COPY, HOLD) and (rule.resource_id or "").startswith("ami-")
               for rule in rules)


def failing(rules: list[FaultRule]) -> FaultRule | None:
    """The applicable rule that fails the copy earliest."""
    candidates = [rule for rule in rules if rule.kind == COPY and rule.fail_at is not None]
    return min(candidates, key=lambda rule: rule.fail_at or 0.0, default=None)


def stop_at(fraction: float, blocks_total: int | None) -> int:
    """The block count at which a rule's fraction of progress is reached."""
    return math.ceil(fraction * (blocks_total or 0))


def holding(rules: list[FaultRule], blocks_done: int, blocks_total: int | None) -> bool:
    """Whether a hold rule stops a copy that has done `blocks_done` of `blocks_total`."""
    return any(rule.kind == HOLD and blocks_done >= stop_at(rule.fail_at or 0.0, blocks_total)
               for rule in rules)


def next_hold(rules: list[FaultRule], blocks_done: int, blocks_total: int | None
              ) -> int | None:
    """The nearest hold point still ahead of the copy (a batch ends there), or None."""
    ahead = [stop_at(rule.fail_at or 0.0, blocks_total) for rule in rules if rule.kind == HOLD]
    return min((point for point in ahead if point > blocks_done), default=None)


def seconds_per_gib(rules: list[FaultRule], server: float | None) -> float | None:
    """The slowest pace asked for, by the server's setting or by a rule (None: no minimum)."""
    paces = [pace for pace in [server, *(rule.seconds_per_gib for rule in rules)] if pace]
    return max(paces) if paces else None


def throttle_rules(rules: list[FaultRule], service: str, operation: str, region: str,
                   account_id: str) -> list[FaultRule]:
    return [rule for rule in rules if rule.kind == THROTTLE and _same(rule.service, service)
            and _same(rule.operation, operation) and _same(rule.region, region)
            and _same(rule.account_id, account_id)]


def rolls(rule: FaultRule, draw: float | None = None) -> bool:
    """Whether this call is among the rule's `fraction` of calls."""
    return (random.random() if draw is None else draw) < rule.fraction


def throttled(service: str, operation: str) -> ServiceError:
    code, status = THROTTLE_ERRORS.get(service, ("Throttling", 400))
    return ServiceError(code, f"Rate exceeded: {operation} is throttled by a snapferry fault "
                              "rule (`snapferry faults list`).", status=status)
