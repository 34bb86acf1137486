"""STS: who am I."""

from __future__ import annotations

from typing import Any

from snapferry.errors import ServiceError
from snapferry.services.context import Output, RequestContext, Service


def get_caller_identity(ctx: RequestContext, params: dict[str, Any]) -> Output:
    ctx.authorize()
    principal = ctx.principal
    return {"UserId": principal.user_id, "Account": principal.account_id, "Arn": principal.arn}


def _access_denied(action: str) -> ServiceError:
    return ServiceError("AccessDenied", f"You are not authorized to perform: {action}.", 403)


SERVICE = Service(
    name="sts",
    iam_prefix="sts",
    handlers={"GetCallerIdentity": get_caller_identity},
    access_denied=_access_denied,
)
