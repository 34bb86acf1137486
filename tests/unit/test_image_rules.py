"""The image rules of domain/images.py called directly, without a server: RegisterImage's
attributes and block device mappings, launch permissions and who may make an image public,
deprecation and deregistration protection, ancestry, CopyImage's requests, product codes.
Each rule is tested from both sides of its boundary, with the AWS error code asserted.

Before this file images.py was guarded by integration files alone (a server start per
mutant); tests/mutation/run.py runs it first.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from snapferry.domain import images as rules
from snapferry.domain.images import BlockDevice, Image
from snapferry.domain.snapshots import COMPLETED, Snapshot
from snapferry.errors import ServiceError

NOW = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.UTC)
OWNER, OTHER = "000000000000", "222222222222"
SNAP, SNAP2 = "snap-0123456789abcdef0", "snap-0123456789abcdef1"
ORG = "arn:aws:organizations::123456789012:organization/o-abcdefghij"
OU = "arn:aws:organizations::123456789012:ou/o-abcdefghij/ou-ab12-abcdefgh"


def _error(call: Callable[..., object], *args: object, **kwargs: object) -> ServiceError:
    with pytest.raises(ServiceError) as caught:
        call(*args, **kwargs)
    return caught.value


def fresh(text: str) -> str:
    """An equal string that is another object, as a value read from the database or a request
    is: a rule comparing by identity (`is`) instead of equality fails on it."""
    copy = "".join(list(text))
    assert copy == text and copy is not text
    return copy


def image(image_id: str = "ami-00000000000000001", **fields: Any) -> Image:
    values: dict[str, Any] = {
        "account_id": OWNER, "region": "us-east-1", "name": image_id,
        "state": rules.AVAILABLE, "creation_date": NOW, "image_location": f"{OWNER}/x",
        "architecture": "x86_64", "virtualization_type": "hvm",
        "root_device_name": "/dev/xvda",
        "block_devices": [BlockDevice("/dev/xvda", snapshot_id=SNAP, volume_size=8,
                                      volume_type="gp2", encrypted=False)],
    }
    values.update(fields)
    return Image(image_id=image_id, **values)


def snapshot(snapshot_id: str = SNAP, size: int = 8, state: str = COMPLETED,
             encrypted: bool = False, kms_key_id: str | None = None) -> Snapshot:
    return Snapshot(snapshot_id=snapshot_id, account_id=OWNER, region="us-east-1",
                    volume_id="vol-ffffffff", volume_size=size, state=state, progress=100,
                    start_time=NOW, description="", encrypted=encrypted, lineage_id="l",
                    origin="ebs-direct", kms_key_id=kms_key_id)


class Snapshots:
    """`snapshot(id)` as block_devices wants it, remembering what it was asked for."""

    def __init__(self, *known: Snapshot) -> None:
        self.known = {s.snapshot_id: s for s in known}
        self.asked: list[str] = []

    def __call__(self, snapshot_id: str) -> Snapshot:
        self.asked.append(snapshot_id)
        if snapshot_id not in self.known:
            raise ServiceError("InvalidSnapshot.NotFound", snapshot_id)
        return self.known[snapshot_id]


def ebs_device(ebs: dict[str, Any], *known: Snapshot, name: str = "/dev/xvda"
               ) -> BlockDevice:
    [device] = rules.block_devices([{"DeviceName": name, "Ebs": ebs}], name,
                                   Snapshots(*(known or (snapshot(),))))
    return device


# ---- the image record ---------------------------------------------------------------------

def test_an_image_is_deprecated_from_its_deprecation_time_on() -> None:
    assert not image().deprecated(NOW)
    at = image(deprecation_time=NOW)
    assert at.deprecated(NOW)
    assert at.deprecated(NOW + dt.timedelta(seconds=1))
    assert not at.deprecated(NOW - dt.timedelta(seconds=1))


def test_an_image_and_a_device_start_with_the_documented_defaults() -> None:
    fresh = image()
    assert (fresh.image_type, fresh.root_device_type) == ("machine", "ebs")
    assert fresh.deregistration_protection == rules.PROTECTION_OFF == "disabled"
    assert fresh.protected_until is None and fresh.deprecation_time is None
    assert Image(image_id="a", account_id=OWNER, region="r", name="n", state="s",
                 creation_date=NOW, image_location="l", architecture="a",
                 virtualization_type="v", root_device_name="d").block_devices == []
    device = BlockDevice("/dev/sdb")
    assert device.no_device is False
    assert dataclasses.astuple(device)[1:] == (None,) * 9 + (False,)


# ---- errors -------------------------------------------------------------------------------

def test_not_found_names_one_or_several_ids_in_aws_words() -> None:
    one = rules.not_found("ami-1")
    assert (one.code, one.message, one.status) == (
        "InvalidAMIID.NotFound", "The image id '[ami-1]' does not exist", 400)
    assert rules.not_found(["ami-1"]).message == one.message
    two = rules.not_found(["ami-1", "ami-2"])
    assert (two.code, two.message) == (
        "InvalidAMIID.NotFound", "The image ids '[ami-1, ami-2]' do not exist")


def test_unavailable_says_pending_or_no_longer_available() -> None:
    pending = rules.unavailable(image("ami-1", state=rules.PENDING))
    assert pending.code == "InvalidAMIID.Unavailable"
    assert pending.message == ("The AMI ID 'ami-1' is currently pending and may not be used "
                               "for this operation")
    read = rules.unavailable(image("ami-1", state=fresh(rules.PENDING)))
    assert read.message == pending.message
    for state in (rules.DEREGISTERED, rules.FAILED, rules.AVAILABLE):
        gone = rules.unavailable(image("ami-1", state=state))
        assert (gone.code, gone.message) == (
            "InvalidAMIID.Unavailable", "The image id '[ami-1]' is no longer available")


def test_not_owner_is_an_auth_failure_with_401() -> None:
    error = rules.not_owner("ami-1")
    assert (error.code, error.status) == ("AuthFailure", 401)
    assert "ami-1" in error.message


def test_a_duplicate_name_is_named() -> None:
    error = rules.duplicate_name("web")
    assert error.code == "InvalidAMIName.Duplicate" and "web" in error.message


# ---- registration -------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["abc", "a" * 128, "My (image) [v1.2]/x-y'z@w_ok",
                                  "A B C", "0123456789"])
def test_a_well_formed_name_is_kept(name: str) -> None:
    assert rules.check_name(name) == name


@pytest.mark.parametrize("name", ["ab", "", "a" * 129, "bad!name", "tab\there", "naïve",
                                  "abc\n", "semi;colon", "x*y"])
def test_a_malformed_name_is_refused(name: str) -> None:
    error = _error(rules.check_name, name)
    assert (error.code, error.message) == ("InvalidAMIName.Malformed", rules.NAME_MESSAGE)


def test_a_description_is_at_most_255_characters() -> None:
    assert rules.check_description(None) is None
    assert rules.check_description("") == ""
    assert rules.check_description("d" * 255) == "d" * 255
    error = _error(rules.check_description, "d" * 256)
    assert error.code == "InvalidParameterValue" and "255" in error.message


def _register(**params: Any) -> dict[str, Any]:
    return rules.registration_attributes({"Name": "my-image", **params})


def test_registration_applies_the_documented_defaults() -> None:
    assert _register() == {
        "name": "my-image", "description": None, "architecture": "i386",
        "virtualization_type": "paravirtual", "boot_mode": None, "tpm_support": None,
        "imds_support": None, "sriov_net_support": None, "ena_support": None,
        "uefi_data": None,
    }


def test_registration_keeps_every_valid_attribute() -> None:
    assert _register(Description="d", Architecture="arm64", VirtualizationType="hvm",
                     BootMode="uefi", TpmSupport="v2.0", ImdsSupport="v2.0",
                     SriovNetSupport="simple", EnaSupport=True, UefiData="u" * 64000,
                     BillingProducts=[], KernelId="", RamdiskId=None) == {
        "name": "my-image", "description": "d", "architecture": "arm64",
        "virtualization_type": "hvm", "boot_mode": "uefi", "tpm_support": "v2.0",
        "imds_support": "v2.0", "sriov_net_support": "simple", "ena_support": True,
        "uefi_data": "u" * 64000,
    }
    assert _register(EnaSupport=False)["ena_support"] is False
    assert _register(UefiData="QU1aTVNFRg==")["uefi_data"] == "QU1aTVNFRg=="  # shorter is fine
    assert _register(UefiData="")["uefi_data"] == ""


@pytest.mark.parametrize("architecture", rules.ARCHITECTURES)
def test_each_architecture_is_accepted(architecture: str) -> None:
    assert _register(Architecture=architecture)["architecture"] == architecture


@pytest.mark.parametrize("boot_mode", rules.BOOT_MODES)
def test_each_boot_mode_is_accepted(boot_mode: str) -> None:
    assert _register(BootMode=boot_mode)["boot_mode"] == boot_mode


def test_paravirtual_may_be_asked_for() -> None:
    assert _register(VirtualizationType="paravirtual")["virtualization_type"] == "paravirtual"


@pytest.mark.parametrize(("parameter", "value", "named", "valid"), [
    ("Architecture", "sparc", "architecture", "i386, x86_64, arm64, x86_64_mac, arm64_mac"),
    ("Architecture", "ARM64", "architecture", "i386"),
    ("VirtualizationType", "xen", "virtualizationType", "hvm, paravirtual"),
    ("BootMode", "bios", "bootMode", "legacy-bios, uefi, uefi-preferred"),
    ("TpmSupport", "v1.2", "tpmSupport", "v2.0"),
    ("ImdsSupport", "v1.0", "imdsSupport", "v2.0"),
    ("SriovNetSupport", "complex", "sriovNetSupport", "simple"),
])
def test_a_value_outside_its_list_is_refused_naming_the_list(
        parameter: str, value: str, named: str, valid: str) -> None:
    error = _error(_register, **{parameter: value})
    assert error.code == "InvalidParameterValue"
    assert f"Value ({value}) for parameter {named} is invalid" in error.message
    assert valid in error.message


@pytest.mark.parametrize(("parameter", "value"), [
    ("BillingProducts", ["bp-1"]), ("KernelId", "aki-12345678"), ("RamdiskId", "ari-12345678"),
    ("UefiData", "u" * 64001)])
def test_what_snapferry_cannot_honour_is_refused(parameter: str, value: object) -> None:
    error = _error(_register, **{parameter: value})
    assert error.code == "InvalidParameterValue"
    assert parameter in error.message


def test_registration_checks_the_name_and_the_description() -> None:
    assert _error(rules.registration_attributes, {"Name": "x"}).code == (
        "InvalidAMIName.Malformed")
    assert _error(_register, Description="d" * 256).code == "InvalidParameterValue"


@pytest.mark.parametrize("name", [
    "/dev/sda1", "/dev/xvda", "/dev/sdf", "sdb", "xvdba", "/dev/sdzz15", "/dev/xvdb12",
    "/dev/hda", "hdc9", "/dev/nvme0n1", "nvme12n34"])
def test_a_device_name_ec2_uses_is_accepted(name: str) -> None:
    assert rules.check_device_name(name) == name


@pytest.mark.parametrize("name", [None, "", "/dev/", "/dev/sda123", "/dev/sdA", "dev/sda",
                                  "/dev/vda", "/dev/hdab", "/dev/nvme0", "/dev/nvme123n1",
                                  "/dev/xvda ", "x" * 100])
def test_another_device_name_is_refused(name: str | None) -> None:
    error = _error(rules.check_device_name, name)
    assert error.code == "InvalidBlockDeviceMapping"
    assert f"'{(name or '')[:64]}'" in error.message


# ---- block device mappings ----------------------------------------------------------------

def test_mappings_and_a_root_device_are_required() -> None:
    known = Snapshots(snapshot())
    root = [{"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": SNAP}}]
    assert _error(rules.block_devices, [], "/dev/xvda", known).code == "MissingParameter"
    for missing in (None, ""):
        error = _error(rules.block_devices, root, missing, known)
        assert error.code == "MissingParameter" and "RootDeviceName" in error.message
    assert known.asked == []


def test_an_image_from_one_snapshot_takes_its_size_and_encryption() -> None:
    known = Snapshots(snapshot(size=8, encrypted=True, kms_key_id="key-1"))
    devices = rules.block_devices([{"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": SNAP}}],
                                  "/dev/xvda", known)
    assert known.asked == [SNAP]
    assert devices == [BlockDevice(
        device_name="/dev/xvda", snapshot_id=SNAP, volume_size=8, volume_type="gp2",
        delete_on_termination=True, encrypted=True, kms_key_id="key-1")]


def test_an_unencrypted_snapshot_gives_no_key() -> None:
    device = ebs_device({"SnapshotId": SNAP}, snapshot(kms_key_id="stale-key"))
    assert (device.encrypted, device.kms_key_id) == (False, None)


def test_mappings_keep_their_order_and_kinds() -> None:
    known = Snapshots(snapshot(), snapshot(SNAP2, size=20))
    devices = rules.block_devices([
        {"DeviceName": "/dev/sdb", "VirtualName": "ephemeral0"},
        {"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": SNAP, "VolumeSize": 10,
                                            "VolumeType": "gp3", "Iops": 3000,
                                            "Throughput": 125,
                                            "DeleteOnTermination": False}},
        {"DeviceName": "/dev/sdc", "NoDevice": ""},
        {"DeviceName": "/dev/sdd", "Ebs": {"VolumeSize": 4, "Encrypted": True}},
        {"DeviceName": "/dev/sde", "Ebs": {"SnapshotId": SNAP2}},
    ], "/dev/xvda", known)
    assert known.asked == [SNAP, SNAP2]
    assert devices == [
        BlockDevice("/dev/sdb", virtual_name="ephemeral0"),
        BlockDevice("/dev/xvda", snapshot_id=SNAP, volume_size=10, volume_type="gp3",
                    delete_on_termination=False, encrypted=False, iops=3000, throughput=125),
        BlockDevice("/dev/sdc", no_device=True),
        BlockDevice("/dev/sdd", volume_size=4, volume_type="gp2", delete_on_termination=True,
                    encrypted=True),
        BlockDevice("/dev/sde", snapshot_id=SNAP2, volume_size=20, volume_type="gp2",
                    delete_on_termination=True, encrypted=False),
    ]


def test_a_device_named_twice_is_refused() -> None:
    error = _error(rules.block_devices, [
        {"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": SNAP}},
        {"DeviceName": "/dev/sdb", "NoDevice": ""},
        {"DeviceName": "/dev/xvda", "NoDevice": ""}], "/dev/xvda", Snapshots(snapshot()))
    assert error.code == "InvalidBlockDeviceMapping" and "more than one" in error.message


def test_each_device_name_is_checked() -> None:
    error = _error(rules.block_devices, [
        {"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": SNAP}},
        {"DeviceName": "/dev/bad", "NoDevice": ""}], "/dev/xvda", Snapshots(snapshot()))
    assert error.code == "InvalidBlockDeviceMapping" and "/dev/bad" in error.message
    assert _error(rules.block_devices, [{"Ebs": {"SnapshotId": SNAP}}], "/dev/xvda",
                  Snapshots(snapshot())).code == "InvalidBlockDeviceMapping"


def test_the_root_device_must_be_a_mapping_from_a_snapshot() -> None:
    known = Snapshots(snapshot())
    elsewhere = _error(rules.block_devices, [
        {"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": SNAP}}], "/dev/sda1", known)
    assert elsewhere.code == "InvalidBlockDeviceMapping"
    assert "'/dev/sda1' is not one of" in elsewhere.message
    for root in ({"VirtualName": "ephemeral0"}, {"NoDevice": ""},
                 {"Ebs": {"VolumeSize": 8}}):
        error = _error(rules.block_devices, [
            {"DeviceName": "/dev/sdb", "Ebs": {"SnapshotId": SNAP}},
            {"DeviceName": "/dev/xvda", **root}], "/dev/xvda", known)
        assert error.code == "InvalidBlockDeviceMapping"
        assert "must be an EBS volume from a snapshot" in error.message


def test_the_root_is_found_among_several_snapshot_mappings() -> None:
    devices = rules.block_devices([
        {"DeviceName": "/dev/sdb", "Ebs": {"VolumeSize": 4}},
        {"DeviceName": "/dev/sda1", "Ebs": {"SnapshotId": SNAP}},
        {"DeviceName": "/dev/sdc", "Ebs": {"VolumeSize": 4}}], "/dev/sda1",
        Snapshots(snapshot()))
    assert [d.device_name for d in devices] == ["/dev/sdb", "/dev/sda1", "/dev/sdc"]


@pytest.mark.parametrize("mapping", [
    {}, {"Ebs": {"SnapshotId": SNAP}, "VirtualName": "ephemeral0"},
    {"Ebs": {"SnapshotId": SNAP}, "NoDevice": ""},
    {"VirtualName": "ephemeral0", "NoDevice": ""},
    {"Ebs": {"SnapshotId": SNAP}, "VirtualName": "ephemeral0", "NoDevice": ""}])
def test_a_mapping_gives_exactly_one_of_ebs_virtual_name_and_no_device(
        mapping: dict[str, Any]) -> None:
    known = Snapshots(snapshot())
    error = _error(rules.block_devices, [{"DeviceName": "/dev/xvda", **mapping}], "/dev/xvda",
                   known)
    assert error.code == "InvalidBlockDeviceMapping" and "exactly one of" in error.message
    assert known.asked == []


@pytest.mark.parametrize("virtual", ["ephemeral0", "ephemeral9", "ephemeral10", "ephemeral19",
                                     "ephemeral20", "ephemeral23"])
def test_ephemeral_0_to_23_are_virtual_names(virtual: str) -> None:
    [device, _] = rules.block_devices([{"DeviceName": "/dev/sdb", "VirtualName": virtual},
                                       {"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": SNAP}}],
                                      "/dev/xvda", Snapshots(snapshot()))
    assert device == BlockDevice("/dev/sdb", virtual_name=virtual)


@pytest.mark.parametrize("virtual", ["ephemeral24", "ephemeral", "ephemeral01", "swap",
                                     "Ephemeral0", "ephemeral0 ", ""])
def test_other_virtual_names_are_refused(virtual: str) -> None:
    error = _error(rules.block_devices, [{"DeviceName": "/dev/sdb", "VirtualName": virtual}],
                   "/dev/sdb", Snapshots())
    assert error.code == "InvalidBlockDeviceMapping" and "ephemeral0 to ephemeral23" in (
        error.message)


@pytest.mark.parametrize("unsupported", ["OutpostArn", "AvailabilityZone",
                                         "AvailabilityZoneId", "VolumeInitializationRate",
                                         "EbsCardIndex"])
def test_ebs_members_registration_cannot_take_are_refused(unsupported: str) -> None:
    error = _error(ebs_device, {"SnapshotId": SNAP, unsupported: 0})
    assert error.code == "InvalidBlockDeviceMapping"
    assert f"Ebs.{unsupported}" in error.message
    assert ebs_device({"SnapshotId": SNAP, unsupported: None}).snapshot_id == SNAP


def test_a_kms_key_cannot_be_given() -> None:
    error = _error(ebs_device, {"SnapshotId": SNAP, "KmsKeyId": "alias/k"})
    assert error.code == "InvalidBlockDeviceMapping" and "KmsKeyId" in error.message
    assert ebs_device({"SnapshotId": SNAP, "KmsKeyId": ""}).kms_key_id is None


@pytest.mark.parametrize("encrypted", [True, False])
def test_encrypted_cannot_be_given_with_a_snapshot(encrypted: bool) -> None:
    error = _error(ebs_device, {"SnapshotId": SNAP, "Encrypted": encrypted},
                   snapshot(encrypted=encrypted))
    assert error.code == "InvalidBlockDeviceMapping" and "Omit Ebs.Encrypted" in error.message


def test_a_malformed_or_unknown_snapshot_id_is_refused() -> None:
    known = Snapshots(snapshot())
    error = _error(rules.block_devices, [{"DeviceName": "/dev/xvda",
                                          "Ebs": {"SnapshotId": "snapshot-1"}}],
                   "/dev/xvda", known)
    assert error.code == "InvalidSnapshotID.Malformed" and known.asked == []
    assert _error(ebs_device, {"SnapshotId": SNAP2}).code == "InvalidSnapshot.NotFound"


@pytest.mark.parametrize("state", ["pending", "error", "recoverable"])
def test_a_snapshot_not_completed_is_refused(state: str) -> None:
    error = _error(ebs_device, {"SnapshotId": SNAP}, snapshot(state=state))
    assert (error.code, error.message) == ("IncorrectState",
                                           f"Snapshot '{SNAP}' is not 'completed'.")


def test_a_volume_is_at_least_its_snapshot() -> None:
    assert ebs_device({"SnapshotId": SNAP, "VolumeSize": 8}, snapshot(size=8)).volume_size == 8
    read = snapshot(size=8, state=fresh(COMPLETED))  # a state as the database gives it
    assert ebs_device({"SnapshotId": SNAP}, read).volume_size == 8
    assert ebs_device({"SnapshotId": SNAP, "VolumeSize": 9}, snapshot(size=8)).volume_size == 9
    error = _error(ebs_device, {"SnapshotId": SNAP, "VolumeSize": 7}, snapshot(size=8))
    assert error.code == "InvalidBlockDeviceMapping"
    assert "expect size >= 8GiB" in error.message


def test_a_volume_without_a_snapshot_needs_a_size() -> None:
    error = _error(rules.block_devices, [
        {"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": SNAP}},
        {"DeviceName": "/dev/sdb", "Ebs": {"VolumeType": "gp3"}}], "/dev/xvda",
        Snapshots(snapshot()))
    assert error.code == "InvalidBlockDeviceMapping"
    assert "needs Ebs.SnapshotId or Ebs.VolumeSize" in error.message
    blank = rules.block_devices([
        {"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": SNAP}},
        {"DeviceName": "/dev/sdb", "Ebs": {"SnapshotId": "", "VolumeSize": 2,
                                           "Encrypted": False}}], "/dev/xvda",
        Snapshots(snapshot()))[1]
    assert (blank.snapshot_id, blank.encrypted, blank.kms_key_id) == (None, False, None)


@pytest.mark.parametrize(("ebs", "code"), [
    ({"VolumeType": "gp9"}, "InvalidParameterValue"),
    ({"VolumeType": "st1", "VolumeSize": 124}, "InvalidParameterValue"),
    ({"VolumeSize": 16385}, "InvalidParameterValue"),
])
def test_the_volume_type_and_size_are_checked(ebs: dict[str, Any], code: str) -> None:
    assert _error(ebs_device, {"SnapshotId": SNAP, **ebs}).code == code


@pytest.mark.parametrize("volume_type", ["io1", "io2", "gp3"])
def test_iops_are_for_provisioned_types(volume_type: str) -> None:
    device = ebs_device({"SnapshotId": SNAP, "VolumeType": volume_type, "Iops": 3000})
    assert (device.volume_type, device.iops) == (volume_type, 3000)


@pytest.mark.parametrize("volume_type", ["gp2", "standard", "st1", "sc1"])
def test_iops_are_refused_for_other_types(volume_type: str) -> None:
    size = 125 if volume_type in ("st1", "sc1") else 8
    error = _error(ebs_device, {"SnapshotId": SNAP, "VolumeType": volume_type, "Iops": 100,
                                "VolumeSize": size})
    assert error.code == "InvalidParameterCombination" and volume_type in error.message


def test_iops_of_zero_still_count_as_given() -> None:
    assert _error(ebs_device, {"SnapshotId": SNAP, "Iops": 0}).code == (
        "InvalidParameterCombination")
    assert _error(ebs_device, {"SnapshotId": SNAP, "Throughput": 0}).code == (
        "InvalidParameterCombination")


@pytest.mark.parametrize("volume_type", ["gp2", "io1", "io2", "st1"])
def test_throughput_is_for_gp3_only(volume_type: str) -> None:
    size = 125 if volume_type == "st1" else 8
    error = _error(ebs_device, {"SnapshotId": SNAP, "VolumeType": volume_type,
                                "Throughput": 125, "VolumeSize": size})
    assert error.code == "InvalidParameterCombination" and volume_type in error.message
    assert ebs_device({"SnapshotId": SNAP, "VolumeType": "gp3",
                       "Throughput": 500}).throughput == 500


def test_delete_on_termination_defaults_to_true_and_can_be_false() -> None:
    assert ebs_device({"SnapshotId": SNAP}).delete_on_termination is True
    assert ebs_device({"SnapshotId": SNAP, "DeleteOnTermination": False}
                      ).delete_on_termination is False
    assert ebs_device({"SnapshotId": SNAP}).no_device is False


def test_the_image_location_is_the_owner_or_alias_and_the_name() -> None:
    assert rules.image_location(OWNER, None, "web") == f"{OWNER}/web"
    assert rules.image_location(OWNER, "amazon", "al2023") == "amazon/al2023"


# ---- launch permissions -------------------------------------------------------------------

def test_permission_items_become_kinds_and_grantees() -> None:
    assert rules.permission_items(None) == []
    assert rules.permission_items([]) == []
    assert rules.permission_items([
        {"UserId": OTHER}, {"Group": "all"}, {"OrganizationArn": ORG},
        {"OrganizationalUnitArn": OU}]) == [
        ("user", OTHER), ("group", "all"), ("organization", ORG), ("ou", OU)]
    assert rules.permission_items([{"UserId": OTHER, "Group": None}]) == [("user", OTHER)]


@pytest.mark.parametrize("item", [{}, {"UserId": None}, {"UserId": OTHER, "Group": "all"},
                                  {"OrganizationArn": ORG, "OrganizationalUnitArn": OU}])
def test_a_permission_names_exactly_one_grantee(item: dict[str, Any]) -> None:
    error = _error(rules.permission_items, [{"UserId": OTHER}, item])
    assert error.code == "InvalidAMIAttributeItemValue" and "exactly one" in error.message


def test_permission_items_are_each_checked() -> None:
    error = _error(rules.permission_items, [{"UserId": OTHER}, {"UserId": "12345"}])
    assert error.code == "InvalidAMIAttributeItemValue" and "12345" in error.message


@pytest.mark.parametrize(("kind", "grantee"), [
    ("user", OTHER), ("user", "000000000000"), ("group", "all"), ("organization", ORG),
    ("organization", "arn:aws:organizations::123456789012:organization/o-"
     + "a" * 32), ("ou", OU)])
def test_a_valid_grant_is_kept(kind: str, grantee: str) -> None:
    assert rules.check_grant(kind, grantee) == (kind, grantee)


@pytest.mark.parametrize(("kind", "grantee", "said"), [
    ("user", "12345678901", "12-digit"), ("user", "1234567890123", "12-digit"),
    ("user", "self", "12-digit"), ("user", "12345678901a", "12-digit"),
    ("group", "All", "only group is all"), ("group", "everyone", "only group is all"),
    ("organization", OU, "organization/o-"),
    ("organization", "arn:aws:organizations::123456789012:organization/o-abc", "organization/o-"),
    ("organization", ORG.upper(), "organization/o-"),
    ("ou", ORG, "ou/o-<id>/ou-<id>"),
    ("ou", "arn:aws:organizations::123456789012:ou/o-abcdefghij/ou-ab12", "ou/o-<id>/ou-<id>"),
])
def test_an_invalid_grant_is_refused(kind: str, grantee: str, said: str) -> None:
    error = _error(rules.check_grant, kind, grantee)
    assert error.code == "InvalidAMIAttributeItemValue"
    assert said in error.message and grantee in error.message


def test_a_permission_is_written_as_botocore_names_it() -> None:
    assert rules.permission_output("user", OTHER) == {"UserId": OTHER}
    assert rules.permission_output("group", "all") == {"Group": "all"}
    assert rules.permission_output("organization", ORG) == {"OrganizationArn": ORG}
    assert rules.permission_output("ou", OU) == {"OrganizationalUnitArn": OU}


def _encrypted_image() -> Image:
    return image(block_devices=[
        BlockDevice("/dev/xvda", snapshot_id=SNAP, volume_size=8, encrypted=False),
        BlockDevice("/dev/sdb", snapshot_id=SNAP2, volume_size=8, encrypted=True)])


def test_an_image_with_an_encrypted_volume_is_never_public() -> None:
    error = _error(rules.check_shareable, _encrypted_image(), [("user", OTHER), rules.GROUP_ALL])
    assert error.code == "InvalidParameterValue" and "encrypted" in error.message
    rules.check_shareable(_encrypted_image(), [("user", OTHER)])  # accounts may be named
    rules.check_shareable(_encrypted_image(), [])
    rules.check_shareable(image(), [rules.GROUP_ALL])  # unencrypted: may be public
    rules.check_shareable(image(block_devices=[BlockDevice("/dev/sdb", virtual_name="ephemeral0")]),
                          [rules.GROUP_ALL])


def test_an_image_with_a_product_code_is_never_public() -> None:
    error = _error(rules.check_shareable, image(), [rules.GROUP_ALL], has_product_code=True)
    assert error.code == "InvalidParameterValue" and "product code" in error.message
    rules.check_shareable(image(), [("user", OTHER)], has_product_code=True)
    rules.check_shareable(image(), [("group", "all")], has_product_code=False)


# ---- deprecation and deregistration -------------------------------------------------------

def test_deprecate_at_is_rounded_to_the_nearest_minute() -> None:
    base = NOW + dt.timedelta(days=1)
    at = rules.deprecation_time
    assert at(base + dt.timedelta(seconds=29, microseconds=999999), NOW) == base
    assert at(base + dt.timedelta(seconds=30), NOW) == base + dt.timedelta(minutes=1)
    assert at(base + dt.timedelta(seconds=59), NOW) == base + dt.timedelta(minutes=1)
    assert at(base - dt.timedelta(seconds=30), NOW) == base
    assert at(base - dt.timedelta(seconds=31), NOW) == base - dt.timedelta(minutes=1)


def test_deprecate_at_may_not_be_in_the_past() -> None:
    assert rules.deprecation_time(NOW, NOW) == NOW
    assert rules.deprecation_time(NOW - dt.timedelta(seconds=29), NOW) == NOW
    error = _error(rules.deprecation_time, NOW - dt.timedelta(seconds=31), NOW)
    assert error.code == "InvalidParameterValue" and "in the past" in error.message


def test_deprecate_at_is_at_most_ten_years_ahead() -> None:
    limit = NOW + dt.timedelta(days=3652)
    assert rules.deprecation_time(limit, NOW) == limit
    error = _error(rules.deprecation_time, limit + dt.timedelta(minutes=1), NOW)
    assert error.code == "InvalidParameterValue" and "10 years" in error.message


def test_protection_is_shown_as_disabled_until_while_a_cooldown_runs() -> None:
    until = NOW + dt.timedelta(hours=3)
    cooling = image(protected_until=until)
    assert rules.protection_shown(cooling, NOW) == "disabled-until-2026-11-22T15:00:00.000Z"
    assert rules.protection_shown(cooling, until) == rules.PROTECTION_OFF
    assert rules.protection_shown(cooling, until + dt.timedelta(seconds=1)) == (
        rules.PROTECTION_OFF)  # a cooldown that ended is not shown
    assert rules.protection_shown(image(deregistration_protection=rules.PROTECTION_ON), NOW) == (
        "enabled-without-cooldown")


def test_an_unprotected_image_may_be_deregistered() -> None:
    rules.check_deregistrable(image(), NOW)
    # Pending (to stop its copy), failed and disabled images too.
    for state in (rules.PENDING, rules.FAILED, rules.DISABLED):
        rules.check_deregistrable(image(state=state), NOW)
    rules.check_deregistrable(image(protected_until=NOW), NOW)  # the cooldown just ended
    rules.check_deregistrable(image(protected_until=NOW - dt.timedelta(seconds=1)), NOW)


def test_a_deregistered_image_is_unavailable() -> None:
    error = _error(rules.check_deregistrable, image("ami-1", state=rules.DEREGISTERED), NOW)
    assert (error.code, error.message) == ("InvalidAMIID.Unavailable",
                                           "The image id '[ami-1]' is no longer available")


@pytest.mark.parametrize("protection", [rules.PROTECTION_ON, rules.PROTECTION_ON_COOLDOWN])
def test_a_protected_image_may_not_be_deregistered(protection: str) -> None:
    error = _error(rules.check_deregistrable, image(deregistration_protection=protection), NOW)
    assert error.code == "OperationNotPermitted" and protection in error.message


def test_an_image_in_its_cooldown_may_not_be_deregistered() -> None:
    error = _error(rules.check_deregistrable,
                   image(protected_until=NOW + dt.timedelta(seconds=1)), NOW)
    assert error.code == "OperationNotPermitted"
    assert "disabled-until-2026-11-22T12:00:01.000Z" in error.message


def test_disabling_protection_with_a_cooldown_protects_for_24_hours() -> None:
    cooldown = image(deregistration_protection=rules.PROTECTION_ON_COOLDOWN)
    assert rules.protection_disabled(cooldown, NOW) == NOW + dt.timedelta(hours=24)


def test_disabling_protection_without_a_cooldown_keeps_a_running_one() -> None:
    plain = rules.PROTECTION_ON
    assert rules.protection_disabled(image(deregistration_protection=plain), NOW) is None
    running = NOW + dt.timedelta(hours=1)
    assert rules.protection_disabled(image(deregistration_protection=plain,
                                           protected_until=running), NOW) == running
    assert rules.protection_disabled(image(protected_until=running), NOW) == running
    assert rules.protection_disabled(image(protected_until=NOW), NOW) is None


# ---- ancestry -----------------------------------------------------------------------------

@contextmanager
def _within(seconds: float) -> Iterator[None]:
    """Fail a walk that does not end (a broken stop condition loops forever) in seconds, not
    at the mutation run's timeout of minutes. A bound on a hang, not a timing assertion."""
    def _stuck(*_: object) -> None:
        raise AssertionError(f"ancestry did not end within {seconds} s")
    previous = signal.signal(signal.SIGALRM, _stuck)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def ancestry(image: Image, source: Callable[[str, str], Image | None]) -> list[Image]:
    with _within(20):
        return rules.ancestry(image, source)


