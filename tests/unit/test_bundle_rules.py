"""The rules of domain/bundles.py (an instance-store bundle's manifest) and
domain/bundle_copies.py (where CopyImage puts a bundle's copy), without a server.

Before these tests both modules were guarded only by integration files (RegisterImage and
CopyImage through a real server), so every mutant cost a server start. Limits are written out
here, never read back from the module under test.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

from snapferry.domain import bundle_copies, bundles
from snapferry.domain.bundles import Manifest, Part
from snapferry.errors import ServiceError

SHA = "0123456789abcdef0123456789abcdef01234567"
MAPPINGS = ("<mapping><virtual>ami</virtual><device>sda1</device></mapping>"
            "<mapping><virtual>root</virtual><device>/dev/sda1</device></mapping>"
            "<mapping><virtual>ephemeral0</virtual><device>sdb</device></mapping>")


def part(index: int | str, filename: str = "", digest: str = SHA,
         algorithm: str = "SHA1") -> str:
    filename = filename or f"disk.img.part.{index}"
    return (f'<part index="{index}"><filename>{filename}</filename>'
            f'<digest algorithm="{algorithm}">{digest}</digest></part>')


def manifest(*, version: str = "2007-10-10", architecture: str = "x86_64",
             size: str = "1048576", parts: list[str] | None = None, count: str | None = None,
             mappings: str = MAPPINGS, name: str = "disk.img", root: str = "manifest",
             image_extra: str = "") -> bytes:
    parts = [part(0), part(1)] if parts is None else parts
    count = str(len(parts)) if count is None else count
    return (f'<?xml version="1.0" ?><{root}><version>{version}</version>'
            f"<machine_configuration><architecture>{architecture}</architecture>"
            f"<block_device_mapping>{mappings}</block_device_mapping></machine_configuration>"
            f"<image><name>{name}</name><user>123456789012</user><type>machine</type>"
            f"<size>{size}</size>{image_extra}"
            f'<parts count="{count}">{"".join(parts)}</parts></image></{root}>').encode()


def invalid(document: bytes) -> str:
    """The InvalidManifest message parse gives."""
    with pytest.raises(ServiceError) as caught:
        bundles.parse(document)
    assert (caught.value.code, caught.value.status) == ("InvalidManifest", 400)
    assert caught.value.message.startswith("The manifest is not valid: ")
    return caught.value.message


# --- a good manifest ------------------------------------------------------------------------

def test_a_bundle_manifest_is_read_whole() -> None:
    found = bundles.parse(manifest())
    assert found == Manifest("disk.img", "x86_64", 1048576,
                             (Part(0, "disk.img.part.0", SHA), Part(1, "disk.img.part.1", SHA)),
                             (("ami", "sda1"), ("root", "/dev/sda1"), ("ephemeral0", "sdb")))
    assert found.root_device_name == "/dev/sda1"
    assert found.ephemeral() == [("/dev/sdb", "ephemeral0")]


def test_text_is_trimmed_and_a_digest_read_in_lower_case() -> None:
    found = bundles.parse(manifest(version=" 2007-10-10\n", architecture=" arm64 ",
                                   parts=[part(0, digest=f" {SHA.upper()} ", algorithm="sha1")],
                                   name=" disk.img "))
    assert (found.architecture, found.name, found.parts[0].sha1) == ("arm64", "disk.img", SHA)


@pytest.mark.parametrize("architecture", ["i386", "x86_64", "arm64"])
def test_each_architecture_is_accepted(architecture: str) -> None:
    assert bundles.parse(manifest(architecture=architecture)).architecture == architecture


def test_the_root_device_is_named_by_its_mapping_with_dev_added() -> None:
    def root(mappings: str) -> str:
        return bundles.parse(manifest(mappings=mappings)).root_device_name

    assert root("<mapping><virtual>root</virtual><device>xvda</device></mapping>") == "/dev/xvda"
    assert root("<mapping><virtual>ami</virtual><device>sdz</device></mapping>"
                "<mapping><virtual>root</virtual><device>/dev/sdc</device></mapping>") == \
        "/dev/sdc"
    # Only the mapping named root, whether the names before it sort before or after it.
    assert root("<mapping><virtual>swap</virtual><device>sdw</device></mapping>"
                "<mapping><virtual>ami</virtual><device>sdv</device></mapping>"
                "<mapping><virtual>root</virtual><device>sdr</device></mapping>") == "/dev/sdr"
    assert root("") == "/dev/sda1"  # no root mapping: EC2's default
    assert root("<mapping><virtual>ami</virtual><device>sdz</device></mapping>") == "/dev/sda1"


def test_only_ephemeral_mappings_are_instance_store_volumes() -> None:
    found = bundles.parse(manifest(mappings=(
        "<mapping><virtual>ami</virtual><device>sda1</device></mapping>"
        "<mapping><virtual>ephemeral1</virtual><device>/dev/sdc</device></mapping>"
        "<mapping><virtual>swap</virtual><device>sdd</device></mapping>"
        "<mapping><virtual>ephemeral0</virtual><device>xvdb</device></mapping>")))
    assert found.ephemeral() == [("/dev/sdc", "ephemeral1"), ("/dev/xvdb", "ephemeral0")]
    assert bundles.parse(manifest(mappings="")).ephemeral() == []


def test_one_part_and_eight_thousand_parts_are_accepted() -> None:
    # A part takes at least about 115 bytes of XML, so the 1 MiB manifest limit holds
    # fewer than 10,000 (MAX_PARTS): that limit is reached only through the size limit.
    assert len(bundles.parse(manifest(parts=[part(0)])).parts) == 1
    many = [part(i, "p") for i in range(8000)]
    found = bundles.parse(manifest(parts=many))
    assert [p.index for p in found.parts] == list(range(8000))
    assert found.parts[-1] == Part(7999, "p", SHA)


def test_a_part_name_may_be_255_plain_characters() -> None:
    name = "Az09._-" + "x" * 248
    assert bundles.parse(manifest(parts=[part(0, name)])).parts[0].filename == name


def test_a_manifest_of_exactly_one_mib_is_read() -> None:
    document = manifest()
    padded = document.replace(b"<type>", b" " * (1024 * 1024 - len(document)) + b"<type>")
    assert len(padded) == 1024 * 1024
    assert bundles.parse(padded).size == 1048576


# --- refused ---------------------------------------------------------------------------------

def test_a_manifest_over_one_mib_is_refused_before_parsing() -> None:
    document = manifest()
    padded = document.replace(b"<type>", b" " * (1024 * 1024 + 1 - len(document)) + b"<type>")
    assert "larger than 1048576 bytes" in invalid(padded)


@pytest.mark.parametrize("declaration", [
    b'<!DOCTYPE manifest [<!ELEMENT manifest ANY>]>',
    b'<!ENTITY x "y">',
])
def test_dtds_and_entities_are_refused(declaration: bytes) -> None:
    document = manifest().replace(b"?>", b"?>" + declaration, 1)
    assert "DTDs and entity declarations" in invalid(document)


def test_malformed_xml_and_another_root_are_refused() -> None:
    assert "not well-formed XML" in invalid(b"<manifest><oops></manifest>")
    # Another root refused whether its name sorts before or after "manifest".
    assert "root element is not <manifest>" in invalid(manifest(root="bundle"))
    assert "root element is not <manifest>" in invalid(manifest(root="package"))


@pytest.mark.parametrize("version", ["2005-01-01", "2007-10-11", "2007-10-1"])
def test_another_version_is_refused(version: str) -> None:
    assert f"version '{version}' is not 2007-10-10" in invalid(manifest(version=version))


@pytest.mark.parametrize("architecture", ["amd64", "X86_64", "arm", "x86"])
def test_another_architecture_is_refused(architecture: str) -> None:
    assert "i386, x86_64, arm64" in invalid(manifest(architecture=architecture))


@pytest.mark.parametrize("size", ["0", "-1", "1.5", "1e6", "ten"])
def test_the_image_size_must_be_a_positive_number_of_bytes(size: str) -> None:
    assert "not a positive number of bytes" in invalid(manifest(size=size))
    assert bundles.parse(manifest(size="1")).size == 1


@pytest.mark.parametrize(("document", "missing"), [
    (b"<manifest><machine_configuration><architecture>x86_64</architecture>"
     b"</machine_configuration></manifest>", "version (version)"),
    (b"<manifest><version>2007-10-10</version></manifest>",
     "architecture (machine_configuration/architecture)"),
    (b"<manifest><version>2007-10-10</version><machine_configuration><architecture>x86_64"
     b"</architecture></machine_configuration></manifest>", "<image>"),
    (manifest().replace(b"<size>1048576</size>", b""), "image size (size)"),
    (manifest().replace(b"<size>1048576</size>", b"<size>  </size>"), "image size (size)"),
    (manifest().replace(b"<name>disk.img</name>", b""), "image name (name)"),
])
def test_each_required_element_is_named_when_missing(document: bytes, missing: str) -> None:
    assert f"it has no {missing}." in invalid(document)


def test_a_mapping_needs_its_virtual_name_and_device() -> None:
    assert "no mapping device" in invalid(manifest(
        mappings="<mapping><virtual>root</virtual></mapping>"))
    assert "no mapping virtual name" in invalid(manifest(
        mappings="<mapping><device>sda1</device></mapping>"))


def test_parts_must_be_listed_one_to_ten_thousand() -> None:
    no_parts = manifest().replace(b'<parts count="2">', b"").replace(b"</parts>", b"")
    assert "it has no <parts>" in invalid(no_parts)
    assert "1 to 10000 parts" in invalid(manifest(parts=[]))
    too_many = [part(i, "p") for i in range(10001)]
    assert "larger than 1048576 bytes" in invalid(manifest(parts=too_many))


@pytest.mark.parametrize("count", ["1", "3", "", "02", "two"])
def test_the_parts_count_must_match_the_parts_listed(count: str) -> None:
    assert "does not match the 2 parts listed" in invalid(manifest(count=count))


@pytest.mark.parametrize("indexes", [(1, 0), (0, 0), (0, 2), ("0", "01"), (1, 2)])
def test_parts_are_numbered_from_zero_in_order(indexes: tuple[Any, Any]) -> None:
    parts = [part(indexes[0], "a"), part(indexes[1], "b")]
    assert "numbered 0, 1, 2, ... in order" in invalid(manifest(parts=parts))


@pytest.mark.parametrize("filename", [".", "..", "a/b", "../x", "a b", "x" * 256, "é"])
def test_a_part_filename_must_be_a_plain_file_name(filename: str) -> None:
    assert "is not a plain file name" in invalid(manifest(parts=[part(0, filename)]))


def test_a_part_needs_a_filename_and_a_sha1_digest() -> None:
    assert "no filename for part 0" in invalid(manifest(parts=[
        '<part index="0"><digest algorithm="SHA1">' + SHA + "</digest></part>"]))
    assert 'needs a <digest algorithm="SHA1">' in invalid(manifest(parts=[
        '<part index="0"><filename>a</filename></part>']))
    for algorithm in ("SHA256", "MD5", ""):
        assert 'needs a <digest algorithm="SHA1">' in invalid(
            manifest(parts=[part(0, algorithm=algorithm)]))
    no_algorithm = part(0).replace(' algorithm="SHA1"', "")
    assert 'needs a <digest algorithm="SHA1">' in invalid(manifest(parts=[no_algorithm]))


@pytest.mark.parametrize("digest", [SHA[:-1], SHA + "0", "g" * 40, "", SHA + "\n0"])
def test_a_part_digest_must_be_40_hexadecimal_digits(digest: str) -> None:
    message = invalid(manifest(parts=[part(0, digest=digest)]))
    assert "digest is not 40 hexadecimal digits" in message


def test_a_bad_second_part_is_named_by_its_position() -> None:
    assert "part 1's digest" in invalid(manifest(parts=[part(0), part(1, digest="x")]))


# --- ImageLocation --------------------------------------------------------------------------

def test_an_image_location_is_a_bucket_and_a_key() -> None:
    assert bundles.split_location("b/x.manifest.xml") == ("b", "x.manifest.xml")
    assert bundles.split_location("/b/d/e/x.manifest.xml") == ("b", "d/e/x.manifest.xml")


@pytest.mark.parametrize("location", ["", "b", "b/", "/b", "//x.manifest.xml"])
def test_an_image_location_without_a_bucket_or_key_is_invalid(location: str) -> None:
    with pytest.raises(ServiceError) as caught:
        bundles.split_location(location)
    assert (caught.value.code, caught.value.status) == ("InvalidParameterValue", 400)
    assert "<bucket>/<path to the manifest>" in caught.value.message


def test_parts_live_beside_their_manifest() -> None:
    assert bundles.part_key("d/e/x.manifest.xml", "p.0") == "d/e/p.0"
    assert bundles.part_key("x.manifest.xml", "p.0") == "p.0"


# --- CopyImage of a bundle (domain/bundle_copies.py) ----------------------------------------

def reference_bucket(account: str, region: str) -> str:
    """The regional bucket's name, computed here: sha256 of "amis-for <account> <region>",
    its big-endian number written least significant digit first in base 36 (a-z, 0-9)."""
    import hashlib
    number = int(hashlib.sha256(f"amis-for {account} {region}".encode()).hexdigest(), 16)
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    suffix = ""
    for _ in range(8):
        suffix += alphabet[number % 36]
        number //= 36
    return f"amis-for-{account}-in-{region}-{suffix}"


def test_the_regional_bucket_is_named_by_account_and_region() -> None:
    name = bundle_copies.regional_bucket("123456789012", "eu-west-1")
    assert name == reference_bucket("123456789012", "eu-west-1")
    assert re.fullmatch(r"amis-for-123456789012-in-eu-west-1-[a-z0-9]{8}", name)
    assert bundle_copies.regional_bucket("123456789012", "eu-west-1") == name
    others = {bundle_copies.regional_bucket(a, r) for a in ("123456789012", "210987654321")
              for r in ("eu-west-1", "us-east-1")}
    assert len(others) == 4
    for account, region in (("210987654321", "us-east-1"), ("000000000000", "sa-east-1")):
        assert bundle_copies.regional_bucket(account, region) == \
            reference_bucket(account, region)


def test_a_bundle_copy_puts_its_files_under_the_new_image_id_parts_first() -> None:
    assert bundle_copies.target_key("ami-0123", "disk.img.part.0") == "ami-0123/disk.img.part.0"
    assert bundle_copies.file_names("x.manifest.xml", ["p.0", "p.1"]) == \
        ["p.0", "p.1", "x.manifest.xml"]
    assert bundle_copies.file_names("x.manifest.xml", []) == ["x.manifest.xml"]


def test_the_copy_bucket_is_readable_by_ec2_with_acls_on() -> None:
    assert bundle_copies.BUCKET_ACL == "aws-exec-read"
    assert bundle_copies.OWNERSHIP == "ObjectWriter"
    assert bundle_copies.COPY_ACTIONS_AT_REQUEST == ("s3:ListAllMyBuckets", "s3:GetBucketAcl",
                                                     "s3:GetObject")
    assert bundle_copies.CREATE_ACTIONS == ("s3:CreateBucket", "s3:PutBucketOwnershipControls")


@pytest.mark.parametrize(("make", "code"), [
    (lambda: bundle_copies.no_encryption_change("ami-1"), "InvalidParameterCombination"),
    (lambda: bundle_copies.bucket_taken("amis-for-x"), "InvalidRequest"),
])
def test_a_bundle_copy_refusal_is_a_400(make: Callable[[], ServiceError], code: str) -> None:
    error = make()
    assert (error.code, error.status) == (code, 400)


def test_a_refused_step_reads_like_aws_s_access_denied() -> None:
    assert bundle_copies.refused("s3:GetObject", "arn:aws:s3:::b/k",
                                 "arn:aws:iam::123456789012:user/u") == (
        "User: arn:aws:iam::123456789012:user/u is not authorized to perform: s3:GetObject on "
        "resource: arn:aws:s3:::b/k")
