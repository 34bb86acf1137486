"""KMS keys, aliases and grants; EBS encryption settings; lineage data keys."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Connection

from snapferry.domain.keys import Key
from snapferry.domain.policy import Grant
from snapferry.storage.metadata import (
    ebs_settings,
    insert_ignoring_conflict,
    kms_aliases,
    kms_grants,
    kms_keys,
    lineage_keys,
)

_FIELDS = [f.name for f in dataclasses.fields(Key)]
k = kms_keys.c


def _key(row: Any) -> Key:
    return Key(**{name: row._mapping[name] for name in _FIELDS})


def insert_key(conn: Connection, key: Key) -> None:
    conn.execute(insert(kms_keys).values(**dataclasses.asdict(key)))


def get_key(conn: Connection, key_id: str) -> Key | None:
    row = conn.execute(select(kms_keys).where(k.key_id == key_id)).first()
    return _key(row) if row else None


def update_key(conn: Connection, key_id: str, **values: Any) -> None:
    conn.execute(update(kms_keys).where(k.key_id == key_id).values(**values))


def list_keys(conn: Connection, account_id: str, region: str, after: str | None,
              limit: int) -> list[Key]:
    query = select(kms_keys).where(k.account_id == account_id, k.region == region)
    if after:
        query = query.where(k.key_id > after)
    return [_key(r) for r in conn.execute(query.order_by(k.key_id).limit(limit + 1))]


def alias_target(conn: Connection, account_id: str, region: str, alias: str) -> str | None:
    return conn.execute(select(kms_aliases.c.key_id).where(
        kms_aliases.c.account_id == account_id, kms_aliases.c.region == region,
        kms_aliases.c.alias_name == alias)).scalar()


def put_alias(conn: Connection, account_id: str, region: str, alias: str, key_id: str,
              now: dt.datetime, create: bool) -> None:
    if create:
        conn.execute(insert(kms_aliases).values(
            account_id=account_id, region=region, alias_name=alias, key_id=key_id,
            creation_date=now, last_updated_date=now))
    else:
        conn.execute(update(kms_aliases).where(
            kms_aliases.c.account_id == account_id, kms_aliases.c.region == region,
            kms_aliases.c.alias_name == alias).values(key_id=key_id, last_updated_date=now))


def delete_alias(conn: Connection, account_id: str, region: str, alias: str) -> None:
    conn.execute(delete(kms_aliases).where(
        kms_aliases.c.account_id == account_id, kms_aliases.c.region == region,
        kms_aliases.c.alias_name == alias))


def list_aliases(conn: Connection, account_id: str, region: str,
                 key_id: str | None = None) -> list[Any]:
    query = select(kms_aliases).where(kms_aliases.c.account_id == account_id,
                                      kms_aliases.c.region == region)
    if key_id:
        query = query.where(kms_aliases.c.key_id == key_id)
    return list(conn.execute(query.order_by(kms_aliases.c.alias_name)))


def insert_grant(conn: Connection, **values: Any) -> None:
    conn.execute(insert(kms_grants).values(**values))


def grant_rows(conn: Connection, key_id: str) -> list[Any]:
    return list(conn.execute(select(kms_grants).where(kms_grants.c.key_id == key_id)
                             .order_by(kms_grants.c.creation_date, kms_grants.c.grant_id)))


def grants_of(conn: Connection, key_id: str) -> tuple[Grant, ...]:
    grants = []
    for row in grant_rows(conn, key_id):
        constraints = json.loads(row.constraints) if row.constraints else {}
        grants.append(Grant(
            grantee=row.grantee,
            operations=frozenset(row.operations.split(",")),
            context_equals=constraints.get("EncryptionContextEquals"),
            context_subset=constraints.get("EncryptionContextSubset"),
            grant_id=row.grant_id,
        ))
    return tuple(grants)


def delete_grant(conn: Connection, key_id: str, grant_id: str) -> bool:
    return conn.execute(delete(kms_grants).where(
        kms_grants.c.key_id == key_id, kms_grants.c.grant_id == grant_id)).rowcount == 1


def grant_by_token(conn: Connection, token: str) -> Any:
    return conn.execute(select(kms_grants).where(kms_grants.c.grant_token == token)).first()


def ebs_encryption(conn: Connection, account_id: str, region: str) -> tuple[bool, str | None]:
    row = conn.execute(select(ebs_settings).where(
        ebs_settings.c.account_id == account_id, ebs_settings.c.region == region)).first()
    return (row.encryption_by_default, row.default_key_arn) if row else (False, None)


def set_ebs_encryption(conn: Connection, account_id: str, region: str, **values: Any) -> None:
    insert_ignoring_conflict(conn, ebs_settings, {
        "account_id": account_id, "region": region, "encryption_by_default": False,
        "default_key_arn": None})
    conn.execute(update(ebs_settings).where(
        ebs_settings.c.account_id == account_id, ebs_settings.c.region == region).values(**values))


def lineage_key(conn: Connection, lineage_id: str) -> tuple[str, bytes] | None:
    row = conn.execute(select(lineage_keys).where(lineage_keys.c.lineage_id == lineage_id)).first()
    return (row.key_arn, row.wrapped_data_key) if row else None


def insert_lineage_key(conn: Connection, lineage_id: str, key_arn: str, wrapped: bytes) -> None:
    conn.execute(insert(lineage_keys).values(lineage_id=lineage_id, key_arn=key_arn,
                                             wrapped_data_key=wrapped))