def _lineage(*images: Image) -> Callable[[str, str], Image | None]:
    by_key = {(i.image_id, i.region): i for i in images}
    return lambda image_id, region: by_key.get((image_id, region))


def test_an_image_without_a_source_is_its_own_ancestry() -> None:
    alone = image()
    assert ancestry(alone, lambda *_: pytest.fail("looked for a source")) == [alone]


def test_ancestry_follows_sources_across_regions() -> None:
    root = image("ami-1", region="eu-west-1")
    middle = image("ami-2", region="us-west-2", source_image_id="ami-1",
                   source_image_region="eu-west-1")
    # No source region recorded: the source is in the image's own region.
    leaf = image("ami-3", region="us-west-2", source_image_id="ami-2")
    chain = ancestry(leaf, _lineage(root, middle, leaf))
    assert [i.image_id for i in chain] == ["ami-3", "ami-2", "ami-1"]


def test_ancestry_stops_at_a_missing_record() -> None:
    leaf = image("ami-3", source_image_id="ami-2", source_image_region="eu-west-1")
    assert ancestry(leaf, _lineage(image("ami-2"))) == [leaf]  # ami-2 in us-east-1 only


@pytest.mark.parametrize("alias", ["amazon", "aws-marketplace"])
def test_ancestry_stops_at_an_aws_alias_image(alias: str) -> None:
    root = image("ami-1", owner_alias=alias, source_image_id="ami-0")
    leaf = image("ami-2", source_image_id="ami-1")
    chain = ancestry(leaf, _lineage(image("ami-0"), root, leaf))
    assert [i.image_id for i in chain] == ["ami-2", "ami-1"]


