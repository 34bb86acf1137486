"""RegisterImage, DescribeImages, DeregisterImage, the image attributes, deprecation,
deregistration protection and GetImageAncestry. The rules are in domain/images.py."""

from __future__ import annotations

from typing import Any

from sqlalchemy.exc import IntegrityError

from snapferry.domain import ids
from snapferry.domain import images as rules
from snapferry.domain import snapshots as snapshot_rules
from snapferry.domain.images import Image
from snapferry.domain.keys import AWS as AWS_MANAGED
from snapferry.domain.snapshots import Snapshot
from snapferry.domain.tags import as_list, tags_for
from snapferry.errors import ServiceError
from snapferry.services.context import Output, RequestContext
from snapferry.services.ec2.common import (
    STREAM_PAGE,
    checked_ids,
    decode_next_token,
    page_size,
    paged,
    unpaged,
    user_ids,
)
from snapferry.services.s3.common import object_files
from snapferry.storage import copies as job_store
from snapferry.storage import image_copies, manifests
from snapferry.storage import images as store
from snapferry.storage import snapshots as snapshot_store
from snapferry.storage.collector import collect
from snapferry.storage.tagstore import delete_tags, set_tags, tags_of
from snapferry.wire.shapes import iso8601

MAX_MODIFICATIONS = 500


# -- outputs -------------------------------------------------------------------------------

def _device_output(device: rules.BlockDevice, pending: bool = False) -> Output:
    """While a copy is pending, AWS leaves its mappings' SnapshotId out (tools read the new
    snapshot ids once the image is available)."""
    if device.no_device:
        return {"DeviceName": device.device_name, "NoDevice": ""}
    if device.virtual_name is not None:
        return {"DeviceName": device.device_name, "VirtualName": device.virtual_name}
    ebs = {
        "SnapshotId": None if pending else device.snapshot_id,
        "VolumeSize": device.volume_size,
        "VolumeType": device.volume_type,
        "DeleteOnTermination": device.delete_on_termination,
        "Encrypted": device.encrypted,
        "KmsKeyId": device.kms_key_id,
        "Iops": device.iops,
        "Throughput": device.throughput,
    }
    return {"DeviceName": device.device_name,
            "Ebs": {key: value for key, value in ebs.items() if value is not None}}


def _codes_output(codes: list[tuple[str, str]]) -> list[Output]:
    return [{"ProductCodeId": code, "ProductCodeType": kind} for code, kind in codes]


def image_output(ctx: RequestContext, image: Image, tags: dict[str, str], public: bool,
                 codes: list[tuple[str, str]]) -> Output:
    output: Output = {
        "ImageId": image.image_id,
        "ImageLocation": image.image_location,
        "State": image.state,
        "OwnerId": image.account_id,
        "CreationDate": iso8601(image.creation_date),
        "Public": public,
        "ProductCodes": _codes_output(codes),
        "Architecture": image.architecture,
        "ImageType": image.image_type,
        "KernelId": image.kernel_id,
        "RamdiskId": image.ramdisk_id,
        "ImageOwnerAlias": image.owner_alias,
        "Name": image.name,
        "Description": image.description,
        "RootDeviceName": image.root_device_name,
        "RootDeviceType": image.root_device_type,
        "BlockDeviceMappings": [_device_output(d, image.state == rules.PENDING)
                                for d in image.block_devices],
        "VirtualizationType": image.virtualization_type,
        "Hypervisor": "xen",
        "EnaSupport": image.ena_support,
        "SriovNetSupport": image.sriov_net_support,
        "BootMode": image.boot_mode,
        "TpmSupport": image.tpm_support,
        "ImdsSupport": image.imds_support,
        "PlatformDetails": "Linux/UNIX",
        "UsageOperation": "RunInstances",
        "DeprecationTime": iso8601(image.deprecation_time) if image.deprecation_time else None,
        "DeregistrationProtection": rules.protection_shown(image, ctx.clock.now()),
        "SourceImageId": image.source_image_id,
        "SourceImageRegion": image.source_image_region,
        "Tags": as_list(tags) if tags else None,
    }
    if image.state_reason_code or image.state_reason_message:
        output["StateReason"] = {"Code": image.state_reason_code,
                                 "Message": image.state_reason_message}
    return {key: value for key, value in output.items() if value is not None}


