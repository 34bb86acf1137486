"""S3's rules that are not about access (domain/buckets.py), each boundary from both sides,
without a server: bucket names and locations, keys, byte ranges, conditional requests,
multipart completion and ETags, and the ListObjects walk over sorted keys."""

from __future__ import annotations

import bisect
import datetime as dt
import hashlib
from collections.abc import Iterator

import pytest

from snapferry.domain import buckets
from snapferry.domain.buckets import StoredPart
from snapferry.errors import ServiceError

MIB = 1024 * 1024


def _code(call: object, *args: object, **kwargs: object) -> ServiceError:
    with pytest.raises(ServiceError) as caught:
        call(*args, **kwargs)  # type: ignore[operator]
    return caught.value


# ---- names, keys and locations -----------------------------------------------------------------

@pytest.mark.parametrize("name", ["abc", "a" * 63, "my.bucket-1", "0bucket9", "a-b", "a.b",
                                  "1.2.3.4x", "xn-ok", "sthree", "bucket-s3alia"])
def test_a_valid_bucket_name_is_accepted(name: str) -> None:
    buckets.check_bucket_name(name)


@pytest.mark.parametrize(("name", "why"), [
    ("ab", "3 to 63"), ("a" * 64, "3 to 63"), ("Abc", "3 to 63"), ("-abc", "3 to 63"),
    ("abc-", "3 to 63"), ("ab_c", "3 to 63"), (".abc", "3 to 63"), ("abc\n", "3 to 63"),
    ("a..b", "adjacent dots"),
    ("xn--abc", "reserved"), ("sthree-abc", "reserved"), ("amzn-s3-demo-x", "reserved"),
    ("abc-s3alias", "reserved"), ("abc--ol-s3", "reserved"), ("abc.mrap", "reserved"),
    ("abc--x-s3", "reserved"), ("abc--table-s3", "reserved"),
    ("192.168.5.4", "IP address"),
])
def test_an_invalid_bucket_name_is_refused_saying_why(name: str, why: str) -> None:
    error = _code(buckets.check_bucket_name, name)
    assert error.code == "InvalidBucketName"
    assert error.status == 400
    assert why in error.message
    assert error.fields == {"BucketName": name}


def test_a_refused_bucket_name_is_quoted_at_most_255_characters() -> None:
    name = "B" * 300
    assert _code(buckets.check_bucket_name, name).fields["BucketName"] == "B" * 255


def test_a_key_is_at_most_1024_bytes_of_utf8() -> None:
    buckets.check_key("k" * 1024)
    buckets.check_key("é" * 512)  # two bytes each: exactly 1024
    buckets.check_key("x\udc80")  # a lone surrogate (from a URL) is counted, not an error
    for key in ("k" * 1025, "é" * 512 + "k"):
        error = _code(buckets.check_key, key)
        assert (error.code, error.status) == ("KeyTooLongError", 400)


def test_the_us_east_1_endpoint_creates_a_bucket_in_any_region() -> None:
    assert buckets.bucket_region("us-east-1", None) == "us-east-1"
    assert buckets.bucket_region("us-east-1", "eu-central-1") == "eu-central-1"
    assert buckets.bucket_region("us-east-1", "EU") == "eu-west-1"


def test_another_endpoint_creates_a_bucket_only_in_its_own_region_which_it_must_name() -> None:
    assert buckets.bucket_region("eu-west-1", "eu-west-1") == "eu-west-1"
    assert buckets.bucket_region("eu-west-1", "EU") == "eu-west-1"
    unnamed = _code(buckets.bucket_region, "eu-west-1", None)
    assert unnamed.code == "IllegalLocationConstraintException"
    assert "unspecified" in unnamed.message
    # Another region, sorting before or after the endpoint's own.
    for other in ("ap-south-1", "us-west-2"):
        error = _code(buckets.bucket_region, "eu-west-1", other)
        assert error.code == "IllegalLocationConstraintException"
        assert other in error.message


@pytest.mark.parametrize("constraint", ["us-east-1", "mars-north-1", "", "eu"])
def test_us_east_1_and_unknown_regions_are_no_location_constraint(constraint: str) -> None:
    for endpoint in ("us-east-1", "eu-west-1"):
        assert _code(buckets.bucket_region, endpoint,
                     constraint).code == "InvalidLocationConstraint"