def test_ancestry_goes_past_a_backup_vault_image() -> None:
    root = image("ami-0")
    vault = image("ami-1", owner_alias="aws-backup-vault", source_image_id="ami-0")
    leaf = image("ami-2", source_image_id="ami-1")
    chain = ancestry(leaf, _lineage(root, vault, leaf))
    assert [i.image_id for i in chain] == ["ami-2", "ami-1", "ami-0"]


def test_ancestry_stops_at_a_cycle() -> None:
    first = image("ami-1", source_image_id="ami-3")
    second = image("ami-2", source_image_id="ami-1")
    third = image("ami-3", source_image_id="ami-2")
    chain = ancestry(third, _lineage(first, second, third))
    assert [i.image_id for i in chain] == ["ami-3", "ami-2", "ami-1"]
    looped = image("ami-9", source_image_id="ami-9")
    assert ancestry(looped, _lineage(looped)) == [looped]


@pytest.mark.parametrize(("length", "found"), [(49, 49), (50, 50), (51, 50), (80, 50)])
def test_ancestry_holds_at_most_50_images(length: int, found: int) -> None:
    chain = [image("ami-0")]
    for n in range(1, length):
        chain.append(image(f"ami-{n}", source_image_id=f"ami-{n - 1}"))
    result = ancestry(chain[-1], _lineage(*chain))
    assert [i.image_id for i in result] == [i.image_id for i in reversed(chain)][:found]


