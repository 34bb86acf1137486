"""services/keyring.py on a real data dir (SQLite + file block store in a tmp dir): finding a
key by each of its names and only in its own account and region, the AWS managed EBS key,
the default EBS key, who may use a key for EBS, and each lineage's data key.

Before these, keyring.py was guarded only by integration tests (a server start per mutant);
tests/mutation/run.py runs this file first.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid

import pytest

from snapferry.domain import keys as rules
from snapferry.domain.accounts import Principal
from snapferry.domain.clock import SystemClock
from snapferry.domain.envelope import BlockCipher, PlainBlocks
from snapferry.errors import ServiceError
from snapferry.services.keyring import KeyRing
from snapferry.storage import keys as store
from snapferry.storage.datadir import Storage

OWNER, OTHER = "111111111111", "222222222222"
REGION, ELSEWHERE = "us-east-1", "eu-west-1"


@pytest.fixture
def ring(storage: Storage) -> KeyRing:
    return KeyRing(storage.box, SystemClock())


def new_key(storage: Storage, ring: KeyRing, account: str = OWNER, region: str = REGION,
            policy: str | None = None) -> rules.Key:
    with storage.engine.begin() as conn:
        made = ring.new_key(conn, account, region, "a key",
                            policy or rules.default_policy(account))
        stored = store.get_key(conn, made.key_id)  # as stored: times to the millisecond
    assert stored is not None
    return stored


def error_of(call, *args) -> ServiceError:  # type: ignore[no-untyped-def]
    with pytest.raises(ServiceError) as caught:
        call(*args)
    return caught.value


def test_a_new_key_is_an_enabled_customer_key_with_sealed_material(storage: Storage,
                                                                   ring: KeyRing) -> None:
    key = new_key(storage, ring)
    assert (key.state, key.key_manager, key.account_id, key.region) == (
        rules.ENABLED, rules.CUSTOMER, OWNER, REGION)
    uuid.UUID(key.key_id)
    material = ring.material(key)
    assert len(material) == 32
    assert material not in key.material_sealed
    assert ring.material(new_key(storage, ring)) != material


def test_key_material_is_bound_to_its_key(storage: Storage, ring: KeyRing) -> None:
    key, other = new_key(storage, ring), new_key(storage, ring)
    swapped = rules.Key(**{**key.__dict__, "material_sealed": other.material_sealed})
    with pytest.raises(Exception):  # noqa: B017 (whatever the box raises: not the material)
        ring.material(swapped)


def test_encrypt_and_decrypt_round_trip_under_the_same_context(storage: Storage,
                                                               ring: KeyRing) -> None:
    key = new_key(storage, ring)
    blob = ring.encrypt(key, b"secret", {"a": "1"})
    assert b"secret" not in blob
    assert ring.decrypt(key, blob, {"a": "1"}) == b"secret"
    with pytest.raises(ServiceError):
        ring.decrypt(key, blob, {"a": "2"})


@pytest.mark.parametrize("state", [rules.DISABLED, rules.PENDING_DELETION])
def test_an_unusable_key_neither_encrypts_nor_decrypts(storage: Storage, ring: KeyRing,
                                                       state: str) -> None:
    key = new_key(storage, ring)
    blob = ring.encrypt(key, b"secret", None)
    off = rules.Key(**{**key.__dict__, "state": state})
    for call, args in ((ring.encrypt, (off, b"x", None)), (ring.decrypt, (off, blob, None))):
        with pytest.raises(ServiceError):
            call(*args)


def test_a_key_is_found_by_id_arn_alias_and_alias_arn(storage: Storage, ring: KeyRing) -> None:
    key = new_key(storage, ring)
    with storage.engine.begin() as conn:
        store.put_alias(conn, OWNER, REGION, "alias/mine", key.key_id,
                        dt.datetime.now(dt.UTC), create=True)
        for text in (key.key_id, key.arn, "alias/mine",
                     f"arn:aws:kms:{REGION}:{OWNER}:alias/mine"):
            assert ring.resolve(conn, text, OWNER, REGION) == key, text


def test_aliases_may_be_refused(storage: Storage, ring: KeyRing) -> None:
    key = new_key(storage, ring)
    with storage.engine.begin() as conn:
        store.put_alias(conn, OWNER, REGION, "alias/mine", key.key_id,
                        dt.datetime.now(dt.UTC), create=True)
        with pytest.raises(ServiceError):
            ring.resolve(conn, "alias/mine", OWNER, REGION, aliases=False)


def test_a_key_is_not_found_from_another_account_or_region(storage: Storage,
                                                           ring: KeyRing) -> None:
    key = new_key(storage, ring)
    with storage.engine.begin() as conn:
        # By bare id, a key is looked for in the caller's own account and region.
        error = error_of(ring.resolve, conn, key.key_id, OTHER, REGION)
        assert error.code == "NotFoundException"
        assert rules.key_arn(REGION, OTHER, key.key_id) in error.message
        assert error_of(ring.resolve, conn, key.key_id, OWNER, ELSEWHERE).code == \
            "NotFoundException"
        # By ARN, another account's key is found (whether it may be used is the policy's).
        assert ring.resolve(conn, key.arn, OTHER, REGION) == key
        assert error_of(ring.resolve, conn, str(uuid.uuid4()), OWNER, REGION).code == \
            "NotFoundException"


def test_an_unknown_alias_is_not_found(storage: Storage, ring: KeyRing) -> None:
    with storage.engine.begin() as conn:
        error = error_of(ring.resolve, conn, "alias/none", OWNER, REGION)
    assert error.code == "NotFoundException"
    assert rules.alias_arn(REGION, OWNER, "alias/none") in error.message


def test_the_aws_managed_ebs_key_is_made_once_per_account_and_region(storage: Storage,
                                                                     ring: KeyRing) -> None:
    with storage.engine.begin() as conn:
        assert store.alias_target(conn, OWNER, REGION, rules.EBS_ALIAS) is None
        managed = ring.resolve(conn, rules.EBS_ALIAS, OWNER, REGION)
        assert (managed.key_manager, managed.state) == (rules.AWS, rules.ENABLED)
        assert json.loads(managed.policy) == json.loads(rules.managed_policy(OWNER))
        assert store.alias_target(conn, OWNER, REGION, rules.EBS_ALIAS) == managed.key_id
        assert ring.managed_ebs_key(conn, OWNER, REGION).key_id == managed.key_id
        assert ring.resolve(conn, rules.EBS_ALIAS, OWNER, REGION).key_id == managed.key_id
        elsewhere = ring.managed_ebs_key(conn, OWNER, ELSEWHERE)
        theirs = ring.managed_ebs_key(conn, OTHER, REGION)
    assert len({managed.key_id, elsewhere.key_id, theirs.key_id}) == 3
    assert (elsewhere.region, theirs.account_id) == (ELSEWHERE, OTHER)


def test_another_accounts_managed_key_alias_is_not_made_for_the_caller(storage: Storage,
                                                                       ring: KeyRing) -> None:
    with storage.engine.begin() as conn:
        text = f"arn:aws:kms:{REGION}:{OTHER}:{rules.EBS_ALIAS}"
        assert error_of(ring.resolve, conn, text, OWNER, REGION).code == "NotFoundException"
        assert store.alias_target(conn, OWNER, REGION, rules.EBS_ALIAS) is None
        assert store.alias_target(conn, OTHER, REGION, rules.EBS_ALIAS) is None


def test_the_default_ebs_key_is_the_chosen_one_else_the_managed_one(storage: Storage,
                                                                    ring: KeyRing) -> None:
    key = new_key(storage, ring)
    with storage.engine.begin() as conn:
        managed = ring.ebs_default_key(conn, OWNER, REGION)
        assert managed.key_manager == rules.AWS
        store.set_ebs_encryption(conn, OWNER, REGION, default_key_arn=key.arn)
        assert ring.ebs_default_key(conn, OWNER, REGION) == key
        assert ring.ebs_default_key(conn, OWNER, ELSEWHERE).key_manager == rules.AWS


def test_only_principals_the_policy_allows_may_use_a_key_for_ebs(storage: Storage,
                                                                  ring: KeyRing) -> None:
    key = new_key(storage, ring)
    owner, other = Principal(OWNER, "AKIDOWNER"), Principal(OTHER, "AKIDOTHER")
    with storage.engine.begin() as conn:
        assert ring.usable_for_ebs(conn, owner, key) == key
        error = error_of(ring.usable_for_ebs, conn, other, key)
        assert error.code == "AccessDeniedException"
        assert error.message == f"{other.arn} may not use {key.arn} (DescribeKey)."
        disabled = rules.Key(**{**key.__dict__, "state": rules.DISABLED})
        assert error_of(ring.usable_for_ebs, conn, owner, disabled).code != \
            "AccessDeniedException"


@pytest.mark.parametrize("missing", ["DescribeKey", "GenerateDataKeyWithoutPlaintext",
                                     "Decrypt"])
def test_ebs_needs_each_of_three_kms_actions(storage: Storage, ring: KeyRing,
                                             missing: str) -> None:
    allowed = [f"kms:{a}" for a in ("DescribeKey", "GenerateDataKeyWithoutPlaintext",
                                    "Decrypt") if a != missing]
    policy = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{OWNER}:root"},
         "Action": "kms:*", "Resource": "*"},
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{OTHER}:root"},
         "Action": allowed, "Resource": "*"}]})
    key = new_key(storage, ring, policy=policy)
    with storage.engine.begin() as conn:
        error = error_of(ring.usable_for_ebs, conn, Principal(OTHER, "AKIDOTHER"), key)
    assert error.message.endswith(f"({missing}).")


def test_a_grant_lets_another_account_use_a_key(storage: Storage, ring: KeyRing) -> None:
    key = new_key(storage, ring)
    other = Principal(OTHER, "AKIDOTHER")
    with storage.engine.begin() as conn:
        assert not ring.may(conn, other, key, "Decrypt")
        store.insert_grant(conn, grant_id="g1", key_id=key.key_id, grant_token="t1",
                           grantee=other.arn, operations="Decrypt",
                           issuing_account=OWNER, creation_date=dt.datetime.now(dt.UTC))
        assert ring.may(conn, other, key, "Decrypt")
        assert not ring.may(conn, other, key, "Encrypt")
        assert not ring.may(conn, Principal("333333333333", "AKIDTHIRD"), key, "Decrypt")
        assert ring.may(conn, Principal(OWNER, "AKIDOWNER"), key, "Encrypt")


def test_a_lineage_keeps_its_data_key_wrapped_under_its_kms_key(storage: Storage,
                                                               ring: KeyRing) -> None:
    key = new_key(storage, ring)
    with storage.engine.begin() as conn:
        lineage, cipher = ring.new_lineage(conn, key)
        found = store.lineage_key(conn, lineage)
    assert found is not None and found[0] == key.arn
    assert ring.decrypt(key, found[1], {"lineage": lineage}) == cipher.data_key
    with pytest.raises(ServiceError):
        ring.decrypt(key, found[1], {"lineage": str(uuid.uuid4())})
    # A fresh key ring (another process) unwraps the same data key.
    fresh = KeyRing(storage.box, SystemClock())
    with storage.engine.connect() as conn:
        again = fresh.codec(conn, lineage, REGION)
        assert ring.codec(conn, lineage, REGION) is cipher
    assert isinstance(again, BlockCipher) and again.data_key == cipher.data_key


def test_a_lineage_without_a_key_is_plain(storage: Storage, ring: KeyRing) -> None:
    lineage = str(uuid.uuid4())
    with storage.engine.connect() as conn:
        codec = ring.codec(conn, lineage, REGION)
        assert isinstance(codec, PlainBlocks)
        assert codec == PlainBlocks(REGION, lineage)
        assert ring.codec(conn, lineage, ELSEWHERE) == PlainBlocks(ELSEWHERE, lineage)
    assert ring._lineages.get(lineage) is not None  # remembered: no query next time


def test_the_lineage_cache_is_bounded_and_an_evicted_cipher_comes_back(
        storage: Storage, ring: KeyRing) -> None:
    ring._lineages.bound = 2
    key = new_key(storage, ring)
    with storage.engine.begin() as conn:
        made = [ring.new_lineage(conn, key) for _ in range(3)]
    assert len(ring._lineages) == 2
    first, first_cipher = made[0]
    assert ring._lineages.get(first) is None  # the least recently used went
    with storage.engine.connect() as conn:
        again = ring.codec(conn, first, REGION, key=key)
    # Unwrapped again from the stored lineage key: the same data key, so its blocks open.
    assert isinstance(again, BlockCipher) and again is not first_cipher
    assert again.data_key == first_cipher.data_key
    block_id = first_cipher.block_id(b"\x01" * 32)
    assert again.open(block_id, first_cipher.seal(block_id, b"data")) == b"data"
    assert len(ring._lineages) == 2


def test_a_lineage_whose_key_cannot_be_used_cannot_be_read(storage: Storage,
                                                           ring: KeyRing) -> None:
    key = new_key(storage, ring)
    with storage.engine.begin() as conn:
        lineage, _ = ring.new_lineage(conn, key)
        store.update_key(conn, key.key_id, state=rules.DISABLED)
    disabled = rules.Key(**{**key.__dict__, "state": rules.DISABLED})
    for keyring in (ring, KeyRing(storage.box, SystemClock())):  # cached, and not cached
        with storage.engine.connect() as conn:
            with pytest.raises(ServiceError):
                keyring.codec(conn, lineage, REGION)
            with pytest.raises(ServiceError):
                keyring.codec(conn, lineage, REGION, key=disabled)


def test_a_cached_lineage_checks_the_key_it_is_given(storage: Storage, ring: KeyRing) -> None:
    key = new_key(storage, ring)
    with storage.engine.begin() as conn:
        lineage, cipher = ring.new_lineage(conn, key)
    with storage.engine.connect() as conn:
        assert ring.codec(conn, lineage, REGION, key=key) is cipher
        # Not cached yet (another process): the key given does not stand in for the cipher.
        fresh = KeyRing(storage.box, SystemClock()).codec(conn, lineage, REGION, key=key)
    assert isinstance(fresh, BlockCipher) and fresh.data_key == cipher.data_key


def test_a_lineage_whose_key_is_gone_cannot_be_read(storage: Storage) -> None:
    with storage.engine.begin() as conn:
        orphan = str(uuid.uuid4())
        gone_arn = rules.key_arn(REGION, OWNER, str(uuid.uuid4()))
        store.insert_lineage_key(conn, orphan, gone_arn, b"x")
    with storage.engine.connect() as conn:
        error = error_of(KeyRing(storage.box, SystemClock()).codec, conn, orphan, REGION)
    assert (error.code, error.message) == ("KMSInvalidStateException",
                                           f"The KMS key {gone_arn} is gone.")


def test_only_alias_aws_ebs_itself_is_the_managed_key(storage: Storage, ring: KeyRing) -> None:
    key = new_key(storage, ring)
    with storage.engine.begin() as conn:
        # Alias names sorting before and after alias/aws/ebs are aliases like any other.
        for name in ("alias/app", "alias/zed"):
            store.put_alias(conn, OWNER, REGION, name, key.key_id, dt.datetime.now(dt.UTC),
                            create=True)
            assert ring.resolve(conn, name, OWNER, REGION).key_id == key.key_id, name
        assert error_of(ring.resolve, conn, "alias/aaa", OWNER, REGION).code == \
            "NotFoundException"
        assert store.alias_target(conn, OWNER, REGION, rules.EBS_ALIAS) is None
        # The name as a request carries it: a string object of its own.
        parsed = "".join(["alias/aws/", "ebs"])
        assert ring.resolve(conn, parsed, OWNER, REGION).key_manager == rules.AWS
        # The caller's own alias ARN, first use in its region: the account read from the ARN
        # is compared by value.
        own = ring.resolve(conn, f"arn:aws:kms:{ELSEWHERE}:{OWNER}:{rules.EBS_ALIAS}", OWNER,
                           ELSEWHERE)
        assert own.key_manager == rules.AWS
        assert own.key_id == store.alias_target(conn, OWNER, ELSEWHERE, rules.EBS_ALIAS)


def test_an_earlier_accounts_managed_key_alias_is_not_the_callers(storage: Storage,
                                                                  ring: KeyRing) -> None:
    """OWNER (111...) sorts before OTHER (222...): OTHER naming OWNER's alias/aws/ebs does
    not make OTHER a managed key."""
    with storage.engine.begin() as conn:
        text = f"arn:aws:kms:{REGION}:{OWNER}:{rules.EBS_ALIAS}"
        assert error_of(ring.resolve, conn, text, OTHER, REGION).code == "NotFoundException"
        assert store.alias_target(conn, OTHER, REGION, rules.EBS_ALIAS) is None


def test_a_bare_key_id_is_looked_for_in_the_callers_account_and_region_either_way(
        storage: Storage, ring: KeyRing) -> None:
    theirs = new_key(storage, ring, account=OTHER)  # 222... sorts after the caller's 111...
    elsewhere = new_key(storage, ring, region=ELSEWHERE)  # eu-west-1 sorts before us-east-1
    with storage.engine.begin() as conn:
        assert error_of(ring.resolve, conn, theirs.key_id, OWNER, REGION).code == \
            "NotFoundException"
        assert error_of(ring.resolve, conn, elsewhere.key_id, OWNER, REGION).code == \
            "NotFoundException"


def test_a_concurrent_first_use_of_the_managed_key_takes_the_one_made_first(
        storage: Storage, ring: KeyRing, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two requests (two copies of one image) both find no alias/aws/ebs and both make a
    key: the second's alias insert fails, its key is taken back with it, and it uses the
    first's. The race is replayed by having the second's first lookup miss."""
    with storage.engine.begin() as conn:
        first = ring.managed_ebs_key(conn, OWNER, REGION)
    real = store.alias_target
    lookups: list[str] = []

    def late(conn, account_id, region, alias):  # type: ignore[no-untyped-def]
        lookups.append(alias)
        return None if len(lookups) == 1 else real(conn, account_id, region, alias)

    monkeypatch.setattr(store, "alias_target", late)
    with storage.engine.begin() as conn:
        second = KeyRing(storage.box, SystemClock()).managed_ebs_key(conn, OWNER, REGION)
    assert second.key_id == first.key_id and second.key_manager == rules.AWS
    assert lookups == [rules.EBS_ALIAS, rules.EBS_ALIAS]
    with storage.engine.connect() as conn:
        made = store.list_keys(conn, OWNER, REGION, None, 100)
    assert [k.key_id for k in made] == [first.key_id]  # the loser's key was taken back


