"""S3's rules that are not about access: bucket names and locations, byte ranges,
conditional requests, multipart ETags, and the walk of ListObjects over sorted keys."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import ipaddress
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from snapferry.domain import regions
from snapferry.errors import ServiceError

MAX_OBJECT_SIZE = 5 * 1024**3  # a single PUT, and a part
MAX_MULTIPART_SIZE = 5 * 1024**4
MIN_PART_SIZE = 5 * 1024 * 1024  # every part but the last
MAX_PARTS = 10000
MAX_KEYS = 1000
MAX_KEY_BYTES = 1024

# fullmatch, not ^...$: `$` also matches before a trailing newline ("abc\n").
_NAME = re.compile(r"[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]")
_RESERVED_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_RESERVED_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")


def check_bucket_name(name: str) -> None:
    """AWS's naming rules for general purpose buckets."""
    problem = None
    if not _NAME.fullmatch(name):
        problem = ("3 to 63 lowercase letters, digits, dots and hyphens, starting and ending "
                   "with a letter or digit")
    elif ".." in name:
        problem = "no two adjacent dots"
    elif name.startswith(_RESERVED_PREFIXES) or name.endswith(_RESERVED_SUFFIXES):
        problem = "not a reserved prefix or suffix"
    else:
        try:
            ipaddress.IPv4Address(name)
            problem = "not an IP address"
        except ValueError:
            pass
    if problem:
        raise ServiceError("InvalidBucketName",
                           f"The specified bucket is not valid: a bucket name must be {problem}.",
                           BucketName=name[:255])


