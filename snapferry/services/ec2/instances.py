"""Instance operations that image tooling calls although snapferry runs no instances.

Terraform's AWS provider reads every AMI's UEFI data with GetInstanceUefiData, passing the
image id as InstanceId, and ignores the error it gets: AWS's own answer is the one to give.
"""

from __future__ import annotations

import re
from typing import Any

from snapferry.errors import ServiceError
from snapferry.services.context import Output, RequestContext

_INSTANCE_ID = re.compile(r"i-([0-9a-f]{8}|[0-9a-f]{17})")


def get_instance_uefi_data(ctx: RequestContext, params: dict[str, Any]) -> Output:
    instance_id = params["InstanceId"]
    if not _INSTANCE_ID.fullmatch(instance_id):
        raise ServiceError("InvalidInstanceID.Malformed",
                           f'Invalid id: "{instance_id[:100]}" (expecting "i-...")')
    ctx.authorize()
    raise ServiceError("InvalidInstanceID.NotFound",
                       f"The instance ID '{instance_id}' does not exist")


HANDLERS = {"GetInstanceUefiData": get_instance_uefi_data}
