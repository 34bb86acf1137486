"""The EBS direct APIs: write snapshots block by block, read them back, diff two of them.

Reads are allowed to the owner and to accounts named in createVolumePermission (public
snapshots cannot be read through these APIs, as on AWS); writes only to the owner.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy.engine import Connection

from snapferry.domain import encryption, ids
from snapferry.domain import snapshots as rules
from snapferry.domain.blocks import (
    AGGREGATION_METHOD,
    BLOCK_SIZE,
    CHECKSUM_ALGORITHM,
    decode_checksum,
    encode_checksum,
    linear_aggregate,
)
from snapferry.domain.envelope import BlockCodec
from snapferry.domain.idempotency import request_digest
from snapferry.domain.keys import Key
from snapferry.domain.snapshots import Snapshot
from snapferry.domain.tags import as_list, tags_from_list
from snapferry.domain.tokens import BLOCK_TOKEN_LIFETIME, PAGE_TOKEN_LIFETIME, TokenError
from snapferry.engine.background import cancel_idle
from snapferry.errors import ServiceError
from snapferry.services import sharing
from snapferry.services.context import First, Output, RequestContext, Service
from snapferry.storage import blockrows, manifests
from snapferry.storage import keys as key_store
from snapferry.storage import snapshots as store
from snapferry.storage.blockdata import CorruptBlock
from snapferry.storage.tagstore import set_tags, tags_of

DEFAULT_PAGE = 10000
MIN_PAGE = 100  # AWS returns at least 100 results whatever MaxResults says


def _validation(message: str, reason: str) -> ServiceError:
    return ServiceError("ValidationException", message, Reason=reason)


def _not_found(snapshot_id: str) -> ServiceError:
    return ServiceError(
        "ResourceNotFoundException",
        f"The snapshot '{snapshot_id}' does not exist.",
        status=404,
        Reason="SNAPSHOT_NOT_FOUND",
    )


def _snapshot_id(value: str) -> str:
    if not ids.is_id("snap", value):
        raise _validation(f"'{value[:100]}' is not a snapshot id (snap-...).",
                          "INVALID_SNAPSHOT_ID")
    return value


def _readable(conn: Connection, ctx: RequestContext, snapshot_id: str) -> Snapshot:
    snapshot = blockrows.snapshot(conn, ctx.region, _snapshot_id(snapshot_id))
    if snapshot is None or not store.can_restore(conn, snapshot, ctx.account_id,
                                                 public_counts=False):
        raise _not_found(snapshot_id)
    rules.check_readable(snapshot)
    return snapshot


def _writable(conn: Connection, ctx: RequestContext, snapshot_id: str) -> Snapshot:
    snapshot = blockrows.snapshot(conn, ctx.region, _snapshot_id(snapshot_id))
    if snapshot is None or not store.can_restore(conn, snapshot, ctx.account_id):
        raise _not_found(snapshot_id)
    if snapshot.account_id != ctx.account_id:
        raise ServiceError(
            "AccessDeniedException",
            f"Only the owner of {snapshot_id} can write to it or complete it.",
            status=403,
            Reason="UNAUTHORIZED_ACCOUNT",
        )
    if snapshot.origin != rules.ORIGIN_EBS:
        raise _validation(f"{snapshot_id} was not started with StartSnapshot; only such "
                          "snapshots take blocks.", "INVALID_SNAPSHOT_ID")
    return snapshot


def _kms_refusal(problem: ServiceError) -> ServiceError:
    if problem.code == "AccessDeniedException":
        return ServiceError("AccessDeniedException", problem.message, status=403,
                            Reason="DEPENDENCY_ACCESS_DENIED")
    return _validation(f"The snapshot's KMS key cannot be used: {problem.message}",
                       "INVALID_CUSTOMER_KEY")


def _codec(ctx: RequestContext, conn: Connection, snapshot: Snapshot) -> BlockCodec:
    """How the snapshot's blocks are stored; for an encrypted one, only if the caller may
    use its key."""
    assert ctx.keyring is not None
    if not snapshot.encrypted:
        return ctx.keyring.codec(conn, snapshot.lineage_id, ctx.region)
    assert snapshot.kms_key_id is not None
    try:
        key = ctx.keyring.resolve(conn, snapshot.kms_key_id, ctx.account_id, ctx.region)
        if not ctx.keyring.may(conn, ctx.principal, key, "Decrypt", via_ec2=True):
            raise ServiceError("AccessDeniedException",
                               f"{ctx.principal.arn} may not decrypt with {key.arn}.")
        return ctx.keyring.codec(conn, snapshot.lineage_id, ctx.region, key)
    except ServiceError as problem:
        raise _kms_refusal(problem) from None


def _expire_if_idle(ctx: RequestContext, snapshot: Snapshot) -> None:
    """StartSnapshot's Timeout: a snapshot left idle that long is cancelled (error)."""
    now, expires = ctx.clock.now(), snapshot.expires_at
    idle = snapshot.state == rules.PENDING and expires is not None and now > expires
    if idle and cancel_idle(ctx.storage, now, [snapshot.snapshot_id]):
        raise _validation(f"The snapshot {snapshot.snapshot_id} timed out after "
                          f"{snapshot.timeout_minutes} idle minutes and was cancelled.",
                          "WRITE_REQUEST_TIMEOUT")


