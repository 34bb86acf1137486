"""Hypothesis strategies for values of botocore shapes, built by walking the shape.

A structure is a fixed dictionary (required members always present, the others optional),
a list has 0..3 items and a map 0..3 entries, within the model's min/max. Scalars respect the
model's limits too, because our parsers enforce them where botocore's client does not.
Below MAX_DEPTH containers carry only what they must (required members, minimum sizes), so
recursive shapes terminate and the examples stay small.

Where a value travels decides its alphabet: URI labels and headers carry printable ASCII
(an HTTP header cannot carry arbitrary text, and a URI label must not be empty); everything
else is any Unicode text without surrogates.
"""

from __future__ import annotations

import datetime as dt
import enum
import string

from botocore.model import OperationModel, Shape
from hypothesis import strategies as st

MAX_DEPTH = 8
MAX_ITEMS = 3
MAX_TEXT = 12
MAX_BYTES = 24

_UTC = dt.UTC
_EARLIEST = dt.datetime(1971, 1, 1)
_LATEST = dt.datetime(2100, 12, 31, 23, 59, 59)
_INT_RANGE = {"integer": (-(2**31), 2**31 - 1), "long": (-(2**63), 2**63 - 1)}
_PRINTABLE_ASCII = string.ascii_letters + string.digits + string.punctuation + " "


class Place(enum.Enum):
    """Where on the wire a value travels."""

    BODY = "body"  # a JSON or XML document, a form parameter, the query string
    LABEL = "label"  # a URI path segment
    HEADER = "header"


def _place_of(member: Shape, place: Place) -> Place:
    location = member.serialization.get("location")
    if location == "uri":
        return Place.LABEL
    if location in ("header", "headers"):
        return Place.HEADER
    return place


def _size_range(shape: Shape, cap: int, depth: int) -> tuple[int, int]:
    low = shape.metadata.get("min", 0)
    high = shape.metadata.get("max", low + cap)
    if depth >= MAX_DEPTH:
        return low, low
    return low, max(low, min(high, low + cap))


def input_value(operation: OperationModel) -> st.SearchStrategy[dict]:
    shape = operation.input_shape
    return st.just({}) if shape is None else value_of(shape)


def output_value(operation: OperationModel) -> st.SearchStrategy[dict]:
    shape = operation.output_shape
    return st.just({}) if shape is None else value_of(shape)


def value_of(shape: Shape, depth: int = 0, place: Place = Place.BODY) -> st.SearchStrategy:
    kind = shape.type_name
    if kind == "structure":
        return _structure(shape, depth, place)
    if kind == "list":
        low, high = _size_range(shape, MAX_ITEMS, depth)
        return st.lists(value_of(shape.member, depth + 1, place), min_size=low, max_size=high)
    if kind == "map":
        low, high = _size_range(shape, MAX_ITEMS, depth)
        return st.dictionaries(
            value_of(shape.key, depth + 1, place),
            value_of(shape.value, depth + 1, place),
            min_size=low,
            max_size=high,
        )
    if kind == "string":
        return _text(shape, place)
    if kind == "blob":
        low, high = _size_range(shape, MAX_BYTES, 0)
        return st.binary(min_size=low, max_size=high)
    if kind == "boolean":
        return st.booleans()
    if kind in ("integer", "long"):
        low, high = _INT_RANGE[kind]
        return st.integers(
            min_value=shape.metadata.get("min", low), max_value=shape.metadata.get("max", high)
        )
    if kind in ("float", "double"):
        return st.floats(
            min_value=shape.metadata.get("min"),
            max_value=shape.metadata.get("max"),
            allow_nan=False,
            allow_infinity=False,
        )
    if kind == "timestamp":
        return _timestamp(place)
    raise NotImplementedError(f"no strategy for {kind} shape {shape.name}")


def _structure(shape: Shape, depth: int, place: Place) -> st.SearchStrategy[dict]:
    if shape.is_document_type:
        raise NotImplementedError(f"no strategy for document shape {shape.name}")
    members = {
        name: value_of(member, depth + 1, _place_of(member, place))
        for name, member in shape.members.items()
        if depth < MAX_DEPTH or name in shape.required_members
    }
    if shape.metadata.get("union"):
        # A tagged union carries exactly one member.
        return st.one_of(
            [strategy.map(lambda v, name=name: {name: v}) for name, strategy in members.items()]
        )
    required = {name: s for name, s in members.items() if name in shape.required_members}
    optional = {name: s for name, s in members.items() if name not in required}
    return st.fixed_dictionaries(required, optional=optional)


def _text(shape: Shape, place: Place) -> st.SearchStrategy[str]:
    low, high = _size_range(shape, MAX_TEXT, 0)
    if place is Place.BODY:
        return st.text(min_size=low, max_size=high)
    if place is Place.LABEL:
        low, high = max(low, 1), max(high, 1)
    return st.text(alphabet=_PRINTABLE_ASCII, min_size=low, max_size=high)


def _timestamp(place: Place) -> st.SearchStrategy[dt.datetime]:
    moments = st.datetimes(min_value=_EARLIEST, max_value=_LATEST, timezones=st.just(_UTC))
    if place is Place.HEADER:
        # Header timestamps are RFC 822 dates, which have whole seconds.
        return moments.map(lambda t: t.replace(microsecond=0))
    # The wire carries milliseconds (botocore's parsers and AWS's responses alike).
    return moments.map(lambda t: t.replace(microsecond=t.microsecond // 1000 * 1000))
