"""Round trips through every wire protocol, with botocore on the client's side.

Requests: botocore's client serializer builds a request from generated params, botocore's
own request preparer turns it into bytes and a URL, and our protocol must name the
operation and give back the params. Responses: our protocol writes a generated output dict
(or an error), and botocore's client parser must read back the same dict.

Where the wire cannot carry a distinction (an empty EC2 list is the same as no list), the
expected value is normalised by a function below, each saying why. Nothing else is.
"""

from __future__ import annotations

import io
import re
from typing import Any
from urllib.parse import urlsplit

import pytest
from botocore.awsrequest import (
    AWSResponse,
    HeadersDict,
    create_request_object,
    prepare_request_dict,
)
from botocore.handlers import parse_get_bucket_location
from botocore.model import OperationModel, Shape
from botocore.parsers import create_parser
from botocore.response import StreamingBody
from botocore.serialize import create_serializer
from botocore.utils import percent_encode_sequence
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st

from snapferry.errors import InvalidInput, ServiceError
from snapferry.server import protocol_for
from snapferry.services import SERVICES
from snapferry.wire.http import HttpResponse, IncomingRequest
from snapferry.wire.models import service_model
from tests.unit.shape_strategies import input_value, output_value

WIRE = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

IAM_OPERATIONS = [
    "CreateUser", "GetUser", "ListUsers", "TagUser", "CreateAccessKey", "ListAccessKeys",
    "CreateRole", "GetRole", "PutRolePolicy", "AttachRolePolicy", "CreatePolicy",
    "GetAccountSummary", "SimulatePrincipalPolicy",
    # Input maps, which the query form writes as Name.entry.N.key / .value.
    "PutAccountProperties", "AcquireRole",
]  # fmt: skip
EC2_OPERATIONS = [
    "CopySnapshot", "CopyImage", "DescribeSnapshots", "DescribeImages", "CreateVolume",
    "DescribeVolumes", "CreateSnapshot", "DeleteSnapshot", "ModifySnapshotAttribute",
    "DescribeSnapshotAttribute", "RegisterImage", "DeregisterImage", "CreateTags",
    "DeleteTags", "DescribeTags", "EnableEbsEncryptionByDefault", "GetEbsDefaultKmsKeyId",
    # Types the operations above do not carry: timestamps in the form, floats and doubles.
    "EnableImageDeprecation", "DescribeSpotPriceHistory", "DescribeReservedInstancesOfferings",
]  # fmt: skip


def _cases() -> list[tuple[str, str]]:
    served = [(name, op) for name, service in SERVICES.items() for op in service.handlers]
    ahead = [
        *(("ebs", op) for op in service_model("ebs").operation_names),
        *(("kms", op) for op in service_model("kms").operation_names),
        *(("iam", op) for op in IAM_OPERATIONS),
        ("sts", "AssumeRole"),
        *(("ec2", op) for op in EC2_OPERATIONS),
    ]
    return sorted(dict.fromkeys([*served, *ahead]))


CASES = _cases()
ENDPOINT = "https://snapferry.test"


def _operation(service: str, name: str) -> OperationModel:
    return service_model(service).operation_model(name)


def _protocol_name(service: str) -> str:
    return service_model(service).metadata["protocol"]


# ---- what an HTTP server sees of botocore's request ------------------------------------------


def incoming(request_dict: dict[str, Any], form_encoding: str = "botocore") -> IncomingRequest:
    """The request as botocore sends it and an HTTP server receives it.

    A form body (ec2, query) goes as botocore's preparer writes it (urlencode: `+` for a
    space) or, with form_encoding="percent", as `percent_encode_sequence` writes it (`%20`),
    the strict RFC 3986 form that other SDKs send. A server must read both.
    """
    if form_encoding == "percent" and isinstance(request_dict["body"], dict):
        request_dict["body"] = percent_encode_sequence(request_dict["body"]).encode("utf-8")
    prepare_request_dict(request_dict, endpoint_url=ENDPOINT)
    prepared = create_request_object(request_dict).prepare()
    url = urlsplit(prepared.url)
    headers: dict[str, list[str]] = {}
    for name, value in prepared.headers.items():
        # HTTP servers drop a header value's surrounding whitespace (RFC 9110 5.5).
        headers.setdefault(name.lower(), []).append(value.strip(" \t"))
    body = prepared.body or b""
    return IncomingRequest(
        method=prepared.method,
        raw_path=url.path or "/",
        raw_query=url.query,
        headers=headers,
        body=body.encode("utf-8") if isinstance(body, str) else body,
    )


