"""CreateSnapshot, DescribeSnapshots, DeleteSnapshot, and the createVolumePermission attribute."""

from __future__ import annotations

from typing import Any

from snapferry.domain import ids
from snapferry.domain import snapshots as rules
from snapferry.domain.blocks import BLOCK_SIZE
from snapferry.domain.images import ALIAS_ACCOUNTS
from snapferry.domain.keys import AWS as AWS_MANAGED
from snapferry.domain.snapshots import Snapshot
from snapferry.domain.tags import tags_for
from snapferry.errors import ServiceError
from snapferry.services.context import Output, RequestContext
from snapferry.services.ec2.common import (
    ACCOUNT_ID,
    STREAM_PAGE,
    checked_ids,
    decode_next_token,
    page_size,
    paged,
    refuse_unknown,
    snapshot_output,
    unpaged,
    user_ids,
)
from snapferry.storage import copies as job_store
from snapferry.storage import images as image_store
from snapferry.storage import manifests
from snapferry.storage import snapshots as store
from snapferry.storage import volumes as volume_store
from snapferry.storage.collector import collect
from snapferry.storage.tagstore import delete_tags, set_tags, tags_of

ATTRIBUTE = "createVolumePermission"
MAX_MODIFICATIONS = 500


def create_snapshot(ctx: RequestContext, params: dict[str, Any]) -> Output:
    volume_id = ids.check_id("vol", params["VolumeId"])
    if params.get("OutpostArn") or params.get("Location") == "local":
        raise ServiceError("UnsupportedOperation", "snapferry has no Outposts or Local Zones: "
                           "snapshots are stored in the region.")
    tags = tags_for(params.get("TagSpecifications"), "snapshot")
    with ctx.storage.engine.begin() as conn:
        volume = volume_store.get_volume(conn, ctx.account_id, ctx.region, volume_id)
        if volume is None:
            raise ServiceError("InvalidVolume.NotFound",
                               f"The volume '{volume_id}' does not exist.")
        ctx.authorize()
        snapshot = Snapshot(
            snapshot_id=ids.new_id("snap"),
            account_id=ctx.account_id,
            region=ctx.region,
            volume_id=volume.volume_id,
            volume_size=volume.size,
            state=rules.PENDING,
            progress=0,
            start_time=ctx.clock.now(),
            description=params.get("Description", ""),
            encrypted=volume.encrypted,
            kms_key_id=volume.kms_key_id,
            lineage_id=volume.lineage_id,
            origin=rules.ORIGIN_VOLUME,
        )
        store.insert_snapshot(conn, snapshot)
        # The volume's blocks at this moment become the snapshot's, shared, in this same
        # transaction; the background thread then marks the snapshot completed.
        manifests.copy_manifest(conn, volume.volume_id, snapshot.snapshot_id)
        snapshot.full_size_bytes = manifests.block_total(conn, snapshot.snapshot_id) * BLOCK_SIZE
        store.update_snapshot(conn, snapshot.snapshot_id,
                              full_size_bytes=snapshot.full_size_bytes)
        set_tags(conn, snapshot.snapshot_id, "snapshot", ctx.account_id, ctx.region, tags)
    ctx.wake_background()
    return snapshot_output(snapshot, tags)


def describe_snapshots(ctx: RequestContext, params: dict[str, Any]) -> Output:
    wanted = checked_ids(params.get("SnapshotIds"), "snap")
    owners = user_ids(params.get("OwnerIds"), "owner", ("self", "amazon"))
    restorable = user_ids(params.get("RestorableByUserIds"), "user", ("self", "all"))
    limit = page_size(params)
    if wanted and limit is not None:
        raise ServiceError("InvalidParameterCombination",
                           "MaxResults cannot be combined with SnapshotIds.")
    after = decode_next_token(params, "snap")
    ctx.authorize()
    if owners:  # `amazon`: the snapshots behind images an operator imported
        owners = [ALIAS_ACCOUNTS["amazon"] if owner == "amazon" else owner for owner in owners]

    def page(limit: int | None, after: str | None) -> tuple[list[Output], str | None]:
        with ctx.storage.engine.connect() as conn:
            found, last = store.describe_snapshots(
                conn, ctx.account_id, ctx.region, wanted, owners, restorable,
                params.get("Filters"), limit, after)
            if wanted and not params.get("Filters") and not owners and not restorable:
                refuse_unknown(wanted, {s.snapshot_id for s in found}, rules.not_found)
            tags = tags_of(conn, [s.snapshot_id for s in found])
        return [snapshot_output(s, tags[s.snapshot_id]) for s in found], last

    if limit is None and not wanted:  # every snapshot: streamed, page by page
        return unpaged("Snapshots", *page(STREAM_PAGE, after),
                       lambda last: page(STREAM_PAGE, last))
    return paged("Snapshots", *page(limit, after))