def _start_output(snapshot: Snapshot, tags: dict[str, str]) -> Output:
    return {
        "SnapshotId": snapshot.snapshot_id,
        "OwnerId": snapshot.account_id,
        "Status": snapshot.state,
        "StartTime": snapshot.start_time,
        "VolumeSize": snapshot.volume_size,
        "BlockSize": BLOCK_SIZE,
        "Tags": as_list(tags),
        "Description": snapshot.description or None,
        "ParentSnapshotId": snapshot.parent_snapshot_id,
        "KmsKeyArn": snapshot.kms_key_id,
    }


def _start_key(ctx: RequestContext, conn: Connection, parent: Snapshot | None,
               encrypted: bool | None, kms_arn: str | None) -> Key | None:
    """The KMS key of a new EBS-direct snapshot (None: unencrypted), by the rules of
    https://docs.aws.amazon.com/ebs/latest/userguide/ebsapis-using-encryption.html"""
    assert ctx.keyring is not None
    keyring = ctx.keyring
    by_default, _ = key_store.ebs_encryption(conn, ctx.account_id, ctx.region)
    try:
        if parent is not None:
            if not parent.encrypted:
                if by_default or kms_arn:
                    raise _validation("The parent snapshot is unencrypted, so its child cannot "
                                      "be encrypted (and encryption by default requires it).",
                                      "INVALID_PARAMETER_VALUE")
                return None
            if kms_arn and kms_arn != parent.kms_key_id:
                raise _validation("A child is encrypted with its parent's key; KmsKeyArn names "
                                  "another.", "INVALID_CUSTOMER_KEY")
            assert parent.kms_key_id is not None
            key = keyring.resolve(conn, parent.kms_key_id, ctx.account_id, ctx.region)
        else:
            outcome = encryption.for_new_data(encrypted, kms_arn, by_default)
            if not outcome.encrypted:
                return None
            key = (keyring.resolve(conn, kms_arn, ctx.account_id, ctx.region) if kms_arn
                   else keyring.ebs_default_key(conn, ctx.account_id, ctx.region))
        return keyring.usable_for_ebs(conn, ctx.principal, key)
    except ServiceError as problem:
        if problem.code == "ValidationException":
            raise
        raise _kms_refusal(problem) from None