# -- lookups -------------------------------------------------------------------------------

def _visible_image(ctx: RequestContext, conn: Any, image_id: str) -> Image:
    """An image the caller may see in this region, or InvalidAMIID.NotFound. A deregistered
    image of the caller's own is InvalidAMIID.Unavailable; others' are simply not there."""
    image = store.get_image(conn, ctx.region, ids.check_id("ami", image_id))
    if image is None or not (image.account_id == ctx.account_id
                             or (image.state != rules.DEREGISTERED
                                 and store.visible(conn, image, ctx.account_id))):
        raise rules.not_found(image_id)
    if image.state == rules.DEREGISTERED:
        raise rules.unavailable(image)
    return image


def _owned_image(ctx: RequestContext, conn: Any, image_id: str) -> Image:
    """Your own image: NotFound when you cannot see it, AuthFailure when it is another's."""
    image = _visible_image(ctx, conn, image_id)
    if image.account_id != ctx.account_id:
        raise rules.not_owner(image.image_id)
    return image


def _usable_snapshot(ctx: RequestContext, conn: Any):  # type: ignore[no-untyped-def]
    """RegisterImage may name your own snapshots and those you may create volumes from."""
    def lookup(snapshot_id: str) -> Snapshot:
        snapshot = snapshot_store.get_snapshot(conn, ctx.region, snapshot_id)
        if snapshot is None or not snapshot_store.can_restore(conn, snapshot, ctx.account_id):
            raise snapshot_rules.not_found(snapshot_id)
        return snapshot
    return lookup


# -- RegisterImage -------------------------------------------------------------------------

def register_image(ctx: RequestContext, params: dict[str, Any]) -> Output:
    if params.get("ImageLocation"):
        from snapferry.services.ec2.bundles import register_from_manifest

        return register_from_manifest(ctx, params)  # an instance-store image
    attributes = rules.registration_attributes(params)
    rules.check_virtualization_in_region(attributes["virtualization_type"], ctx.region,
                                         ctx.settings.images.no_paravirtual_regions,
                                         "InvalidParameterValue")
    tags = tags_for(params.get("TagSpecifications"), "image")
    name = attributes["name"]
    with ctx.storage.engine.begin() as conn:
        devices = rules.block_devices(params.get("BlockDeviceMappings") or [],
                                      params.get("RootDeviceName"),
                                      _usable_snapshot(ctx, conn))
        if store.name_in_use(conn, ctx.account_id, ctx.region, name):
            raise rules.duplicate_name(name)
        ctx.authorize()
        image = Image(
            image_id=ids.new_id("ami"),
            account_id=ctx.account_id,
            region=ctx.region,
            state=rules.AVAILABLE,  # every snapshot is completed: nothing to wait for
            creation_date=ctx.clock.now(),
            image_location=rules.image_location(ctx.account_id, None, name),
            root_device_name=params["RootDeviceName"],
            block_devices=devices,
            **attributes,
        )
        try:
            with conn.begin_nested():
                store.insert_image(conn, image)
        except IntegrityError as error:  # a concurrent registration took the name
            raise rules.duplicate_name(name) from error
        set_tags(conn, image.image_id, "image", ctx.account_id, ctx.region, tags)
    return {"ImageId": image.image_id}


# -- DescribeImages ------------------------------------------------------------------------

