"""Machine images (AMIs): what a registration may say, who sees and may use an image, and
its lifecycle rules (deprecation, deregistration protection, ancestry).

An EBS-backed image is a record naming snapshots: its block device mappings. Registered
from completed snapshots it is `available` at once; a copy (CopyImage) starts `pending` and
ends `available` or `failed` with a reason. Deregistering keeps the record as
`deregistered`: it vanishes from every Describe, a second deregistration is told so, and
the ancestry of its copies still passes through it.

Who sees an image: its owner, accounts named in its launchPermission, and everyone when the
group `all` is named. Organization and OU grants are kept and shown, but snapferry has no
AWS Organizations, so no account is a member of one and they grant nobody. Anyone else is
told the image does not exist.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from snapferry.domain import ids
from snapferry.domain import volumes as volume_rules
from snapferry.domain.snapshots import COMPLETED, Snapshot
from snapferry.errors import ServiceError

PENDING, AVAILABLE, FAILED, DEREGISTERED, DISABLED = (
    "pending", "available", "failed", "deregistered", "disabled")
ARCHITECTURES = ("i386", "x86_64", "arm64", "x86_64_mac", "arm64_mac")
VIRTUALIZATION_TYPES = ("hvm", "paravirtual")
BOOT_MODES = ("legacy-bios", "uefi", "uefi-preferred")
# RegisterImage's documented defaults for EBS-backed images.
DEFAULT_ARCHITECTURE, DEFAULT_VIRTUALIZATION = "i386", "paravirtual"
MAX_DESCRIPTION = 255
MAX_UEFI_DATA = 64000
MAX_ANCESTRY = 50
ROOT_ALIASES = ("amazon", "aws-marketplace")  # ancestry stops at their images
OWNER_ALIASES = ("amazon", "aws-marketplace", "aws-backup-vault")
# The internal accounts that own images an operator imports under an alias (`snapferry
# images import`): AWS's own ids, so code naming the owner by id (`owners =
# ["137112412989"]` for Amazon Linux) finds them as well. No access key exists for them.
ALIAS_ACCOUNTS = {"amazon": "137112412989", "aws-marketplace": "679593333241"}

# Deregistration protection, as DescribeImages and DescribeImageAttribute show it.
PROTECTION_OFF = "disabled"
PROTECTION_ON = "enabled-without-cooldown"
PROTECTION_ON_COOLDOWN = "enabled-with-cooldown"
COOLDOWN = dt.timedelta(hours=24)
MAX_DEPRECATION_AHEAD = dt.timedelta(days=3652)  # "10 years from now"

# Names: 3-128 characters of letters, digits and ( ) [ ] space . / - ' @ _
_NAME = re.compile(r"[A-Za-z0-9()\[\] ./\-'@_]{3,128}")
NAME_MESSAGE = ("AMI names must be between 3 and 128 characters long, and may contain letters, "
                "numbers, '(', ')', '.', '-', '/' and '_'")
_DEVICE = re.compile(r"(/dev/)?(sd[a-z]{1,2}[0-9]{0,2}|xvd[a-z]{1,2}[0-9]{0,2}|"
                     r"hd[a-z][0-9]{0,2}|nvme[0-9]{1,2}n[0-9]{1,2})")
_EPHEMERAL = re.compile(r"ephemeral([0-9]|1[0-9]|2[0-3])")
_ACCOUNT = re.compile(r"\d{12}")
_ORGANIZATION = re.compile(r"arn:aws:organizations::\d{12}:organization/o-[a-z0-9]{10,32}")
_OU = re.compile(
    r"arn:aws:organizations::\d{12}:ou/o-[a-z0-9]{10,32}/ou-[a-z0-9]{4,32}-[a-z0-9]{8,32}")
# Launch permission kinds, and the botocore member each is written as.
PERMISSION_MEMBERS = {"user": "UserId", "group": "Group", "organization": "OrganizationArn",
                      "ou": "OrganizationalUnitArn"}
GROUP_ALL = ("group", "all")


@dataclass
class BlockDevice:
    device_name: str
    snapshot_id: str | None = None
    volume_size: int | None = None
    volume_type: str | None = None
    delete_on_termination: bool | None = None
    encrypted: bool | None = None
    kms_key_id: str | None = None
    iops: int | None = None
    throughput: int | None = None
    virtual_name: str | None = None
    no_device: bool = False


@dataclass
class Image:
    image_id: str
    account_id: str
    region: str
    name: str
    state: str
    creation_date: dt.datetime
    image_location: str
    architecture: str
    virtualization_type: str
    root_device_name: str
    image_type: str = "machine"
    root_device_type: str = "ebs"
    description: str | None = None
    state_reason_code: str | None = None
    state_reason_message: str | None = None
    owner_alias: str | None = None
    ena_support: bool | None = None
    sriov_net_support: str | None = None
    boot_mode: str | None = None
    tpm_support: str | None = None
    imds_support: str | None = None
    uefi_data: str | None = None
    kernel_id: str | None = None
    ramdisk_id: str | None = None
    source_image_id: str | None = None
    source_image_region: str | None = None
    copy_job_id: str | None = None
    client_token: str | None = None
    request_digest: str | None = None
    deprecation_time: dt.datetime | None = None
    deregistration_protection: str = PROTECTION_OFF
    protected_until: dt.datetime | None = None
    deregistered_at: dt.datetime | None = None
    block_devices: list[BlockDevice] = field(default_factory=list)

    def deprecated(self, now: dt.datetime) -> bool:
        return self.deprecation_time is not None and self.deprecation_time <= now


# -- errors -------------------------------------------------------------------------------

def not_found(image_ids: list[str] | str) -> ServiceError:
    """AWS's own text, brackets included; several ids are named together."""
    wanted = [image_ids] if isinstance(image_ids, str) else image_ids
    if len(wanted) == 1:
        return ServiceError("InvalidAMIID.NotFound", f"The image id '[{wanted[0]}]' does not exist")
    return ServiceError("InvalidAMIID.NotFound",
                        f"The image ids '[{', '.join(wanted)}]' do not exist")


