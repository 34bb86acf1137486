"""Accounts and access keys in the metadata database; secrets sealed under the master key."""

from __future__ import annotations

import datetime as dt
import threading

from sqlalchemy import Engine, insert, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from snapferry.domain.accounts import (
    DEV_ACCESS_KEY_ID,
    DEV_ACCOUNT_ID,
    DEV_SECRET_ACCESS_KEY,
    AccessKey,
    validate_access_key,
)
from snapferry.errors import ServiceError
from snapferry.storage.metadata import access_keys, accounts
from snapferry.storage.secrets import SecretBox


def _bound(access_key_id: str) -> bytes:
    return f"access-key:{access_key_id}".encode()


class AccountStore:
    def __init__(self, engine: Engine, box: SecretBox) -> None:
        self._engine = engine
        self._box = box
        # Keys are never changed once written, so a found key can be remembered; a key not
        # found is looked up again next time, which is how a running server sees keys that
        # `snapferry accounts add` wrote a moment ago.
        self._found: dict[str, AccessKey] = {}
        self._lock = threading.Lock()

    def seed_dev_account(self, conn: Connection) -> None:
        self._insert(
            conn, AccessKey(DEV_ACCOUNT_ID, DEV_ACCESS_KEY_ID, DEV_SECRET_ACCESS_KEY)
        )

    def add(self, key: AccessKey) -> None:
        """Add an access key, creating its account if new. Refuses malformed or taken keys."""
        validate_access_key(key)
        try:
            with self._engine.begin() as conn:
                self._insert(conn, key)
        except IntegrityError:
            raise ServiceError(
                "EntityAlreadyExists",
                f"Access key id '{key.access_key_id}' is already in use; choose another.",
            ) from None

    def _insert(self, conn: Connection, key: AccessKey) -> None:
        now = dt.datetime.now(dt.UTC)
        known = conn.execute(
            select(accounts.c.account_id).where(accounts.c.account_id == key.account_id)
        ).first()
        if known is None:
            conn.execute(insert(accounts).values(account_id=key.account_id, created_at=now))
        conn.execute(
            insert(access_keys).values(
                access_key_id=key.access_key_id,
                account_id=key.account_id,
                secret_sealed=self._box.seal(
                    key.secret_access_key.encode(), _bound(key.access_key_id)
                ),
                created_at=now,
            )
        )

    def find(self, access_key_id: str) -> AccessKey | None:
        found = self._found.get(access_key_id)
        if found is not None:
            return found
        with self._engine.connect() as conn:
            row = conn.execute(
                select(access_keys.c.account_id, access_keys.c.secret_sealed).where(
                    access_keys.c.access_key_id == access_key_id
                )
            ).first()
        if row is None:
            return None
        secret = self._box.open(row.secret_sealed, _bound(access_key_id)).decode()
        found = AccessKey(row.account_id, access_key_id, secret)
        with self._lock:
            self._found[access_key_id] = found
        return found

    def list(self) -> list[tuple[str, str]]:
        """(account id, access key id) pairs, secrets left out."""
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(access_keys.c.account_id, access_keys.c.access_key_id).order_by(
                    access_keys.c.account_id, access_keys.c.access_key_id
                )
            )
            return [(row.account_id, row.access_key_id) for row in rows]
