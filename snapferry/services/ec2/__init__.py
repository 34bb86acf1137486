"""EC2: one module per group of operations; this module gathers their handlers."""

from __future__ import annotations

from snapferry.domain import images as image_rules
from snapferry.errors import ServiceError
from snapferry.services import sharing
from snapferry.services.context import First, Service
from snapferry.services.ec2 import (
    copies,
    encryption,
    image_copies,
    images,
    instances,
    regions,
    snapshots,
    tags,
    volumes,
)

DRY_RUN = ServiceError(
    "DryRunOperation", "Request would have succeeded, but DryRun flag is set.", status=412
)


def _unauthorized(action: str) -> ServiceError:
    return ServiceError(
        "UnauthorizedOperation",
        f"You are not authorized to perform this operation ({action}).",
        403,
    )


SERVICE = Service(
    name="ec2",
    iam_prefix="ec2",
    handlers={**regions.HANDLERS, **snapshots.HANDLERS, **volumes.HANDLERS, **tags.HANDLERS,
              **encryption.HANDLERS, **copies.HANDLERS, **images.HANDLERS,
              **image_copies.HANDLERS, **instances.HANDLERS},
    access_denied=_unauthorized,
    denial=lambda action, message: ServiceError("UnauthorizedOperation", message, 403),
    encodes_denials=True,
    dry_run_error=DRY_RUN,
    input_errors={"ImageNameRequest": ServiceError("InvalidAMIName.Malformed",
                                                   image_rules.NAME_MESSAGE)},
    authorize_first=First.IDENTITY,
    resource_side=sharing.resource_side,
)