def describe_images(ctx: RequestContext, params: dict[str, Any]) -> Output:
    wanted = checked_ids(params.get("ImageIds"), "ami")
    owners = user_ids(params.get("Owners"), "owner", ("self", *rules.OWNER_ALIASES))
    executable = user_ids(params.get("ExecutableUsers"), "user", ("self", "all"))
    limit = page_size(params)
    if wanted and limit is not None:
        raise ServiceError("InvalidParameterCombination",
                           "MaxResults cannot be combined with ImageIds.")
    after = decode_next_token(params, "ami")
    ctx.authorize()
    now = ctx.clock.now()

    def page(limit: int | None, after: str | None) -> tuple[list[Output], str | None]:
        with ctx.storage.engine.connect() as conn:
            found, last = store.describe_images(
                conn, ctx.account_id, ctx.region, now, wanted, owners, executable,
                params.get("Filters"), bool(params.get("IncludeDeprecated")),
                bool(params.get("IncludeDisabled")), limit, after)
            if wanted:
                _refuse_unknown(ctx, conn, wanted, {image.image_id for image in found})
            image_ids = [image.image_id for image in found]
            tags, public = tags_of(conn, image_ids), store.public_ids(conn, image_ids)
            codes = store.product_codes(conn, image_ids)
        return [image_output(ctx, image, tags[image.image_id], image.image_id in public,
                             codes[image.image_id]) for image in found], last

    if limit is None and not wanted:  # every image: streamed, page by page
        return unpaged("Images", *page(STREAM_PAGE, after), lambda last: page(STREAM_PAGE, last))
    return paged("Images", *page(limit, after))


def _refuse_unknown(ctx: RequestContext, conn: Any, wanted: list[str], found: set[str]) -> None:
    """Ids that were never images here, or that the caller cannot see, are NotFound; ids
    filtered out, and deregistered images, are simply absent (as AWS answers)."""
    missing = [image_id for image_id in dict.fromkeys(wanted) if image_id not in found]
    if not missing:
        return
    unknown = []
    for image_id in missing:
        image = store.get_image(conn, ctx.region, image_id)
        if image is None or (image.state != rules.DEREGISTERED
                             and not store.visible(conn, image, ctx.account_id)):
            unknown.append(image_id)
    if unknown:
        raise rules.not_found(unknown)


# -- DeregisterImage -----------------------------------------------------------------------

def deregister_image(ctx: RequestContext, params: dict[str, Any]) -> Output:
    now = ctx.clock.now()
    doomed_blocks: list[str] = []
    doomed_files: list[str] = []  # S3 object files of a stopped instance-store image copy
    with ctx.storage.engine.begin() as conn:
        image = store.get_image(conn, ctx.region, ids.check_id("ami", params["ImageId"]))
        if image is None or (image.account_id != ctx.account_id
                             and (image.state == rules.DEREGISTERED
                                  or not store.visible(conn, image, ctx.account_id))):
            raise rules.not_found(params["ImageId"])
        if image.account_id != ctx.account_id:
            raise rules.not_owner(image.image_id)
        rules.check_deregistrable(image, now)
        ctx.authorize()
        if image.state == rules.PENDING and image.source_image_id:
            # Stopping a pending copy: its snapshot copies end and what they wrote goes.
            doomed_blocks.extend(image_copies.remove_snapshots(conn, image, now,
                                                               rules.COPY_STOPPED))
            if image.root_device_type == "instance-store":  # its bundle copy, and objects
                doomed_files.extend(image_copies.remove_bundle(conn, image, now,
                                                               rules.COPY_STOPPED))
        store.update_image(conn, image.image_id, state=rules.DEREGISTERED, deregistered_at=now)
        store.remove_permissions(conn, image.image_id)
        delete_tags(conn, image.image_id)
        output: Output = {"Return": True}
        if params.get("DeleteAssociatedSnapshots"):
            results = []
            for snapshot_id in dict.fromkeys(d.snapshot_id for d in image.block_devices
                                             if d.snapshot_id):
                code = _delete_associated(ctx, conn, snapshot_id, doomed_blocks)
                results.append({"SnapshotId": snapshot_id, "ReturnCode": code})
            output["DeleteSnapshotResults"] = results
    collect(ctx.storage.engine, ctx.storage.blocks, doomed_blocks)
    for file_id in doomed_files:
        object_files(ctx).delete(file_id)
    return output