# ---- CopyImage ----------------------------------------------------------------------------

def test_copy_tag_specifications_split_by_resource_type() -> None:
    assert rules.copy_tag_specifications(None) == ([], [])
    a = {"ResourceType": "image", "Tags": [{"Key": "a", "Value": "1"}]}
    b = {"ResourceType": "snapshot", "Tags": [{"Key": "b", "Value": "2"}]}
    c = {"ResourceType": "image", "Tags": [{"Key": "c", "Value": "3"}]}
    assert rules.copy_tag_specifications([a, b, c]) == ([a, c], [b])
    assert rules.copy_tag_specifications([b]) == ([], [b])


@pytest.mark.parametrize("kind", ["volume", "instance", None, "Image"])
def test_another_resource_type_fails_the_copy(kind: str | None) -> None:
    error = _error(rules.copy_tag_specifications,
                   [{"ResourceType": "image"}, {"ResourceType": kind}])
    assert error.code == "InvalidParameterValue"
    assert f"'{kind}' is not a valid taggable resource type" in error.message


def test_copied_tags_are_the_owners_user_tags_only() -> None:
    tags = {"Name": "web", "aws:cloudformation:stack": "s", "AWS:x": "y", "awsome": "z",
            "team": "aws:ops"}
    assert rules.copied_tags(image(account_id=OWNER), tags, OWNER) == {
        "Name": "web", "awsome": "z", "team": "aws:ops"}
    assert rules.copied_tags(image(account_id=OTHER), tags, OWNER) == {}
    # Whichever of the two accounts sorts first.
    assert rules.copied_tags(image(account_id=OWNER), tags, OTHER) == {}
    assert rules.copied_tags(image(account_id=fresh(OWNER)), tags, OWNER) == {
        "Name": "web", "awsome": "z", "team": "aws:ops"}