def start_snapshot(ctx: RequestContext, params: dict[str, Any]) -> Output:
    size = params["VolumeSize"]
    rules.check_volume_size(size)
    parent_id = params.get("ParentSnapshotId")
    encrypted, kms_arn = params.get("Encrypted"), params.get("KmsKeyArn")
    if parent_id and encrypted:
        raise _validation("ParentSnapshotId and Encrypted cannot be combined: a child is "
                          "encrypted exactly as its parent is.", "INVALID_PARAMETER_VALUE")
    if kms_arn and not encrypted and not parent_id:
        raise _validation("KmsKeyArn requires Encrypted to be true.", "INVALID_PARAMETER_VALUE")
    try:
        tags = tags_from_list(params.get("Tags"))
    except ServiceError as error:
        raise _validation(error.message, "INVALID_TAG") from None
    token = params.get("ClientToken")
    digest = request_digest(params)
    now = ctx.clock.now()
    with ctx.storage.engine.begin() as conn:
        parent = _readable(conn, ctx, parent_id) if parent_id else None
        if parent is not None and size < parent.volume_size:
            raise _validation(f"VolumeSize {size} GiB is smaller than the parent snapshot's "
                              f"{parent.volume_size} GiB.", "INVALID_VOLUME_SIZE")
        key = _start_key(ctx, conn, parent, encrypted, kms_arn)
        ctx.authorize()
        if token:
            existing = store.by_client_token(conn, ctx.account_id, ctx.region, token)
            if existing is not None:
                if existing.request_digest != digest:
                    raise ServiceError("ConflictException", "The client token was already used "
                                       "for a different StartSnapshot request.", status=409)
                return _start_output(existing, tags_of(conn, [existing.snapshot_id])[
                    existing.snapshot_id])
        timeout = params.get("Timeout", rules.DEFAULT_TIMEOUT_MINUTES)
        if parent is not None:
            lineage_id = parent.lineage_id
        elif key is not None:
            assert ctx.keyring is not None
            lineage_id, _ = ctx.keyring.new_lineage(conn, key)
        else:
            lineage_id = str(uuid.uuid4())
        snapshot = Snapshot(
            snapshot_id=ids.new_id("snap"),
            account_id=ctx.account_id,
            region=ctx.region,
            volume_id=rules.COPY_VOLUME_ID,
            volume_size=size,
            state=rules.PENDING,
            progress=0,
            start_time=now,
            description=params.get("Description", ""),
            encrypted=key is not None,
            kms_key_id=key.arn if key is not None else None,
            lineage_id=lineage_id,
            origin=rules.ORIGIN_EBS,
            parent_snapshot_id=parent_id,
            client_token=token,
            request_digest=digest,
            timeout_minutes=timeout,
            expires_at=now + dt.timedelta(minutes=timeout),
        )
        store.insert_snapshot(conn, snapshot)
        if parent is not None:
            manifests.copy_manifest(conn, parent.snapshot_id, snapshot.snapshot_id)
        set_tags(conn, snapshot.snapshot_id, "snapshot", ctx.account_id, ctx.region, tags)
    return _start_output(snapshot, tags)


def put_snapshot_block(ctx: RequestContext, params: dict[str, Any]) -> Output:
    snapshot_id, index, data = params["SnapshotId"], params["BlockIndex"], params["BlockData"]
    # One connection for the whole call: the reads, then the write protocol's two commits
    # (storage/blockdata.py), instead of a pool checkout for each.
    with ctx.storage.engine.connect() as conn:
        snapshot = _writable(conn, ctx, snapshot_id)
        codec = _codec(ctx, conn, snapshot)
        conn.commit()  # the reads end here; the write protocol begins its own transactions
        _expire_if_idle(ctx, snapshot)
        rules.check_block_write(snapshot, index, len(data), params["DataLength"])
        if params["ChecksumAlgorithm"] != CHECKSUM_ALGORITHM:
            raise _validation("Only SHA256 checksums are supported.", "INVALID_PARAMETER_VALUE")
        claimed = decode_checksum(params["Checksum"])
        digest = ctx.sha256(data)
        if claimed != digest:
            raise _validation(f"The checksum of block {index} does not match its data: the "
                              "block was not written. Send the base64 SHA-256 of the 524288 "
                              "bytes.", "INVALID_CONTENT_ENCODING")
        ctx.authorize()
        progress = params.get("Progress")
        now = ctx.clock.now()

        def still_pending(conn: Connection) -> None:
            deadline = rules.idle_deadline(snapshot, now)
            if not blockrows.touch_pending(conn, snapshot_id, deadline, progress, rules.PENDING):
                raise _validation(f"The snapshot {snapshot_id} is no longer pending.",
                                  "INVALID_SNAPSHOT_ID")

        ctx.storage.block_data.write(snapshot_id, index, data, digest, still_pending, codec,
                                     conn)
    return {"Checksum": encode_checksum(digest), "ChecksumAlgorithm": CHECKSUM_ALGORITHM}


