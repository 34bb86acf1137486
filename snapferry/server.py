"""The ASGI app: one port for every service. Routes a request to its protocol, its
service and its operation; stamps a request id; refuses oversized bodies unread.

Routing is by the SigV4 credential scope (which names the service), so even a request
with a bad signature is answered in its own protocol's error envelope. Unsigned requests
are routed by what they look like: X-Amz-Target (json), the path (rest-json), the
`Version` parameter (query protocols), EC2 otherwise.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import hashlib
import logging
import os
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from typing import Any

from snapferry.config import Settings
from snapferry.domain import actions, faults, regions, s3_access
from snapferry.domain.accounts import Principal
from snapferry.domain.clock import Clock, SystemClock
from snapferry.engine.background import Background
from snapferry.engine.copier import Copier
from snapferry.engine.metrics import CONTENT_TYPE, Metrics
from snapferry.errors import InvalidInput, ServiceError, engine_unavailable, internal_error
from snapferry.services import SERVICES
from snapferry.services.context import RequestContext, Service
from snapferry.services.keyring import KeyRing
from snapferry.services.s3.common import no_such_bucket
from snapferry.storage import faults as fault_store
from snapferry.storage import s3store
from snapferry.storage.accounts import Credential
from snapferry.storage.datadir import Storage
from snapferry.storage.engines import unavailable
from snapferry.web import app as web
from snapferry.wire import sigv4
from snapferry.wire.chunked import ChunkSigner
from snapferry.wire.http import BodySpool, HttpResponse, IncomingRequest
from snapferry.wire.json import JsonProtocol
from snapferry.wire.models import service_model
from snapferry.wire.protocol import AuthProblem, Protocol
from snapferry.wire.query import EC2Protocol, QueryProtocol
from snapferry.wire.restjson import RestJsonProtocol
from snapferry.wire.restxml import RestXmlProtocol

log = logging.getLogger("snapferry")

PROTOCOLS: dict[str, type[Protocol]] = {
    "ec2": EC2Protocol,
    "query": QueryProtocol,
    "json": JsonProtocol,
    "rest-json": RestJsonProtocol,
    "rest-xml": RestXmlProtocol,
}

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
# Bodies over the limit but under this are read and dropped so the client sees our 413.
DRAIN_LIMIT = 64 * 1024 * 1024
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
# Prometheus scrapes; /metrics is the path of earlier versions, kept as an alias.
METRICS_PATHS = ("/_snapferry/metrics", "/metrics")
# What an unsigned request may do: read an object whose ACL grants AllUsers READ.
ANONYMOUS_OPERATIONS = ("GetObject", "HeadObject")
# Operations answered on the event loop, without the hop to the thread pool, when nothing on
# their path can wait (Dispatcher.answers_inline): read-only, no query, no file.
INLINE_OPERATIONS = frozenset({
    ("ec2", "DescribeRegions"), ("ec2", "DescribeAvailabilityZones"),
    ("sts", "GetCallerIdentity"),
})
_INLINE_SERVICES = frozenset(service for service, _ in INLINE_OPERATIONS)
# Larger bodies (a long filter list) are parsed on the thread pool, off the event loop.
INLINE_BODY_LIMIT = 16 * 1024


def new_request_id() -> str:
    """A random (version 4) UUID as str(uuid.uuid4()) writes it, without building the UUID
    object: half the cost, on every request."""
    raw = bytearray(os.urandom(16))
    raw[6] = raw[6] & 0x0F | 0x40  # version 4
    raw[8] = raw[8] & 0x3F | 0x80  # the RFC 4122 variant
    text = raw.hex()
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


# Header names as they come off the wire -> their str, lower-cased: the same dozen names on
# every request, decoded once (bounded: a client may send any names).
_HEADER_NAMES: dict[bytes, str] = {}
MAX_HEADER_NAMES = 512


def decode_headers(raw: list[tuple[bytes, bytes]]) -> dict[str, list[str]]:
    """ASGI's header pairs as IncomingRequest holds them: lower-cased names, every value in
    arrival order."""
    headers: dict[str, list[str]] = {}
    names = _HEADER_NAMES
    for raw_name, raw_value in raw:
        name = names.get(raw_name)
        if name is None:
            name = raw_name.decode("latin-1").lower()
            if len(names) < MAX_HEADER_NAMES:
                names[raw_name] = name
        values = headers.get(name)
        if values is None:
            headers[name] = [raw_value.decode("latin-1")]
        else:
            values.append(raw_value.decode("latin-1"))
    return headers


@cache
def protocol_for(service: str) -> Protocol:
    model = service_model(service)
    return PROTOCOLS[model.metadata["protocol"]](model)


@cache
def _versions() -> dict[str, str]:
    return {service_model(name).api_version: name for name in ("sts", "iam", "ec2")}


def guess_service(request: IncomingRequest) -> str:
    """The service an unsigned (or unreadably signed) request is most likely meant for."""
    scope = sigv4.scope_hint(request)
    if scope is not None and scope.service in SERVICES:
        return scope.service
    s3 = protocol_for("s3")
    assert isinstance(s3, RestXmlProtocol)
    if s3.host_bucket(request) is not None or "AWSAccessKeyId" in request.query:
        return "s3"  # virtual-host addressing, or an S3 URL presigned with Signature V2
    if request.header("x-amz-target"):
        return "kms"
    if request.raw_path.startswith("/snapshots"):
        return "ebs"
    if "Version=" in request.raw_query or b"Version=" in request.body[:4096]:
        try:
            version = dict(QueryProtocol.params(request)).get("Version", "")
        except InvalidInput:
            version = ""
        return _versions().get(version, "ec2")
    return "ec2"


class Dispatcher:
    """The whole request path, free of any web framework: request in, response out."""

    def __init__(self, storage: Storage, settings: Settings, clock: Clock | None = None
                 ) -> None:
        self.storage = storage
        self.fault_rules = fault_store.RuleCache(storage.engine, storage.data_dir)
        self.settings = settings
        self.clock = clock or SystemClock()
        self.background = Background(
            storage, self.clock, dt.timedelta(seconds=settings.orphan_grace_seconds))
        self.keyring = KeyRing(storage.box, self.clock)
        self.copier = Copier(storage, self.keyring, self.clock, settings.copies)
        self.metrics = Metrics(storage, self.clock)
        s3 = protocol_for("s3")
        assert isinstance(s3, RestXmlProtocol)
        s3.base_domains = (settings.s3_domain.lower().strip("."),)

    def _principal(self, request: IncomingRequest, signed: sigv4.SignedRequest,
                   protocol: Protocol) -> tuple[Principal, Credential]:
        """Who a signed request acts as: its signature checked against the key's secret,
        then, for temporary credentials, its session token and their expiry."""
        now = self.clock.now()
        credential = self.storage.accounts.credential(signed.scope.access_key_id)
        sigv4.verify(request, signed, lambda _: credential.secret if credential else None, now)
        assert credential is not None
        if not credential.active:  # a user's key made Inactive
            raise protocol.auth_error(AuthProblem.INVALID_TOKEN,
                                      "The security token included in the request is invalid.")
        usable = credential
        token = request.header("x-amz-security-token") or request.query.get(
            "X-Amz-Security-Token")
        if not usable.token_matches(token):
            raise protocol.auth_error(AuthProblem.INVALID_TOKEN,
                                      "The security token included in the request is invalid.")
        if usable.expires_at is not None and now >= usable.expires_at:
            raise protocol.auth_error(AuthProblem.EXPIRED_TOKEN,
                                      "The security token included in the request is expired")
        principal = self.storage.accounts.principal(usable)
        if principal is None:  # its user or role was deleted
            raise protocol.auth_error(AuthProblem.INVALID_TOKEN,
                                      "The security token included in the request is invalid.")
        self.storage.accounts.note_use(usable, signed.scope.service, signed.scope.region, now)
        return principal, usable

    def answers_inline(self, request: IncomingRequest) -> sigv4.SignedRequest | None:
        """The request's signature when handle() can answer it on the event loop: one of
        INLINE_OPERATIONS, signed in a header by an account root whose key is remembered
        (so who calls is known without a query), with the fault rules in memory and none
        that could throttle it. None: the thread pool answers it. Only where it runs
        differs: handle() gives the same answer either way."""
        if request.spool is not None or len(request.body) > INLINE_BODY_LIMIT:
            return None
        try:
            signed = sigv4.read_signature(request)
        except sigv4.AuthenticationError:
            return None
        if signed is None or signed.presigned:
            return None
        scope = signed.scope
        if scope.service not in _INLINE_SERVICES:  # nor any other protocol's parsing here
            return None
        account_id = self.storage.accounts.known_root(scope.access_key_id)
        if account_id is None:
            return None
        try:
            operation = protocol_for(scope.service).operation_name(request)
        except (ServiceError, InvalidInput):
            return None
        if (scope.service, operation) not in INLINE_OPERATIONS:
            return None
        rules = self.fault_rules.current()
        if rules is None or faults.throttle_rules(rules, scope.service, operation,
                                                  scope.region, account_id):
            return None
        return signed

    def handle(self, request: IncomingRequest, signed_read: sigv4.SignedRequest | None = None
               ) -> HttpResponse:
        """The answer to one request. `signed_read`: its signature, already read (by
        answers_inline), so as not to read it twice."""
        started = time.perf_counter()
        request_id = new_request_id()
        operation = "unknown"  # until the request names one the service's model has
        try:
            signed: sigv4.SignedRequest | None = signed_read or sigv4.read_signature(request)
            unreadable: sigv4.AuthenticationError | None = None
        except sigv4.AuthenticationError as problem:
            signed, unreadable = None, problem
        scope = signed.scope if signed else sigv4.scope_hint(request)
        known = scope is not None and scope.service in SERVICES
        protocol = protocol_for(scope.service if known else guess_service(request))
        try:
            if unreadable is not None:
                raise unreadable
            if signed is None and unreadable is None and "AWSAccessKeyId" not in request.query:
                # (a Signature V2 URL is no anonymous request: it is told to use V4 below)
                # GET /bucket/key with no Action is no query-protocol call, nor EBS's.
                answered = self._anonymous(request, request_id, named_s3=isinstance(
                    protocol, RestXmlProtocol) or ("Action=" not in request.raw_query
                                                   and not request.raw_path.startswith(
                                                       "/snapshots")))
                if answered is not None:
                    operation, response = answered
                    response.headers.setdefault("x-amzn-RequestId", request_id)
                    self.metrics.observe("s3", operation, response.status,
                                         time.perf_counter() - started)
                    return response
            if signed is None:
                raise protocol.auth_error(
                    AuthProblem.MISSING,
                    "Request is missing Authentication Token: sign it with AWS Signature "
                    "Version 4 (an Authorization header or a presigned URL"
                    + ("; presign S3 URLs with signature_version 's3v4', Signature Version 2 "
                       "is not accepted)." if "AWSAccessKeyId" in request.query else ")."),
                )
            service = SERVICES.get(signed.scope.service)
            if service is None:
                raise ServiceError(
                    "InvalidAction",
                    f"This endpoint serves {', '.join(sorted(SERVICES))}; the request is "
                    f"signed for '{signed.scope.service[:50]}'.",
                )
            protocol = protocol_for(service.name)
            if not regions.is_region(signed.scope.region):
                raise protocol.auth_error(
                    AuthProblem.BAD_SIGNATURE,
                    f"Credential should be scoped to a valid region, not "
                    f"'{signed.scope.region[:50]}'.",
                )
            principal, credential = self._principal(request, signed, protocol)
            operation = protocol.operation_name(request)
            response = self._call(protocol, service, principal, signed.scope.region, request,
                                  request_id, operation,
                                  self._chunk_signer(request, signed, credential.secret))
        except sigv4.AuthenticationError as problem:
            response = protocol.serialize_error(
                protocol.auth_error(problem.problem, problem.message), request_id
            )
        except ServiceError as error:
            response = protocol.serialize_error(error, request_id)
        except InvalidInput as problem:
            response = protocol.serialize_error(protocol.input_error(problem), request_id)
        except Exception as error:
            if unavailable(error):  # the database or block store is restarting: retry
                log.warning("request %s: an engine is unavailable: %s", request_id, error)
                response = protocol.serialize_error(engine_unavailable(), request_id)
            else:
                log.exception("request %s failed", request_id)
                response = protocol.serialize_error(internal_error(), request_id)
        response.headers.setdefault("x-amzn-RequestId", request_id)
        # Only the model's operation names become labels: any other text a client sends
        # would make a label set of its own, kept for the life of the process.
        self.metrics.observe(protocol.model.endpoint_prefix,
                             operation if protocol.knows(operation) else "unknown",
                             response.status, time.perf_counter() - started)
        return response

    def _anonymous(self, request: IncomingRequest, request_id: str, named_s3: bool
                   ) -> tuple[str, HttpResponse] | None:
        """An unsigned GetObject or HeadObject, answered as S3 answers anonymous callers
        (what ACLs grant AllUsers, in the bucket's own region); None for any other unsigned
        request, which is refused as unauthenticated. `named_s3`: the request can only be
        S3's, so a missing bucket is NoSuchBucket; otherwise only an existing bucket makes a
        path S3's."""
        protocol = protocol_for("s3")
        assert isinstance(protocol, RestXmlProtocol)
        try:
            operation = protocol.operation_name(request)
            if operation not in ANONYMOUS_OPERATIONS:
                if not named_s3 or protocol.target(request).bucket is None:
                    return None
                # Any other S3 operation on a bucket: S3's refusal of anonymous callers.
                return operation, protocol.serialize_error(ServiceError(
                    "AccessDenied", f"Anonymous users may not call {operation}: sign the "
                    "request with AWS Signature Version 4.", status=403), request_id)
            params = protocol.parse(protocol.operation_model(operation), request)
        except (ServiceError, InvalidInput):
            return None
        try:
            with self.storage.engine.connect() as conn:
                bucket = s3store.get_bucket(conn, params["Bucket"])
            if bucket is None:
                if not named_s3:
                    return None
                raise no_such_bucket(params["Bucket"])
            return operation, self._call(protocol, SERVICES["s3"], s3_access.anonymous(),
                                         bucket.region, request, request_id, operation)
        except ServiceError as error:
            return operation, protocol.serialize_error(error, request_id)
        except InvalidInput as problem:
            return operation, protocol.serialize_error(protocol.input_error(problem),
                                                       request_id)

    @staticmethod
    def _chunk_signer(request: IncomingRequest, signed: sigv4.SignedRequest,
                      secret: str) -> ChunkSigner | None:
        """Where an S3 aws-chunked body's chain of chunk signatures starts (wire/chunked.py)."""
        declared = request.header("x-amz-content-sha256") or ""
        if signed.scope.service != "s3" or declared not in sigv4.STREAMING_SIGNED:
            return None
        scope = signed.scope
        return ChunkSigner(
            key=sigv4.signing_key(secret, scope.date, scope.region, scope.service),
            timestamp=signed.stamp, scope=scope.text,
            seed=signed.signature)

    def _throttle(self, service: str, operation: str, region: str, account_id: str) -> None:
        """An operator's throttle rule (domain/faults.py) answers this call instead."""
        rules = faults.throttle_rules(self.fault_rules.rules(), service, operation, region,
                                      account_id)
        for rule in rules:
            if not faults.rolls(rule):
                continue
            with self.storage.engine.begin() as conn:  # commits the count a rule spends
                spent = fault_store.take_one(conn, rule)
            if spent:  # raised outside the transaction, which must commit
                raise faults.throttled(service, operation)

    def _call(
        self,
        protocol: Protocol,
        service: Service,
        principal: Principal,
        region: str,
        request: IncomingRequest,
        request_id: str,
        name: str,
        chunk_signer: ChunkSigner | None = None,
    ) -> HttpResponse:
        operation = protocol.operation_model(name)
        handler = service.handlers.get(name)
        if handler is None:
            # In the model but not built yet: the protocol's unknown-operation code, as a
            # plain 400, saying so.
            code = protocol.unknown_operation(name).code
            raise ServiceError(code, f"snapferry does not serve {service.name} {name} yet.")
        self._throttle(service.name, name, region, principal.account_id)
        try:
            params = protocol.parse(operation, request)
        except InvalidInput as problem:
            if problem.shape not in service.input_errors:
                raise
            raise service.input_errors[problem.shape] from problem
        ctx = RequestContext(
            principal=principal,
            region=region,
            request_id=request_id,
            service=service,
            operation=name,
            storage=self.storage,
            clock=self.clock,
            dry_run=bool(params.get("DryRun")),
            wake_background=self.background.wake,
            wake_copiers=self.copier.wake,
            keyring=self.keyring,
            settings=self.settings,
            request=request,
            chunk_signer=chunk_signer,
            asked=self._asked(service, name, params, principal, region),
        )
        ctx.authorize_first()  # IAM before existence: see RequestContext.authorize_first
        try:
            output = handler(ctx, params) or {}
        except ServiceError as error:
            ctx.refuse_missing(error)
            raise
        if not ctx.authorized:
            raise RuntimeError(f"handler for {service.name}:{name} never called authorize()")
        return protocol.serialize(operation, output, request_id)


    def _asked(self, service: Service, name: str, params: dict[str, Any],
               principal: Principal, region: str) -> actions.Asked:
        """What the request asks IAM, its ARNs completed from what is stored (an IAM
        user's path) when the service says how."""
        asked = actions.asked(service.name, service.iam_prefix, name, params,
                              actions.Where(principal.account_id, region, principal.username))
        if service.complete_arns is None or principal.is_root:
            return asked
        return dataclasses.replace(
            asked, resources=tuple(service.complete_arns(self.storage.engine, asked.resources)))


class _Disconnected(Exception):
    """The client went away before its body was whole."""


_TOO_SLOW = object()  # the body did not arrive within the body timeout


class App:
    """The ASGI face of the Dispatcher. Handlers run on a thread pool: they touch the
    database and disk, and the event loop must keep accepting meanwhile."""

    def __init__(self, dispatcher: Dispatcher, max_body_bytes: int, threads: int = 16,
                 body_timeout: float = 30.0, startup: bool = True) -> None:
        self.dispatcher = dispatcher
        self.startup = startup  # False: a sibling process did the start-up work
        self.max_body_bytes = max_body_bytes
        self.body_timeout = body_timeout
        self.executor = ThreadPoolExecutor(threads, thread_name_prefix="snapferry-request")
        self.web = web.WebPages(dispatcher.storage, dispatcher.clock)
        settings = dispatcher.settings
        self.max_spool_bytes = settings.max_s3_body_bytes
        # Spooled bodies live beside the object files, so an upload becomes one by rename.
        self.spool_dir = dispatcher.storage.data_dir / "s3" / "tmp"

    def _spools(self, method: str, headers: dict[str, list[str]]) -> bool:
        """Whether this request's body goes to disk: an S3 upload (PUT) that is large or of
        unknown length. Everything else is read into memory under max_body_bytes."""
        if method != "PUT":
            return False
        declared = headers.get("content-length", [""])[0]
        if declared.isascii() and declared.isdigit() and int(declared) <= self.max_body_bytes:
            return False
        probe = IncomingRequest(method, "/", "", headers, b"")
        return guess_service(probe) == "s3"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        headers = decode_headers(scope["headers"])
        spool: BodySpool | None = None
        try:
            if self._spools(scope["method"], headers):
                try:
                    spool = await self._spool_body(headers, receive)
                except TimeoutError:  # a stalled upload: RequestTimeout, as for any body
                    body: Any = _TOO_SLOW
                else:
                    body = b"" if spool is not None else None
            else:
                body = await self._read_body_in_time(headers, receive)
        except _Disconnected:
            return  # nobody to answer, and a cut-off body is not the request that was sent
        request = IncomingRequest(
            method=scope["method"],
            raw_path=(scope.get("raw_path") or scope["path"].encode()).decode("latin-1"),
            raw_query=scope["query_string"].decode("latin-1"),
            headers=headers,
            body=body if isinstance(body, bytes) else b"",
            spool=spool,
            client_ip=(scope.get("client") or (None,))[0],
        )
        try:
            await self._answer(request, body, send)
        finally:
            if spool is not None:
                spool.path.unlink(missing_ok=True)  # gone already when it became an object

    @staticmethod
    def _is_scrape(request: IncomingRequest) -> bool:
        """A Prometheus scrape: unsigned, so a signed ListObjects of a bucket named
        `metrics` (path style: GET /metrics) still reaches S3."""
        return (request.method == "GET" and request.raw_path in METRICS_PATHS
                and not request.raw_query and "authorization" not in request.headers)

    async def _answer(self, request: IncomingRequest, body: Any, send: Send) -> None:
        if body is None:
            response = self._too_large(request)
        elif body is _TOO_SLOW:
            response = self._refusal(request, ServiceError(
                "RequestTimeout",
                f"Your socket connection to the server was not read from or written to within "
                f"the timeout period: the request body took over {self.body_timeout:g} seconds.",
            ))
        elif self._is_scrape(request):
            loop = asyncio.get_running_loop()  # the scrape reads the database
            body = await loop.run_in_executor(self.executor,
                                              self.dispatcher.metrics.exposition)
            response = HttpResponse(200, body, {"Content-Type": CONTENT_TYPE})
        elif web.is_web_path(request.raw_path):  # the copies page (snapferry/web/)
            loop = asyncio.get_running_loop()
            response = await loop.run_in_executor(self.executor, self.web.handle, request)
        elif (signed := self.dispatcher.answers_inline(request)) is not None:
            response = self.dispatcher.handle(request, signed)  # no query, no file: no hop
        else:
            loop = asyncio.get_running_loop()
            response = await loop.run_in_executor(self.executor, self.dispatcher.handle, request)
        headers_out = [
            (name.encode("latin-1"), value.encode("latin-1"))
            for name, value in response.headers.items()
        ]
        # HeadObject and GetObject state the object's length themselves; a streamed
        # Describe* output has none (sent chunked).
        if response.stream is None and not any(
                name.lower() == "content-length" for name in response.headers):
            headers_out.append((b"content-length", str(len(response.body)).encode()))
        headers_out.append((b"server", b"snapferry"))
        try:
            await send(
                {"type": "http.response.start", "status": response.status,
                 "headers": headers_out}
            )
            if response.stream is not None:
                await self._send_stream(response, send)
            else:
                await send({"type": "http.response.body", "body": response.body})
        except RuntimeError:
            # The connection closed under this request: uvicorn answered a malformed request
            # pipelined behind it with 400 and closed, and uvloop refuses writes to a closed
            # transport. There is nobody left to answer.
            log.info("connection closed before its response was sent")

    async def _send_stream(self, response: HttpResponse, send: Send) -> None:
        """A large body, piece by piece: each piece read off the event loop."""
        loop = asyncio.get_running_loop()
        stream = response.stream
        assert stream is not None
        try:
            while True:
                piece = await loop.run_in_executor(self.executor, next, stream, None)
                if piece is None:
                    break
                await send({"type": "http.response.body", "body": piece, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        finally:
            close = getattr(stream, "close", None)
            if close is not None:
                close()

    async def _spool_body(self, headers: dict[str, list[str]],
                          receive: Receive) -> BodySpool | None:
        """The body written to a private file as it arrives, hashed on the way; None when it
        is over max_s3_body_bytes. The deadline is per piece (an upload of gigabytes takes
        as long as it takes, but a stalled one does not hold its slot)."""
        declared = headers.get("content-length", ["0"])[0]
        if declared.isascii() and declared.isdigit() and int(declared) > self.max_spool_bytes:
            return None
        loop = asyncio.get_running_loop()
        self.spool_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = self.spool_dir / f"spool-{uuid.uuid4().hex}.part"
        handle = open(path, "xb")  # noqa: SIM115 - closed below, on every path
        os.chmod(path, 0o600)
        digest = hashlib.sha256()
        size = 0
        pending: list[bytes] = []
        pending_size = 0

        def write(data: bytes) -> None:
            digest.update(data)
            handle.write(data)

        try:
            while True:
                async with asyncio.timeout(self.body_timeout):
                    message = await receive()
                if message["type"] == "http.disconnect":
                    raise _Disconnected
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > self.max_spool_bytes:
                    handle.close()
                    path.unlink(missing_ok=True)
                    return None
                pending.append(chunk)
                pending_size += len(chunk)
                more = message.get("more_body", False)
                if pending_size >= 1024 * 1024 or not more:
                    data = b"".join(pending)
                    pending, pending_size = [], 0
                    await loop.run_in_executor(self.executor, write, data)
                if not more:
                    break
            handle.close()
        except BaseException:
            handle.close()
            path.unlink(missing_ok=True)
            raise
        return BodySpool(path, size, digest.digest())

    async def _read_body_in_time(self, headers: dict[str, list[str]], receive: Receive
                                 ) -> bytes | object | None:
        """_read_body, or _TOO_SLOW when the body is not whole within body_timeout. What
        asyncio.timeout does, with one timer and no context manager object: a third of its
        cost, on every request."""
        task = asyncio.current_task()
        assert task is not None
        cancelling = task.cancelling()
        expired: list[bool] = []

        def expire() -> None:
            expired.append(True)
            task.cancel()

        deadline = asyncio.get_running_loop().call_later(self.body_timeout, expire)
        try:
            return await self._read_body(headers, receive)
        except asyncio.CancelledError:
            # Our deadline, and no other cancellation besides: too slow. Any other: go on
            # cancelling (as asyncio.timeout does, by the task's count of cancellations).
            if expired and task.uncancel() <= cancelling:
                return _TOO_SLOW
            raise
        finally:
            deadline.cancel()

    async def _read_body(self, headers: dict[str, list[str]], receive: Receive) -> bytes | None:
        """The whole body, or None when it is over the limit.

        An oversized body is still read and dropped, up to DRAIN_LIMIT, because most clients
        send the whole body before they read a response: closing on them mid-upload shows
        them a connection reset instead of our 413 error."""
        declared = headers.get("content-length", ["0"])[0]
        # ASCII digits only: a latin-1 header may hold '²', a digit to isdigit(), not to int().
        declared_size = int(declared) if declared.isascii() and declared.isdigit() else 0
        if declared_size > DRAIN_LIMIT:
            return None
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _Disconnected
            chunk = message.get("body", b"")
            size += len(chunk)
            if size <= self.max_body_bytes:
                chunks.append(chunk)
            elif size > DRAIN_LIMIT:
                break
            if not message.get("more_body"):
                break
        return b"".join(chunks) if size <= self.max_body_bytes else None

    def _too_large(self, request: IncomingRequest) -> HttpResponse:
        if guess_service(request) == "s3":
            return self._refusal(request, ServiceError(
                "EntityTooLarge", f"Your proposed upload exceeds the maximum allowed size "
                f"({self.max_spool_bytes} bytes).", status=400))
        return self._refusal(request, ServiceError(
            "RequestEntityTooLarge",
            f"The request body is larger than this server's limit of {self.max_body_bytes} bytes.",
            status=413,
        ))

    @staticmethod
    def _refusal(request: IncomingRequest, error: ServiceError) -> HttpResponse:
        """An error for a request whose body was not read whole; the connection closes."""
        request_id = new_request_id()
        response = protocol_for(guess_service(request)).serialize_error(error, request_id)
        response.headers["Connection"] = "close"
        response.headers.setdefault("x-amzn-RequestId", request_id)
        return response

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self.dispatcher.background.start(self.startup)
                self.dispatcher.copier.start(self.dispatcher.settings.copies.workers)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.executor.shutdown(wait=True)
                self.dispatcher.copier.stop()
                self.dispatcher.background.stop()
                self.dispatcher.storage.close()
                await send({"type": "lifespan.shutdown.complete"})
                return
