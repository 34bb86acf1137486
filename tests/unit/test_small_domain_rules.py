"""The rules of the small domain modules (tags, volumes, blocks, accounts, regions, filters,
ids, idempotency), each asserted on its own, without a server.

Before these tests, every rule here was guarded by integration tests alone, so a mutation
run paid a server start per mutant. Each test pins a boundary from both sides (the last
value accepted and the first refused), so a one-token change to the rule's line (`<=` to
`<`, 127 to 128, `==` to `!=`) makes one of them fail. Limits are written out here as AWS
documents them, never read back from the module under test.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import hashlib
import re

import pytest

from snapferry.domain import accounts, blocks, filters, idempotency, ids, regions, tags, volumes
from snapferry.domain.accounts import AccessKey, Principal
from snapferry.errors import ServiceError


def error_of(call, *args, **kwargs) -> ServiceError:  # type: ignore[no-untyped-def]
    with pytest.raises(ServiceError) as caught:
        call(*args, **kwargs)
    return caught.value


def code_of(call, *args, **kwargs) -> str:  # type: ignore[no-untyped-def]
    return error_of(call, *args, **kwargs).code


def many_tags(count: int, prefix: str = "k") -> list[dict[str, str]]:
    return [{"Key": f"{prefix}{i}", "Value": str(i)} for i in range(count)]


# --- tags -----------------------------------------------------------------------------------

def test_a_tag_key_of_127_characters_is_accepted_and_128_refused() -> None:
    assert tags.check_tag("k" * 127, "v") == ("k" * 127, "v")
    error = error_of(tags.check_tag, "k" * 128, "v")
    assert error.code == "InvalidParameterValue"
    assert error.message == f"Tag key '{'k' * 40}...' is longer than 127 characters."


def test_a_tag_value_of_256_characters_is_accepted_and_257_refused() -> None:
    assert tags.check_tag("k", "v" * 256) == ("k", "v" * 256)
    error = error_of(tags.check_tag, "k", "v" * 257)
    assert error.code == "InvalidParameterValue"
    assert error.message == "The value of tag 'k' is longer than 256 characters."


def test_a_missing_tag_value_is_the_empty_string() -> None:
    assert tags.check_tag("k", None) == ("k", "")
    assert tags.check_tag("k", "") == ("k", "")


@pytest.mark.parametrize("key", ["aws:x", "AWS:x", "Aws:name", "aws:"])
def test_the_aws_prefix_is_reserved_in_any_case(key: str) -> None:
    error = error_of(tags.check_tag, key, "v")
    assert error.code == "InvalidTagKey.Malformed"
    assert error.message.endswith(f" (got '{key}').")


@pytest.mark.parametrize("key", ["aws", "awsx:y", "x:aws:", "my-aws:key"])
def test_aws_elsewhere_in_a_key_is_allowed(key: str) -> None:
    assert tags.check_tag(key, "v") == (key, "v")


@pytest.mark.parametrize("key", ["", None])
def test_an_empty_tag_key_is_refused(key: str | None) -> None:
    error = error_of(tags.check_tag, key, "v")
    assert error.code == "InvalidTagKey.Malformed"
    assert error.message.endswith("cannot start with aws:.")


def test_the_reserved_key_message_quotes_at_most_127_characters() -> None:
    key = "aws:" + "x" * 200
    assert error_of(tags.check_tag, key, "v").message.endswith(f" (got '{key[:127]}').")


def test_a_resource_takes_50_tags_not_51() -> None:
    assert len(tags.tags_from_list(many_tags(50))) == 50
    error = error_of(tags.tags_from_list, many_tags(51))
    assert error.code == "TagLimitExceeded"
    assert error.message == "A resource can have at most 50 tags; 51 given."


def test_a_key_given_twice_counts_once_and_keeps_its_last_value() -> None:
    items = [*many_tags(50), {"Key": "k0", "Value": "last"}]
    result = tags.tags_from_list(items)
    assert len(result) == 50
    assert result["k0"] == "last"


def test_no_tag_list_is_no_tags() -> None:
    assert tags.tags_from_list(None) == {}
    assert tags.tags_from_list([]) == {}


def test_every_tag_of_a_list_is_checked() -> None:
    items = [{"Key": "ok", "Value": "v"}, {"Key": "aws:no", "Value": "v"}]
    assert code_of(tags.tags_from_list, items) == "InvalidTagKey.Malformed"


def test_tag_specifications_give_the_tags_of_their_resource_type() -> None:
    specs = [{"ResourceType": "snapshot", "Tags": [{"Key": "a", "Value": "1"}]},
             {"ResourceType": "snapshot", "Tags": [{"Key": "b", "Value": "2"}]}]
    assert tags.tags_for(specs, "snapshot") == {"a": "1", "b": "2"}
    assert tags.tags_for(None, "snapshot") == {}
    assert tags.tags_for([{"ResourceType": "snapshot"}], "snapshot") == {}


@pytest.mark.parametrize("given", ["volume", "image"])  # sorting after and before
def test_a_tag_specification_for_another_resource_type_is_refused(given: str) -> None:
    specs = [{"ResourceType": given, "Tags": [{"Key": "a", "Value": "1"}]}]
    error = error_of(tags.tags_for, specs, "snapshot")
    assert error.code == "InvalidParameterValue"
    assert f"'{given}' is not a valid taggable resource type" in error.message


@pytest.mark.parametrize("spec", [{"Tags": []}, {"ResourceType": "", "Tags": []}])
def test_a_tag_specification_without_a_resource_type_is_refused(spec: dict) -> None:
    error = error_of(tags.tags_for, [spec], "snapshot")
    assert error.code == "InvalidParameterValue"
    assert error.message == "Tag specification resource type must have a value."


def test_tag_specifications_together_take_50_tags_not_51() -> None:
    def specs(second: int) -> list[dict]:
        return [{"ResourceType": "snapshot", "Tags": many_tags(30, "a")},
                {"ResourceType": "snapshot", "Tags": many_tags(second, "b")}]

    assert len(tags.tags_for(specs(20), "snapshot")) == 50
    error = error_of(tags.tags_for, specs(21), "snapshot")
    assert error.code == "TagLimitExceeded"
    assert error.message == "A resource can have at most 50 tags."


def test_tags_are_listed_sorted_by_key() -> None:
    assert tags.as_list({"b": "2", "a": "1", "c": ""}) == [
        {"Key": "a", "Value": "1"}, {"Key": "b", "Value": "2"}, {"Key": "c", "Value": ""}]


CURRENT = {"env": "prod", "team": "", "owner": "me"}


def test_delete_tags_naming_no_tag_deletes_every_tag() -> None:
    assert sorted(tags.keys_to_delete(CURRENT, None)) == ["env", "owner", "team"]
    assert sorted(tags.keys_to_delete(CURRENT, [])) == ["env", "owner", "team"]


def test_delete_tags_with_a_key_alone_deletes_it_whatever_its_value() -> None:
    assert tags.keys_to_delete(CURRENT, [{"Key": "env"}]) == ["env"]


def test_delete_tags_with_a_value_deletes_only_on_a_match() -> None:
    assert tags.keys_to_delete(CURRENT, [{"Key": "env", "Value": "prod"}]) == ["env"]
    assert tags.keys_to_delete(CURRENT, [{"Key": "env", "Value": "dev"}]) == []
    assert tags.keys_to_delete(CURRENT, [{"Key": "env", "Value": ""}]) == []
    assert tags.keys_to_delete(CURRENT, [{"Key": "team", "Value": ""}]) == ["team"]


def test_delete_tags_compares_values_by_value() -> None:
    # Values as a request carries them: string objects of their own, sorting either side.
    stored = {"env": "".join(["pr", "od"])}
    assert tags.keys_to_delete(stored, [{"Key": "env", "Value": "prod"}]) == ["env"]
    for other in ("dev", "zzz", "prod2"):
        assert tags.keys_to_delete(stored, [{"Key": "env", "Value": other}]) == []


def test_a_tag_specification_type_is_compared_by_value() -> None:
    parsed = "".join(["snap", "shot"])
    specs = [{"ResourceType": parsed, "Tags": [{"Key": "a", "Value": "1"}]}]
    assert tags.tags_for(specs, "snapshot") == {"a": "1"}


def test_delete_tags_ignores_a_key_the_resource_lacks() -> None:
    assert tags.keys_to_delete(CURRENT, [{"Key": "nope"}, {"Key": "owner"}]) == ["owner"]
    assert tags.keys_to_delete(CURRENT, [{"Key": "nope", "Value": "x"}]) == []


@pytest.mark.parametrize("item", [{"Key": ""}, {}, {"Key": "aws:x"}, {"Key": "AWS:x"}])
def test_delete_tags_refuses_an_empty_or_reserved_key(item: dict) -> None:
    assert code_of(tags.keys_to_delete, CURRENT, [item]) == "InvalidTagKey.Malformed"


# --- volumes --------------------------------------------------------------------------------

# GiB ranges per volume type, from AWS's EBS volume types page.
SIZES = {"standard": (1, 1024), "gp2": (1, 16384), "gp3": (1, 65536), "io1": (4, 16384),
         "io2": (4, 65536), "st1": (125, 16384), "sc1": (125, 16384)}


@pytest.mark.parametrize("volume_type", sorted(SIZES))
def test_each_volume_type_takes_exactly_its_size_range(volume_type: str) -> None:
    low, high = SIZES[volume_type]
    volumes.check_type_and_size(volume_type, low)
    volumes.check_type_and_size(volume_type, high)
    for size in (low - 1, high + 1):
        error = error_of(volumes.check_type_and_size, volume_type, size)
        assert error.code == "InvalidParameterValue"
        assert error.message == (f"Volume of {size}GiB is out of range for type {volume_type}: "
                                 f"{low} to {high} GiB.")


def test_an_unknown_volume_type_is_refused_with_the_valid_ones() -> None:
    error = error_of(volumes.check_type_and_size, "gp9", 10)
    assert error.code == "InvalidParameterValue"
    assert error.message.endswith("valid types: standard, gp2, gp3, io1, io2, st1, sc1.")


def test_the_default_volume_type_is_gp2() -> None:
    assert volumes.DEFAULT_TYPE == "gp2"


@pytest.mark.parametrize("volume_type", ["io1", "io2"])
def test_provisioned_iops_types_require_iops(volume_type: str) -> None:
    error = error_of(volumes.check_performance, volume_type, 100, None, None)
    assert error.code == "InvalidParameterCombination"
    assert error.message == f"The parameter iops must be specified for {volume_type} volumes."


@pytest.mark.parametrize("volume_type", ["gp2", "gp3", "standard", "st1", "sc1"])
def test_other_types_need_no_iops(volume_type: str) -> None:
    volumes.check_performance(volume_type, 500, None, None)


@pytest.mark.parametrize("volume_type", ["gp2", "standard", "st1", "sc1"])
def test_iops_are_refused_for_types_without_provisioned_iops(volume_type: str) -> None:
    error = error_of(volumes.check_performance, volume_type, 500, 3000, None)
    assert error.code == "InvalidParameterCombination"
    assert error.message == f"The parameter iops is not supported for {volume_type} volumes."


# (type, lowest, highest IOPS, most IOPS per GiB), from CreateVolume's documentation.
IOPS = [("gp3", 3000, 80000, 500), ("io1", 100, 64000, 50), ("io2", 100, 256000, 1000)]


@pytest.mark.parametrize(("volume_type", "low", "high", "per_gib"), IOPS)
def test_iops_take_exactly_their_range_per_type(volume_type: str, low: int, high: int,
                                                per_gib: int) -> None:
    big = 65536  # large enough that the per-GiB ratio allows any IOPS in range
    volumes.check_performance(volume_type, big, low, None)
    volumes.check_performance(volume_type, big, high, None)
    for iops in (low - 1, high + 1):
        error = error_of(volumes.check_performance, volume_type, big, iops, None)
        assert error.code == "InvalidParameterValue"
        assert error.message == (f"Volume iops of {iops} is out of range for {volume_type}: "
                                 f"{low} to {high}.")


@pytest.mark.parametrize(("volume_type", "size", "per_gib"),
                         [("io1", 10, 50), ("io2", 10, 1000), ("gp3", 100, 500)])
def test_iops_per_gib_are_capped_per_type(volume_type: str, size: int, per_gib: int) -> None:
    volumes.check_performance(volume_type, size, per_gib * size, None)
    error = error_of(volumes.check_performance, volume_type, size, per_gib * size + 1, None)
    assert error.code == "InvalidParameterValue"
    assert error.message == (f"Iops to volume size ratio of {(per_gib * size + 1) / size:f} is "
                             f"too high; maximum is {per_gib:f}.")


def test_gp3_gets_3000_iops_at_any_size_and_no_more_without_size() -> None:
    volumes.check_performance("gp3", 1, 3000, None)
    assert code_of(volumes.check_performance, "gp3", 1, 3001, None) == "InvalidParameterValue"
    # 7 GiB x 500 = 3,500 IOPS: the per-GiB ratio takes over above the baseline.
    volumes.check_performance("gp3", 7, 3500, None)
    assert code_of(volumes.check_performance, "gp3", 7, 3501, None) == "InvalidParameterValue"


def test_the_gp3_baseline_holds_for_a_type_parsed_from_a_request() -> None:
    # A request's VolumeType is a string object of its own, not the literal "gp3".
    parsed = "".join(["gp", "3"])
    assert parsed == "gp3" and parsed is not "gp3"  # noqa: F632
    volumes.check_performance(parsed, 1, 3000, None)
    volumes.check_performance(parsed, 100, None, 500)  # throughput: gp3's, by value


def test_io1_has_no_baseline_beyond_its_ratio() -> None:
    # 1 GiB x 50 = 50 IOPS allowed; io1's lowest is 100, so no io1 iops fit 1 GiB.
    assert code_of(volumes.check_performance, "io1", 1, 100, None) == "InvalidParameterValue"
    volumes.check_performance("io1", 2, 100, None)


def test_throughput_is_gp3_only_from_125_to_2000() -> None:
    for throughput in (125, 2000):
        volumes.check_performance("gp3", 100, None, throughput)
    for throughput in (124, 2001):
        error = error_of(volumes.check_performance, "gp3", 100, None, throughput)
        assert error.code == "InvalidParameterValue"
        assert error.message == (f"Volume throughput of {throughput} MiB/s is out of range for "
                                 "gp3: 125 to 2000.")
    for volume_type, iops in (("gp2", None), ("io1", 100), ("st1", None)):
        error = error_of(volumes.check_performance, volume_type, 500, iops, 125)
        assert error.code == "InvalidParameterCombination"
        assert error.message.endswith(f"gp3, not {volume_type}.")


def test_a_volume_is_as_large_as_asked_or_as_its_snapshot() -> None:
    assert volumes.size_for(10, None, None) == 10
    assert volumes.size_for(None, 8, "snap-1") == 8
    assert volumes.size_for(8, 8, "snap-1") == 8
    assert volumes.size_for(9, 8, "snap-1") == 9


def test_a_volume_smaller_than_its_snapshot_is_refused() -> None:
    error = error_of(volumes.size_for, 7, 8, "snap-1")
    assert error.code == "InvalidParameterValue"
    assert error.message == ("Volume of 7GiB is smaller than snapshot 'snap-1', expect size >= "
                             "8GiB.")


def test_a_volume_needs_a_size_or_a_snapshot() -> None:
    assert code_of(volumes.size_for, None, None, None) == "MissingParameter"


def test_a_volume_records_what_create_volume_was_given() -> None:
    when = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    volume = volumes.Volume("vol-1", "111111111111", "us-east-1", "us-east-1a", 8, "gp3", "",
                            volumes.AVAILABLE, False, "lineage", when, iops=3000)
    assert (volume.size, volume.iops, volume.throughput, volume.multi_attach) == (
        8, 3000, None, False)
    assert volume == volumes.Volume("vol-1", "111111111111", "us-east-1", "us-east-1a", 8,
                                    "gp3", "", "available", False, "lineage", when, iops=3000)


def test_gp3_reports_its_baseline_unless_asked_for_more() -> None:
    gp3 = "".join(["gp", "3"])  # as parsed from a request: equal, not the same object
    assert volumes.provisioned(gp3, 8, None, None) == (3000, 125)
    assert volumes.provisioned(gp3, 8, 4000, 500) == (4000, 500)
    assert volumes.provisioned(gp3, 8, 4000, None) == (4000, 125)
    assert volumes.provisioned(gp3, 8, None, 500) == (3000, 500)


@pytest.mark.parametrize(("size", "iops"), [
    (1, 100), (33, 100), (34, 102), (100, 300), (5333, 15999), (5334, 16000), (16384, 16000)])
def test_gp2_reports_3_iops_per_gib_from_100_to_16000(size: int, iops: int) -> None:
    assert volumes.provisioned("".join(["gp", "2"]), size, None, None) == (iops, None)


def test_other_types_report_what_they_were_given() -> None:
    assert volumes.provisioned("io1", 100, 5000, None) == (5000, None)
    assert volumes.provisioned("st1", 500, None, None) == (None, None)
    assert volumes.provisioned("standard", 1, None, None) == (None, None)


def test_a_missing_volume_is_invalid_volume_not_found() -> None:
    error = volumes.not_found("vol-1")
    assert (error.code, error.message) == ("InvalidVolume.NotFound",
                                           "The volume 'vol-1' does not exist.")


# --- blocks ---------------------------------------------------------------------------------

def test_a_block_is_512_kib_and_a_gib_holds_2048() -> None:
    assert blocks.BLOCK_SIZE == 524288
    assert blocks.BLOCKS_PER_GIB == 2048
    assert blocks.block_count(1) == 2048
    assert blocks.block_count(3) == 6144
    assert type(blocks.block_count(1)) is int  # a count: range() and the wire need an int
    assert blocks.MAX_VOLUME_GIB == 65536


def test_a_checksum_is_base64_of_sha256() -> None:
    digest = hashlib.sha256(b"data").digest()
    assert blocks.sha256(b"data") == digest
    assert blocks.encode_checksum(digest) == base64.b64encode(digest).decode()
    assert blocks.decode_checksum(blocks.encode_checksum(digest)) == digest


@pytest.mark.parametrize("text", ["not base64!", "QUJD=", base64.b64encode(b"x" * 31).decode(),
                                  base64.b64encode(b"x" * 33).decode(), ""])
def test_a_checksum_that_names_no_sha256_digest_is_none(text: str) -> None:
    assert blocks.decode_checksum(text) is None


def test_a_checksum_with_characters_outside_base64_is_refused() -> None:
    text = blocks.encode_checksum(hashlib.sha256(b"data").digest())
    for junk in (f"!{text}", f"{text[:10]} {text[10:]}", f"{text}\n", f"{text[:4]}*{text[4:]}"):
        assert blocks.decode_checksum(junk) is None, junk


def test_the_linear_aggregate_hashes_the_digests_in_index_order() -> None:
    first, second = hashlib.sha256(b"a").digest(), hashlib.sha256(b"b").digest()
    assert blocks.linear_aggregate([first, second]) == hashlib.sha256(first + second).digest()
    assert blocks.linear_aggregate([second, first]) != blocks.linear_aggregate([first, second])
    assert blocks.linear_aggregate([]) == hashlib.sha256(b"").digest()


# --- accounts -------------------------------------------------------------------------------

def test_the_development_account_is_000000000000_with_key_test() -> None:
    assert (accounts.DEV_ACCOUNT_ID, accounts.DEV_ACCESS_KEY_ID,
            accounts.DEV_SECRET_ACCESS_KEY) == ("000000000000", "test", "test")


def test_a_principal_is_its_account_root() -> None:
    principal = Principal("123456789012", "AKID")
    assert principal.arn == "arn:aws:iam::123456789012:root"
    assert principal.user_id == "123456789012"
    assert principal.is_root is True


def test_a_user_and_a_session_are_named_as_aws_names_them() -> None:
    # kinds built at run time, as read from storage: compared by value, not identity
    user_kind, session_kind = "".join(["us", "er"]), "-".join(["assumed", "role"])
    root = Principal("111111111111", "AKIAROOT", "".join(["ro", "ot"]))
    assert (root.arn, root.user_id, root.username, root.role_arn, root.is_root) == (
        "arn:aws:iam::111111111111:root", "111111111111", None, None, True)
    user = Principal("111111111111", "AKIAUSER", user_kind, "ann", "AIDAX", "/ops/")
    assert (user.arn, user.user_id, user.username, user.role_arn, user.is_root) == (
        "arn:aws:iam::111111111111:user/ops/ann", "AIDAX", "ann", None, False)
    session = Principal("222222222222", "ASIAX", session_kind, "dr", "AROAX", "/svc/", "s1")
    assert (session.arn, session.user_id, session.username, session.is_root) == (
        "arn:aws:sts::222222222222:assumed-role/dr/s1", "AROAX:s1", None, False)
    assert session.role_arn == "arn:aws:iam::222222222222:role/svc/dr"
    # S3's anonymous caller (a kind sorting before assumed-role) acts for no role
    anonymous = Principal("", "", "".join(["anony", "mous"]))
    assert anonymous.role_arn is None
    # nor is it a role session, which a policy naming assumed-role ARNs would match
    assert ":assumed-role/" not in anonymous.arn and ":" not in anonymous.user_id


def test_a_principal_is_long_term_unless_sts_made_its_credentials() -> None:
    # GetSessionToken refuses temporary callers: a root or user built from its own keys
    # (storage passes no `temporary`) must not count as one
    assert Principal("111111111111", "AKIAROOT").temporary is False


def test_a_principal_and_its_access_key_cannot_be_changed_once_resolved() -> None:
    # a request's principal decides what it may do: nothing after resolution may swap its
    # account, kind or policies; nor an access key's account or secret
    principal = Principal("111111111111", "AKIAUSER", "user", "ann")
    for attribute, value in [("account_id", "222222222222"), ("kind", "root"),
                             ("policies", ()), ("temporary", True)]:
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(principal, attribute, value)
    key = AccessKey("111111111111", "AKIAUSER", "secret")
    for attribute in ("account_id", "secret_access_key"):
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(key, attribute, "222222222222")
    assert (principal.account_id, principal.kind, key.account_id) == (
        "111111111111", "user", "111111111111")


@pytest.mark.parametrize(("account", "key", "secret"), [
    ("123456789012", "test", "test"),
    ("123456789012", "A" * 128, "s" * 128),
    ("123456789012", "AKIA_1", "with spaces and ~!"),
])
def test_well_formed_access_keys_are_accepted(account: str, key: str, secret: str) -> None:
    accounts.validate_access_key(AccessKey(account, key, secret))


@pytest.mark.parametrize("account", ["12345678901", "1234567890123", "12345678901a", ""])
def test_an_account_id_is_exactly_12_digits(account: str) -> None:
    error = error_of(accounts.validate_access_key, AccessKey(account, "test", "test"))
    assert error.code == "InvalidParameterValue"
    assert error.message.startswith(f"Account id '{account}' must be exactly 12 digits")


@pytest.mark.parametrize("key", ["abc", "A" * 129, "AKIA-1", "AKIA 1", ""])
def test_an_access_key_id_is_4_to_128_word_characters(key: str) -> None:
    error = error_of(accounts.validate_access_key, AccessKey("123456789012", key, "test"))
    assert error.code == "InvalidParameterValue"
    assert error.message.startswith(f"Access key id '{key}' must be 4 to 128")


@pytest.mark.parametrize("secret", ["abc", "s" * 129, "tab\there", "new\nline", ""])
def test_a_secret_is_4_to_128_printable_characters(secret: str) -> None:
    error = error_of(accounts.validate_access_key, AccessKey("123456789012", "test", secret))
    assert error.code == "InvalidParameterValue"
    assert error.message == "The secret access key must be 4 to 128 printable characters."


# --- regions --------------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "prefix"), [
    ("us-east-1", "use1"), ("us-west-2", "usw2"), ("eu-north-1", "eun1"),
    ("sa-south-1", "sas1"), ("eu-central-1", "euc1"), ("ap-northeast-3", "apne3"),
    ("ap-northwest-1", "apnw1"), ("ap-southeast-2", "apse2"), ("af-southwest-1", "afsw1"),
    ("il-middle-1", "ilmiddle1"), ("us-gov-west-1", "usgovwest1"),
])
def test_a_zone_id_uses_aws_short_form_of_the_region(name: str, prefix: str) -> None:
    assert regions.Region(name).zone_id_prefix == prefix


def test_a_region_has_three_zones_a_to_c_numbered_from_1() -> None:
    region = regions.Region("eu-west-1")
    assert region.endpoint == "ec2.eu-west-1.amazonaws.com"
    zones = regions.zones(region)
    assert [(z.name, z.zone_id) for z in zones] == [
        ("eu-west-1a", "euw1-az1"), ("eu-west-1b", "euw1-az2"), ("eu-west-1c", "euw1-az3")]
    assert regions.OPT_IN_STATUS == "opt-in-not-required"


def test_the_regions_are_botocores_ec2_regions() -> None:
    names = [region.name for region in regions.all_regions()]
    assert {"us-east-1", "eu-west-1", "ap-southeast-2"} <= set(names)
    assert len(names) == len(set(names))
    assert regions.region_names() == frozenset(names)
    assert regions.is_region("us-east-1")
    assert not regions.is_region("us-east-99")
    assert not regions.is_region("")


# --- filters --------------------------------------------------------------------------------

def test_a_filter_value_matches_the_whole_value() -> None:
    assert filters.value_matches("abc", ["abc"])
    assert not filters.value_matches("abcd", ["abc"])
    assert not filters.value_matches("xabc", ["abc"])
    assert filters.value_matches("abc", ["nope", "abc"])
    assert not filters.value_matches("abc", [])


def test_star_matches_any_run_and_question_mark_one_character() -> None:
    assert filters.value_matches("a\nlong value", ["a*e"])
    assert filters.value_matches("ab", ["a*b"])
    assert filters.value_matches("abc", ["a?c"])
    assert not filters.value_matches("ac", ["a?c"])
    assert not filters.value_matches("a\n", ["a"])
    assert filters.value_matches("a\nc", ["a?c"])


def test_other_regex_characters_in_a_filter_are_literal() -> None:
    assert filters.value_matches("a.c", ["a.c"])
    assert not filters.value_matches("abc", ["a.c"])
    assert not filters.value_matches("aac", ["a+c"])


def filter_list(count: int, values: int = 0) -> list[dict]:
    return [{"Name": "n", "Values": ["v"] * values} for _ in range(count)]


def test_a_call_takes_50_filters_not_51() -> None:
    filters.check_filter_limits(filter_list(50))
    error = error_of(filters.check_filter_limits, filter_list(51))
    assert error.code == "FilterLimitExceeded"
    assert error.message.endswith(" is 50; 51 were given.")


def test_a_call_takes_200_filter_values_in_all_not_201() -> None:
    filters.check_filter_limits(filter_list(40, 5))
    filters.check_filter_limits(None)
    error = error_of(filters.check_filter_limits, [*filter_list(40, 5), *filter_list(1, 1)])
    assert error.code == "FilterLimitExceeded"
    assert error.message.endswith(" is 200; 201 were given.")


def test_a_filter_value_has_at_most_255_characters() -> None:
    filters.check_filter_limits([{"Name": "n", "Values": ["v" * 255]}])
    error = error_of(filters.check_filter_limits, [{"Name": "n", "Values": ["v" * 256]}])
    assert error.code == "FilterLimitExceeded"
    assert error.message == "The maximum length for a filter value is 255 characters."


FIELDS = {"size": lambda item: [str(item["size"])], "tag": lambda item: item["tags"]}
ITEMS = [{"id": 1, "size": 8, "tags": ["a", "b"]}, {"id": 2, "size": 16, "tags": ["b"]},
         {"id": 3, "size": 8, "tags": []}]


def chosen(filter_list: list[dict] | None) -> list[int]:
    return [item["id"] for item in filters.apply_filters(ITEMS, filter_list, FIELDS)]


def test_filters_and_together_and_their_values_or_together() -> None:
    assert chosen(None) == [1, 2, 3]
    assert chosen([{"Name": "size", "Values": ["8"]}]) == [1, 3]
    assert chosen([{"Name": "size", "Values": ["8", "16"]}]) == [1, 2, 3]
    assert chosen([{"Name": "size", "Values": ["8"]}, {"Name": "tag", "Values": ["b"]}]) == [1]
    assert chosen([{"Name": "tag", "Values": ["a"]}]) == [1]
    assert chosen([{"Name": "size", "Values": []}]) == []


def test_an_unknown_or_unnamed_filter_is_refused() -> None:
    error = error_of(chosen, [{"Name": "colour", "Values": ["x"]}])
    assert error.code == "InvalidParameterValue"
    assert error.message == "The filter 'colour' is invalid; valid filters: size, tag."
    error = error_of(chosen, [{"Values": ["x"]}])
    assert (error.code, error.message) == ("InvalidParameterValue",
                                           "Every filter must have a Name.")


def test_filter_limits_are_checked_before_names() -> None:
    assert code_of(chosen, filter_list(51)) == "FilterLimitExceeded"


# --- ids ------------------------------------------------------------------------------------

def test_a_new_id_is_the_prefix_and_17_lowercase_hex_digits() -> None:
    made = {ids.new_id("snap") for _ in range(50)}
    assert len(made) == 50
    assert all(re.fullmatch(r"snap-[0-9a-f]{17}", value) for value in made)


@pytest.mark.parametrize("value", ["snap-0123456789abcdef0", "snap-01234567"])
def test_long_and_legacy_ids_are_ids(value: str) -> None:
    assert ids.is_id("snap", value)
    assert ids.check_id("snap", value) == value


@pytest.mark.parametrize("value", ["snap-0123456789abcdef", "snap-0123456789abcdef01",
                                   "snap-012345678", "snap-0123456", "snap-0123456789ABCDEF0",
                                   "vol-0123456789abcdef0", "snap-0123456789abcdef0 ", ""])
def test_other_forms_are_not_ids(value: str) -> None:
    assert not ids.is_id("snap", value)


@pytest.mark.parametrize(("prefix", "code", "kind"), [
    ("snap", "InvalidSnapshotID.Malformed", "snapshot"),
    ("vol", "InvalidVolumeID.Malformed", "volume"),
    ("ami", "InvalidAMIID.Malformed", "image"),
])
def test_a_malformed_id_names_its_kind(prefix: str, code: str, kind: str) -> None:
    error = error_of(ids.check_id, prefix, "x" * 150)
    assert error.code == code
    assert error.message == (f'Invalid id: "{"x" * 100}" (expecting "{prefix}-..."): a {kind} '
                             f"id is '{prefix}-' followed by 17 lowercase hexadecimal digits.")


# --- idempotency ----------------------------------------------------------------------------

def test_a_request_digest_ignores_the_token_and_dry_run() -> None:
    base = idempotency.request_digest({"Size": 8, "VolumeType": "gp3"})
    assert idempotency.request_digest(
        {"Size": 8, "VolumeType": "gp3", "ClientToken": "t", "DryRun": False}) == base
    assert idempotency.request_digest({"Size": 9, "VolumeType": "gp3"}) != base
    assert idempotency.request_digest({"Size": 8}) != base


def test_a_request_digest_does_not_depend_on_parameter_order() -> None:
    assert idempotency.request_digest({"a": 1, "b": 2}) == idempotency.request_digest(
        {"b": 2, "a": 1})


def test_a_request_digest_takes_any_parameter_value() -> None:
    when = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    digest = idempotency.request_digest({"At": when})
    assert digest == idempotency.request_digest({"At": when})
    assert digest != idempotency.request_digest({"At": when + dt.timedelta(seconds=1)})
    assert re.fullmatch(r"[0-9a-f]{64}", digest)


def test_a_token_reused_for_another_request_is_refused() -> None:
    # Digests as the server has them: one from the database, one computed now (equal
    # strings, two objects), so they are compared by value.
    first = idempotency.request_digest({"Size": 8})
    again = idempotency.request_digest({"Size": 8})
    assert first == again and first is not again
    idempotency.check_same_request(first, again, "CreateVolume")
    for stored, given in (("abc", "abd"), ("abd", "abc")):  # either order
        error = error_of(idempotency.check_same_request, stored, given, "CreateVolume")
        assert error.code == "IdempotentParameterMismatch"
        assert error.message == ("The client token was already used for a different "
                                 "CreateVolume request.")