def complete_snapshot(ctx: RequestContext, params: dict[str, Any]) -> Output:
    snapshot_id = params["SnapshotId"]
    with ctx.storage.engine.connect() as conn:
        snapshot = _writable(conn, ctx, snapshot_id)
    _expire_if_idle(ctx, snapshot)
    rules.check_pending(snapshot)
    checksum = params.get("Checksum")
    aggregation = (params.get("ChecksumAlgorithm"), params.get("ChecksumAggregationMethod"))
    if checksum is not None and aggregation != (CHECKSUM_ALGORITHM, AGGREGATION_METHOD):
        raise _validation("An aggregate checksum needs ChecksumAlgorithm SHA256 and "
                          "ChecksumAggregationMethod LINEAR.", "INVALID_PARAMETER_VALUE")
    ctx.authorize()
    with ctx.storage.engine.begin() as conn:
        if not store.update_snapshot(conn, snapshot_id, only_if_state=rules.PENDING,
                                     expires_at=None):
            raise _validation(f"The snapshot {snapshot_id} is no longer pending.",
                              "INVALID_SNAPSHOT_ID")
        digests = manifests.written_digests(conn, snapshot_id)
        if params["ChangedBlocksCount"] != len(digests):
            raise _validation(
                f"ChangedBlocksCount is {params['ChangedBlocksCount']} but {len(digests)} "
                "blocks were written; the snapshot stays pending.", "INVALID_PARAMETER_VALUE")
        if checksum is not None and decode_checksum(checksum) != linear_aggregate(digests):
            raise _validation("The aggregate checksum does not match the blocks written: "
                              "SHA-256 over their SHA-256 digests in block index order. The "
                              "snapshot stays pending.", "INVALID_PARAMETER_VALUE")
        total = manifests.block_total(conn, snapshot_id)
        store.update_snapshot(conn, snapshot_id, state=rules.COMPLETED, progress=100,
                              completion_time=ctx.clock.now(), full_size_bytes=total * BLOCK_SIZE)
    return {"Status": rules.COMPLETED}


def _page(params: dict[str, Any]) -> int:
    return max(MIN_PAGE, params.get("MaxResults") or DEFAULT_PAGE)


def _start(ctx: RequestContext, params: dict[str, Any], binding: str) -> int:
    token = params.get("NextToken")
    if token is None:
        return params.get("StartingBlockIndex") or 0
    try:
        return ctx.storage.tokens.open("page", binding, token, ctx.clock.now())
    except TokenError as error:
        raise _validation(f"The NextToken is not valid ({error}); list again without it.",
                          "INVALID_PAGE_TOKEN") from None


def _block_token(ctx: RequestContext, snapshot_id: str, index: int, expires: dt.datetime) -> str:
    return ctx.storage.tokens.mint("block", f"{snapshot_id}:{index}", index, expires)


def list_snapshot_blocks(ctx: RequestContext, params: dict[str, Any]) -> Output:
    snapshot_id = params["SnapshotId"]
    with ctx.storage.engine.connect() as conn:
        snapshot = _readable(conn, ctx, snapshot_id)
        ctx.authorize()
        start, limit = _start(ctx, params, snapshot_id), _page(params)
        refs = manifests.block_refs(conn, snapshot_id, start, limit + 1)
    now = ctx.clock.now()
    expires = now + BLOCK_TOKEN_LIFETIME
    output: Output = {
        "Blocks": [
            {"BlockIndex": ref.block_index,
             "BlockToken": _block_token(ctx, snapshot_id, ref.block_index, expires)}
            for ref in refs[:limit]
        ],
        "ExpiryTime": expires,
        "VolumeSize": snapshot.volume_size,
        "BlockSize": BLOCK_SIZE,
    }
    if len(refs) > limit:
        output["NextToken"] = ctx.storage.tokens.mint(
            "page", snapshot_id, refs[limit].block_index, now + PAGE_TOKEN_LIFETIME)
    return output


