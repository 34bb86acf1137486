"""Raw HTTP for the requests boto3 would never send: unsigned, garbage, oversized."""

from __future__ import annotations

import urllib.error
import urllib.request
from dataclasses import dataclass

import botocore.session
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials


@dataclass
class RawResponse:
    status: int
    body: bytes
    headers: dict[str, str]


def send(url: str, body: bytes = b"", headers: dict[str, str] | None = None,
         method: str = "POST") -> RawResponse:
    request = urllib.request.Request(url, data=body if method != "GET" else None,
                                     headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return RawResponse(response.status, response.read(), dict(response.headers))
    except urllib.error.HTTPError as error:
        return RawResponse(error.code, error.read(), dict(error.headers))


def signed(url: str, body: bytes, service: str = "ec2", region: str = "us-east-1",
           key: str = "test", secret: str = "test",
           content_type: str = "application/x-www-form-urlencoded; charset=utf-8",
           extra_headers: dict[str, str] | None = None) -> RawResponse:
    """POST `body` signed with SigV4 exactly as botocore signs, then sent as is."""
    request = AWSRequest(method="POST", url=url, data=body,
                         headers={"Content-Type": content_type, **(extra_headers or {})})
    SigV4Auth(Credentials(key, secret), service, region).add_auth(request)
    prepared = request.prepare()
    return send(prepared.url, body, dict(prepared.headers))


def error_code(response: RawResponse) -> str:
    """The <Code> of an XML error envelope, or the __type / x-amzn-ErrorType of a JSON one."""
    text = response.body.decode()
    if "<Code>" in text:
        return text.split("<Code>", 1)[1].split("</Code>", 1)[0]
    return response.headers.get("x-amzn-ErrorType", "")


def session() -> botocore.session.Session:
    return botocore.session.get_session()