def test_only_an_available_image_is_copied() -> None:
    rules.check_copyable(image(state=rules.AVAILABLE))
    pending = _error(rules.check_copyable, image("ami-1", state=rules.PENDING))
    assert pending.code == "InvalidAMIID.Unavailable" and "currently pending" in pending.message
    for state in (rules.FAILED, rules.DEREGISTERED, rules.DISABLED):
        error = _error(rules.check_copyable, image("ami-1", state=state))
        assert (error.code, error.message) == (
            "InvalidAMIID.Unavailable", f"The image id '[ami-1]' is {state} and cannot be copied.")


@pytest.mark.parametrize(("states", "outcome"), [
    ([], None), (["running"], None), (["completed"], rules.AVAILABLE),
    (["completed", "completed"], rules.AVAILABLE), (["completed", "running"], None),
    (["running", "completed"], None), (["queued", "completed"], None),
    (["failed"], rules.FAILED), (["running", "failed"], rules.FAILED),
    (["failed", "completed"], rules.FAILED), (["completed", "failed"], rules.FAILED),
])
def test_a_copy_ends_when_its_snapshot_copies_say_so(states: list[str], outcome: str | None
                                                    ) -> None:
    assert rules.copy_outcome(states) == outcome
    assert rules.copy_outcome([fresh(state) for state in states]) == outcome


