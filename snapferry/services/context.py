"""What a handler is given: who calls, where, and the one way to authorize."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from snapferry.config import Settings
from snapferry.domain import policy
from snapferry.domain.accounts import Principal
from snapferry.domain.clock import Clock
from snapferry.errors import ServiceError
from snapferry.storage.datadir import Storage
from snapferry.wire.chunked import ChunkSigner
from snapferry.wire.http import IncomingRequest

if TYPE_CHECKING:
    from snapferry.services.keyring import KeyRing

Output = dict[str, Any]
Handler = Callable[["RequestContext", dict[str, Any]], Output | None]


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
        """Allow or refuse the operation; every handler calls this after validating its input
        and before it changes anything. With DryRun set, an allowed request stops here."""
        action = action or f"{self.service.iam_prefix}:{self.operation}"
        if not policy.authorize(self.principal, action, resources, context):
            raise self.service.access_denied(action)
        self.authorized = True
        if self.dry_run and self.service.dry_run_error is not None:
            raise self.service.dry_run_error
