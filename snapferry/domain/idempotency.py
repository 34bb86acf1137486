"""ClientToken idempotency: a token names one request; reusing it for another is refused."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from snapferry.errors import ServiceError

# Parameters that do not change what a request asks for.
_NOT_THE_REQUEST = frozenset({"ClientToken", "DryRun"})


def request_digest(params: dict[str, Any]) -> str:
    """A fingerprint of what the request asks for, to compare with a token's first use."""
    relevant = {k: v for k, v in params.items() if k not in _NOT_THE_REQUEST}
    return hashlib.sha256(json.dumps(relevant, sort_keys=True, default=str).encode()).hexdigest()


def check_same_request(first_digest: str | None, digest: str, operation: str) -> None:
    """EC2's answer to a ClientToken reused for a different request."""
    if first_digest != digest:
        raise ServiceError("IdempotentParameterMismatch", "The client token was already used "
                                                          f"for a different {operation} request.")