def _delete_associated(ctx: RequestContext, conn: Any, snapshot_id: str,
                       doomed_blocks: list[str]) -> str:
    """Delete one of a deregistered image's snapshots, if it may go: AWS's return codes."""
    snapshot = snapshot_store.get_snapshot(conn, ctx.region, snapshot_id)
    if snapshot is None:
        return "client-error"  # deleted already
    if snapshot.account_id != ctx.account_id:
        return "missing-permissions"  # another account's snapshot, shared with the caller
    if store.image_using(conn, snapshot_id) or job_store.copying_from(conn, snapshot_id):
        return "skipped"  # another image, or a copy in progress, still uses it
    doomed_blocks.extend(manifests.drop_manifest(conn, snapshot_id))
    delete_tags(conn, snapshot_id)
    snapshot_store.delete_snapshot(conn, snapshot_id)
    return "success"


# -- attributes ----------------------------------------------------------------------------

def _value(value: Any) -> Output:
    return {"Value": value} if value is not None else {}


def describe_image_attribute(ctx: RequestContext, params: dict[str, Any]) -> Output:
    attribute = params["Attribute"]
    if attribute == "blockDeviceMapping":
        # Deprecated: AWS answers this attribute with AuthFailure; DescribeImages has them.
        raise ServiceError("AuthFailure", "Unauthorized attempt to access restricted resource: "
                           "read block device mappings with DescribeImages.", status=401)
    with ctx.storage.engine.connect() as conn:
        image = _owned_image(ctx, conn, params["ImageId"])
        ctx.authorize()
        grants = store.permissions(conn, image.image_id)
        codes = store.product_codes(conn, [image.image_id])[image.image_id]
    now = ctx.clock.now()
    values: dict[str, tuple[str, Any]] = {
        "description": ("Description", _value(image.description)),
        "kernel": ("KernelId", _value(image.kernel_id)),
        "ramdisk": ("RamdiskId", _value(image.ramdisk_id)),
        "launchPermission": ("LaunchPermissions",
                             [rules.permission_output(*grant) for grant in grants]),
        "productCodes": ("ProductCodes", _codes_output(codes)),
        "sriovNetSupport": ("SriovNetSupport", _value(image.sriov_net_support)),
        "bootMode": ("BootMode", _value(image.boot_mode)),
        "tpmSupport": ("TpmSupport", _value(image.tpm_support)),
        "uefiData": ("UefiData", _value(image.uefi_data)),
        "lastLaunchedTime": ("LastLaunchedTime", {}),  # nothing is launched here
        "imdsSupport": ("ImdsSupport", _value(image.imds_support)),
        "deregistrationProtection": ("DeregistrationProtection",
                                     _value(rules.protection_shown(image, now))),
    }
    if attribute not in values:
        raise ServiceError("InvalidRequest", f"Value ({attribute[:64]}) for parameter attribute "
                           f"is invalid. Unknown attribute; valid: {', '.join(values)}, "
                           "blockDeviceMapping.")
    member, value = values[attribute]
    return {"ImageId": image.image_id, member: value}


