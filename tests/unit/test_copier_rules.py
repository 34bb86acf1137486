"""The copy engine's decisions, in-process on a real data dir (SQLite + file block store in a
tmp dir, nothing mocked): full, incremental or shared; the destination's key; what a failed
plan leaves; fault rules; the rate limits; letting go of a job when stopping.

Before these, engine/copier.py was guarded only by integration tests, so each of its mutants
cost a server start; tests/mutation/run.py now runs this file first.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import json
import logging
import os
import threading
import time
import uuid
from collections import Counter

import pytest
from botocore.exceptions import EndpointConnectionError
from sqlalchemy import update
from sqlalchemy.exc import OperationalError

from snapferry.config import CopySettings
from snapferry.domain import copies as rules
from snapferry.domain import images as image_rules
from snapferry.domain import keys as key_rules
from snapferry.domain import snapshots as snapshot_rules
from snapferry.domain.accounts import DEV_ACCESS_KEY_ID, AccessKey
from snapferry.domain.blocks import BLOCK_SIZE
from snapferry.domain.clock import SystemClock
from snapferry.domain.copies import CopyFailed, CopyJob
from snapferry.domain.envelope import BlockCodec, PlainBlocks
from snapferry.domain.faults import COPY, HOLD, FaultRule
from snapferry.engine.copier import MAX_BATCH, Copier, Heartbeat, LostLease, Throttle
from snapferry.services.keyring import KeyRing
from snapferry.storage import copies as job_store
from snapferry.storage import faults as fault_store
from snapferry.storage import images as image_store
from snapferry.storage import keys as key_store
from snapferry.storage import manifests
from snapferry.storage import snapshots as snapshot_store
from snapferry.storage.blockdata import BlockData
from snapferry.storage.datadir import Storage
from snapferry.storage.metadata import block_intents, copy_jobs
from tests.unit.test_copy_engine import (
    ACCOUNT,
    DST,
    NOW,
    SRC,
    CheckCountingStore,
    ManualClock,
    copy_job,
    dest_state,
    hook_puts,
    snapshot,
)

LEASE = dt.timedelta(seconds=10)


def add_source(store: Storage, lineage: str, data: dict[int, bytes],
               codec: BlockCodec | None = None) -> str:
    """A completed source snapshot of `lineage` in SRC holding `data`, written as EBS direct
    writes it (unchanged blocks share their object with earlier snapshots of the lineage),
    through `codec` (the lineage's cipher when it is encrypted)."""
    snapshot_id = f"snap-{os.urandom(9).hex()[:17]}"
    with store.engine.begin() as conn:
        snapshot_store.insert_snapshot(conn, snapshot(
            snapshot_id, SRC, snapshot_rules.COMPLETED, lineage, snapshot_rules.ORIGIN_EBS))
    codec = codec or PlainBlocks(SRC, lineage)
    digests = {i: hashlib.sha256(b).digest() for i, b in data.items()}
    pending = [BlockData._encode(block, digests[i], codec) for i, block in data.items()]
    intents = store.block_data.intend(pending)
    store.block_data.put(intents)
    with store.engine.begin() as conn:
        manifests.put_blocks(conn, snapshot_id, [
            (manifests.BlockRef(i, item.key, digests[i]), item.size)
            for i, item in zip(data, pending, strict=True)])
        store.block_data.record(conn, intents)
    return snapshot_id


def make_copier(store: Storage, **settings: object) -> tuple[Copier, KeyRing]:
    clock = SystemClock()
    keyring = KeyRing(store.box, clock)
    return Copier(store, keyring, clock, CopySettings(workers=0, **settings)), keyring  # type: ignore[arg-type]


def run_one(store: Storage, **settings: object) -> KeyRing:
    copier, keyring = make_copier(store, **settings)
    try:
        assert copier.run_once()
    finally:
        copier.stop()
    return keyring


def job_after(store: Storage, job: CopyJob) -> CopyJob:
    with store.engine.connect() as conn:
        found = job_store.get_job(conn, job.job_id)
    assert found is not None
    return found


def read_back(store: Storage, keyring: KeyRing, job: CopyJob) -> dict[int, bytes]:
    dest = dest_state(store, job)
    with store.engine.connect() as conn:
        refs = manifests.block_refs(conn, job.snapshot_id)
        codec = keyring.codec(conn, dest.lineage_id, job.dest_region)
    return {ref.block_index: store.block_data.read(ref, codec) for ref in refs}


def blocks_of(count: int, start: int = 0) -> dict[int, bytes]:
    return {index: os.urandom(1024) for index in range(start, start + count)}


def with_fields(store: Storage, job: CopyJob, **fields: object) -> CopyJob:
    """Set fields of a queued job (what CopySnapshot records from its parameters)."""
    for name, value in fields.items():
        setattr(job, name, value)
    with store.engine.begin() as conn:
        conn.execute(update(copy_jobs).where(copy_jobs.c.job_id == job.job_id).values(**fields))
    return job


def customer_key(store: Storage, keyring: KeyRing, region: str = DST,
                 account: str = ACCOUNT) -> key_rules.Key:
    with store.engine.begin() as conn:
        return keyring.new_key(conn, account, region, "test key",
                               key_rules.default_policy(account))


# --- full, incremental, shared --------------------------------------------------------------

@pytest.mark.parametrize("region", [DST, "us-west-2"])
def test_a_first_copy_elsewhere_is_full_into_a_new_lineage(storage: Storage,
                                                           region: str) -> None:
    """Into another region, whether its name sorts before or after the source's (regions
    are compared by value, not order): a full copy into a lineage of its own."""
    lineage, data = str(uuid.uuid4()), blocks_of(5)
    job = copy_job(storage, add_source(storage, lineage, data), region=region)
    keyring = run_one(storage)
    done = job_after(storage, job)
    assert (done.state, done.mode, done.base_source_snapshot_id) == (
        rules.COMPLETED, rules.FULL, None)
    assert (done.blocks_total, done.blocks_done, done.cursor) == (5, 5, 5)
    assert done.bytes_moved == 5 * BLOCK_SIZE
    dest = dest_state(storage, job)
    assert dest.lineage_id == done.dest_lineage_id
    assert dest.lineage_id not in ("", lineage)
    assert (dest.state, dest.progress, dest.encrypted) == (snapshot_rules.COMPLETED, 100, False)
    assert dest.full_size_bytes == 5 * BLOCK_SIZE
    assert read_back(storage, keyring, job) == data


def test_a_copy_to_the_same_region_and_account_shares_the_lineage(storage: Storage) -> None:
    lineage, data = str(uuid.uuid4()), blocks_of(4)
    job = copy_job(storage, add_source(storage, lineage, data), region=SRC)
    objects = set(storage.blocks.keys())
    keyring = run_one(storage)
    done = job_after(storage, job)
    assert (done.state, done.mode, done.dest_lineage_id) == (rules.COMPLETED, rules.SHARED,
                                                             lineage)
    assert done.bytes_moved == 0
    assert set(storage.blocks.keys()) == objects  # nothing written
    assert dest_state(storage, job).lineage_id == lineage
    assert read_back(storage, keyring, job) == data


@pytest.mark.parametrize("owner", ["after", "before"])
def test_a_copy_of_another_accounts_snapshot_in_the_same_region_is_full(
        storage: Storage, owner: str) -> None:
    """Only the owner's copy in its own region shares the source's lineage: a shared
    snapshot copied by another account (whose id sorts before or after the owner's: the
    accounts compared by value, not by order) gets a lineage of its own, so nothing the
    owner does to its blocks reaches the copy."""
    lineage, data = str(uuid.uuid4()), blocks_of(2)
    source_id = add_source(storage, lineage, data)
    job = copy_job(storage, source_id, region=SRC)
    if owner == "after":  # the copier is ACCOUNT (000000000000), the owner sorts after it
        with storage.engine.begin() as conn:
            snapshot_store.update_snapshot(conn, source_id, account_id="999999999999")
    else:  # the source stays ACCOUNT's; the copier is an account sorting after it
        copier_key = AccessKey("111111111111", "AKIAIOSFODNN7EXAMPLE",
                               "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
        storage.accounts.add(copier_key)
        job = with_fields(storage, job, account_id=copier_key.account_id,
                          access_key_id=copier_key.access_key_id)
    keyring = run_one(storage)
    done = job_after(storage, job)
    assert (done.state, done.mode, done.bytes_moved) == (rules.COMPLETED, rules.FULL,
                                                         2 * BLOCK_SIZE)
    assert done.dest_lineage_id not in (None, "", lineage)
    assert read_back(storage, keyring, job) == data


def test_the_next_copy_of_a_lineage_moves_only_what_changed(storage: Storage) -> None:
    lineage, first_data = str(uuid.uuid4()), blocks_of(10)
    first = copy_job(storage, add_source(storage, lineage, first_data))
    run_one(storage)
    # The lineage's next snapshot: block 8 rewritten, block 9 gone, block 10 new.
    second_data = {i: b for i, b in first_data.items() if i < 8}
    second_data |= {8: os.urandom(1024), 10: os.urandom(1024)}
    second_source = add_source(storage, lineage, second_data)
    second = copy_job(storage, second_source, created=NOW + dt.timedelta(minutes=1))
    keyring = run_one(storage)
    done = job_after(storage, second)
    assert (done.state, done.mode) == (rules.COMPLETED, rules.INCREMENTAL)
    assert done.dest_lineage_id == job_after(storage, first).dest_lineage_id
    assert done.base_source_snapshot_id == first.source_snapshot_id
    assert (done.blocks_total, done.blocks_done) == (3, 3)  # 8, 9 and 10
    assert done.cursor == 11  # just after the last change: a next batch would start there
    assert done.bytes_moved == 2 * BLOCK_SIZE  # 9 is only dropped
    assert read_back(storage, keyring, second) == second_data
    assert dest_state(storage, second).full_size_bytes == 10 * BLOCK_SIZE
    assert read_back(storage, keyring, first) == first_data  # the first copy is untouched


@pytest.mark.parametrize("other_sorts", ["before", "after"])
def test_the_next_copy_joins_the_previous_copys_lineage_only_under_the_same_key(
        storage: Storage, other_sorts: str) -> None:
    """Copies of one lineage to one place under one key share a destination lineage (the
    key's ARN compared by value, the other key sorting before or after it); a copy under
    another key, or unencrypted, starts a new lineage of its own: blocks are never joined
    to a lineage sealed under another key."""
    lineage, data = str(uuid.uuid4()), blocks_of(2)
    _, keyring = make_copier(storage)
    key = customer_key(storage, keyring)
    while not "4" <= key.key_id[0] <= "b":  # in the middle of the order (ids are random)
        key = customer_key(storage, keyring)
    other = customer_key(storage, keyring)
    for _ in range(64):  # the other key on the side this case wants
        if (other.arn < key.arn) == (other_sorts == "before"):
            break
        other = customer_key(storage, keyring)
    assert (other.arn < key.arn) == (other_sorts == "before")
    minute = dt.timedelta(minutes=1)
    jobs = []
    for step, (text, encrypted) in enumerate([(key.arn, True), (key.key_id, True),
                                              (other.arn, True), (None, False)]):
        job = with_fields(storage, copy_job(storage, add_source(storage, lineage, data),
                                            created=NOW + step * minute),
                          encrypted=encrypted, kms_key_text=text)
        keyring = run_one(storage)
        jobs.append(job_after(storage, job))
        assert read_back(storage, keyring, job) == data
    first, same, rekeyed, plain = jobs
    assert (same.mode, same.dest_lineage_id, same.bytes_moved) == (
        rules.INCREMENTAL, first.dest_lineage_id, 0)
    assert (rekeyed.mode, rekeyed.dest_key_arn) == (rules.FULL, other.arn)
    assert (plain.mode, plain.dest_key_arn) == (rules.FULL, None)
    lineages = {first.dest_lineage_id, rekeyed.dest_lineage_id, plain.dest_lineage_id}
    assert len(lineages) == 3


def test_a_copy_whose_previous_copy_was_deleted_is_full(storage: Storage) -> None:
    lineage, data = str(uuid.uuid4()), blocks_of(3)
    first = copy_job(storage, add_source(storage, lineage, data))
    run_one(storage)
    with storage.engine.begin() as conn:
        snapshot_store.delete_snapshot(conn, first.snapshot_id)
    second = copy_job(storage, add_source(storage, lineage, data),
                      created=NOW + dt.timedelta(minutes=1))
    run_one(storage)
    done = job_after(storage, second)
    assert (done.mode, done.blocks_total, done.bytes_moved) == (rules.FULL, 3, 3 * BLOCK_SIZE)
    assert done.dest_lineage_id != job_after(storage, first).dest_lineage_id


@pytest.mark.parametrize("moved_to", ["00000000-0000-4000-8000-000000000000",
                                      "ffffffff-ffff-4fff-bfff-ffffffffffff"])
def test_an_incremental_copy_whose_base_source_left_the_lineage_copies_everything(
        storage: Storage, moved_to: str) -> None:
    """The base source now in another lineage (sorting before or after this one: lineages
    are compared by identity, not order) is no base to diff against."""
    lineage, data = str(uuid.uuid4()), blocks_of(3)
    first_source = add_source(storage, lineage, data)
    first = copy_job(storage, first_source)
    run_one(storage)
    with storage.engine.begin() as conn:
        snapshot_store.update_snapshot(conn, first_source, lineage_id=moved_to)
    second = copy_job(storage, add_source(storage, lineage, data),
                      created=NOW + dt.timedelta(minutes=1))
    keyring = run_one(storage)
    done = job_after(storage, second)
    assert (done.mode, done.base_source_snapshot_id) == (rules.INCREMENTAL, None)
    assert done.dest_lineage_id == job_after(storage, first).dest_lineage_id
    assert (done.blocks_total, done.bytes_moved) == (3, 0)  # every block already there
    assert read_back(storage, keyring, second) == data


# --- the destination's key ------------------------------------------------------------------

def test_a_copy_under_a_named_key_is_encrypted_in_a_new_lineage(storage: Storage) -> None:
    lineage, data = str(uuid.uuid4()), blocks_of(3)
    job = copy_job(storage, add_source(storage, lineage, data))
    _, keyring = make_copier(storage)
    key = customer_key(storage, keyring)
    with_fields(storage, job, encrypted=True, kms_key_text=key.key_id)
    keyring = run_one(storage)
    done = job_after(storage, job)
    assert (done.state, done.mode, done.dest_key_arn) == (rules.COMPLETED, rules.FULL, key.arn)
    dest = dest_state(storage, job)
    assert (dest.encrypted, dest.kms_key_id) == (True, key.arn)
    with storage.engine.connect() as conn:
        found = key_store.lineage_key(conn, dest.lineage_id)
        refs = manifests.block_refs(conn, job.snapshot_id)
    assert found is not None and found[0] == key.arn
    stored = b"".join(storage.blocks.get(ref.block_id) for ref in refs)
    assert not any(block in stored for block in data.values())  # no plaintext at rest
    assert read_back(storage, keyring, job) == data


def test_a_copy_encrypted_by_default_uses_the_accounts_default_key(storage: Storage) -> None:
    lineage, data = str(uuid.uuid4()), blocks_of(2)
    job = copy_job(storage, add_source(storage, lineage, data))
    _, keyring = make_copier(storage)
    key = customer_key(storage, keyring)
    with storage.engine.begin() as conn:
        key_store.set_ebs_encryption(conn, ACCOUNT, DST, encryption_by_default=True,
                                     default_key_arn=key.arn)
    keyring = run_one(storage)
    done = job_after(storage, job)
    assert (done.state, done.dest_key_arn) == (rules.COMPLETED, key.arn)
    assert dest_state(storage, job).encrypted is True
    assert read_back(storage, keyring, job) == data


def test_encrypted_without_a_key_uses_the_aws_managed_key(storage: Storage) -> None:
    lineage, data = str(uuid.uuid4()), blocks_of(2)
    job = with_fields(storage, copy_job(storage, add_source(storage, lineage, data)),
                      encrypted=True)
    keyring = run_one(storage)
    done = job_after(storage, job)
    with storage.engine.connect() as conn:
        managed = key_store.alias_target(conn, ACCOUNT, DST, key_rules.EBS_ALIAS)
    assert managed is not None
    assert done.dest_key_arn == key_rules.key_arn(DST, ACCOUNT, managed)
    assert read_back(storage, keyring, job) == data


@pytest.mark.parametrize("problem", ["disabled", "other account", "missing"])
def test_a_destination_key_the_copier_cannot_use_fails_the_copy(storage: Storage,
                                                                 problem: str) -> None:
    job = copy_job(storage, add_source(storage, str(uuid.uuid4()), blocks_of(2)))
    _, keyring = make_copier(storage)
    key = customer_key(storage, keyring, account="999999999999" if problem == "other account"
                       else ACCOUNT)
    if problem == "disabled":
        with storage.engine.begin() as conn:
            key_store.update_key(conn, key.key_id, state=key_rules.DISABLED)
    text = str(uuid.uuid4()) if problem == "missing" else key.arn
    with_fields(storage, job, encrypted=True, kms_key_text=text)
    run_one(storage)
    assert (job_after(storage, job).state, dest_state(storage, job).state_message) == (
        rules.FAILED, rules.KEY_NOT_ACCESSIBLE)
    assert dest_state(storage, job).state == snapshot_rules.ERROR


def test_an_encrypted_source_whose_key_is_disabled_fails_the_copy(storage: Storage) -> None:
    _, keyring = make_copier(storage)
    key = customer_key(storage, keyring, region=SRC)
    with storage.engine.begin() as conn:
        lineage, _ = keyring.new_lineage(conn, key)
    source_id = add_source(storage, lineage, {})
    with storage.engine.begin() as conn:
        snapshot_store.update_snapshot(conn, source_id, encrypted=True, kms_key_id=key.arn)
        key_store.update_key(conn, key.key_id, state=key_rules.DISABLED)
    job = copy_job(storage, source_id)
    run_one(storage)
    assert dest_state(storage, job).state_message == rules.KEY_NOT_ACCESSIBLE


def encrypted_source(store: Storage, keyring: KeyRing, data: dict[int, bytes],
                     policy: str | None = None, key: key_rules.Key | None = None
                     ) -> tuple[str, key_rules.Key]:
    """A completed source in SRC whose blocks are sealed under a customer key of SRC (a new
    one unless `key` is given)."""
    with store.engine.begin() as conn:
        key = key or keyring.new_key(conn, ACCOUNT, SRC, "source key",
                                     policy or key_rules.default_policy(ACCOUNT))
        lineage, _ = keyring.new_lineage(conn, key)
        codec = keyring.codec(conn, lineage, SRC)
    source_id = add_source(store, lineage, data, codec)
    with store.engine.begin() as conn:
        snapshot_store.update_snapshot(conn, source_id, encrypted=True, kms_key_id=key.arn)
    return source_id, key


def test_an_encrypted_source_copied_under_another_key_is_decrypted_and_sealed_again(
        storage: Storage) -> None:
    """The copier may use the source's key for what a copy needs (its key policy allows
    the account), reads the source's blocks through the source lineage's cipher and writes
    them into a new lineage under the destination key."""
    data = blocks_of(3)
    _, keyring = make_copier(storage)
    source_id, source_key = encrypted_source(storage, keyring, data)
    dest_key = customer_key(storage, keyring)
    job = with_fields(storage, copy_job(storage, source_id), encrypted=True,
                      kms_key_text=dest_key.arn)
    keyring = run_one(storage)
    done = job_after(storage, job)
    assert (done.state, done.mode, done.dest_key_arn) == (rules.COMPLETED, rules.FULL,
                                                          dest_key.arn)
    dest = dest_state(storage, job)
    assert (dest.encrypted, dest.kms_key_id) == (True, dest_key.arn)
    with storage.engine.connect() as conn:
        source_lineage = snapshot_store.get_snapshot(conn, SRC, source_id)
        assert source_lineage is not None
        assert dest.lineage_id != source_lineage.lineage_id
        lineage_key = key_store.lineage_key(conn, dest.lineage_id)
    assert lineage_key is not None and lineage_key[0] == dest_key.arn != source_key.arn
    assert read_back(storage, keyring, job) == data


@pytest.mark.parametrize("which", ["the source's", "one sorting before", "one sorting after"])
def test_a_copy_in_place_under_another_key_is_sealed_again(storage: Storage,
                                                           which: str) -> None:
    """In the source's own region and account, a copy under the source's key shares its
    lineage; under any other key (the ARN compared by value, not by order) its blocks are
    decrypted and sealed in a new lineage of that key, never left under the source's."""
    data = blocks_of(2)
    _, keyring = make_copier(storage)
    # Key ids are random: a source key in the middle of the order (its id starting with 4
    # to b), so that each new key sorts on a given side of it at least a quarter of the
    # time. (A source key starting with 0d once made 64 tries find none before it.)
    source_key = customer_key(storage, keyring, region=SRC)
    while not "4" <= source_key.key_id[0] <= "b":
        source_key = customer_key(storage, keyring, region=SRC)
    source_id, source_key = encrypted_source(storage, keyring, data, key=source_key)
    same_key = which == "the source's"
    wanted = source_key
    for _ in range(0 if same_key else 64):  # make keys until one sorts
        wanted = customer_key(storage, keyring, region=SRC)  # on the side this case wants
        if (wanted.arn < source_key.arn) == (which == "one sorting before"):
            break
    assert same_key or (wanted.arn < source_key.arn) == (which == "one sorting before")
    job = with_fields(storage, copy_job(storage, source_id, region=SRC), encrypted=True,
                      kms_key_text="".join(wanted.arn))
    keyring = run_one(storage)
    done = job_after(storage, job)
    dest = dest_state(storage, job)
    with storage.engine.connect() as conn:
        lineage_key = key_store.lineage_key(conn, dest.lineage_id)
    assert lineage_key is not None and lineage_key[0] == wanted.arn
    assert (done.state, done.dest_key_arn, dest.kms_key_id) == (rules.COMPLETED, wanted.arn,
                                                                wanted.arn)
    assert done.mode == (rules.SHARED if same_key else rules.FULL)
    assert read_back(storage, keyring, job) == data


@pytest.mark.parametrize("operation", ["Decrypt", "ReEncryptFrom"])
def test_a_source_key_whose_policy_denies_what_a_copy_needs_fails_the_copy(
        storage: Storage, operation: str) -> None:
    policy = json.loads(key_rules.default_policy(ACCOUNT))
    policy["Statement"].append({"Sid": "NoCopies", "Effect": "Deny", "Principal": "*",
                                "Action": f"kms:{operation}", "Resource": "*"})
    _, keyring = make_copier(storage)
    source_id, _ = encrypted_source(storage, keyring, blocks_of(2), json.dumps(policy))
    job = copy_job(storage, source_id)
    objects = set(storage.blocks.keys())
    run_one(storage)
    assert (job_after(storage, job).state, dest_state(storage, job).state_message) == (
        rules.FAILED, rules.KEY_NOT_ACCESSIBLE)
    assert set(storage.blocks.keys()) == objects  # nothing was copied


@pytest.mark.parametrize("change", ["unknown access key", "another account's key",
                                    "a key of an account sorting after the copy's"])
def test_a_copy_acts_only_with_credentials_of_its_own_account(storage: Storage,
                                                             change: str) -> None:
    """The copy runs with the permissions of whoever asked for it, looked up afresh: an
    access key that is gone, or one of another account (whose id sorts before or after the
    copy's: compared by value), leaves it nobody to act as."""
    job = copy_job(storage, add_source(storage, str(uuid.uuid4()), blocks_of(1)))
    if change == "unknown access key":
        with_fields(storage, job, access_key_id="AKIAEXAMPLEGONE00000")
    elif change == "another account's key":
        with_fields(storage, job, account_id="999999999999")
    else:  # the copy is ACCOUNT's (000000000000), the key another account's
        storage.accounts.add(AccessKey("111111111111", "AKIAIOSFODNN7EXAMPLE",
                                       "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"))
        with_fields(storage, job, access_key_id="AKIAIOSFODNN7EXAMPLE")
    run_one(storage)
    failed = job_after(storage, job)
    assert (failed.state, failed.message) == (
        rules.FAILED, "The credentials that requested this copy no longer exist or are "
        "inactive.")
    assert dest_state(storage, job).state == snapshot_rules.ERROR


@pytest.mark.parametrize("which", ["destination", "source"])
def test_a_key_disabled_after_the_plan_fails_the_copy(storage: Storage, which: str) -> None:
    """The plan checked both keys; a worker that takes the job up later (after a stop, or
    another worker's death) finds one disabled: the copy fails with AWS's message, it is
    no internal error."""
    _, keyring = make_copier(storage)
    source_id, source_key = encrypted_source(storage, keyring, blocks_of(2))
    dest_key = customer_key(storage, keyring)
    job = with_fields(storage, copy_job(storage, source_id), encrypted=True,
                      kms_key_text=dest_key.arn)
    planner, _ = make_copier(storage)
    planner.stop()
    assert planner.run_once()  # planned, then let go before moving anything
    assert job_after(storage, job).mode == rules.FULL
    with storage.engine.begin() as conn:
        key_store.update_key(conn, (dest_key if which == "destination" else source_key).key_id,
                             state=key_rules.DISABLED)
    run_one(storage)
    assert (job_after(storage, job).state, dest_state(storage, job).state_message) == (
        rules.FAILED, rules.KEY_NOT_ACCESSIBLE)


def test_a_source_that_is_no_longer_completed_fails_the_copy(storage: Storage) -> None:
    source_id = add_source(storage, str(uuid.uuid4()), blocks_of(1))
    job = copy_job(storage, source_id)
    with storage.engine.begin() as conn:
        snapshot_store.update_snapshot(conn, source_id, state=snapshot_rules.ERROR)
    run_one(storage)
    failed = job_after(storage, job)
    assert failed.state == rules.FAILED
    assert failed.message == (f"The source snapshot {source_id} no longer exists or is not "
                              "completed.")
    assert dest_state(storage, job).state == snapshot_rules.ERROR


# --- fault rules, rates, stopping -----------------------------------------------------------

def test_a_fault_rule_fails_the_copy_exactly_at_its_fraction(storage: Storage) -> None:
    job = copy_job(storage, add_source(storage, str(uuid.uuid4()), blocks_of(10)))
    with storage.engine.begin() as conn:
        fault_store.add_rule(conn, FaultRule("", COPY, region=DST, fail_at=0.25,
                                             message="injected"), NOW)
        fault_store.add_rule(conn, FaultRule("", COPY, region="us-west-2", fail_at=0.0,
                                             message="elsewhere"), NOW)
    run_one(storage)
    failed = job_after(storage, job)
    assert (failed.state, failed.message) == (rules.FAILED, "injected")
    assert failed.blocks_done == 3  # ceil(0.25 x 10): stopped there, not a batch later
    with storage.engine.connect() as conn:
        assert manifests.block_total(conn, job.snapshot_id) == 0


def test_a_batch_ends_at_the_failure_point() -> None:
    job = CopyJob("j", "snap-d", ACCOUNT, "k", DST, SRC, "snap-s", "l", rules.RUNNING, 0, 0, 0,
                  0, NOW, blocks_total=10)
    rule = FaultRule("r", COPY, fail_at=0.5, message="stop here")
    assert Copier._batch_before_fault(job, [], 64) == 64
    assert Copier._batch_before_fault(job, [rule], 64) == 5
    assert Copier._batch_before_fault(job, [rule], 2) == 2
    job.blocks_done = 4
    assert Copier._batch_before_fault(job, [rule], 64) == 1
    job.blocks_done = 5
    with pytest.raises(CopyFailed, match="stop here"):
        Copier._batch_before_fault(job, [rule], 64)
    # A rule added after the copy passed its point (6 of 10 done, the rule at half) fails
    # it at once: it is no batch of -1 blocks (which SQLite's LIMIT reads as "all of them").
    job.blocks_done = 6
    with pytest.raises(CopyFailed, match="stop here"):
        Copier._batch_before_fault(job, [rule], 64)
    job.blocks_done, job.blocks_total = 0, 7
    assert Copier._batch_before_fault(job, [FaultRule("r", COPY, fail_at=0.3, message="m")],
                                      64) == 3  # ceil(2.1)
    assert Copier._batch_before_fault(job, [FaultRule("r", COPY, seconds_per_gib=1.0)],
                                      64) == 64
    # A hold rule at half of 10 ends the batch there: 3 more blocks from 2, not 7.
    job.blocks_done, job.blocks_total = 2, 10
    hold = FaultRule("h", HOLD, fail_at=0.5)
    assert Copier._batch_before_fault(job, [hold], 64) == 3
    assert Copier._batch_before_fault(job, [hold], 2) == 2


def test_the_rate_is_the_operators_cap_and_the_time_based_rate(storage: Storage) -> None:
    job = CopyJob("j", "snap-d", ACCOUNT, "k", DST, SRC, "snap-s", "l", rules.RUNNING, 0, 0, 0,
                  0, NOW)
    timed = CopyJob("t", "snap-d", ACCOUNT, "k", DST, SRC, "snap-s", "l", rules.RUNNING, 0, 0,
                    0, 0, NOW, deadline=NOW + dt.timedelta(hours=1))
    free, _ = make_copier(storage)
    capped, _ = make_copier(storage, rate_limit=1000)
    fast_cap, _ = make_copier(storage, rate_limit=10**12)
    try:
        assert free._rate(job) is None
        assert capped._rate(job) == 1000
        assert free._rate(timed) == CopySettings().time_based_copy_rate == 500 * 2**20
        assert capped._rate(timed) == 1000
        assert fast_cap._rate(timed) == 500 * 2**20
        # The region pair's shared rate (paid in the database, storage/rates.py) applies to
        # time-based copies only, and costs nothing before a block moved.
        assert free._pair_delay(job, 10 * 2**20) == 0.0
        assert free._pair_delay(timed, 0) == 0.0
        # A time-based copy that moved 1,000 MiB pays half a second of its pair's 2,000 MiB/s.
        assert 0.45 < free._pair_delay(timed, 1000 * 2**20) <= 0.5
    finally:
        for copier in (free, capped, fast_cap):
            copier.stop()


def test_a_throttle_spends_its_rate_over_the_life_of_a_copy() -> None:
    assert Throttle(None).delay_after(10**12) == 0.0
    throttle = Throttle(1000.0)
    first = throttle.delay_after(1000)
    assert 0.9 < first <= 1.0
    second = throttle.delay_after(1000)
    assert 1.9 < second <= 2.0  # measured from the first call, not from this one
    assert throttle.spent == 2000
    assert Throttle(10.0**12).delay_after(1) == 0.0  # never negative
    assert 1.4 < Throttle(1000.0).delay_after(1500) <= 1.5  # a fraction of a second counts


def test_a_rate_limited_copy_takes_its_time(storage: Storage) -> None:
    """5 blocks at 4 blocks/s: 1.25 s, in batches of a second's blocks (4, then 1), so
    progress shows as it goes."""
    job = copy_job(storage, add_source(storage, str(uuid.uuid4()), blocks_of(5)))
    seen: list[int] = []
    lock = threading.Lock()

    def observe(_key: str) -> None:
        progress = dest_state(storage, job).progress
        with lock:
            seen.append(progress)

    hook_puts(storage, observe)
    started = time.monotonic()
    run_one(storage, rate_limit=4 * BLOCK_SIZE)
    assert time.monotonic() - started >= 1.2
    assert Counter(seen) == {0: 4, 80: 1}
    assert job_after(storage, job).state == rules.COMPLETED


def test_a_stopping_worker_lets_go_of_its_job_at_once(storage: Storage) -> None:
    job = copy_job(storage, add_source(storage, str(uuid.uuid4()), blocks_of(2)))
    copier, _ = make_copier(storage)
    copier.stop()
    assert copier.run_once()  # claimed, planned, then let go before moving anything
    left = job_after(storage, job)
    assert (left.state, left.lease_owner, left.cursor) == (rules.RUNNING, None, 0)
    assert left.mode == rules.FULL  # the plan is kept for the next worker
    with storage.engine.begin() as conn:
        again = job_store.claim(conn, "next", dt.datetime.now(dt.UTC), LEASE)
    assert again is not None and again.job_id == job.job_id
    assert dest_state(storage, job).state == snapshot_rules.PENDING


def test_a_copy_cancelled_mid_batch_takes_back_what_the_batch_put(
        storage: Storage, caplog: pytest.LogCaptureFixture) -> None:
    """DeleteSnapshot on a pending copy cancels its job (storage/copies.py `cancel`): the
    worker's next checkpoint fails, and the objects its batch had put are deleted at once,
    not left for a grace period. A cancellation is no error: nothing is logged as one."""
    job = copy_job(storage, add_source(storage, str(uuid.uuid4()), blocks_of(5)))
    objects = set(storage.blocks.keys())
    cancelled = threading.Event()

    def cancel_once(_key: str) -> None:
        if not cancelled.is_set():
            cancelled.set()
            with storage.engine.begin() as conn:
                job_store.cancel(conn, job.snapshot_id, dt.datetime.now(dt.UTC), "deleted")

    hook_puts(storage, cancel_once)
    with caplog.at_level(logging.INFO, logger="snapferry.engine.copier"):
        run_one(storage)
    assert cancelled.is_set()
    logged = [r for r in caplog.records if r.name == "snapferry.engine.copier"]
    assert [r.getMessage() for r in logged if r.levelno >= logging.WARNING] == []
    assert any("was taken over or cancelled" in r.getMessage() for r in logged)
    left = job_after(storage, job)
    assert (left.state, left.message, left.blocks_done) == (rules.FAILED, "deleted", 0)
    assert set(storage.blocks.keys()) == objects
    with storage.engine.connect() as conn:
        assert manifests.block_total(conn, job.snapshot_id) == 0
        assert conn.execute(block_intents.select()).first() is None


@pytest.mark.parametrize("error", ["store unreachable", "a bug"])
def test_a_failed_put_takes_back_the_batch_and_an_outage_hands_the_job_back(
        storage: Storage, error: str) -> None:
    """A put that fails leaves none of its batch's objects behind. An engine that is down
    (here the block store unreachable) is not the copy's fault: the job goes back, unfailed,
    for a worker to resume when the store is back, and the worker pauses a second before
    its next round rather than claiming the job again in a loop of failures; any other
    error fails the copy."""
    data = blocks_of(3)
    job = copy_job(storage, add_source(storage, str(uuid.uuid4()), data))
    objects = set(storage.blocks.keys())
    store = storage.blocks

    def fail(_key: str) -> None:
        if error == "a bug":
            raise RuntimeError("disk on fire")
        raise EndpointConnectionError(endpoint_url="http://blocks.invalid")

    hook_puts(storage, fail)
    started = time.monotonic()
    run_one(storage)
    took = time.monotonic() - started
    left = job_after(storage, job)
    assert set(storage.blocks.keys()) == objects
    with storage.engine.connect() as conn:
        assert conn.execute(block_intents.select()).first() is None
        assert manifests.block_total(conn, job.snapshot_id) == 0
    if error == "a bug":
        assert (left.state, left.message) == (
            rules.FAILED, "The copy failed on an internal error; see the server's log.")
        assert dest_state(storage, job).state == snapshot_rules.ERROR
        return
    assert (left.state, left.lease_owner, left.cursor, left.blocks_done) == (
        rules.RUNNING, None, 0, 0)
    assert took >= 0.95, took  # the round ended only after its pause
    assert dest_state(storage, job).state == snapshot_rules.PENDING
    storage.blocks, storage.block_data = store, BlockData(storage.engine, store)
    keyring = run_one(storage)  # the store is back: the next worker claims it at once
    assert job_after(storage, job).state == rules.COMPLETED
    assert read_back(storage, keyring, job) == data


def test_a_minimum_duration_paces_the_copy_in_batches_of_about_a_second(
        storage: Storage) -> None:
    """At 1024 s/GiB (2 blocks of 512 KiB a second) 3 blocks take 1.5 s, in batches of a
    second's blocks, so progress shows as the copy goes: 2 blocks, then 1."""
    job = copy_job(storage, add_source(storage, str(uuid.uuid4()), blocks_of(3)))
    seen: list[int] = []
    lock = threading.Lock()

    def observe(_key: str) -> None:
        progress = dest_state(storage, job).progress
        with lock:
            seen.append(progress)

    hook_puts(storage, observe)
    started = time.monotonic()
    run_one(storage, min_seconds_per_gib=1024.0)
    took = time.monotonic() - started
    assert Counter(seen) == {0: 2, 66: 1}
    assert 1.45 <= took < 30
    assert job_after(storage, job).state == rules.COMPLETED


def test_no_free_job_is_no_work(storage: Storage) -> None:
    copier, _ = make_copier(storage)
    try:
        assert copier.run_once() is False
    finally:
        copier.stop()


def test_a_checkpoint_comes_every_64_blocks(storage: Storage) -> None:
    """Progress moves only at checkpoints: 130 blocks are three batches of 64, 64 and 2
    (64/130 = 49%, then 128/130 = 98%, then 99% until the copy completes)."""
    job = copy_job(storage, add_source(storage, str(uuid.uuid4()), blocks_of(130)))
    copier, _ = make_copier(storage)
    real_checkpoint = copier._checkpoint
    seen: list[tuple[int, int]] = []

    def checkpoint(job_: CopyJob, refs: list[manifests.BlockRef], *rest: object) -> None:
        real_checkpoint(job_, refs, *rest)  # type: ignore[arg-type]
        seen.append((len(refs), dest_state(storage, job).progress))

    copier._checkpoint = checkpoint  # type: ignore[method-assign]
    try:
        assert copier.run_once()
    finally:
        copier.stop()
    assert seen == [(64, 49), (64, 98), (2, 99)]
    assert dest_state(storage, job).progress == 100


def test_the_next_batch_moves_while_a_checkpoint_commits(storage: Storage) -> None:
    """Pipelining: the first checkpoint waits until a block of the second batch is being put;
    a copy engine that moved a batch only after the previous one's checkpoint would make it
    wait in vain."""
    job = copy_job(storage, add_source(storage, str(uuid.uuid4()), blocks_of(130)))
    puts: list[str] = []
    second_batch = threading.Event()
    lock = threading.Lock()

    def observe(key: str) -> None:
        with lock:
            puts.append(key)
            if len(puts) > 64:
                second_batch.set()

    hook_puts(storage, observe)
    copier, _ = make_copier(storage)
    real_checkpoint = copier._checkpoint
    overlapped: list[bool] = []

    def checkpoint(*args: object) -> None:
        if not overlapped:
            overlapped.append(second_batch.wait(timeout=20))
        real_checkpoint(*args)  # type: ignore[arg-type]

    copier._checkpoint = checkpoint  # type: ignore[method-assign]
    try:
        assert copier.run_once()
    finally:
        copier.stop()
    assert overlapped == [True]
    assert len(puts) == 130 and dest_state(storage, job).progress == 100


def test_the_next_batch_is_queued_before_this_ones_last_put_returns(storage: Storage) -> None:
    """Pipelining across checkpoints, one step earlier: while a put of the first batch is
    held, the other I/O threads finish that batch and go on with the second, so no I/O
    thread idles at a batch's end. An engine that queued the next batch only after every
    put of this one returned would never put a 65th block while the first is held."""
    job = copy_job(storage, add_source(storage, str(uuid.uuid4()), blocks_of(130)))
    puts: list[str] = []
    past_first_batch = threading.Event()
    lock = threading.Lock()
    held: list[bool] = []

    def observe(key: str) -> None:
        with lock:
            puts.append(key)
            first = len(puts) == 1
            if len(puts) > MAX_BATCH:
                past_first_batch.set()
        if first:  # this put of the first batch returns only once the second batch moves
            held.append(past_first_batch.wait(timeout=20))

    hook_puts(storage, observe)
    copier, _ = make_copier(storage)
    try:
        assert copier.run_once()
    finally:
        copier.stop()
    assert held == [True]
    assert len(puts) == 130 and dest_state(storage, job).progress == 100


def test_a_checkpoint_records_only_blocks_whose_puts_returned(storage: Storage) -> None:
    """A batch is recorded only once every one of its puts has returned (written, fsynced,
    renamed, its directory fsynced), even with the next batch already moving: the first put
    is held until a checkpoint begins (or 2 s pass), and each checkpoint finds all of its
    blocks' puts over."""
    job = copy_job(storage, add_source(storage, str(uuid.uuid4()), blocks_of(130)))
    returned: set[str] = set()
    lock = threading.Lock()
    checkpoint_began = threading.Event()
    first: list[str] = []

    def observe(key: str) -> None:
        with lock:
            is_first = not first
            first.append(key)
        if is_first:
            checkpoint_began.wait(timeout=2)
        with lock:
            returned.add(key)

    hook_puts(storage, observe)
    copier, _ = make_copier(storage)
    real_checkpoint = copier._checkpoint
    missing: list[int] = []

    def checkpoint(job_: CopyJob, refs: list[manifests.BlockRef], gone: list[int],
                   cursor: int, dest: BlockCodec, *rest: object) -> None:
        checkpoint_began.set()
        with lock:
            missing.extend(ref.block_index for ref in refs
                           if dest.block_id(ref.sha256) not in returned)
        real_checkpoint(job_, refs, gone, cursor, dest, *rest)  # type: ignore[arg-type]

    copier._checkpoint = checkpoint  # type: ignore[method-assign]
    try:
        assert copier.run_once()
    finally:
        copier.stop()
    assert missing == []
    assert len(first) == 130 and dest_state(storage, job).progress == 100


def test_a_stopped_copy_resumes_at_its_checkpoint(storage: Storage) -> None:
    """A worker stopped in its second batch checkpoints what it moved and lets go; the next
    worker moves only the blocks after the cursor, and the copy reads back whole."""
    data = blocks_of(130)
    job = copy_job(storage, add_source(storage, str(uuid.uuid4()), data))
    first, _ = make_copier(storage)
    puts: list[str] = []
    lock = threading.Lock()
    stopper: list[threading.Thread] = []

    def count_and_stop(key: str) -> None:
        with lock:
            puts.append(key)
            if len(puts) == MAX_BATCH + 1 and not stopper:  # the first put of batch two
                stopper.append(threading.Thread(target=first.stop))
                stopper[0].start()

    hook_puts(storage, count_and_stop)
    assert first.run_once()
    stopper[0].join(timeout=30)
    left = job_after(storage, job)
    assert (left.state, left.lease_owner) == (rules.RUNNING, None)
    assert left.cursor in (MAX_BATCH, 2 * MAX_BATCH) and left.blocks_done == left.cursor
    assert dest_state(storage, job).state == snapshot_rules.PENDING
    moved_first = len(puts)
    keyring = run_one(storage)
    done = job_after(storage, job)
    assert done.state == rules.COMPLETED
    assert len(puts) - moved_first == 130 - left.cursor  # nothing before the cursor again
    assert done.bytes_moved == 130 * BLOCK_SIZE
    assert read_back(storage, keyring, job) == data


def _rounds_in_a_second_and_a_half(copier: Copier, rounds_fail: bool = False) -> int:
    """How many rounds one idle worker thread starts in 1.5 s (each failing, if asked)."""
    real_run_once, rounds = copier.run_once, []

    def counted() -> bool:
        rounds.append(time.monotonic())
        if rounds_fail:
            raise RuntimeError("a bad round")
        return real_run_once()

    copier.run_once = counted  # type: ignore[method-assign]
    copier.start(1)
    try:
        threading.Event().wait(1.5)  # measuring an interval, not waiting for an event
    finally:
        copier.stop()
    return len(rounds)


@pytest.mark.parametrize("rounds_fail", [False, True])
def test_an_idle_worker_polls_at_most_once_a_second(storage: Storage,
                                                    rounds_fail: bool) -> None:
    """With no job, a worker waits between rounds (a second at most, half a lease at
    most) instead of querying the database in a busy loop; so does a worker whose every
    round fails (a bug, or an engine down)."""
    rounds = _rounds_in_a_second_and_a_half(make_copier(storage)[0], rounds_fail)
    assert 1 <= rounds <= 3, rounds


def test_worker_threads_run_queued_copies_until_stopped(storage: Storage) -> None:
    # A lease of 2 s (an idle wait of 1 s): a shorter one is lost to a heartbeat that a
    # loaded machine does not schedule in time, and the copy is taken over again and again.
    copier, _ = make_copier(storage, lease_seconds=2.0)
    real_run_once, failed = copier.run_once, set()
    lock = threading.Lock()

    def failing_first() -> bool:
        name = threading.current_thread().name
        with lock:
            first = name not in failed
            failed.add(name)
        if first:
            raise RuntimeError("a bad round")  # each worker's first: it must survive it
        return real_run_once()

    copier.run_once = failing_first  # type: ignore[method-assign]
    copier.start(2)
    try:
        job = copy_job(storage, add_source(storage, str(uuid.uuid4()), blocks_of(2)))
        deadline = time.monotonic() + 20
        while job_after(storage, job).state != rules.COMPLETED:
            assert time.monotonic() < deadline, "the workers did not run the copy"
            time.sleep(0.05)  # polling the job's state
    finally:
        copier.stop()
    assert len(copier._threads) == 2 == len(failed)
    assert not any(thread.is_alive() for thread in copier._threads)
    # A worker stuck in a batch past stop's join must not hold the server process open.
    assert all(thread.daemon for thread in copier._threads)


# --- which engine a job runs on -------------------------------------------------------------

def insert_image(store: Storage, image_id: str, region: str, location: str) -> None:
    with store.engine.begin() as conn:
        image_store.insert_image(conn, image_rules.Image(
            image_id=image_id, account_id=ACCOUNT, region=region, name=image_id,
            state=image_rules.PENDING, creation_date=NOW, image_location=location,
            architecture="x86_64", virtualization_type="hvm", root_device_name="/dev/sda1",
            root_device_type="instance-store"))


@pytest.mark.parametrize("source", ["gone", "unreadable"])
def test_a_bundle_copy_runs_and_fails_as_an_image_copy(storage: Storage, source: str) -> None:
    """A job of kind `bundle` (an instance-store image's S3 objects) is the bundle copier's,
    read back from the database (the kind a new string, compared by value). Its failure,
    a source image gone or an unexpected error (a source image whose location names no
    manifest), fails the pending image it was making too, not left pending as a snapshot
    copy's failure would leave it."""
    image_id, source_id = f"ami-{os.urandom(9).hex()[:17]}", f"ami-{os.urandom(9).hex()[:17]}"
    insert_image(storage, image_id, DST, "destination-bucket/image.manifest.xml")
    if source == "unreadable":
        insert_image(storage, source_id, SRC, "")
    with storage.engine.begin() as conn:
        job = CopyJob(job_id=str(uuid.uuid4()), snapshot_id=image_id, account_id=ACCOUNT,
                      access_key_id=DEV_ACCESS_KEY_ID, dest_region=DST, source_region=SRC,
                      source_snapshot_id=source_id, source_lineage_id="",
                      state=rules.QUEUED, cursor=0, blocks_done=0, bytes_moved=0, fencing=0,
                      created_at=NOW, kind="".join(["bun", "dle"]))
        job_store.insert_job(conn, job)
    run_one(storage)
    failed = job_after(storage, job)
    message = (f"The source image {source_id} no longer exists." if source == "gone" else
               "The copy failed on an internal error; see the server's log.")
    assert (failed.state, failed.message) == (rules.FAILED, message)
    with storage.engine.connect() as conn:
        image = image_store.get_image(conn, DST, image_id)
    assert image is not None
    assert (image.state, image.state_reason_code, image.state_reason_message) == (
        image_rules.FAILED, image_rules.COPY_FAILED_CODE,
        f"{image_rules.COPY_FAILED_MESSAGE}: {message}")


# --- the lease while a batch runs -----------------------------------------------------------

def hold_puts(store: Storage) -> tuple[threading.Event, threading.Event]:
    """Hold every put (a slow object store) until the test lets go: (putting, release)."""
    putting, release = threading.Event(), threading.Event()

    def hold(_key: str) -> None:
        putting.set()
        release.wait(60)

    hook_puts(store, hold)
    return putting, release


def test_the_heartbeat_renews_the_lease_before_it_runs_out(storage: Storage) -> None:
    """On the real clock: a lease of 3 s, renewed every third of it, never lapses while a
    put is held up, so another worker trying to claim the job all along (until a lease
    after the one granted at claim: five renewals in all) never gets it; a renewal once a
    lease or less often would let the lease granted at claim run out first."""
    job = copy_job(storage, add_source(storage, str(uuid.uuid4()), blocks_of(1)))
    putting, release = hold_puts(storage)
    lease = dt.timedelta(seconds=3)
    copier, _ = make_copier(storage, lease_seconds=lease.total_seconds())
    worker = threading.Thread(target=copier.run_once)
    worker.start()
    taken = None
    try:
        assert putting.wait(30)
        granted = job_after(storage, job).lease_expires
        assert granted is not None
        while (now := dt.datetime.now(dt.UTC)) < granted + lease:
            with storage.engine.begin() as conn:  # another worker, on the same clock
                taken = job_store.claim(conn, "worker-b", now, LEASE)
            if taken is not None:
                break
            time.sleep(0.05)  # polling the job's lease, as a worker's idle loop does
    finally:
        release.set()
        worker.join(60)
        copier.stop()
    assert taken is None, "the job was taken over while its worker was alive"
    assert (job_after(storage, job).state, job_after(storage, job).fencing) == (
        rules.COMPLETED, 1)


def test_a_renewal_that_fails_is_tried_again_at_the_next_beat(
        storage: Storage, monkeypatch: pytest.MonkeyPatch) -> None:
    """An engine outage during one heartbeat (the database unreachable for a moment) does
    not end the heartbeat: the next beat renews the lease, so the batch keeps its job."""
    job = copy_job(storage, add_source(storage, str(uuid.uuid4()), blocks_of(1)))
    putting, release = hold_puts(storage)
    real_checkpoint, failed = job_store.checkpoint, threading.Event()

    def flaky(*args: object, **kwargs: object) -> bool:
        if threading.current_thread().name.startswith("snapferry-lease-") and \
                not failed.is_set():
            failed.set()
            raise OperationalError("renew", {}, Exception("database unreachable"))
        return real_checkpoint(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(job_store, "checkpoint", flaky)
    clock = ManualClock(NOW)
    copier = Copier(storage, KeyRing(storage.box, clock), clock,
                    CopySettings(workers=0, lease_seconds=0.3))
    worker = threading.Thread(target=copier.run_once)
    worker.start()
    try:
        assert putting.wait(30)
        assert failed.wait(30)  # the first beat failed
        granted = job_after(storage, job).lease_expires
        assert granted is not None
        clock.at = granted + dt.timedelta(seconds=1)
        deadline = time.monotonic() + 30
        while (renewed := job_after(storage, job).lease_expires) is not None and \
                renewed <= clock.at:
            assert time.monotonic() < deadline, "no beat renewed the lease after the outage"
            time.sleep(0.02)  # polling the job's lease
    finally:
        release.set()
        worker.join(60)
        copier.stop()
    assert job_after(storage, job).state == rules.COMPLETED


# --- leaving a copy between batches ---------------------------------------------------------

def test_a_stop_between_batches_records_the_batch_moved_and_puts_nothing_more(
        storage: Storage) -> None:
    """`stop` called while a worker is between two batches (its I/O pool shut down as the
    next batch is about to be put): the batch it moved is still checkpointed, the next one
    is never put and its intents are taken back, and the job is handed back at the cursor,
    for the next worker to resume, not failed."""
    data = blocks_of(130)
    job = copy_job(storage, add_source(storage, str(uuid.uuid4()), data))
    objects = set(storage.blocks.keys())
    copier, _ = make_copier(storage)
    real_end_move = copier._end_move

    def end_then_stop(batch: object) -> object:
        moved = real_end_move(batch)  # type: ignore[arg-type]
        if not copier._stop.is_set():
            copier.stop()  # from the worker's own thread: the pool shuts down at once
        return moved

    copier._end_move = end_then_stop  # type: ignore[method-assign]
    assert copier.run_once()
    _handed_back_after_the_first_batch(storage, job, objects, data)



def _handed_back_after_the_first_batch(storage: Storage, job: CopyJob, objects: set[str],
                                       data: dict[int, bytes]) -> None:
    """A stopped worker's job: running, unleased, its first batch checkpointed with no
    intent left and no loose object; the next worker completes it with the same data."""
    left = job_after(storage, job)
    assert (left.state, left.lease_owner, left.cursor, left.blocks_done) == (
        rules.RUNNING, None, MAX_BATCH, MAX_BATCH)
    with storage.engine.connect() as conn:
        recorded = manifests.block_refs(conn, job.snapshot_id)
        assert conn.execute(block_intents.select()).first() is None
    assert [ref.block_index for ref in recorded] == list(range(MAX_BATCH))
    assert set(storage.blocks.keys()) == objects | {ref.block_id for ref in recorded}
    keyring = run_one(storage)
    assert job_after(storage, job).state == rules.COMPLETED
    assert read_back(storage, keyring, job) == data

def test_a_stop_as_the_next_batch_is_queued_still_records_the_batch_moving(
        storage: Storage) -> None:
    """`stop` called as the worker queues the next batch behind this one's puts (its I/O
    pool shut down, so the next batch cannot be put): the next batch's intents are taken
    back, this batch, already put, is still checkpointed, and the job is handed back at
    that cursor for the next worker, not failed and not left at 0 with its objects loose."""
    data = blocks_of(130)
    job = copy_job(storage, add_source(storage, str(uuid.uuid4()), data))
    objects = set(storage.blocks.keys())
    copier, _ = make_copier(storage)
    real_start_batch, calls = copier._start_batch, []

    def stop_then_start(job: CopyJob, cursor: int, *rest: object) -> object:
        calls.append(cursor)
        if len(calls) == 2:  # the batch queued ahead, behind the first one's puts
            copier.stop()  # from the worker's own thread: the pool shuts down at once
        return real_start_batch(job, cursor, *rest)  # type: ignore[arg-type]

    copier._start_batch = stop_then_start  # type: ignore[method-assign]
    assert copier.run_once()
    assert calls == [0, MAX_BATCH]
    _handed_back_after_the_first_batch(storage, job, objects, data)


def test_a_copy_cancelled_while_the_next_batch_moves_takes_back_both_batches(
        storage: Storage) -> None:
    """The next batch is already being put while a checkpoint commits (pipelining): when
    that checkpoint finds the copy cancelled, what both batches put is taken back at once."""
    job = copy_job(storage, add_source(storage, str(uuid.uuid4()), blocks_of(130)))
    objects = set(storage.blocks.keys())
    copier, _ = make_copier(storage)
    real_checkpoint = copier._checkpoint

    def cancel_then_checkpoint(*args: object) -> None:
        with storage.engine.begin() as conn:
            job_store.cancel(conn, job.snapshot_id, dt.datetime.now(dt.UTC), "deleted")
        real_checkpoint(*args)  # type: ignore[arg-type]

    copier._checkpoint = cancel_then_checkpoint  # type: ignore[method-assign]
    try:
        assert copier.run_once()
    finally:
        copier.stop()
    left = job_after(storage, job)
    assert (left.state, left.message, left.blocks_done) == (rules.FAILED, "deleted", 0)
    assert set(storage.blocks.keys()) == objects
    with storage.engine.connect() as conn:
        assert manifests.block_total(conn, job.snapshot_id) == 0
        assert conn.execute(block_intents.select()).first() is None


def test_stop_returns_only_once_its_workers_let_go_of_their_jobs(storage: Storage) -> None:
    """`stop` waits for each worker thread: when it returns (the server shutting down), the
    job a worker was pacing has been handed back, even when handing it back is slow."""
    job = copy_job(storage, add_source(storage, str(uuid.uuid4()), blocks_of(8)))
    putting = threading.Event()
    hook_puts(storage, lambda _key: putting.set())
    copier, _ = make_copier(storage, rate_limit=2 * BLOCK_SIZE)  # 4 s: stopped well before
    real_release, released = copier._release, []

    def slow_release(job_: CopyJob) -> None:
        threading.Event().wait(0.5)  # a slow database: the worker is still at it meanwhile
        real_release(job_)
        released.append(job_.job_id)

    copier._release = slow_release  # type: ignore[method-assign]
    copier.start(1)
    try:
        assert putting.wait(30)
    finally:
        copier.stop()
    assert released == [job.job_id]
    left = job_after(storage, job)
    assert (left.state, left.lease_owner) == (rules.RUNNING, None)
    assert not copier._threads[0].is_alive()


def test_a_source_key_usable_only_through_ec2_serves_a_copy(storage: Storage) -> None:
    """The copier uses the source's key on the caller's behalf through EC2 (kms:ViaService
    is ec2.<source region>.amazonaws.com): a key policy that denies every other way of
    using the key still lets the copy decrypt the source."""
    policy = json.loads(key_rules.default_policy(ACCOUNT))
    policy["Statement"].append({
        "Sid": "OnlyThroughEc2", "Effect": "Deny", "Principal": "*", "Action": "kms:*",
        "Resource": "*",
        "Condition": {"StringNotEquals": {"kms:ViaService": f"ec2.{SRC}.amazonaws.com"}}})
    data = blocks_of(2)
    _, keyring = make_copier(storage)
    source_id, _ = encrypted_source(storage, keyring, data, json.dumps(policy))
    job = copy_job(storage, source_id)
    keyring = run_one(storage)
    assert job_after(storage, job).state == rules.COMPLETED
    assert read_back(storage, keyring, job) == data


def test_a_database_outage_mid_copy_leaves_the_job_to_its_lease(
        storage: Storage, monkeypatch: pytest.MonkeyPatch) -> None:
    """The database gone after a worker claimed a copy (every write to the job fails,
    handing it back too): the copy is not failed and the worker's round ends quietly; the
    job waits for its lease to run out, then any worker resumes it."""
    data = blocks_of(2)
    job = copy_job(storage, add_source(storage, str(uuid.uuid4()), data))
    real_checkpoint = job_store.checkpoint

    def gone(*_args: object, **_kwargs: object) -> bool:
        raise OperationalError("UPDATE copy_jobs", {}, Exception("database unreachable"))

    monkeypatch.setattr(job_store, "checkpoint", gone)
    copier, _ = make_copier(storage, lease_seconds=0.5)
    try:
        assert copier.run_once()  # no exception out of the round
    finally:
        copier.stop()
    left = job_after(storage, job)
    assert (left.state, left.lease_owner) == (rules.RUNNING, copier.owner)
    assert dest_state(storage, job).state == snapshot_rules.PENDING
    monkeypatch.setattr(job_store, "checkpoint", real_checkpoint)
    assert left.lease_expires is not None
    with storage.engine.begin() as conn:  # once the lease ran out, a worker takes it up
        again = job_store.claim(conn, "next", left.lease_expires + dt.timedelta(seconds=1),
                                LEASE)
    assert again is not None and again.job_id == job.job_id


@pytest.mark.parametrize("slow_by", ["rate limit", "minimum duration"])
def test_a_copy_slower_than_a_block_a_second_checkpoints_every_block(
        storage: Storage, slow_by: str) -> None:
    """Under a block a second (0.9 blocks/s, by the operator's rate or a minimum duration),
    a second's blocks round down to none: each batch is still one block, checkpointed on
    its own, and every block is copied (2 blocks in about 2.2 s)."""
    data = blocks_of(2)
    job = copy_job(storage, add_source(storage, str(uuid.uuid4()), data))
    seen: list[int] = []
    lock = threading.Lock()

    def observe(_key: str) -> None:
        progress = dest_state(storage, job).progress
        with lock:
            seen.append(progress)

    hook_puts(storage, observe)
    speed = 0.9 * BLOCK_SIZE  # bytes a second
    settings = ({"rate_limit": int(speed)} if slow_by == "rate limit" else
                {"min_seconds_per_gib": 2**30 / speed})
    keyring = run_one(storage, **settings)
    assert Counter(seen) == {0: 1, 50: 1}
    assert job_after(storage, job).state == rules.COMPLETED
    assert read_back(storage, keyring, job) == data


@pytest.mark.parametrize("conditional", [False, True])
def test_objects_a_dead_worker_put_are_adopted_not_moved_again(storage: Storage,
                                                               conditional: bool) -> None:
    """A worker that died after putting two blocks, before its checkpoint, left their
    objects in the store with no record of them. The next worker finds them in place (by a
    check before the put, or by a put that is a conditional create and keeps them): they
    are adopted, not counted as moved, and the copy reads back whole."""
    lineage, data = str(uuid.uuid4()), blocks_of(3)
    job = copy_job(storage, add_source(storage, lineage, data))
    planner, keyring = make_copier(storage)
    planner.stop()
    assert planner.run_once()  # planned (full, into a new lineage), then let go
    planned = job_after(storage, job)
    assert planned.dest_lineage_id is not None
    with storage.engine.connect() as conn:
        refs = manifests.block_refs(conn, job.source_snapshot_id)
        source_codec = keyring.codec(conn, lineage, SRC)
        dest_codec = keyring.codec(conn, planned.dest_lineage_id, DST)
    for ref in refs[:2]:  # what the dead worker put
        name = dest_codec.block_id(ref.sha256)
        storage.blocks.put(name, bytes(dest_codec.seal(name, storage.block_data.read(
            ref, source_codec))))
    counting = CheckCountingStore(storage.blocks, conditional)
    storage.blocks, storage.block_data = counting, BlockData(storage.engine, counting)
    keyring = run_one(storage)
    done = job_after(storage, job)
    assert (done.state, done.blocks_done, done.bytes_moved) == (rules.COMPLETED, 3, BLOCK_SIZE)
    assert read_back(storage, keyring, job) == data


@pytest.mark.parametrize("names", ["the image", "its source image"])
def test_a_fault_rule_naming_an_image_applies_to_its_snapshot_copies(storage: Storage,
                                                                     names: str) -> None:
    """A copy rule may name an image copy (or the image it copies) instead of a snapshot:
    it applies to the snapshot copies the image copy is made of."""
    job = copy_job(storage, add_source(storage, str(uuid.uuid4()), blocks_of(2)))
    image_id, source_image = f"ami-{os.urandom(9).hex()[:17]}", "ami-0123456789abcdef0"
    with storage.engine.begin() as conn:
        image_store.insert_image(conn, image_rules.Image(
            image_id=image_id, account_id=ACCOUNT, region=DST, name="copied image",
            state=image_rules.PENDING, creation_date=NOW, image_location="",
            architecture="x86_64", virtualization_type="hvm", root_device_name="/dev/xvda",
            source_image_id=source_image, source_image_region=SRC,
            block_devices=[image_rules.BlockDevice("/dev/xvda", snapshot_id=job.snapshot_id)]))
        fault_store.add_rule(conn, FaultRule(
            "", COPY, resource_id=image_id if names == "the image" else source_image,
            fail_at=0.0, message="injected for the image"), NOW)
    run_one(storage)
    failed = job_after(storage, job)
    assert (failed.state, failed.message) == (rules.FAILED, "injected for the image")


def test_a_minimum_duration_counts_the_blocks_an_incremental_copy_drops(
        storage: Storage) -> None:
    """The pace is in proportion to the blocks walked, dropped ones included: the next
    copy of a lineage whose 4 blocks were all deleted moves nothing, yet at 512 s/GiB
    (4 blocks of 512 KiB a second) it takes 1 s."""
    lineage = str(uuid.uuid4())
    copy_job(storage, add_source(storage, lineage, blocks_of(4)))
    run_one(storage)
    second = copy_job(storage, add_source(storage, lineage, {}),
                      created=NOW + dt.timedelta(minutes=1))
    started = time.monotonic()
    run_one(storage, min_seconds_per_gib=512.0)
    took = time.monotonic() - started
    done = job_after(storage, second)
    assert (done.state, done.mode, done.blocks_done, done.bytes_moved) == (
        rules.COMPLETED, rules.INCREMENTAL, 4, 0)
    assert 0.95 <= took < 30


# --- no busy loops on short leases (sixth pass) ---------------------------------------------

def test_an_idle_worker_on_a_short_lease_still_waits_between_rounds(storage: Storage) -> None:
    """A lease under 2 s makes the idle wait half the lease (0.5 s here), never zero: a
    worker with no job does not query the database in a busy loop."""
    rounds = _rounds_in_a_second_and_a_half(make_copier(storage, lease_seconds=1.0)[0])
    assert 1 <= rounds <= 6, rounds


def test_the_heartbeat_on_a_short_lease_renews_a_few_times_a_lease_not_in_a_loop(
        storage: Storage, monkeypatch: pytest.MonkeyPatch) -> None:
    """A lease of 1.5 s is renewed every 0.5 s while a put is held for about 1.5 s: a few
    renewals, not a loop of writes without a pause (a period rounded down to 0 s), and each
    well before the lease runs out, not as it does (a period of the whole lease)."""
    job = copy_job(storage, add_source(storage, str(uuid.uuid4()), blocks_of(1)))
    putting, release = hold_puts(storage)
    real_checkpoint, renewals = job_store.checkpoint, []

    def counted(*args: object, **kwargs: object) -> bool:
        if threading.current_thread().name.startswith("snapferry-lease-"):
            renewals.append(time.monotonic())
        return real_checkpoint(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(job_store, "checkpoint", counted)
    copier, _ = make_copier(storage, lease_seconds=1.5)
    worker = threading.Thread(target=copier.run_once)
    worker.start()
    try:
        assert putting.wait(30)
        threading.Event().wait(1.5)  # measuring an interval, not waiting for an event
    finally:
        release.set()
        worker.join(60)
        copier.stop()
    assert 2 <= len(renewals) <= 8, len(renewals)
    gaps = [later - earlier for earlier, later in itertools.pairwise(renewals)]
    assert max(gaps) < 1.0, gaps  # two thirds of the lease
    assert job_after(storage, job).state == rules.COMPLETED


class CountingBeat(Heartbeat):
    checks = 0

    def check(self) -> None:
        self.checks += 1
        super().check()


def test_a_paced_wait_looks_at_the_lease_four_times_a_second(storage: Storage) -> None:
    """A pace or rate delay is waited out in steps of a quarter second, each looking at the
    heartbeat's verdict: a lost lease stops the copy within about 0.25 s, not seconds later,
    and a 0.6 s wait is a few looks, not a busy loop."""
    copier, _ = make_copier(storage)
    job = copy_job(storage, add_source(storage, str(uuid.uuid4()), blocks_of(1)))
    try:
        beat = CountingBeat(storage, copier.clock, job, LEASE)  # never started: no renewals
        assert beat._thread.daemon  # a heartbeat never holds the server process open either
        began = time.monotonic()
        copier._pause(0.6, beat)
        assert time.monotonic() - began >= 0.6
        assert 1 <= beat.checks <= 6, beat.checks
        beat.lost.set()  # the heartbeat found the job taken over or cancelled
        began = time.monotonic()
        with pytest.raises(LostLease):
            copier._pause(30.0, beat)
        assert time.monotonic() - began < 1.0
    finally:
        copier.stop()
