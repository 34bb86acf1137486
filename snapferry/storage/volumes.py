"""Volume records and DescribeVolumes done in SQL."""

from __future__ import annotations

import dataclasses
from typing import Any

from sqlalchemy import delete, insert, literal, select, update
from sqlalchemy.engine import Connection

from snapferry.domain.volumes import Volume
from snapferry.storage.filtering import Field, filter_clauses, narrowed, page_of, tagged_ids
from snapferry.storage.metadata import serialize, volumes

_FIELDS = [field.name for field in dataclasses.fields(Volume)]
v = volumes.c

VOLUME_FILTERS = {
    "availability-zone": Field(v.availability_zone),
    "create-time": Field(v.create_time, "time"),
    "encrypted": Field(v.encrypted, "bool"),
    "multi-attach-enabled": Field(v.multi_attach, "bool"),
    "size": Field(v.size, "int"),
    "snapshot-id": Field(v.snapshot_id),
    "status": Field(v.state),
    "volume-id": Field(v.volume_id),
    "volume-type": Field(v.volume_type),
    "kms-key-id": Field(v.kms_key_id),
    # Nothing attaches volumes here: every attachment filter matches nothing.
    "attachment.instance-id": Field(literal("")),
    "attachment.status": Field(literal("")),
}


def _volume(row: Any) -> Volume:
    mapping = row._mapping  # built once, not once a field
    return Volume(**{name: mapping[name] for name in _FIELDS})


def insert_volume(conn: Connection, volume: Volume) -> None:
    conn.execute(insert(volumes).values(**dataclasses.asdict(volume)))


def set_volume_state(conn: Connection, volume_id: str, state: str,
                     only_if: str | None = None) -> bool:
    """False when `only_if` is given and the volume was not in that state."""
    query = update(volumes).where(v.volume_id == volume_id)
    if only_if is not None:
        query = query.where(v.state == only_if)
    return conn.execute(query.values(state=state)).rowcount == 1


def delete_volume(conn: Connection, volume_id: str) -> None:
    conn.execute(delete(volumes).where(v.volume_id == volume_id))


def get_volume(conn: Connection, account_id: str, region: str, volume_id: str
               ) -> Volume | None:
    row = conn.execute(
        select(volumes).where(v.volume_id == volume_id, v.account_id == account_id,
                              v.region == region)
    ).first()
    return _volume(row) if row else None


def by_client_token(conn: Connection, account_id: str, region: str, token: str
                    ) -> Volume | None:
    """The volume this ClientToken made, if any. Takes the token's lock first, held to the
    end of the transaction: a lookup followed by the insert in the same transaction holds
    across processes (two API processes given the same token never both insert)."""
    serialize(conn, "client-token", "volume", account_id, region, token)
    row = conn.execute(
        select(volumes).where(v.account_id == account_id, v.region == region,
                              v.client_token == token)
    ).first()
    return _volume(row) if row else None


def describe_volumes(
    conn: Connection,
    account_id: str,
    region: str,
    volume_ids: list[str] | None,
    filters: list[dict[str, Any]] | None,
    limit: int | None,
    after: str | None,
) -> tuple[list[Volume], str | None]:
    query = select(volumes).where(v.region == region, v.account_id == account_id)
    for clause in filter_clauses(filters, VOLUME_FILTERS, v.volume_id):
        query = query.where(clause)
    tagged = tagged_ids(conn, region, filters)
    wanted = narrowed(volume_ids, tagged)
    if tagged is not None and not wanted:
        return [], None
    rows, last = page_of(conn, query, v.volume_id, wanted, limit, after)
    return [_volume(row) for row in rows], last