def botocore_response(
    protocol_name: str, response: HttpResponse, shape: Shape | None, streaming: bool = False
) -> dict[str, Any]:
    """What botocore's client parser makes of our response, handed over as its endpoint
    does: headers stripped and case-insensitive (urllib3), a streaming body as a stream."""
    headers = HeadersDict({k: v.strip(" \t") for k, v in response.headers.items()})
    body: Any = response.body
    if streaming and response.status < 300:
        body = StreamingBody(io.BytesIO(response.body), len(response.body))
    http = {"status_code": response.status, "headers": headers, "body": body}
    return create_parser(protocol_name).parse(http, shape)


# ---- normalisations: what each wire cannot distinguish --------------------------------------


def form_params(shape: Shape, value: Any, *, sends_empty_list: bool) -> Any:
    """Params as the ec2/query form can carry them back; None when none go on the wire.

    A form has only `name=value` pairs: a structure or map with nothing in it sends no pair
    at all, so it is indistinguishable from its absence (and a list item that sends nothing
    leaves no index behind). botocore's query serializer sends an empty list as `Name=`
    (so `query` keeps it); the ec2 serializer sends nothing for it.
    """
    kind = shape.type_name
    if kind == "structure":
        members = {}
        for name, member_value in value.items():
            carried = form_params(
                shape.members[name], member_value, sends_empty_list=sends_empty_list
            )
            if carried is not None:
                members[name] = carried
        return members or None
    if kind == "list":
        if not value:
            return [] if sends_empty_list else None
        items = [
            form_params(shape.member, item, sends_empty_list=sends_empty_list) for item in value
        ]
        return [item for item in items if item is not None] or None
    if kind == "map":
        # A map entry always sends its key; a value that sends nothing parses as None.
        return {
            key: form_params(shape.value, item, sends_empty_list=sends_empty_list)
            for key, item in value.items()
        } or None
    return value


def lacks_required(shape: Shape, value: Any) -> bool:
    """Whether a required member is missing anywhere in `value`."""
    kind = shape.type_name
    if kind == "structure":
        return any(name not in value for name in shape.required_members) or any(
            lacks_required(shape.members[name], item) for name, item in value.items()
        )
    if kind == "list":
        return any(item is not None and lacks_required(shape.member, item) for item in value)
    if kind == "map":
        return any(
            item is not None and lacks_required(shape.value, item) for item in value.values()
        )
    return False


def rest_params(shape: Shape, params: dict[str, Any]) -> dict[str, Any]:
    """Params as rest-json carries them back."""
    result = dict(params)
    for name, member in shape.members.items():
        location = member.serialization.get("location")
        if location == "header" and isinstance(result.get(name), str):
            # HTTP drops the whitespace around a header value.
            result[name] = result[name].strip(" \t")
        elif location == "querystring" and result.get(name) in ([], {}):
            # An empty list or map puts no pair in the query string.
            del result[name]
    payload = shape.serialization.get("payload")
    if payload is not None and shape.members[payload].type_name in ("blob", "string"):
        # A streaming payload is the body itself: an absent one is an empty body, and it
        # reaches the handler as the bytes that arrived.
        body = result.get(payload, b"")
        result[payload] = body.encode("utf-8") if isinstance(body, str) else body
    return result


def xml_input(shape: Shape, value: Any) -> Any:
    """An XML request body as botocore writes it and a parser reads it back: a flattened
    list with no items writes nothing, and a parser reads a CR (raw in botocore's text) as a
    line feed."""
    kind = shape.type_name
    if kind == "structure":
        members = {}
        for name, member_value in value.items():
            carried = xml_input(shape.members[name], member_value)
            if carried is not None:
                members[name] = carried
        return members
    if kind == "list":
        if not value and shape.serialization.get("flattened"):
            return None
        return [xml_input(shape.member, item) for item in value]
    if kind == "string":
        return value.replace("\r\n", "\n").replace("\r", "\n")
    if kind == "timestamp" and shape.serialization.get("timestampFormat") == "rfc822":
        return value.replace(microsecond=0)  # RFC 822 has whole seconds
    return value


