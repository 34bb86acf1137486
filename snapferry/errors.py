"""The one error type a client can cause.

It lives at the top of the package, not in wire/, because the domain raises it too: AWS's
error codes are part of the rules (InvalidSnapshot.NotFound is as much a rule as the state
machine). Each protocol in wire/ decides only how to put it on the wire.
"""

from __future__ import annotations


class ServiceError(Exception):
    """An AWS error: its code, a message that says what to fix, and an HTTP status.

    Status is 4xx for everything a caller can cause. 5xx is reserved for our own faults,
    because every SDK retries 5xx.
    """

    def __init__(self, code: str, message: str, status: int = 400, **fields: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status
        # Extra members of a modelled error shape, e.g. EBS's Reason.
        self.fields = fields


class InvalidInput(Exception):
    """A request whose parameters do not fit the operation's input shape.

    Raised by the protocol parsers, which know the shape but not the service's error
    vocabulary; each protocol turns it into its own code (MissingParameter,
    ValidationException, ...).
    """

    MISSING = "missing"
    INVALID = "invalid"
    UNKNOWN = "unknown"

    def __init__(self, kind: str, message: str, shape: str | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        # The model shape whose limits the value broke, so a service can answer with its
        # own code where AWS has one (InvalidAMIName.Malformed for ImageNameRequest).
        self.shape = shape


def internal_error() -> ServiceError:
    return ServiceError(
        "InternalError",
        "We encountered an internal error. Please try again.",
        status=500,
    )


def engine_unavailable() -> ServiceError:
    """The database or block store is briefly out of reach (a restart, a fail-over): 503,
    which every SDK retries with back-off; nothing was changed (the transaction rolled back)."""
    return ServiceError(
        "ServiceUnavailable",
        "The service is unavailable: its storage is restarting. Please try again.",
        status=503,
    )
