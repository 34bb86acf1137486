"""Conversions and checks shared by every protocol: scalars from text, timestamps, limits.

botocore's client checks only required members and minimums, so maximums, lengths and
types arriving at the server are ours to enforce here.
"""

from __future__ import annotations

import base64
import binascii
import calendar
import datetime as dt
import math
from email.utils import formatdate
from typing import Any

from botocore.model import Shape
from botocore.utils import parse_timestamp

from snapferry.errors import InvalidInput

UTC = dt.UTC


def scalar_from_text(shape: Shape, text: str, where: str) -> Any:
    """A scalar member from its text form (query strings, forms, headers, URI labels)."""
    kind = shape.type_name
    try:
        if kind in ("integer", "long"):
            value: Any = int(text)
        elif kind == "boolean":
            lowered = text.lower()
            if lowered not in ("true", "false"):
                raise ValueError(text)
            value = lowered == "true"
        elif kind in ("float", "double"):
            value = float(text)
        elif kind == "timestamp":
            value = parse_time(text)
        elif kind == "blob":
            value = base64.b64decode(text, validate=True)
        else:
            value = text
    except (ValueError, OverflowError, binascii.Error):
        raise InvalidInput(
            InvalidInput.INVALID,
            f"Invalid value '{text[:100]}' for parameter {where}: expected a {kind}.",
        ) from None
    check_limits(shape, value, where)
    return value


def parse_time(value: str | float | int) -> dt.datetime:
    """Any timestamp form an SDK sends (ISO 8601, epoch seconds, RFC 822), as aware UTC."""
    parsed = parse_timestamp(value)
    return parsed.astimezone(UTC)


# What AWS's services hold an `integer` or a `long` in: a value past these is not a number
# the service can read (and not one our database can store).
INTEGER_RANGES = {"integer": (-(2**31), 2**31 - 1), "long": (-(2**63), 2**63 - 1)}


def check_limits(shape: Shape, value: Any, where: str) -> None:
    """Enforce the model's min/max on string lengths, numbers and list sizes, and the range
    of the integer types."""
    low = shape.metadata.get("min")
    high = shape.metadata.get("max")
    bounds = INTEGER_RANGES.get(shape.type_name)
    if bounds is not None and not bounds[0] <= value <= bounds[1]:
        raise InvalidInput(
            InvalidInput.INVALID,
            f"Value {str(value)[:30]} for {where} is out of range: it must be from "
            f"{bounds[0]} to {bounds[1]}.",
        )
    if low is None and high is None:
        return
    kind = shape.type_name
    if kind in ("string", "blob", "list", "map"):
        size = len(value)
        what = "items" if kind in ("list", "map") else "characters" if kind == "string" else "bytes"
        if low is not None and size < low:
            raise InvalidInput(
                InvalidInput.INVALID, f"Value for {where} must have at least {low} {what}.",
                shape.name,
            )
        if high is not None and size > high:
            raise InvalidInput(
                InvalidInput.INVALID, f"Value for {where} must have at most {high} {what}.",
                shape.name,
            )
    elif kind in ("integer", "long", "float", "double"):
        if low is not None and value < low:
            raise InvalidInput(
                InvalidInput.INVALID, f"Value {value} for {where} is below the minimum of {low}."
            )
        if high is not None and value > high:
            raise InvalidInput(
                InvalidInput.INVALID, f"Value {value} for {where} is above the maximum of {high}."
            )


def iso8601(value: dt.datetime) -> str:
    """AWS's XML timestamp form: UTC, millisecond precision, 'Z'."""
    value = value.astimezone(UTC)
    if value.year < 1000:  # isoformat pads the year to 4 digits, strftime's %Y does not
        return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
    # isoformat truncates to milliseconds as `microsecond // 1000` does, at a fraction of
    # strftime's cost (every block write formats three times: bench/profile_blocks.py).
    return value.replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


def epoch_seconds(value: dt.datetime) -> float | int:
    """AWS's JSON timestamp form: seconds since the epoch, milliseconds as a fraction."""
    seconds = calendar.timegm(value.astimezone(UTC).timetuple())
    millis = value.microsecond // 1000
    return seconds + millis / 1000 if millis else seconds


def rfc822(value: dt.datetime) -> str:
    return formatdate(calendar.timegm(value.astimezone(UTC).timetuple()), usegmt=True)


def format_timestamp(value: dt.datetime, shape: Shape, default: str) -> str | float | int:
    form = shape.serialization.get("timestampFormat", default).lower()
    if form == "unixtimestamp":
        return epoch_seconds(value)
    if form == "rfc822":
        return rfc822(value)
    return iso8601(value)


def scalar_to_text(shape: Shape, value: Any, timestamp_default: str = "iso8601") -> str:
    """A scalar's text form for XML elements and HTTP headers."""
    kind = shape.type_name
    if kind == "boolean":
        return "true" if value else "false"
    if kind == "timestamp":
        return str(format_timestamp(value, shape, timestamp_default))
    if kind == "blob":
        return base64.b64encode(value).decode("ascii")
    if kind in ("float", "double"):
        return float_text(value)
    return str(value)


def float_text(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return repr(float(value))
