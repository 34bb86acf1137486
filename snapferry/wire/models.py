"""botocore's service models: the one source of operation, shape and endpoint knowledge."""

from __future__ import annotations

from functools import cache

import botocore.session
from botocore.model import ServiceModel


@cache
def _session() -> botocore.session.Session:
    return botocore.session.Session()


@cache
def service_model(name: str) -> ServiceModel:
    """The model of an AWS service by its botocore name ('ec2', 'kms', ...), loaded once."""
    return _session().get_service_model(name)


@cache
def partition_regions(service: str = "ec2", partition: str = "aws") -> tuple[str, ...]:
    """The regions in which botocore's endpoint data says `service` exists in `partition`."""
    return tuple(_session().get_available_regions(service, partition))
