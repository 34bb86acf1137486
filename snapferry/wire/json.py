"""The `json` protocol (1.1, KMS): `X-Amz-Target` names the operation, JSON both ways.

The JSON body is walked against the shape like every other protocol, so blobs come back as
bytes and timestamps as datetimes, and types are checked before a handler sees them.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import math
import re
from typing import Any

from botocore.model import OperationModel, Shape

from snapferry.errors import InvalidInput, ServiceError
from snapferry.wire.http import HttpResponse, IncomingRequest
from snapferry.wire.protocol import AuthProblem, Protocol
from snapferry.wire.shapes import check_limits, epoch_seconds, float_text, parse_time

_NUMBER = (int, float)
# json.loads joins a valid surrogate pair into one character: any surrogate left is unpaired.
_SURROGATE = re.compile("[\ud800-\udfff]")


def load_body(body: bytes) -> Any:
    if not body.strip():
        return {}
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise InvalidInput(InvalidInput.INVALID, "The request body is not valid JSON.") from None


class JsonShapeReader:
    """Walks a decoded JSON document against a shape: type checks, blobs, timestamps."""

    def structure(self, shape: Shape, value: Any, where: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self._type_error(where or "the request body", "an object")
        result: dict[str, Any] = {}
        for name, member in shape.members.items():
            if member.serialization.get("location"):
                continue  # rest-json members that live in the URI or headers
            key = member.serialization.get("name", name)
            if key in value and value[key] is not None:
                result[name] = self.value(member, value[key], f"{where}.{key}" if where else key)
        # Unknown members are ignored, as AWS's JSON services do: newer SDKs may send more.
        for name in shape.required_members:
            if name not in result and not shape.members[name].serialization.get("location"):
                raise InvalidInput(
                    InvalidInput.MISSING, f"The request must contain the parameter {name}."
                )
        return result

    def value(self, shape: Shape, value: Any, where: str) -> Any:
        kind = shape.type_name
        if kind == "structure":
            return self.structure(shape, value, where)
        if kind == "list":
            if not isinstance(value, list):
                raise self._type_error(where, "a list")
            result: Any = [
                self.value(shape.member, v, f"{where}[{i}]") for i, v in enumerate(value)
            ]
        elif kind == "map":
            if not isinstance(value, dict):
                raise self._type_error(where, "an object")
            result = {
                self.value(shape.key, k, f"{where} key"): self.value(shape.value, v, f"{where}.{k}")
                for k, v in value.items()
            }
        elif kind == "string":
            if not isinstance(value, str):
                raise self._type_error(where, "a string")
            if _SURROGATE.search(value):
                # JSON's \ud800 escapes can name half a character, which no UTF-8 text (our
                # database, our responses) can hold.
                raise InvalidInput(
                    InvalidInput.INVALID,
                    f"{where or 'A string'} holds an unpaired UTF-16 surrogate escape "
                    "(\\ud800-\\udfff); strings must be whole Unicode characters.",
                )
            result = value
        elif kind == "boolean":
            if not isinstance(value, bool):
                raise self._type_error(where, "a boolean")
            result = value
        elif kind in ("integer", "long"):
            if isinstance(value, bool) or not isinstance(value, int):
                raise self._type_error(where, "an integer")
            result = value
        elif kind in ("float", "double"):
            if isinstance(value, bool) or not isinstance(value, _NUMBER):
                raise self._type_error(where, "a number")
            result = float(value)
        elif kind == "blob":
            if not isinstance(value, str):
                raise self._type_error(where, "base64 text")
            try:
                result = base64.b64decode(value, validate=True)
            except binascii.Error:
                raise self._type_error(where, "base64 text") from None
        elif kind == "timestamp":
            if isinstance(value, bool) or not isinstance(value, (*_NUMBER, str)):
                raise self._type_error(where, "a timestamp")
            try:
                result = parse_time(value)
            except (ValueError, OverflowError):
                raise self._type_error(where, "a timestamp") from None
        else:
            result = value
        check_limits(shape, result, where)
        return result

    @staticmethod
    def _type_error(where: str, expected: str) -> InvalidInput:
        return InvalidInput(InvalidInput.INVALID, f"{where} must be {expected}.")


class JsonShapeWriter:
    """The inverse: output dicts to JSON-ready values."""

    def structure(self, shape: Shape, value: dict[str, Any]) -> dict[str, Any]:
        result = {}
        for name, member in shape.members.items():
            if member.serialization.get("location"):
                continue
            member_value = value.get(name)
            if member_value is not None:
                result[member.serialization.get("name", name)] = self.value(member, member_value)
        return result

    def value(self, shape: Shape, value: Any) -> Any:
        kind = shape.type_name
        if kind == "structure":
            return self.structure(shape, value)
        if kind == "list":
            return [self.value(shape.member, item) for item in value]
        if kind == "map":
            return {key: self.value(shape.value, item) for key, item in value.items()}
        if kind == "blob":
            return base64.b64encode(value).decode("ascii")
        if kind == "timestamp":
            assert isinstance(value, dt.datetime)
            return epoch_seconds(value)
        if kind in ("float", "double") and not math.isfinite(value):
            return float_text(value)  # NaN and infinities travel as strings
        return value


def dumps(document: Any) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode("utf-8")


class JsonProtocol(Protocol):
    CONTENT_TYPE = "application/x-amz-json-1.1"
    AUTH_ERRORS = {
        AuthProblem.MISSING: ("MissingAuthenticationTokenException", 400),
        AuthProblem.MALFORMED: ("IncompleteSignatureException", 400),
        AuthProblem.UNKNOWN_KEY: ("UnrecognizedClientException", 400),
        AuthProblem.BAD_SIGNATURE: ("InvalidSignatureException", 400),
        AuthProblem.EXPIRED: ("RequestExpired", 400),
        AuthProblem.INVALID_TOKEN: ("UnrecognizedClientException", 400),
        AuthProblem.EXPIRED_TOKEN: ("ExpiredTokenException", 400),
    }

    reader = JsonShapeReader()
    writer = JsonShapeWriter()

    def operation_name(self, request: IncomingRequest) -> str:
        target = request.header("x-amz-target") or ""
        prefix, _, name = target.partition(".")
        if prefix != self.model.metadata.get("targetPrefix") or not name:
            raise ServiceError(
                "UnknownOperationException",
                f"The X-Amz-Target header '{target[:100]}' does not name an operation of this "
                f"service; expected {self.model.metadata.get('targetPrefix')}.<Operation>.",
            )
        return name

    def parse(self, operation: OperationModel, request: IncomingRequest) -> dict[str, Any]:
        document = load_body(request.body)
        if operation.input_shape is None:
            return {}
        return self.reader.structure(operation.input_shape, document, "")

    def serialize(
        self, operation: OperationModel, output: dict[str, Any], request_id: str
    ) -> HttpResponse:
        shape = operation.output_shape
        document = self.writer.structure(shape, output) if shape is not None else {}
        return HttpResponse(
            200,
            dumps(document),
            {"Content-Type": self.CONTENT_TYPE, "x-amzn-RequestId": request_id},
        )

    def serialize_error(self, error: ServiceError, request_id: str) -> HttpResponse:
        document = {"__type": error.code, "message": error.message, **error.fields}
        return HttpResponse(
            error.status,
            dumps(document),
            {"Content-Type": self.CONTENT_TYPE, "x-amzn-RequestId": request_id},
        )

    def input_error(self, problem: InvalidInput) -> ServiceError:
        return ServiceError("ValidationException", problem.message)

    def unknown_operation(self, name: str) -> ServiceError:
        return ServiceError(
            "UnknownOperationException", f"{name[:100]} is not an operation of this service."
        )