def test_a_location_constraint_is_compared_by_value() -> None:
    endpoint, constraint = "".join(["eu-", "west-1"]), "".join(["eu-west", "-1"])
    assert buckets.bucket_region(endpoint, constraint) == "eu-west-1"
    assert _code(buckets.bucket_region, "us-east-1",
                 "".join(["us-", "east-1"])).code == "InvalidLocationConstraint"
    # An endpoint sorting after us-east-1 is a regional one like any other.
    assert _code(buckets.bucket_region, "us-west-2",
                 None).code == "IllegalLocationConstraintException"
    assert buckets.bucket_region("".join(["us-", "east-1"]), None) == "us-east-1"
    assert buckets.bucket_region("us-east-1", "".join(["E", "U"])) == "eu-west-1"


# ---- byte ranges -----------------------------------------------------------------------------

@pytest.mark.parametrize(("header", "size", "expected"), [
    (None, 100, None), ("", 100, None),
    ("bytes=0-9", 100, (0, 9)), (" bytes=10-19 ", 100, (10, 19)),
    ("bytes=0-0", 100, (0, 0)), ("bytes=99-99", 100, (99, 99)),
    ("bytes=5-", 100, (5, 99)), ("bytes=90-500", 100, (90, 99)), ("bytes=0-99", 100, (0, 99)),
    ("bytes=0-100", 100, (0, 99)),
    ("bytes=-10", 100, (90, 99)), ("bytes=-1", 100, (99, 99)), ("bytes=-100", 100, (0, 99)),
    ("bytes=-500", 100, (0, 99)), ("bytes=-99", 100, (1, 99)),
    # What S3 cannot read is ignored: the whole object.
    ("bytes=-", 100, None), ("bytes=9-5", 100, None), ("bytes=1-2,5-6", 100, None),
    ("items=0-9", 100, None), ("bytes=a-9", 100, None),
])
def test_a_range_header_gives_first_and_last_byte_inclusive(
        header: str | None, size: int, expected: tuple[int, int] | None) -> None:
    assert buckets.byte_range(header, size) == expected


@pytest.mark.parametrize(("header", "size"), [
    ("bytes=100-", 100), ("bytes=100-200", 100), ("bytes=101-", 100), ("bytes=-0", 100),
    ("bytes=0-", 0), ("bytes=-5", 0), ("bytes=-0", 0),
])
def test_a_range_past_the_end_is_not_satisfiable(header: str, size: int) -> None:
    error = _code(buckets.byte_range, header, size)
    assert (error.code, error.status) == ("InvalidRange", 416)
    assert error.fields == {"ActualObjectSize": str(size)}


# ---- conditional requests --------------------------------------------------------------------

ETAG = '"9b2cf535f27731c974343645a3985328"'
MODIFIED = dt.datetime(2026, 12, 3, 6, 0, 0, 500000, tzinfo=dt.UTC)  # stored with microseconds
SECOND = dt.timedelta(seconds=1)
BASE = MODIFIED.replace(microsecond=0)


def _check(if_match: str | None = None, if_none_match: str | None = None,
           since: dt.datetime | None = None, unmodified_since: dt.datetime | None = None,
           read: bool = True) -> tuple[str, int, dict[str, str]] | None:
    try:
        buckets.check_conditions(ETAG, MODIFIED, if_match, if_none_match, since,
                                 unmodified_since, read)
    except ServiceError as e:
        return e.code, e.status, e.fields
    return None


FAILED_MATCH = ("PreconditionFailed", 412, {"Condition": "If-Match"})
NOT_MODIFIED = ("NotModified", 304, {})


def test_if_match_holds_for_the_etag_quoted_or_not_or_star() -> None:
    for header in (ETAG, ETAG.strip('"'), "*", f'"other", {ETAG}', f" {ETAG} "):
        assert _check(if_match=header) is None
    assert _check(if_match='"other"') == FAILED_MATCH
    assert _check(if_match="") == FAILED_MATCH
    assert _check(if_match='"9b2cf535f27731c974343645a398532"') == FAILED_MATCH


def test_if_unmodified_since_holds_through_the_second_of_the_change() -> None:
    assert _check(unmodified_since=BASE) is None  # microseconds are not compared
    assert _check(unmodified_since=BASE + SECOND) is None
    assert _check(unmodified_since=BASE - SECOND) == (
        "PreconditionFailed", 412, {"Condition": "If-Unmodified-Since"})
    # If-Match, when given, decides instead.
    assert _check(if_match=ETAG, unmodified_since=BASE - SECOND) is None
    assert _check(if_match='"other"', unmodified_since=BASE + SECOND) == FAILED_MATCH


def test_if_none_match_fails_a_read_with_304_and_a_write_with_412() -> None:
    assert _check(if_none_match=ETAG) == NOT_MODIFIED
    assert _check(if_none_match="*") == NOT_MODIFIED
    assert _check(if_none_match="*", read=False) == (
        "PreconditionFailed", 412, {"Condition": "If-None-Match"})
    assert _check(if_none_match='"other"') is None
    assert _check(if_none_match='"other"', read=False) is None


