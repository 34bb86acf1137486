"""EC2 filters as SQL, so Describe* pages are cut in the database, not in Python.

Each resource type names its filters: a column and how its text values compare. Values of
one filter OR together, filters AND together; `*` and `?` are wildcards (LIKE, made
case-sensitive on SQLite as it is on PostgreSQL). `tag:<key>` and `tag-key` look in the
tags table.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, String, and_, exists, false, or_, select, type_coerce

from snapferry.domain.filters import check_filter_limits
from snapferry.errors import ServiceError
from snapferry.storage.metadata import tags

_DIGITS = re.compile("[0-9]+")
# The numeric columns filtered on are EC2 `integer`s (sizes in GiB).
MAX_INTEGER = 2**31 - 1


@dataclass(frozen=True)
class Field:
    column: Any
    kind: str = "text"  # text | int | bool | percent | time
    # For a column of a related table: wraps each value's match, e.g. in an EXISTS.
    within: Callable[[Any], ColumnElement[bool]] | None = None


def _like_pattern(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%").replace("?", "_")


def text_match(column: Any, value: str) -> ColumnElement[bool]:
    if "*" in value or "?" in value:
        return column.like(_like_pattern(value), escape="\\")
    return column == value


def _value_match(name: str, spec: Field, value: str) -> ColumnElement[bool]:
    if spec.kind == "text":
        return text_match(spec.column, value)
    if spec.kind == "bool":
        if value not in ("true", "false"):
            raise ServiceError(
                "InvalidParameterValue", f"The filter '{name}' takes true or false, not '{value}'."
            )
        return spec.column == (value == "true")
    if spec.kind == "time":
        # The column holds AWS's text form (IsoTime); match that text, wildcards and all.
        return text_match(type_coerce(spec.column, String), value)
    number = value[:-1] if spec.kind == "percent" and value.endswith("%") else value
    # ASCII digits only: str.isdigit() also accepts '²', which int() refuses.
    highest = 100 if spec.kind == "percent" else MAX_INTEGER
    if not _DIGITS.fullmatch(number) or int(number) > highest:
        raise ServiceError(
            "InvalidParameterValue",
            f"The filter '{name}' takes a whole number from 0 to {highest}, not "
            f"'{value[:50]}'.",
        )
    return spec.column == int(number)


def filter_clauses(
    filters: list[dict[str, Any]] | None,
    fields: Mapping[str, Field],
    resource_id: Any,
) -> list[ColumnElement[bool]]:
    # The caps keep every query within what the engine can run (SQLite refuses an
    # expression tree deeper than 1000).
    check_filter_limits(filters)
    clauses = []
    for item in filters or ():
        name = item.get("Name") or ""
        values = item.get("Values") or []
        if name.startswith("tag:"):
            key = name[4:]
            matches = [
                exists(
                    select(tags.c.resource_id).where(
                        tags.c.resource_id == resource_id,
                        tags.c.key == key,
                        text_match(tags.c.value, value),
                    )
                )
                for value in values
            ]
        elif name == "tag-key":
            matches = [
                exists(
                    select(tags.c.resource_id).where(
                        tags.c.resource_id == resource_id, text_match(tags.c.key, value)
                    )
                )
                for value in values
            ]
        elif name in fields:
            spec = fields[name]
            matches = [_value_match(name, spec, value) for value in values]
            if spec.within is not None:
                matches = [spec.within(match) for match in matches]
        else:
            known = ", ".join(sorted([*fields, "tag:<key>", "tag-key"]))
            raise ServiceError(
                "InvalidParameterValue", f"The filter '{name}' is invalid; valid filters: {known}."
            )
        clauses.append(or_(*matches) if matches else false())
    return clauses


def all_of(clauses: list[ColumnElement[bool]]) -> ColumnElement[bool] | None:
    return and_(*clauses) if clauses else None


# SQLite binds at most 32766 parameters in one statement: long id lists go in slices.
ID_SLICE = 5000


def slices(values: list[str]) -> list[list[str]]:
    """`values` without repeats, in slices a statement can bind."""
    unique = list(dict.fromkeys(values))
    return [unique[start:start + ID_SLICE] for start in range(0, len(unique), ID_SLICE)]


def page_of(conn: Any, query: Any, id_column: Any, ids: list[str] | None, limit: int | None,
            after: str | None) -> tuple[list[Any], str | None]:
    """`page`, restricted to `ids` when given (any number of them)."""
    if not ids:
        return page(conn, query, id_column, limit, after)
    rows = [row for chunk in slices(ids)
            for row in page(conn, query.where(id_column.in_(chunk)), id_column, None, after)[0]]
    rows.sort(key=lambda row: row._mapping[id_column.name])
    if limit is not None and len(rows) > limit:
        return rows[:limit], rows[limit - 1]._mapping[id_column.name]
    return rows, None


def page(conn: Any, query: Any, id_column: Any, limit: int | None, after: str | None
         ) -> tuple[list[Any], str | None]:
    """One page of `query` in id order, cut in the database: the rows, and the id after
    which the next page starts (None on the last page)."""
    if after:
        query = query.where(id_column > after)
    query = query.order_by(id_column)
    if limit is not None:
        query = query.limit(limit + 1)
    rows = list(conn.execute(query))
    if limit is not None and len(rows) > limit:
        return rows[:limit], rows[limit - 1]._mapping[id_column.name]
    return rows, None
