"""The rules of domain/checksums.py, without a server: each checksum S3 supports against its
published check value and against a bit-by-bit reference written here from the algorithm's
parameters (not from the module's tables), Content-MD5 and declared checksums accepted and
refused, and the composite checksum of a multipart upload.

Before these tests the module was guarded only by tests/integration/test_s3.py, so every
mutant cost a server start.
"""

from __future__ import annotations

import base64
import hashlib
import zlib

import pytest

from snapferry.domain import checksums
from snapferry.domain.checksums import Hasher
from snapferry.errors import ServiceError

CHECK_INPUT = b"123456789"
# The standard check values (the CRC of "123456789"), from the CRC catalogue.
CHECK_VALUES = {"CRC32": "cbf43926", "CRC32C": "e3069283", "CRC64NVME": "ae8b14860a799888"}
# Every byte value, in an order that is not the table's, so each table entry is used.
ALL_BYTES = bytes((i * 37 + 11) % 256 for i in range(256)) * 3 + b"tail"


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def reference_crc(data: bytes, poly: int, width: int) -> bytes:
    """A reflected CRC computed bit by bit: initial value and final XOR all ones."""
    mask = (1 << width) - 1
    crc = mask
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ poly if crc & 1 else crc >> 1
    return (crc ^ mask).to_bytes(width // 8, "big")


def expected(name: str, data: bytes) -> str:
    raw = {
        "CRC32": lambda: zlib.crc32(data).to_bytes(4, "big"),
        "CRC32C": lambda: reference_crc(data, 0x82F63B78, 32),
        "CRC64NVME": lambda: reference_crc(data, 0x9A6C9329AC4BC9B5, 64),
        "SHA1": lambda: hashlib.sha1(data).digest(),
        "SHA256": lambda: hashlib.sha256(data).digest(),
    }[name]()
    return b64(raw)


def error_of(call, *args) -> ServiceError:  # type: ignore[no-untyped-def]
    with pytest.raises(ServiceError) as caught:
        call(*args)
    return caught.value


def hashed(data: bytes, *names: str) -> Hasher:
    hasher = Hasher(names)
    hasher.update(data)
    return hasher


# --- algorithms -----------------------------------------------------------------------------

def test_the_five_algorithms_are_known_in_any_case() -> None:
    for name in ("CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256"):
        assert checksums.algorithm(name) == name
        assert checksums.algorithm(name.lower()) == name
    assert checksums.ALGORITHMS == ("CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256")


@pytest.mark.parametrize("name", ["MD5", "CRC16", "SHA512", "", "crc32 "])
def test_another_algorithm_is_an_invalid_request(name: str) -> None:
    error = error_of(checksums.algorithm, name)
    assert (error.code, error.status) == ("InvalidRequest", 400)
    assert "CRC32, CRC32C, CRC64NVME, SHA1, SHA256" in error.message


# --- the checksums themselves ---------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(CHECK_VALUES))
def test_each_crc_gives_its_published_check_value(name: str) -> None:
    assert hashed(CHECK_INPUT, name).value(name) == b64(bytes.fromhex(CHECK_VALUES[name]))


@pytest.mark.parametrize("name", list(checksums.ALGORITHMS))
def test_each_checksum_over_every_byte_value_matches_the_reference(name: str) -> None:
    assert hashed(ALL_BYTES, name).value(name) == expected(name, ALL_BYTES)


@pytest.mark.parametrize("name", list(checksums.ALGORITHMS))
def test_a_checksum_fed_in_pieces_is_the_checksum_of_the_whole(name: str) -> None:
    hasher = Hasher([name])
    for start in range(0, len(ALL_BYTES), 100):
        hasher.update(ALL_BYTES[start:start + 100])
    hasher.update(b"")
    assert hasher.value(name) == expected(name, ALL_BYTES)


def test_the_crcs_of_nothing_are_zero() -> None:
    hasher = Hasher(["CRC32", "CRC32C", "CRC64NVME"])
    assert hasher.value("CRC32") == b64(bytes(4))
    assert hasher.value("CRC32C") == b64(bytes(4))
    assert hasher.value("CRC64NVME") == b64(bytes(8))


def test_the_hasher_keeps_md5_size_and_only_the_checksums_asked_for() -> None:
    hasher = Hasher(["SHA256", "CRC32C"])
    hasher.update(b"hello ")
    hasher.update(b"world")
    assert hasher.md5.digest() == hashlib.md5(b"hello world").digest()
    assert hasher.size == 11
    assert sorted(hasher.checksums) == ["CRC32C", "SHA256"]
    assert hasher.value("SHA256") == expected("SHA256", b"hello world")
    assert Hasher().checksums == {}
    assert Hasher().size == 0


# --- Content-MD5 ----------------------------------------------------------------------------

def test_content_md5_absent_is_not_checked_and_a_matching_one_passes() -> None:
    hasher = hashed(b"data")
    checksums.check_md5(None, hasher)
    checksums.check_md5(b64(hashlib.md5(b"data").digest()), hasher)


@pytest.mark.parametrize("value", ["not base64!", b64(bytes(15)), b64(bytes(17)), "", "=="])
def test_a_content_md5_that_is_not_16_bytes_of_base64_is_invalid(value: str) -> None:
    error = error_of(checksums.check_md5, value, hashed(b"data"))
    assert (error.code, error.status) == ("InvalidDigest", 400)


def test_a_content_md5_of_other_bytes_is_a_bad_digest() -> None:
    error = error_of(checksums.check_md5, b64(hashlib.md5(b"other").digest()), hashed(b"data"))
    assert (error.code, error.status) == ("BadDigest", 400)


# --- declared checksums ---------------------------------------------------------------------

def test_declared_checksums_that_match_pass_even_with_white_space_around() -> None:
    hasher = hashed(b"data", "CRC32", "SHA1")
    checksums.check_declared({}, hasher)
    checksums.check_declared({"CRC32": f" {expected('CRC32', b'data')}\n",
                              "SHA1": expected("SHA1", b"data")}, hasher)


@pytest.mark.parametrize("wrong", ["CRC32", "SHA1"])
def test_any_declared_checksum_that_differs_is_a_bad_digest(wrong: str) -> None:
    declared = {name: expected(name, b"other" if name == wrong else b"data")
                for name in ("CRC32", "SHA1")}
    error = error_of(checksums.check_declared, declared, hashed(b"data", "CRC32", "SHA1"))
    assert (error.code, error.status) == ("BadDigest", 400)
    assert f"The {wrong} you specified" in error.message


# --- multipart ------------------------------------------------------------------------------

@pytest.mark.parametrize("name", list(checksums.ALGORITHMS))
def test_a_composite_checksum_is_the_checksum_of_the_parts_checksums(name: str) -> None:
    pieces = [b"first part", b"second", ALL_BYTES]
    values = [expected(name, piece) for piece in pieces]
    joined = b"".join(base64.b64decode(v) for v in values)
    assert checksums.composite(values, name) == f"{expected(name, joined)}-3"
    assert checksums.composite(values[:1], name) == \
        f"{expected(name, base64.b64decode(values[0]))}-1"


@pytest.mark.parametrize("first", ["+", "z"])
def test_a_declared_checksum_is_refused_whether_it_sorts_before_or_after(first: str) -> None:
    """Compared by value, not by order: a wrong value sorting before ('+' is base64's lowest
    character) or after ('z' above every letter and '/') the right one is refused."""
    right = expected("CRC32", b"data")
    wrong = first + right[1:]
    assert wrong != right
    error = error_of(checksums.check_declared, {"CRC32": wrong}, hashed(b"data", "CRC32"))
    assert error.code == "BadDigest"


@pytest.mark.parametrize(("name", "width"), [("CRC32C", 32), ("CRC64NVME", 64)])
def test_a_crc_of_all_ones_is_written_as_all_ones(name: str, width: int) -> None:
    """Bytes whose CRC is all ones: a reflected CRC's register is driven to zero by
    appending the register itself, little-endian (each step then looks up entry 0, which is
    0), and a zero register comes out all ones after the final XOR."""
    poly = {"CRC32C": 0x82F63B78, "CRC64NVME": 0x9A6C9329AC4BC9B5}[name]
    mask = (1 << width) - 1
    register = int.from_bytes(reference_crc(b"abc", poly, width), "big") ^ mask
    data = b"abc" + register.to_bytes(width // 8, "little")
    assert reference_crc(data, poly, width) == b"\xff" * (width // 8)
    assert hashed(data, name).value(name) == b64(b"\xff" * (width // 8))


def test_a_content_md5_with_a_stray_character_is_invalid_even_if_the_rest_matches() -> None:
    """Strict base64: a character outside the alphabet is refused, not skipped."""
    right = b64(hashlib.md5(b"data").digest())
    for stray in (right[:8] + "!" + right[8:], right[:8] + " " + right[8:], "*" + right):
        error = error_of(checksums.check_md5, stray, hashed(b"data"))
        assert error.code == "InvalidDigest"


@pytest.mark.parametrize("flip", [0x00, 0xFF])
def test_a_content_md5_is_refused_whether_it_sorts_before_or_after(flip: int) -> None:
    """A wrong digest whose first byte is 0x00 (sorting before the right one) or 0xff
    (after) is a bad digest either way: compared by value, not by order."""
    right = hashlib.md5(b"data").digest()
    wrong = bytes([flip]) + right[1:]
    assert wrong != right
    error = error_of(checksums.check_md5, b64(wrong), hashed(b"data"))
    assert error.code == "BadDigest"