def owned_snapshot(ctx: RequestContext, conn: Any, snapshot_id: str) -> Snapshot:
    """Your own snapshot in this region, or InvalidSnapshot.NotFound (also for others')."""
    snapshot = store.get_snapshot(conn, ctx.region, ids.check_id("snap", snapshot_id))
    if snapshot is None or snapshot.account_id != ctx.account_id:
        raise rules.not_found(snapshot_id)
    return snapshot


def delete_snapshot(ctx: RequestContext, params: dict[str, Any]) -> Output:
    with ctx.storage.engine.begin() as conn:
        snapshot = owned_snapshot(ctx, conn, params["SnapshotId"])
        if job_store.copying_from(conn, snapshot.snapshot_id):
            raise ServiceError("InvalidSnapshot.InUse",
                               f"The snapshot {snapshot.snapshot_id} is in use by a snapshot copy "
                               "in progress; delete it when the copy has finished.")
        image_id = image_store.image_using(conn, snapshot.snapshot_id)
        if image_id:
            raise ServiceError("InvalidSnapshot.InUse", f"The snapshot {snapshot.snapshot_id} "
                               f"is currently in use by {image_id}")
        ctx.authorize()
        # Deleting a copy still in progress cancels it: its worker's next checkpoint fails.
        job_store.cancel(conn, snapshot.snapshot_id, ctx.clock.now(),
                         "Cancelled: the destination snapshot was deleted.")
        doomed = manifests.drop_manifest(conn, snapshot.snapshot_id)
        delete_tags(conn, snapshot.snapshot_id)
        store.delete_snapshot(conn, snapshot.snapshot_id)
    collect(ctx.storage.engine, ctx.storage.blocks, doomed)
    return {}


def _check_attribute(params: dict[str, Any], allow_product_codes: bool = False) -> str:
    attribute = params.get("Attribute")
    allowed = (ATTRIBUTE, "productCodes") if allow_product_codes else (ATTRIBUTE,)
    if attribute not in allowed:
        raise ServiceError("InvalidParameterValue",
                           f"Value ({attribute}) for parameter attribute is invalid; use "
                           f"{' or '.join(allowed)}.")
    return attribute


def _grants(items: list[dict[str, Any]] | None) -> list[tuple[str, str]]:
    grants = []
    for item in items or ():
        if item.get("Group") is not None:
            if item["Group"] != "all":
                raise ServiceError("InvalidParameterValue",
                                   f"Group '{item['Group']}' is invalid; the only group is all.")
            grants.append(("group", "all"))
        if item.get("UserId") is not None:
            if not ACCOUNT_ID.fullmatch(item["UserId"]):
                raise ServiceError("InvalidAMIAttributeItemValue",
                                   f"Invalid user id '{item['UserId'][:50]}': expected a 12-digit "
                                   "account id.")
            grants.append(("user", item["UserId"]))
    return grants


