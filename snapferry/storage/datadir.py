"""Open everything a data dir holds, creating and migrating it on first use."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine

from snapferry.config import Settings
from snapferry.storage.accounts import AccountStore
from snapferry.storage.metadata import migrate, open_engine, sqlite_url
from snapferry.storage.secrets import SecretBox, load_or_create_master_key

BLOCKS_DIR = "blocks"


@dataclass
class Storage:
    data_dir: Path
    engine: Engine
    accounts: AccountStore

    @property
    def blocks_dir(self) -> Path:
        return self.data_dir / BLOCKS_DIR

    def close(self) -> None:
        self.engine.dispose()


def open_storage(settings: Settings) -> Storage:
    data_dir = settings.data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / BLOCKS_DIR).mkdir(exist_ok=True)
    box = SecretBox(load_or_create_master_key(data_dir))
    engine = open_engine(settings.database_url or sqlite_url(data_dir))
    account_store = AccountStore(engine, box)
    migrate(engine, seed=account_store.seed_dev_account)
    return Storage(data_dir, engine, account_store)
