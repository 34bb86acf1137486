"""Authorization: one function every handler calls before it acts.

Today every principal is an account root, and a root may do anything to what its account
can see; which resources an account can see is each operation's own visibility rule
(NotFound for what is not yours). IAM identity policies, KMS key policies and resource
permissions (createVolumePermission, launchPermission) will be evaluated here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from snapferry.domain.accounts import Principal


def authorize(
    principal: Principal,
    action: str,
    resources: Sequence[str] = (),
    context: Mapping[str, Any] | None = None,
) -> bool:
    """Whether `principal` may perform `action` (e.g. 'ec2:CopySnapshot') on `resources`."""
    return principal.is_root
