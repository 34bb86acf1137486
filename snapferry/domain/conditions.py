"""The Condition element: operators, set qualifiers, IfExists, and the request's facts.

AWS's rules, as https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html
and reference_policies_multi-value-conditions.html state them:
- several operators in a block, and several keys under one operator, are ANDed;
- several values for one key are ORed (a negated operator is the negation of that OR, NOR);
- a key the request lacks makes a test false, except that negated operators are then true,
  `...IfExists` is then true, and `Null` is about exactly that;
- `ForAnyValue:` is true when some request value passes (false when the key is missing or
  empty); `ForAllValues:` when every request value passes (true when missing or empty);
- condition key names are case-insensitive, values are compared as each operator says.
The evaluator does not know which keys exist: the caller supplies them (Facts).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from snapferry.domain import wildcards
from snapferry.domain.arns import split_arn

Values = tuple[str, ...]


class Facts:
    """The request context: condition key -> its values, keys compared case-insensitively.

    A value may be given as str, bool, int, float, datetime, or a list/tuple/set of those
    (a multi-valued key such as aws:TagKeys); None means absent. `unknown` names the keys
    whose value is not known yet (a resource's attributes before it is looked up): a test of
    one of those can go either way, which `holds` answers as its caller says."""

    def __init__(self, context: Mapping[str, Any] | None = None,
                 unknown: Callable[[str], bool] | None = None) -> None:
        # Converted to text when a condition first asks: most requests (an account root's,
        # a policy without conditions) ask for none, and converting every key (times
        # through strftime) cost about 6% of a simple request.
        self._raw: dict[str, Any] = {key.lower(): value for key, value in (context or {}).items()
                                     if value is not None}
        self._values: dict[str, Values] = {}
        self._unknown = unknown

    def unknown(self, key: str) -> bool:
        """Whether the request's value for `key` is not known yet (not merely absent)."""
        return (self._unknown is not None and key.lower() not in self._raw
                and self._unknown(key))

    def values(self, key: str) -> Values:
        key = key.lower()
        found = self._values.get(key)
        if found is None:
            raw = self._raw.get(key)
            if raw is None:
                return ()
            found = self._values[key] = _strings(raw)
        return found

    def lookup(self, name: str) -> str | None:
        """A single value for a policy variable; None when absent or multi-valued."""
        found = self.values(name)
        return found[0] if len(found) == 1 else None

    def keys(self) -> Iterable[str]:
        return self._raw.keys()


def _string(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return str(value)


def _strings(value: Any) -> Values:
    if isinstance(value, list | tuple | set | frozenset):
        return tuple(_string(v) for v in value)
    return (_string(value),)


# ---- one comparison per operator family: (request value, policy value) -> bool ------------

def _number(text: str) -> Decimal | None:
    try:
        number = Decimal(text.strip())
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _date(text: str) -> dt.datetime | None:
    """ISO 8601 (date, or date and time with a zone or Z) or epoch seconds."""
    text = text.strip()
    if _number(text) is not None:
        try:
            return dt.datetime.fromtimestamp(float(text), dt.UTC)
        except (OverflowError, OSError, ValueError):
            return None
    try:
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _ordered(parse: Callable[[str], Any], test: Callable[[Any, Any], bool]
             ) -> Callable[[str, str], bool]:
    def compare(actual: str, wanted: str) -> bool:
        a, w = parse(actual), parse(wanted)
        return a is not None and w is not None and test(a, w)
    return compare


def _ip(actual: str, wanted: str) -> bool:
    try:
        return ipaddress.ip_address(actual.strip()) in ipaddress.ip_network(
            wanted.strip(), strict=False)
    except ValueError:
        return False  # not an address, or a network of the other IP version


def _arn_like(actual: str, wanted: str) -> bool:
    """Each of the six parts compared on its own, each may hold `*` and `?`."""
    a, w = split_arn(actual), split_arn(wanted)
    if a is None or w is None:
        return False
    return all(wildcards.matches(pw, pa) for pa, pw in zip(a, w, strict=True))


def _bool(actual: str, wanted: str) -> bool:
    return actual.lower() == wanted.strip().lower()


def _equal(a: Any, w: Any) -> bool:
    return bool(a == w)


def _less(a: Any, w: Any) -> bool:
    return bool(a < w)


def _less_eq(a: Any, w: Any) -> bool:
    return bool(a <= w)


def _greater(a: Any, w: Any) -> bool:
    return bool(a > w)


def _greater_eq(a: Any, w: Any) -> bool:
    return bool(a >= w)


@dataclass(frozen=True)
class Operator:
    compare: Callable[[str, str], bool]
    negated: bool = False
    variables: bool = False  # policy variables are allowed in its values (string and ARN)
    like: bool = False  # its values are wildcard patterns (compiled with variables at once)


def _family(parse: Callable[[str], Any], prefix: str) -> dict[str, Operator]:
    return {
        f"{prefix}Equals": Operator(_ordered(parse, _equal)),
        f"{prefix}NotEquals": Operator(_ordered(parse, _equal), negated=True),
        f"{prefix}LessThan": Operator(_ordered(parse, _less)),
        f"{prefix}LessThanEquals": Operator(_ordered(parse, _less_eq)),
        f"{prefix}GreaterThan": Operator(_ordered(parse, _greater)),
        f"{prefix}GreaterThanEquals": Operator(_ordered(parse, _greater_eq)),
    }


def _string_equal(a: str, w: str) -> bool:
    return a == w


def _string_equal_ignore_case(a: str, w: str) -> bool:
    return a.casefold() == w.casefold()


OPERATORS: dict[str, Operator] = {
    "StringEquals": Operator(_string_equal, variables=True),
    "StringNotEquals": Operator(_string_equal, negated=True, variables=True),
    "StringEqualsIgnoreCase": Operator(_string_equal_ignore_case, variables=True),
    "StringNotEqualsIgnoreCase": Operator(_string_equal_ignore_case, negated=True,
                                          variables=True),
    "StringLike": Operator(_string_equal, variables=True, like=True),
    "StringNotLike": Operator(_string_equal, negated=True, variables=True, like=True),
    # ArnEquals and ArnLike are the same test: both take wildcards in each part.
    "ArnEquals": Operator(_arn_like, variables=True),
    "ArnLike": Operator(_arn_like, variables=True),
    "ArnNotEquals": Operator(_arn_like, negated=True, variables=True),
    "ArnNotLike": Operator(_arn_like, negated=True, variables=True),
    "Bool": Operator(_bool),
    "IpAddress": Operator(_ip),
    "NotIpAddress": Operator(_ip, negated=True),
    **_family(_number, "Numeric"),
    **_family(_date, "Date"),
}
QUALIFIERS = ("ForAnyValue", "ForAllValues")
IF_EXISTS = "IfExists"


@dataclass(frozen=True)
class ParsedOperator:
    name: str  # as written, e.g. "ForAllValues:StringLikeIfExists"
    base: str  # "StringLike", or "Null"
    qualifier: str | None
    if_exists: bool


def parse_operator(name: str) -> ParsedOperator | None:
    """The parts of an operator name, or None when it is not one AWS knows."""
    qualifier, _, base = name.rpartition(":")
    if qualifier and qualifier not in QUALIFIERS:
        return None
    if_exists = base.endswith(IF_EXISTS) and base != IF_EXISTS
    if if_exists:
        base = base[: -len(IF_EXISTS)]
    if base != "Null" and base not in OPERATORS:
        return None
    if base == "Null" and (if_exists or qualifier):
        return None  # Null tests presence itself; it takes neither
    return ParsedOperator(name, base, qualifier or None, if_exists)


def test(operator: ParsedOperator, key: str, wanted: Iterable[str], facts: Facts,
         variables: bool = True) -> bool:
    """One key under one operator: does the request's value pass?"""
    actual = facts.values(key)
    wanted = list(wanted)
    if operator.base == "Null":
        # "true": the key must be absent; "false": present. Several values are ORed.
        return any((w.strip().lower() == "true") == (not actual) for w in wanted)
    rule = OPERATORS[operator.base]
    lookup = facts.lookup if variables and rule.variables else None
    if rule.like:
        patterns = [wildcards.compile_pattern(w, lookup) for w in wanted]
        if any(p is None for p in patterns):
            return False  # a variable the request lacks: the test does not hold

        def passes(value: str) -> bool:
            return any(p is not None and p.fullmatch(value) is not None for p in patterns)
    else:
        try:
            resolved = [wildcards.substitute(w, lookup) for w in wanted]
        except wildcards.MissingVariable:
            return False

        def passes(value: str) -> bool:
            return any(rule.compare(value, w) for w in resolved)

    if not actual:
        if operator.qualifier == "ForAllValues":
            return True
        if operator.qualifier == "ForAnyValue":
            return operator.if_exists
        return operator.if_exists or rule.negated

    def ok(value: str) -> bool:
        return passes(value) != rule.negated

    if operator.qualifier == "ForAllValues":
        return all(ok(v) for v in actual)
    if operator.qualifier == "ForAnyValue":
        return any(ok(v) for v in actual)
    # No qualifier: a positive operator passes when some value matches, a negated one when
    # no value matches (the negation of the positive test).
    return all(ok(v) for v in actual) if rule.negated else any(ok(v) for v in actual)


_VARIABLE = re.compile(r"\$\{([^}]+)\}")  # the keys a value's policy variables name


def holds(block: Mapping[str, Mapping[str, tuple[str, ...]]], facts: Facts,
          variables: bool = True, unknown_holds: bool = False) -> bool:
    """A whole (validated) Condition block: operator -> key -> values, all ANDed. A test of a
    key whose value is not known yet (Facts.unknown), or whose values name one in a policy
    variable, counts as `unknown_holds`: an Allow may still apply once it is known, a Deny
    may still not."""
    for name, tests in block.items():
        operator = parse_operator(name)
        if operator is None:
            return False  # validation refuses these; never let one allow
        for key, wanted in tests.items():
            if facts.unknown(key) or any(facts.unknown(name) for value in wanted
                                         for name in _VARIABLE.findall(value)):
                if not unknown_holds:
                    return False
                continue
            if not test(operator, key, wanted, facts, variables):
                return False
    return True
