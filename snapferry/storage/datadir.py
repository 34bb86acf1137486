"""Open everything a data dir holds, creating and migrating it on first use."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine

from snapferry.config import Settings
from snapferry.domain.tokens import TokenMinter, derive_key
from snapferry.storage.accounts import AccountStore
from snapferry.storage.blockdata import BlockData
from snapferry.storage.blocks import BlockStore
from snapferry.storage.blocks.fs import FileBlockStore
from snapferry.storage.metadata import migrate, open_engine, sqlite_url
from snapferry.storage.secrets import SecretBox, load_or_create_master_key

BLOCKS_DIR = "blocks"


@dataclass
class Storage:
    data_dir: Path
    engine: Engine
    accounts: AccountStore
    blocks: BlockStore
    block_data: BlockData
    tokens: TokenMinter
    box: SecretBox  # seals secrets and key material under the master key

    def close(self) -> None:
        self.engine.dispose()


def open_storage(settings: Settings) -> Storage:
    data_dir = settings.data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    master_key = load_or_create_master_key(data_dir)
    box = SecretBox(master_key)
    engine = open_engine(settings.database_url or sqlite_url(data_dir))
    account_store = AccountStore(engine, box)
    migrate(engine, seed=account_store.seed_dev_account)
    block_store = FileBlockStore(data_dir / BLOCKS_DIR)
    return Storage(
        data_dir=data_dir,
        engine=engine,
        accounts=account_store,
        blocks=block_store,
        block_data=BlockData(engine, block_store),
        tokens=TokenMinter(derive_key(master_key, b"tokens")),
        box=box,
    )
