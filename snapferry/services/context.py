"""What a handler is given: who calls, where, and the one way to authorize."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from sqlalchemy.engine import Engine

from snapferry.config import Settings
from snapferry.domain import policy
from snapferry.domain.accounts import ASSUMED_ROLE, Principal
from snapferry.domain.actions import Asked, resource_key
from snapferry.domain.authorization_messages import describe
from snapferry.domain.clock import Clock
from snapferry.errors import ServiceError
from snapferry.storage.datadir import Storage
from snapferry.wire.chunked import ChunkSigner
from snapferry.wire.http import IncomingRequest

if TYPE_CHECKING:
    from snapferry.services.keyring import KeyRing

Output = dict[str, Any]
Handler = Callable[["RequestContext", dict[str, Any]], Output | None]


# Context keys of RequestContext.authorize that bring policies into a decision (see
# policy.decide): with any of them, even an account root is evaluated in full.
_POLICIES_PASSED = ("resource_policy", "identity_policies", "session_policies")


class First(Enum):
    """What the caller's own policies may decide before a handler looks anything up (AWS
    evaluates IAM before it looks a resource up)."""

    NOTHING = "nothing"  # the service authorizes on its own terms (S3: bucket policies, ACLs)
    IDENTITY = "identity"  # its resources carry no policy that could allow the caller alone
    DENY = "deny"  # a resource's policy may allow by name (KMS key policies): only a Deny


class Refusal(NamedTuple):
    """A refused decision, with what the refusal message is made of."""

    action: str
    decision: policy.Decision
    facts: Mapping[str, Any]


def _not_found(error: ServiceError) -> bool:
    """Whether an error says the resource acted on is not there (or not the caller's)."""
    return (error.code.endswith(("NotFound", "NotFoundException"))
            or error.code == "NoSuchEntity")


@dataclass(frozen=True)
class Service:
    """One AWS service as we serve it: its botocore model, IAM prefix and handlers."""

    name: str  # botocore model name, also the SigV4 signing name
    iam_prefix: str
    handlers: Mapping[str, Handler]
    access_denied: Callable[[str], ServiceError]
    dry_run_error: ServiceError | None = None
    # Model shape name -> the error AWS gives when a value breaks that shape's limits.
    input_errors: Mapping[str, ServiceError] = field(default_factory=dict)
    # The refusal with AWS's message ("User: ARN is not authorized to perform: ..."), given
    # the action and that message; None: access_denied(action) as it is.
    denial: Callable[[str, str], ServiceError] | None = None
    # Whether the refusal carries an encoded authorization message (EC2's does).
    encodes_denials: bool = False
    authorize_first: First = First.NOTHING
    # The ARNs a request names, completed from what is stored (an IAM user's path); run
    # before any decision, so every phase judges the same names.
    complete_arns: Callable[[Engine, Sequence[str]], Sequence[str]] | None = None
    # The resource side of a decision a handler does not pass itself: (engine, resource ARN,
    # caller's account) -> another account's permission list as a ResourcePolicy, or None.
    resource_side: Callable[[Engine, str, str], policy.ResourcePolicy | None] | None = None


@dataclass
class RequestContext:
    principal: Principal
    region: str
    request_id: str
    service: Service
    operation: str
    storage: Storage
    clock: Clock
    dry_run: bool = False
    keyring: KeyRing | None = None
    request: IncomingRequest | None = None
    # Tell the background thread, or the copy workers, there is work.
    wake_background: Callable[[], None] = lambda: None
    wake_copiers: Callable[[], None] = lambda: None
    settings: Settings = field(default_factory=lambda: Settings(data_dir=Path(".")))
    # S3's signed aws-chunked bodies: where the chain of chunk signatures starts.
    chunk_signer: ChunkSigner | None = None
    # What the operation asks IAM, from the table in domain/actions.py (set by the pipeline).
    asked: Asked | None = None
    authorized: bool = field(default=False, init=False)

    @property
    def account_id(self) -> str:
        return self.principal.account_id

    def sha256(self, data: bytes) -> bytes:
        """SHA-256 of `data`, reusing the request's own when `data` is its body."""
        if self.request is not None and self.request.body is data:
            return self.request.body_sha256
        return hashlib.sha256(data).digest()

    def authorize(
        self,
        resources: Sequence[str] = (),
        context: Mapping[str, Any] | None = None,
        action: str | None = None,
    ) -> None:
        """Allow or refuse the operation; every handler calls this once it has found what it
        acts on and before it changes anything. The action, resources and condition keys come
        from the operation's row in domain/actions.py; a handler passes what only it knows (a
        KMS key's ARN and policy). With DryRun set, an allowed request stops here."""
        refusal = self._decision(resources, context, action)
        if refusal is not None:
            raise self._refusal(*refusal)
        self.authorized = True
        if self.dry_run and self.service.dry_run_error is not None:
            raise self.service.dry_run_error

    def authorize_first(self) -> None:
        """The dispatcher's call before the handler's: refuse now what the caller's own
        policies refuse whatever the resource turns out to be, so that a refused caller
        learns nothing of what exists. The resource's tags and attributes are not known yet:
        an Allow that tests them may still apply, a Deny that tests them may not."""
        first = self.service.authorize_first
        if first is First.NOTHING or self.principal.is_root:
            return
        refusal = self._decision((), None, None, unknown=resource_key)
        if refusal is not None and (first is First.IDENTITY
                                    or refusal.decision.effect is policy.Effect.EXPLICIT_DENY):
            raise self._refusal(*refusal)

    def refuse_missing(self, error: ServiceError) -> None:
        """The dispatcher's call when the handler failed before it authorized: if what it
        did not find is refused to the caller anyway (judged with the resource's keys
        missing, as AWS judges them), the refusal is the answer, not the NotFound."""
        if (self.authorized or self.service.authorize_first is First.NOTHING
                or self.principal.is_root or not _not_found(error)):
            return
        refusal = self._decision((), None, None, look_up=False)
        if refusal is not None:
            raise self._refusal(*refusal) from None

    def _decision(self, resources: Sequence[str], context: Mapping[str, Any] | None,
                  action: str | None, unknown: Callable[[str], bool] | None = None,
                  look_up: bool = True) -> Refusal | None:
        """The first refusal among `resources`, or None. `unknown`: the condition keys not
        known yet (before the lookup); `look_up`: read the resources' tags and resource side
        (False: the resource is not there, its keys are missing). Session credentials
        without MFA are refused here, in any phase."""
        asked = self.asked
        action = action or (asked.action if asked else f"{self.service.iam_prefix}:"
                                                       f"{self.operation}")
        if not resources and asked is not None:
            resources = asked.resources
        context = dict(context or {})
        if self._without_mfa(action):
            raise self.service.access_denied(action) if self.service.denial is None else \
                self.service.denial(action, f"User: {self.principal.arn} is not authorized to "
                                    f"perform: {action} with session credentials from "
                                    "GetSessionToken without MFA")
        if self._unrefusable(context):
            return None
        conditions = {**(asked.conditions if asked else {}),
                      "aws:CurrentTime": self.clock.now(), "aws:SecureTransport": False,
                      **(context.get("conditions") or {})}
        if self.request is not None and self.request.client_ip:
            conditions.setdefault("aws:SourceIp", self.request.client_ip)
        tags = self._resource_tags(resources) if look_up and unknown is None else {}
        for resource in resources or ("*",):
            facts = {**conditions}
            for key, value in tags.get(resource, {}).items():
                facts[f"aws:ResourceTag/{key}"] = value
                facts[f"{self.service.iam_prefix}:ResourceTag/{key}"] = value
            decide = {**context, "conditions": facts, "unknown": unknown}
            if look_up and unknown is None and "resource_policy" not in context:
                decide["resource_policy"] = self._resource_side(resource)
            decision = policy.decide(self.principal, action, [resource], decide)
            if not decision.allowed:
                return Refusal(action, decision, facts)
        return None

    def _unrefusable(self, context: Mapping[str, Any]) -> bool:
        """Whether no policy can take part in this decision, so that policy.evaluate allows
        it whatever the condition keys say and they need not be built: an account root (its
        own account's resources need no Allow) with no identity or session policy of its
        own, asked about a resource whose side is not passed (a root is spared
        _resource_side and _resource_tags). Anything that could refuse it (a KMS key policy,
        a role's trust policy, a session's policies, an IAM user's or role's policies) takes
        the full path."""
        principal = self.principal
        return (principal.is_root and not principal.policies
                and principal.session_policies is None
                and not any(key in context for key in _POLICIES_PASSED))

    def _without_mfa(self, action: str) -> bool:
        """GetSessionToken's credentials (there is no MFA here) may not call IAM, nor STS
        but AssumeRole and GetCallerIdentity, as AWS has it."""
        if not self.principal.temporary or self.principal.kind == ASSUMED_ROLE:
            return False
        service = action.split(":", 1)[0]
        return service == "iam" or (service == "sts" and action != "sts:AssumeRole")

    def no_permission_needed(self) -> None:
        """For the few operations nobody needs a permission for (sts:GetCallerIdentity)."""
        self.authorized = True

    def _resource_side(self, resource: str) -> policy.ResourcePolicy | None:
        """Another account's permission list for `resource` (Service.resource_side). An
        account root is spared the lookup: what it may reach of another account's, the
        handler's visibility check has already decided by the same list."""
        side = self.service.resource_side
        if side is None or self.principal.is_root or self.storage is None:
            return None
        return side(self.storage.engine, resource, self.account_id)

    def _resource_tags(self, resources: Sequence[str]) -> dict[str, dict[str, str]]:
        """aws:ResourceTag/* of the resources, for callers whose policies may ask (an
        account root's power does not depend on them, so it is spared the lookup)."""
        if self.principal.is_root or self.storage is None:
            return {}
        from snapferry.storage.tagstore import tags_of

        ids = {arn: arn.rsplit("/", 1)[-1] for arn in resources if "/" in arn}
        with self.storage.engine.connect() as conn:
            found = tags_of(conn, [i for i in ids.values() if "*" not in i])
        return {arn: found.get(resource_id, {}) for arn, resource_id in ids.items()}

    def _refusal(self, action: str, decision: policy.Decision,
                 facts: Mapping[str, Any]) -> ServiceError:
        if self.service.denial is None:
            return self.service.access_denied(action)
        message = (f"User: {self.principal.arn} is not authorized to perform: {action} on "
                   f"resource: {decision.resource} {decision.reason}")
        if self.service.encodes_denials:
            encoded = self.encode_message(describe(self.principal, decision, facts))
            message = (f"You are not authorized to perform this operation. {message}. "
                       f"Encoded authorization failure message: {encoded}")
        return self.service.denial(action, message)

    def encode_message(self, message: Mapping[str, Any]) -> str:
        """Sealed under the server's master key, bound to the caller's account: only
        DecodeAuthorizationMessage in that account opens it."""
        sealed = self.storage.box.seal(json.dumps(message).encode(),
                                       message_binding(self.account_id))
        return base64.urlsafe_b64encode(sealed).decode().rstrip("=")


def message_binding(account_id: str) -> bytes:
    return f"authorization-message:{account_id}".encode()