def test_the_copy_quota_error_names_the_quota_and_region() -> None:
    error = rules.copy_quota_exceeded(7, "eu-west-1")
    assert (error.code, error.status) == ("ResourceLimitExceeded", 400)
    assert "at most 7 image copies" in error.message and "eu-west-1" in error.message


# ---- product codes and paravirtual regions ------------------------------------------------

@pytest.mark.parametrize("code", ["a" * 8, "0" * 64, "aw0evgkw8e5c1q413zgy5pjce"])
@pytest.mark.parametrize("kind", rules.PRODUCT_CODE_TYPES)
def test_a_product_code_is_lowercase_letters_and_digits(code: str, kind: str) -> None:
    assert rules.check_product_code(code, kind) == (code, kind)


@pytest.mark.parametrize(("code", "kind"), [
    ("a" * 7, "marketplace"), ("a" * 65, "marketplace"), ("ABCDEFGHIJ", "marketplace"),
    ("abcdefg-hij", "devpay"), ("abcdefghij", "Marketplace"), ("abcdefghij", "other")])
def test_another_product_code_is_refused(code: str, kind: str) -> None:
    with pytest.raises(ValueError, match="product code"):
        rules.check_product_code(code, kind)


def test_another_accounts_marketplace_image_is_not_copied() -> None:
    theirs = image(account_id=OTHER)
    error = _error(rules.check_marketplace_copy, theirs,
                   [("abcdefgh", "devpay"), ("ijklmnop", "marketplace")], OWNER)
    assert (error.code, error.message) == ("InvalidRequest", rules.MARKETPLACE_COPY_REFUSED)
    assert _error(rules.check_marketplace_copy, image(account_id=OWNER),
                  [("ijklmnop", "marketplace")], OTHER).code == "InvalidRequest"
    rules.check_marketplace_copy(theirs, [("abcdefgh", "devpay")], OWNER)
    rules.check_marketplace_copy(theirs, [], OWNER)
    rules.check_marketplace_copy(image(account_id=OWNER), [("ijklmnop", "marketplace")], OWNER)


