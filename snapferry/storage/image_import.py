"""An operator's raw disk image becomes a public EBS-backed image in chosen regions, owned by
an internal account under an owner alias (`amazon` by default): the images users' code looks
up with `owners = ["amazon"]` and copies from.

Each region gets its own snapshot, written straight into the data dir (no credentials: the
owning account has none), public like the snapshots behind Amazon's own images, so any
account may copy the image. Blocks are written as EBS direct writes them (the writer's
protocol of storage/manifests.py) under a pending snapshot with an idle deadline; the
snapshot turns `completed` and the image appears, public, in one transaction. An import
that dies half way leaves only a pending snapshot nobody can see, which a running server
cancels, blocks and all, when its deadline passes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from snapferry.domain import ids
from snapferry.domain import images as rules
from snapferry.domain import snapshots as snapshot_rules
from snapferry.domain.blocks import BLOCK_SIZE
from snapferry.domain.envelope import PlainBlocks
from snapferry.domain.images import ALIAS_ACCOUNTS, BlockDevice, Image
from snapferry.domain.snapshots import Snapshot
from snapferry.errors import ServiceError
from snapferry.storage import images as image_store
from snapferry.storage import manifests
from snapferry.storage import snapshots as snapshot_store
from snapferry.storage.blockdata import COPY_BATCH
from snapferry.storage.datadir import Storage

BLOCK = BLOCK_SIZE
GIB = 1024**3
ZERO_BLOCK = bytes(BLOCK)
# An abandoned import's pending snapshot is cancelled by the server after this idle time.
IDLE_MINUTES = 60


@dataclass(frozen=True)
class ImportRequest:
    name: str
    regions: list[str]
    owner_alias: str = "amazon"
    account_id: str | None = None  # None: the alias's account (ALIAS_ACCOUNTS)
    description: str | None = None
    architecture: str = "x86_64"
    virtualization_type: str = "hvm"
    boot_mode: str | None = None
    ena_support: bool = True
    root_device_name: str = "/dev/xvda"
    volume_type: str = "gp3"

    @property
    def owner(self) -> str:
        return self.account_id or ALIAS_ACCOUNTS[self.owner_alias]


@dataclass(frozen=True)
class Imported:
    region: str
    image_id: str
    snapshot_id: str


def check(request: ImportRequest) -> dict[str, Any]:
    """The image's attributes, checked by RegisterImage's own rules."""
    if request.owner_alias not in ALIAS_ACCOUNTS:
        raise ServiceError("InvalidParameterValue", f"owner alias {request.owner_alias!r}: "
                           f"use one of {', '.join(ALIAS_ACCOUNTS)}")
    if request.account_id is not None and not (len(request.account_id) == 12
                                               and request.account_id.isdigit()):
        raise ServiceError("InvalidParameterValue",
                           f"account id {request.account_id!r} is not 12 digits")
    if not request.regions:
        raise ServiceError("MissingParameter", "name at least one region")
    rules.check_device_name(request.root_device_name)
    return rules.registration_attributes({
        "Name": request.name, "Description": request.description,
        "Architecture": request.architecture,
        "VirtualizationType": request.virtualization_type, "BootMode": request.boot_mode,
        "EnaSupport": request.ena_support})


def _blocks(path: Path) -> Iterator[tuple[int, bytes]]:
    """The image's non-zero blocks in order, the last one padded with zeros."""
    with path.open("rb") as image:
        index = 0
        while data := image.read(BLOCK):
            data = data.ljust(BLOCK, b"\0")
            if data != ZERO_BLOCK:
                yield index, data
            index += 1