def check_key(key: str) -> None:
    if len(key.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
        raise ServiceError("KeyTooLongError", "Your key is too long: at most 1024 bytes.")


def bucket_region(signed_region: str, constraint: str | None) -> str:
    """The region a new bucket lives in. The us-east-1 endpoint creates a bucket anywhere;
    any other endpoint only in its own region, which the request must name."""
    if constraint == "EU":
        constraint = "eu-west-1"
    if constraint is not None and (constraint == "us-east-1" or not regions.is_region(constraint)):
        raise ServiceError("InvalidLocationConstraint",
                           "The specified location-constraint is not valid.")
    if signed_region == "us-east-1":
        return constraint or "us-east-1"
    if constraint is None:
        raise ServiceError(
            "IllegalLocationConstraintException",
            f"The unspecified location constraint is incompatible for the region specific "
            f"endpoint this request was sent to: name LocationConstraint {signed_region}.")
    if constraint != signed_region:
        raise ServiceError(
            "IllegalLocationConstraintException",
            f"The {constraint} location constraint is incompatible for the region specific "
            f"endpoint this request was sent to ({signed_region}).")
    return constraint


# ---- reading ---------------------------------------------------------------------------------

def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(first, last) inclusive for a `Range: bytes=...` header, or None for the whole object.
    A header S3 cannot read is ignored (the whole object), as S3 does; a range that starts
    past the end is InvalidRange (416)."""
    if not header:
        return None
    matched = re.fullmatch(r"\s*bytes=(\d*)-(\d*)\s*", header)
    if not matched or (not matched.group(1) and not matched.group(2)):
        return None
    first_text, last_text = matched.groups()
    if not first_text:
        suffix = int(last_text)
        if suffix == 0:
            raise _invalid_range(size)
        return (max(0, size - suffix), size - 1) if size else _raise_range(size)
    first = int(first_text)
    last = int(last_text) if last_text else size - 1
    if last_text and last < first:
        return None  # not a range S3 can read: the whole object
    if first >= size:
        raise _invalid_range(size)
    return first, min(last, size - 1)


def _invalid_range(size: int) -> ServiceError:
    return ServiceError("InvalidRange", "The requested range is not satisfiable", status=416,
                        ActualObjectSize=str(size))


def _raise_range(size: int) -> tuple[int, int]:
    raise _invalid_range(size)


def _etag_matches(header: str, etag: str) -> bool:
    wanted = {t.strip() for t in header.split(",")}
    return "*" in wanted or etag in wanted or etag.strip('"') in {w.strip('"') for w in wanted}


def check_conditions(etag: str, modified: dt.datetime, if_match: str | None,
                     if_none_match: str | None, if_modified_since: dt.datetime | None,
                     if_unmodified_since: dt.datetime | None, read: bool = True) -> None:
    """RFC 7232 as S3 applies it: If-Match wins over If-Unmodified-Since, If-None-Match over
    If-Modified-Since; a failed read condition is 304 Not Modified, a failed write one 412."""
    modified = modified.replace(microsecond=0)
    if if_match is not None:
        if not _etag_matches(if_match, etag):
            raise _precondition("If-Match")
    elif if_unmodified_since is not None and modified > if_unmodified_since:
        raise _precondition("If-Unmodified-Since")
    if if_none_match is not None:
        if _etag_matches(if_none_match, etag):
            if read:
                raise ServiceError("NotModified", "Not Modified", status=304)
            raise _precondition("If-None-Match")
    elif if_modified_since is not None and read and modified <= if_modified_since:
        raise ServiceError("NotModified", "Not Modified", status=304)


def _precondition(condition: str) -> ServiceError:
    return ServiceError("PreconditionFailed",
                        "At least one of the pre-conditions you specified did not hold",
                        status=412, Condition=condition)


# ---- multipart -------------------------------------------------------------------------------

def part_number(value: int) -> int:
    if not 1 <= value <= MAX_PARTS:
        raise ServiceError("InvalidArgument",
                           f"Part number must be an integer between 1 and {MAX_PARTS}, "
                           "inclusive", ArgumentName="partNumber", ArgumentValue=str(value))
    return value


def multipart_etag(part_etags: Iterable[str]) -> str:
    digests = [binascii.unhexlify(e.strip('"')) for e in part_etags]
    return f'"{hashlib.md5(b"".join(digests)).hexdigest()}-{len(digests)}"'


@dataclass(frozen=True)
class StoredPart:
    number: int
    etag: str
    size: int


def check_completion(asked: list[tuple[int, str]], stored: dict[int, StoredPart]
                     ) -> list[StoredPart]:
    """The parts CompleteMultipartUpload names, checked: ascending numbers, each uploaded
    with that ETag, every one but the last at least 5 MiB."""
    if not asked:
        raise ServiceError("MalformedXML", "The XML you provided was not well-formed or did "
                           "not validate against our published schema: it names no Part.")
    chosen: list[StoredPart] = []
    previous = 0
    for number, etag in asked:
        if number <= previous:
            raise ServiceError("InvalidPartOrder",
                               "The list of parts was not in ascending order. The parts list "
                               "must be specified in order by part number.")
        previous = number
        part = stored.get(number)
        if part is None or part.etag.strip('"') != etag.strip().strip('"'):
            raise ServiceError("InvalidPart",
                               "One or more of the specified parts could not be found. The "
                               "part may not have been uploaded, or the specified entity tag "
                               "may not match the part's entity tag.",
                               PartNumber=str(number), ETag=etag[:100])
        chosen.append(part)
    for part in chosen[:-1]:
        if part.size < MIN_PART_SIZE:
            raise ServiceError("EntityTooSmall",
                               "Your proposed upload is smaller than the minimum allowed size",
                               ProposedSize=str(part.size), MinSizeAllowed=str(MIN_PART_SIZE),
                               PartNumber=str(part.number), ETag=part.etag)
    return chosen


# ---- listing ---------------------------------------------------------------------------------

@dataclass
class Listing:
    keys: list[str] = field(default_factory=list)
    prefixes: list[str] = field(default_factory=list)
    truncated: bool = False
    last: str | None = None  # the last key or common prefix returned (where paging resumes)


def next_after(prefix: str) -> str:
    """The smallest string greater than every string that starts with `prefix`."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


def walk(keys_from: Callable[[str, bool], Iterable[str]], prefix: str, delimiter: str,
         start: str, max_keys: int) -> Listing:
    """ListObjects over keys in byte order. `keys_from(bound, inclusive)` yields the keys
    from `bound` on; `start` is the key or common prefix after which to begin."""
    listing = Listing()
    # After `start` itself, even when it is the prefix: a key equal to the prefix (a console
    # "folder" object) that ended the last page must not be listed again.
    bound, inclusive = (start, False) if start and start >= prefix else (prefix, True)
    if (delimiter and start.endswith(delimiter) and start.startswith(prefix)
            and len(start) > len(prefix)):
        # Resume after a common prefix. `start` equal to the prefix is no common prefix of
        # this listing (those are longer): it is a key, and the keys under it still follow.
        bound, inclusive = next_after(start), True
    while True:
        advanced = False
        for key in keys_from(bound, inclusive):
            if not key.startswith(prefix):
                return listing
            if len(listing.keys) + len(listing.prefixes) >= max_keys:
                listing.truncated = True
                return listing
            rest = key[len(prefix):]
            cut = rest.find(delimiter) if delimiter else -1
            if cut >= 0:
                common = prefix + rest[: cut + len(delimiter)]
                listing.prefixes.append(common)
                listing.last = common
                bound, inclusive = next_after(common), True
                advanced = True
                break  # ask again past every key under this prefix
            listing.keys.append(key)
            listing.last = key
        if not advanced:
            return listing


def encode_token(last: str) -> str:
    return base64.urlsafe_b64encode(last.encode("utf-8", "surrogatepass")).decode("ascii")


def decode_token(token: str) -> str:
    try:
        # validate: urlsafe_b64decode drops characters outside the alphabet, so "***" would
        # be an empty token, a listing from the start, not the InvalidArgument S3 answers.
        return base64.b64decode(token.encode("ascii"), altchars=b"-_",
                                validate=True).decode("utf-8")
    except (ValueError, UnicodeError):
        raise ServiceError("InvalidArgument", "The continuation token provided is incorrect",
                           ArgumentName="continuation-token") from None