def test_paravirtual_images_are_refused_in_regions_without_it() -> None:
    without = frozenset({"eu-north-1"})
    error = _error(rules.check_virtualization_in_region, "paravirtual", "eu-north-1", without,
                   "UnsupportedOperation")
    assert error.code == "UnsupportedOperation" and "eu-north-1" in error.message
    rules.check_virtualization_in_region("hvm", "eu-north-1", without, "X")
    rules.check_virtualization_in_region("paravirtual", "us-east-1", without, "X")


# ---- values read from the database or a request -------------------------------------------

def test_rules_compare_read_values_by_equality_not_identity() -> None:
    """Every rule above again, with each compared value an equal string that is another
    object (as the database and the wire give them)."""
    assert rules.check_grant(fresh("user"), fresh(OTHER)) == ("user", OTHER)
    assert rules.check_grant(fresh("group"), fresh("all")) == ("group", "all")
    assert _error(rules.check_grant, fresh("group"), "everyone").code == (
        "InvalidAMIAttributeItemValue")
    for kind, bad in (("user", "x"), ("organization", OU), ("ou", ORG)):
        assert _error(rules.check_grant, fresh(kind), bad).code == "InvalidAMIAttributeItemValue"
    gone = image(state=fresh(rules.DEREGISTERED))
    assert _error(rules.check_deregistrable, gone, NOW).code == "InvalidAMIID.Unavailable"
    rules.check_deregistrable(image(deregistration_protection=fresh(rules.PROTECTION_OFF)), NOW)
    cooldown = image(deregistration_protection=fresh(rules.PROTECTION_ON_COOLDOWN))
    assert rules.protection_disabled(cooldown, NOW) == NOW + rules.COOLDOWN
    spec_image, spec_snapshot = ({"ResourceType": fresh("image")},
                                 {"ResourceType": fresh("snapshot")})
    assert rules.copy_tag_specifications([spec_image, spec_snapshot]) == (
        [spec_image], [spec_snapshot])
    rules.check_copyable(image(state=fresh(rules.AVAILABLE)))
    pending = _error(rules.check_copyable, image(state=fresh(rules.PENDING)))
    assert "currently pending" in pending.message
    rules.check_marketplace_copy(image(account_id=fresh(OWNER)), [("abcdefgh", "marketplace")],
                                 OWNER)
    assert _error(rules.check_marketplace_copy, image(account_id=OTHER),
                  [("abcdefgh", fresh("marketplace"))], OWNER).code == "InvalidRequest"
    assert _error(rules.check_virtualization_in_region, fresh("paravirtual"), "eu-north-1",
                  frozenset({"eu-north-1"}), "UnsupportedOperation").code == (
        "UnsupportedOperation")


