"""CreateTags, DeleteTags, DescribeTags for volumes, snapshots and images."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ARRAY, String, any_, bindparam, func, select

from snapferry.domain import ids
from snapferry.domain.filters import check_filter_limits
from snapferry.domain.tags import MAX_TAGS, keys_to_delete, tags_from_list
from snapferry.errors import ServiceError
from snapferry.services.context import Output, RequestContext
from snapferry.services.ec2.common import page_size
from snapferry.storage.filtering import Field, filter_clauses
from snapferry.storage.metadata import images, snapshots, tags, volumes
from snapferry.storage.tagstore import delete_tags, set_tags, tags_of, tags_to_change

TAG_FILTERS = {
    "key": Field(tags.c.key),
    "value": Field(tags.c.value),
    "resource-id": Field(tags.c.resource_id),
    "resource-type": Field(tags.c.resource_type),
}
MAX_RESOURCES = 1000
_TABLES = {"snap": (snapshots, snapshots.c.snapshot_id, "snapshot"),
           "vol": (volumes, volumes.c.volume_id, "volume"),
           "ami": (images, images.c.image_id, "image")}
_NOT_FOUND = {"snapshot": "InvalidSnapshot.NotFound", "volume": "InvalidVolume.NotFound",
              "image": "InvalidAMIID.NotFound"}


def _owned_resources(ctx: RequestContext, conn: Any, resource_ids: list[str]) -> dict[str, str]:
    """resource id -> resource type for each id, all owned by the caller in this region."""
    if len(resource_ids) > MAX_RESOURCES:
        raise ServiceError("InvalidParameterValue",
                           f"At most {MAX_RESOURCES} resources can be tagged per request.")
    found: dict[str, str] = {}
    for resource_id in resource_ids:
        prefix = resource_id.split("-", 1)[0]
        if prefix not in _TABLES or not ids.is_id(prefix, resource_id):
            raise ServiceError("InvalidID", f"The ID '{resource_id[:100]}' is not valid: "
                               "snapferry tags volumes (vol-...), snapshots (snap-...) and "
                               "images (ami-...).")
        table, id_column, kind = _TABLES[prefix]
        query = select(id_column).where(
            id_column == resource_id, table.c.account_id == ctx.account_id,
            table.c.region == ctx.region)
        if kind == "image":  # a deregistered image keeps its record, but not its tags
            query = query.where(table.c.state != "deregistered")
        if conn.execute(query).first() is None:
            raise ServiceError(_NOT_FOUND[kind], f"The {kind} '{resource_id}' does not exist.")
        found[resource_id] = kind
    return found


def create_tags(ctx: RequestContext, params: dict[str, Any]) -> Output:
    new = tags_from_list(params["Tags"])
    with ctx.storage.engine.begin() as conn:
        resources = _owned_resources(ctx, conn, params["Resources"])
        current = tags_to_change(conn, resources)
        for resource_id in resources:
            if len(current[resource_id] | new) > MAX_TAGS:
                raise ServiceError("TagLimitExceeded",
                                   f"{resource_id} would have more than {MAX_TAGS} tags.")
        ctx.authorize()
        for resource_id, kind in resources.items():
            set_tags(conn, resource_id, kind, ctx.account_id, ctx.region, new)
    return {}


def delete_tags_handler(ctx: RequestContext, params: dict[str, Any]) -> Output:
    with ctx.storage.engine.begin() as conn:
        resources = _owned_resources(ctx, conn, params["Resources"])
        current = tags_of(conn, resources)
        doomed = {rid: keys_to_delete(current[rid], params.get("Tags")) for rid in resources}
        ctx.authorize()
        for resource_id, keys in doomed.items():
            delete_tags(conn, resource_id, keys)
    return {}


def tags_query(account_id: str, region: str, filters: list[dict[str, Any]] | None,
               after: tuple[str, str] | None, limit: int | None,
               ids_as_array: bool = False) -> Any:
    """One page of the account's tags in (resource id, key) order. Exact resource ids go in
    one IN list, so the primary key is seeked per id and already gives the order (an OR of
    equalities made SQLite read and sort every tag of the account). `ids_as_array`
    (PostgreSQL): a resource-id filter of exact ids is ONE array parameter instead of a
    parameter per id (binding 200 of them took half the statement's time), and it reaches
    the planner as `= ANY(ARRAY(SELECT unnest(:ids)))`: an array the planner cannot see into.
    Given the ids themselves (`= ANY(:ids)`), PostgreSQL estimates each of them against its
    statistics (planning ~3 ms of its CPU at 200 ids) and, on a store of some 10k tags,
    prices 200 key seeks over a scan of every tag, which then tests each row against the
    200 ids (~4 ms more). Hidden, the array is costed as a few ids: always the key seeks,
    whatever the size of the store (BENCHMARKS.md, "PostgreSQL profiles, session 23")."""
    # Only the columns the answer carries (account and region are the caller's).
    query = select(tags.c.resource_id, tags.c.key, tags.c.value, tags.c.resource_type).where(
        tags.c.account_id == account_id, tags.c.region == region)
    check_filter_limits(filters)
    rest = []
    for item in filters or ():
        values = item.get("Values") or []
        if (ids_as_array and item.get("Name") == "resource-id" and values
                and not any("*" in value or "?" in value for value in values)):
            ids = bindparam(None, list(values), type_=ARRAY(String))
            query = query.where(tags.c.resource_id == any_(
                func.array(select(func.unnest(ids)).scalar_subquery())))
        else:
            rest.append(item)
    for clause in filter_clauses(rest, TAG_FILTERS, tags.c.resource_id):
        query = query.where(clause)
    if after:
        query = query.where((tags.c.resource_id > after[0])
                            | ((tags.c.resource_id == after[0]) & (tags.c.key > after[1])))
    query = query.order_by(tags.c.resource_id, tags.c.key)
    return query.limit(limit + 1) if limit is not None else query


def describe_tags(ctx: RequestContext, params: dict[str, Any]) -> Output:
    limit = page_size(params)
    token = params.get("NextToken")
    after: tuple[str, str] | None = None
    if token:
        resource_id, _, key = token.partition("\n")
        if not key:
            raise ServiceError("InvalidNextToken", "The NextToken is not valid.")
        after = (resource_id, key)
    ctx.authorize()
    query = tags_query(ctx.account_id, ctx.region, params.get("Filters"), after, limit,
                       ids_as_array=ctx.storage.engine.dialect.name == "postgresql")
    with ctx.storage.engine.connect() as conn:
        rows = conn.execute(query).all()  # one fetchall, not a fetch per row
    # Rows unpacked as tuples: reading a Row's columns by name costs more than the query.
    output: Output = {"Tags": [
        {"ResourceId": resource_id, "ResourceType": kind, "Key": key, "Value": value}
        for resource_id, key, value, kind in rows[:limit]
    ]}
    if limit is not None and len(rows) > limit:
        resource_id, key, _, _ = rows[limit - 1]
        output["NextToken"] = f"{resource_id}\n{key}"
    return output


HANDLERS = {
    "CreateTags": create_tags,
    "DeleteTags": delete_tags_handler,
    "DescribeTags": describe_tags,
}
