"""Terraform with the AWS provider, unchanged, against a live snapferry.

tests/clients/terraform/main.tf is a user's configuration with its `endpoints` pointed at
snapferry. One cycle: `init` from the local plugin mirror, `apply`, a second `plan` that
must show no changes, checks of what was made through boto3 (including the cross-region
encrypted copy's blocks read back and compared by SHA-256 with the boto3-written source),
then `destroy` and checks that everything is gone.

Terraform and its AWS provider are required, never skipped: a machine without them fails
here with a message that says what is missing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from snapferry.testing import ServerProcess

from .blocks import digests, random_blocks, read_digests, write_snapshot
from .conftest import ACCOUNT_B, ClientFactory, add_account, run_cli

pytestmark = pytest.mark.long(seconds=470)  # scheduled first: tests/conftest.py

CONFIG = Path(__file__).resolve().parents[1] / "clients" / "terraform"
PROVIDER = Path("registry.terraform.io/hashicorp/aws/5.100.0/linux_amd64")
PLUGIN_ENV = "SNAPFERRY_TF_PLUGINS"
REGION, COPY_REGION = "us-east-1", "us-west-2"
# Two cores: enough to overlap the copies' waiters without starving the server.
PARALLELISM = "-parallelism=4"
AMAZON_IMAGE = "al2023-ami-2023.6.20250101.0-kernel-6.1-x86_64"


def plugin_dir() -> Path:
    """The local provider mirror: $SNAPFERRY_TF_PLUGINS, else a `tf-plugins` folder at the
    top of the file system (/tf-plugins, /opt/tf-plugins, ...)."""
    candidates = [Path(os.environ[PLUGIN_ENV])] if os.environ.get(PLUGIN_ENV) else [
        Path("/tf-plugins"), *sorted(Path("/").glob("*/tf-plugins"))]
    for candidate in candidates:
        if (candidate / PROVIDER).is_dir():
            return candidate
    pytest.fail(f"No Terraform AWS provider mirror: looked for {PROVIDER} under "
                f"{', '.join(map(str, candidates)) or '/tf-plugins and /*/tf-plugins'}. "
                f"Set {PLUGIN_ENV} to the folder that holds registry.terraform.io/.")


def terraform_binary() -> str:
    found = shutil.which("terraform")
    if found is None:
        pytest.fail("terraform is not on the PATH: this test needs Terraform 1.11 and the AWS "
                    "provider 5.100 in a local plugin mirror (see README, Terraform).")
    return found


class Terraform:
    """terraform in a scratch working directory, with nothing of the user's own config."""

    def __init__(self, root: Path, variables: dict[str, str], config: Path = CONFIG) -> None:
        self.binary = terraform_binary()
        self.plugins = plugin_dir()
        self.workdir = root / "config"
        shutil.copytree(config, self.workdir, ignore=shutil.ignore_patterns(".*"))
        home = root / "home"
        home.mkdir()
        (home / "terraformrc").write_text("")
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(home),
            "TF_DATA_DIR": str(root / "tf-data"),
            "TF_CLI_CONFIG_FILE": str(home / "terraformrc"),
            "CHECKPOINT_DISABLE": "1",
            "TF_IN_AUTOMATION": "1",
            "TF_INPUT": "0",
            **{f"TF_VAR_{name}": value for name, value in variables.items()},
        }
        if os.environ.get("SNAPFERRY_TF_LOG"):  # a file: every call the provider makes
            self.env.update(TF_LOG="DEBUG", TF_LOG_PATH=os.environ["SNAPFERRY_TF_LOG"])

    def run(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        return subprocess.run([self.binary, *args, "-no-color"], cwd=self.workdir, env=self.env,
                              capture_output=True, text=True, timeout=timeout)

    def check(self, *args: str) -> str:
        done = self.run(*args)
        assert done.returncode == 0, (
            f"terraform {' '.join(args)} exited {done.returncode}\n{done.stdout[-4000:]}\n"
            f"{done.stderr[-4000:]}")
        return done.stdout

    def outputs(self) -> dict[str, Any]:
        return {name: item["value"] for name, item in json.loads(self.check("output", "-json"))
                .items()}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data_dir = tmp_path_factory.mktemp("terraform-data")
    add_account(data_dir, *ACCOUNT_B)
    with ServerProcess(data_dir) as process:
        yield process


def gone(call: Any, code: str) -> bool:
    try:
        call()
    except ClientError as error:
        return bool(error.response["Error"]["Code"] == code)
    return False


def test_apply_plan_destroy(server: ServerProcess, client: ClientFactory,
                            tmp_path: Path) -> None:
    # The copies' source: real data, written through the EBS direct APIs with boto3.
    blocks = random_blocks([0, 5, 6, 1500])
    source = write_snapshot(client("ebs", region=REGION), blocks, size_gib=1)
    # The public image users look up with owners = ["amazon"], imported as an operator would.
    amazon_blocks = random_blocks([0, 2])
    with (tmp_path / "al2023.img").open("wb") as disk:
        for index, data in amazon_blocks.items():
            disk.seek(index * len(data))
            disk.write(data)
    imported = run_cli("images", "import", str(tmp_path / "al2023.img"), "--name",
                       AMAZON_IMAGE, "--regions", REGION, data_dir=server.data_dir)
    assert imported.returncode == 0, imported.stderr
    tf = Terraform(tmp_path, {"endpoint": server.url, "source_snapshot_id": source,
                              "share_account_id": ACCOUNT_B[0],
                              "amazon_image_prefix": "al2023-ami-2023."})
    tf.check("init", f"-plugin-dir={tf.plugins}")
    tf.check("apply", "-auto-approve", PARALLELISM)

    replan = tf.run("plan", "-detailed-exitcode", PARALLELISM)
    assert replan.returncode == 0, f"the second plan is not empty:\n{replan.stdout[-6000:]}\n" \
                                   f"{replan.stderr[-3000:]}"
    out = tf.outputs()
    _check_applied(client, out, source, digests(blocks))
    _check_images(client, out, source, digests(blocks), imported.stdout.split()[1],
                  digests(amazon_blocks))

    tf.check("destroy", "-auto-approve", PARALLELISM)
    _check_destroyed(client, out, source)
    _check_images_destroyed(client, out, source)


def _check_images(client: ClientFactory, out: dict[str, Any], source: str,
                  source_digests: dict[int, str], amazon_id: str,
                  amazon_digests: dict[int, str]) -> None:
    ec2, ec2_copy = client("ec2", region=REGION), client("ec2", region=COPY_REGION)
    image = ec2.describe_images(ImageIds=[out["ami_id"]])["Images"][0]
    assert (image["State"], image["Name"], image["BootMode"], image["ImdsSupport"]) == (
        "available", "tf-ami-from-snapshot", "uefi", "v2.0")
    assert [m["Ebs"]["SnapshotId"] for m in image["BlockDeviceMappings"] if "Ebs" in m] == [
        source]
    assert ec2.describe_image_attribute(ImageId=out["ami_id"], Attribute="launchPermission")[
        "LaunchPermissions"] == [{"UserId": ACCOUNT_B[0]}]
    copy = ec2_copy.describe_images(ImageIds=[out["ami_copy_id"]])["Images"][0]
    ebs = copy["BlockDeviceMappings"][0]["Ebs"]
    assert (copy["State"], copy["SourceImageId"], copy["SourceImageRegion"]) == (
        "available", out["ami_id"], REGION)
    assert (ebs["SnapshotId"], ebs["Encrypted"], ebs["KmsKeyId"]) == (
        out["ami_copy_snapshot_id"], True, out["copy_key_arn"])
    ebs_copy = client("ebs", region=COPY_REGION)
    assert read_digests(ebs_copy, ebs["SnapshotId"]) == source_digests
    # data "aws_ami" found the imported image; the user's copy of it holds its blocks.
    assert out["amazon_ami_id"] == amazon_id
    base = ec2_copy.describe_images(ImageIds=[out["amazon_copy_id"]])["Images"][0]
    assert (base["State"], base["OwnerId"], base["SourceImageId"]) == (
        "available", "000000000000", amazon_id)
    assert read_digests(ebs_copy, base["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]) == \
        amazon_digests
    assert out["ami_ids"] == [out["ami_id"]]


def _check_images_destroyed(client: ClientFactory, out: dict[str, Any], source: str) -> None:
    ec2, ec2_copy = client("ec2", region=REGION), client("ec2", region=COPY_REGION)
    assert ec2.describe_images(ImageIds=[out["ami_id"]])["Images"] == []
    for image_id in (out["ami_copy_id"], out["amazon_copy_id"]):
        assert ec2_copy.describe_images(ImageIds=[image_id])["Images"] == []
    # aws_ami_copy deletes the snapshots it made; aws_ami leaves the one it was given.
    assert ec2_copy.describe_snapshots(OwnerIds=["self"], Filters=[
        {"Name": "description", "Values": ["Copied for DestinationAmi*"]}])["Snapshots"] == []
    assert ec2.describe_snapshots(SnapshotIds=[source])["Snapshots"][0]["State"] == "completed"
    assert ec2.describe_images(Owners=["amazon"])["Images"][0]["State"] == "available"


def _check_applied(client: ClientFactory, out: dict[str, Any], source: str,
                   source_digests: dict[int, str]) -> None:
    ec2, kms = client("ec2", region=REGION), client("kms", region=REGION)
    ec2_copy, kms_copy = client("ec2", region=COPY_REGION), client("kms", region=COPY_REGION)
    assert (out["account_id"], out["region"]) == ("000000000000", REGION)

    # The copies: completed, encrypted under the key asked for (or the region's default),
    # time-based when completion_duration_minutes is set, and the same data as the source.
    copies = {s["SnapshotId"]: s for s in ec2_copy.describe_snapshots(
        SnapshotIds=[out["copy_with_key_id"], out["copy_default_key_id"]])["Snapshots"]}
    with_key, default_key = copies[out["copy_with_key_id"]], copies[out["copy_default_key_id"]]
    managed = kms_copy.describe_key(KeyId="alias/aws/ebs")["KeyMetadata"]["Arn"]
    assert (with_key["State"], with_key["Encrypted"], with_key["KmsKeyId"]) == (
        "completed", True, out["copy_key_arn"])
    assert (with_key["TransferType"], with_key["CompletionDurationMinutes"]) == ("time-based", 15)
    assert (default_key["State"], default_key["Encrypted"], default_key["KmsKeyId"]) == (
        "completed", True, managed)
    ebs_copy = client("ebs", region=COPY_REGION)
    for copy in (with_key, default_key):
        assert read_digests(ebs_copy, copy["SnapshotId"]) == source_digests
    assert ec2.describe_snapshots(SnapshotIds=[source])["Snapshots"][0]["State"] == "completed"

    # Data sources saw what the resources made.
    assert out["data_copy_snapshot_id"] == out["copy_with_key_id"]
    assert sorted(out["copy_ids"]) == sorted(copies)
    assert out["data_kms_key_arn"] == out["data_kms_alias_target"] == out["ebs_key_arn"]

    # The KMS key: its policy, rotation, tags, alias and grant.
    key = out["ebs_key_arn"]
    assert json.loads(kms.get_key_policy(KeyId=key, PolicyName="default")["Policy"])["Id"] == \
        "ebs-default"
    assert kms.get_key_rotation_status(KeyId=key)["KeyRotationEnabled"] is True
    assert kms_copy.get_key_rotation_status(KeyId=out["copy_key_arn"])[
        "KeyRotationEnabled"] is False
    assert {t["TagKey"]: t["TagValue"] for t in kms.list_resource_tags(KeyId=key)["Tags"]} == {
        "Name": "tf-ebs-default", "team": "storage"}
    alias = kms.list_aliases(KeyId=key)["Aliases"]
    assert [a["AliasName"] for a in alias] == ["alias/tf-ebs-default"]
    grants = kms.list_grants(KeyId=key)["Grants"]
    assert [(g["GrantId"], g["GranteePrincipal"], sorted(g["Operations"])) for g in grants] == [
        (out["grant_id"], f"arn:aws:iam::{ACCOUNT_B[0]}:root",
         ["CreateGrant", "Decrypt", "DescribeKey"])]

    # Encryption by default, under the key made the default: the volume shows both.
    assert ec2.get_ebs_encryption_by_default()["EbsEncryptionByDefault"] is True
    assert ec2.get_ebs_default_kms_key_id()["KmsKeyId"] == key
    volume = ec2.describe_volumes(VolumeIds=[out["volume_id"]])["Volumes"][0]
    assert (volume["Encrypted"], volume["KmsKeyId"]) == (True, key)
    assert out["volume_kms_key_id"] == key

    # The snapshot of the volume, shared with the second account.
    permissions = ec2.describe_snapshot_attribute(
        SnapshotId=out["snapshot_id"], Attribute="createVolumePermission")
    assert permissions["CreateVolumePermissions"] == [{"UserId": ACCOUNT_B[0]}]
    other = client("ec2", region=REGION, key=ACCOUNT_B[1], secret=ACCOUNT_B[2])
    assert [s["SnapshotId"] for s in other.describe_snapshots(
        RestorableByUserIds=["self"])["Snapshots"]] == [out["snapshot_id"]]


def _check_destroyed(client: ClientFactory, out: dict[str, Any], source: str) -> None:
    ec2, kms = client("ec2", region=REGION), client("kms", region=REGION)
    ec2_copy, kms_copy = client("ec2", region=COPY_REGION), client("kms", region=COPY_REGION)
    for snapshot in (out["copy_with_key_id"], out["copy_default_key_id"]):
        assert gone(lambda s=snapshot: ec2_copy.describe_snapshots(SnapshotIds=[s]),
                    "InvalidSnapshot.NotFound")
    assert gone(lambda: ec2.describe_snapshots(SnapshotIds=[out["snapshot_id"]]),
                "InvalidSnapshot.NotFound")
    assert gone(lambda: ec2.describe_volumes(VolumeIds=[out["volume_id"]]),
                "InvalidVolume.NotFound")
    # The boto3-written source is not Terraform's and stays.
    assert ec2.describe_snapshots(SnapshotIds=[source])["Snapshots"][0]["State"] == "completed"
    assert ec2.get_ebs_encryption_by_default()["EbsEncryptionByDefault"] is False
    assert ec2.get_ebs_default_kms_key_id()["KmsKeyId"] == "alias/aws/ebs"
    for regional, key in ((kms, out["ebs_key_arn"]), (kms_copy, out["copy_key_arn"])):
        metadata = regional.describe_key(KeyId=key)["KeyMetadata"]
        assert (metadata["KeyState"], metadata["PendingDeletionWindowInDays"]) == (
            "PendingDeletion", 7)
    assert [a["AliasName"] for a in kms.list_aliases()["Aliases"]
            if not a["AliasName"].startswith("alias/aws/")] == []
    assert kms.list_grants(KeyId=out["ebs_key_arn"])["Grants"] == []