def list_changed_blocks(ctx: RequestContext, params: dict[str, Any]) -> Output:
    second_id, first_id = params["SecondSnapshotId"], params.get("FirstSnapshotId")
    with ctx.storage.engine.connect() as conn:
        second = _readable(conn, ctx, second_id)
        first = _readable(conn, ctx, first_id) if first_id else None
        if first is not None and first.lineage_id != second.lineage_id:
            raise _validation(f"{first_id} and {second_id} are not snapshots of the same "
                              "lineage, so their blocks cannot be compared.",
                              "UNRELATED_SNAPSHOTS")
        ctx.authorize()
        binding = f"{first_id}:{second_id}"
        start, limit = _start(ctx, params, binding), _page(params)
        changes = manifests.changed_blocks(conn, first_id or "", second_id, start, limit + 1)
    now = ctx.clock.now()
    expires = now + BLOCK_TOKEN_LIFETIME
    blocks = []
    for change in changes[:limit]:
        item: dict[str, Any] = {"BlockIndex": change.block_index}
        if change.first is not None and first_id:
            item["FirstBlockToken"] = _block_token(ctx, first_id, change.block_index, expires)
        if change.second is not None:
            item["SecondBlockToken"] = _block_token(ctx, second_id, change.block_index, expires)
        blocks.append(item)
    output: Output = {"ChangedBlocks": blocks, "ExpiryTime": expires,
                      "VolumeSize": second.volume_size, "BlockSize": BLOCK_SIZE}
    if len(changes) > limit:
        output["NextToken"] = ctx.storage.tokens.mint(
            "page", binding, changes[limit].block_index, now + PAGE_TOKEN_LIFETIME)
    return output


def get_snapshot_block(ctx: RequestContext, params: dict[str, Any]) -> Output:
    snapshot_id, index = params["SnapshotId"], params["BlockIndex"]
    with ctx.storage.engine.connect() as conn:
        snapshot = _readable(conn, ctx, snapshot_id)
        codec = _codec(ctx, conn, snapshot)
        try:
            ctx.storage.tokens.open("block", f"{snapshot_id}:{index}", params["BlockToken"],
                                    ctx.clock.now())
        except TokenError as error:
            raise _validation(f"The block token is not valid for block {index} of "
                              f"{snapshot_id} ({error}).", "INVALID_BLOCK_TOKEN") from None
        ctx.authorize()
        found = blockrows.block_ref(conn, snapshot_id, index)
    if found is None:
        raise _validation(f"Block {index} of {snapshot_id} holds no data.", "INVALID_BLOCK")
    ref = manifests.BlockRef(index, *found)
    try:
        data = ctx.storage.block_data.read(ref, codec)
    except CorruptBlock as problem:
        raise ServiceError("InternalServerException", str(problem), status=500) from None
    return {"DataLength": len(data), "BlockData": data,
            "Checksum": encode_checksum(ref.sha256), "ChecksumAlgorithm": CHECKSUM_ALGORITHM}


def _access_denied(action: str) -> ServiceError:
    return ServiceError("AccessDeniedException", f"You are not authorized to perform: {action}.",
                        status=403, Reason="UNAUTHORIZED_ACCOUNT")


SERVICE = Service(
    name="ebs",
    iam_prefix="ebs",
    handlers={
        "StartSnapshot": start_snapshot,
        "PutSnapshotBlock": put_snapshot_block,
        "CompleteSnapshot": complete_snapshot,
        "ListSnapshotBlocks": list_snapshot_blocks,
        "ListChangedBlocks": list_changed_blocks,
        "GetSnapshotBlock": get_snapshot_block,
    },
    access_denied=_access_denied,
    denial=lambda action, message: ServiceError("AccessDeniedException", message, 403),
    authorize_first=First.IDENTITY,
    resource_side=sharing.resource_side,
)
