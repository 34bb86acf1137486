"""Authorization: one evaluator for identity, resource and session policies and grants.

AWS's evaluation logic (reference_policies_evaluation-logic.html, KMS's "Determining access"):
1. An explicit Deny that matches, in any policy, decides: denied.
2. Otherwise the request is allowed when
   - same account, ordinary resource: an identity policy allows (an account root needs none:
     it may do anything in its own account), or the resource policy allows the caller by name;
   - same account, KMS key (`required`): the key policy allows the caller by name, or names
     the account (its root), which delegates to IAM, and an identity policy also allows;
   - another account's resource: the caller's identity policy allows and the resource side
     (its policy, a permission list such as createVolumePermission) allows the caller or the
     caller's account;
   - or a grant names the caller (a grant needs no identity policy).
   Session policies (AssumeRole's Policy) cap what the identity policies and the resource
   policies that name the role give; a resource policy that names the session itself is not
   capped.
3. Otherwise: implicitly denied.
A statement matches when its Action/NotAction, Resource/NotResource, Principal/NotPrincipal
and every condition do. The Decision says which statements decided, for the error messages
and the encoded authorization message built from it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from functools import lru_cache
from typing import Any

from snapferry.domain import conditions, wildcards
from snapferry.domain.accounts import Principal
from snapferry.domain.arns import account_named, is_root_arn, role_of_session, root_arn
from snapferry.domain.conditions import Facts
from snapferry.domain.policy_documents import (
    Kind,
    PolicyDocument,
    Principals,
    Statement,
    parse_document,
)

POLICY_VERSION = "2012-10-17"
KMS_MALFORMED = "MalformedPolicyDocumentException"


# ---- who asks, and what ---------------------------------------------------------------------

@dataclass(frozen=True)
class Caller:
    """The principal a request acts as, as policies name it."""

    account_id: str
    arn: str  # account root, IAM user, or assumed-role session ARN
    role_arn: str | None = None  # the role a session acts for (with its path, if known)
    service: str | None = None  # e.g. "ec2.amazonaws.com" when an AWS service acts

    @property
    def is_root(self) -> bool:
        return is_root_arn(self.arn)

    @property
    def role(self) -> str | None:
        return self.role_arn or role_of_session(self.arn)

    @classmethod
    def of(cls, principal: Principal) -> Caller:
        return cls(principal.account_id, principal.arn, role_arn=principal.role_arn)


@dataclass(frozen=True)
class Request:
    caller: Caller
    action: str  # e.g. "ec2:CopySnapshot"
    resource: str = "*"  # one ARN; "*" for actions without resource-level permissions
    context: Mapping[str, Any] = field(default_factory=dict)  # condition key -> value(s)
    # KMS grants constrain the encryption context itself (exact pairs, case-sensitive keys).
    encryption_context: Mapping[str, str] | None = None
    # Condition keys whose values are not known yet (the resource's, before it is looked up):
    # Allow statements testing them may apply, Deny statements testing them do not.
    unknown: Callable[[str], bool] | None = None


def caller_context(caller: Caller, username: str | None = None, user_id: str | None = None,
                   tags: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The global condition keys that describe the caller (aws:Principal*, aws:username,
    aws:userid); a service adds its own (aws:RequestedRegion, ec2:*, kms:*)."""
    context: dict[str, Any] = {
        "aws:PrincipalAccount": caller.account_id,
        # A session is known by its role's ARN here, as AWS does for aws:PrincipalArn.
        "aws:PrincipalArn": caller.role or caller.arn,
        "aws:userid": user_id or (caller.account_id if caller.is_root else None),
        "aws:username": username,
    }
    for key, value in (tags or {}).items():
        context[f"aws:PrincipalTag/{key}"] = value
    return context


def kms_context(caller: Caller, encryption_context: Mapping[str, str] | None = None,
                via_service: str | None = None) -> dict[str, Any]:
    """KMS's condition keys for one request."""
    context: dict[str, Any] = {"kms:CallerAccount": caller.account_id,
                               "kms:ViaService": via_service}
    for key, value in (encryption_context or {}).items():
        context[f"kms:EncryptionContext:{key}"] = value
    if encryption_context:
        context["kms:EncryptionContextKeys"] = list(encryption_context)
    return context


# ---- what the resource says -----------------------------------------------------------------