def unavailable(image: Image) -> ServiceError:
    if image.state == PENDING:
        return ServiceError("InvalidAMIID.Unavailable",
                            f"The AMI ID '{image.image_id}' is currently pending and may not be "
                            "used for this operation")
    return ServiceError("InvalidAMIID.Unavailable",
                        f"The image id '[{image.image_id}]' is no longer available")


def not_owner(image_id: str) -> ServiceError:
    """Another account's image that the caller may see (shared or public) but not change."""
    return ServiceError("AuthFailure", f"Not authorized for image:{image_id}", status=401)


# -- registration -------------------------------------------------------------------------

def check_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise ServiceError("InvalidAMIName.Malformed", NAME_MESSAGE)
    return name


def duplicate_name(name: str) -> ServiceError:
    return ServiceError("InvalidAMIName.Duplicate",
                        f"AMI name {name} is already in use by AMI; choose another name.")


def check_description(description: str | None) -> str | None:
    if description is not None and len(description) > MAX_DESCRIPTION:
        raise ServiceError("InvalidParameterValue",
                           f"The description is longer than {MAX_DESCRIPTION} characters.")
    return description


def _one_of(value: str | None, allowed: tuple[str, ...], parameter: str) -> str | None:
    if value is not None and value not in allowed:
        raise ServiceError("InvalidParameterValue",
                           f"Value ({value}) for parameter {parameter} is invalid; valid values: "
                           f"{', '.join(allowed)}.")
    return value