def test_a_long_bad_value_is_quoted_up_to_its_limit() -> None:
    """Messages quote what was wrong, cut so that a huge value does not make a huge error."""
    root = "/dev/" + "r" * 100
    error = _error(rules.block_devices, [{"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": SNAP}}],
                   root, Snapshots(snapshot()))
    assert f"'{root[:64]}' is not one of" in error.message
    virtual = "v" * 100
    error = _error(rules.block_devices, [{"DeviceName": "/dev/sdb", "VirtualName": virtual}],
                   "/dev/sdb", Snapshots())
    assert f"'{'v' * 32}' for /dev/sdb" in error.message
    for kind, limit in (("user", 50), ("group", 50), ("organization", 256), ("ou", 256)):
        grantee = "g" * 300
        assert f"'{'g' * limit}':" in _error(rules.check_grant, kind, grantee).message
    with pytest.raises(ValueError, match=f"^product code '{'c' * 70}' must"):
        rules.check_product_code("c" * 100, "marketplace")


def test_names_ids_and_times_from_a_request_compare_by_equality() -> None:
    """The same rules with request values that are equal but other objects: device names
    given twice, the root device named apart from its mapping, a gp3 type, ids in a cycle,
    and a cooldown ending at an equal `now`."""
    error = _error(rules.block_devices, [
        {"DeviceName": fresh("/dev/xvda"), "Ebs": {"SnapshotId": SNAP}},
        {"DeviceName": fresh("/dev/xvda"), "NoDevice": ""}], "/dev/xvda", Snapshots(snapshot()))
    assert error.code == "InvalidBlockDeviceMapping" and "more than one" in error.message
    [root] = rules.block_devices([{"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": SNAP}}],
                                 fresh("/dev/xvda"), Snapshots(snapshot()))
    assert root.snapshot_id == SNAP
    assert ebs_device({"SnapshotId": SNAP, "VolumeType": fresh("gp3"),
                       "Throughput": 125}).throughput == 125
    first = image("ami-1", source_image_id=fresh("ami-2"))
    second = image(fresh("ami-2"), source_image_id=fresh("ami-1"))
    by_id = {"ami-1": first, "ami-2": second}
    chain = ancestry(second, lambda image_id, _region: dataclasses.replace(
        by_id[image_id], image_id=fresh(image_id)))
    assert [i.image_id for i in chain] == ["ami-2", "ami-1"]
    equal_now = NOW + dt.timedelta(0)
    assert equal_now == NOW and equal_now is not NOW
    ended = image(protected_until=equal_now)
    rules.check_deregistrable(ended, NOW)
    assert rules.protection_shown(ended, NOW) == rules.PROTECTION_OFF
    assert rules.protection_disabled(ended, NOW) is None
    assert rules.protection_disabled(image(protected_until=NOW - dt.timedelta(seconds=1)),
                                     NOW) is None