def test_a_check_is_a_reads_unless_the_caller_says_write() -> None:
    # GetObject, HeadObject and CopyObject's source pass no `read`: a failed If-None-Match
    # is their 304, not a write's 412.
    error = _code(buckets.check_conditions, ETAG, MODIFIED, None, ETAG, None, None)
    assert (error.code, error.status) == NOT_MODIFIED[:2]
    error = _code(buckets.check_conditions, ETAG, MODIFIED, None, None, BASE, None)
    assert (error.code, error.status) == NOT_MODIFIED[:2]


def test_if_modified_since_applies_to_reads_only_and_after_if_none_match() -> None:
    assert _check(since=BASE) == NOT_MODIFIED
    assert _check(since=BASE + SECOND) == NOT_MODIFIED
    assert _check(since=BASE - SECOND) is None
    assert _check(since=BASE, read=False) is None
    # If-None-Match, when given, decides instead.
    assert _check(if_none_match='"other"', since=BASE + SECOND) is None
    assert _check(if_none_match=ETAG, since=BASE - SECOND) == NOT_MODIFIED


def test_a_failed_write_condition_is_checked_before_if_none_match() -> None:
    assert _check(if_match='"other"', if_none_match="*", read=False) == FAILED_MATCH


# ---- multipart -------------------------------------------------------------------------------

@pytest.mark.parametrize("number", [1, 2, 9999, 10000])
def test_a_part_number_is_1_to_10000(number: int) -> None:
    assert buckets.part_number(number) == number


@pytest.mark.parametrize("number", [0, -1, 10001])
def test_a_part_number_outside_1_to_10000_is_refused(number: int) -> None:
    error = _code(buckets.part_number, number)
    assert (error.code, error.status) == ("InvalidArgument", 400)
    assert error.fields == {"ArgumentName": "partNumber", "ArgumentValue": str(number)}
    assert "10000" in error.message


def test_a_multipart_etag_is_the_md5_of_the_parts_md5s_and_their_count() -> None:
    parts = [hashlib.md5(b"first").hexdigest(), hashlib.md5(b"second").hexdigest()]
    joined = hashlib.md5(bytes.fromhex(parts[0]) + bytes.fromhex(parts[1])).hexdigest()
    assert buckets.multipart_etag([f'"{parts[0]}"', parts[1]]) == f'"{joined}-2"'
    one = hashlib.md5(bytes.fromhex(parts[0])).hexdigest()
    assert buckets.multipart_etag([parts[0]]) == f'"{one}-1"'


def _parts(*sizes: int) -> dict[int, StoredPart]:
    return {n: StoredPart(n, f'"{n:032x}"', size) for n, size in enumerate(sizes, start=1)}


def test_a_completion_names_parts_in_ascending_order_each_with_its_etag() -> None:
    stored = _parts(5 * MIB, 5 * MIB, 1)
    chosen = buckets.check_completion([(1, f"{1:032x}"), (3, f' "{3:032x}"')], stored)
    assert chosen == [stored[1], stored[3]]
    assert buckets.check_completion([(2, f'"{2:032x}"')], stored) == [stored[2]]


@pytest.mark.parametrize("asked", [[(2, 2), (1, 1)], [(1, 1), (1, 1)], [(0, 0)], [(-1, 1)]])
def test_parts_not_in_ascending_order_are_refused(asked: list[tuple[int, int]]) -> None:
    stored = _parts(5 * MIB, 5 * MIB)
    stored[0] = StoredPart(0, f'"{0:032x}"', 5 * MIB)
    stored[-1] = StoredPart(-1, f'"{1:032x}"', 5 * MIB)
    named = [(number, f"{etag:032x}") for number, etag in asked]
    assert _code(buckets.check_completion, named, stored).code == "InvalidPartOrder"


def test_a_part_not_uploaded_or_with_another_etag_is_refused() -> None:
    stored = _parts(5 * MIB, 5 * MIB)
    for asked in ([(3, f"{3:032x}")], [(1, f"{1:032x}"), (2, f"{1:032x}")]):
        error = _code(buckets.check_completion, asked, stored)
        assert error.code == "InvalidPart"
        assert error.fields["PartNumber"] == str(asked[-1][0])
    assert _code(buckets.check_completion, [], stored).code == "MalformedXML"
    # Another ETag is refused whichever way it sorts against the stored one.
    for other in (f"{0:032x}", f"{2:032x}"):
        assert _code(buckets.check_completion, [(1, other)], stored).code == "InvalidPart"
    # The ETag asked for is quoted back, cut at 100 characters (it is the client's text).
    long_etag = "e" * 300
    assert _code(buckets.check_completion, [(1, long_etag)],
                 stored).fields["ETag"] == "e" * 100