@dataclass(frozen=True)
class Grant:
    grantee: str  # a principal ARN or account id
    operations: frozenset[str]  # e.g. {"Decrypt", "CreateGrant"}
    context_equals: Mapping[str, str] | None = None
    context_subset: Mapping[str, str] | None = None
    grant_id: str = ""

    def allows(self, principal: Principal, action: str, encryption_context: Mapping[str, str]
               ) -> bool:
        return self.match(Caller.of(principal), action, encryption_context) is not None

    def match(self, caller: Caller, action: str, encryption_context: Mapping[str, str] | None
              ) -> _Match | None:
        service, _, operation = action.partition(":")
        if service.lower() != "kms" or operation not in self.operations:
            return None
        context = dict(encryption_context or {})
        if self.context_equals is not None and context != dict(self.context_equals):
            return None
        if self.context_subset is not None and any(
                context.get(k) != v for k, v in self.context_subset.items()):
            return None
        return _match_entry(self.grantee, caller)


@dataclass(frozen=True)
class ResourcePolicy:
    """What a resource says about who may use it; `owner` is the resource's account (passed,
    not read from an ARN: snapshot and image ARNs carry none)."""

    owner: str
    statements: tuple[Statement, ...] = ()
    grants: tuple[Grant, ...] = ()
    name: str = "resource-policy"
    # KMS: only the key policy gives access; identity policies count only when the key
    # policy names the account (root), and an account root needs the key policy too.
    required: bool = False


def key_policy(owner: str, text: str, grants: Iterable[Grant] = ()) -> ResourcePolicy:
    """A KMS key's policy (its name is always 'default') and grants."""
    return ResourcePolicy(owner, parse_policy(text), tuple(grants), "default", required=True)


def permission_list(owner: str, actions: Sequence[str], account_ids: Iterable[str] = (),
                    everyone: bool = False, name: str = "createVolumePermission"
                    ) -> ResourcePolicy:
    """A snapshot's createVolumePermission or an image's launchPermission as resource-side
    allows: the listed accounts (or everyone, for group `all`) may perform `actions`; another
    account's users still need their own identity policy, as for any resource policy."""
    accounts = sorted(set(account_ids))
    if not everyone and not accounts:
        return ResourcePolicy(owner, (), name=name)
    principal: Any = "*" if everyone else {"AWS": [root_arn(a) for a in accounts]}
    document = parse_document({"Version": POLICY_VERSION, "Statement": [{
        "Sid": name, "Effect": "Allow", "Principal": principal, "Action": list(actions),
        "Resource": "*"}]}, Kind.RESOURCE, name)
    return ResourcePolicy(owner, document.statements, name=name)


@lru_cache(maxsize=1024)
def parse_policy(text: str) -> tuple[Statement, ...]:
    """The statements of a KMS key policy; MalformedPolicyDocumentException if it is not one
    we can evaluate. Cached by text: every use of a key evaluates its policy."""
    return parse_document(text, Kind.RESOURCE, "default", code=KMS_MALFORMED).statements


# ---- the decision ---------------------------------------------------------------------------

class Effect(Enum):
    ALLOW = "allow"
    EXPLICIT_DENY = "explicitDeny"
    IMPLICIT_DENY = "implicitDeny"


class Source(Enum):
    """Where a statement sits; the values are AWS's words in its denial messages."""

    IDENTITY = "identity-based policy"
    RESOURCE = "resource-based policy"
    SESSION = "session policy"
    GRANT = "grant"


@dataclass(frozen=True)
class MatchedStatement:
    source: Source
    policy: str  # the policy's name (a grant's id)
    index: int  # 0-based position in the policy
    sid: str | None
    effect: str  # "Allow" | "Deny"


@dataclass(frozen=True)
class Decision:
    effect: Effect
    action: str
    resource: str
    matched: tuple[MatchedStatement, ...] = ()
    missing: Source | None = None  # for an implicit deny: which kind of policy did not allow
    # For an implicit deny: the Allow statements that did match, on the side that was not
    # missing (a cross-account request's resource side when its identity side is).
    partial: tuple[MatchedStatement, ...] = ()

    @property
    def allowed(self) -> bool:
        return self.effect is Effect.ALLOW

    @property
    def reason(self) -> str:
        """AWS's closing words of an AccessDenied message ("... because no identity-based
        policy allows the ec2:CopySnapshot action")."""
        if self.effect is Effect.EXPLICIT_DENY:
            where = self.matched[0].source.value
            return f"with an explicit deny in {'an' if where[0] in 'aeiou' else 'a'} {where}"
        if self.effect is Effect.IMPLICIT_DENY:
            missing = (self.missing or Source.IDENTITY).value
            return f"because no {missing} allows the {self.action} action"
        return "allowed"


