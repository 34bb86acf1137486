"""CopySnapshot's PresignedUrl, checked as AWS documents it: a SigV4-presigned CopySnapshot
for the source region, signed by a key of the calling account, unexpired when the copy was
requested, naming the same SourceRegion, SourceSnapshotId and DestinationRegion as the copy.

Each SDK builds this URL its own way, and the signature is checked over the URL as its
signer built it:
- botocore signs a POST and sends the URL to be fetched with GET (sigv4.verify takes both);
- the JavaScript SDK v3 signs `host` as the endpoint's hostname without its port, then
  writes the port back into the URL, and puts every input member in the query
  (`Encrypted=true`, ...); the scheme is never signed, so `https://` there means nothing;
- the Go SDKs sign `host` with its port and leave out X-Amz-Expires (sigv4 then allows the
  15-minute clock-skew window after X-Amz-Date).
Any other change to the URL (a parameter, the path, the credential) breaks the signature.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit

from snapferry.domain.accounts import AccessKey
from snapferry.domain.copies import CopyFailed, CopyJob
from snapferry.wire import sigv4
from snapferry.wire.http import IncomingRequest
from snapferry.wire.protocol import AuthProblem


def check_presigned_url(job: CopyJob, find_key: Callable[[str], AccessKey | None]) -> None:
    """Raise CopyFailed saying what is wrong with the job's PresignedUrl, if anything.

    Expiry is judged at the time the copy was requested (the job's `created_at`), not when
    a worker gets to it: a long queue must not fail a copy that was valid when asked for.
    """
    if not job.presigned_url:
        return
    try:
        url = urlsplit(job.presigned_url)
        port = url.port
    except ValueError:
        raise CopyFailed("The PresignedUrl is not a valid URL.") from None
    requests = [
        IncomingRequest(method="GET", raw_path=url.path or "/", raw_query=url.query,
                        headers={"host": [host]}, body=b"")
        for host in _signed_host_forms(url.hostname or "", port)
    ]
    request = requests[0]
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
    problem = None
    for candidate in requests:
        try:
            sigv4.verify(candidate, signed, lambda _: key.secret_access_key, job.created_at)
            return
        except sigv4.AuthenticationError as refused:
            problem = refused
    assert problem is not None
    reason = ("it had expired when the copy was requested"
              if problem.problem is AuthProblem.EXPIRED
              else f"its signature does not verify ({problem.message})")
    raise CopyFailed(f"The PresignedUrl cannot be used: {reason}.")


def _signed_host_forms(hostname: str, port: int | None) -> list[str]:
    """The `host` values a signer may have signed for this URL: with its port, as most SDKs
    sign, and without it, as the JavaScript SDK v3 does."""
    host = f"[{hostname}]" if ":" in hostname else hostname  # an IPv6 literal
    if port is None:
        return [host]
    return [f"{host}:{port}", host]
