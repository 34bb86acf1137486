"""Open everything a data dir holds, creating and migrating it on first use."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine

from snapferry.config import Settings
from snapferry.domain.tokens import TokenMinter, derive_key
from snapferry.storage.accounts import AccountStore
from snapferry.storage.blockdata import BlockData
from snapferry.storage.blocks import BlockStore
from snapferry.storage.blocks.fs import FileBlockStore
from snapferry.storage.files import PRIVATE_FILE, check_private, make_private_dir
from snapferry.storage.metadata import DATABASE_FILE, migrate, open_engine, sqlite_url
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


def _private_database(data_dir: Path) -> None:
    """The SQLite files exist with mode 0600 before SQLite opens them: it creates the -wal
    and -shm files with the database file's mode, and its own default is 0644 less the
    umask. Files an older version left more open are closed up (three files, cheap)."""
    database = data_dir / DATABASE_FILE
    os.close(os.open(database, os.O_WRONLY | os.O_CREAT, PRIVATE_FILE))
    for path in (database, *(database.with_name(database.name + s) for s in ("-wal", "-shm"))):
        if path.exists():
            path.chmod(PRIVATE_FILE)


def open_block_store(settings: Settings) -> BlockStore:
    if settings.block_store is None:
        return FileBlockStore(settings.data_dir / BLOCKS_DIR)
    from snapferry.storage.blocks.s3 import S3BlockStore

    return S3BlockStore(settings.block_store, settings.s3_endpoint_url)


def open_storage(settings: Settings) -> Storage:
    """Raises ModeError, changing nothing, when the data dir is open to other local users:
    its blocks and database may already have been read, which its owner must know."""
    data_dir = settings.data_dir
    make_private_dir(data_dir)
    check_private(data_dir)
    master_key = load_or_create_master_key(data_dir)
    box = SecretBox(master_key)
    if settings.database_url is None:
        _private_database(data_dir)
    engine = open_engine(settings.database_url or sqlite_url(data_dir))
    account_store = AccountStore(engine, box)
    migrate(engine, seed=account_store.seed_dev_account)
    block_store = open_block_store(settings)
    return Storage(
        data_dir=data_dir,
        engine=engine,
        accounts=account_store,
        blocks=block_store,
        block_data=BlockData(engine, block_store),
        tokens=TokenMinter(derive_key(master_key, b"tokens")),
        box=box,
    )