def registration_attributes(params: dict[str, Any]) -> dict[str, Any]:
    """The image's own attributes from RegisterImage, checked, defaults applied."""
    if params.get("BillingProducts"):
        raise ServiceError("InvalidParameterValue", "BillingProducts can be set only by AWS "
                           "Marketplace sellers; snapferry has none.")
    for parameter in ("KernelId", "RamdiskId"):
        if params.get(parameter):
            raise ServiceError("InvalidParameterValue", f"{parameter} names a kernel or ramdisk "
                               "image; snapferry has none, so leave it out.")
    uefi = params.get("UefiData")
    if uefi is not None and len(uefi) > MAX_UEFI_DATA:
        raise ServiceError("InvalidParameterValue",
                           f"UefiData is longer than {MAX_UEFI_DATA} characters.")
    return {
        "name": check_name(params["Name"]),
        "description": check_description(params.get("Description")),
        "architecture": _one_of(params.get("Architecture"), ARCHITECTURES, "architecture")
        or DEFAULT_ARCHITECTURE,
        "virtualization_type": _one_of(params.get("VirtualizationType"), VIRTUALIZATION_TYPES,
                                       "virtualizationType") or DEFAULT_VIRTUALIZATION,
        "boot_mode": _one_of(params.get("BootMode"), BOOT_MODES, "bootMode"),
        "tpm_support": _one_of(params.get("TpmSupport"), ("v2.0",), "tpmSupport"),
        "imds_support": _one_of(params.get("ImdsSupport"), ("v2.0",), "imdsSupport"),
        "sriov_net_support": _one_of(params.get("SriovNetSupport"), ("simple",),
                                     "sriovNetSupport"),
        "ena_support": params.get("EnaSupport"),
        "uefi_data": uefi,
    }


def check_device_name(name: str | None) -> str:
    if not name or not _DEVICE.fullmatch(name):
        raise ServiceError("InvalidBlockDeviceMapping",
                           f"Invalid device name '{(name or '')[:64]}': use a name such as "
                           "/dev/sda1, /dev/xvda or /dev/sdf.")
    return name


def block_devices(
    mappings: list[dict[str, Any]],
    root_device_name: str | None,
    snapshot: Callable[[str], Snapshot],
) -> list[BlockDevice]:
    """The block device mappings of a new EBS-backed image. `snapshot(id)` returns a snapshot
    the caller may use, or raises its NotFound. Volume size defaults to the snapshot's and may
    not be smaller; Encrypted and the key are the snapshot's, never the request's."""
    if not mappings:
        raise ServiceError("MissingParameter", "An EBS-backed image needs BlockDeviceMappings; "
                           "registering from an ImageLocation is not yet supported.")
    if not root_device_name:
        raise ServiceError("MissingParameter", "RootDeviceName is required: name the device of "
                           "the mapping that holds the root volume, e.g. /dev/xvda.")
    devices: list[BlockDevice] = []
    for mapping in mappings:
        name = check_device_name(mapping.get("DeviceName"))
        if any(device.device_name == name for device in devices):
            raise ServiceError("InvalidBlockDeviceMapping",
                               f"The device '{name}' is used in more than one block device "
                               "mapping.")
        devices.append(_block_device(name, mapping, snapshot))
    root = next((d for d in devices if d.device_name == root_device_name), None)
    if root is None:
        raise ServiceError("InvalidBlockDeviceMapping",
                           f"The root device name '{root_device_name[:64]}' is not one of the "
                           "block device mappings.")
    if root.snapshot_id is None:
        raise ServiceError("InvalidBlockDeviceMapping",
                           f"The root device {root_device_name} must be an EBS volume from a "
                           "snapshot (Ebs.SnapshotId).")
    return devices


def _block_device(name: str, mapping: dict[str, Any],
                  snapshot: Callable[[str], Snapshot]) -> BlockDevice:
    ebs, virtual, no_device = mapping.get("Ebs"), mapping.get("VirtualName"), "NoDevice" in mapping
    if sum((ebs is not None, virtual is not None, no_device)) != 1:
        raise ServiceError("InvalidBlockDeviceMapping",
                           f"The mapping of {name} must give exactly one of Ebs, VirtualName "
                           "and NoDevice.")
    if no_device:
        return BlockDevice(device_name=name, no_device=True)
    if virtual is not None:
        if not _EPHEMERAL.fullmatch(virtual):
            raise ServiceError("InvalidBlockDeviceMapping",
                               f"Invalid virtual name '{virtual[:32]}' for {name}: use "
                               "ephemeral0 to ephemeral23.")
        return BlockDevice(device_name=name, virtual_name=virtual)
    return _ebs_device(name, ebs, snapshot)