def _xml_cannot_carry(value: Any) -> bool:
    if isinstance(value, dict):
        return any(_xml_cannot_carry(v) for v in value.values())
    if isinstance(value, list):
        return any(_xml_cannot_carry(v) for v in value)
    return isinstance(value, str) and bool(_NOT_XML.search(value))


def restxml_params(shape: Shape, params: dict[str, Any]) -> dict[str, Any]:
    """Params as rest-xml carries them back: headers as rest-json's, user metadata with
    the lower-case names HTTP headers have (S3 lower-cases them too), an empty metadata map
    sends nothing, and an empty string payload is no payload."""
    result = rest_params(shape, params)
    payload = shape.serialization.get("payload")
    for name, member in shape.members.items():
        location = member.serialization.get("location")
        wire = member.serialization.get("name", "")
        if location == "header" and wire.lower() == "content-length" and name not in result:
            # HTTP's own header: botocore states the length of what it sends.
            body = result.get(payload) if payload else b""
            result[name] = len(body) if isinstance(body, bytes) else 0
            continue
        if name not in result:
            continue
        if location == "headers":
            carried = {k.lower(): v.strip(" \t") for k, v in result[name].items()}
            if carried:
                result[name] = carried
            else:
                del result[name]
        elif location == "header" and member.type_name == "list":
            # A header list is its items joined by commas: empty items vanish, and with
            # none left the header carries nothing.
            # botocore quotes an item holding a comma or a quote and escapes its quotes, but
            # not its backslashes: an item with a backslash has no one reading on the wire.
            if any("\\" in v for v in result[name]):
                reject()
            items = [v.strip(" \t") for v in result[name] if v.strip(" \t")]
            if items:
                result[name] = items
            else:
                del result[name]
        elif member.serialization.get("timestampFormat") == "rfc822":
            result[name] = result[name].replace(microsecond=0)  # RFC 822 has whole seconds
    if payload is not None:
        member = shape.members[payload]
        if member.type_name == "string":
            # A text body (a bucket policy) is the text; an empty one is no body.
            result.pop(payload, None)
            if params.get(payload):
                result[payload] = params[payload]
        elif member.type_name == "structure" and payload in result:
            result[payload] = xml_input(member, result[payload])
    return result


def expected_params(service: str, operation: OperationModel, params: dict[str, Any]) -> dict:
    shape = operation.input_shape
    if shape is None:
        return {}
    protocol_name = _protocol_name(service)
    if protocol_name in ("ec2", "query"):
        carried = form_params(shape, params, sends_empty_list=protocol_name == "query")
        return carried or {}
    if protocol_name == "rest-json":
        return rest_params(shape, params)
    if protocol_name == "rest-xml":
        return restxml_params(shape, params)
    return params


# Characters XML 1.0 cannot carry at all, not even as character references.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_output(shape: Shape, value: Any) -> Any:
    """Output as an XML document carries it back; None when nothing is written.

    XML 1.0 has no way to write most control characters, so our serializer replaces them
    with U+FFFD rather than write a document no client can parse. A flattened list or map
    is written as its repeated items: with none, nothing is written.
    """
    kind = shape.type_name
    if kind == "structure":
        members = {}
        for name, member_value in value.items():
            carried = xml_output(shape.members[name], member_value)
            if carried is not None:
                members[name] = carried
        return members
    if kind == "list":
        if not value and shape.serialization.get("flattened"):
            return None
        return [xml_output(shape.member, item) for item in value]
    if kind == "map":
        if not value and shape.serialization.get("flattened"):
            return None
        return {
            xml_output(shape.key, key): xml_output(shape.value, item) for key, item in value.items()
        }
    if kind == "string":
        return _NOT_XML.sub("\ufffd", value)
    return value


