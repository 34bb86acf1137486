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
    return re.compile(f"^{escaped}$", re.DOTALL)


def value_matches(candidate: str, wanted: Iterable[str]) -> bool:
    return any(_pattern(value).match(candidate) for value in wanted)


def check_filters(filters: list[dict[str, Any]] | None, fields: FilterFields[Any]) -> None:
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
