"""Signers the tests need beyond botocore's own, built from botocore's."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from botocore.auth import SigV4QueryAuth
from botocore.awsrequest import AWSRequest


class NoExpiresQueryAuth(SigV4QueryAuth):
    """botocore's query signer without X-Amz-Expires, as the Go SDKs presign CopySnapshot."""

    def _modify_request_before_signing(self, request: AWSRequest) -> None:
        super()._modify_request_before_signing(request)
        query = [(k, v) for k, v in parse_qsl(urlsplit(request.url).query)
                 if k != "X-Amz-Expires"]
        request.url = urlunsplit(urlsplit(request.url)._replace(query=urlencode(query)))
