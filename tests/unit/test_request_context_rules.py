"""RequestContext's gates, one rule at a time (services/context.py): who authorize_first
refuses before the lookup, when refuse_missing turns a NotFound into a refusal, the MFA rule
for GetSessionToken's credentials, which condition keys a decision sees (the clock, the
client's address, the resources' tags, another account's resource side), and the refusal's
message, encoded and bound to the caller's account for EC2."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import json
from typing import Any

import pytest

from snapferry.domain import policy
from snapferry.domain.accounts import ASSUMED_ROLE, ROOT, USER, Principal
from snapferry.domain.actions import Asked
from snapferry.domain.policy_documents import Kind, parse_document
from snapferry.errors import ServiceError
from snapferry.services.context import First, RequestContext, Service, message_binding
from snapferry.storage.datadir import Storage
from snapferry.storage.tagstore import set_tags
from snapferry.wire.http import IncomingRequest

ACCOUNT, OTHER_ACCOUNT = "111111111111", "222222222222"
REGION = "us-east-1"
NOW = dt.datetime(2026, 11, 22, 12, 0, 0, tzinfo=dt.UTC)
SNAP_BLUE = f"arn:aws:ec2:{REGION}::snapshot/snap-0000000000000blue"
SNAP_RED = f"arn:aws:ec2:{REGION}::snapshot/snap-00000000000000red"


class FixedClock:
    def now(self) -> dt.datetime:
        return NOW


def document(*statements: dict[str, Any], kind: Kind = Kind.IDENTITY) -> Any:
    return parse_document({"Version": "2012-10-17", "Statement": list(statements)}, kind, "p")


def allow(action: str, condition: dict[str, Any] | None = None) -> dict[str, Any]:
    statement: dict[str, Any] = {"Effect": "Allow", "Action": action, "Resource": "*"}
    if condition:
        statement["Condition"] = condition
    return statement


def deny(action: str, condition: dict[str, Any] | None = None) -> dict[str, Any]:
    return {**allow(action, condition), "Effect": "Deny"}


def user(*statements: dict[str, Any], account: str = ACCOUNT, temporary: bool = False
         ) -> Principal:
    return Principal(account, "AKIDUSER", USER, "ann", "AIDAANN",
                     policies=(document(*statements),) if statements else (),
                     temporary=temporary)


ROOT_PRINCIPAL = Principal(ACCOUNT, "AKIDROOT", ROOT)


def access_denied(action: str) -> ServiceError:
    return ServiceError("AccessDenied", f"plain refusal of {action}", 403)


def denial(action: str, message: str) -> ServiceError:
    return ServiceError("UnauthorizedOperation", message, 403)


def service(prefix: str = "ec2", **fields: Any) -> Service:
    return Service(prefix, prefix, {}, access_denied, **fields)


def context(principal: Principal, svc: Service | None = None, operation: str = "DeleteSnapshot",
            storage: Storage | None = None, **fields: Any) -> RequestContext:
    return RequestContext(principal, REGION, "r-1", svc or service(), operation,
                          storage, FixedClock(), **fields)  # type: ignore[arg-type]


def refused(call: Any, *args: Any, **kwargs: Any) -> ServiceError | None:
    try:
        call(*args, **kwargs)
    except ServiceError as error:
        return error
    return None


# ---- defaults: nothing is authorized or dry-run unless said -----------------------------------


def test_a_context_starts_unauthorized_and_cannot_be_built_authorized() -> None:
    ctx = context(user())
    assert ctx.authorized is False
    with pytest.raises(TypeError):
        context(user(), authorized=True)


def test_a_context_is_not_a_dry_run_unless_told() -> None:
    dry = ServiceError("DryRunOperation", "Request would have succeeded.", 412)
    ctx = context(user(allow("ec2:*")), service(dry_run_error=dry))
    ctx.authorize()  # no DryRunOperation raised
    assert ctx.authorized
    # A service with no DryRun error lets a dry run through authorize.
    ctx = context(user(allow("ec2:*")), dry_run=True)
    ctx.authorize()
    assert ctx.authorized


def test_a_service_by_default_decides_nothing_first_and_encodes_no_message() -> None:
    plain = service()
    assert plain.authorize_first is First.NOTHING and plain.encodes_denials is False
    assert plain.dry_run_error is None and plain.denial is None
    error = refused(context(user(), plain).authorize)
    assert error is not None and error.message == "plain refusal of ec2:DeleteSnapshot"


def test_no_permission_needed_marks_the_request_authorized() -> None:
    ctx = context(user())
    ctx.no_permission_needed()
    assert ctx.authorized


# ---- the action and resources asked ----------------------------------------------------------


def test_the_action_is_the_tables_else_the_prefix_and_operation() -> None:
    only_delete = user(allow("ec2:DeleteSnapshot"))
    assert refused(context(only_delete).authorize) is None
    assert refused(context(only_delete, operation="CreateSnapshot").authorize) is not None
    # The table's row names the action (and the prefix of the service is not used).
    asked = Asked("ec2:CreateSnapshot", ())
    error = refused(context(only_delete, asked=asked).authorize)
    assert error is not None and error.message == "plain refusal of ec2:CreateSnapshot"
    assert refused(context(user(allow("ec2:CreateSnapshot")), asked=asked).authorize) is None


def test_the_tables_resources_are_judged_unless_the_handler_names_others() -> None:
    only_blue = user(allow("ec2:DeleteSnapshot") | {"Resource": SNAP_BLUE})
    assert refused(context(only_blue, asked=Asked("ec2:DeleteSnapshot", (SNAP_BLUE,))
                           ).authorize) is None
    assert refused(context(only_blue, asked=Asked("ec2:DeleteSnapshot", (SNAP_RED,))
                           ).authorize) is not None
    ctx = context(only_blue, asked=Asked("ec2:DeleteSnapshot", (SNAP_RED,)))
    assert refused(ctx.authorize, [SNAP_BLUE]) is None
    # Every resource is judged: one refused among several refuses the request.
    for resources in ([SNAP_BLUE, SNAP_RED], [SNAP_RED, SNAP_BLUE]):
        error = refused(context(only_blue, service(denial=denial)).authorize, resources)
        assert error is not None and SNAP_RED in error.message


def test_the_tables_condition_keys_are_seen_and_a_handlers_override_them() -> None:
    encrypted_only = user(allow("ec2:DeleteSnapshot", {"Bool": {"ec2:Encrypted": "true"}}))
    table = Asked("ec2:DeleteSnapshot", (), {"ec2:Encrypted": True})
    assert refused(context(encrypted_only, asked=table).authorize) is None
    assert refused(context(encrypted_only, asked=table).authorize,
                   context={"conditions": {"ec2:Encrypted": False}}) is not None
    assert refused(context(encrypted_only).authorize) is not None


# ---- condition keys every decision sees ------------------------------------------------------


def test_a_decision_sees_the_servers_clock_and_no_secure_transport() -> None:
    before = user(allow("ec2:*", {"DateLessThan": {"aws:CurrentTime": "2026-11-22T12:00:01Z"}}))
    after = user(allow("ec2:*", {"DateGreaterThan": {"aws:CurrentTime": "2026-11-22T11:59:59Z"}}))
    late = user(allow("ec2:*", {"DateLessThan": {"aws:CurrentTime": "2026-11-22T12:00:00Z"}}))
    assert refused(context(before).authorize) is None
    assert refused(context(after).authorize) is None
    assert refused(context(late).authorize) is not None
    insecure = user(allow("ec2:*", {"Bool": {"aws:SecureTransport": "false"}}))
    secure = user(allow("ec2:*", {"Bool": {"aws:SecureTransport": "true"}}))
    assert refused(context(insecure).authorize) is None
    assert refused(context(secure).authorize) is not None


def test_the_clients_address_is_a_condition_key_unless_the_handler_gives_one() -> None:
    from_lan = user(allow("ec2:*", {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}))
    request = IncomingRequest("POST", "/", "", {}, b"", client_ip="10.1.2.3")
    assert refused(context(from_lan, request=request).authorize) is None
    elsewhere = IncomingRequest("POST", "/", "", {}, b"", client_ip="192.0.2.1")
    assert refused(context(from_lan, request=elsewhere).authorize) is not None
    assert refused(context(from_lan).authorize) is not None  # no request: no address
    # A handler's own value (S3's forwarded address, say) is not overwritten.
    assert refused(context(from_lan, request=elsewhere).authorize,
                   context={"conditions": {"aws:SourceIp": "10.9.9.9"}}) is None
    assert refused(context(from_lan, request=request).authorize,
                   context={"conditions": {"aws:SourceIp": "192.0.2.9"}}) is not None


# ---- the resources' tags ---------------------------------------------------------------------


@pytest.fixture
def tagged(storage: Storage) -> Storage:
    with storage.engine.begin() as conn:
        for arn, team in ((SNAP_BLUE, "blue"), (SNAP_RED, "red")):
            set_tags(conn, arn.rsplit("/", 1)[1], "snapshot", ACCOUNT, REGION, {"team": team})
    return storage


@pytest.mark.parametrize("key", ["aws:ResourceTag/team", "ec2:ResourceTag/team"])
def test_a_resources_tags_are_condition_keys_under_both_prefixes(tagged: Storage,
                                                                 key: str) -> None:
    blue_team = user(allow("ec2:DeleteSnapshot", {"StringEquals": {key: "blue"}}))
    assert refused(context(blue_team, storage=tagged).authorize, [SNAP_BLUE]) is None
    assert refused(context(blue_team, storage=tagged).authorize, [SNAP_RED]) is not None
    for both in ([SNAP_BLUE, SNAP_RED], [SNAP_RED, SNAP_BLUE]):
        assert refused(context(blue_team, storage=tagged).authorize, both) is not None
    # Each resource is judged by its own tags, not by its neighbour's.
    not_red = user(allow("ec2:DeleteSnapshot"),
                   deny("ec2:DeleteSnapshot", {"StringEquals": {key: "red"}}))
    assert refused(context(not_red, storage=tagged).authorize, [SNAP_BLUE]) is None
    assert refused(context(not_red, storage=tagged).authorize, [SNAP_BLUE, SNAP_RED]) is not None


def test_a_wildcard_resource_has_no_tags(tagged: Storage) -> None:
    # A resource id with `*` is no resource: no tag lookup for it (and none found).
    wildcard = f"arn:aws:ec2:{REGION}::snapshot/*"
    no_tags = user(allow("ec2:DeleteSnapshot"),
                   deny("ec2:DeleteSnapshot", {"Null": {"aws:ResourceTag/team": "true"}}))
    assert refused(context(no_tags, storage=tagged).authorize, [SNAP_BLUE]) is None
    assert refused(context(no_tags, storage=tagged).authorize, [wildcard]) is not None
    assert refused(context(no_tags, storage=tagged).authorize,
                   [wildcard, SNAP_BLUE]) is not None


def test_a_root_is_not_judged_by_tags(tagged: Storage) -> None:
    # An account root's own resources need no Allow, whatever they are tagged.
    capped = Principal(ACCOUNT, "AKIDROOT", ROOT, policies=(document(
        allow("ec2:*"), deny("ec2:DeleteSnapshot", {"StringEquals": {
            "aws:ResourceTag/team": "red"}})),))
    assert refused(context(capped, storage=tagged).authorize, [SNAP_RED]) is None


# ---- another account's resource side ---------------------------------------------------------


class Side:
    """A Service.resource_side recording its calls; refuses whoever it is asked about."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, str, str]] = []

    def __call__(self, engine: Any, resource: str, account_id: str) -> policy.ResourcePolicy:
        self.calls.append((engine, resource, account_id))
        text = json.dumps({"Statement": [deny("ec2:*") | {"Principal": "*"}]})
        return policy.key_policy(OTHER_ACCOUNT, text)


