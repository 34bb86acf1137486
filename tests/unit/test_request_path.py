"""The fast paths of a simple request (issue 14, requests): each gives the answer the full
path gives, errors included, and is taken only where its rule says.

- authorize() skips the condition keys only when no policy can take part (an account root
  with no identity or session policy of its own, no resource side passed);
- DescribeRegions, DescribeAvailabilityZones and GetCallerIdentity of a remembered account
  root are answered on the event loop (Dispatcher.answers_inline), anything else on the
  thread pool;
- output XML is written by writers compiled per shape, byte for byte what the generic walk
  of the model wrote.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import re
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import pytest
from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.model import Shape
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from snapferry.config import Settings
from snapferry.domain import faults, policy
from snapferry.domain.accounts import (
    DEV_ACCESS_KEY_ID,
    DEV_SECRET_ACCESS_KEY,
    ROOT,
    USER,
    Principal,
)
from snapferry.domain.clock import SystemClock
from snapferry.domain.policy_documents import Kind, parse_document
from snapferry.errors import ServiceError
from snapferry.server import App, Dispatcher, protocol_for
from snapferry.services import SERVICES
from snapferry.services.context import RequestContext
from snapferry.storage import faults as fault_store
from snapferry.storage.datadir import Storage, open_storage
from snapferry.wire.http import IncomingRequest
from snapferry.wire.query import QueryProtocol, _xml_text
from snapferry.wire.shapes import scalar_to_text
from tests.unit.shape_strategies import output_value

HOST = "127.0.0.1:4747"
REGION = "us-east-1"
ACCOUNT = "000000000000"  # the dev account of DEV_ACCESS_KEY_ID
ROOT_KEYS = (DEV_ACCESS_KEY_ID, DEV_SECRET_ACCESS_KEY)
EC2_VERSION = "Version=2016-11-15"
STS_VERSION = "Version=2011-06-15"
IAM_VERSION = "Version=2010-05-08"


# ---- authorize(): an account root with no policy skips the condition keys ------------------


class CountingClock(SystemClock):
    """The system clock, counting its reads: building the condition keys reads it."""

    def __init__(self) -> None:
        self.reads = 0

    def now(self) -> Any:
        self.reads += 1
        return super().now()


def _denied(action: str, message: str | None = None) -> ServiceError:
    return ServiceError("UnauthorizedOperation", message or f"not allowed: {action}", 403)


def _document(effect: str, action: str, kind: Kind = Kind.IDENTITY,
              principal: str | None = None) -> Any:
    statement: dict[str, Any] = {"Effect": effect, "Action": action, "Resource": "*"}
    if principal is not None:
        statement["Principal"] = {"AWS": principal}
    return parse_document({"Version": "2012-10-17", "Statement": [statement]}, kind,
                          f"{effect}-{action}")


ROOT_PRINCIPAL = Principal(ACCOUNT, "AKIDROOT", ROOT)
USER_ALLOWED = Principal(ACCOUNT, "AKIDUSER", USER, "alice", "AIDAALICE",
                         policies=(_document("Allow", "ec2:*"),))
USER_DENIED = Principal(ACCOUNT, "AKIDUSER", USER, "bob", "AIDABOB",
                        policies=(_document("Allow", "ec2:*"),
                                  _document("Deny", "ec2:DescribeAvailabilityZones")))
USER_BARE = Principal(ACCOUNT, "AKIDUSER", USER, "carol", "AIDACAROL")
# Not what credentials produce today (a root has no session policies), but the rule must
# not lean on that: a session policy caps even a root.
ROOT_CAPPED = Principal(ACCOUNT, "AKIDROOT", ROOT,
                        session_policies=(_document("Deny", "ec2:*", Kind.SESSION),))
ROOT_WITH_POLICY = Principal(ACCOUNT, "AKIDROOT", ROOT,
                             policies=(_document("Deny", "ec2:DescribeAvailabilityZones"),))
ROOT_TEMPORARY = Principal(ACCOUNT, "AKIDROOTSESSION", ROOT, temporary=True)
PRINCIPALS = [ROOT_PRINCIPAL, USER_ALLOWED, USER_DENIED, USER_BARE, ROOT_CAPPED,
              ROOT_WITH_POLICY, ROOT_TEMPORARY]


def _key_policy(naming: str, effect: str = "Allow") -> dict[str, Any]:
    text = json.dumps({"Statement": [{"Effect": effect, "Principal": {"AWS": naming},
                                      "Action": "*", "Resource": "*"}]})
    return {"resource_policy": policy.key_policy(ACCOUNT, text)}


CONTEXTS: list[dict[str, Any] | None] = [
    None,
    {"conditions": {"ec2:Region": REGION}},
    _key_policy(f"arn:aws:iam::{ACCOUNT}:root"),  # delegates to IAM
    _key_policy("arn:aws:iam::111122223333:root"),  # names another account only
    _key_policy(f"arn:aws:iam::{ACCOUNT}:root", effect="Deny"),
    {"identity_policies": (_document("Deny", "ec2:*"),)},
    {"session_policies": (_document("Deny", "ec2:*", Kind.SESSION),)},
]


def _context(principal: Principal, service: str = "ec2",
             operation: str = "DescribeAvailabilityZones",
             clock: SystemClock | None = None) -> RequestContext:
    # The refusal's encoded message needs the store's master key: not part of the rule.
    template = dataclasses.replace(SERVICES[service], encodes_denials=False)
    return RequestContext(principal, REGION, "r-1", template, operation,
                          None, clock or SystemClock())  # type: ignore[arg-type]


def _outcome(principal: Principal, context: dict[str, Any] | None, action: str | None = None,
             service: str = "ec2", operation: str = "DescribeAvailabilityZones"
             ) -> tuple[str, str]:
    ctx = _context(principal, service, operation)
    try:
        ctx.authorize(context=context, action=action)
    except ServiceError as error:
        return error.code, error.message
    return "allowed", str(ctx.authorized)


@pytest.mark.parametrize("principal", PRINCIPALS, ids=lambda p: f"{p.kind}-{p.name or 'root'}")
@pytest.mark.parametrize("context", CONTEXTS, ids=range(len(CONTEXTS)))
def test_authorize_answers_as_the_full_evaluation_does(
        principal: Principal, context: dict[str, Any] | None,
        monkeypatch: pytest.MonkeyPatch) -> None:
    fast = [_outcome(principal, context),
            _outcome(principal, context, "iam:ListUsers", "iam", "ListUsers")]
    monkeypatch.setattr(RequestContext, "_unrefusable", lambda self, context: False)
    full = [_outcome(principal, context),
            _outcome(principal, context, "iam:ListUsers", "iam", "ListUsers")]
    assert fast == full


def test_a_user_with_a_deny_is_still_denied() -> None:
    code, message = _outcome(USER_DENIED, None)
    assert code == "UnauthorizedOperation"
    assert "explicit deny in an identity-based policy" in message
    assert _outcome(USER_ALLOWED, None) == ("allowed", "True")
    assert _outcome(USER_BARE, None)[0] == "UnauthorizedOperation"


def test_a_root_is_still_refused_by_what_policies_it_is_given() -> None:
    for principal in (ROOT_CAPPED, ROOT_WITH_POLICY):
        assert _outcome(principal, None)[0] == "UnauthorizedOperation", principal
    # A KMS key policy decides for the root of its own account too.
    assert _outcome(ROOT_PRINCIPAL, _key_policy("arn:aws:iam::111122223333:root"))[0] \
        == "UnauthorizedOperation"
    assert _outcome(ROOT_PRINCIPAL, _key_policy(f"arn:aws:iam::{ACCOUNT}:root", "Deny"))[0] \
        == "UnauthorizedOperation"
    assert _outcome(ROOT_PRINCIPAL, {"identity_policies": (_document("Deny", "ec2:*"),)})[0] \
        == "UnauthorizedOperation"
    # Session credentials of GetSessionToken (no MFA) may not call IAM, root or not.
    assert _outcome(ROOT_TEMPORARY, None, "iam:ListUsers", "iam", "ListUsers")[0] \
        == "AccessDenied"


def test_only_a_root_with_no_policy_skips_the_condition_keys() -> None:
    skipped = []
    for principal in PRINCIPALS:
        clock = CountingClock()
        ctx = _context(principal, clock=clock)
        with contextlib.suppress(ServiceError):
            ctx.authorize()
        if clock.reads == 0:
            skipped.append(principal)
    assert skipped == [ROOT_PRINCIPAL, ROOT_TEMPORARY]
    clock = CountingClock()
    with pytest.raises(ServiceError):
        _context(ROOT_PRINCIPAL, clock=clock).authorize(
            context=_key_policy("arn:aws:iam::111122223333:root"))
    assert clock.reads == 1


# ---- the event loop answers the cheap reads of a known root --------------------------------


def _signed(body: str, service: str = "ec2", keys: tuple[str, str] = ROOT_KEYS,
            presign: bool = False, headers: dict[str, str] | None = None
            ) -> IncomingRequest:
    credentials = Credentials(*keys)
    if presign:  # a GET of a presigned URL, the parameters in its query
        request = AWSRequest(method="GET", url=f"http://{HOST}/?{body}")
        SigV4QueryAuth(credentials, service, REGION).add_auth(request)
        query = request.url.partition("?")[2]
        return IncomingRequest("GET", "/", query, _headers(request, ""), b"")
    request = AWSRequest(
        method="POST", url=f"http://{HOST}/", data=body.encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
                 **(headers or {})})
    SigV4Auth(credentials, service, REGION).add_auth(request)
    return IncomingRequest("POST", "/", "", _headers(request, body), body.encode())


def _headers(request: AWSRequest, body: str) -> dict[str, list[str]]:
    headers = {name.lower(): [str(value)] for name, value in request.headers.items()}
    headers["host"] = [HOST]
    headers["content-length"] = [str(len(body))]
    return headers


@pytest.fixture
def storage(tmp_path: Path) -> Iterator[Storage]:
    opened = open_storage(Settings(data_dir=tmp_path))
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def dispatcher(storage: Storage) -> Dispatcher:
    return Dispatcher(storage, Settings(data_dir=storage.data_dir))


def _user_keys(dispatcher: Dispatcher) -> tuple[str, str]:
    """An IAM user with an access key, made through the API as a root would."""
    for body in (f"Action=CreateUser&UserName=dave&{IAM_VERSION}",
                 f"Action=PutUserPolicy&UserName=dave&PolicyName=all&{IAM_VERSION}&"
                 "PolicyDocument=" + json.dumps({"Version": "2012-10-17", "Statement": [
                     {"Effect": "Allow", "Action": "*", "Resource": "*"}]})):
        assert dispatcher.handle(_signed(body, "iam")).status == 200
    answer = dispatcher.handle(_signed(f"Action=CreateAccessKey&UserName=dave&{IAM_VERSION}",
                                       "iam"))
    assert answer.status == 200, answer.body
    text = answer.body.decode()
    key = re.search(r"<AccessKeyId>(\w+)</AccessKeyId>", text)
    secret = re.search(r"<SecretAccessKey>([^<]+)</SecretAccessKey>", text)
    assert key and secret
    return key.group(1), secret.group(1)


INLINE_BODIES = [
    ("ec2", f"Action=DescribeAvailabilityZones&{EC2_VERSION}"),
    ("ec2", f"Action=DescribeRegions&{EC2_VERSION}"),
    ("sts", f"Action=GetCallerIdentity&{STS_VERSION}"),
]


def test_a_root_is_answered_inline_only_once_its_key_is_remembered(
        dispatcher: Dispatcher) -> None:
    request = _signed(INLINE_BODIES[0][1])
    assert dispatcher.answers_inline(request) is None  # first call: the key is looked up
    assert dispatcher.handle(request).status == 200
    for service, body in INLINE_BODIES:
        assert dispatcher.answers_inline(_signed(body, service)) is not None, body


def test_anything_else_goes_to_the_thread_pool(dispatcher: Dispatcher) -> None:
    assert dispatcher.handle(_signed(INLINE_BODIES[0][1])).status == 200
    user = _user_keys(dispatcher)
    refused = [
        _signed(f"Action=DescribeSnapshots&{EC2_VERSION}"),  # reads the database
        _signed(f"Action=ListUsers&{IAM_VERSION}", "iam"),
        _signed(INLINE_BODIES[0][1], keys=user),  # a user: its key and policies are read
        _signed(INLINE_BODIES[2][1], "sts", keys=user),
        _signed(INLINE_BODIES[0][1], keys=("AKIDNOSUCHKEY", "x" * 40)),
        _signed(INLINE_BODIES[0][1], "nosuchservice"),  # signed for a service not served
        _signed(INLINE_BODIES[0][1], "kms"),
        _signed(INLINE_BODIES[0][1], presign=True),
        _signed(INLINE_BODIES[0][1] + "&Filter.1.Name=zone-name" * 2000),  # a long body
        IncomingRequest("POST", "/", "", {"host": [HOST]}, INLINE_BODIES[0][1].encode()),
        IncomingRequest("POST", "/", "", {"host": [HOST], "authorization": ["AWS4 nonsense"]},
                        INLINE_BODIES[0][1].encode()),
    ]
    for request in refused:
        assert dispatcher.answers_inline(request) is None, request
    assert dispatcher.handle(_signed(INLINE_BODIES[0][1], presign=True)).status == 200
    # The user's own calls still work, on the thread pool's path.
    assert dispatcher.handle(_signed(INLINE_BODIES[0][1], keys=user)).status == 200


def test_a_throttle_rule_or_stale_rules_send_it_to_the_thread_pool(
        dispatcher: Dispatcher, storage: Storage) -> None:
    # The cache's own clock, moved by hand: the stamp is looked at once per
    # STAMP_CHECK_SECONDS, so a change is seen at the first look after it, not at once.
    real = dispatcher.fault_rules.monotonic
    now = [real()]
    dispatcher.fault_rules.monotonic = lambda: now[0]
    request = _signed(INLINE_BODIES[0][1])
    assert dispatcher.handle(request).status == 200
    assert dispatcher.answers_inline(request) is not None
    with storage.engine.begin() as conn:
        fault_store.add_rule(conn, faults.FaultRule(
            "", faults.THROTTLE, service="ec2", operation="DescribeRegions"),
            SystemClock().now())
    fault_store.mark_changed(storage.data_dir)
    # Twice the period: now[0] is the real clock's (tens of thousands of seconds), where
    # (x + 0.01) - x comes out below 0.01 about half the time.
    now[0] += 2 * fault_store.STAMP_CHECK_SECONDS
    assert dispatcher.answers_inline(request) is None  # changed: rules() must read them
    dispatcher.fault_rules.rules()
    assert dispatcher.answers_inline(request) is not None  # a rule, not for this call
    regions = _signed(INLINE_BODIES[1][1])
    assert dispatcher.answers_inline(regions) is None  # this one it could throttle
    assert dispatcher.handle(regions).status == 503  # and does, on the full path
    now[0] += fault_store.FRESH_FOR_SECONDS + 1
    assert dispatcher.answers_inline(request) is None  # stale: rules() would read them


def _comparable(body: bytes) -> bytes:
    return re.sub(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
                  b"REQUEST-ID", body)


SAME_ANSWER_CASES = [
    ("ec2", f"Action=DescribeAvailabilityZones&{EC2_VERSION}", {}),
    ("ec2", f"Action=DescribeAvailabilityZones&ZoneName.1=us-east-1b&{EC2_VERSION}", {}),
    ("ec2", f"Action=DescribeAvailabilityZones&ZoneName.1=nowhere-9z&{EC2_VERSION}", {}),
    ("ec2", f"Action=DescribeAvailabilityZones&Bogus=1&{EC2_VERSION}", {}),
    ("ec2", f"Action=DescribeAvailabilityZones&DryRun=true&{EC2_VERSION}", {}),
    ("ec2", f"Action=DescribeRegions&RegionName.1=eu-west-1&{EC2_VERSION}", {}),
    ("ec2", f"Action=DescribeRegions&RegionName.1=moon-1&{EC2_VERSION}", {}),
    ("sts", f"Action=GetCallerIdentity&{STS_VERSION}", {}),
    ("sts", f"Action=GetCallerIdentity&{STS_VERSION}", {"X-Amz-Security-Token": "forged"}),
]


@pytest.mark.parametrize(("service", "body", "headers"), SAME_ANSWER_CASES)
def test_the_inline_answer_is_the_thread_pools(dispatcher: Dispatcher, service: str,
                                               body: str, headers: dict[str, str]) -> None:
    assert dispatcher.handle(_signed(INLINE_BODIES[0][1])).status == 200  # key remembered
    request = _signed(body, service, headers=headers)
    signed = dispatcher.answers_inline(request)
    assert signed is not None
    inline = dispatcher.handle(request, signed)
    pooled = dispatcher.handle(_signed(body, service, headers=headers))
    assert (inline.status, _comparable(inline.body)) == (pooled.status,
                                                         _comparable(pooled.body))


def test_a_bad_signature_is_refused_inline_as_on_the_thread_pool(
        dispatcher: Dispatcher) -> None:
    assert dispatcher.handle(_signed(INLINE_BODIES[0][1])).status == 200
    forged = _signed(INLINE_BODIES[0][1], keys=(DEV_ACCESS_KEY_ID, "not-the-secret"))
    signed = dispatcher.answers_inline(forged)
    assert signed is not None  # its key is a known root's: only the signature is wrong
    inline = dispatcher.handle(forged, signed)
    pooled = dispatcher.handle(_signed(INLINE_BODIES[0][1],
                                       keys=(DEV_ACCESS_KEY_ID, "not-the-secret")))
    assert inline.status == pooled.status == 401
    assert _comparable(inline.body) == _comparable(pooled.body)
    assert b"AuthFailure" in inline.body


class _NoThreads:
    """An executor that refuses work: what reaches it was not answered inline."""

    def __init__(self) -> None:
        self.submitted = 0

    def submit(self, *args: Any, **kwargs: Any) -> Any:
        self.submitted += 1
        raise AssertionError("sent to the thread pool")

    def shutdown(self, wait: bool = True) -> None:
        pass


def _through_app(app: App, request: IncomingRequest) -> int:
    scope = {
        "type": "http", "method": request.method, "path": request.raw_path,
        "raw_path": request.raw_path.encode(), "query_string": request.raw_query.encode(),
        "headers": [(name.encode(), value.encode()) for name, values in request.headers.items()
                    for value in values],
    }
    statuses = []

    async def receive() -> MutableMapping[str, Any]:
        return {"type": "http.request", "body": request.body, "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    asyncio.run(app(scope, receive, send))
    return statuses[0]


def test_the_app_answers_a_known_roots_cheap_reads_without_the_thread_pool(
        dispatcher: Dispatcher) -> None:
    app = App(dispatcher, Settings(data_dir=Path()).max_body_bytes)
    assert _through_app(app, _signed(INLINE_BODIES[0][1])) == 200  # key looked up: pool
    app.executor.shutdown(wait=True)
    no_threads = _NoThreads()
    app.executor = no_threads  # type: ignore[assignment]
    for service, body in INLINE_BODIES:
        assert _through_app(app, _signed(body, service)) == 200
    assert no_threads.submitted == 0
    with pytest.raises(AssertionError, match="thread pool"):
        _through_app(app, _signed(f"Action=DescribeSnapshots&{EC2_VERSION}"))
    assert no_threads.submitted == 1


# ---- compiled XML writers write what the generic walk wrote --------------------------------


def _walk(protocol: QueryProtocol, out: list[str], shape: Shape, value: Any, tag: str) -> None:
    """The generic writer the compiled ones replaced (wire/query.py before issue 14),
    kept here as the reference."""
    kind = shape.type_name
    if kind == "structure":
        out.append(f"<{tag}>")
        _walk_members(protocol, out, shape, value)
        out.append(f"</{tag}>")
    elif kind == "list":
        if shape.serialization.get("flattened"):
            for item in value:
                _walk(protocol, out, shape.member, item, tag)
        else:
            item_tag = shape.member.serialization.get("name", "member")
            out.append(f"<{tag}>")
            for item in value:
                _walk(protocol, out, shape.member, item, item_tag)
            out.append(f"</{tag}>")
    elif kind == "map":
        key_tag = shape.key.serialization.get("name", "key")
        value_tag = shape.value.serialization.get("name", "value")
        flattened = shape.serialization.get("flattened")
        if not flattened:
            out.append(f"<{tag}>")
        for key, item in value.items():
            out.append(f"<{tag}>" if flattened else "<entry>")
            _walk(protocol, out, shape.key, key, key_tag)
            _walk(protocol, out, shape.value, item, value_tag)
            out.append(f"</{tag}>" if flattened else "</entry>")
        if not flattened:
            out.append(f"</{tag}>")
    else:
        out.append(f"<{tag}>{_xml_text(scalar_to_text(shape, value))}</{tag}>")


def _walk_members(protocol: QueryProtocol, out: list[str], shape: Shape,
                  value: dict[str, Any]) -> None:
    for name, member in shape.members.items():
        member_value = value.get(name)
        if member_value is not None:
            _walk(protocol, out, member, member_value, protocol._output_key(member, name))


def _walk_response(protocol: QueryProtocol, operation: Any, output: dict[str, Any]) -> str:
    """The whole response as the generic serializer wrote it."""
    name, shape = operation.name, operation.output_shape
    if protocol.model.metadata["protocol"] == "ec2":
        parts = ['<?xml version="1.0" encoding="UTF-8"?>\n',
                 f'<{name}Response xmlns="{protocol.namespace()}">',
                 "<requestId>req-id</requestId>"]
        if shape is None or not shape.members:
            parts.append("<return>true</return>")
        else:
            _walk_members(protocol, parts, shape, output)
        parts.append(f"</{name}Response>")
        return "".join(parts)
    parts = ['<?xml version="1.0" encoding="UTF-8"?>\n',
             f'<{name}Response xmlns="{protocol.namespace()}">']
    if shape is not None:
        wrapper = shape.serialization.get("resultWrapper") or f"{name}Result"
        parts.append(f"<{wrapper}>")
        _walk_members(protocol, parts, shape, output)
        parts.append(f"</{wrapper}>")
    parts.append("<ResponseMetadata><RequestId>req-id</RequestId></ResponseMetadata>"
                 f"</{name}Response>")
    return "".join(parts)


WRITER_CASES = sorted(
    (service, name) for service in ("ec2", "iam", "sts") for name in SERVICES[service].handlers)


@pytest.mark.parametrize(("service", "name"), WRITER_CASES)
@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_compiled_writers_write_what_the_generic_walk_wrote(
        service: str, name: str, data: st.DataObject) -> None:
    protocol = protocol_for(service)
    assert isinstance(protocol, QueryProtocol)
    operation = protocol.model.operation_model(name)
    output = data.draw(output_value(operation), label="output")
    written = protocol.serialize(operation, output, "req-id").body.decode()
    assert written == _walk_response(protocol, operation, output)


def test_text_that_xml_cannot_carry_is_escaped_by_the_compiled_writers() -> None:
    protocol = protocol_for("sts")
    assert isinstance(protocol, QueryProtocol)
    operation = protocol.model.operation_model("GetCallerIdentity")
    tricky = "a<b>&c\rd\x00e"
    body = protocol.serialize(operation, {"UserId": tricky, "Account": 123,
                                          "Arn": "plain"}, "req-id").body
    assert body.decode() == _walk_response(protocol, operation, {
        "UserId": tricky, "Account": 123, "Arn": "plain"})
    parsed = ET.fromstring(body)
    namespace = {"s": protocol.namespace()}
    assert parsed.findtext("s:GetCallerIdentityResult/s:UserId", namespaces=namespace) \
        == "a<b>&c\rd\ufffde"
    assert parsed.findtext("s:GetCallerIdentityResult/s:Account", namespaces=namespace) \
        == "123"
    assert escape("<") in body.decode()


def test_request_ids_are_fresh_per_answer(dispatcher: Dispatcher) -> None:
    """The envelope is kept per operation; the request id in it is not."""
    first = dispatcher.handle(_signed(INLINE_BODIES[0][1]))
    second = dispatcher.handle(_signed(INLINE_BODIES[0][1]))
    ids = [re.search(rb"<requestId>([^<]+)</requestId>", r.body) for r in (first, second)]
    assert ids[0] and ids[1] and ids[0].group(1) != ids[1].group(1)
    uuid.UUID(ids[0].group(1).decode())