def modify_snapshot_attribute(ctx: RequestContext, params: dict[str, Any]) -> Output:
    if params.get("Attribute", ATTRIBUTE) != ATTRIBUTE:
        raise ServiceError("InvalidParameterValue",
                           "Only the createVolumePermission attribute can be modified.")
    structured = params.get("CreateVolumePermission") or {}
    add, remove = _grants(structured.get("Add")), _grants(structured.get("Remove"))
    legacy = [("user", u) for u in params.get("UserIds") or ()] + [
        ("group", g) for g in params.get("GroupNames") or ()]
    if legacy:
        operation = params.get("OperationType")
        if operation not in ("add", "remove"):
            raise ServiceError("MissingParameter",
                               "UserId/UserGroup need OperationType add or remove.")
        _grants([{"UserId": v} if k == "user" else {"Group": v} for k, v in legacy])
        (add if operation == "add" else remove).extend(legacy)
    if add and remove:
        raise ServiceError("InvalidParameterCombination",
                           "You may add or remove permissions, but not both in one request.")
    if not add and not remove:
        raise ServiceError("MissingParameter",
                           "Name at least one account or group to add or remove.")
    if len(add) + len(remove) > MAX_MODIFICATIONS:
        raise ServiceError("InvalidParameterValue",
                           f"At most {MAX_MODIFICATIONS} permissions can change per request.")
    with ctx.storage.engine.begin() as conn:
        snapshot = owned_snapshot(ctx, conn, params["SnapshotId"])
        if add and snapshot.encrypted:
            _check_shareable(ctx, conn, snapshot, add)
        ctx.authorize()
        if add:
            store.add_permissions(conn, snapshot.snapshot_id, add)
        else:
            store.remove_permissions(conn, snapshot.snapshot_id, remove)
    return {}


def _check_shareable(ctx: RequestContext, conn: Any, snapshot: Snapshot,
                     add: list[tuple[str, str]]) -> None:
    """Encrypted snapshots are never public, and never shared when their key is the AWS
    managed one (other accounts could not use it)."""
    if ("group", "all") in add:
        raise ServiceError("InvalidParameterValue", "Encrypted snapshots cannot be made public.")
    assert ctx.keyring is not None and snapshot.kms_key_id is not None
    key = ctx.keyring.resolve(conn, snapshot.kms_key_id, ctx.account_id, ctx.region)
    if key.key_manager == AWS_MANAGED:
        raise ServiceError("InvalidParameterValue",
                           f"{snapshot.snapshot_id} is encrypted with the AWS managed key "
                           f"{key.arn}, so it cannot be shared: copy it under a customer "
                           "managed key and share the copy.")


def describe_snapshot_attribute(ctx: RequestContext, params: dict[str, Any]) -> Output:
    attribute = _check_attribute(params, allow_product_codes=True)
    with ctx.storage.engine.connect() as conn:
        snapshot = owned_snapshot(ctx, conn, params["SnapshotId"])
        ctx.authorize()
        grants = store.permissions(conn, snapshot.snapshot_id)
    if attribute == "productCodes":
        return {"SnapshotId": snapshot.snapshot_id, "ProductCodes": []}
    return {
        "SnapshotId": snapshot.snapshot_id,
        "CreateVolumePermissions": [
            {"Group": grantee} if kind == "group" else {"UserId": grantee}
            for kind, grantee in grants
        ],
    }


def reset_snapshot_attribute(ctx: RequestContext, params: dict[str, Any]) -> Output:
    _check_attribute(params)
    with ctx.storage.engine.begin() as conn:
        snapshot = owned_snapshot(ctx, conn, params["SnapshotId"])
        ctx.authorize()
        store.remove_permissions(conn, snapshot.snapshot_id)
    return {}


def modify_snapshot_tier(ctx: RequestContext, params: dict[str, Any]) -> Output:
    # Refused before authorize(): not even a DryRun of it would succeed.
    with ctx.storage.engine.connect() as conn:
        snapshot = owned_snapshot(ctx, conn, params["SnapshotId"])
    raise rules.archiving_refused(snapshot.snapshot_id, params.get("StorageTier", "archive"))


def restore_snapshot_tier(ctx: RequestContext, params: dict[str, Any]) -> Output:
    with ctx.storage.engine.connect() as conn:
        snapshot = owned_snapshot(ctx, conn, params["SnapshotId"])
    raise rules.not_archived(snapshot.snapshot_id)


HANDLERS = {
    "CreateSnapshot": create_snapshot,
    "DescribeSnapshots": describe_snapshots,
    "DeleteSnapshot": delete_snapshot,
    "ModifySnapshotAttribute": modify_snapshot_attribute,
    "DescribeSnapshotAttribute": describe_snapshot_attribute,
    "ResetSnapshotAttribute": reset_snapshot_attribute,
    "ModifySnapshotTier": modify_snapshot_tier,
    "RestoreSnapshotTier": restore_snapshot_tier,
}
