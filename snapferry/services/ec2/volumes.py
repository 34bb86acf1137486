"""CreateVolume, DescribeVolumes, DeleteVolume."""

from __future__ import annotations

import contextlib
import uuid
from typing import Any

from snapferry.domain import encryption, ids, regions
from snapferry.domain import snapshots as snapshot_rules
from snapferry.domain import volumes as rules
from snapferry.domain.envelope import BlockCodec
from snapferry.domain.idempotency import check_same_request, request_digest
from snapferry.domain.keys import Key
from snapferry.domain.snapshots import Snapshot
from snapferry.domain.tags import as_list, tags_for
from snapferry.domain.volumes import Volume
from snapferry.errors import ServiceError
from snapferry.services.context import Output, RequestContext
from snapferry.services.ec2.common import (
    STREAM_PAGE,
    checked_ids,
    decode_next_token,
    page_size,
    paged,
    refuse_unknown,
    unpaged,
)
from snapferry.storage import keys as key_store
from snapferry.storage import manifests
from snapferry.storage import snapshots as snapshot_store
from snapferry.storage import volumes as store
from snapferry.storage.collector import collect
from snapferry.storage.creators import Creating
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


KMS_REFUSALS = frozenset({"NotFoundException", "DisabledException", "KMSInvalidStateException",
                          "AccessDeniedException"})


def _kms_problem(problem: ServiceError) -> ServiceError:
    """KMS's refusals, said in EC2's vocabulary."""
    return ServiceError("InvalidParameterValue", f"The KMS key cannot be used: {problem.message}")


def _choose_key(ctx: RequestContext, conn: Any, params: dict[str, Any],
                snapshot: Snapshot | None) -> tuple[encryption.Outcome, Key | None, Key | None]:
    """The encryption outcome, the key the volume gets, and the source's key (if any)."""
    assert ctx.keyring is not None
    keyring = ctx.keyring
    wanted, kms_text = params.get("Encrypted"), params.get("KmsKeyId")
    by_default, _ = key_store.ebs_encryption(conn, ctx.account_id, ctx.region)
    try:
        given = keyring.resolve(conn, kms_text, ctx.account_id, ctx.region) if kms_text else None
        source_key = (keyring.resolve(conn, snapshot.kms_key_id, ctx.account_id, ctx.region)
                      if snapshot is not None and snapshot.kms_key_id else None)
        if snapshot is None:
            outcome = encryption.for_new_data(wanted, kms_text, by_default)
        else:
            outcome = encryption.for_data_from(
                snapshot.encrypted, snapshot.account_id == ctx.account_id, wanted, kms_text,
                given is not None and source_key is not None and given.arn == source_key.arn,
                by_default)
        if outcome.key == encryption.DEFAULT:
            key = keyring.ebs_default_key(conn, ctx.account_id, ctx.region)
        else:
            key = {encryption.SOURCE: source_key, encryption.GIVEN: given}.get(outcome.key or "")
        if key is not None:
            keyring.usable_for_ebs(conn, ctx.principal, key)
        if outcome.recode and source_key is not None and not keyring.may(
                conn, ctx.principal, source_key, "Decrypt", via_ec2=True):
            raise ServiceError("AccessDeniedException",
                               f"{ctx.principal.arn} may not decrypt with {source_key.arn}.")
    except ServiceError as problem:
        if problem.code not in KMS_REFUSALS:
            raise
        raise _kms_problem(problem) from None
    return outcome, key, source_key


