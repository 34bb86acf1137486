"""The `ec2` and `query` protocols: form parameters in, XML out.

Parameters arrive flattened (`Filter.1.Value.2=x`). We fold them into a tree keyed by the
dotted segments and walk the operation's input shape over it, so the model, not a table of
ours, decides what each name means. Output is written by walking the output shape.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from functools import cache
from typing import Any
from xml.sax.saxutils import escape

from botocore.model import OperationModel, Shape

from snapferry.errors import InvalidInput, ServiceError
from snapferry.wire.http import HttpResponse, IncomingRequest
from snapferry.wire.protocol import AuthProblem, Protocol
from snapferry.wire.shapes import check_limits, scalar_from_text, scalar_to_text

_VALUE = ""  # the key under which a tree node keeps its own value
# Parameters that carry the request's envelope or its presigned signature, not input.
_ENVELOPE = frozenset({"Action", "Version"})
_XML_DECL = '<?xml version="1.0" encoding="UTF-8"?>\n'
# A streamed response (a Describe output whose list is an iterator) is sent in pieces of
# about this many written parts (tens of KiB), so its memory does not grow with its length.
_STREAM_PARTS = 4096

# Characters XML 1.0 cannot carry, not even as character references (and lone surrogates,
# which JSON input can smuggle in and UTF-8 cannot encode).
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")

Node = dict[str, Any]
Writer = Callable[[list[str], Any], None]


_SPECIAL = re.compile("[<>&\r]|" + _NOT_XML.pattern)


def _xml_text(text: str) -> str:
    """Text as element content. A parser reads a raw CR as LF, so CR goes as a reference;
    what XML cannot carry becomes U+FFFD, because a response no client can parse is worse."""
    if not _SPECIAL.search(text):
        return text  # the common case: nothing to escape
    return escape(_NOT_XML.sub("\ufffd", text), {"\r": "&#13;"})


# Short texts seen to need no escaping (zone names, states, ids): a set lookup instead of a
# regex search for each element of each response. Bounded, so arbitrary input cannot grow it.
_CLEAN: set[str] = set()
_CLEAN_LENGTH, _CLEAN_COUNT = 128, 8192


def _scalar_writer(shape: Shape, opening: str, closing: str) -> Writer:
    """A scalar's element, with the text conversion chosen once for the shape's kind."""
    kind = shape.type_name
    if kind == "boolean":
        true, false = f"{opening}true{closing}", f"{opening}false{closing}"

        def write_boolean(out: list[str], value: Any) -> None:
            out.append(true if value else false)

        return write_boolean
    if kind in ("string", "integer", "long"):

        def write_text(out: list[str], value: Any) -> None:
            text = value if type(value) is str else str(value)
            if text not in _CLEAN:
                if _SPECIAL.search(text):
                    text = _xml_text(text)
                elif len(text) <= _CLEAN_LENGTH and len(_CLEAN) < _CLEAN_COUNT:
                    _CLEAN.add(text)
            out.append(f"{opening}{text}{closing}")

        return write_text

    def write_scalar(out: list[str], value: Any) -> None:
        out.append(f"{opening}{_xml_text(scalar_to_text(shape, value))}{closing}")

    return write_scalar


def _param_tree(pairs: list[tuple[str, str]]) -> Node:
    root: Node = {}
    for key, value in pairs:
        if key in _ENVELOPE or key.startswith("X-Amz-"):
            continue
        parts = key.split(".")
        if "" in parts:
            # `x..y` or `x.`: no shape has a member without a name, and an empty segment
            # would collide with the key under which a node keeps its own value.
            raise InvalidInput(
                InvalidInput.UNKNOWN, f"The parameter {key[:100]} is not recognized."
            )
        node = root
        for part in parts:
            node = node.setdefault(part, {})
        node[_VALUE] = value
    return root


def _indexed(node: Node, where: str) -> list[tuple[int, Node]]:
    """The numbered children of a list or map node, in index order."""
    items = []
    for key, child in node.items():
        if key == _VALUE:
            continue
        if not key.isdigit() or int(key) < 1:
            raise InvalidInput(
                InvalidInput.UNKNOWN, f"The parameter {where}.{key} is not recognized."
            )
        items.append((int(key), child))
    items.sort(key=lambda item: item[0])
    return items


class QueryProtocol(Protocol):
    """IAM and STS: `query`. The EC2 flavour below differs in names and envelopes."""

    AUTH_ERRORS = {
        AuthProblem.MISSING: ("MissingAuthenticationToken", 403),
        AuthProblem.MALFORMED: ("IncompleteSignature", 400),
        AuthProblem.UNKNOWN_KEY: ("InvalidClientTokenId", 403),
        AuthProblem.BAD_SIGNATURE: ("SignatureDoesNotMatch", 403),
        AuthProblem.EXPIRED: ("RequestExpired", 400),
        AuthProblem.INVALID_TOKEN: ("InvalidClientTokenId", 403),
        AuthProblem.EXPIRED_TOKEN: ("ExpiredToken", 403),
    }
    INPUT_ERRORS = {
        InvalidInput.MISSING: "MissingParameter",
        InvalidInput.INVALID: "ValidationError",
        InvalidInput.UNKNOWN: "InvalidParameterValue",
    }

    def __init__(self, model: Any) -> None:
        super().__init__(model)
        self._plans: dict[str, list[tuple[str, Shape, str]]] = {}
        self._writers: dict[str, Writer] = {}  # structure shape name -> its members' writer

    # ---- request -------------------------------------------------------------------------

    @staticmethod
    def params(request: IncomingRequest) -> list[tuple[str, str]]:
        """Query-string parameters, then form-body ones (GET and POST are both valid)."""
        pairs = request.form_pairs
        if pairs is None:
            raise InvalidInput(InvalidInput.INVALID, "The request body is not UTF-8.")
        return pairs

    def operation_name(self, request: IncomingRequest) -> str:
        form = request.form  # asked twice a request (routing, then dispatch): built once
        if form is None:
            raise InvalidInput(InvalidInput.INVALID, "The request body is not UTF-8.")
        action = form.get("Action")
        if not action:
            raise ServiceError("MissingAction", "The request must contain the parameter Action.")
        return action

    def parse(self, operation: OperationModel, request: IncomingRequest) -> dict[str, Any]:
        shape = operation.input_shape
        tree = _param_tree(self.params(request))
        if shape is None:
            self._reject_unknown(tree, "")
            return {}
        return self._structure(shape, tree, "")

    def _member_key(self, member: Shape, name: str) -> str:
        if member.type_name == "list" and member.serialization.get("flattened"):
            list_name = member.member.serialization.get("name")
            if list_name:
                return list_name
        return member.serialization.get("name", name)

    def _reject_unknown(self, node: Node, prefix: str, known: set[str] | None = None) -> None:
        for key in node:
            if key != _VALUE and (known is None or key not in known):
                raise InvalidInput(
                    InvalidInput.UNKNOWN, f"The parameter {prefix}{key} is not recognized."
                )

    def _structure(self, shape: Shape, node: Node, prefix: str) -> dict[str, Any]:
        result: dict[str, Any] = {}
        known = set()
        for name, member in shape.members.items():
            key = self._member_key(member, name)
            known.add(key)
            child = node.get(key)
            if child is not None:
                result[name] = self._value(member, child, prefix + key)
        self._reject_unknown(node, prefix, known)
        for name in shape.required_members:
            if name not in result:
                key = self._member_key(shape.members[name], name)
                raise InvalidInput(
                    InvalidInput.MISSING, f"The request must contain the parameter {prefix}{key}."
                )
        return result

    def _value(self, shape: Shape, node: Node, where: str) -> Any:
        kind = shape.type_name
        if kind == "structure":
            return self._structure(shape, node, where + ".")
        if kind == "list":
            value: Any = self._list(shape, node, where)
        elif kind == "map":
            value = self._map(shape, node, where)
        else:
            if _VALUE not in node or len(node) > 1:
                raise InvalidInput(
                    InvalidInput.INVALID, f"The parameter {where} must be a single value."
                )
            return scalar_from_text(shape, node[_VALUE], where)
        check_limits(shape, value, where)
        return value

    def _list_items(self, shape: Shape, node: Node, where: str) -> tuple[Node, str]:
        if shape.serialization.get("flattened"):
            return node, where
        name = shape.member.serialization.get("name", "member")
        self._reject_unknown(node, where + ".", {name})
        return node.get(name, {}), f"{where}.{name}"

    def _list(self, shape: Shape, node: Node, where: str) -> list[Any]:
        items, where = self._list_items(shape, node, where)
        return [
            self._value(shape.member, child, f"{where}.{index}")
            for index, child in _indexed(items, where)
        ]

    def _map(self, shape: Shape, node: Node, where: str) -> dict[str, Any]:
        if not shape.serialization.get("flattened"):
            self._reject_unknown(node, where + ".", {"entry"})
            node, where = node.get("entry", {}), where + ".entry"
        key_name = shape.key.serialization.get("name", "key")
        value_name = shape.value.serialization.get("name", "value")
        result = {}
        for index, entry in _indexed(node, where):
            at = f"{where}.{index}"
            self._reject_unknown(entry, at + ".", {key_name, value_name})
            if key_name not in entry:
                raise InvalidInput(
                    InvalidInput.MISSING, f"The parameter {at}.{key_name} is missing."
                )
            key = self._value(shape.key, entry[key_name], f"{at}.{key_name}")
            result[key] = (
                self._value(shape.value, entry[value_name], f"{at}.{value_name}")
                if value_name in entry
                else None
            )
        return result

    # ---- response ------------------------------------------------------------------------

    def namespace(self) -> str:
        return self.model.metadata["xmlNamespace"]

    def serialize(
        self, operation: OperationModel, output: dict[str, Any], request_id: str
    ) -> HttpResponse:
        parts = [_XML_DECL, f'<{operation.name}Response xmlns="{self.namespace()}">']
        shape = operation.output_shape
        if shape is not None:
            wrapper = shape.serialization.get("resultWrapper") or f"{operation.name}Result"
            parts.append(f"<{wrapper}>")
            self._write_members(parts, shape, output)
            parts.append(f"</{wrapper}>")
        parts.append(
            f"<ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata>"
            f"</{operation.name}Response>"
        )
        return self._xml_response(200, parts)

    def serialize_error(self, error: ServiceError, request_id: str) -> HttpResponse:
        kind = "Sender" if error.status < 500 else "Receiver"
        parts = [
            _XML_DECL,
            f'<ErrorResponse xmlns="{self.namespace()}"><Error><Type>{kind}</Type>',
            f"<Code>{_xml_text(error.code)}</Code><Message>{_xml_text(error.message)}</Message>",
            f"</Error><RequestId>{request_id}</RequestId></ErrorResponse>",
        ]
        return self._xml_response(error.status, parts)

    @staticmethod
    def _xml_response(status: int, parts: list[str]) -> HttpResponse:
        return HttpResponse(
            status, "".join(parts).encode("utf-8"), {"Content-Type": "text/xml;charset=UTF-8"}
        )

    def _streamed_response(self, head: list[str], shape: Shape, output: dict[str, Any],
                           tail: str) -> HttpResponse:
        """The output written as its list members' iterators yield items (an unpaged
        Describe* fetching page after page), sent in pieces: the status and headers go
        first, so anything the handler can refuse it must refuse before returning."""

        def pieces() -> Iterator[bytes]:
            out = head
            for name, member, tag in self._output_members(shape):
                value = output.get(name)
                if value is None:
                    continue
                if member.type_name != "list" or not isinstance(value, Iterator):
                    self._writer(member, tag)(out, value)
                    continue
                flattened = member.serialization.get("flattened")
                item_tag = tag if flattened else member.member.serialization.get("name",
                                                                                 "member")
                write_item = self._writer(member.member, item_tag)
                if not flattened:
                    out.append(f"<{tag}>")
                for item in value:
                    write_item(out, item)
                    if len(out) >= _STREAM_PARTS:
                        yield "".join(out).encode("utf-8")
                        out = []
                if not flattened:
                    out.append(f"</{tag}>")
            out.append(tail)
            yield "".join(out).encode("utf-8")

        return HttpResponse(200, b"", {"Content-Type": "text/xml;charset=UTF-8"},
                            stream=pieces())

    def _output_members(self, shape: Shape) -> list[tuple[str, Shape, str]]:
        """(member name, member shape, XML tag) for each member, worked out once per shape:
        output is written on every request, the shape never changes."""
        plan = self._plans.get(shape.name)
        if plan is None:
            plan = [(name, member, self._output_key(member, name))
                    for name, member in shape.members.items()]
            self._plans[shape.name] = plan
        return plan

    def _output_key(self, member: Shape, name: str) -> str:
        return self._member_key(member, name)

    def _write_members(self, out: list[str], shape: Shape, value: dict[str, Any]) -> None:
        self._members_writer(shape)(out, value)

    # Output is written by writers compiled once per output shape: closures that know their
    # tags, member names and scalar kinds, so a request walks no model (the generic walk was
    # a fifth of a simple request's CPU). A structure's writer is kept by shape name (the
    # names are unique in a model, and keeping it before its members are compiled lets a
    # recursive shape refer to itself); lists, maps and scalars are compiled into their
    # parents, since a member reference may add its own traits (`flattened`, a tag).

    def _members_writer(self, shape: Shape) -> Writer:
        """Writes a structure's members (not its own tag)."""
        writer = self._writers.get(shape.name)
        if writer is not None:
            return writer
        members: list[tuple[str, Writer]] = []

        def write_members(out: list[str], value: dict[str, Any]) -> None:
            for name, write in members:
                member_value = value.get(name)
                if member_value is not None:
                    write(out, member_value)

        self._writers[shape.name] = write_members
        members.extend((name, self._writer(member, tag))
                       for name, member, tag in self._output_members(shape))
        return write_members

    def _writer(self, shape: Shape, tag: str) -> Writer:
        """Writes one value of `shape` as element `tag`."""
        kind = shape.type_name
        opening, closing = f"<{tag}>", f"</{tag}>"
        if kind == "structure":
            body = self._members_writer(shape)

            def write_structure(out: list[str], value: Any) -> None:
                out.append(opening)
                body(out, value)
                out.append(closing)

            return write_structure
        if kind == "list":
            return self._list_writer(shape, tag)
        if kind == "map":
            return self._map_writer(shape, tag)
        return _scalar_writer(shape, opening, closing)

    def _list_writer(self, shape: Shape, tag: str) -> Writer:
        if shape.serialization.get("flattened"):
            flat_item = self._writer(shape.member, tag)

            def write_flattened(out: list[str], value: Any) -> None:
                for item in value:
                    flat_item(out, item)

            return write_flattened
        write_item = self._writer(shape.member, shape.member.serialization.get("name", "member"))
        opening, closing = f"<{tag}>", f"</{tag}>"

        def write_list(out: list[str], value: Any) -> None:
            out.append(opening)
            for item in value:
                write_item(out, item)
            out.append(closing)

        return write_list

    def _map_writer(self, shape: Shape, tag: str) -> Writer:
        write_key = self._writer(shape.key, shape.key.serialization.get("name", "key"))
        write_value = self._writer(shape.value, shape.value.serialization.get("name", "value"))
        flattened = bool(shape.serialization.get("flattened"))
        opening, closing = f"<{tag}>", f"</{tag}>"
        entry_open, entry_close = (opening, closing) if flattened else ("<entry>", "</entry>")

        def write_map(out: list[str], value: Any) -> None:
            if not flattened:
                out.append(opening)
            for key, item in value.items():
                out.append(entry_open)
                write_key(out, key)
                write_value(out, item)
                out.append(entry_close)
            if not flattened:
                out.append(closing)

        return write_map

    # ---- errors --------------------------------------------------------------------------

    def input_error(self, problem: InvalidInput) -> ServiceError:
        return ServiceError(self.INPUT_ERRORS[problem.kind], problem.message)

    def unknown_operation(self, name: str) -> ServiceError:
        service = self.model.metadata.get("serviceAbbreviation", self.model.service_name)
        return ServiceError(
            "InvalidAction",
            f"The action {name[:100]} is not valid for this web service ({service}).",
        )


