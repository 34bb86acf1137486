"""CopyImage: answered in the destination region (the endpoint's), checked at once, then a
`pending` image and one snapshot copy job per backing snapshot written in one transaction.
The copy engine carries the snapshots; the transaction finishing the last of them makes the
image `available` (or `failed`): storage/image_copies.py."""

from __future__ import annotations

from typing import Any

from sqlalchemy.exc import IntegrityError

from snapferry.domain import bundle_copies as copy_bundle
from snapferry.domain import copies as copy_rules
from snapferry.domain import ids, regions
from snapferry.domain import images as rules
from snapferry.domain import snapshots as snapshot_rules
from snapferry.domain.encryption import kms_key_needs_encrypted
from snapferry.domain.idempotency import check_same_request, request_digest
from snapferry.domain.images import BlockDevice, Image
from snapferry.domain.snapshots import Snapshot
from snapferry.domain.tags import tags_for
from snapferry.errors import ServiceError
from snapferry.services.context import Output, RequestContext
from snapferry.services.ec2 import bundle_copies
from snapferry.services.ec2.copies import queue_copy
from snapferry.storage import images as store
from snapferry.storage import snapshots as snapshot_store
from snapferry.storage.tagstore import set_tags, tags_of

# What the copy keeps of its source: "an identical but distinct" image.
_KEPT = ("architecture", "virtualization_type", "root_device_name", "image_type",
         "root_device_type", "ena_support", "sriov_net_support", "boot_mode", "tpm_support",
         "imds_support", "uefi_data")


def _source_region(params: dict[str, Any]) -> str:
    region = params["SourceRegion"]
    if not regions.is_region(region):
        raise ServiceError(
            "InvalidRegion",
            f"The specified AWS Region is not valid ('{region[:50]}'). For copying a snapshot "
            "or image, specify the source Region using its Region code, for example, "
            "us-west-2.")
    return region


def _backing_snapshots(ctx: RequestContext, conn: Any, source: Image) -> dict[str, Snapshot]:
    """Every snapshot the source's mappings name, each one the caller may create volumes
    from (own, or createVolumePermission): else the whole request is refused."""
    found: dict[str, Snapshot] = {}
    for device in source.block_devices:
        if not device.snapshot_id or device.snapshot_id in found:
            continue
        snapshot = snapshot_store.get_snapshot(conn, source.region, device.snapshot_id)
        if snapshot is None or not snapshot_store.can_restore(conn, snapshot, ctx.account_id):
            raise ServiceError("InvalidRequest", rules.STORAGE_FORBIDDEN)
        if snapshot.state != snapshot_rules.COMPLETED:
            raise ServiceError("IncorrectState",
                               f"Snapshot '{snapshot.snapshot_id}' of {source.image_id} is not "
                               "'completed'.")
        found[snapshot.snapshot_id] = snapshot
    return found