def _launch_permission_changes(params: dict[str, Any]
                               ) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    structured = params.get("LaunchPermission") or {}
    add = rules.permission_items(structured.get("Add"))
    remove = rules.permission_items(structured.get("Remove"))
    legacy = ([("user", v) for v in params.get("UserIds") or ()]
              + [("group", v) for v in params.get("UserGroups") or ()]
              + [("organization", v) for v in params.get("OrganizationArns") or ()]
              + [("ou", v) for v in params.get("OrganizationalUnitArns") or ()])
    if legacy:
        operation = params.get("OperationType")
        if operation not in ("add", "remove"):
            raise ServiceError("MissingParameter", "UserId, UserGroup, OrganizationArn and "
                               "OrganizationalUnitArn need OperationType add or remove.")
        (add if operation == "add" else remove).extend(rules.check_grant(*g) for g in legacy)
    if add and remove:
        raise ServiceError("InvalidParameterCombination",
                           "You may add or remove launch permissions, but not both at once.")
    if not add and not remove:
        raise ServiceError("MissingParameter",
                           "Name at least one launch permission to add or remove.")
    if len(add) + len(remove) > MAX_MODIFICATIONS:
        raise ServiceError("InvalidParameterValue",
                           f"At most {MAX_MODIFICATIONS} launch permissions can change per "
                           "request.")
    return add, remove


def modify_image_attribute(ctx: RequestContext, params: dict[str, Any]) -> Output:
    attribute = params.get("Attribute")
    if params.get("ProductCodes") or attribute == "productCodes":
        raise ServiceError("InvalidParameterValue",
                           "Product codes cannot be changed with ModifyImageAttribute.")
    if attribute is None:  # the structured forms name their attribute themselves
        given = [name for name, member in (("description", "Description"),
                                           ("imdsSupport", "ImdsSupport"),
                                           ("launchPermission", "LaunchPermission"))
                 if params.get(member) is not None]
        if params.get("UserIds") or params.get("UserGroups") or params.get(
                "OrganizationArns") or params.get("OrganizationalUnitArns"):
            given.append("launchPermission")
        if len(set(given)) != 1:
            raise ServiceError("InvalidParameterCombination", "Change exactly one attribute: "
                               "Description, ImdsSupport or LaunchPermission.")
        attribute = given[0]
    changes: dict[str, Any] = {}
    add: list[tuple[str, str]] = []
    remove: list[tuple[str, str]] = []
    if attribute == "description":
        value = (params.get("Description") or {}).get("Value", params.get("Value"))
        changes["description"] = rules.check_description(value)
    elif attribute == "imdsSupport":
        value = (params.get("ImdsSupport") or {}).get("Value", params.get("Value"))
        if value != "v2.0":
            raise ServiceError("InvalidParameterValue", f"Value ({value}) for imdsSupport is "
                               "invalid: the only value is v2.0, and it cannot be undone.")
        changes["imds_support"] = value
    elif attribute == "launchPermission":
        add, remove = _launch_permission_changes(params)
    else:
        raise ServiceError("InvalidParameterValue", f"Value ({str(attribute)[:64]}) for "
                           "parameter attribute is invalid: ModifyImageAttribute changes "
                           "description, imdsSupport or launchPermission.")
    with ctx.storage.engine.begin() as conn:
        image = _owned_image(ctx, conn, params["ImageId"])
        if image.state == rules.PENDING:
            raise rules.unavailable(image)
        if add:
            _check_shareable(ctx, conn, image, add)
        ctx.authorize()
        if changes:
            store.update_image(conn, image.image_id, **changes)
        if add:
            store.add_permissions(conn, image.image_id, add)
        if remove:
            store.remove_permissions(conn, image.image_id, remove)
    return {}


def _check_shareable(ctx: RequestContext, conn: Any, image: Image,
                     add: list[tuple[str, str]]) -> None:
    """Never public when encrypted; never shared when a volume's key is the AWS managed one
    (no other account could use it)."""
    rules.check_shareable(image, add,
                          bool(store.product_codes(conn, [image.image_id])[image.image_id]))
    assert ctx.keyring is not None
    for device in image.block_devices:
        if device.encrypted and device.kms_key_id:
            key = ctx.keyring.resolve(conn, device.kms_key_id, ctx.account_id, ctx.region)
            if key.key_manager == AWS_MANAGED:
                raise ServiceError("InvalidParameterValue",
                                   f"{image.image_id} has a volume encrypted with the AWS "
                                   f"managed key {key.arn}, so it cannot be shared: copy it "
                                   "under a customer managed key and share the copy.")


