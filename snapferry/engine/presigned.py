"""CopySnapshot's PresignedUrl, checked as AWS documents it: a SigV4-presigned GET of
CopySnapshot for the source region, signed by a key of the calling account, unexpired,
naming the same SourceRegion, SourceSnapshotId and DestinationRegion as the copy."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from urllib.parse import urlsplit

from snapferry.domain.accounts import AccessKey
from snapferry.domain.copies import CopyFailed, CopyJob
from snapferry.wire import sigv4
from snapferry.wire.http import IncomingRequest


def check_presigned_url(job: CopyJob, find_key: Callable[[str], AccessKey | None],
                        now: dt.datetime) -> None:
    """Raise CopyFailed saying what is wrong with the job's PresignedUrl, if anything."""
    if not job.presigned_url:
        return
    url = urlsplit(job.presigned_url)
    request = IncomingRequest(method="GET", raw_path=url.path or "/", raw_query=url.query,
                              headers={"host": [url.netloc]}, body=b"")
    try:
        signed = sigv4.read_signature(request)
    except sigv4.AuthenticationError as problem:
        raise CopyFailed(
            f"The PresignedUrl is not a valid presigned URL: {problem.message}") from None
    if signed is None or not signed.presigned:
        raise CopyFailed("The PresignedUrl is not signed: it must be a SigV4 presigned URL.")
    query = request.query
    expected = {"Action": "CopySnapshot", "SourceRegion": job.source_region,
                "SourceSnapshotId": job.source_snapshot_id, "DestinationRegion": job.dest_region}
    for name, value in expected.items():
        if query.get(name) != value:
            raise CopyFailed(f"The PresignedUrl names {name}={query.get(name)!r}, but the copy "
                             f"needs {value!r}.")
    if signed.scope.service != "ec2" or signed.scope.region != job.source_region:
        raise CopyFailed(f"The PresignedUrl must be signed for ec2 in the source region "
                         f"{job.source_region}, not {signed.scope.service} in "
                         f"{signed.scope.region}.")
    key = find_key(signed.scope.access_key_id)
    if key is None or key.account_id != job.account_id:
        raise CopyFailed("The PresignedUrl is not signed by a key of the copying account.")
    try:
        sigv4.verify(request, signed, lambda _: key.secret_access_key, now)
    except sigv4.AuthenticationError as problem:
        reason = ("it has expired" if problem.problem.name == "EXPIRED"
                  else f"its signature does not verify ({problem.message})")
        raise CopyFailed(f"The PresignedUrl cannot be used: {reason}.") from None
