"""The decoded form of an encoded authorization failure message (EC2's
UnauthorizedOperation), as STS DecodeAuthorizationMessage returns it: whether the request
was allowed, whether an explicit deny decided, which statements matched, and the request's
context (principal, action, resource, condition keys)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from snapferry.domain.accounts import Principal
from snapferry.domain.policy import Decision, Effect


def _items(values: list[Any]) -> dict[str, list[Any]]:
    return {"items": values}


def _text(value: Any) -> list[str]:
    values = value if isinstance(value, list | tuple) else [value]
    return [v.isoformat() if isinstance(v, dt.datetime) else str(v).lower()
            if isinstance(v, bool) else str(v) for v in values]


def describe(principal: Principal, decision: Decision, facts: Mapping[str, Any]
             ) -> dict[str, Any]:
    return {
        "allowed": decision.allowed,
        "explicitDeny": decision.effect is Effect.EXPLICIT_DENY,
        "matchedStatements": _items([{
            "statementId": m.sid or "",
            "effect": m.effect.upper(),
            "policy": m.policy,
            "source": m.source.value,
            "index": m.index,
        } for m in (*decision.matched, *decision.partial)]),
        # An implicit deny's missing side: which kind of policy allowed nothing.
        "failures": _items([{"source": decision.missing.value, "reason": decision.reason}]
                           if decision.missing is not None else []),
        "context": {
            "principal": {"id": principal.user_id, "name": principal.name or None,
                          "arn": principal.arn},
            "action": decision.action,
            "resource": decision.resource,
            "conditions": _items([
                {"key": key, "values": _items([{"value": v} for v in _text(value)])}
                for key, value in sorted(facts.items()) if value is not None]),
        },
    }
