"""AWS managed policies: their real documents, trimmed to the services snapferry serves.

They exist in every account, cannot be changed or deleted, and are named
arn:aws:iam::aws:policy/NAME. Version v1 for all (AWS's own version numbers are larger;
nothing depends on them).
"""

from __future__ import annotations

import datetime as dt
import json
from functools import cache

from snapferry.domain.iam import AWS_POLICY_PREFIX, ManagedPolicy

CREATED = dt.datetime(2015, 2, 6, 18, 39, 46, tzinfo=dt.UTC)
VERSION = "v1"

_DOCUMENTS: dict[str, tuple[str, dict[str, object]]] = {
    "AdministratorAccess": ("Provides full access to AWS services and resources.", {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
    }),
    "ReadOnlyAccess": ("Provides read-only access to AWS services and resources.", {
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "ReadOnlyActions",
            "Effect": "Allow",
            "Action": ["ec2:Describe*", "ec2:Get*", "ec2:List*", "ebs:ListSnapshotBlocks",
                       "ebs:ListChangedBlocks", "iam:Get*", "iam:List*",
                       "iam:GenerateCredentialReport", "kms:Describe*", "kms:Get*",
                       "kms:List*", "sts:GetCallerIdentity"],
            "Resource": "*",
        }],
    }),
    "AmazonEC2FullAccess": ("Provides full access to Amazon EC2 via the AWS Management "
                            "Console.", {
        "Version": "2012-10-17",
        "Statement": [
            {"Action": "ec2:*", "Effect": "Allow", "Resource": "*"},
            {"Effect": "Allow", "Action": "elasticloadbalancing:*", "Resource": "*"},
            {"Effect": "Allow", "Action": "cloudwatch:*", "Resource": "*"},
            {"Effect": "Allow", "Action": "autoscaling:*", "Resource": "*"},
            {"Effect": "Allow", "Action": "iam:CreateServiceLinkedRole", "Resource": "*",
             "Condition": {"StringEquals": {"iam:AWSServiceName": [
                 "autoscaling.amazonaws.com", "ec2scheduled.amazonaws.com",
                 "elasticloadbalancing.amazonaws.com", "spot.amazonaws.com",
                 "spotfleet.amazonaws.com", "transitgateway.amazonaws.com"]}}},
        ],
    }),
    "AmazonEC2ReadOnlyAccess": ("Provides read only access to Amazon EC2 via the AWS "
                                "Management Console.", {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "ec2:Describe*", "Resource": "*"},
            {"Effect": "Allow", "Action": "elasticloadbalancing:Describe*", "Resource": "*"},
            {"Effect": "Allow", "Action": ["cloudwatch:ListMetrics",
                                           "cloudwatch:GetMetricStatistics",
                                           "cloudwatch:Describe*"], "Resource": "*"},
            {"Effect": "Allow", "Action": "autoscaling:Describe*", "Resource": "*"},
        ],
    }),
}


def arn_of(name: str) -> str:
    return f"{AWS_POLICY_PREFIX}/{name}"


@cache
def managed() -> dict[str, ManagedPolicy]:
    """ARN -> policy, for every AWS managed policy we know."""
    return {arn_of(name): ManagedPolicy(
        arn=arn_of(name), name=name, policy_id="ANPA" + name.upper()[:16].ljust(16, "X"),
        path="/", default_version=VERSION, created=CREATED, updated=CREATED,
        description=description) for name, (description, _) in _DOCUMENTS.items()}


def document(arn: str) -> str | None:
    """The JSON document of an AWS managed policy, or None if we know no such policy."""
    found = managed().get(arn)
    return json.dumps(_DOCUMENTS[found.name][1], indent=4) if found else None