def test_the_resource_side_is_asked_for_a_user_and_decides(storage: Storage) -> None:
    side = Side()
    ctx = context(user(allow("ec2:*")), service(resource_side=side), storage=storage)
    assert refused(ctx.authorize, [SNAP_BLUE]) is not None
    assert side.calls == [(storage.engine, SNAP_BLUE, ACCOUNT)]
    # A resource policy the handler passes is the one judged: the side is not asked.
    side.calls.clear()
    mine = policy.ResourcePolicy(ACCOUNT)
    ctx = context(user(allow("ec2:*")), service(resource_side=side), storage=storage)
    assert refused(ctx.authorize, [SNAP_BLUE], {"resource_policy": mine}) is None
    assert side.calls == []


def test_the_resource_side_is_not_asked_for_a_root_or_without_storage(storage: Storage) -> None:
    side = Side()
    root = Principal(ACCOUNT, "AKIDROOT", ROOT, policies=(document(allow("ec2:*")),))
    assert refused(context(root, service(resource_side=side), storage=storage).authorize,
                   [SNAP_BLUE]) is None
    assert refused(context(user(allow("ec2:*")), service(resource_side=side)).authorize,
                   [SNAP_BLUE]) is None
    assert side.calls == []


# ---- account roots: spared only when no policy can take part ---------------------------------


