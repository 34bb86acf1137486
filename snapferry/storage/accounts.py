"""Accounts and access keys in the metadata database; secrets sealed under the master key."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import threading
from dataclasses import dataclass

from sqlalchemy import Engine, delete, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from snapferry.domain.accounts import (
    DEV_ACCESS_KEY_ID,
    DEV_ACCOUNT_ID,
    DEV_SECRET_ACCESS_KEY,
    ROOT,
    USER,
    AccessKey,
    Principal,
    validate_access_key,
)
from snapferry.errors import ServiceError
from snapferry.storage import iam as iam_store
from snapferry.storage.metadata import access_keys, accounts, sts_sessions
from snapferry.storage.secrets import SecretBox


def _bound(access_key_id: str) -> bytes:
    return f"access-key:{access_key_id}".encode()


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# A key's last use is recorded at most this often (a write per request would be too many).
LAST_USED_EVERY = dt.timedelta(seconds=60)


@dataclass(frozen=True)
class Credential:
    """What an access key id stands for: a long-term key (an account root's or an IAM
    user's) or STS temporary credentials with their session token."""

    account_id: str
    access_key_id: str
    secret: str
    kind: str  # root | user | assumed-role
    name: str | None = None  # the user or role
    active: bool = True
    token_digest: str | None = None  # temporary credentials only
    session_name: str | None = None
    session_policies: str | None = None
    session_tags: str | None = None
    expires_at: dt.datetime | None = None
    last_used_at: dt.datetime | None = None

    @property
    def temporary(self) -> bool:
        return self.token_digest is not None

    def token_matches(self, token: str | None) -> bool:
        if self.token_digest is None:
            return token is None
        return token is not None and hmac.compare_digest(self.token_digest,
                                                         token_digest(token))


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
        """The secret of a usable key (an account root's, an active user key, a session's).
        Account roots' keys never change, so they are remembered; the others are read each
        time, since IAM may deactivate or delete them at any moment."""
        found = self._found.get(access_key_id)
        if found is not None:
            return found
        credential = self.credential(access_key_id)
        if credential is None or not credential.active:
            return None
        found = AccessKey(credential.account_id, access_key_id, credential.secret)
        if credential.kind == ROOT and not credential.temporary:
            with self._lock:
                self._found[access_key_id] = found
        return found

    def known_root(self, access_key_id: str) -> str | None:
        """The account whose root's key this is, if remembered (credential() and principal()
        then answer without a query); None otherwise."""
        found = self._found.get(access_key_id)
        return found.account_id if found is not None else None

    def credential(self, access_key_id: str) -> Credential | None:
        """What the key id stands for. An account root's key never changes, so it is
        remembered: the requests of roots cost no query here, as before IAM."""
        root = self._found.get(access_key_id)
        if root is not None:
            return Credential(root.account_id, access_key_id, root.secret_access_key, ROOT)
        with self._engine.connect() as conn:
            row = conn.execute(select(access_keys).where(
                access_keys.c.access_key_id == access_key_id)).first()
            if row is not None:
                secret = self._box.open(row.secret_sealed, _bound(access_key_id)).decode()
                if row.user_name is None:
                    with self._lock:
                        self._found[access_key_id] = AccessKey(row.account_id, access_key_id,
                                                               secret)
                return Credential(row.account_id, access_key_id, secret,
                                  USER if row.user_name else ROOT, row.user_name,
                                  active=row.status in (None, "Active"),
                                  last_used_at=row.last_used_at)
            row = conn.execute(select(sts_sessions).where(
                sts_sessions.c.access_key_id == access_key_id)).first()
        if row is None:
            return None
        secret = self._box.open(row.secret_sealed, _bound(access_key_id)).decode()
        return Credential(row.account_id, access_key_id, secret, row.kind, row.name,
                          token_digest=row.token_digest, session_name=row.session_name,
                          session_policies=row.session_policies,
                          session_tags=row.session_tags, expires_at=row.expires_at)

    def principal(self, credential: Credential) -> Principal | None:
        """Who the credential acts as, with its policies read now; None when its user or
        role is gone."""
        if credential.kind == ROOT:  # no query: roots have no policies
            return Principal(credential.account_id, credential.access_key_id,
                             temporary=credential.temporary, expires_at=credential.expires_at)
        with self._engine.connect() as conn:
            return iam_store.principal(
                conn, credential.account_id, credential.access_key_id, credential.kind,
                credential.name, credential.session_name, credential.session_policies,
                credential.session_tags, credential.temporary, credential.expires_at)

    def principal_of_key(self, access_key_id: str) -> Principal | None:
        """The principal a stored access key id acts as (the copy engine's view: a session
        that has since expired still stands for whoever started the copy)."""
        credential = self.credential(access_key_id)
        if credential is None or not credential.active:
            return None
        return self.principal(credential)

    def note_use(self, credential: Credential, service: str, region: str,
                 now: dt.datetime) -> None:
        """GetAccessKeyLastUsed's record, for long-term keys of users."""
        if credential.kind != USER or (credential.last_used_at is not None
                                       and now - credential.last_used_at < LAST_USED_EVERY):
            return
        with self._engine.begin() as conn:
            conn.execute(update(access_keys).where(
                access_keys.c.access_key_id == credential.access_key_id).values(
                last_used_at=now, last_used_service=service, last_used_region=region))

    def add_user_key(self, conn: Connection, account_id: str, user_name: str,
                     access_key_id: str, secret: str, now: dt.datetime) -> None:
        conn.execute(insert(access_keys).values(
            access_key_id=access_key_id, account_id=account_id,
            secret_sealed=self._box.seal(secret.encode(), _bound(access_key_id)),
            created_at=now, user_name=user_name, status="Active"))

    def add_session(self, conn: Connection, *, account_id: str, access_key_id: str,
                    secret: str, token: str, kind: str, name: str | None,
                    session_name: str | None, session_policies: str | None,
                    session_tags: str | None, now: dt.datetime, expires_at: dt.datetime
                    ) -> None:
        """Store temporary credentials; sessions long expired are dropped on the way."""
        conn.execute(delete(sts_sessions).where(
            sts_sessions.c.expires_at < now - dt.timedelta(days=7)))
        conn.execute(insert(sts_sessions).values(
            access_key_id=access_key_id, account_id=account_id,
            secret_sealed=self._box.seal(secret.encode(), _bound(access_key_id)),
            token_digest=token_digest(token), kind=kind, name=name,
            session_name=session_name, session_policies=session_policies,
            session_tags=session_tags, created_at=now, expires_at=expires_at))

    def account_exists(self, account_id: str) -> bool:
        with self._engine.connect() as conn:
            return conn.execute(select(accounts.c.account_id).where(
                accounts.c.account_id == account_id)).first() is not None

    def list(self) -> list[tuple[str, str]]:
        """(account id, access key id) pairs of account roots' keys, secrets left out."""
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(access_keys.c.account_id, access_keys.c.access_key_id).where(
                    access_keys.c.user_name.is_(None)).order_by(
                    access_keys.c.account_id, access_keys.c.access_key_id
                )
            )
            return [(row.account_id, row.access_key_id) for row in rows]