def rest_output(shape: Shape, output: dict[str, Any]) -> dict[str, Any]:
    """Output as rest-json carries it back."""
    result = dict(output)
    for name, member in shape.members.items():
        if member.serialization.get("location") == "header" and isinstance(result.get(name), str):
            # HTTP drops the whitespace around a header value.
            result[name] = result[name].strip(" \t")
    payload = shape.serialization.get("payload")
    if payload is not None and shape.members[payload].type_name in ("blob", "string"):
        # A streaming payload is the body: an absent one reads back as an empty body.
        body = result.get(payload, b"")
        result[payload] = body.encode("utf-8") if isinstance(body, str) else body
    return result


def expected_output(service: str, operation: OperationModel, output: dict[str, Any]) -> dict:
    shape = operation.output_shape
    if shape is None:
        return {}
    protocol_name = _protocol_name(service)
    if protocol_name in ("ec2", "query"):
        return xml_output(shape, output)
    if protocol_name == "rest-json":
        return rest_output(shape, output)
    if protocol_name == "rest-xml":
        return restxml_output(shape, output)
    return output


class _Raw:
    """What AWSResponse reads its content from (a urllib3 response, in botocore)."""

    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, *_: Any, **__: Any) -> Any:
        yield self.body


def restxml_output(shape: Shape, output: dict[str, Any]) -> dict[str, Any]:
    """Output as rest-xml carries it back: headers as rest-json's, user metadata under
    lower-case names (HTTP header names), the body members as an XML document does."""
    result = rest_output(shape, output)
    for name, member in shape.members.items():
        location = member.serialization.get("location")
        if name not in result:
            continue
        if location == "headers":
            result[name] = {k: v.strip(" \t") for k, v in result[name].items()}
        elif location is None and shape.serialization.get("payload") != name:
            carried = xml_output(member, result[name])
            if carried is None:
                del result[name]
            else:
                result[name] = carried
        elif location == "header" and member.type_name == "list":
            if result[name]:
                result[name] = [v.strip(" \t") for v in result[name]]
            else:
                del result[name]
    for name, member in shape.members.items():
        if member.serialization.get("location") == "headers":
            result.setdefault(name, {})  # botocore always gives a header map, maybe empty
    payload = shape.serialization.get("payload")
    if payload is not None:
        member = shape.members[payload]
        if member.type_name == "structure":
            # botocore reads a structure payload from whatever body there is, even none.
            result[payload] = xml_output(member, result.get(payload) or {})
        elif member.type_name == "string":
            result[payload] = output.get(payload) or ""
    return result


# ---- the properties -------------------------------------------------------------------------


@pytest.mark.parametrize(("service", "operation_name"), CASES)
@WIRE
@given(data=st.data())
def test_request_round_trip(service: str, operation_name: str, data: st.DataObject) -> None:
    operation = _operation(service, operation_name)
    protocol = protocol_for(service)
    params = data.draw(input_value(operation), label="params")

    serializer = create_serializer(_protocol_name(service))
    form_encoding = "botocore"
    if _protocol_name(service) in ("ec2", "query"):
        form_encoding = data.draw(st.sampled_from(["botocore", "percent"]), label="encoding")
    request = incoming(serializer.serialize_to_request(params, operation), form_encoding)

    assert protocol.operation_name(request) == operation_name
    expected = expected_params(service, operation, params)
    payload = operation.input_shape.serialization.get("payload") if operation.input_shape \
        else None
    if _protocol_name(service) == "rest-xml" and payload and \
            operation.input_shape.members[payload].type_name == "structure" and \
            _xml_cannot_carry(params.get(payload)):
        # botocore writes such text raw into the document, which no parser reads.
        with pytest.raises(ServiceError) as refused:
            protocol.parse(operation, request)
        assert refused.value.code == "MalformedXML"
        return
    if operation.input_shape is not None and lacks_required(operation.input_shape, expected):
        # What botocore sent lost a required member on the wire (an empty EC2 list sends
        # nothing): the server must say which parameter is missing, as AWS does.
        with pytest.raises(InvalidInput) as problem:
            protocol.parse(operation, request)
        assert problem.value.kind == InvalidInput.MISSING
    else:
        parsed = protocol.parse(operation, request)
        for name, value in parsed.items():
            if isinstance(value, IncomingRequest):  # S3 hands handlers the request to stream
                parsed[name] = value.body
        assert parsed == expected


