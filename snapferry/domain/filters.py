"""EC2's Filter.N.Name / Filter.N.Value.M semantics, for every Describe operation.

Filters AND together; the values of one filter OR together; `*` and `?` are wildcards.
Each resource type names its filters with a function from a resource to its values, so a
filter name we do not know is refused rather than silently matching everything.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from functools import lru_cache
from typing import Any, TypeVar

from snapferry.errors import ServiceError

T = TypeVar("T")
FilterFields = Mapping[str, Callable[[T], Iterable[str]]]


@lru_cache(maxsize=512)
def _pattern(value: str) -> re.Pattern[str]:
    escaped = re.escape(value).replace(r"\*", ".*").replace(r"\?", ".")
    return re.compile(escaped, re.DOTALL)


def value_matches(candidate: str, wanted: Iterable[str]) -> bool:
    # fullmatch, not `^...$` with match: `$` also matches before a trailing newline, so the
    # filter value "prod" matched a tag value "prod\n".
    return any(_pattern(value).fullmatch(candidate) for value in wanted)


# EC2's caps, as AWS answers past them (FilterLimitExceeded, 400): "The maximum number of
# filter values specified on a single call is 200", "The maximum length for a filter value
# is 255 characters". AWS states no cap on the number of filters; ours keeps a query within
# what the database can run even when every filter has no value.
MAX_FILTER_VALUES = 200
MAX_FILTER_VALUE_LENGTH = 255
MAX_FILTERS = 50


def check_filter_limits(filters: list[dict[str, Any]] | None) -> None:
    """Refuse filters past EC2's caps, before any of them is turned into a query."""
    filters = filters or []
    if len(filters) > MAX_FILTERS:
        raise ServiceError("FilterLimitExceeded", f"The maximum number of filters specified on "
                           f"a single call is {MAX_FILTERS}; {len(filters)} were given.")
    values = [value for item in filters for value in item.get("Values") or ()]
    if len(values) > MAX_FILTER_VALUES:
        raise ServiceError("FilterLimitExceeded", f"The maximum number of filter values "
                           f"specified on a single call is {MAX_FILTER_VALUES}; {len(values)} "
                           "were given.")
    if any(len(value) > MAX_FILTER_VALUE_LENGTH for value in values):
        raise ServiceError("FilterLimitExceeded", f"The maximum length for a filter value is "
                           f"{MAX_FILTER_VALUE_LENGTH} characters.")


def check_filters(filters: list[dict[str, Any]] | None, fields: FilterFields[Any]) -> None:
    check_filter_limits(filters)
    for item in filters or ():
        name = item.get("Name")
        if name is None:
            raise ServiceError("InvalidParameterValue", "Every filter must have a Name.")
        if name not in fields:
            known = ", ".join(sorted(fields))
            raise ServiceError(
                "InvalidParameterValue", f"The filter '{name}' is invalid; valid filters: {known}."
            )


def apply_filters(
    items: Iterable[T], filters: list[dict[str, Any]] | None, fields: FilterFields[T]
) -> list[T]:
    check_filters(filters, fields)
    chosen = [(fields[f["Name"]], f.get("Values") or []) for f in filters or ()]
    return [
        item
        for item in items
        if all(
            any(value_matches(v, wanted) for v in values_of(item))
            for values_of, wanted in chosen
        )
    ]
