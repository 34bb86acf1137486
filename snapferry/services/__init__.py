"""One module (or package) per AWS service; thin handlers registered in plain dicts.

IAM is routed and speaks its protocol already; its
operations arrive with the issues that build them, and until then each answers with the
protocol's unknown-operation error naming what is not served yet.
"""

from __future__ import annotations

from snapferry.errors import ServiceError
from snapferry.services import ebs, ec2, kms, s3, sts
from snapferry.services.context import Service


def _denied(code: str, status: int = 400):  # type: ignore[no-untyped-def]
    def access_denied(action: str) -> ServiceError:
        return ServiceError(code, f"You are not authorized to perform: {action}.", status)

    return access_denied


SERVICES: dict[str, Service] = {
    "ec2": ec2.SERVICE,
    "sts": sts.SERVICE,
    "kms": kms.SERVICE,
    "iam": Service("iam", "iam", {}, _denied("AccessDenied", 403)),
    "ebs": ebs.SERVICE,
    "s3": s3.SERVICE,
}