def create_volume(ctx: RequestContext, params: dict[str, Any]) -> Output:
    assert ctx.keyring is not None
    zone = _zone(ctx, params)
    encryption.kms_key_needs_encrypted(params.get("Encrypted"), params.get("KmsKeyId"))
    if params.get("OutpostArn"):
        raise ServiceError("UnsupportedOperation", "snapferry has no Outposts.")
    volume_type = params.get("VolumeType") or rules.DEFAULT_TYPE
    snapshot_id = params.get("SnapshotId")
    if snapshot_id:
        ids.check_id("snap", snapshot_id)
    tags = tags_for(params.get("TagSpecifications"), "volume")
    digest = request_digest(params)
    token = params.get("ClientToken")
    # Held from before a `creating` volume is committed until its state is final: no other
    # process fails it as a dead one's meanwhile (storage/creators.py).
    with contextlib.ExitStack() as creating:
        with ctx.storage.engine.begin() as conn:
            snapshot = None
            if snapshot_id:
                snapshot = snapshot_store.get_snapshot(conn, ctx.region, snapshot_id)
                if snapshot is None or not snapshot_store.can_restore(conn, snapshot,
                                                                      ctx.account_id):
                    raise snapshot_rules.not_found(snapshot_id)
                if snapshot.state != snapshot_rules.COMPLETED:
                    raise ServiceError("IncorrectState",
                                       f"Snapshot '{snapshot_id}' is not 'completed'.")
            size = rules.size_for(params.get("Size"), snapshot.volume_size if snapshot else None,
                                  snapshot_id)
            rules.check_type_and_size(volume_type, size)
            rules.check_performance(volume_type, size, params.get("Iops"), params.get("Throughput"))
            iops, throughput = rules.provisioned(volume_type, size, params.get("Iops"),
                                                 params.get("Throughput"))
            outcome, key, _ = _choose_key(ctx, conn, params, snapshot)
            ctx.authorize()
            if token:
                existing = store.by_client_token(conn, ctx.account_id, ctx.region, token)
                if existing is not None:
                    check_same_request(existing.request_digest, digest, "CreateVolume")
                    return volume_output(existing, tags_of(conn, [existing.volume_id])[
                        existing.volume_id])
            cipher = None
            if outcome.encrypted and (outcome.recode or snapshot is None):
                assert key is not None
                lineage_id, cipher = ctx.keyring.new_lineage(conn, key)
            else:
                lineage_id = snapshot.lineage_id if snapshot else str(uuid.uuid4())
            volume = Volume(
                volume_id=ids.new_id("vol"),
                account_id=ctx.account_id,
                region=ctx.region,
                availability_zone=zone,
                size=size,
                volume_type=volume_type,
                snapshot_id=snapshot_id or "",
                state=rules.CREATING if outcome.recode else rules.AVAILABLE,
                encrypted=outcome.encrypted,
                kms_key_id=key.arn if key else None,
                lineage_id=lineage_id,
                create_time=ctx.clock.now(),
                multi_attach=bool(params.get("MultiAttachEnabled")),
                iops=iops,
                throughput=throughput,
                client_token=token,
                request_digest=digest,
            )
            if volume.state == rules.CREATING:
                creating.enter_context(Creating(ctx.storage.engine, volume.volume_id))
            store.insert_volume(conn, volume)
            if snapshot is not None and not outcome.recode:
                # The volume holds the snapshot's blocks, shared: no data is copied.
                manifests.copy_manifest(conn, snapshot.snapshot_id, volume.volume_id)
            set_tags(conn, volume.volume_id, "volume", ctx.account_id, ctx.region, tags)
            source_codec = (ctx.keyring.codec(conn, snapshot.lineage_id, ctx.region)
                            if outcome.recode and snapshot is not None else None)
        if outcome.recode:
            assert snapshot is not None and cipher is not None and source_codec is not None
            _recode_into(ctx, volume, snapshot.snapshot_id, source_codec, cipher)
    return volume_output(volume, tags)


def _recode_into(ctx: RequestContext, volume: Volume, snapshot_id: str,
                 source: BlockCodec, target: BlockCodec) -> None:
    """Encrypt the snapshot's blocks anew into the volume (a new key or a new lineage), then
    make the volume available; a failure leaves it in `error`, its partial blocks freed."""
    try:
        ctx.storage.block_data.recode(snapshot_id, source, volume.volume_id, target)
        volume.state = rules.AVAILABLE
    except Exception:
        volume.state = rules.ERROR
        raise
    finally:
        with ctx.storage.engine.begin() as conn:
            if not store.set_volume_state(conn, volume.volume_id, volume.state,
                                          only_if=rules.CREATING):
                volume.state = rules.ERROR  # failed meanwhile (its lock was lost with the
                # database's connection): what this request put goes too
            doomed = (manifests.drop_manifest(conn, volume.volume_id)
                      if volume.state == rules.ERROR else [])
        collect(ctx.storage.engine, ctx.storage.blocks, doomed)


def describe_volumes(ctx: RequestContext, params: dict[str, Any]) -> Output:
    wanted = checked_ids(params.get("VolumeIds"), "vol")
    limit = page_size(params, high=500)
    if wanted and limit is not None:
        raise ServiceError("InvalidParameterCombination",
                           "MaxResults cannot be combined with VolumeIds.")
    after = decode_next_token(params, "vol")
    ctx.authorize()

    def page(limit: int | None, after: str | None) -> tuple[list[Output], str | None]:
        with ctx.storage.engine.connect() as conn:
            found, last = store.describe_volumes(conn, ctx.account_id, ctx.region, wanted,
                                                 params.get("Filters"), limit, after)
            if wanted and not params.get("Filters"):
                refuse_unknown(wanted, {v.volume_id for v in found}, rules.not_found)
            tags = tags_of(conn, [v.volume_id for v in found])
        return [volume_output(v, tags[v.volume_id]) for v in found], last

    if limit is None and not wanted:  # every volume: streamed, page by page
        return unpaged("Volumes", *page(STREAM_PAGE, after), lambda last: page(STREAM_PAGE, last))
    return paged("Volumes", *page(limit, after))


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