def test_a_failed_managed_key_insert_that_finds_no_key_is_raised(
        storage: Storage, ring: KeyRing, monkeypatch: pytest.MonkeyPatch) -> None:
    from sqlalchemy.exc import IntegrityError

    with storage.engine.begin() as conn:
        ring.managed_ebs_key(conn, OWNER, REGION)
    monkeypatch.setattr(store, "alias_target", lambda *args: None)
    with storage.engine.begin() as conn, pytest.raises(IntegrityError):
        KeyRing(storage.box, SystemClock()).managed_ebs_key(conn, OWNER, REGION)


def test_ebs_uses_a_key_via_ec2_and_a_direct_caller_does_not(storage: Storage,
                                                             ring: KeyRing) -> None:
    """A key policy that lets another account use the key only through EC2 (kms:ViaService):
    EBS's use qualifies, the same principal calling KMS itself does not."""
    policy = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{OWNER}:root"},
         "Action": "kms:*", "Resource": "*"},
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{OTHER}:root"},
         "Action": "kms:*", "Resource": "*", "Condition": {"StringEquals": {
             "kms:ViaService": f"ec2.{REGION}.amazonaws.com"}}}]})
    key = new_key(storage, ring, policy=policy)
    other = Principal(OTHER, "AKIDOTHER")
    with storage.engine.begin() as conn:
        assert ring.usable_for_ebs(conn, other, key) == key
        assert ring.may(conn, other, key, "Decrypt", via_ec2=True)
        assert not ring.may(conn, other, key, "Decrypt")
