"""Terraform sets up IAM and then uses it (issue 11): `aws_iam_user`, `aws_iam_access_key`,
`aws_iam_policy`, `aws_iam_user_policy_attachment`, `aws_iam_role` with an assume-role
policy, and a second provider block that signs in as the user, assumes the role and copies
a snapshot. Apply (the IAM resources first: the second provider needs the key to exist),
a second plan with no changes, checks through boto3, destroy.

The configuration is tests/clients/terraform-iam/main.tf; the Terraform runner and the
provider mirror are test_terraform.py's.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from snapferry.testing import ServerProcess

from .blocks import random_blocks, write_snapshot
from .conftest import ClientFactory
from .test_foundation import refused
from .test_terraform import PARALLELISM, Terraform

pytestmark = pytest.mark.long(seconds=650)  # scheduled first: tests/conftest.py

CONFIG = Path(__file__).resolve().parents[1] / "clients" / "terraform-iam"
REGION = "us-east-1"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with ServerProcess(tmp_path_factory.mktemp("terraform-iam-data")) as process:
        yield process


def test_iam_made_by_terraform_is_used_by_terraform(server: ServerProcess,
                                                    client: ClientFactory,
                                                    tmp_path: Path) -> None:
    source = write_snapshot(client("ebs", region=REGION), random_blocks([0, 7]))
    tf = Terraform(tmp_path, {"endpoint": server.url, "source_snapshot_id": source},
                   config=CONFIG)
    tf.check("init", f"-plugin-dir={tf.plugins}")
    # A provider cannot be configured with credentials not made yet: the IAM first (as
    # Terraform's docs advise, a targeted apply), then everything.
    tf.check("apply", "-auto-approve", PARALLELISM, "-target=aws_iam_role_policy.copy",
             "-target=aws_iam_user_policy_attachment.assume", "-target=aws_iam_access_key.copier")
    tf.check("apply", "-auto-approve", PARALLELISM)
    replan = tf.run("plan", "-detailed-exitcode", PARALLELISM)
    assert replan.returncode == 0, f"the second plan is not empty:\n{replan.stdout[-6000:]}\n" \
                                   f"{replan.stderr[-3000:]}"
    out = tf.outputs()
    iam, ec2 = client("iam"), client("ec2", region=REGION)
    assert out["user_arn"] == "arn:aws:iam::000000000000:user/automation/tf-copier"
    keys = iam.list_access_keys(UserName="tf-copier")["AccessKeyMetadata"]
    assert [k["AccessKeyId"] for k in keys] == [out["access_key_id"]]
    assert iam.list_attached_user_policies(UserName="tf-copier")["AttachedPolicies"] == [
        {"PolicyName": "tf-assume-copier", "PolicyArn": out["policy_arn"]}]
    trust = iam.get_role(RoleName="tf-snapshot-copier")["Role"]["AssumeRolePolicyDocument"]
    assert trust["Statement"][0]["Principal"] == {"AWS": out["user_arn"]}
    copy = ec2.describe_snapshots(SnapshotIds=[out["copy_id"]])["Snapshots"][0]
    assert (copy["State"], copy["Description"]) == ("completed", "copied by the role")
    # The user's key itself may assume the role, and nothing else.
    assert refused(lambda: client("ec2", region=REGION, key=out["access_key_id"],
                                  secret=_secret(tf)).describe_snapshots(
        SnapshotIds=[source]))[0] == "UnauthorizedOperation"

    tf.check("destroy", "-auto-approve", PARALLELISM)
    assert refused(lambda: ec2.describe_snapshots(SnapshotIds=[out["copy_id"]]))[0] == (
        "InvalidSnapshot.NotFound")
    assert refused(lambda: iam.get_user(UserName="tf-copier"))[0] == "NoSuchEntity"
    assert refused(lambda: iam.get_role(RoleName="tf-snapshot-copier"))[0] == "NoSuchEntity"
    assert refused(lambda: iam.get_policy(PolicyArn=out["policy_arn"]))[0] == "NoSuchEntity"
    assert ec2.describe_snapshots(SnapshotIds=[source])["Snapshots"][0]["State"] == "completed"


def _secret(tf: Terraform) -> str:
    import json

    # The raw state: `show -json` would start the provider (for its schemas) only to print it.
    state = json.loads(tf.check("state", "pull"))
    for resource in state["resources"]:
        if (resource["type"], resource["name"]) == ("aws_iam_access_key", "copier"):
            return str(resource["instances"][0]["attributes"]["secret"])
    raise AssertionError("no access key in the state")
