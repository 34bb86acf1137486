"""The ASGI app: one port for every service. Routes a request to its protocol, its
service and its operation; stamps a request id; refuses oversized bodies unread.

Routing is by the SigV4 credential scope (which names the service), so even a request
with a bad signature is answered in its own protocol's error envelope. Unsigned requests
are routed by what they look like: X-Amz-Target (json), the path (rest-json), the
`Version` parameter (query protocols), EC2 otherwise.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from typing import Any

from snapferry.config import Settings
from snapferry.domain import actions, faults, regions
from snapferry.domain.accounts import Principal
from snapferry.domain.clock import Clock, SystemClock
from snapferry.engine.background import Background
from snapferry.engine.copier import Copier
from snapferry.engine.metrics import CONTENT_TYPE, Metrics
from snapferry.errors import InvalidInput, ServiceError, internal_error
from snapferry.services import SERVICES
from snapferry.services.context import RequestContext, Service
from snapferry.services.keyring import KeyRing
from snapferry.storage import faults as fault_store
from snapferry.storage.accounts import Credential
from snapferry.storage.datadir import Storage
from snapferry.wire import sigv4
from snapferry.wire.http import HttpResponse, IncomingRequest
from snapferry.wire.json import JsonProtocol
from snapferry.wire.models import service_model
from snapferry.wire.protocol import AuthProblem, Protocol
from snapferry.wire.query import EC2Protocol, QueryProtocol
from snapferry.wire.restjson import RestJsonProtocol

log = logging.getLogger("snapferry")

PROTOCOLS: dict[str, type[Protocol]] = {
    "ec2": EC2Protocol,
    "query": QueryProtocol,
    "json": JsonProtocol,
    "rest-json": RestJsonProtocol,
}

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
# Bodies over the limit but under this are read and dropped so the client sees our 413.
DRAIN_LIMIT = 64 * 1024 * 1024
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
# Prometheus scrapes; /metrics is the path of earlier versions, kept as an alias.
METRICS_PATHS = ("/_snapferry/metrics", "/metrics")


@cache
def protocol_for(service: str) -> Protocol:
    model = service_model(service)
    return PROTOCOLS[model.metadata["protocol"]](model)


@cache
def _versions() -> dict[str, str]:
    return {service_model(name).api_version: name for name in ("sts", "iam", "ec2")}


def guess_service(request: IncomingRequest) -> str:
    """The service an unsigned (or unreadably signed) request is most likely meant for."""
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

    def handle(self, request: IncomingRequest) -> HttpResponse:
        started = time.perf_counter()
        request_id = str(uuid.uuid4())
        operation = "unknown"  # until the request names one the service's model has
        try:
            signed: sigv4.SignedRequest | None = sigv4.read_signature(request)
            unreadable: sigv4.AuthenticationError | None = None
        except sigv4.AuthenticationError as problem:
            signed, unreadable = None, problem
        scope = signed.scope if signed else sigv4.scope_hint(request)
        known = scope is not None and scope.service in SERVICES
        protocol = protocol_for(scope.service if known else guess_service(request))
        try:
            if unreadable is not None:
                raise unreadable
            if signed is None:
                raise protocol.auth_error(
                    AuthProblem.MISSING,
                    "Request is missing Authentication Token: sign it with AWS Signature "
                    "Version 4 (an Authorization header or a presigned URL).",
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
            principal, _ = self._principal(request, signed, protocol)
            operation = protocol.operation_name(request)
            response = self._call(protocol, service, principal, signed.scope.region, request,
                                  request_id, operation)
        except sigv4.AuthenticationError as problem:
            response = protocol.serialize_error(
                protocol.auth_error(problem.problem, problem.message), request_id
            )
        except ServiceError as error:
            response = protocol.serialize_error(error, request_id)
        except InvalidInput as problem:
            response = protocol.serialize_error(protocol.input_error(problem), request_id)
        except Exception:
            log.exception("request %s failed", request_id)
            response = protocol.serialize_error(internal_error(), request_id)
        response.headers.setdefault("x-amzn-RequestId", request_id)
        self.metrics.observe(protocol.model.endpoint_prefix, operation, response.status,
                             time.perf_counter() - started)
        return response

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
            asked=actions.asked(service.name, service.iam_prefix, name, params,
                                actions.Where(principal.account_id, region,
                                              principal.username)),
        )
        output = handler(ctx, params) or {}
        if not ctx.authorized:
            raise RuntimeError(f"handler for {service.name}:{name} never called authorize()")
        return protocol.serialize(operation, output, request_id)


class _Disconnected(Exception):
    """The client went away before its body was whole."""


_TOO_SLOW = object()  # the body did not arrive within the body timeout


class App:
    """The ASGI face of the Dispatcher. Handlers run on a thread pool: they touch the
    database and disk, and the event loop must keep accepting meanwhile."""

    def __init__(self, dispatcher: Dispatcher, max_body_bytes: int, threads: int = 16,
                 body_timeout: float = 30.0) -> None:
        self.dispatcher = dispatcher
        self.max_body_bytes = max_body_bytes
        self.body_timeout = body_timeout
        self.executor = ThreadPoolExecutor(threads, thread_name_prefix="snapferry-request")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        headers: dict[str, list[str]] = {}
        for raw_name, raw_value in scope["headers"]:
            headers.setdefault(raw_name.decode("latin-1").lower(), []).append(
                raw_value.decode("latin-1")
            )
        try:
            async with asyncio.timeout(self.body_timeout):
                body = await self._read_body(headers, receive)
        except _Disconnected:
            return  # nobody to answer, and a cut-off body is not the request that was sent
        except TimeoutError:
            body = _TOO_SLOW
        request = IncomingRequest(
            method=scope["method"],
            raw_path=(scope.get("raw_path") or scope["path"].encode()).decode("latin-1"),
            raw_query=scope["query_string"].decode("latin-1"),
            headers=headers,
            body=body if isinstance(body, bytes) else b"",
            client_ip=(scope.get("client") or (None,))[0],
        )
        if body is None:
            response = self._too_large(request)
        elif body is _TOO_SLOW:
            response = self._refusal(request, ServiceError(
                "RequestTimeout",
                f"Your socket connection to the server was not read from or written to within "
                f"the timeout period: the request body took over {self.body_timeout:g} seconds.",
            ))
        elif (request.method == "GET" and request.raw_path in METRICS_PATHS
              and not request.raw_query):
            loop = asyncio.get_running_loop()  # the scrape reads the database
            body = await loop.run_in_executor(self.executor,
                                              self.dispatcher.metrics.exposition)
            response = HttpResponse(200, body, {"Content-Type": CONTENT_TYPE})
        else:
            loop = asyncio.get_running_loop()
            response = await loop.run_in_executor(self.executor, self.dispatcher.handle, request)
        headers_out = [
            (name.encode("latin-1"), value.encode("latin-1"))
            for name, value in response.headers.items()
        ]
        headers_out.append((b"content-length", str(len(response.body)).encode()))
        headers_out.append((b"server", b"snapferry"))
        try:
            await send(
                {"type": "http.response.start", "status": response.status,
                 "headers": headers_out}
            )
            await send({"type": "http.response.body", "body": response.body})
        except RuntimeError:
            # The connection closed under this request: uvicorn answered a malformed request
            # pipelined behind it with 400 and closed, and uvloop refuses writes to a closed
            # transport. There is nobody left to answer.
            log.info("connection closed before its response was sent")

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
        return self._refusal(request, ServiceError(
            "RequestEntityTooLarge",
            f"The request body is larger than this server's limit of {self.max_body_bytes} bytes.",
            status=413,
        ))

    @staticmethod
    def _refusal(request: IncomingRequest, error: ServiceError) -> HttpResponse:
        """An error for a request whose body was not read whole; the connection closes."""
        request_id = str(uuid.uuid4())
        response = protocol_for(guess_service(request)).serialize_error(error, request_id)
        response.headers["Connection"] = "close"
        response.headers.setdefault("x-amzn-RequestId", request_id)
        return response

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self.dispatcher.background.start()
                self.dispatcher.copier.start(self.dispatcher.settings.copies.workers)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.executor.shutdown(wait=True)
                self.dispatcher.copier.stop()
                self.dispatcher.background.stop()
                self.dispatcher.storage.close()
                await send({"type": "lifespan.shutdown.complete"})
                return