class _Match(Enum):
    """How a Principal entry names the caller."""

    SESSION = "session"  # the assumed-role session itself: not capped by session policies
    NAMED = "named"  # the caller (user, role, root of its own account, service, `*`)
    ACCOUNT = "account"  # the caller's account as a whole: delegates to its identity policies


def _match_entry(entry: str, caller: Caller) -> _Match | None:
    if entry == "*":
        return _Match.NAMED
    if entry == caller.arn:
        return _Match.SESSION if caller.role else _Match.NAMED
    if caller.role and entry == caller.role:
        return _Match.NAMED
    if account_named(entry) == caller.account_id:
        return _Match.NAMED if caller.is_root else _Match.ACCOUNT
    return None


def _principal_match(principals: Principals, caller: Caller) -> _Match | None:
    if principals.everyone or (caller.service and caller.service in principals.service):
        return _Match.NAMED
    found = [m for m in (_match_entry(e, caller) for e in principals.aws) if m is not None]
    for kind in (_Match.SESSION, _Match.NAMED, _Match.ACCOUNT):
        if kind in found:
            return kind
    return None


def _excluded(principals: Principals, caller: Caller) -> bool:
    """NotPrincipal: the caller is left out only when it is named itself and (unless it is a
    root or a service) its account is named too, as AWS requires for users and sessions."""
    match = _principal_match(principals, caller)
    if match is None or match is _Match.ACCOUNT:
        return False
    if caller.is_root or caller.service or principals.everyone:
        return True
    return any(account_named(e) == caller.account_id for e in principals.aws)


def _applies(statement: Statement, request: Request, facts: Facts) -> bool:
    """Action, Resource and Condition (not Principal) match the request."""
    action_hit = any(wildcards.matches(p, request.action, ignore_case=True)
                     for p in statement.actions)
    if action_hit == statement.not_actions:
        return False
    if statement.resources is not None:
        lookup = facts.lookup if statement.variables else None
        patterns = [wildcards.compile_pattern(p, lookup) for p in statement.resources]
        if any(p is None for p in patterns):
            return False  # a policy variable the request lacks: the statement does not match
        hit = any(p is not None and p.fullmatch(request.resource) for p in patterns)
        if hit == statement.not_resources:
            return False
    return conditions.holds(statement.condition, facts, statement.variables,
                            unknown_holds=statement.effect == "Allow")


def _principal(statement: Statement, caller: Caller) -> _Match | None:
    if statement.principals is None:
        return _Match.NAMED
    if statement.not_principals:
        return None if _excluded(statement.principals, caller) else _Match.NAMED
    return _principal_match(statement.principals, caller)


def _seen(source: Source, policy: str, statement: Statement) -> MatchedStatement:
    return MatchedStatement(source, policy, statement.index, statement.sid, statement.effect)


def evaluate(request: Request, identity: Sequence[PolicyDocument] = (),
             resource: ResourcePolicy | None = None,
             session: Sequence[PolicyDocument] | None = None) -> Decision:
    """The decision for one request. `identity`: the caller's identity policies (a user's
    own, its groups' and attached ones; a role's); `session`: the session policies when the
    caller is a session created with some (None: no session policy, nothing is capped);
    `resource`: what the resource says (None: a resource of the caller's own account with no
    policy of its own)."""
    facts = Facts(request.context, request.unknown)
    caller = request.caller
    denies: list[MatchedStatement] = []
    allows: dict[Source, list[MatchedStatement]] = {s: [] for s in Source}
    resource_allows: list[tuple[MatchedStatement, _Match]] = []

    def scan(source: Source, name: str, statements: Iterable[Statement]) -> None:
        for statement in statements:
            match = _principal(statement, caller)
            if match is None or not _applies(statement, request, facts):
                continue
            seen = _seen(source, name, statement)
            if statement.effect == "Deny":
                denies.append(seen)
            elif source is Source.RESOURCE:
                resource_allows.append((seen, match))
            else:
                allows[source].append(seen)

    for document in identity:
        scan(Source.IDENTITY, document.name, document.statements)
    for document in session or ():
        scan(Source.SESSION, document.name, document.statements)
    if resource is not None:
        scan(Source.RESOURCE, resource.name, resource.statements)
    if denies:
        return Decision(Effect.EXPLICIT_DENY, request.action, request.resource, tuple(denies))

    def allow(*matched: MatchedStatement) -> Decision:
        return Decision(Effect.ALLOW, request.action, request.resource, tuple(matched))

    session_ok = session is None or bool(allows[Source.SESSION])
    capped = allows[Source.SESSION] if session is not None else []
    # An account root's identity may do anything (it has no identity policies to consult).
    identity_ok = (caller.is_root or bool(allows[Source.IDENTITY])) and session_ok
    named = [s for s, m in resource_allows
             if m is _Match.SESSION or (m is _Match.NAMED and session_ok)]
    by_account = [s for s, m in resource_allows if m is _Match.ACCOUNT]
    grants = []
    for grant in resource.grants if resource is not None else ():
        match = grant.match(caller, request.action, request.encryption_context)
        if match is not None and (match is not _Match.ACCOUNT or identity_ok):
            grants.append(MatchedStatement(Source.GRANT, grant.grant_id or grant.grantee, 0,
                                           None, "Allow"))
    owner = resource.owner if resource is not None else caller.account_id
    same_account = owner == caller.account_id
    required = resource is not None and resource.required
    from_identity = [*allows[Source.IDENTITY], *capped]

    if same_account and not required:
        if identity_ok:
            return allow(*from_identity)
        if named:
            return allow(*named)
    elif same_account:
        if named:
            return allow(*named)
        if by_account and identity_ok:
            return allow(*by_account, *from_identity)
    elif (named or by_account) and identity_ok:
        return allow(*named, *by_account, *from_identity)
    if grants:
        return allow(*grants)

    if allows[Source.IDENTITY] or caller.is_root:
        missing = Source.SESSION if not session_ok else Source.RESOURCE
    else:
        missing = Source.IDENTITY
    if required and not (named or by_account) and missing is not Source.SESSION:
        missing = Source.RESOURCE
    partial = (*from_identity, *(seen for seen, _ in resource_allows))
    return Decision(Effect.IMPLICIT_DENY, request.action, request.resource, missing=missing,
                    partial=tuple(partial))


