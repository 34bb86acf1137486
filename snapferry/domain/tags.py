"""EC2 tags: the limits on keys and values, TagSpecifications, and DeleteTags' value rules."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from snapferry.errors import ServiceError

MAX_TAGS = 50
MAX_KEY = 127
MAX_VALUE = 256
RESERVED_PREFIX = "aws:"


def check_tag(key: str | None, value: str | None) -> tuple[str, str]:
    if not key or key.lower().startswith(RESERVED_PREFIX):
        raise ServiceError(
            "InvalidTagKey.Malformed",
            "Tag keys cannot be empty or null, and cannot start with aws:"
            + (f" (got '{key[:MAX_KEY]}')." if key else "."),
        )
    if len(key) > MAX_KEY:
        raise ServiceError(
            "InvalidParameterValue", f"Tag key '{key[:40]}...' is longer than {MAX_KEY} characters."
        )
    value = value or ""
    if len(value) > MAX_VALUE:
        raise ServiceError(
            "InvalidParameterValue",
            f"The value of tag '{key}' is longer than {MAX_VALUE} characters.",
        )
    return key, value


def tags_from_list(items: list[dict[str, Any]] | None) -> dict[str, str]:
    """[{Key, Value}] as a dict, each tag checked; a key given twice keeps its last value."""
    tags: dict[str, str] = {}
    for item in items or ():
        key, value = check_tag(item.get("Key"), item.get("Value"))
        tags[key] = value
    if len(tags) > MAX_TAGS:
        raise ServiceError(
            "TagLimitExceeded", f"A resource can have at most {MAX_TAGS} tags; {len(tags)} given."
        )
    return tags


def tags_for(specifications: list[dict[str, Any]] | None, resource_type: str) -> dict[str, str]:
    """The tags TagSpecifications give a new resource of `resource_type`."""
    tags: dict[str, str] = {}
    for spec in specifications or ():
        given = spec.get("ResourceType")
        if not given:
            raise ServiceError(
                "InvalidParameterValue", "Tag specification resource type must have a value."
            )
        if given != resource_type:
            raise ServiceError(
                "InvalidParameterValue",
                f"'{given}' is not a valid taggable resource type for this operation; "
                f"use '{resource_type}'.",
            )
        tags.update(tags_from_list(spec.get("Tags")))
    if len(tags) > MAX_TAGS:
        raise ServiceError("TagLimitExceeded", f"A resource can have at most {MAX_TAGS} tags.")
    return tags


def as_list(tags: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"Key": key, "Value": value} for key, value in sorted(tags.items())]


def keys_to_delete(current: Mapping[str, str], requested: list[dict[str, Any]] | None) -> list[str]:
    """DeleteTags: no tags named deletes every tag; a key alone deletes it whatever its value;
    a key with a Value (even "") deletes it only when the value matches."""
    if not requested:
        return list(current)
    doomed = []
    for item in requested:
        key = item.get("Key")
        if not key or key.lower().startswith(RESERVED_PREFIX):
            raise ServiceError(
                "InvalidTagKey.Malformed",
                "Tag keys cannot be empty or null, and cannot start with aws:",
            )
        if key in current and ("Value" not in item or item["Value"] == current[key]):
            doomed.append(key)
    return doomed