def _ebs_device(name: str, ebs: dict[str, Any],
                snapshot: Callable[[str], Snapshot]) -> BlockDevice:
    for unsupported in ("OutpostArn", "AvailabilityZone", "AvailabilityZoneId",
                        "VolumeInitializationRate", "EbsCardIndex"):
        if ebs.get(unsupported) is not None:
            raise ServiceError("InvalidBlockDeviceMapping",
                               f"Ebs.{unsupported} cannot be given to RegisterImage.")
    if ebs.get("KmsKeyId"):
        raise ServiceError("InvalidBlockDeviceMapping",
                           "Ebs.KmsKeyId cannot be given to RegisterImage: a volume from a "
                           "snapshot is encrypted as the snapshot is.")
    volume_type = ebs.get("VolumeType") or volume_rules.DEFAULT_TYPE
    size = ebs.get("VolumeSize")
    snapshot_id = ebs.get("SnapshotId")
    if snapshot_id:
        if ebs.get("Encrypted") is not None:
            raise ServiceError("InvalidBlockDeviceMapping",
                               f"Omit Ebs.Encrypted for {name}: a volume from snapshot "
                               f"{snapshot_id} is encrypted exactly when the snapshot is.")
        source = snapshot(ids.check_id("snap", snapshot_id))
        if source.state != COMPLETED:
            raise ServiceError("IncorrectState",
                               f"Snapshot '{source.snapshot_id}' is not 'completed'.")
        if size is not None and size < source.volume_size:
            raise ServiceError("InvalidBlockDeviceMapping",
                               f"Volume of {size}GiB is smaller than snapshot "
                               f"'{source.snapshot_id}', expect size >= {source.volume_size}GiB.")
        size = size if size is not None else source.volume_size
        encrypted, kms_key_id = source.encrypted, source.kms_key_id
    else:
        if size is None:
            raise ServiceError("InvalidBlockDeviceMapping",
                               f"The mapping of {name} needs Ebs.SnapshotId or Ebs.VolumeSize.")
        encrypted, kms_key_id = bool(ebs.get("Encrypted")), None
    volume_rules.check_type_and_size(volume_type, size)
    iops, throughput = ebs.get("Iops"), ebs.get("Throughput")
    if iops is not None and volume_type not in ("io1", "io2", "gp3"):
        raise ServiceError("InvalidParameterCombination",
                           f"Iops is not supported for volume type {volume_type}.")
    if throughput is not None and volume_type != "gp3":
        raise ServiceError("InvalidParameterCombination",
                           f"Throughput is supported only for gp3 volumes, not {volume_type}.")
    return BlockDevice(
        device_name=name, snapshot_id=snapshot_id or None, volume_size=size,
        volume_type=volume_type,
        delete_on_termination=ebs.get("DeleteOnTermination", True),
        encrypted=encrypted, kms_key_id=kms_key_id if encrypted else None,
        iops=iops, throughput=throughput,
    )


def image_location(account_id: str, owner_alias: str | None, name: str) -> str:
    """What AWS shows as an EBS-backed image's ImageLocation: owner (or alias) / name."""
    return f"{owner_alias or account_id}/{name}"


# -- launch permissions --------------------------------------------------------------------

def permission_items(items: list[dict[str, Any]] | None) -> list[tuple[str, str]]:
    """LaunchPermission Add/Remove items as (kind, grantee), each checked."""
    grants: list[tuple[str, str]] = []
    for item in items or ():
        given = [(kind, item[member]) for kind, member in PERMISSION_MEMBERS.items()
                 if item.get(member) is not None]
        if len(given) != 1:
            raise ServiceError("InvalidAMIAttributeItemValue", "Each launch permission names "
                               "exactly one of UserId, Group, OrganizationArn and "
                               "OrganizationalUnitArn.")
        grants.append(check_grant(*given[0]))
    return grants


