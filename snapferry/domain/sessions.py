"""STS sessions' rules: session names, durations, session policies and session tags."""

from __future__ import annotations

import json
import re

from snapferry.domain.policy_documents import SESSION_POLICY_MAX, Kind, parse_document
from snapferry.errors import ServiceError

ROLE_DURATION_MIN = 900
CHAINED_MAX = 3600  # a role assumed with a role's session lasts at most an hour
TOKEN_DURATION = (900, 129600)
TOKEN_DEFAULT, ROOT_TOKEN_MAX = 43200, 3600
MAX_SESSION_TAGS = 50
PACKED_LIMIT = 2048  # our measure of AWS's packed policy and tags limit

_SESSION_NAME = re.compile(r"[\w+=,.@-]{2,64}")


def validation(message: str) -> ServiceError:
    return ServiceError("ValidationError", message, 400)


def check_session_name(name: str) -> str:
    if not _SESSION_NAME.fullmatch(name):
        raise validation(f"1 validation error detected: Value '{name[:100]}' at "
                         "'roleSessionName' failed to satisfy constraint: Member must satisfy "
                         "regular expression pattern: [\\w+=,.@-]* (2 to 64 characters)")
    return name


def check_duration(seconds: int | None, max_session: int, chained: bool) -> int:
    """AssumeRole's DurationSeconds: 900 up to the role's MaxSessionDuration (an hour when
    a role's session assumes a role: role chaining)."""
    seconds = 3600 if seconds is None else seconds
    if seconds < ROLE_DURATION_MIN:
        raise validation(f"1 validation error detected: Value '{seconds}' at "
                         "'durationSeconds' failed to satisfy constraint: Member must have "
                         "value greater than or equal to 900")
    if chained and seconds > CHAINED_MAX:
        raise validation("The requested DurationSeconds exceeds the 1 hour session limit for "
                         "roles assumed by role chaining.")
    if seconds > max_session:
        raise validation("The requested DurationSeconds exceeds the MaxSessionDuration set "
                         "for this role.")
    return seconds


def check_token_duration(seconds: int | None, root: bool) -> int:
    low, high = TOKEN_DURATION
    high = ROOT_TOKEN_MAX if root else high
    seconds = (ROOT_TOKEN_MAX if root else TOKEN_DEFAULT) if seconds is None else seconds
    if not low <= seconds <= high:
        raise validation(f"DurationSeconds must be {low} to {high} seconds for "
                         f"{'an account root' if root else 'an IAM user'}, not {seconds}.")
    return seconds


def session_tags(items: list[dict[str, str]] | None) -> dict[str, str]:
    tags = {t["Key"]: t["Value"] for t in items or ()}
    if len(tags) > MAX_SESSION_TAGS:
        raise validation(f"A session has at most {MAX_SESSION_TAGS} session tags.")
    if any(k.lower().startswith("aws:") for k in tags):
        raise validation("Session tag keys beginning with aws: are reserved.")
    if len({k.lower() for k in tags}) != len(tags):
        raise validation("Duplicate tag keys found. Please note that Tag keys are "
                         "case insensitive.")
    return tags


def session_policy_texts(policy: str | None, documents: list[str | None],
                         arns: list[str | None]) -> list[str] | None:
    """The session policies (inline Policy, then PolicyArns' default versions), checked;
    None when the request gave none (then nothing caps the session)."""
    if policy is None and not arns:
        return None
    texts = []
    if policy is not None:
        parse_document(policy, Kind.SESSION, "session-policy", SESSION_POLICY_MAX)
        texts.append(policy)
    for arn, document in zip(arns, documents, strict=True):
        if document is None:
            raise ServiceError("InvalidParameterValue",
                               f"The policy {arn} does not exist or is not attachable.")
        texts.append(document)
    return texts


def packed_size(texts: list[str] | None, tags: dict[str, str]) -> int:
    """The percentage of the packed-size limit the session policies and tags use."""
    size = sum(len("".join(t.split())) for t in texts or ()) + len(json.dumps(tags))
    if size > PACKED_LIMIT * 3:
        raise ServiceError("PackedPolicyTooLarge", "The session policies and session tags "
                           "packed together exceed the allowed size.")
    return min(100, size * 100 // (PACKED_LIMIT * 3))