@pytest.mark.parametrize("passed", ["identity_policies", "session_policies", "resource_policy"])
def test_any_policy_passed_brings_a_root_into_the_evaluation(passed: str) -> None:
    values: dict[str, Any] = {
        "identity_policies": (document(deny("ec2:*")),),
        "session_policies": (document(deny("ec2:*"), kind=Kind.SESSION),),
        "resource_policy": policy.key_policy(ACCOUNT, json.dumps(
            {"Statement": [deny("ec2:*") | {"Principal": "*"}]})),
    }
    assert refused(context(ROOT_PRINCIPAL).authorize) is None
    assert refused(context(ROOT_PRINCIPAL).authorize, context={passed: values[passed]}) \
        is not None


class CountingClock(FixedClock):
    def __init__(self) -> None:
        self.reads = 0

    def now(self) -> dt.datetime:
        self.reads += 1
        return super().now()


def test_only_a_root_with_nothing_that_could_refuse_it_skips_the_condition_keys() -> None:
    capped = dataclasses.replace(ROOT_PRINCIPAL, session_policies=(
        document(allow("ec2:*"), kind=Kind.SESSION),))
    for principal, context_keys, reads in (
            (ROOT_PRINCIPAL, None, 0), (user(allow("ec2:*")), None, 1), (capped, None, 1),
            (ROOT_PRINCIPAL, {"identity_policies": (document(allow("ec2:*")),)}, 1)):
        clock = CountingClock()
        ctx = RequestContext(principal, REGION, "r-1", service(), "DeleteSnapshot",
                             None, clock)  # type: ignore[arg-type]
        ctx.authorize(context=context_keys)
        assert (ctx.authorized, clock.reads) == (True, reads), principal


