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


def _any_text(column: Any, values: list[str]) -> ColumnElement[bool]:
    """`column` matches one of `values`: the exact ones as one IN list (an index seek per
    value, where an OR of equalities made SQLite scan), the wildcard ones as LIKEs."""
    exact: list[str] = []
    matches: list[ColumnElement[bool]] = []
    for value in values:  # one pass: a membership test per value was quadratic in 1000 ids
        if "*" in value or "?" in value:
            matches.append(text_match(column, value))
        else:
            exact.append(value)
    if len(exact) == 1:
        matches.insert(0, column == exact[0])
    elif exact:
        matches.insert(0, column.in_(exact))
    return or_(*matches) if matches else false()


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
        if not values:
            matches: list[ColumnElement[bool]] = []
        elif name.startswith("tag:"):
            matches = [exists(select(tags.c.resource_id).where(
                tags.c.resource_id == resource_id, tags.c.key == name[4:],
                _any_text(tags.c.value, values)))]
        elif name == "tag-key":
            matches = [exists(select(tags.c.resource_id).where(
                tags.c.resource_id == resource_id, _any_text(tags.c.key, values)))]
        elif name in fields and fields[name].kind == "text" and fields[name].within is None:
            matches = [_any_text(fields[name].column, values)]
        elif name in fields:
            spec = fields[name]
            matches = [_value_match(name, spec, value) for value in values]
            if spec.within is not None:
                matches = [spec.within(match) for match in matches]
        if name not in fields and not name.startswith("tag:") and name != "tag-key":
            known = ", ".join(sorted([*fields, "tag:<key>", "tag-key"]))
            raise ServiceError(
                "InvalidParameterValue", f"The filter '{name}' is invalid; valid filters: {known}."
            )
        clauses.append(or_(*matches) if matches else false())
    return clauses


# A tag filter matching at most this many resources of the region is selective: the page is
# cut from those ids (primary key seeks) instead of walking every resource testing its tags.
SELECTIVE_TAG = 1000


def _exact(values: list[str]) -> bool:
    return bool(values) and not any("*" in value or "?" in value for value in values)


def tagged_ids(conn: Any, region: str, filters: list[dict[str, Any]] | None
               ) -> list[str] | None:
    """The ids of the resources in `region` that a selective `tag:<key>` or `tag-key` filter
    without wildcards matches, or None when no such filter is selective. Each probe reads at
    most SELECTIVE_TAG + 1 entries of the tags_by_key_value index per value, so a common tag
    costs a bounded probe and then the ordinary walk, never a read of every tag."""
    best: set[str] | None = None
    for item in filters or ():
        name, values = item.get("Name") or "", list(item.get("Values") or ())
        if not _exact(values) or not (name.startswith("tag:") or name == "tag-key"):
            continue
        found: set[str] = set()
        for value in dict.fromkeys(values):
            query = select(tags.c.resource_id).where(tags.c.region == region)
            if name == "tag-key":
                query = query.where(tags.c.key == value)
            else:
                query = query.where(tags.c.key == name[4:], tags.c.value == value)
            found.update(conn.execute(query.limit(SELECTIVE_TAG + 1)).scalars())
            if len(found) > SELECTIVE_TAG:
                break
        if len(found) <= SELECTIVE_TAG and (best is None or len(found) < len(best)):
            best = found
    return sorted(best) if best is not None else None


def narrowed(ids: list[str] | None, tagged: list[str] | None) -> list[str] | None:
    """The ids a page is restricted to: those asked for, within those a tag filter found."""
    if tagged is None:
        return ids
    if not ids:
        return tagged
    allowed = set(tagged)
    return [resource_id for resource_id in ids if resource_id in allowed]


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
