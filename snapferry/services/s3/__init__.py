"""S3 (a subset): buckets, objects, multipart uploads, ACLs, ownership controls and bucket
policies, served on the same port as everything else (wire/restxml.py)."""

from __future__ import annotations

from snapferry.services.context import Service
from snapferry.services.s3 import buckets, multipart, objects
from snapferry.services.s3.common import access_denied

SERVICE = Service(
    name="s3",
    iam_prefix="s3",
    handlers={**buckets.HANDLERS, **objects.HANDLERS, **multipart.HANDLERS},
    access_denied=access_denied,
)