def test_a_roots_own_policies_bring_it_into_the_evaluation() -> None:
    with_policy = dataclasses.replace(ROOT_PRINCIPAL, policies=(document(deny("ec2:*")),))
    capped = dataclasses.replace(ROOT_PRINCIPAL, session_policies=(
        document(deny("ec2:*"), kind=Kind.SESSION),))
    empty_session = dataclasses.replace(ROOT_PRINCIPAL, session_policies=())
    assert refused(context(with_policy).authorize) is not None
    assert refused(context(capped).authorize) is not None
    # An empty session policy list allows nothing: it is not "no session policy".
    assert refused(context(empty_session).authorize) is not None


# ---- GetSessionToken's credentials (no MFA) --------------------------------------------------


@pytest.mark.parametrize("action", ["iam:ListUsers", "sts:GetSessionToken",
                                    "sts:DecodeAuthorizationMessage"])
def test_session_credentials_without_mfa_may_not_call_iam_or_sts(action: str) -> None:
    everything = user(allow("*"), temporary=True)
    svc = service(action.split(":")[0], denial=denial)
    error = refused(context(everything, svc).authorize, action=action)
    assert error is not None and error.code == "UnauthorizedOperation"
    assert error.message == (f"User: {everything.arn} is not authorized to perform: {action} "
                             "with session credentials from GetSessionToken without MFA")
    # Without a denial of its own, the service's plain AccessDenied.
    error = refused(context(everything, service(action.split(":")[0])).authorize,
                    action=action)
    assert error is not None and error.message == f"plain refusal of {action}"
    # Even as authorize_first, before the lookup.
    svc = service(action.split(":")[0], authorize_first=First.DENY)
    assert refused(context(everything, svc, asked=Asked(action, ())).authorize_first) \
        is not None


@pytest.mark.parametrize("action", ["sts:AssumeRole", "ec2:DeleteSnapshot", "kms:Decrypt",
                                    "s3:GetObject"])
def test_session_credentials_without_mfa_may_call_the_rest(action: str) -> None:
    everything = user(allow("*"), temporary=True)
    assert refused(context(everything).authorize, action=action) is None


