"""STS: who am I; temporary credentials (AssumeRole, GetSessionToken); and the decoding of
EC2's encoded authorization failure messages."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import secrets
from typing import Any

from snapferry.domain import iam as iam_rules
from snapferry.domain import sessions as rules
from snapferry.domain.accounts import ASSUMED_ROLE
from snapferry.domain.policy import ResourcePolicy
from snapferry.errors import ServiceError
from snapferry.services.context import Output, RequestContext, Service, message_binding
from snapferry.storage import iam as iam_store
from snapferry.storage.secrets import MasterKeyError


def get_caller_identity(ctx: RequestContext, params: dict[str, Any]) -> Output:
    ctx.no_permission_needed()  # AWS answers this even under an explicit deny
    principal = ctx.principal
    return {"UserId": principal.user_id, "Account": principal.account_id, "Arn": principal.arn}


def _credentials(ctx: RequestContext, *, account_id: str, kind: str, name: str | None,
                 session_name: str | None, seconds: int, policies: list[str] | None = None,
                 tags: dict[str, str] | None = None) -> Output:
    now = ctx.clock.now()
    expires = now + dt.timedelta(seconds=seconds)
    key_id, secret = iam_rules.new_id("session-key"), iam_rules.new_secret()
    token = secrets.token_urlsafe(96)
    with ctx.storage.engine.begin() as conn:
        ctx.storage.accounts.add_session(
            conn, account_id=account_id, access_key_id=key_id,
            secret=secret, token=token, kind=kind, name=name, session_name=session_name,
            session_policies=json.dumps(policies) if policies is not None else None,
            session_tags=json.dumps(tags) if tags else None, now=now, expires_at=expires)
    return {"AccessKeyId": key_id, "SecretAccessKey": secret, "SessionToken": token,
            "Expiration": expires}


def assume_role(ctx: RequestContext, params: dict[str, Any]) -> Output:
    account_id, role_name = iam_rules.parse_role_arn(params["RoleArn"])
    session_name = rules.check_session_name(params["RoleSessionName"])
    tags = rules.session_tags(params.get("Tags"))
    with ctx.storage.engine.connect() as conn:
        role = iam_store.get_role(conn, account_id, role_name)
        texts = rules.session_policy_texts(params.get("Policy"), [
            iam_store.default_document(conn, p["arn"]) if p.get("arn") else None
            for p in params.get("PolicyArns") or ()], [p.get("arn") for p in
                                                        params.get("PolicyArns") or ()])
    trust = iam_rules.trust_document(role.trust_policy).statements if role else ()
    # A role that does not exist is refused as one whose trust policy names nobody.
    ctx.authorize(resources=[params["RoleArn"]], context={"resource_policy": ResourcePolicy(
        account_id, trust, name="trust-policy", required=True)})
    if tags:
        ctx.authorize(resources=[params["RoleArn"]], action="sts:TagSession",
                      context={"resource_policy": ResourcePolicy(
                          account_id, trust, name="trust-policy", required=True)})
    assert role is not None
    seconds = rules.check_duration(params.get("DurationSeconds"), role.max_session,
                                   chained=ctx.principal.kind == ASSUMED_ROLE)
    credentials = _credentials(ctx, account_id=account_id, kind=ASSUMED_ROLE, name=role.name,
                               session_name=session_name, seconds=seconds, policies=texts,
                               tags=tags)
    out: Output = {"Credentials": credentials, "AssumedRoleUser": {
        "AssumedRoleId": f"{role.role_id}:{session_name}",
        "Arn": f"arn:aws:sts::{account_id}:assumed-role/{role.name}/{session_name}"}}
    if texts is not None or tags:
        out["PackedPolicySize"] = rules.packed_size(texts, tags)
    return out


def get_session_token(ctx: RequestContext, params: dict[str, Any]) -> Output:
    principal = ctx.principal
    if principal.temporary:
        raise ServiceError("AccessDenied", "Cannot call GetSessionToken with session "
                           "credentials", 403)
    seconds = rules.check_token_duration(params.get("DurationSeconds"), principal.is_root)
    ctx.no_permission_needed()  # AWS: a user needs no permission to get its own session
    return {"Credentials": _credentials(ctx, account_id=ctx.account_id, kind=principal.kind,
                                        name=principal.username, session_name=None,
                                        seconds=seconds)}


def decode_authorization_message(ctx: RequestContext, params: dict[str, Any]) -> Output:
    ctx.authorize()
    text = params["EncodedMessage"]
    try:
        sealed = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        decoded = ctx.storage.box.open(sealed, message_binding(ctx.account_id))
    except (binascii.Error, ValueError, MasterKeyError):
        raise ServiceError("InvalidAuthorizationMessageException",
                           "The encoded message is not one this service issued to your "
                           "account.") from None
    return {"DecodedMessage": decoded.decode()}


def _access_denied(action: str, message: str | None = None) -> ServiceError:
    return ServiceError("AccessDenied", message or f"You are not authorized to perform: "
                        f"{action}.", 403)


SERVICE = Service(
    name="sts",
    iam_prefix="sts",
    handlers={"GetCallerIdentity": get_caller_identity, "AssumeRole": assume_role,
              "GetSessionToken": get_session_token,
              "DecodeAuthorizationMessage": decode_authorization_message},
    access_denied=_access_denied,
    denial=_access_denied,
)
