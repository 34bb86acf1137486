"""RequestContext.authorize, the one gate every handler passes: the action it checks, the
refusal it raises, and DryRun stopping an allowed request before anything changes."""

from __future__ import annotations

import hashlib
import json

import pytest

from snapferry.domain import policy
from snapferry.domain.accounts import Principal
from snapferry.domain.clock import SystemClock
from snapferry.errors import ServiceError
from snapferry.services.context import RequestContext, Service
from snapferry.wire.http import IncomingRequest

OWNER = Principal("111111111111", "AKIDOWNER")
OTHER = Principal("222222222222", "AKIDOTHER")
DRY_RUN = ServiceError("DryRunOperation", "Request would have succeeded.", 412)


def denied(action: str) -> ServiceError:
    return ServiceError("AccessDenied", f"not allowed: {action}", 403)


def context(principal: Principal = OWNER, dry_run: bool = False) -> RequestContext:
    service = Service("kms", "kms", {}, denied, DRY_RUN)
    return RequestContext(principal, "us-east-1", "r-1", service, "Decrypt",
                          None, SystemClock(), dry_run=dry_run)  # type: ignore[arg-type]


def owner_only() -> dict[str, policy.ResourcePolicy]:
    text = json.dumps({"Statement": [{"Effect": "Allow", "Principal": {"AWS": OWNER.arn},
                                      "Action": "kms:Decrypt", "Resource": "*"}]})
    return {"resource_policy": policy.key_policy(OWNER.account_id, text)}


def test_an_allowed_request_is_marked_authorized() -> None:
    ctx = context()
    assert not ctx.authorized
    ctx.authorize(context=owner_only())
    assert ctx.authorized


def test_a_refused_request_raises_the_services_denial_for_the_operation() -> None:
    ctx = context(OTHER)
    with pytest.raises(ServiceError) as caught:
        ctx.authorize(context=owner_only())
    assert caught.value.code == "AccessDenied"
    assert caught.value.message == "not allowed: kms:Decrypt"
    assert not ctx.authorized


def test_a_named_action_is_the_one_checked() -> None:
    with pytest.raises(ServiceError, match="kms:Encrypt"):
        context().authorize(context=owner_only(), action="kms:Encrypt")


def test_dry_run_stops_an_allowed_request_and_only_an_allowed_one() -> None:
    ctx = context(dry_run=True)
    with pytest.raises(ServiceError) as caught:
        ctx.authorize(context=owner_only())
    assert caught.value is DRY_RUN and ctx.authorized
    with pytest.raises(ServiceError) as caught:
        context(OTHER, dry_run=True).authorize(context=owner_only())
    assert caught.value.code == "AccessDenied"


def test_the_request_body_digest_is_reused_only_for_the_body_itself() -> None:
    body = b"block" * 10
    ctx = context()
    ctx.request = IncomingRequest("PUT", "/", "", {}, body)
    assert ctx.sha256(body) == hashlib.sha256(body).digest() == ctx.request.body_sha256
    for other in (b"a", b"other", b"z" * 60):  # sorting before and after the body
        assert ctx.sha256(other) == hashlib.sha256(other).digest()
    assert context().sha256(body) == hashlib.sha256(body).digest()
    assert ctx.account_id == OWNER.account_id