# ---- the interface handlers use today ------------------------------------------------------

def principal_context(principal: Principal) -> dict[str, Any]:
    """The caller's global condition keys, from what its credentials say about it."""
    return caller_context(Caller.of(principal), principal.username, principal.user_id,
                          dict(principal.tags))


def policy_allows(policy: ResourcePolicy, principal: Principal, action: str,
                  encryption_context: Mapping[str, str] | None = None,
                  resource: str = "*", via_service: str | None = None) -> bool:
    """Whether a KMS key's policy and grants, with the principal's own identity and session
    policies, let `principal` perform `action`. `via_service`: kms:ViaService, when EC2 or
    EBS uses the key on the caller's behalf."""
    caller = Caller.of(principal)
    context = {**principal_context(principal),
               **kms_context(caller, encryption_context, via_service)}
    request = Request(caller, action, resource, context, encryption_context or {})
    return evaluate(request, identity=principal.policies, resource=policy,
                    session=principal.session_policies).allowed


def decide(principal: Principal, action: str, resources: Sequence[str] = (),
           context: Mapping[str, Any] | None = None) -> Decision:
    """The decision for `action` on every one of `resources` (the first refusal, else the
    last allow). The principal's own identity and session policies count unless context
    names others. context may carry:
      resource_policy    a ResourcePolicy (a KMS key's, a snapshot's permission list)
      encryption_context KMS's, for grant constraints and kms:EncryptionContext:* keys
      identity_policies  the caller's PolicyDocuments (default: the principal's)
      session_policies   the session's PolicyDocuments (default: the principal's)
      conditions         condition keys -> values (aws:RequestedRegion, ec2:Encrypted, ...)
      via_service        kms:ViaService
      unknown            which condition keys are not known yet (see Request.unknown)
    """
    context = context or {}
    caller = Caller.of(principal)
    encryption_context = context.get("encryption_context")
    facts = {**principal_context(principal),
             **kms_context(caller, encryption_context, context.get("via_service")),
             **(context.get("conditions") or {})}
    identity = context.get("identity_policies", principal.policies)
    session = context.get("session_policies", principal.session_policies)
    decision = Decision(Effect.IMPLICIT_DENY, action, "*", missing=Source.IDENTITY)
    for resource in resources or ("*",):
        decision = evaluate(Request(caller, action, resource, facts, encryption_context,
                                    context.get("unknown")),
                            identity=identity, resource=context.get("resource_policy"),
                            session=session)
        if not decision.allowed:
            return decision
    return decision


def authorize(principal: Principal, action: str, resources: Sequence[str] = (),
              context: Mapping[str, Any] | None = None) -> bool:
    """Whether `principal` may perform `action` (e.g. 'ec2:CopySnapshot') on `resources`;
    see decide() for what `context` may carry."""
    return decide(principal, action, resources, context).allowed