def _batches(path: Path) -> Iterator[list[tuple[int, bytes]]]:
    batch: list[tuple[int, bytes]] = []
    for item in _blocks(path):
        batch.append(item)
        if len(batch) == COPY_BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def _write_blocks(storage: Storage, snapshot: Snapshot, path: Path,
                  now: Callable[[], dt.datetime]) -> None:
    codec = PlainBlocks(snapshot.region, snapshot.lineage_id)

    def still_pending(conn: Connection) -> None:
        if not snapshot_store.update_snapshot(
                conn, snapshot.snapshot_id, only_if_state=snapshot_rules.PENDING,
                expires_at=now() + dt.timedelta(minutes=IDLE_MINUTES)):
            raise ServiceError("IncorrectState", f"{snapshot.snapshot_id} is no longer "
                               "pending (cancelled while importing?)")

    for batch in _batches(path):
        storage.block_data.write_many(
            snapshot.snapshot_id,
            [(index, block, hashlib.sha256(block).digest()) for index, block in batch],
            still_pending, codec)


def import_image(storage: Storage, path: Path, request: ImportRequest,
                 now: Callable[[], dt.datetime]) -> list[Imported]:
    """Import `path` into every region of the request; every region's name is checked free
    before any block is written. Returns what each region got."""
    attributes = check(request)
    size = path.stat().st_size
    if size == 0:
        raise ServiceError("InvalidParameterValue", f"{path} is empty")
    with storage.engine.connect() as conn:
        for region in request.regions:
            if image_store.name_in_use(conn, request.owner, region, request.name):
                raise rules.duplicate_name(request.name)
    return [_import_region(storage, path, size, region, request, attributes, now)
            for region in request.regions]


def _import_region(storage: Storage, path: Path, size: int, region: str,
                   request: ImportRequest, attributes: dict[str, Any],
                   now: Callable[[], dt.datetime]) -> Imported:
    started = now()
    snapshot = Snapshot(
        snapshot_id=ids.new_id("snap"), account_id=request.owner, region=region,
        volume_id=snapshot_rules.COPY_VOLUME_ID, volume_size=max(1, math.ceil(size / GIB)),
        state=snapshot_rules.PENDING, progress=0, start_time=started,
        description=f"Imported from {path.name} for {request.name}", encrypted=False,
        lineage_id=str(uuid.uuid4()), origin=snapshot_rules.ORIGIN_EBS,
        timeout_minutes=IDLE_MINUTES,
        expires_at=started + dt.timedelta(minutes=IDLE_MINUTES))
    with storage.engine.begin() as conn:
        snapshot_store.insert_snapshot(conn, snapshot)
    _write_blocks(storage, snapshot, path, now)
    image = Image(
        image_id=ids.new_id("ami"), account_id=request.owner, region=region,
        state=rules.AVAILABLE, creation_date=now(),
        image_location=rules.image_location(request.owner, request.owner_alias,
                                            request.name),
        owner_alias=request.owner_alias, root_device_name=request.root_device_name,
        block_devices=[BlockDevice(
            device_name=request.root_device_name, snapshot_id=snapshot.snapshot_id,
            volume_size=snapshot.volume_size, volume_type=request.volume_type,
            delete_on_termination=True, encrypted=False)],
        **attributes)
    with storage.engine.begin() as conn:
        total = manifests.block_total(conn, snapshot.snapshot_id)
        if not snapshot_store.update_snapshot(
                conn, snapshot.snapshot_id, only_if_state=snapshot_rules.PENDING,
                state=snapshot_rules.COMPLETED, progress=100, completion_time=now(),
                expires_at=None, full_size_bytes=total * BLOCK):
            raise ServiceError("IncorrectState", f"{snapshot.snapshot_id} is no longer "
                               "pending (cancelled while importing?)")
        snapshot_store.add_permissions(conn, snapshot.snapshot_id, [rules.GROUP_ALL])
        try:
            with conn.begin_nested():
                image_store.insert_image(conn, image)
        except IntegrityError as error:  # an import running at the same time took the name
            raise rules.duplicate_name(request.name) from error
        image_store.add_permissions(conn, image.image_id, [rules.GROUP_ALL])
    return Imported(region, image.image_id, snapshot.snapshot_id)