def check_grant(kind: str, grantee: str) -> tuple[str, str]:
    if kind == "user" and not _ACCOUNT.fullmatch(grantee):
        raise ServiceError("InvalidAMIAttributeItemValue",
                           f"Invalid user id '{grantee[:50]}': expected a 12-digit account id.")
    if kind == "group" and grantee != "all":
        raise ServiceError("InvalidAMIAttributeItemValue",
                           f"Invalid group '{grantee[:50]}': the only group is all.")
    if kind == "organization" and not _ORGANIZATION.fullmatch(grantee):
        raise ServiceError("InvalidAMIAttributeItemValue",
                           f"Invalid organization ARN '{grantee[:256]}': expected "
                           "arn:aws:organizations::<account>:organization/o-<id>.")
    if kind == "ou" and not _OU.fullmatch(grantee):
        raise ServiceError("InvalidAMIAttributeItemValue",
                           f"Invalid organizational unit ARN '{grantee[:256]}': expected "
                           "arn:aws:organizations::<account>:ou/o-<id>/ou-<id>.")
    return kind, grantee


def permission_output(kind: str, grantee: str) -> dict[str, str]:
    return {PERMISSION_MEMBERS[kind]: grantee}


def check_shareable(image: Image, add: list[tuple[str, str]], has_product_code: bool = False
                    ) -> None:
    """Images with encrypted volumes are never public (nobody else could use the keys), nor
    are images with a product code (AWS: Marketplace images cannot be made public)."""
    if GROUP_ALL in add and any(d.encrypted for d in image.block_devices):
        raise ServiceError("InvalidParameterValue",
                           f"{image.image_id} has encrypted volumes, so it cannot be made "
                           "public; share it with accounts instead.")
    if GROUP_ALL in add and has_product_code:
        raise ServiceError("InvalidParameterValue",
                           f"{image.image_id} has an AWS Marketplace product code, so it "
                           "cannot be made public.")


# -- lifecycle -----------------------------------------------------------------------------

def deprecation_time(requested: dt.datetime, now: dt.datetime) -> dt.datetime:
    """DeprecateAt rounded to the nearest minute; not in the past, at most 10 years ahead."""
    rounded = (requested + dt.timedelta(seconds=30)).replace(second=0, microsecond=0)
    if rounded < now:
        raise ServiceError("InvalidParameterValue",
                           f"DeprecateAt {rounded.isoformat()} is in the past; give a future "
                           "time.")
    if rounded > now + MAX_DEPRECATION_AHEAD:
        raise ServiceError("InvalidParameterValue",
                           "DeprecateAt is more than 10 years from now.")
    return rounded


def protection_shown(image: Image, now: dt.datetime) -> str:
    """`disabled-until-<time>` while a cooldown runs after protection was disabled."""
    if image.protected_until is not None and image.protected_until > now:
        return f"disabled-until-{image.protected_until.strftime('%Y-%m-%dT%H:%M:%S.000Z')}"
    return image.deregistration_protection


def check_deregistrable(image: Image, now: dt.datetime) -> None:
    if image.state == DEREGISTERED:
        raise unavailable(image)
    if image.deregistration_protection != PROTECTION_OFF or (
            image.protected_until is not None and image.protected_until > now):
        raise ServiceError("OperationNotPermitted",
                           f"The image {image.image_id} has deregistration protection "
                           f"({protection_shown(image, now)}); call "
                           "DisableImageDeregistrationProtection first.")


def protection_disabled(image: Image, now: dt.datetime) -> dt.datetime | None:
    """When protection that was enabled with a cooldown stops protecting after a disable."""
    if image.deregistration_protection == PROTECTION_ON_COOLDOWN:
        return now + COOLDOWN
    return image.protected_until if image.protected_until and image.protected_until > now \
        else None


def ancestry(image: Image, source: Callable[[str, str], Image | None]) -> list[Image]:
    """The image, its source, the source's source... to the root: an image with no source,
    one owned by an AWS alias, one whose record is gone, or the 50th. `source(id, region)`
    finds deregistered images too, so a lineage outlives the images in its middle."""
    chain = [image]
    while len(chain) < MAX_ANCESTRY:
        last = chain[-1]
        if last.source_image_id is None or last.owner_alias in ROOT_ALIASES:
            break
        parent = source(last.source_image_id, last.source_image_region or last.region)
        if parent is None or any(p.image_id == parent.image_id for p in chain):
            break
        chain.append(parent)
    return chain


# -- CopyImage -----------------------------------------------------------------------------

