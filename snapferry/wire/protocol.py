"""What every protocol provides: find the operation, parse its input, write its output or error."""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from typing import Any

from botocore.model import OperationModel, ServiceModel

from snapferry.errors import InvalidInput, ServiceError
from snapferry.wire.http import HttpResponse, IncomingRequest


class AuthProblem(enum.Enum):
    """Why a request's identity could not be established; each protocol names these its way."""

    MISSING = "missing"  # no signature at all
    MALFORMED = "malformed"  # a signature we cannot read
    UNKNOWN_KEY = "unknown-key"
    BAD_SIGNATURE = "bad-signature"
    EXPIRED = "expired"  # clock skew over 15 minutes, or a presigned URL past its expiry
    INVALID_TOKEN = "invalid-token"  # a session token that is not the key's, or an inactive key
    EXPIRED_TOKEN = "expired-token"  # temporary credentials past their expiration


class Protocol(ABC):
    # Every subclass maps each AuthProblem to (code, HTTP status).
    AUTH_ERRORS: dict[AuthProblem, tuple[str, int]]

    def __init__(self, model: ServiceModel) -> None:
        self.model = model
        self._operations = frozenset(model.operation_names)

    @abstractmethod
    def operation_name(self, request: IncomingRequest) -> str:
        """The operation the request names; raises the protocol's unknown-operation error."""

    @abstractmethod
    def parse(self, operation: OperationModel, request: IncomingRequest) -> dict[str, Any]:
        """The operation's input parameters, as botocore's client would have been given them."""

    @abstractmethod
    def serialize(
        self, operation: OperationModel, output: dict[str, Any], request_id: str
    ) -> HttpResponse:
        """The success response that botocore's parser reads back as `output`."""

    @abstractmethod
    def serialize_error(self, error: ServiceError, request_id: str) -> HttpResponse:
        """The protocol's error envelope."""

    @abstractmethod
    def input_error(self, problem: InvalidInput) -> ServiceError:
        """The protocol's own code for a request that does not fit the input shape."""

    @abstractmethod
    def unknown_operation(self, name: str) -> ServiceError:
        """The error for an operation this service does not have (or we do not serve)."""

    def auth_error(self, problem: AuthProblem, message: str) -> ServiceError:
        code, status = self.AUTH_ERRORS[problem]
        return ServiceError(code, message, status=status)

    def knows(self, name: str) -> bool:
        """Whether the service's model has this operation (served or not)."""
        return name in self._operations

    def operation_model(self, name: str) -> OperationModel:
        if name not in self._operations:
            raise self.unknown_operation(name)
        return self.model.operation_model(name)
