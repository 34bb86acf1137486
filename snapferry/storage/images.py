"""Image records, their block device mappings and launch permissions; DescribeImages in SQL."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable
from typing import Any

from sqlalchemy import (
    and_,
    delete,
    exists,
    false,
    insert,
    literal,
    null,
    or_,
    select,
    update,
)
from sqlalchemy.engine import Connection

from snapferry.domain.images import (
    DEREGISTERED,
    DISABLED,
    GROUP_ALL,
    OWNER_ALIASES,
    PENDING,
    BlockDevice,
    Image,
)
from snapferry.storage.filtering import Field, filter_clauses, narrowed, page_of, tagged_ids
from snapferry.storage.metadata import image_block_devices as bdm
from snapferry.storage.metadata import image_permissions as perms
from snapferry.storage.metadata import image_product_codes as codes
from snapferry.storage.metadata import images, serialize

i = images.c
_IMAGE_FIELDS = [f.name for f in dataclasses.fields(Image) if f.name != "block_devices"]
_DEVICE_FIELDS = [f.name for f in dataclasses.fields(BlockDevice)]
IS_PUBLIC = exists(select(perms.c.image_id).where(
    perms.c.image_id == i.image_id, perms.c.kind == GROUP_ALL[0],
    perms.c.grantee == GROUP_ALL[1]))


def _in_mappings(clause: Any) -> Any:
    """A block-device-mapping.* filter value: true when one of the image's mappings matches."""
    return exists(select(bdm.c.image_id).where(bdm.c.image_id == i.image_id, clause))


def _with_code(clause: Any) -> Any:
    """A product-code* filter value: true when one of the image's product codes matches."""
    return exists(select(codes.c.image_id).where(codes.c.image_id == i.image_id, clause))


IMAGE_FILTERS = {
    "architecture": Field(i.architecture),
    "block-device-mapping.delete-on-termination": Field(bdm.c.delete_on_termination, "bool",
                                                        _in_mappings),
    "block-device-mapping.device-name": Field(bdm.c.device_name, within=_in_mappings),
    "block-device-mapping.snapshot-id": Field(bdm.c.snapshot_id, within=_in_mappings),
    "block-device-mapping.volume-size": Field(bdm.c.volume_size, "int", _in_mappings),
    "block-device-mapping.volume-type": Field(bdm.c.volume_type, within=_in_mappings),
    "block-device-mapping.encrypted": Field(bdm.c.encrypted, "bool", _in_mappings),
    "boot-mode": Field(i.boot_mode),
    "creation-date": Field(i.creation_date, "time"),
    "deprecation-time": Field(i.deprecation_time, "time"),
    "description": Field(i.description),
    "ena-support": Field(i.ena_support, "bool"),
    "hypervisor": Field(literal("xen")),
    "image-id": Field(i.image_id),
    "image-type": Field(i.image_type),
    "is-public": Field(IS_PUBLIC, "bool"),
    "kernel-id": Field(i.kernel_id),
    "manifest-location": Field(i.image_location),
    "name": Field(i.name),
    "owner-alias": Field(i.owner_alias),
    "owner-id": Field(i.account_id),
    "platform": Field(null()),  # no Windows images here
    "platform-details": Field(literal("Linux/UNIX")),
    "product-code": Field(codes.c.product_code, within=_with_code),
    "product-code.type": Field(codes.c.product_code_type, within=_with_code),
    "ramdisk-id": Field(i.ramdisk_id),
    "root-device-name": Field(i.root_device_name),
    "root-device-type": Field(i.root_device_type),
    "source-image-id": Field(i.source_image_id),
    "source-image-region": Field(i.source_image_region),
    "source-instance-id": Field(null()),
    "state": Field(i.state),
    "state-reason-code": Field(i.state_reason_code),
    "state-reason-message": Field(i.state_reason_message),
    "sriov-net-support": Field(i.sriov_net_support),
    "tpm-support": Field(i.tpm_support),
    "imds-support": Field(i.imds_support),
    "usage-operation": Field(literal("RunInstances")),
    "virtualization-type": Field(i.virtualization_type),
}


def _image(row: Any, devices: list[BlockDevice]) -> Image:
    return Image(**{name: row._mapping[name] for name in _IMAGE_FIELDS}, block_devices=devices)


def _devices(conn: Connection, image_ids: list[str]) -> dict[str, list[BlockDevice]]:
    found: dict[str, list[BlockDevice]] = {image_id: [] for image_id in image_ids}
    if image_ids:
        rows = conn.execute(select(bdm).where(bdm.c.image_id.in_(image_ids))
                            .order_by(bdm.c.image_id, bdm.c.position))
        for row in rows:
            found[row.image_id].append(
                BlockDevice(**{name: row._mapping[name] for name in _DEVICE_FIELDS}))
    return found