class EC2Protocol(QueryProtocol):
    """EC2's flavour: capitalised locationNames or queryName in, `<requestId>` and
    `<Response><Errors>` out, lists always `Name.N`."""

    AUTH_ERRORS = {
        AuthProblem.MISSING: ("MissingAuthenticationToken", 401),
        AuthProblem.MALFORMED: ("IncompleteSignature", 400),
        AuthProblem.UNKNOWN_KEY: ("AuthFailure", 401),
        AuthProblem.BAD_SIGNATURE: ("AuthFailure", 401),
        AuthProblem.EXPIRED: ("RequestExpired", 400),
        AuthProblem.INVALID_TOKEN: ("AuthFailure", 401),
        # EC2 answers expired temporary credentials as an expired request.
        AuthProblem.EXPIRED_TOKEN: ("RequestExpired", 400),
    }
    INPUT_ERRORS = {
        InvalidInput.MISSING: "MissingParameter",
        InvalidInput.INVALID: "InvalidParameterValue",
        InvalidInput.UNKNOWN: "UnknownParameter",
    }

    def _member_key(self, member: Shape, name: str) -> str:
        serialization = member.serialization
        if "queryName" in serialization:
            return serialization["queryName"]
        if "name" in serialization:
            located = serialization["name"]
            return located[0].upper() + located[1:]
        return name

    def _list_items(self, shape: Shape, node: Node, where: str) -> tuple[Node, str]:
        return node, where

    def _output_key(self, member: Shape, name: str) -> str:
        return member.serialization.get("name", name)

    def namespace(self) -> str:
        return f"http://ec2.amazonaws.com/doc/{self.model.api_version}/"

    def serialize(
        self, operation: OperationModel, output: dict[str, Any], request_id: str
    ) -> HttpResponse:
        head, tail = self._envelope(operation.name)
        parts = [head, request_id, "</requestId>"]
        shape = operation.output_shape
        if shape is None or not shape.members:
            parts.append("<return>true</return>")
        elif any(isinstance(value, Iterator) for value in output.values()):
            return self._streamed_response(parts, shape, output, tail)
        else:
            self._members_writer(shape)(parts, output)
        parts.append(tail)
        return self._xml_response(200, parts)

    @cache  # noqa: B019 - one protocol object per service, for the life of the process
    def _envelope(self, name: str) -> tuple[str, str]:
        """The response's opening (up to the request id's text) and closing, per operation."""
        return (f'{_XML_DECL}<{name}Response xmlns="{self.namespace()}"><requestId>',
                f"</{name}Response>")

    def serialize_error(self, error: ServiceError, request_id: str) -> HttpResponse:
        parts = [
            _XML_DECL,
            f"<Response><Errors><Error><Code>{_xml_text(error.code)}</Code>",
            f"<Message>{_xml_text(error.message)}</Message></Error></Errors>",
            f"<RequestID>{request_id}</RequestID></Response>",
        ]
        return self._xml_response(error.status, parts)
