"""The `rest-json` protocol (EBS direct APIs): method and path name the operation; members
live in the URI, the query string, headers, a JSON body, or a raw (streaming) payload."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote

from botocore.model import OperationModel, Shape

from snapferry.errors import InvalidInput, ServiceError
from snapferry.wire.http import HttpResponse, IncomingRequest
from snapferry.wire.json import JsonShapeReader, JsonShapeWriter, dumps, load_body
from snapferry.wire.protocol import AuthProblem, Protocol
from snapferry.wire.shapes import scalar_from_text, scalar_to_text


def _route_pattern(request_uri: str) -> re.Pattern[str]:
    path = request_uri.split("?", 1)[0]
    pattern = ""
    for literal, label in re.findall(r"([^{]*)(?:\{([^}]*)\})?", path):
        pattern += re.escape(literal)
        if label:
            greedy = label.endswith("+")
            name = label.rstrip("+")
            pattern += f"(?P<{name}>.+)" if greedy else f"(?P<{name}>[^/]+)"
    return re.compile(f"^{pattern}/?$")


def _literal_length(request_uri: str) -> int:
    return len(re.sub(r"\{[^}]*\}", "", request_uri))


def _is_streaming(shape: Shape | None) -> bool:
    if shape is None:
        return False
    payload = shape.serialization.get("payload")
    return payload is not None and shape.members[payload].type_name in ("blob", "string")


class RestJsonProtocol(Protocol):
    AUTH_ERRORS = {
        AuthProblem.MISSING: ("MissingAuthenticationTokenException", 403),
        AuthProblem.MALFORMED: ("IncompleteSignatureException", 403),
        AuthProblem.UNKNOWN_KEY: ("UnrecognizedClientException", 403),
        AuthProblem.BAD_SIGNATURE: ("InvalidSignatureException", 403),
        AuthProblem.EXPIRED: ("RequestExpired", 400),
        AuthProblem.INVALID_TOKEN: ("UnrecognizedClientException", 403),
        AuthProblem.EXPIRED_TOKEN: ("ExpiredTokenException", 403),
    }

    reader = JsonShapeReader()
    writer = JsonShapeWriter()

    def __init__(self, model: Any) -> None:
        super().__init__(model)
        routes = []
        for name in model.operation_names:
            http = model.operation_model(name).http
            uri = http["requestUri"]
            routes.append((http["method"], _route_pattern(uri), _literal_length(uri), name))
        # The most literal route wins where two templates match the same path.
        routes.sort(key=lambda route: -route[2])
        self._routes = routes

    def _match(self, request: IncomingRequest) -> tuple[str, dict[str, str]]:
        for method, pattern, _, name in self._routes:
            if method != request.method:
                continue
            matched = pattern.match(request.raw_path)
            if matched:
                return name, {k: unquote(v) for k, v in matched.groupdict().items()}
        raise ServiceError(
            "UnknownOperationException",
            f"No operation of this service answers {request.method} {request.path[:200]}.",
            status=404,
        )

    def operation_name(self, request: IncomingRequest) -> str:
        return self._match(request)[0]

    def parse(self, operation: OperationModel, request: IncomingRequest) -> dict[str, Any]:
        shape = operation.input_shape
        if shape is None:
            return {}
        _, labels = self._match(request)
        params: dict[str, Any] = {}
        for name, member in shape.members.items():
            location = member.serialization.get("location")
            key = member.serialization.get("name", name)
            if location == "uri":
                if key in labels:
                    params[name] = scalar_from_text(member, labels[key], name)
            elif location == "querystring":
                self._from_query(params, name, member, key, request)
            elif location == "header":
                text = request.header(key)
                if text is not None:
                    params[name] = scalar_from_text(member, text, key)
            elif location == "headers":
                prefix = key.lower()
                params[name] = {
                    header[len(prefix) :]: values[0]
                    for header, values in request.headers.items()
                    if header.startswith(prefix)
                }
        payload = shape.serialization.get("payload")
        if _is_streaming(shape):
            assert payload is not None
            params[payload] = request.body
        elif payload is not None:
            document = load_body(request.body)
            if document:
                params[payload] = self.reader.structure(shape.members[payload], document, payload)
        else:
            params.update(self.reader.structure(shape, load_body(request.body), ""))
        for name in shape.required_members:
            if name not in params:
                raise InvalidInput(
                    InvalidInput.MISSING, f"The request must contain the parameter {name}."
                )
        return params

    @staticmethod
    def _from_query(
        params: dict[str, Any], name: str, member: Shape, key: str, request: IncomingRequest
    ) -> None:
        if member.type_name == "map":
            params[name] = dict(request.query_pairs)
        elif member.type_name == "list":
            values = [v for k, v in request.query_pairs if k == key]
            if values:
                params[name] = [scalar_from_text(member.member, v, key) for v in values]
        elif key in request.query:
            params[name] = scalar_from_text(member, request.query[key], key)

    def serialize(
        self, operation: OperationModel, output: dict[str, Any], request_id: str
    ) -> HttpResponse:
        shape = operation.output_shape
        status = operation.http.get("responseCode", 200)
        headers = {"x-amzn-RequestId": request_id}
        if shape is None:
            return HttpResponse(status, b"", headers)
        for name, member in shape.members.items():
            location = member.serialization.get("location")
            value = output.get(name)
            if value is None:
                continue
            if location == "header":
                key = member.serialization.get("name", name)
                headers[key] = scalar_to_text(member, value, timestamp_default="rfc822")
            elif location == "headers":
                prefix = member.serialization.get("name", "")
                headers.update({prefix + k: v for k, v in value.items()})
            elif location == "statusCode":
                status = value
        payload = shape.serialization.get("payload")
        if _is_streaming(shape):
            assert payload is not None
            body = output.get(payload) or b""
            headers["Content-Type"] = "application/octet-stream"
            return HttpResponse(status, body if isinstance(body, bytes) else body.encode(), headers)
        if payload is not None:
            document = (
                self.writer.structure(shape.members[payload], output[payload])
                if output.get(payload) is not None
                else {}
            )
        else:
            document = self.writer.structure(shape, output)
        headers["Content-Type"] = "application/json"
        return HttpResponse(status, dumps(document), headers)

    def serialize_error(self, error: ServiceError, request_id: str) -> HttpResponse:
        # EBS's error shapes carry `Message` (and `Reason`); botocore reads either case.
        document = {"Message": error.message, **error.fields}
        return HttpResponse(
            error.status,
            dumps(document),
            {
                "Content-Type": "application/json",
                "x-amzn-RequestId": request_id,
                "x-amzn-ErrorType": error.code,
            },
        )

    def input_error(self, problem: InvalidInput) -> ServiceError:
        return ServiceError(
            "ValidationException", problem.message, Reason="INVALID_PARAMETER_VALUE"
        )

    def unknown_operation(self, name: str) -> ServiceError:
        return ServiceError(
            "UnknownOperationException", f"{name[:100]} is not an operation of this service.",
            status=404,
        )
