"""CreateVolume, DescribeVolumes, DeleteVolume."""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

from snapferry.domain import ids, regions
from snapferry.domain import snapshots as snapshot_rules
from snapferry.domain import volumes as rules
from snapferry.domain.tags import as_list, tags_for
from snapferry.domain.volumes import Volume
from snapferry.errors import ServiceError
from snapferry.services.context import Output, RequestContext
from snapferry.services.ec2.common import (
    checked_ids,
    decode_next_token,
    encode_next_token,
    page_size,
    refuse_unknown,
)
from snapferry.storage import manifests
from snapferry.storage import snapshots as snapshot_store
from snapferry.storage import volumes as store
from snapferry.storage.collector import collect
from snapferry.storage.tagstore import delete_tags, set_tags, tags_of


def volume_output(volume: Volume, tags: dict[str, str]) -> Output:
    zone_ids = {zone.name: zone.zone_id for zone in regions.zones(regions.Region(volume.region))}
    output: Output = {
        "VolumeId": volume.volume_id,
        "Size": volume.size,
        "SnapshotId": volume.snapshot_id,
        "AvailabilityZone": volume.availability_zone,
        "AvailabilityZoneId": zone_ids.get(volume.availability_zone),
        "State": volume.state,
        "CreateTime": volume.create_time,
        "Attachments": [],
        "Encrypted": volume.encrypted,
        "KmsKeyId": volume.kms_key_id,
        "VolumeType": volume.volume_type,
        "Iops": volume.iops,
        "Throughput": volume.throughput,
        "MultiAttachEnabled": volume.multi_attach,
        "OwnerId": volume.account_id,
        "VolumeArn": f"arn:aws:ec2:{volume.region}:{volume.account_id}:volume/{volume.volume_id}",
        "Tags": as_list(tags) if tags else None,
    }
    return {key: value for key, value in output.items() if value is not None}


def _zone(ctx: RequestContext, params: dict[str, Any]) -> str:
    name, zone_id = params.get("AvailabilityZone"), params.get("AvailabilityZoneId")
    if (name is None) == (zone_id is None):
        raise ServiceError("InvalidParameterCombination",
                           "Give exactly one of AvailabilityZone and AvailabilityZoneId.")
    for zone in regions.zones(regions.Region(ctx.region)):
        if name == zone.name or zone_id == zone.zone_id:
            return zone.name
    raise ServiceError("InvalidZone.NotFound",
                       f"The zone '{name or zone_id}' does not exist in region {ctx.region}.")


def create_volume(ctx: RequestContext, params: dict[str, Any]) -> Output:
    zone = _zone(ctx, params)
    if params.get("Encrypted") or params.get("KmsKeyId"):
        raise ServiceError("UnsupportedOperation", "snapferry does not encrypt volumes yet: "
                           "encryption arrives with its KMS.")
    if params.get("OutpostArn"):
        raise ServiceError("UnsupportedOperation", "snapferry has no Outposts.")
    volume_type = params.get("VolumeType") or rules.DEFAULT_TYPE
    snapshot_id = params.get("SnapshotId")
    if snapshot_id:
        ids.check_id("snap", snapshot_id)
    tags = tags_for(params.get("TagSpecifications"), "volume")
    digest = hashlib.sha256(json.dumps(
        {k: v for k, v in params.items() if k not in ("ClientToken", "DryRun")},
        sort_keys=True, default=str).encode()).hexdigest()
    token = params.get("ClientToken")
    with ctx.storage.engine.begin() as conn:
        snapshot = None
        if snapshot_id:
            snapshot = snapshot_store.get_snapshot(conn, ctx.region, snapshot_id)
            if snapshot is None or not snapshot_store.can_restore(conn, snapshot, ctx.account_id):
                raise snapshot_rules.not_found(snapshot_id)
            if snapshot.state != snapshot_rules.COMPLETED:
                raise ServiceError("IncorrectState",
                                   f"Snapshot '{snapshot_id}' is not 'completed'.")
        size = rules.size_for(params.get("Size"), snapshot.volume_size if snapshot else None,
                              snapshot_id)
        rules.check_type_and_size(volume_type, size)
        ctx.authorize()
        if token:
            existing = store.by_client_token(conn, ctx.account_id, ctx.region, token)
            if existing is not None:
                if existing.request_digest != digest:
                    raise ServiceError("IdempotentParameterMismatch",
                                       "The client token was already used for a different "
                                       "CreateVolume request.")
                return volume_output(existing, tags_of(conn, [existing.volume_id])[
                    existing.volume_id])
        volume = Volume(
            volume_id=ids.new_id("vol"),
            account_id=ctx.account_id,
            region=ctx.region,
            availability_zone=zone,
            size=size,
            volume_type=volume_type,
            snapshot_id=snapshot_id or "",
            state=rules.AVAILABLE,
            encrypted=False,
            lineage_id=snapshot.lineage_id if snapshot else str(uuid.uuid4()),
            create_time=ctx.clock.now(),
            multi_attach=bool(params.get("MultiAttachEnabled")),
            iops=params.get("Iops"),
            throughput=params.get("Throughput"),
            client_token=token,
            request_digest=digest,
        )
        store.insert_volume(conn, volume)
        if snapshot is not None:
            # The volume holds the snapshot's blocks, shared: no data is copied.
            manifests.copy_manifest(conn, snapshot.snapshot_id, volume.volume_id)
        set_tags(conn, volume.volume_id, "volume", ctx.account_id, ctx.region, tags)
    return volume_output(volume, tags)


def describe_volumes(ctx: RequestContext, params: dict[str, Any]) -> Output:
    wanted = checked_ids(params.get("VolumeIds"), "vol")
    limit = page_size(params, high=500)
    if wanted and limit is not None:
        raise ServiceError("InvalidParameterCombination",
                           "MaxResults cannot be combined with VolumeIds.")
    after = decode_next_token(params, "vol")
    ctx.authorize()
    with ctx.storage.engine.connect() as conn:
        found, last = store.describe_volumes(conn, ctx.account_id, ctx.region, wanted,
                                             params.get("Filters"), limit, after)
        if wanted and not params.get("Filters"):
            refuse_unknown(wanted, {v.volume_id for v in found}, rules.not_found)
        tags = tags_of(conn, [v.volume_id for v in found])
    output: Output = {"Volumes": [volume_output(v, tags[v.volume_id]) for v in found]}
    next_token = encode_next_token(last)
    if next_token:
        output["NextToken"] = next_token
    return output


def delete_volume(ctx: RequestContext, params: dict[str, Any]) -> Output:
    volume_id = ids.check_id("vol", params["VolumeId"])
    with ctx.storage.engine.begin() as conn:
        volume = store.get_volume(conn, ctx.account_id, ctx.region, volume_id)
        if volume is None:
            raise rules.not_found(volume_id)
        ctx.authorize()
        doomed = manifests.drop_manifest(conn, volume_id)
        delete_tags(conn, volume_id)
        store.delete_volume(conn, volume_id)
    collect(ctx.storage.engine, ctx.storage.blocks, doomed)
    return {}


HANDLERS = {
    "CreateVolume": create_volume,
    "DescribeVolumes": describe_volumes,
    "DeleteVolume": delete_volume,
}
