"""Image rules that need time to pass or records CopyImage will write: deprecation seen at a
moved clock, ancestry through a deregistered image, and the migration that adds images."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import insert, inspect, select
from sqlalchemy.exc import IntegrityError

from snapferry.domain import images as rules
from snapferry.domain.images import BlockDevice, Image
from snapferry.storage import images as store
from snapferry.storage import metadata
from snapferry.storage.datadir import Storage

NOW = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.UTC)
OWNER, USER = "000000000000", "222222222222"


def image(image_id: str, region: str = "us-east-1", source: Image | None = None,
          **fields: object) -> Image:
    fields.setdefault("state", rules.AVAILABLE)
    fields.setdefault("name", image_id)
    return Image(
        image_id=image_id, account_id=OWNER, region=region,
        creation_date=NOW, image_location=f"{OWNER}/{image_id}",
        architecture="x86_64", virtualization_type="hvm", root_device_name="/dev/xvda",
        source_image_id=source.image_id if source else None,
        source_image_region=source.region if source else None,
        block_devices=[BlockDevice(device_name="/dev/xvda", snapshot_id="snap-00000001",
                                   volume_size=1, volume_type="gp2")],
        **fields,  # type: ignore[arg-type]
    )


def describe(storage: Storage, account: str, now: dt.datetime, **args: object) -> set[str]:
    options: dict[str, object] = {"include_deprecated": False, "include_disabled": False, **args}
    with storage.engine.connect() as conn:
        found, _ = store.describe_images(conn, account, "us-east-1", now, None, None, None,
                                         None, limit=None, after=None, **options)
    return {i.image_id for i in found}


def test_deprecated_images_hide_from_others_once_the_time_has_come(storage: Storage) -> None:
    deprecated_at = NOW + dt.timedelta(days=1)
    with storage.engine.begin() as conn:
        store.insert_image(conn, image("ami-0000000000000000a", deprecation_time=deprecated_at))
        store.add_permissions(conn, "ami-0000000000000000a", [("user", USER)])
    before, after = deprecated_at - dt.timedelta(seconds=1), deprecated_at
    assert describe(storage, USER, before) == {"ami-0000000000000000a"}
    assert describe(storage, USER, after) == set()
    assert describe(storage, USER, after, include_deprecated=True) == {"ami-0000000000000000a"}
    assert describe(storage, OWNER, after) == {"ami-0000000000000000a"}  # owners always


def test_disabled_images_only_when_asked(storage: Storage) -> None:
    with storage.engine.begin() as conn:
        store.insert_image(conn, image("ami-0000000000000000d", state=rules.DISABLED))
    assert describe(storage, OWNER, NOW) == set()
    assert describe(storage, OWNER, NOW, include_disabled=True) == {"ami-0000000000000000d"}


def test_ancestry_outlives_a_deregistered_image_in_the_middle(storage: Storage) -> None:
    root = image("ami-00000000000000001", owner_alias="amazon")
    middle = image("ami-00000000000000002", region="eu-west-1", source=root)
    leaf = image("ami-00000000000000003", source=middle)
    with storage.engine.begin() as conn:
        for each in (root, middle, leaf):
            store.insert_image(conn, each)
        store.update_image(conn, middle.image_id, state=rules.DEREGISTERED)
        chain = rules.ancestry(leaf, lambda image_id, region: store.get_image(
            conn, region, image_id))
        assert [i.image_id for i in chain] == [leaf.image_id, middle.image_id, root.image_id]
        # An image copied from an AWS alias's image stops there, even if that one has a source.
        aliased = image("ami-00000000000000004", owner_alias="amazon", source=leaf)
        assert rules.ancestry(aliased, lambda *_: pytest.fail("looked past the root")) == [
            aliased]


def test_ancestry_stops_at_fifty(storage: Storage) -> None:
    chain = [image("ami-00000000000000100")]
    for n in range(1, 60):
        chain.append(image(f"ami-{100 + n:017d}", source=chain[-1]))
    by_id = {i.image_id: i for i in chain}
    found = rules.ancestry(chain[-1], lambda image_id, _region: by_id[image_id])
    assert len(found) == rules.MAX_ANCESTRY == 50


def test_a_version_1_database_gains_the_image_tables(tmp_path: Path) -> None:
    engine = metadata.open_engine(metadata.sqlite_url(tmp_path))
    version_1 = [t for t in metadata.metadata.sorted_tables
                 if t.name not in ("images", "image_block_devices", "image_permissions")]
    with engine.begin() as conn:
        metadata.metadata.create_all(conn, tables=version_1)
        conn.execute(insert(metadata.schema_version).values(version=1))
        metadata.MIGRATIONS[2](conn)
        assert {"images", "image_block_devices", "image_permissions"} <= set(
            inspect(conn).get_table_names())
        metadata.MIGRATIONS[2](conn)  # a step may run again harmlessly
    metadata.migrate(engine, seed=lambda conn: pytest.fail("seeded an existing database"))
    with engine.connect() as conn:
        assert conn.execute(select(metadata.schema_version.c.version)).scalar() == (
            metadata.SCHEMA_VERSION)
    engine.dispose()


def test_the_database_keeps_live_names_unique(storage: Storage) -> None:
    """The backstop for two registrations racing for one name (the handler checks first)."""
    with storage.engine.begin() as conn:
        store.insert_image(conn, image("ami-0000000000000000e", name="same"))
    with pytest.raises(IntegrityError), storage.engine.begin() as conn:
        store.insert_image(conn, image("ami-0000000000000000f", name="same"))
    with storage.engine.begin() as conn:
        store.update_image(conn, "ami-0000000000000000e", state=rules.DEREGISTERED)
        store.insert_image(conn, image("ami-0000000000000000f", name="same"))


def test_an_older_database_gains_the_product_code_table(tmp_path: Path) -> None:
    step = next(version for version, run in metadata.MIGRATIONS.items()
                if run is metadata._add_image_product_codes)
    engine = metadata.open_engine(metadata.sqlite_url(tmp_path))
    older = [t for t in metadata.metadata.sorted_tables if t.name != "image_product_codes"]
    with engine.begin() as conn:
        metadata.metadata.create_all(conn, tables=older)
        conn.execute(insert(metadata.schema_version).values(version=step - 1))
    metadata.migrate(engine, seed=lambda conn: pytest.fail("seeded an existing database"))
    with engine.begin() as conn:
        assert "image_product_codes" in inspect(conn).get_table_names()
        metadata.MIGRATIONS[step](conn)  # a step may run again harmlessly
        assert conn.execute(select(metadata.schema_version.c.version)).scalar() == (
            metadata.SCHEMA_VERSION)
    engine.dispose()
