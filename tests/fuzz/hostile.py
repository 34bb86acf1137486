"""Hypothesis strategies for hostile values of botocore shapes: what a client with its
parameter validation off can send. Required members may be missing, numbers run past their
types, strings are any length the body allows, and, where the body is JSON, hold unpaired
surrogates. Valid values come from tests/unit/shape_strategies.py, mixed in by the caller.
"""

from __future__ import annotations

import datetime as dt
import string

from botocore.model import OperationModel, Shape
from hypothesis import strategies as st

MAX_DEPTH = 5
HUGE = 10**25
# Text a form or URL can carry (botocore percent-encodes it as UTF-8: no surrogates).
_ENCODABLE = st.characters(exclude_categories=("Cs",))
_HEADER_TEXT = string.ascii_letters + string.digits + string.punctuation + " "


def hostile_input(operation: OperationModel, json_body: bool) -> st.SearchStrategy[dict]:
    shape = operation.input_shape
    return st.just({}) if shape is None else _value(shape, 0, json_body, "body")


def _place(member: Shape, place: str) -> str:
    location = member.serialization.get("location")
    return {"uri": "label", "header": "header", "headers": "header",
            "querystring": "query"}.get(location or "", place)


def _value(shape: Shape, depth: int, json_body: bool, place: str) -> st.SearchStrategy:
    kind = shape.type_name
    deep = depth >= MAX_DEPTH
    if kind == "structure":
        members = {} if deep else {
            name: _value(member, depth + 1, json_body, _place(member, place))
            for name, member in shape.members.items()
        }
        return st.fixed_dictionaries({}, optional=members)
    if kind == "list":
        return st.lists(_value(shape.member, depth + 1, json_body, place),
                        max_size=0 if deep else 6)
    if kind == "map":
        return st.dictionaries(_value(shape.key, depth + 1, json_body, place),
                               _value(shape.value, depth + 1, json_body, place),
                               max_size=0 if deep else 4)
    if kind == "string":
        if place == "header":
            return st.text(alphabet=_HEADER_TEXT, max_size=300)
        if place == "label":
            return st.text(_ENCODABLE, min_size=1, max_size=300)
        if json_body and place == "body":
            return st.text(max_size=300)  # any code point, lone surrogates included
        return st.text(_ENCODABLE, max_size=300)
    if kind in ("integer", "long"):
        return st.one_of(st.integers(-HUGE, HUGE), st.integers(-3, 70000))
    if kind in ("float", "double"):
        return st.floats(allow_nan=place == "body", allow_infinity=place == "body")
    if kind == "boolean":
        return st.booleans()
    if kind == "blob":
        return st.binary(max_size=600)
    if kind == "timestamp":
        return st.datetimes(min_value=dt.datetime(1970, 1, 2), max_value=dt.datetime(9999, 1, 1),
                            timezones=st.just(dt.UTC))
    raise NotImplementedError(f"no strategy for {kind} shape {shape.name}")