def copy_image(ctx: RequestContext, params: dict[str, Any]) -> Output:
    source_region = _source_region(params)
    source_id = ids.check_id("ami", params["SourceImageId"])
    name = rules.check_name(params["Name"])
    description = rules.check_description(params.get("Description"))
    encrypted, kms_key = params.get("Encrypted"), params.get("KmsKeyId")
    kms_key_needs_encrypted(encrypted, kms_key)
    image_specs, snapshot_specs = rules.copy_tag_specifications(params.get("TagSpecifications"))
    image_tags = tags_for(image_specs, "image")
    snapshot_tags = tags_for(snapshot_specs, "snapshot")
    duration = params.get("SnapshotCopyCompletionDurationMinutes")
    copy_rules.check_duration(duration)
    if (params.get("DestinationOutpostArn") or params.get("DestinationAvailabilityZone")
            or params.get("DestinationAvailabilityZoneId")):
        raise ServiceError("UnsupportedOperation", "snapferry has no Outposts or Local Zones: "
                           "copies go to the region of the endpoint you call.")
    token, digest = params.get("ClientToken"), request_digest(params)
    with ctx.storage.engine.begin() as conn:
        if token:
            # Before every other check: the same request again names the same image, even
            # once the copy finished (and its name is taken by that very image).
            existing = store.by_client_token(conn, ctx.account_id, ctx.region, token)
            if existing is not None:
                check_same_request(existing.request_digest, digest, "CopyImage")
                ctx.authorize()
                return {"ImageId": existing.image_id}
        source = store.get_image(conn, source_region, source_id)
        if source is None or source.state == rules.DEREGISTERED or not store.visible(
                conn, source, ctx.account_id):
            raise rules.not_found(source_id)
        rules.check_copyable(source)
        bundle = None
        if source.root_device_type == "instance-store":
            # Its bundle goes through the regional amis-for-... bucket (bundle_copies.py).
            bundle_copies.check_request(source, params)
            bundle = bundle_copies.source_files(ctx, conn, source)
        codes = store.product_codes(conn, [source.image_id])[source.image_id]
        rules.check_marketplace_copy(source, codes, ctx.account_id)
        rules.check_virtualization_in_region(source.virtualization_type, ctx.region,
                                             ctx.settings.images.no_paravirtual_regions,
                                             "UnsupportedOperation")
        backing = _backing_snapshots(ctx, conn, source) if bundle is None else {}
        if store.name_in_use(conn, ctx.account_id, ctx.region, name):
            raise rules.duplicate_name(name)
        quota = ctx.settings.copies.image_quota
        if store.copies_in_progress(conn, ctx.account_id, ctx.region) >= quota:
            raise rules.copy_quota_exceeded(quota, ctx.region)
        ctx.authorize()
        image_id = ids.new_id("ami")
        location = rules.image_location(ctx.account_id, None, name)
        if bundle is not None:
            target = bundle_copies.regional_bucket(ctx, conn)
            location = f"{target}/{copy_bundle.target_key(image_id, bundle[2][-1])}"
        copies = {
            snapshot_id: queue_copy(
                ctx, conn, snapshot,
                description=f"Copied for DestinationAmi {image_id} from SourceAmi "
                            f"{source.image_id} for SourceSnapshot {snapshot_id}",
                encrypted=encrypted, kms_key=kms_key, tags=snapshot_tags, duration=duration)
            for snapshot_id, snapshot in backing.items()}
        image = Image(
            image_id=image_id,
            account_id=ctx.account_id,
            region=ctx.region,
            name=name,
            description=description,
            state=rules.PENDING,
            creation_date=ctx.clock.now(),
            image_location=location,
            source_image_id=source.image_id,
            source_image_region=source.region,
            client_token=token,
            request_digest=digest,
            block_devices=[_copied_device(d, copies) for d in source.block_devices],
            **{attribute: getattr(source, attribute) for attribute in _KEPT},
        )
        try:
            with conn.begin_nested():
                store.insert_image(conn, image)
        except IntegrityError as error:  # a concurrent request took the name
            raise rules.duplicate_name(name) from error
        if bundle is not None:
            bundle_copies.queue_bundle_copy(ctx, conn, source, image_id, bundle[2])
        store.add_product_codes(conn, image_id, codes)  # a copy keeps its product codes
        tags = dict(image_tags)
        if params.get("CopyImageTags"):
            own = rules.copied_tags(source, tags_of(conn, [source.image_id])[source.image_id],
                                    ctx.account_id)
            tags = {**own, **image_tags}
        set_tags(conn, image_id, "image", ctx.account_id, ctx.region, tags)
    ctx.wake_copiers()
    return {"ImageId": image_id}


def _copied_device(device: BlockDevice, copies: dict[str, Snapshot]) -> BlockDevice:
    if not device.snapshot_id:
        return BlockDevice(**{**device.__dict__})
    copy = copies[device.snapshot_id]
    # Encrypted and the key are settled when the copy starts; set again when it completes.
    return BlockDevice(**{**device.__dict__, "snapshot_id": copy.snapshot_id,
                          "encrypted": copy.encrypted, "kms_key_id": None})


HANDLERS = {"CopyImage": copy_image}