def test_an_assumed_roles_session_and_long_term_keys_may_call_iam() -> None:
    role = Principal(ACCOUNT, "ASIAROLE", ASSUMED_ROLE, "admin", "AROAADMIN",
                     session_name="s", policies=(document(allow("*")),), temporary=True)
    for principal in (role, user(allow("*"))):
        assert refused(context(principal, service("iam")).authorize,
                       action="iam:ListUsers") is None


# ---- authorize_first: what the caller's own policies refuse before any lookup ----------------


def test_nothing_is_decided_first_for_a_service_that_says_so() -> None:
    # Not even an explicit Deny: S3 decides with its bucket policies and ACLs.
    for principal in (user(), user(deny("ec2:*"))):
        ctx = context(principal, service(authorize_first=First.NOTHING))
        ctx.authorize_first()
        assert not ctx.authorized


def test_the_resource_side_waits_for_the_lookup(storage: Storage) -> None:
    side = Side()
    for first in (First.IDENTITY, First.DENY):
        ctx = context(user(allow("ec2:*")), service(authorize_first=first, resource_side=side),
                      storage=storage, asked=Asked("ec2:DeleteSnapshot", (SNAP_BLUE,)))
        ctx.authorize_first()
    assert side.calls == []


def test_an_identity_service_refuses_first_what_no_identity_policy_allows() -> None:
    svc = service(authorize_first=First.IDENTITY, denial=denial)
    error = refused(context(user(), svc).authorize_first)
    assert error is not None and "because no identity-based policy allows" in error.message
    assert refused(context(user(allow("ec2:*")), svc).authorize_first) is None
    # An Allow on the resource's tags may still apply: not refused before the lookup...
    tagged_only = user(allow("ec2:*", {"StringEquals": {"aws:ResourceTag/team": "blue"}}))
    assert refused(context(tagged_only, svc).authorize_first) is None
    # ...and a Deny on them may still not.
    unless_red = user(allow("ec2:*"), deny("ec2:*", {"StringEquals": {
        "aws:ResourceTag/team": "red"}}))
    assert refused(context(unless_red, svc).authorize_first) is None


def test_a_deny_service_refuses_first_only_an_explicit_deny() -> None:
    svc = service("kms", authorize_first=First.DENY, denial=denial)
    # A key policy may allow a caller with no policy of its own: not refused first.
    assert refused(context(user(), svc, operation="Decrypt").authorize_first) is None
    error = refused(context(user(deny("kms:Decrypt")), svc, operation="Decrypt"
                            ).authorize_first)
    assert error is not None and "with an explicit deny" in error.message


def test_a_root_is_left_to_the_handlers_decision() -> None:
    capped = dataclasses.replace(ROOT_PRINCIPAL, policies=(document(deny("ec2:*")),))
    for first in (First.IDENTITY, First.DENY):
        ctx = context(capped, service(authorize_first=first))
        ctx.authorize_first()  # refused later, by authorize, with the resource known
        assert refused(ctx.authorize) is not None


# ---- refuse_missing: a NotFound the caller may not learn of ----------------------------------


@pytest.mark.parametrize("code", ["InvalidSnapshot.NotFound", "NotFoundException",
                                  "NoSuchEntity"])
def test_a_refused_caller_gets_the_refusal_not_the_not_found(code: str) -> None:
    svc = service(authorize_first=First.DENY, denial=denial)
    error = refused(context(user(), svc).refuse_missing, ServiceError(code, "gone", 400))
    assert error is not None and error.code == "UnauthorizedOperation"
    assert error.__suppress_context__ and error.__cause__ is None


def test_a_not_found_code_is_compared_by_value() -> None:
    # A code put together at run time (not the interned literal) is recognised the same.
    code = "".join(["NoSuch", "Entity"])
    svc = service(authorize_first=First.DENY, denial=denial)
    assert refused(context(user(), svc).refuse_missing, ServiceError(code, "gone", 400)) \
        is not None


@pytest.mark.parametrize("code", ["AccessDeniedX", "InvalidParameterValue", "NoSuchEntityX",
                                  "NoSuchBucket", "ValidationError", "NotFoundExceptions"])
def test_other_errors_are_left_as_they_are(code: str) -> None:
    svc = service(authorize_first=First.DENY, denial=denial)
    assert refused(context(user(), svc).refuse_missing, ServiceError(code, "bad", 400)) is None