def reset_image_attribute(ctx: RequestContext, params: dict[str, Any]) -> Output:
    if params["Attribute"] != "launchPermission":
        raise ServiceError("InvalidParameterValue",
                           f"Value ({params['Attribute'][:64]}) for parameter attribute is "
                           "invalid: only launchPermission can be reset.")
    with ctx.storage.engine.begin() as conn:
        image = _owned_image(ctx, conn, params["ImageId"])
        ctx.authorize()
        store.remove_permissions(conn, image.image_id)
    return {}


# -- deprecation and deregistration protection ----------------------------------------------

def enable_image_deprecation(ctx: RequestContext, params: dict[str, Any]) -> Output:
    when = rules.deprecation_time(params["DeprecateAt"], ctx.clock.now())
    with ctx.storage.engine.begin() as conn:
        image = _owned_image(ctx, conn, params["ImageId"])
        ctx.authorize()
        store.update_image(conn, image.image_id, deprecation_time=when)
    return {"Return": True}


def disable_image_deprecation(ctx: RequestContext, params: dict[str, Any]) -> Output:
    with ctx.storage.engine.begin() as conn:
        image = _owned_image(ctx, conn, params["ImageId"])
        ctx.authorize()
        store.update_image(conn, image.image_id, deprecation_time=None)
    return {"Return": True}


def enable_deregistration_protection(ctx: RequestContext, params: dict[str, Any]) -> Output:
    state = rules.PROTECTION_ON_COOLDOWN if params.get("WithCooldown") else rules.PROTECTION_ON
    with ctx.storage.engine.begin() as conn:
        image = _owned_image(ctx, conn, params["ImageId"])
        ctx.authorize()
        store.update_image(conn, image.image_id, deregistration_protection=state,
                           protected_until=None)
    return {"Return": "true"}


def disable_deregistration_protection(ctx: RequestContext, params: dict[str, Any]) -> Output:
    with ctx.storage.engine.begin() as conn:
        image = _owned_image(ctx, conn, params["ImageId"])
        ctx.authorize()
        store.update_image(conn, image.image_id, deregistration_protection=rules.PROTECTION_OFF,
                           protected_until=rules.protection_disabled(image, ctx.clock.now()))
    return {"Return": "true"}


# -- GetImageAncestry ----------------------------------------------------------------------

def get_image_ancestry(ctx: RequestContext, params: dict[str, Any]) -> Output:
    with ctx.storage.engine.connect() as conn:
        image = _visible_image(ctx, conn, params["ImageId"])
        ctx.authorize()
        chain = rules.ancestry(image, lambda image_id, region: store.get_image(
            conn, region, image_id))
    entries = []
    for link in chain:
        entry = {"CreationDate": link.creation_date, "ImageId": link.image_id,
                 "ImageOwnerAlias": link.owner_alias, "SourceImageId": link.source_image_id,
                 "SourceImageRegion": link.source_image_region}
        entries.append({key: value for key, value in entry.items() if value is not None})
    return {"ImageAncestryEntries": entries}


HANDLERS = {
    "RegisterImage": register_image,
    "DescribeImages": describe_images,
    "DeregisterImage": deregister_image,
    "DescribeImageAttribute": describe_image_attribute,
    "ModifyImageAttribute": modify_image_attribute,
    "ResetImageAttribute": reset_image_attribute,
    "EnableImageDeprecation": enable_image_deprecation,
    "DisableImageDeprecation": disable_image_deprecation,
    "EnableImageDeregistrationProtection": enable_deregistration_protection,
    "DisableImageDeregistrationProtection": disable_deregistration_protection,
    "GetImageAncestry": get_image_ancestry,
}
