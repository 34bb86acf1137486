"""One module (or package) per AWS service; thin handlers registered in plain dicts.

An operation in a model that no handler serves answers with the protocol's
unknown-operation error naming what is not served yet.
"""

from __future__ import annotations

from snapferry.services import ebs, ec2, iam, kms, s3, sts
from snapferry.services.context import Service

SERVICES: dict[str, Service] = {
    "ec2": ec2.SERVICE,
    "sts": sts.SERVICE,
    "kms": kms.SERVICE,
    "iam": iam.SERVICE,
    "ebs": ebs.SERVICE,
    "s3": s3.SERVICE,
}
