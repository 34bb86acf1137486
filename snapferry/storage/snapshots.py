"""Snapshot records, their createVolumePermission, and DescribeSnapshots done in SQL."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

from sqlalchemy import and_, bindparam, delete, exists, insert, literal, or_, select, update
from sqlalchemy.engine import Connection

from snapferry.domain.snapshots import Snapshot
from snapferry.storage.filtering import (
    Field,
    filter_clauses,
    narrowed,
    page_of,
    slices,
    tagged_ids,
)
from snapferry.storage.metadata import serialize, snapshots
from snapferry.storage.metadata import snapshot_permissions as perms

GROUP_ALL = ("group", "all")
_FIELDS = [field.name for field in dataclasses.fields(Snapshot)]
s = snapshots.c

SNAPSHOT_FILTERS = {
    "description": Field(s.description),
    "encrypted": Field(s.encrypted, "bool"),
    "owner-id": Field(s.account_id),
    "progress": Field(s.progress, "percent"),
    "snapshot-id": Field(s.snapshot_id),
    "start-time": Field(s.start_time, "time"),
    "status": Field(s.state),
    "volume-id": Field(s.volume_id),
    "volume-size": Field(s.volume_size, "int"),
    "kms-key-id": Field(s.kms_key_id),
    "transfer-type": Field(s.transfer_type),
    # Every snapshot here is in the standard tier, and none is Amazon's (no owner alias).
    "storage-tier": Field(literal("standard")),
    "owner-alias": Field(literal("")),
}


def _snapshot(row: Any) -> Snapshot:
    mapping = row._mapping  # built once, not once a field
    return Snapshot(**{name: mapping[name] for name in _FIELDS})


def insert_snapshot(conn: Connection, snapshot: Snapshot) -> None:
    conn.execute(insert(snapshots).values(**dataclasses.asdict(snapshot)))


def update_snapshot(conn: Connection, snapshot_id: str, only_if_state: str | None = None,
                    **values: Any) -> bool:
    """Change fields; with only_if_state, only while the snapshot is in that state.
    Returns whether it changed (and, being a write, it holds the row until commit)."""
    statement = update(snapshots).where(s.snapshot_id == snapshot_id)
    if only_if_state is not None:
        statement = statement.where(s.state == only_if_state)
    return conn.execute(statement.values(**values)).rowcount == 1


def delete_snapshot(conn: Connection, snapshot_id: str) -> None:
    conn.execute(delete(perms).where(perms.c.snapshot_id == snapshot_id))
    conn.execute(delete(snapshots).where(s.snapshot_id == snapshot_id))


# Built once: every EBS direct call reads its snapshot, and building the expression cost
# more than running it (bench/profile_blocks.py).
_BY_ID = select(snapshots).where(s.snapshot_id == bindparam("snapshot_id"),
                                 s.region == bindparam("region"))


def get_snapshot(conn: Connection, region: str, snapshot_id: str) -> Snapshot | None:
    row = conn.execute(_BY_ID, {"snapshot_id": snapshot_id, "region": region}).first()
    return _snapshot(row) if row else None


def by_client_token(conn: Connection, account_id: str, region: str, token: str
                    ) -> Snapshot | None:
    """The snapshot this ClientToken made, if any. Takes the token's lock first, held to the
    end of the transaction: a lookup followed by the insert in the same transaction holds
    across processes (two API processes given the same token never both insert)."""
    serialize(conn, "client-token", "snapshot", account_id, region, token)
    row = conn.execute(
        select(snapshots).where(s.account_id == account_id, s.region == region,
                                s.client_token == token)
    ).first()
    return _snapshot(row) if row else None


def _visible_to(account_id: str) -> Any:
    """Owned, shared with the account by id, or public."""
    shared = exists(
        select(perms.c.snapshot_id).where(
            perms.c.snapshot_id == s.snapshot_id,
            or_(and_(perms.c.kind == "user", perms.c.grantee == account_id),
                and_(perms.c.kind == GROUP_ALL[0], perms.c.grantee == GROUP_ALL[1])),
        )
    )
    return or_(s.account_id == account_id, shared)


def _granted_to(kind: str, grantees: list[str]) -> Any:
    return exists(select(perms.c.snapshot_id).where(
        perms.c.snapshot_id == s.snapshot_id, perms.c.kind == kind,
        or_(*(perms.c.grantee.in_(chunk) for chunk in slices(grantees)))))


def _restorable_by(account_id: str, who: list[str]) -> Any:
    # One clause per kind of value, however many values: a clause per value would build an
    # expression deeper than the database runs.
    clauses = []
    if "all" in who:
        kind, grantee = GROUP_ALL
        clauses.append(_granted_to(kind, [grantee]))
    if "self" in who:
        # Your own snapshots are restorable by you implicitly.
        clauses.append(or_(s.account_id == account_id, _granted_to("user", [account_id])))
    others = [value for value in who if value not in ("all", "self")]
    if others:
        # Another account id asks which of your snapshots that account may restore.
        clauses.append(and_(s.account_id == account_id, _granted_to("user", others)))
    return or_(*clauses)


def describe_snapshots(
    conn: Connection,
    account_id: str,
    region: str,
    snapshot_ids: list[str] | None,
    owners: list[str] | None,
    restorable_by: list[str] | None,
    filters: list[dict[str, Any]] | None,
    limit: int | None,
    after: str | None,
) -> tuple[list[Snapshot], str | None]:
    """One page of the snapshots the account can see, in snapshot id order, and the id
    after which the next page starts (None on the last page)."""
    query = select(snapshots).where(s.region == region, _visible_to(account_id))
    if owners:
        wanted_owners = {account_id if o == "self" else o for o in owners}
        query = query.where(or_(*(s.account_id.in_(chunk) for chunk in slices([*wanted_owners]))))
    if restorable_by:
        query = query.where(_restorable_by(account_id, restorable_by))
    for clause in filter_clauses(filters, SNAPSHOT_FILTERS, s.snapshot_id):
        query = query.where(clause)
    tagged = tagged_ids(conn, region, filters)
    wanted = narrowed(snapshot_ids, tagged)
    if tagged is not None and not wanted:
        return [], None
    rows, last = page_of(conn, query, s.snapshot_id, wanted, limit, after)
    return [_snapshot(row) for row in rows], last


def permissions(conn: Connection, snapshot_id: str) -> list[tuple[str, str]]:
    rows = conn.execute(
        select(perms.c.kind, perms.c.grantee).where(perms.c.snapshot_id == snapshot_id)
        .order_by(perms.c.kind, perms.c.grantee)
    )
    return [(row.kind, row.grantee) for row in rows]


def can_restore(conn: Connection, snapshot: Snapshot, account_id: str,
                public_counts: bool = True) -> bool:
    """Owner, named account, or (when public_counts) anyone for a public snapshot."""
    if snapshot.account_id == account_id:
        return True
    granted = set(permissions(conn, snapshot.snapshot_id))
    return ("user", account_id) in granted or (public_counts and GROUP_ALL in granted)


def add_permissions(conn: Connection, snapshot_id: str,
                    grants: Iterable[tuple[str, str]]) -> None:
    existing = set(permissions(conn, snapshot_id))
    new = [g for g in dict.fromkeys(grants) if g not in existing]
    if new:
        conn.execute(insert(perms), [
            {"snapshot_id": snapshot_id, "kind": kind, "grantee": grantee}
            for kind, grantee in new
        ])


def remove_permissions(conn: Connection, snapshot_id: str,
                       grants: Iterable[tuple[str, str]] | None = None) -> None:
    """Remove the named grants, or every grant when grants is None."""
    if grants is None:
        conn.execute(delete(perms).where(perms.c.snapshot_id == snapshot_id))
        return
    for kind, grantee in grants:
        conn.execute(delete(perms).where(perms.c.snapshot_id == snapshot_id,
                                         perms.c.kind == kind, perms.c.grantee == grantee))