# AWS's StateReason for a copy that failed (observed text; the code is AWS's usual form).
COPY_FAILED_CODE = "Server.InternalError"
COPY_FAILED_MESSAGE = "Copy image failed with an internal error"
COPY_STOPPED = "The image copy was stopped: its target image was deregistered."
COPY_SIBLING_FAILED = "Another snapshot copy of the same image copy failed."
STORAGE_FORBIDDEN = "You do not have permission to access the storage of this ami"


def copy_tag_specifications(specifications: list[dict[str, Any]] | None
                            ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """CopyImage's TagSpecifications: `image` ones tag the AMI, `snapshot` ones every new
    snapshot; any other resource type fails the request."""
    image, snapshot = [], []
    for spec in specifications or ():
        kind = spec.get("ResourceType")
        if kind not in ("image", "snapshot"):
            raise ServiceError("InvalidParameterValue",
                               f"'{kind}' is not a valid taggable resource type for this "
                               "operation; use 'image' or 'snapshot'.")
        if kind == "image":
            image.append(spec)
        elif kind == "snapshot":
            snapshot.append(spec)
    return image, snapshot


def copied_tags(source: Image, tags: dict[str, str], account_id: str) -> dict[str, str]:
    """CopyImageTags: your own user tags of your own image; never `aws:` tags, never the
    tags of another account's image (they are that account's)."""
    if source.account_id != account_id:
        return {}
    return {key: value for key, value in tags.items() if not key.lower().startswith("aws:")}


def check_copyable(source: Image) -> None:
    if source.state != AVAILABLE:
        raise unavailable(source) if source.state == PENDING else ServiceError(
            "InvalidAMIID.Unavailable",
            f"The image id '[{source.image_id}]' is {source.state} and cannot be copied.")


def copy_outcome(job_states: list[str]) -> str | None:
    """The image copy's state once its snapshot copies say so: `failed` as soon as one
    failed, `available` when all completed, None while any is still open."""
    if any(state == "failed" for state in job_states):
        return FAILED
    if job_states and all(state == "completed" for state in job_states):
        return AVAILABLE
    return None


def copy_quota_exceeded(quota: int, region: str) -> ServiceError:
    return ServiceError("ResourceLimitExceeded",
                        f"You have exceeded an Amazon EC2 resource limit: at most {quota} image "
                        f"copies can be in progress for your account in {region}. Wait for "
                        "some to finish.")


# -- Marketplace product codes and paravirtual regions ---------------------------------------

PRODUCT_CODE_TYPES = ("marketplace", "devpay")
_PRODUCT_CODE = re.compile(r"[a-z0-9]{8,64}")
# AWS's observed answer to copying another account's Marketplace image.
MARKETPLACE_COPY_REFUSED = "Images from AWS Marketplace cannot be copied to another AWS account."


def check_product_code(code: str, kind: str) -> tuple[str, str]:
    """An operator's product code: lowercase letters and digits (AWS's look like
    `aw0evgkw8e5c1q413zgy5pjce`), of type marketplace or devpay."""
    if not _PRODUCT_CODE.fullmatch(code):
        raise ValueError(f"product code {code[:70]!r} must be 8-64 lowercase letters and digits")
    if kind not in PRODUCT_CODE_TYPES:
        raise ValueError(f"product code type {kind!r} must be one of "
                         f"{', '.join(PRODUCT_CODE_TYPES)}")
    return code, kind


def check_marketplace_copy(source: Image, codes: list[tuple[str, str]], account_id: str
                           ) -> None:
    """Another account's image carrying a Marketplace code (its own, or inherited by copies
    its owner made) may not be copied: the licence stays with the subscriber's instances."""
    if source.account_id != account_id and any(kind == "marketplace" for _, kind in codes):
        raise ServiceError("InvalidRequest", MARKETPLACE_COPY_REFUSED)


def check_virtualization_in_region(virtualization_type: str, region: str,
                                   without_paravirtual: frozenset[str], code: str) -> None:
    """Regions launched since 2014 or so run no paravirtual (PV) guests; an operator names
    them (`--no-paravirtual-regions`), and PV images are refused there."""
    if virtualization_type == "paravirtual" and region in without_paravirtual:
        raise ServiceError(code, f"Paravirtual (PV) images are not supported in {region}; "
                           "only hvm images can be registered or copied there.")