def test_every_part_but_the_last_is_at_least_5_mib() -> None:
    asked = [(1, f"{1:032x}"), (2, f"{2:032x}"), (3, f"{3:032x}")]
    assert len(buckets.check_completion(asked, _parts(5 * MIB, 5 * MIB, 0))) == 3
    # 5 MiB is a floor, not a size: larger parts (the usual 8 MiB or 100 MiB) are accepted.
    assert len(buckets.check_completion(asked, _parts(5 * MIB + 1, 100 * MIB, 1))) == 3
    for sizes, small in (((5 * MIB - 1, 5 * MIB, 1), 1), ((5 * MIB, 5 * MIB - 1, 1), 2)):
        error = _code(buckets.check_completion, asked, _parts(*sizes))
        assert error.code == "EntityTooSmall"
        assert error.fields["PartNumber"] == str(small)
        assert error.fields["ProposedSize"] == str(5 * MIB - 1)
        assert error.fields["MinSizeAllowed"] == str(5 * MIB)


def test_the_limits_are_s3s() -> None:
    assert buckets.MAX_OBJECT_SIZE == 5 * 1024**3
    assert buckets.MAX_MULTIPART_SIZE == 5 * 1024**4
    assert buckets.MAX_KEYS == 1000


# ---- listing ---------------------------------------------------------------------------------

class Keys:
    """A bucket's keys in order, read as the storage reads them: from a bound on."""

    def __init__(self, *keys: str) -> None:
        self.keys = sorted(keys)
        self.reads = 0

    def __call__(self, bound: str, inclusive: bool) -> Iterator[str]:
        self.reads += 1
        at = (bisect.bisect_left if inclusive else bisect.bisect_right)(self.keys, bound)
        yield from self.keys[at:]


BUCKET = Keys("a.txt", "photos/2025/1.jpg", "photos/2025/2.jpg", "photos/2026/1.jpg",
              "photos/top.jpg", "photos0", "videos/x.mp4", "z")


def test_a_listing_without_a_delimiter_is_every_key_after_the_prefix() -> None:
    listing = buckets.walk(BUCKET, "photos/", "", "", 1000)
    assert listing.keys == ["photos/2025/1.jpg", "photos/2025/2.jpg", "photos/2026/1.jpg",
                            "photos/top.jpg"]
    assert listing.prefixes == []
    assert listing.truncated is False
    assert listing.last == "photos/top.jpg"


def test_a_delimiter_rolls_keys_up_into_common_prefixes() -> None:
    listing = buckets.walk(BUCKET, "", "/", "", 1000)
    assert listing.keys == ["a.txt", "photos0", "z"]
    assert listing.prefixes == ["photos/", "videos/"]
    assert listing.last == "z"
    nested = buckets.walk(BUCKET, "photos/", "/", "", 1000)
    assert nested.keys == ["photos/top.jpg"]
    assert nested.prefixes == ["photos/2025/", "photos/2026/"]
    # A prefix not ending with the delimiter: a delimiter right after it still rolls up.
    rolled = buckets.walk(BUCKET, "photos", "/", "", 1000)
    assert (rolled.keys, rolled.prefixes) == (["photos0"], ["photos/"])
    # A delimiter of several characters.
    assert buckets.walk(BUCKET, "", "s/", "", 1000).prefixes == ["photos/", "videos/"]


def test_a_common_prefix_is_read_past_in_one_step() -> None:
    keys = Keys(*[f"dir/{i:04}" for i in range(50)], "end")
    listing = buckets.walk(keys, "", "/", "", 1000)
    assert listing.prefixes == ["dir/"]
    assert listing.keys == ["end"]
    assert keys.reads == 2  # the first read stops at dir/, the second starts past it


def test_max_keys_counts_keys_and_prefixes_and_marks_the_listing_truncated() -> None:
    first = buckets.walk(BUCKET, "", "/", "", 2)
    assert (first.keys, first.prefixes, first.truncated, first.last) == (
        ["a.txt"], ["photos/"], True, "photos/")
    # Exactly as many as remain: not truncated.
    exact = buckets.walk(BUCKET, "", "/", "", 5)
    assert exact.truncated is False
    assert len(exact.keys) + len(exact.prefixes) == 5
    assert buckets.walk(BUCKET, "", "/", "", 4).truncated is True