def _images(conn: Connection, rows: list[Any]) -> list[Image]:
    devices = _devices(conn, [row.image_id for row in rows])
    return [_image(row, devices[row.image_id]) for row in rows]


def insert_image(conn: Connection, image: Image) -> None:
    values = dataclasses.asdict(image)
    values.pop("block_devices")
    conn.execute(insert(images).values(**values))
    if image.block_devices:
        conn.execute(insert(bdm), [
            {"image_id": image.image_id, "position": position, **dataclasses.asdict(device)}
            for position, device in enumerate(image.block_devices)
        ])


def update_image(conn: Connection, image_id: str, **values: Any) -> None:
    conn.execute(update(images).where(i.image_id == image_id).values(**values))


def get_image(conn: Connection, region: str, image_id: str) -> Image | None:
    """The image with this id in this region, deregistered ones too."""
    rows = list(conn.execute(select(images).where(i.image_id == image_id, i.region == region)))
    return _images(conn, rows)[0] if rows else None


def name_in_use(conn: Connection, account_id: str, region: str, name: str) -> bool:
    return conn.execute(select(i.image_id).where(
        i.account_id == account_id, i.region == region, i.name == name,
        i.state != DEREGISTERED)).first() is not None


def _visible_to(account_id: str) -> Any:
    """Owned, or launch permission by account id or to everyone. Organization and OU grants
    match no account: snapferry has no AWS Organizations."""
    shared = exists(select(perms.c.image_id).where(
        perms.c.image_id == i.image_id,
        or_(and_(perms.c.kind == "user", perms.c.grantee == account_id),
            and_(perms.c.kind == GROUP_ALL[0], perms.c.grantee == GROUP_ALL[1]))))
    return or_(i.account_id == account_id, shared)


def visible(conn: Connection, image: Image, account_id: str) -> bool:
    if image.account_id == account_id:
        return True
    granted = set(permissions(conn, image.image_id))
    return ("user", account_id) in granted or GROUP_ALL in granted


def _executable_by(account_id: str, who: list[str]) -> Any:
    clauses = []
    for value in who:
        if value == "all":
            clauses.append(IS_PUBLIC)
            continue
        grantee = account_id if value == "self" else value
        explicit = exists(select(perms.c.image_id).where(
            perms.c.image_id == i.image_id, perms.c.kind == "user", perms.c.grantee == grantee))
        # Your own id: images shared with you. Another account's id: which of your images
        # that account was given (never other owners' grants).
        clauses.append(explicit if grantee == account_id
                       else and_(i.account_id == account_id, explicit))
    return or_(*clauses)


def _owned_by(account_id: str, owners: list[str]) -> Any:
    accounts = [account_id if o == "self" else o for o in owners if o not in OWNER_ALIASES]
    aliases = [o for o in owners if o in OWNER_ALIASES]
    return or_(i.account_id.in_(accounts) if accounts else false(),
               i.owner_alias.in_(aliases) if aliases else false())


def describe_images(
    conn: Connection,
    account_id: str,
    region: str,
    now: dt.datetime,
    image_ids: list[str] | None,
    owners: list[str] | None,
    executable_by: list[str] | None,
    filters: list[dict[str, Any]] | None,
    include_deprecated: bool,
    include_disabled: bool,
    limit: int | None,
    after: str | None,
) -> tuple[list[Image], str | None]:
    """One page of the images the account can see, in image id order, and the id after which
    the next page starts (None on the last page). Deregistered images are never listed."""
    query = select(images).where(i.region == region, i.state != DEREGISTERED,
                                 _visible_to(account_id))
    if owners:
        query = query.where(_owned_by(account_id, owners))
    if executable_by:
        query = query.where(_executable_by(account_id, executable_by))
    if not include_deprecated:  # owners see their own deprecated images regardless
        query = query.where(or_(i.account_id == account_id, i.deprecation_time.is_(None),
                                i.deprecation_time > now))
    if not include_disabled:
        query = query.where(i.state != DISABLED)
    for clause in filter_clauses(filters, IMAGE_FILTERS, i.image_id):
        query = query.where(clause)
    tagged = tagged_ids(conn, region, filters)
    wanted = narrowed(image_ids, tagged)
    if tagged is not None and not wanted:
        return [], None
    rows, last = page_of(conn, query, i.image_id, wanted, limit, after)
    return _images(conn, rows), last


def existing_ids(conn: Connection, region: str, image_ids: list[str]) -> set[str]:
    """Which of these ids were ever images in this region (deregistered ones too)."""
    return set(conn.execute(select(i.image_id).where(i.region == region,
                                                      i.image_id.in_(image_ids))).scalars())


def public_ids(conn: Connection, image_ids: list[str]) -> set[str]:
    if not image_ids:
        return set()
    return set(conn.execute(select(perms.c.image_id).where(
        perms.c.image_id.in_(image_ids), perms.c.kind == GROUP_ALL[0],
        perms.c.grantee == GROUP_ALL[1])).scalars())