def test_the_not_found_stands_where_the_caller_may_know_or_the_handler_authorized() -> None:
    missing = ServiceError("InvalidSnapshot.NotFound", "gone", 400)
    for first in (First.IDENTITY, First.DENY):
        # A caller allowed the action learns that the resource is not there.
        assert refused(context(user(allow("ec2:*")), service(authorize_first=first)
                               ).refuse_missing, missing) is None
        capped = dataclasses.replace(ROOT_PRINCIPAL, policies=(document(deny("ec2:*")),))
        assert refused(context(capped, service(authorize_first=first)).refuse_missing,
                       missing) is None
    # A service that decides nothing first: its handler's own refusal stands.
    assert refused(context(user(), service()).refuse_missing, missing) is None
    # Once the handler authorized, its NotFound is the answer (here the handler passed the
    # policy that allowed it; judged without it, the caller would be refused).
    ctx = context(user(), service(authorize_first=First.DENY))
    ctx.authorize(context={"identity_policies": (document(allow("ec2:*")),)})
    assert refused(ctx.refuse_missing, missing) is None
    ctx = context(user(), service(authorize_first=First.DENY))
    ctx.no_permission_needed()
    assert refused(ctx.refuse_missing, missing) is None


def test_a_missing_resource_is_judged_with_its_keys_missing(tagged: Storage) -> None:
    # Allowed on blue-tagged snapshots only: the missing one has no tags, so it is refused,
    # and its tags are not looked up (the resource side is not asked either).
    side = Side()
    blue_only = user(allow("ec2:*", {"StringEquals": {"aws:ResourceTag/team": "blue"}}))
    svc = service(authorize_first=First.IDENTITY, resource_side=side)
    ctx = context(blue_only, svc, storage=tagged, asked=Asked("ec2:DeleteSnapshot",
                                                              (SNAP_BLUE,)))
    assert refused(ctx.refuse_missing, ServiceError("InvalidSnapshot.NotFound", "", 400)) \
        is not None
    assert side.calls == []


# ---- the refusal's message -------------------------------------------------------------------


def test_the_refusal_names_the_caller_the_action_the_resource_and_the_reason() -> None:
    svc = service(denial=denial)
    error = refused(context(user(), svc).authorize, [SNAP_BLUE])
    assert error is not None
    assert error.message == (f"User: arn:aws:iam::{ACCOUNT}:user/ann is not authorized to "
                             f"perform: ec2:DeleteSnapshot on resource: {SNAP_BLUE} because no "
                             "identity-based policy allows the ec2:DeleteSnapshot action")


def decode(storage: Storage, encoded: str, account: str) -> dict[str, Any]:
    sealed = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
    return json.loads(storage.box.open(sealed, message_binding(account)))


def test_an_encoded_message_opens_only_in_the_callers_account(storage: Storage) -> None:
    svc = service(denial=denial, encodes_denials=True)
    error = refused(context(user(), svc, storage=storage).authorize, [SNAP_BLUE])
    assert error is not None
    head, _, encoded = error.message.partition(". Encoded authorization failure message: ")
    assert head == (f"You are not authorized to perform this operation. User: "
                    f"arn:aws:iam::{ACCOUNT}:user/ann is not authorized to perform: "
                    f"ec2:DeleteSnapshot on resource: {SNAP_BLUE} because no identity-based "
                    "policy allows the ec2:DeleteSnapshot action")
    assert "=" not in encoded
    message = decode(storage, encoded, ACCOUNT)
    assert message["allowed"] is False
    assert message["context"]["action"] == "ec2:DeleteSnapshot"
    assert message["context"]["resource"] == SNAP_BLUE
    keys = [c["key"] for c in message["context"]["conditions"]["items"]]
    assert "aws:CurrentTime" in keys
    with pytest.raises(Exception):  # noqa: B017 - any failure to open will do
        decode(storage, encoded, OTHER_ACCOUNT)
    assert message_binding(ACCOUNT) == b"authorization-message:111111111111"


def test_a_denial_without_encoding_carries_no_encoded_message(storage: Storage) -> None:
    error = refused(context(user(), service(denial=denial), storage=storage).authorize)
    assert error is not None and "Encoded" not in error.message