def test_a_listing_resumes_after_its_last_key_or_common_prefix() -> None:
    after_prefix = buckets.walk(BUCKET, "", "/", "photos/", 1000)
    assert (after_prefix.keys, after_prefix.prefixes) == (["photos0", "z"], ["videos/"])
    after_key = buckets.walk(BUCKET, "", "/", "a.txt", 1000)
    assert (after_key.keys, after_key.prefixes) == (["photos0", "z"], ["photos/", "videos/"])
    # StartAfter inside the prefix: after that key, still within the prefix.
    inside = buckets.walk(BUCKET, "photos/", "", "photos/2025/1.jpg", 1000)
    assert inside.keys == ["photos/2025/2.jpg", "photos/2026/1.jpg", "photos/top.jpg"]
    # StartAfter before the prefix starts at the prefix; a key equal to the prefix is listed.
    with_dir = Keys("photos/", "photos/a", "q")
    assert buckets.walk(with_dir, "photos/", "", "a", 1000).keys == ["photos/", "photos/a"]
    # ... also when keys outside the prefix lie between StartAfter and the prefix.
    assert buckets.walk(BUCKET, "photos/", "", "a", 1000).keys == [
        "photos/2025/1.jpg", "photos/2025/2.jpg", "photos/2026/1.jpg", "photos/top.jpg"]
    # A start ending with the delimiter but outside the prefix is a plain StartAfter.
    assert buckets.walk(BUCKET, "photos/", "/", "a/", 1000).prefixes == [
        "photos/2025/", "photos/2026/"]
    # Without a delimiter, a start ending in `/` is a key like any other.
    assert buckets.walk(BUCKET, "", "", "photos/", 1000).keys[0] == "photos/2025/1.jpg"


FOLDER = Keys("photos/", "photos/a.jpg", "photos/b.jpg", "z")  # "photos/": a console folder


@pytest.mark.parametrize("delimiter", ["", "/"])
def test_a_key_equal_to_the_prefix_is_listed_once_and_the_keys_under_it_follow(
        delimiter: str) -> None:
    # StartAfter equal to the prefix: the keys after it, not the prefix's own key.
    assert buckets.walk(FOLDER, "photos/", delimiter, "photos/", 1000).keys == [
        "photos/a.jpg", "photos/b.jpg"]
    # One key a page: the folder key ends the first page, the second goes on after it.
    seen: list[str] = []
    start = ""
    for _ in range(5):
        page = buckets.walk(FOLDER, "photos/", delimiter, start, 1)
        seen += page.keys + page.prefixes
        if not page.truncated:
            break
        assert page.last is not None
        start = page.last
    assert seen == ["photos/", "photos/a.jpg", "photos/b.jpg"]


def test_long_prefixes_and_page_sizes_are_compared_by_value() -> None:
    """Lengths and counts past 256 (CPython caches only small ints, so `is` would tell two
    equal ones apart): a StartAfter equal to a 300-character prefix is a key, not a common
    prefix, and a page of 300 keys stops at the 300th."""
    prefix = "d" * 299 + "/"
    folder = Keys(prefix, prefix + "a", prefix + "b")
    assert buckets.walk(folder, prefix, "/", "".join([prefix]), 1000).keys == [
        prefix + "a", prefix + "b"]
    many = Keys(*[f"k{i:04}" for i in range(400)])
    page = buckets.walk(many, "", "", "", int("300"))
    assert len(page.keys) == 300
    assert page.truncated is True
    assert page.last == "k0299"


def test_paging_through_a_listing_returns_every_key_once() -> None:
    seen: list[str] = []
    start = ""
    for _ in range(10):
        page = buckets.walk(BUCKET, "", "/", start, 1)
        seen += page.keys + page.prefixes
        if not page.truncated:
            break
        assert page.last is not None
        start = buckets.decode_token(buckets.encode_token(page.last))
    assert seen == ["a.txt", "photos/", "photos0", "videos/", "z"]


def test_next_after_is_past_every_string_with_the_prefix() -> None:
    assert buckets.next_after("photos/") == "photos0"
    assert buckets.next_after("a") == "b"
    assert buckets.next_after("photos/") > "photos/\uffff"


def test_a_continuation_token_carries_any_key_and_a_bad_one_is_refused() -> None:
    for key in ("photos/", "é/ü", "a+b=c?"):
        token = buckets.encode_token(key)
        assert token.isascii()
        assert buckets.decode_token(token) == key
    for bad in ("***", "é", buckets.encode_token("x")[:-1] + "!", "gA=="):
        error = _code(buckets.decode_token, bad)
        assert (error.code, error.status) == ("InvalidArgument", 400)
        assert error.fields == {"ArgumentName": "continuation-token"}
