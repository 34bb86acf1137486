"""The `rest-xml` protocol (S3): method, path and query name the operation; members live in
the URI, the query string, headers, an XML body, or a raw (streaming) body.

Operations sharing a method and path (PutObject, CopyObject, UploadPart, UploadPartCopy) are
told apart by what the model requires of each: the literal query keys of its requestUri
(`?uploads`, `?list-type=2`), then its required query members and headers. The bucket comes
from the path (path-style) or from the Host header under a configured base domain
(virtual-host style: `bucket.localhost:4747`).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote

from botocore.model import OperationModel, Shape

from snapferry.errors import InvalidInput, ServiceError
from snapferry.wire.http import HttpResponse, IncomingRequest
from snapferry.wire.protocol import AuthProblem, Protocol
from snapferry.wire.query import _xml_text
from snapferry.wire.shapes import check_limits, scalar_from_text, scalar_to_text

S3_NAMESPACE = "http://s3.amazonaws.com/doc/2006-03-01/"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
_XML_DECL = '<?xml version="1.0" encoding="UTF-8"?>\n'
MAX_XML_BODY = 1024 * 1024  # the largest S3 XML request body (DeleteObjects: 1000 keys)

# AWS names the root element of these responses differently from "<Operation>Result"; the
# model does not carry root names for outputs without a payload member.
_ROOTS = {
    "ListBuckets": "ListAllMyBucketsResult",
    "ListObjects": "ListBucketResult",
    "ListObjectsV2": "ListBucketResult",
    "CreateMultipartUpload": "InitiateMultipartUploadResult",
    "DeleteObjects": "DeleteResult",
    "GetBucketAcl": "AccessControlPolicy",
    "GetObjectAcl": "AccessControlPolicy",
    "GetBucketLocation": "LocationConstraint",
}


@dataclass(frozen=True)
class Target:
    """What the path and Host name: a bucket (or none) and a key (or none)."""

    bucket: str | None
    key: str | None


@dataclass(frozen=True)
class _Route:
    name: str
    method: str
    depth: int  # 0: service (`/`), 1: bucket, 2: object
    literal: tuple[tuple[str, str | None], ...]  # query keys the requestUri names
    query: tuple[str, ...]  # required query members (wire names)
    headers: tuple[str, ...]  # required header members (lower-case wire names)

    def fits(self, method: str, depth: int, query: dict[str, str],
             headers: dict[str, list[str]]) -> bool:
        if method != self.method or depth != self.depth:
            return False
        for key, value in self.literal:
            if key not in query or (value is not None and query[key] != value):
                return False
        return all(k in query for k in self.query) and all(h in headers for h in self.headers)

    @property
    def weight(self) -> tuple[int, int, int]:
        return (len(self.literal), len(self.query), len(self.headers))


def _route(model_op: OperationModel) -> _Route:
    uri = model_op.http["requestUri"]
    path, _, literal_text = uri.partition("?")
    depth = 2 if "{Key+}" in path else 1 if "{Bucket}" in path else 0
    literal = tuple((k, v or None) for k, v in parse_qsl(literal_text, keep_blank_values=True))
    shape = model_op.input_shape
    query: list[str] = []
    headers: list[str] = []
    if shape is not None:
        for name in shape.required_members:
            member = shape.members[name]
            location = member.serialization.get("location")
            wire = member.serialization.get("name", name)
            if location == "querystring":
                query.append(wire)
            elif location == "header":
                headers.append(wire.lower())
    return _Route(model_op.name, model_op.http["method"], depth, literal, tuple(query),
                  tuple(headers))


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


class RestXmlProtocol(Protocol):
    AUTH_ERRORS = {
        AuthProblem.MISSING: ("AccessDenied", 403),
        AuthProblem.MALFORMED: ("AuthorizationHeaderMalformed", 400),
        AuthProblem.UNKNOWN_KEY: ("InvalidAccessKeyId", 403),
        AuthProblem.BAD_SIGNATURE: ("SignatureDoesNotMatch", 403),
        AuthProblem.EXPIRED: ("AccessDenied", 403),
    }
    # Hosts `<bucket>.<domain>[:port]` address a bucket (virtual-host style); the server sets
    # these from its settings (`--s3-domain`).
    base_domains: tuple[str, ...] = ("localhost",)

    def __init__(self, model: Any) -> None:
        super().__init__(model)
        routes = [_route(model.operation_model(name)) for name in model.operation_names]
        routes.sort(key=lambda r: r.weight, reverse=True)
        self._routes = routes

    # ---- addressing ------------------------------------------------------------------------

    def host_bucket(self, request: IncomingRequest) -> str | None:
        host = (request.header("host") or "").lower()
        host = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        for domain in self.base_domains:
            suffix = "." + domain
            if host.endswith(suffix) and len(host) > len(suffix):
                return host[: -len(suffix)]
        return None

    def target(self, request: IncomingRequest) -> Target:
        raw = request.raw_path or "/"
        bucket = self.host_bucket(request)
        if bucket is not None:
            key = unquote(raw[1:]) if len(raw) > 1 else None
            return Target(bucket, key)
        parts = raw[1:].split("/", 1)
        if not parts[0]:
            return Target(None, None)
        key = unquote(parts[1]) if len(parts) > 1 and parts[1] else None
        return Target(unquote(parts[0]), key)

    def operation_name(self, request: IncomingRequest) -> str:
        target = self.target(request)
        depth = 0 if target.bucket is None else 1 if target.key is None else 2
        query = request.query
        for route in self._routes:
            if route.fits(request.method, depth, query, request.headers):
                return route.name
        raise ServiceError(
            "MethodNotAllowed",
            f"The specified method is not allowed against this resource: "
            f"{request.method[:10]} {request.path[:200]}.",
            status=405,
        )

    # ---- request ---------------------------------------------------------------------------

    def parse(self, operation: OperationModel, request: IncomingRequest) -> dict[str, Any]:
        shape = operation.input_shape
        if shape is None:
            return {}
        target = self.target(request)
        labels = {"Bucket": target.bucket, "Key": target.key}
        params: dict[str, Any] = {}
        for name, member in shape.members.items():
            location = member.serialization.get("location")
            key = member.serialization.get("name", name)
            if location == "uri":
                value = labels.get(key.rstrip("+"))
                if value is not None:
                    check_limits(member, value, key)
                    params[name] = value
            elif location == "querystring":
                if key in request.query:
                    params[name] = scalar_from_text(member, request.query[key], key)
            elif location == "header":
                text = request.header(key)
                if text is not None:
                    value = self._header(member, text, key)
                    if value != []:  # a header list with no items says nothing
                        params[name] = value
            elif location == "headers":
                prefix = key.lower()
                found = {h[len(prefix):]: v[0] for h, v in request.headers.items()
                         if h.startswith(prefix)}
                if found:
                    params[name] = found
        payload = shape.serialization.get("payload")
        if payload is not None:
            member = shape.members[payload]
            if member.type_name == "blob":
                params[payload] = request  # the handler streams the body itself
            elif member.type_name == "string":
                if request.body_size:
                    params[payload] = self._text_body(request)
            elif request.body_size:
                params[payload] = self._xml_payload(member, request)
        for name in shape.required_members:
            if name not in params:
                raise InvalidInput(
                    InvalidInput.MISSING, f"The request must contain the parameter {name}."
                )
        return params

    @staticmethod
    def _header(member: Shape, text: str, key: str) -> Any:
        if member.type_name == "list":  # a header list: comma-separated items
            values = [scalar_from_text(member.member, item, key)
                      for item in _header_items(text) if item]
            check_limits(member, values, key)
            return values
        return scalar_from_text(member, text, key)

    @staticmethod
    def _text_body(request: IncomingRequest) -> str:
        if request.body_size > MAX_XML_BODY or request.spool is not None:
            raise ServiceError("MaxMessageLengthExceeded",
                               "Your request was too big for this operation.")
        try:
            return request.body.decode("utf-8")
        except UnicodeDecodeError:
            raise ServiceError("InvalidRequest", "The request body is not UTF-8.") from None

    def _xml_payload(self, member: Shape, request: IncomingRequest) -> Any:
        text = self._text_body(request)
        if "<!DOCTYPE" in text or "<!ENTITY" in text:
            # Entity declarations are how XML bombs work; no S3 body has any.
            raise _malformed("DTDs and entity declarations are not allowed.")
        try:
            root = ET.fromstring(text)
        except ET.ParseError as e:
            raise _malformed(f"The XML is not well-formed ({e}).") from None
        return self._read(member, root, member.serialization.get("name", member.name))

    def _read(self, shape: Shape, element: ET.Element, where: str) -> Any:
        kind = shape.type_name
        if kind == "structure":
            result: dict[str, Any] = {}
            children = list(element)
            for name, member in shape.members.items():
                wire = member.serialization.get("name", name)
                if member.serialization.get("xmlAttribute"):
                    attribute = wire.split(":", 1)[-1]
                    for key, value in element.attrib.items():
                        if _local(key) == attribute:
                            result[name] = value
                    continue
                if member.type_name == "list" and member.serialization.get("flattened"):
                    item_name = member.member.serialization.get("name", wire)
                    items = [c for c in children if _local(c.tag) in (wire, item_name)]
                    if items:
                        result[name] = [self._read(member.member, c, f"{where}.{wire}")
                                        for c in items]
                    continue
                found = [c for c in children if _local(c.tag) == wire]
                if found:
                    result[name] = self._read(member, found[0], f"{where}.{wire}")
            for name in shape.required_members:
                if name not in result:
                    raise InvalidInput(InvalidInput.MISSING,
                                       f"The XML must contain {where}.{name}.")
            return result
        if kind == "list":
            values = [self._read(shape.member, c, f"{where}.member") for c in element]
            check_limits(shape, values, where)
            return values
        if kind == "map":
            raise _malformed(f"{where} cannot be read.")
        text = element.text or ""
        return scalar_from_text(shape, text if kind == "string" else text.strip(), where)

    # ---- response --------------------------------------------------------------------------

    def serialize(self, operation: OperationModel, output: dict[str, Any],
                  request_id: str) -> HttpResponse:
        shape = operation.output_shape
        status = operation.http.get("responseCode", 200)
        headers = {"x-amz-request-id": request_id, "x-amz-id-2": request_id}
        if shape is None:
            return HttpResponse(status, b"", headers)
        body_members: dict[str, Shape] = {}
        for name, member in shape.members.items():
            location = member.serialization.get("location")
            value = output.get(name)
            if location is None:
                body_members[name] = member
                continue
            if value is None:
                continue
            if location == "header":
                headers[member.serialization.get("name", name)] = scalar_to_text(
                    member, value, timestamp_default="rfc822")
            elif location == "headers":
                prefix = member.serialization.get("name", "")
                headers.update({prefix + k: v for k, v in value.items()})
            elif location == "statusCode":
                status = value
        if status == 200 and "Content-Range" in headers:
            status = 206  # HTTP's Partial Content: a Range was asked and served
        payload = shape.serialization.get("payload")
        if payload is not None:
            member = shape.members[payload]
            value = output.get(payload)
            if member.type_name == "blob":
                return self._stream(status, headers, value)
            if member.type_name == "string":
                return HttpResponse(status, (value or "").encode(), headers)
            if value is None:
                return HttpResponse(status, b"", headers)
            root = member.serialization.get("name", member.name)
            return self._xml(status, headers, root, self._write(member, value))
        body_members = {n: m for n, m in body_members.items() if output.get(n) is not None}
        if not body_members and operation.name not in _ROOTS:
            return HttpResponse(status, b"", headers)  # HeadObject, PutObject: headers only
        root = _ROOTS.get(operation.name, f"{operation.name}Result")
        if len(body_members) == 1 and not _ROOTS.get(operation.name, "").endswith("Result"):
            (name, member), = body_members.items()
            if member.type_name == "string" and member.serialization.get("name", name) == root:
                # GetBucketLocation: the root element holds the value itself.
                return self._xml(status, headers, root, _xml_text(str(output[name])))
        inner = "".join(self._member(n, m, output[n]) for n, m in body_members.items())
        return self._xml(status, headers, root, inner)

    @staticmethod
    def _stream(status: int, headers: dict[str, str], value: Any) -> HttpResponse:
        if value is None:
            return HttpResponse(status, b"", headers)
        if isinstance(value, bytes):
            return HttpResponse(status, value, headers)
        length = int(headers.get("Content-Length", "0"))
        return HttpResponse(status, b"", headers, stream=value, length=length)

    @staticmethod
    def _xml(status: int, headers: dict[str, str], root: str, inner: str) -> HttpResponse:
        headers.setdefault("Content-Type", "application/xml")
        body = f'{_XML_DECL}<{root} xmlns="{S3_NAMESPACE}">{inner}</{root}>'
        return HttpResponse(status, body.encode("utf-8"), headers)

    def _member(self, name: str, member: Shape, value: Any) -> str:
        wire = member.serialization.get("name", name)
        if member.type_name == "list" and member.serialization.get("flattened"):
            item = member.member.serialization.get("name", wire)
            return "".join(self._element(item, member.member, v) for v in value)
        return self._element(wire, member, value)

    def _element(self, tag: str, shape: Shape, value: Any) -> str:
        attributes = ""
        if shape.type_name == "structure":
            namespace = shape.serialization.get("xmlNamespace")
            if isinstance(namespace, dict) and namespace.get("prefix"):
                attributes += f' xmlns:{namespace["prefix"]}="{namespace["uri"]}"'
            for name, member in shape.members.items():
                if member.serialization.get("xmlAttribute") and value.get(name) is not None:
                    wire = member.serialization.get("name", name)
                    attributes += f' {wire}="{_xml_attribute(str(value[name]))}"'
        return f"<{tag}{attributes}>{self._write(shape, value)}</{tag}>"

    def _write(self, shape: Shape, value: Any) -> str:
        kind = shape.type_name
        if kind == "structure":
            return "".join(
                self._member(name, member, value[name])
                for name, member in shape.members.items()
                if value.get(name) is not None and not member.serialization.get("xmlAttribute")
            )
        if kind == "list":
            item = shape.member.serialization.get("name", "member")
            return "".join(self._element(item, shape.member, v) for v in value)
        return _xml_text(scalar_to_text(shape, value))

    def serialize_error(self, error: ServiceError, request_id: str) -> HttpResponse:
        if error.status == 304:  # Not Modified carries no body
            return HttpResponse(304, b"", {"x-amz-request-id": request_id})
        extra = "".join(f"<{k}>{_xml_text(str(v))}</{k}>" for k, v in error.fields.items())
        body = (f"{_XML_DECL}<Error><Code>{_xml_text(error.code)}</Code>"
                f"<Message>{_xml_text(error.message)}</Message>{extra}"
                f"<RequestId>{request_id}</RequestId><HostId>{request_id}</HostId></Error>")
        headers = {"Content-Type": "application/xml", "x-amz-request-id": request_id,
                   "x-amz-id-2": request_id}
        region = error.fields.get("Region")
        if region:
            headers["x-amz-bucket-region"] = region
        return HttpResponse(error.status, body.encode("utf-8"), headers)

    def input_error(self, problem: InvalidInput) -> ServiceError:
        if problem.kind == InvalidInput.MISSING:
            return ServiceError("InvalidRequest", problem.message)
        return ServiceError("InvalidArgument", problem.message)

    def unknown_operation(self, name: str) -> ServiceError:
        # AWS says 501; a 4xx keeps SDKs from retrying what will never work.
        return ServiceError("NotImplemented",
                            f"{name[:100]} is not an operation of this service.")


def _header_items(text: str) -> list[str]:
    """A header list's items: split at commas, except inside double quotes, which an item
    holding a comma or a quote is wrapped in (its quotes escaped with a backslash)."""
    items: list[str] = []
    current = ""
    quoted = escaped = False
    for char in text:
        if escaped:
            current, escaped = current + char, False
        elif quoted and char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == "," and not quoted:
            items.append(current.strip())
            current = ""
        else:
            current += char
    items.append(current.strip())
    return items


def _xml_attribute(text: str) -> str:
    """Text as an attribute value: a parser turns raw white space there into spaces."""
    escaped = _xml_text(text).replace('"', "&quot;")
    return escaped.replace("\n", "&#10;").replace("\t", "&#9;")


def _malformed(detail: str) -> ServiceError:
    return ServiceError(
        "MalformedXML",
        f"The XML you provided was not well-formed or did not validate against our published "
        f"schema: {detail}",
    )