def image_using(conn: Connection, snapshot_id: str, other_than: str | None = None
                ) -> str | None:
    """An image not deregistered whose mappings name the snapshot (other than `other_than`)."""
    query = select(bdm.c.image_id).join(images, i.image_id == bdm.c.image_id).where(
        bdm.c.snapshot_id == snapshot_id, i.state != DEREGISTERED)
    if other_than is not None:
        query = query.where(i.image_id != other_than)
    return conn.execute(query.order_by(bdm.c.image_id).limit(1)).scalar()


def permissions(conn: Connection, image_id: str) -> list[tuple[str, str]]:
    rows = conn.execute(select(perms.c.kind, perms.c.grantee)
                        .where(perms.c.image_id == image_id)
                        .order_by(perms.c.kind, perms.c.grantee))
    return [(row.kind, row.grantee) for row in rows]


def add_permissions(conn: Connection, image_id: str, grants: Iterable[tuple[str, str]]) -> None:
    existing = set(permissions(conn, image_id))
    new = [g for g in dict.fromkeys(grants) if g not in existing]
    if new:
        conn.execute(insert(perms), [{"image_id": image_id, "kind": kind, "grantee": grantee}
                                     for kind, grantee in new])


def remove_permissions(conn: Connection, image_id: str,
                       grants: Iterable[tuple[str, str]] | None = None) -> None:
    """Remove the named grants, or every grant when grants is None."""
    if grants is None:
        conn.execute(delete(perms).where(perms.c.image_id == image_id))
        return
    for kind, grantee in grants:
        conn.execute(delete(perms).where(perms.c.image_id == image_id, perms.c.kind == kind,
                                         perms.c.grantee == grantee))



# -- image copies --------------------------------------------------------------------------

def by_client_token(conn: Connection, account_id: str, region: str, token: str
                    ) -> Image | None:
    """The image copy this ClientToken made, if any. Takes the token's lock first, held to the
    end of the transaction: a lookup followed by the insert in the same transaction holds
    across processes (two API processes given the same token never both insert)."""
    serialize(conn, "client-token", "image", account_id, region, token)
    rows = list(conn.execute(select(images).where(
        i.account_id == account_id, i.region == region, i.client_token == token)))
    return _images(conn, rows)[0] if rows else None


def copies_in_progress(conn: Connection, account_id: str, region: str) -> int:
    """Image copies in progress; under the account and region's copy lock, as
    storage/copies.py open_jobs (a quota check then an insert holds across processes)."""
    serialize(conn, "copies", account_id, region)
    return len(conn.execute(select(i.image_id).where(
        i.account_id == account_id, i.region == region, i.state == PENDING,
        i.source_image_id.is_not(None))).all())


def lock_copy_of(conn: Connection, snapshot_id: str) -> Image | None:
    """The pending image copy whose mappings name this snapshot, its row locked for the rest
    of the transaction (FOR UPDATE; SQLite's one writer serializes anyway), so two workers
    finishing sibling copies decide the image's state one after the other."""
    image_id = conn.execute(
        select(images.c.image_id).join(bdm, i.image_id == bdm.c.image_id).where(
            bdm.c.snapshot_id == snapshot_id, i.state == PENDING,
            i.source_image_id.is_not(None)).limit(1)).scalar()
    if image_id is None:
        return None
    rows = list(conn.execute(select(images).where(i.image_id == image_id).with_for_update()))
    return _images(conn, rows)[0] if rows and rows[0].state == PENDING else None


def update_devices(conn: Connection, image_id: str, snapshot_id: str, **values: Any) -> None:
    conn.execute(update(bdm).where(bdm.c.image_id == image_id, bdm.c.snapshot_id == snapshot_id)
                 .values(**values))


# -- product codes (operator-set) -----------------------------------------------------------

def product_codes(conn: Connection, image_ids: list[str]) -> dict[str, list[tuple[str, str]]]:
    """Each image's (product code, type) pairs, in code order."""
    found: dict[str, list[tuple[str, str]]] = {image_id: [] for image_id in image_ids}
    if image_ids:
        rows = conn.execute(select(codes).where(codes.c.image_id.in_(image_ids))
                            .order_by(codes.c.image_id, codes.c.product_code))
        for row in rows:
            found[row.image_id].append((row.product_code, row.product_code_type))
    return found


def add_product_codes(conn: Connection, image_id: str, pairs: Iterable[tuple[str, str]]
                      ) -> None:
    existing = {code for code, _ in product_codes(conn, [image_id])[image_id]}
    new = [(code, kind) for code, kind in dict.fromkeys(pairs) if code not in existing]
    if new:
        conn.execute(insert(codes), [{"image_id": image_id, "product_code": code,
                                      "product_code_type": kind} for code, kind in new])