@pytest.mark.parametrize(("service", "operation_name"), CASES)
@WIRE
@given(data=st.data())
def test_response_round_trip(service: str, operation_name: str, data: st.DataObject) -> None:
    operation = _operation(service, operation_name)
    protocol = protocol_for(service)
    output = data.draw(output_value(operation), label="output")

    response = protocol.serialize(operation, output, "req-id")
    parsed = botocore_response(
        _protocol_name(service), response, operation.output_shape, operation.has_streaming_output
    )

    if operation.name == "GetBucketLocation":
        # botocore's client reads the root element's text with a handler of its own.
        parse_get_bucket_location(parsed, AWSResponse("", response.status,
                                                      response.headers, _Raw(response.body)))
    metadata = parsed.pop("ResponseMetadata")
    assert metadata["RequestId"] == "req-id"
    # A response with a Content-Range is HTTP's 206 Partial Content.
    partial = output.get("ContentRange") is not None and _protocol_name(service) == "rest-xml"
    assert metadata["HTTPStatusCode"] == (206 if partial else
                                          operation.http.get("responseCode", 200))
    for name, value in parsed.items():
        if isinstance(value, StreamingBody):
            parsed[name] = value.read()
    expected = expected_output(service, operation, output)
    if operation.name == "GetBucketLocation":
        # An empty root element (us-east-1) has no text: the handler reads None.
        expected["LocationConstraint"] = expected.get("LocationConstraint") or None
    assert parsed == expected


# AWS error codes: a word, sometimes dotted (InvalidSnapshot.NotFound). botocore reads
# ':' and '#' in a code as the start of a suffix or the end of a namespace.
ERROR_CODES = st.from_regex(r"[A-Z][A-Za-z0-9]{0,20}(\.[A-Z][A-Za-z0-9]{0,20})?", fullmatch=True)
ERROR_STATUSES = st.sampled_from([400, 401, 403, 404, 409, 413, 429, 500, 503])


@pytest.mark.parametrize("service", sorted(SERVICES))
@WIRE
@given(code=ERROR_CODES, message=st.text(max_size=40), status=ERROR_STATUSES)
def test_error_round_trip(service: str, code: str, message: str, status: int) -> None:
    protocol_name = _protocol_name(service)
    response = protocol_for(service).serialize_error(ServiceError(code, message, status), "req-id")
    parsed = botocore_response(protocol_name, response, None)

    if protocol_name in ("ec2", "query", "rest-xml"):
        message = _NOT_XML.sub("\ufffd", message)
        # An empty <Message/> element has no text, which botocore's error parser reads as None.
        expected_message: str | None = message or None
    else:
        expected_message = message
    assert parsed["Error"]["Code"] == code
    assert parsed["Error"]["Message"] == expected_message
    assert parsed["ResponseMetadata"]["RequestId"] == "req-id"
    assert parsed["ResponseMetadata"]["HTTPStatusCode"] == status


def _modeled_errors() -> list[tuple[str, str]]:
    """Error shapes with members beyond the message, e.g. EBS's Reason."""
    return [
        (service, shape.name)
        for service in sorted(SERVICES)
        for shape in service_model(service).error_shapes
        if any(name.lower() != "message" for name in shape.members)
    ]


@pytest.mark.parametrize(("service", "error_name"), _modeled_errors())
@WIRE
@given(data=st.data())
def test_modeled_error_fields(service: str, error_name: str, data: st.DataObject) -> None:
    """botocore's endpoint parses an error again with its modeled shape when it knows the
    code; the extra members a ServiceError carries must come back that way."""
    model = service_model(service)
    shape = model.shape_for(error_name)
    fields = {
        name: data.draw(
            st.sampled_from(member.enum) if member.enum else st.text(max_size=20), label=name
        )
        for name, member in shape.members.items()
        if name.lower() != "message"
    }
    status = shape.metadata.get("error", {}).get("httpStatusCode", 400)
    error = ServiceError(shape.error_code, "it went wrong", status, **fields)
    response = protocol_for(service).serialize_error(error, "req-id")

    parsed = botocore_response(_protocol_name(service), response, None)
    assert model.shape_for_error_code(parsed["Error"]["Code"]).name == error_name
    modeled = botocore_response(_protocol_name(service), response, shape)
    assert {name: modeled.get(name) for name in fields} == fields
