"""The domain's rules, each asserted on its own: what a mutation audit found no fast test for.

Every test here states a rule (a boundary, a refusal, a binding) that a one-token change to
the rule's line would break; tests/mutation/run.py checks that they do.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import json
import uuid

import pytest

from snapferry.domain import copies, envelope, keys, policy, snapshots, tokens
from snapferry.domain.accounts import AccessKey, Principal
from snapferry.domain.blocks import BLOCK_SIZE
from snapferry.errors import ServiceError
from snapferry.services import ebs as ebs_service
from snapferry.services.context import RequestContext
from snapferry.services.keyring import KeyRing
from snapferry.storage import snapshots as snapshot_store
from snapferry.storage.datadir import Storage

NOW = dt.datetime(2026, 11, 22, 12, 0, 0, tzinfo=dt.UTC)
OWNER = Principal("111111111111", "AKIDOWNER")
OTHER = Principal("222222222222", "AKIDOTHER")
THIRD = Principal("333333333333", "AKIDTHIRD")


def code_of(call, *args, **kwargs) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(ServiceError) as caught:
        call(*args, **kwargs)
    return caught.value.code


# --- copies ---------------------------------------------------------------------------------

@pytest.mark.parametrize("minutes", [15, 30, 2865, 2880, None])
def test_completion_duration_in_steps_of_15_from_15_to_2880_is_accepted(minutes: int | None
                                                                        ) -> None:
    copies.check_duration(minutes)


@pytest.mark.parametrize("minutes", [0, 14, 16, 2881, 2895, -15])
def test_completion_duration_outside_its_range_or_step_is_refused(minutes: int) -> None:
    assert code_of(copies.check_duration, minutes) == "InvalidParameterValue"


def test_an_encrypted_source_cannot_be_copied_unencrypted() -> None:
    assert code_of(copies.check_not_decrypting, True, False) == "InvalidParameterValue"
    copies.check_not_decrypting(True, None)
    copies.check_not_decrypting(True, True)
    copies.check_not_decrypting(False, False)


def test_progress_is_never_100_before_completion() -> None:
    assert copies.progress(0, None) == 0
    assert copies.progress(5, 0) == 0
    assert copies.progress(1, 4) == 25
    assert copies.progress(3, 4) == 75
    assert copies.progress(1, 3) == 33  # rounded down, never up
    assert copies.progress(2, 3) == 66
    assert copies.progress(4, 4) == 99
    assert copies.progress(999, 1000) == 99


# --- tokens ---------------------------------------------------------------------------------

MINTER = tokens.TokenMinter(tokens.derive_key(b"m" * 32, b"block tokens"))
LATER = NOW + dt.timedelta(hours=1)


def test_a_token_opens_to_its_cursor_until_it_expires() -> None:
    token = MINTER.mint("block", "snap-1/7", 7, LATER)
    assert MINTER.open("block", "snap-1/7", token, NOW) == 7
    assert MINTER.open("block", "snap-1/7", token, LATER) == 7  # good through its last second
    with pytest.raises(tokens.TokenError, match="expired"):
        MINTER.open("block", "snap-1/7", token, LATER + dt.timedelta(seconds=1))


def test_a_token_opens_only_for_what_it_was_minted_for() -> None:
    token = MINTER.mint("block", "snap-1/7", 7, LATER)
    for purpose, binding, minter in [("page", "snap-1/7", MINTER), ("block", "snap-1/8", MINTER),
                                     ("block", "snap-1/7", tokens.TokenMinter(b"k" * 32))]:
        with pytest.raises(tokens.TokenError):
            minter.open(purpose, binding, token, NOW)


def test_an_edited_or_truncated_token_is_refused() -> None:
    raw = base64.b64decode(MINTER.mint("block", "b", 7, LATER))
    for forged in (raw[:-1], raw[:15], raw[:-1] + bytes([raw[-1] ^ 1]),
                   raw[:15] + bytes([raw[15] ^ 1]) + raw[16:]):
        with pytest.raises(tokens.TokenError):
            MINTER.open("block", "b", base64.b64encode(forged).decode(), NOW)
    genuine = MINTER.mint("block", "b", 7, LATER)
    for garbage in ("not base64!", "", "AAAA", genuine + "!", " " + genuine):
        with pytest.raises(tokens.TokenError):
            MINTER.open("block", "b", garbage, NOW)


def test_derived_keys_differ_by_purpose_and_master() -> None:
    derived = {tokens.derive_key(master, purpose)
               for master in (b"a" * 32, b"b" * 32) for purpose in (b"x", b"y")}
    assert len(derived) == 4


# --- policy ---------------------------------------------------------------------------------

def statement(effect: str = "Allow", principal: object = None, action: object = "kms:*",
              **extra: object) -> dict[str, object]:
    return {"Effect": effect, "Principal": principal or {"AWS": OTHER.arn},
            "Action": action, **extra}


def resource_policy(*statements: dict[str, object], grants: tuple[policy.Grant, ...] = ()
                    ) -> policy.ResourcePolicy:
    text = json.dumps({"Version": policy.POLICY_VERSION, "Statement": list(statements)})
    return policy.key_policy(OWNER.account_id, text, grants)


def allows(rp: policy.ResourcePolicy, who: Principal = OTHER, action: str = "kms:Decrypt",
           context: dict[str, str] | None = None) -> bool:
    return policy.authorize(who, action, (), {"resource_policy": rp,
                                              "encryption_context": context})


@pytest.mark.parametrize("text", ["{", "[]", '{"Version": "2012-10-17"}',
                                  '{"Statement": [{"Effect": "Maybe", "Principal": "*", '
                                  '"Action": "kms:*"}]}',
                                  '{"Statement": ["x"]}',
                                  '{"Statement": [{"Effect": "Allow", "Action": "kms:*"}]}',
                                  '{"Statement": [{"Effect": "Allow", "Principal": "*"}]}'])
def test_a_policy_we_cannot_evaluate_is_refused(text: str) -> None:
    assert code_of(policy.parse_policy, text) == "MalformedPolicyDocumentException"


def test_a_single_statement_object_is_a_statement_list() -> None:
    text = json.dumps({"Statement": statement()})
    assert allows(policy.ResourcePolicy(OWNER.account_id, policy.parse_policy(text)))


@pytest.mark.parametrize("pattern", [OTHER.arn, OTHER.account_id, "*", [OWNER.arn, OTHER.arn]])
def test_an_allow_names_its_principal_by_arn_account_or_star(pattern: object) -> None:
    assert allows(resource_policy(statement(principal={"AWS": pattern})))


def test_an_allow_for_one_account_does_not_allow_a_third() -> None:
    rp = resource_policy(statement())
    assert allows(rp, OTHER)
    assert not allows(rp, THIRD)
    assert not allows(resource_policy(statement(principal={"Service": "ec2.amazonaws.com"})))
    text = json.dumps({"Statement": [statement(principal={"AWS": ["", " ", "!"]})]})
    assert code_of(policy.parse_policy, text) == "MalformedPolicyDocumentException"


def test_the_principal_star_string_matches_everyone() -> None:
    assert allows(resource_policy(statement(principal="*")), THIRD)


def test_an_allow_covers_only_its_actions() -> None:
    rp = resource_policy(statement(action=["kms:Describe*", "kms:Encrypt"]))
    assert allows(rp, action="kms:DescribeKey")
    assert allows(rp, action="kms:Encrypt")
    assert not allows(rp, action="kms:Decrypt")


def test_a_matching_deny_wins_over_any_allow() -> None:
    rp = resource_policy(statement(), statement("Deny", action="kms:Decrypt"))
    assert not allows(rp, action="kms:Decrypt")
    assert allows(rp, action="kms:Encrypt")
    # Deny first or last: the same answer.
    assert not allows(resource_policy(statement("Deny", action="kms:Decrypt"), statement()))


def test_a_deny_for_another_principal_does_not_apply() -> None:
    rp = resource_policy(statement(), statement("Deny", principal={"AWS": THIRD.arn}))
    assert allows(rp, OTHER)


@pytest.mark.parametrize("operator,wanted,expected", [
    ("StringEquals", OTHER.account_id, True),
    ("StringEquals", [THIRD.account_id, OTHER.account_id], True),
    ("StringEquals", THIRD.account_id, False),
    ("StringLike", "2222*", True),
    ("StringLike", "3333*", False),
])
def test_an_allow_applies_only_when_its_conditions_hold(operator: str, wanted: object,
                                                        expected: bool) -> None:
    condition = {operator: {"kms:CallerAccount": wanted}}
    assert allows(resource_policy(statement(Condition=condition))) is expected


@pytest.mark.parametrize("condition", [{"StringEquals": {"kms:ViaService": "ec2"}},
                                       {"NumericLessThan": {"kms:CallerAccount": "1"}}])
def test_a_condition_that_does_not_hold_applies_neither_allow_nor_deny(
        condition: dict[str, object]) -> None:
    """As IAM evaluates: a key the request lacks, or a test that fails, makes the condition
    false, so the statement does not apply, whatever its effect."""
    assert not allows(resource_policy(statement(Condition=condition)))
    assert allows(resource_policy(statement(), statement("Deny", Condition=condition)))


def test_a_condition_block_that_is_not_a_mapping_is_malformed() -> None:
    text = json.dumps({"Statement": [statement(Condition={"StringEquals": "not a mapping"})]})
    assert code_of(policy.parse_policy, text) == "MalformedPolicyDocumentException"


def test_a_deny_whose_condition_is_false_does_not_apply() -> None:
    deny = statement("Deny", principal="*",
                     Condition={"StringEquals": {"aws:PrincipalAccount": THIRD.account_id}})
    assert allows(resource_policy(statement(), deny), OTHER)
    assert not allows(resource_policy(statement(principal="*"), deny), THIRD)


def test_conditions_see_the_callers_arn() -> None:
    condition = {"StringEquals": {"aws:PrincipalArn": OTHER.arn}}
    assert allows(resource_policy(statement(principal="*", Condition=condition)), OTHER)
    assert not allows(resource_policy(statement(principal="*", Condition=condition)), THIRD)


def test_a_grant_allows_its_grantee_its_operations_only() -> None:
    grant = policy.Grant(OTHER.arn, frozenset({"Decrypt"}))
    rp = resource_policy(statement(principal={"AWS": OWNER.arn}), grants=(grant,))
    assert allows(rp, OTHER, "kms:Decrypt")
    assert not allows(rp, OTHER, "kms:Encrypt")
    assert not allows(rp, THIRD, "kms:Decrypt")
    assert not allows(rp, OTHER, "ec2:Decrypt")
    assert not allows(rp, OTHER, "sts:Decrypt")
    assert allows(resource_policy(statement(principal={"AWS": OWNER.arn}), grants=(
        policy.Grant(OTHER.account_id, frozenset({"Decrypt"})),)), OTHER)


def test_a_grants_encryption_context_constraints_hold() -> None:
    equals = policy.Grant(OTHER.arn, frozenset({"Decrypt"}), context_equals={"a": "1"})
    subset = policy.Grant(OTHER.arn, frozenset({"Decrypt"}), context_subset={"a": "1"})
    base = statement(principal={"AWS": OWNER.arn})
    assert allows(resource_policy(base, grants=(equals,)), context={"a": "1"})
    assert not allows(resource_policy(base, grants=(equals,)), context={"a": "1", "b": "2"})
    assert not allows(resource_policy(base, grants=(equals,)), context=None)
    assert allows(resource_policy(base, grants=(subset,)), context={"a": "1", "b": "2"})
    assert not allows(resource_policy(base, grants=(subset,)), context={"a": "2"})
    assert not allows(resource_policy(base, grants=(subset,)), context=None)


def test_grant_constraints_compare_values_not_objects() -> None:
    # Values parsed from two requests are equal strings, never the same object.
    subset = policy.Grant(OTHER.arn, frozenset({"Decrypt"}),
                          context_subset={"volume": "".join(["vol-", "1"])})
    rp = resource_policy(statement(principal={"AWS": OWNER.arn}), grants=(subset,))
    assert allows(rp, context={"volume": "".join(["vol", "-1"])})


def test_without_a_resource_policy_a_root_may_act() -> None:
    assert policy.authorize(OWNER, "ec2:CopySnapshot")
    assert policy.authorize(OWNER, "ec2:CopySnapshot", (), {"encryption_context": {}})


def test_the_default_key_policy_lets_only_the_owning_account_in() -> None:
    rp = policy.key_policy(OWNER.account_id, keys.default_policy(OWNER.account_id))
    assert allows(rp, OWNER, "kms:ScheduleKeyDeletion")
    assert not allows(rp, OTHER, "kms:Decrypt")


def test_the_managed_ebs_key_policy_cannot_be_shared() -> None:
    rp = policy.key_policy(OWNER.account_id, keys.managed_policy(OWNER.account_id))
    assert allows(rp, OWNER, "kms:Decrypt")
    assert allows(rp, OWNER, "kms:GenerateDataKeyWithoutPlaintext")
    assert allows(rp, OWNER, "kms:GetKeyPolicy")  # the second statement, after a non-match
    assert not allows(rp, OWNER, "kms:ScheduleKeyDeletion")
    assert not allows(rp, OTHER, "kms:Decrypt")
    assert not allows(rp, OTHER, "kms:DescribeKey")


# --- envelope -------------------------------------------------------------------------------

KEY_ID = str(uuid.UUID(int=7))
MATERIAL = bytes(range(32))


def test_a_kms_blob_decrypts_only_under_its_key_and_context() -> None:
    blob = envelope.encrypt(MATERIAL, KEY_ID, b"secret", {"a": "1"})
    assert envelope.blob_key_id(blob) == KEY_ID
    assert envelope.decrypt(MATERIAL, blob, {"a": "1"}) == b"secret"
    for material, context in [(bytes(32), {"a": "1"}), (MATERIAL, {"a": "2"}), (MATERIAL, None)]:
        assert code_of(envelope.decrypt, material, blob, context) == "InvalidCiphertextException"
    relabelled = blob[:1] + uuid.UUID(int=8).bytes + blob[17:]
    assert code_of(envelope.decrypt, MATERIAL, relabelled, {"a": "1"}) == \
        "InvalidCiphertextException"


def test_an_encryption_context_is_a_map_not_a_sequence() -> None:
    blob = envelope.encrypt(MATERIAL, KEY_ID, b"secret", {"a": "1", "b": "2"})
    assert envelope.decrypt(MATERIAL, blob, {"b": "2", "a": "1"}) == b"secret"


# Made once by this code; data on disk must stay readable by every later version.
KEPT_BLOB = bytes.fromhex(
    "0100000000000000000000000000000007fa90cf40088587686e744fe83bb7718de7bc7bafd9af58e146bb"
    "54b8c3d185ba71ab0afd15766368")
KEPT_BLOCK_ID = "56ffb4738ab34a7b3d0d3096f5f6170cc7b30b862619e2e2925f8b73a2f96418"
KEPT_BLOCK = bytes.fromhex(
    "2db9edff73695abcb1f883a471751ede599bb0440712666ca258f0dfe013602d619fa5faf51e07232f7ad8"
    "756848")


def test_what_was_written_before_stays_readable() -> None:
    assert envelope.blob_key_id(KEPT_BLOB) == KEY_ID
    assert envelope.decrypt(MATERIAL, KEPT_BLOB, {"a": "1", "b": "2"}) == b"kept forever"
    cipher = envelope.BlockCipher("lineage-1", MATERIAL)
    assert cipher.block_id(b"d" * 32) == KEPT_BLOCK_ID
    assert cipher.open(KEPT_BLOCK_ID, KEPT_BLOCK) == b"block kept forever"


def test_a_blob_that_is_too_short_or_of_another_version_names_no_key() -> None:
    blob = envelope.encrypt(MATERIAL, KEY_ID, b"")
    assert len(blob) == 1 + 16 + 12 + 16
    assert envelope.blob_key_id(blob) == KEY_ID  # the shortest genuine blob
    for bad in (blob[:-1], bytes([0]) + blob[1:], bytes([2]) + blob[1:], b""):
        assert code_of(envelope.blob_key_id, bad) == "InvalidCiphertextException"


def test_encrypting_twice_gives_different_blobs() -> None:
    assert envelope.encrypt(MATERIAL, KEY_ID, b"x") != envelope.encrypt(MATERIAL, KEY_ID, b"x")
    assert len(envelope.new_material()) == 32
    assert envelope.new_material() != envelope.new_material()


def test_a_sealed_block_opens_only_in_its_lineage_at_its_name() -> None:
    cipher = envelope.BlockCipher("lineage-1", MATERIAL)
    name = cipher.block_id(b"d" * 32)
    stored = cipher.seal(name, b"block data")
    assert b"block data" not in stored
    assert stored != cipher.seal(name, b"block data")  # a fresh nonce each time
    assert cipher.open(name, stored) == b"block data"
    for other, at in [(envelope.BlockCipher("lineage-2", MATERIAL), name),
                      (envelope.BlockCipher("lineage-1", bytes(32)), name),
                      (cipher, cipher.block_id(b"e" * 32))]:
        with pytest.raises(ValueError):
            other.open(at, stored)
    with pytest.raises(ValueError):
        cipher.open(name, stored[:-1] + bytes([stored[-1] ^ 1]))


def test_block_names_are_stable_within_a_lineage_and_unlinkable_across() -> None:
    a, b = envelope.BlockCipher("l", MATERIAL), envelope.BlockCipher("l", bytes(32))
    assert a.block_id(b"d" * 32) == a.block_id(b"d" * 32)
    assert a.block_id(b"d" * 32) != a.block_id(b"e" * 32)
    assert a.block_id(b"d" * 32) != b.block_id(b"d" * 32)
    plain = envelope.PlainBlocks("us-east-1", "l")
    assert plain.block_id(b"d" * 32) == plain.block_id(b"d" * 32)
    assert plain.block_id(b"d" * 32) != plain.block_id(b"e" * 32)
    assert plain.block_id(b"d" * 32) != envelope.PlainBlocks("us-west-2", "l").block_id(b"d" * 32)
    assert plain.block_id(b"d" * 32) != envelope.PlainBlocks("us-east-1", "m").block_id(b"d" * 32)
    assert plain.open("x", plain.seal("x", b"as is")) == b"as is"


def test_a_block_ciphers_repr_shows_no_key_material() -> None:
    # a cipher in a log line or a traceback must not leak the lineage's data key or the
    # block-id key derived from it
    cipher = envelope.BlockCipher("lineage-1", MATERIAL)
    shown = repr(cipher)
    assert "lineage-1" in shown
    assert repr(MATERIAL) not in shown and repr(cipher._dedup_key) not in shown
    assert "AESGCM" not in shown


def test_a_lineages_codec_cannot_be_rekeyed_or_moved_once_made() -> None:
    # the keyring caches one codec per lineage and request threads share it: re-keying a
    # cipher, or moving a codec to another lineage or region, would seal or name blocks of
    # one lineage with another's key or scope
    cipher = envelope.BlockCipher("lineage-1", MATERIAL)
    for attribute, value in [("data_key", bytes(32)), ("lineage_id", "lineage-2")]:
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(cipher, attribute, value)
    plain = envelope.PlainBlocks("us-east-1", "l")
    for attribute, value in [("region", "us-west-2"), ("lineage_id", "m")]:
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(plain, attribute, value)
    assert (cipher.lineage_id, cipher.data_key, plain.region, plain.lineage_id) == (
        "lineage-1", MATERIAL, "us-east-1", "l")


def test_only_an_encrypted_lineage_proves_a_block_by_opening_it() -> None:
    # a copy skips re-hashing what `open` authenticated: never for plain blocks
    assert envelope.BlockCipher("l", MATERIAL).authenticated is True
    assert envelope.PlainBlocks("us-east-1", "l").authenticated is False
    stored = envelope.BlockCipher("l", MATERIAL).seal("x", b"12345")
    assert len(stored) == 12 + 5 + 16  # nonce, ciphertext, tag: nothing more


# --- keys -----------------------------------------------------------------------------------

KID = "1234abcd-12ab-34cd-56ef-1234567890ab"
REGION = "us-east-1"


@pytest.mark.parametrize("text,expected", [
    (KID, keys.KeyRef("id", OWNER.account_id, REGION, KID)),
    (keys.key_arn(REGION, OTHER.account_id, KID), keys.KeyRef("id", OTHER.account_id, REGION,
                                                               KID)),
    ("alias/mine", keys.KeyRef("alias", OWNER.account_id, REGION, "alias/mine")),
    (keys.alias_arn(REGION, OTHER.account_id, "alias/theirs"),
     keys.KeyRef("alias", OTHER.account_id, REGION, "alias/theirs")),
])
def test_a_key_is_named_four_ways(text: str, expected: keys.KeyRef) -> None:
    assert keys.parse_key_ref(text, OWNER.account_id, REGION) == expected


@pytest.mark.parametrize("text", ["", "alias/", KID.upper(), KID + "0", "x" + KID,
                                  "arn:aws:kms:us-east-1:1111:key/" + KID, "alias/a b"])
def test_what_no_key_could_be_named_is_not_found(text: str) -> None:
    assert code_of(keys.parse_key_ref, text, OWNER.account_id, REGION) == "NotFoundException"


def test_aliases_can_be_refused_where_only_keys_are_allowed() -> None:
    for text in ("alias/mine", keys.alias_arn(REGION, OWNER.account_id, "alias/mine")):
        assert code_of(keys.parse_key_ref, text, OWNER.account_id, REGION, aliases=False) == \
            "NotFoundException"
    assert keys.parse_key_ref(KID, OWNER.account_id, REGION, aliases=False).value == KID


@pytest.mark.parametrize("other", ["eu-west-1", "us-west-2"])  # sorting before and after
def test_a_key_of_another_region_is_not_found(other: str) -> None:
    for text in (keys.key_arn(other, OWNER.account_id, KID),
                 keys.alias_arn(other, OWNER.account_id, "alias/x")):
        assert code_of(keys.parse_key_ref, text, OWNER.account_id, REGION) == "NotFoundException"


def test_a_missing_key_or_alias_is_not_found_by_its_arn() -> None:
    error = keys.key_not_found("arn:aws:kms:us-east-1:111111111111:key/" + KID)
    assert (error.code, error.status) == ("NotFoundException", 400)
    assert KID in error.message
    error = keys.alias_not_found("arn:aws:kms:us-east-1:111111111111:alias/gone")
    assert error.code == "NotFoundException" and "alias/gone" in error.message


def test_a_bad_key_id_or_alias_name_is_quoted_to_256_characters() -> None:
    # the refusal names what was sent, cut so a huge parameter does not make a huge answer
    assert f"'{'k' * 256}'" in keys.invalid_key_id("k" * 300).message
    with pytest.raises(ServiceError) as caught:
        keys.check_alias_name("a" * 300)
    assert f"'{'a' * 256}'." in caught.value.message


def test_alias_names_follow_the_rules() -> None:
    keys.check_alias_name("alias/my-key_1/x")
    assert code_of(keys.check_alias_name, "my-key") == "ValidationException"
    assert code_of(keys.check_alias_name, "alias/" + "a" * 251) == "ValidationException"
    keys.check_alias_name("alias/" + "a" * 250)
    assert code_of(keys.check_alias_name, "alias/aws/mine") == "InvalidAliasNameException"


def a_key(state: str = keys.ENABLED, manager: str = keys.CUSTOMER) -> keys.Key:
    # the state and manager as storage gives them: equal to the constants, not the same object
    return keys.Key(KID, OWNER.account_id, REGION, "", "".join(list(state)),
                    "".join(list(manager)), NOW, "{}", b"")


def test_only_an_enabled_key_can_be_used() -> None:
    keys.check_usable(a_key())
    assert a_key().enabled
    assert not a_key(keys.DISABLED).enabled and not a_key(keys.PENDING_DELETION).enabled
    assert a_key("".join(["Enab", "led"])).enabled  # as read from storage: equal, not same
    assert code_of(keys.check_usable, a_key(keys.DISABLED)) == "DisabledException"
    assert code_of(keys.check_usable, a_key(keys.PENDING_DELETION)) == \
        "KMSInvalidStateException"
    assert a_key().arn == f"arn:aws:kms:{REGION}:{OWNER.account_id}:key/{KID}"


def test_the_aws_managed_key_cannot_be_managed() -> None:
    keys.check_customer_managed(a_key(), "ScheduleKeyDeletion")
    assert code_of(keys.check_customer_managed, a_key(manager=keys.AWS), "x") == \
        "UnsupportedOperationException"


def test_an_aws_managed_key_rotates_yearly_from_its_creation() -> None:
    key = a_key(manager=keys.AWS)
    year = dt.timedelta(days=365)
    assert keys.rotation_status(key, NOW) == keys.RotationStatus(True, 365, NOW + year)
    # 400 days on: one period has passed, the next rotation is the second anniversary
    assert keys.rotation_status(key, NOW + dt.timedelta(days=400)).next_date == NOW + 2 * year
    # exactly on an anniversary, the next one is a full period later
    assert keys.rotation_status(key, NOW + year).next_date == NOW + 2 * year
    assert keys.rotation_status(key, NOW + year - dt.timedelta(seconds=1)).next_date == \
        NOW + year


def test_a_customer_key_rotates_only_when_its_owner_enabled_it() -> None:
    key = a_key()
    assert keys.rotation_status(key, NOW) == keys.RotationStatus(False, None, None)
    key.rotation_period_days, key.next_rotation_date = 90, NOW + dt.timedelta(days=3)
    assert keys.rotation_status(key, NOW) == \
        keys.RotationStatus(True, 90, NOW + dt.timedelta(days=3))


def test_enabling_rotation_starts_a_schedule_from_today() -> None:
    key = a_key()
    assert keys.enabled_rotation(key, None, NOW) == (365, NOW + dt.timedelta(days=365))
    assert keys.enabled_rotation(key, 90, NOW) == (90, NOW + dt.timedelta(days=90))


def test_enabling_rotation_again_keeps_the_schedule_unless_the_period_changes() -> None:
    key = a_key()
    key.rotation_period_days, key.next_rotation_date = 180, NOW + dt.timedelta(days=5)
    later = NOW + dt.timedelta(days=30)
    assert keys.enabled_rotation(key, None, later) == (180, NOW + dt.timedelta(days=5))
    assert keys.enabled_rotation(key, 180, later) == (180, NOW + dt.timedelta(days=5))
    # a new period restarts from today
    assert keys.enabled_rotation(key, 200, later) == (200, later + dt.timedelta(days=200))
    # a schedule without a date (as never stored) restarts with the kept period
    key.next_rotation_date = None
    assert keys.enabled_rotation(key, None, later) == (180, later + dt.timedelta(days=180))


def test_only_an_enabled_customer_key_changes_its_rotation() -> None:
    keys.check_rotation_change(a_key())
    assert code_of(keys.check_rotation_change, a_key(manager=keys.AWS)) == \
        "UnsupportedOperationException"
    assert code_of(keys.check_rotation_change, a_key(keys.DISABLED)) == "DisabledException"
    assert code_of(keys.check_rotation_change, a_key(keys.PENDING_DELETION)) == \
        "KMSInvalidStateException"
    assert code_of(keys.enabled_rotation, a_key(keys.DISABLED), 90, NOW) == "DisabledException"


# --- snapshots ------------------------------------------------------------------------------

def a_snapshot(state: str = snapshots.PENDING, size: int = 1,
               timeout: int | None = None) -> snapshots.Snapshot:
    # the state as storage gives it: equal to the constant, not the same object
    return snapshots.Snapshot("snap-1", OWNER.account_id, REGION, "vol-1", size,
                              "".join(list(state)), 0, NOW, "", False, "l",
                              snapshots.ORIGIN_EBS, timeout_minutes=timeout)


def test_volume_sizes_run_from_1_gib_to_the_maximum() -> None:
    snapshots.check_volume_size(1)
    snapshots.check_volume_size(65536)
    for size in (0, 65537, -1):
        assert code_of(snapshots.check_volume_size, size) == "ValidationException"


def test_a_block_write_is_whole_within_the_volume_and_into_a_pending_snapshot() -> None:
    snapshot = a_snapshot(size=1)  # 2048 blocks
    snapshots.check_block_write(snapshot, 0, BLOCK_SIZE, BLOCK_SIZE)
    # lengths as a request gives them (a parsed header, a body's len): equal, not the same int
    snapshots.check_block_write(snapshot, 0, int(str(BLOCK_SIZE)), int(str(BLOCK_SIZE)))
    snapshots.check_block_write(snapshot, 2047, BLOCK_SIZE, BLOCK_SIZE)
    for index, length, declared in [(2048, BLOCK_SIZE, BLOCK_SIZE),
                                    (4096, BLOCK_SIZE, BLOCK_SIZE),
                                    (0, BLOCK_SIZE - 1, BLOCK_SIZE),
                                    (0, BLOCK_SIZE, BLOCK_SIZE + 1),
                                    (0, BLOCK_SIZE, BLOCK_SIZE - 1),
                                    (0, BLOCK_SIZE + 1, BLOCK_SIZE)]:
        with pytest.raises(ServiceError) as caught:
            snapshots.check_block_write(snapshot, index, length, declared)
        assert caught.value.fields == {"Reason": "INVALID_BLOCK"}
    with pytest.raises(ServiceError) as caught:  # the message names the last index there is
        snapshots.check_block_write(a_snapshot(size=2), 4096, BLOCK_SIZE, BLOCK_SIZE)
    assert "(the last block index is 4095)" in caught.value.message
    done = a_snapshot(snapshots.COMPLETED)
    with pytest.raises(ServiceError) as caught:
        snapshots.check_block_write(done, 0, BLOCK_SIZE, BLOCK_SIZE)
    assert caught.value.fields == {"Reason": "INVALID_SNAPSHOT_ID"}


def test_blocks_are_read_only_from_completed_snapshots() -> None:
    snapshots.check_readable(a_snapshot(snapshots.COMPLETED))
    for state in (snapshots.PENDING, snapshots.ERROR):
        assert code_of(snapshots.check_readable, a_snapshot(state)) == "ValidationException"
    snapshots.check_pending(a_snapshot())
    assert code_of(snapshots.check_pending, a_snapshot(snapshots.ERROR)) == "ValidationException"


class FixedClock:
    def now(self) -> dt.datetime:
        return NOW


def test_start_snapshot_cancels_an_idle_snapshot_after_60_minutes_by_default(
        storage: Storage) -> None:
    """Through EBS's own StartSnapshot handler (no server): the stored snapshot's idle
    deadline, which no API answer shows, is the default Timeout of 60 minutes."""
    storage.accounts.add(AccessKey(OWNER.account_id, "AKIDOWNER", "secret-owner"))
    for params, minutes in (({}, 60), ({"Timeout": 15}, 15)):
        ctx = RequestContext(OWNER, REGION, "r-1", ebs_service.SERVICE, "StartSnapshot",
                             storage, FixedClock(), keyring=KeyRing(storage.box, FixedClock()))
        out = ebs_service.SERVICE.handlers["StartSnapshot"](ctx, {"VolumeSize": 1, **params})
        assert out is not None
        with storage.engine.begin() as conn:
            stored = snapshot_store.get_snapshot(conn, REGION, out["SnapshotId"])
        assert stored is not None
        assert (stored.timeout_minutes, stored.expires_at) == (
            minutes, NOW + dt.timedelta(minutes=minutes))


def test_only_the_archive_tier_is_a_tier_and_it_is_refused_as_unsupported() -> None:
    archive = "".join(["arch", "ive"])  # as parsed from a request: equal, not the same object
    error = snapshots.archiving_refused("snap-1", archive)
    assert (error.code, error.status) == ("UnsupportedOperation", 400)
    assert "'snap-1'" in error.message
    for tier in ("standard", "Archive", "zzz", ""):
        error = snapshots.archiving_refused("snap-1", tier)
        assert error.code == "InvalidParameterValue"
    assert f"({'a' * 50})" in snapshots.archiving_refused("snap-1", "a" * 60).message
    error = snapshots.not_archived("snap-2")
    assert error.code == "IncorrectState" and "'snap-2'" in error.message
    assert snapshots.STANDARD_TIER == "standard"


def test_an_idle_snapshot_is_cancelled_after_its_timeout() -> None:
    assert snapshots.idle_deadline(a_snapshot(), NOW) is None
    assert snapshots.idle_deadline(a_snapshot(timeout=30), NOW) == NOW + dt.timedelta(minutes=30)
    assert snapshots.not_found("snap-9").code == "InvalidSnapshot.NotFound"
    assert snapshots.progress_text(42) == "42%"
