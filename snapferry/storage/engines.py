"""What an engine outage looks like, whichever engine: the database or the block store down,
restarting or unreachable. Such errors are nobody's fault in particular and pass: a copy is
handed back to be resumed, a request is answered 503 so the SDK retries it."""

from __future__ import annotations


def unavailable(error: BaseException) -> bool:
    from botocore.exceptions import (
        ConnectionClosedError,
        ConnectTimeoutError,
        EndpointConnectionError,
        ReadTimeoutError,
    )
    from sqlalchemy.exc import DBAPIError, OperationalError
    from urllib3.exceptions import HTTPError as Urllib3Error

    if isinstance(error, OperationalError):
        return True
    if isinstance(error, DBAPIError) and error.connection_invalidated:
        return True
    if isinstance(error, EndpointConnectionError | ConnectionClosedError |
                  ConnectTimeoutError | ReadTimeoutError | Urllib3Error):
        return True
    response = getattr(error, "response", None)
    if isinstance(response, dict):  # botocore ClientError: the store answered 5xx
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return isinstance(status, int) and status >= 500
    return False
