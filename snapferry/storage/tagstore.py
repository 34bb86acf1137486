"""Tags of any resource, one table: read in bulk for Describe outputs, written with the
resource in the same transaction."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from sqlalchemy import delete, insert, select
from sqlalchemy.engine import Connection

from snapferry.storage.filtering import slices
from snapferry.storage.metadata import serialize, tags


def tags_of(conn: Connection, resource_ids: Iterable[str]) -> dict[str, dict[str, str]]:
    ids = list(resource_ids)
    found: dict[str, dict[str, str]] = {resource_id: {} for resource_id in ids}
    if not ids:
        return found
    for chunk in slices(ids):
        rows = conn.execute(
            select(tags.c.resource_id, tags.c.key, tags.c.value)
            .where(tags.c.resource_id.in_(chunk))
        )
        for row in rows:
            found[row.resource_id][row.key] = row.value
    return found


def tags_to_change(conn: Connection, resource_ids: Iterable[str]
                   ) -> dict[str, dict[str, str]]:
    """tags_of, for a count-then-add (the 50-tag limit): each resource's tag lock is taken
    first, held to the end of the transaction, so two API processes adding tags to one
    resource take turns (in a fixed order: no deadlock between two multi-resource calls)."""
    ids = list(resource_ids)
    for resource_id in sorted(set(ids)):
        serialize(conn, "tags", resource_id)
    return tags_of(conn, ids)


def set_tags(
    conn: Connection,
    resource_id: str,
    resource_type: str,
    account_id: str,
    region: str,
    new_tags: Mapping[str, str],
) -> None:
    """Add or overwrite `new_tags` on the resource."""
    if not new_tags:
        return
    conn.execute(
        delete(tags).where(tags.c.resource_id == resource_id, tags.c.key.in_(list(new_tags)))
    )
    conn.execute(
        insert(tags),
        [
            {"resource_id": resource_id, "key": key, "value": value, "account_id": account_id,
             "region": region, "resource_type": resource_type}
            for key, value in new_tags.items()
        ],
    )


def delete_tags(conn: Connection, resource_id: str, keys: Iterable[str] | None = None) -> None:
    """Delete the named keys, or every tag of the resource when keys is None."""
    statement = delete(tags).where(tags.c.resource_id == resource_id)
    if keys is not None:
        statement = statement.where(tags.c.key.in_(list(keys)))
    conn.execute(statement)
