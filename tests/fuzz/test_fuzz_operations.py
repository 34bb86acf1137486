"""Every served operation, fuzzed through a real botocore client with its parameter
validation off, against the real server: valid shapes (tests/unit/shape_strategies.py) and
hostile ones (hostile.py). Every request is answered, within a bound, never with a 5xx."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from botocore.model import OperationModel
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from snapferry.services import SERVICES
from snapferry.testing import ServerProcess
from snapferry.wire.models import service_model
from tests.fuzz.conftest import ANSWERED_WITHIN, EXAMPLES, count
from tests.fuzz.hostile import hostile_input
from tests.unit.shape_strategies import input_value

UNCHECKED = Config(parameter_validation=False, retries={"max_attempts": 1, "mode": "standard"},
                   connect_timeout=5, read_timeout=ANSWERED_WITHIN)
OPERATIONS = sorted((service, name) for service, served in SERVICES.items()
                    for name in served.handlers)
_clients: dict[tuple[str, str], Any] = {}


def client(server: ServerProcess, service: str) -> Any:
    key = (server.url, service)
    if key not in _clients:
        made = boto3.client(service, region_name="us-east-1", endpoint_url=server.url,
                            aws_access_key_id="test", aws_secret_access_key="test",
                            config=UNCHECKED)
        made.meta.events.register("after-call", _tally)
        made.meta.events.register("before-send", _sending)
        _clients[key] = made
    return _clients[key]


SENT: list[bool] = [False]


def _sending(**_: Any) -> None:
    SENT[0] = True


def _refused_before_writing(error: Exception) -> bool:
    """http.client refusing a header it cannot write (a metadata key `:`, a newline in a
    value): raised after before-send, but nothing reached the server."""
    cause = getattr(error, "kwargs", {}).get("error")
    return isinstance(cause, ValueError) and str(cause).startswith("Invalid header")


def _tally(http_response: Any, **_: Any) -> None:
    count(http_response.status_code)


def params_for(operation: OperationModel, service: str) -> st.SearchStrategy[dict]:
    json_body = service_model(service).metadata["protocol"] in ("json", "rest-json")
    return st.one_of(input_value(operation), hostile_input(operation, json_body))


@pytest.mark.parametrize("service,name", OPERATIONS)
def test_no_input_gets_a_5xx(fuzz_server: ServerProcess, service: str, name: str) -> None:
    operation = service_model(service).operation_model(name)
    caller = client(fuzz_server, service)

    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              derandomize=EXAMPLES < 50,  # `make test`: the same cases every run
              suppress_health_check=list(HealthCheck))
    @given(params=params_for(operation, service))
    def call(params: dict[str, Any]) -> None:
        SENT[0] = False
        try:
            caller._make_api_call(name, params)
        except ClientError as error:
            status = error.response["ResponseMetadata"]["HTTPStatusCode"]
            assert status < 500, (name, params, error.response["Error"])
        except Exception as error:
            # botocore may fail to serialize what its validation would have refused (a
            # missing URI label, a surrogate in a URL); anything after sending is ours:
            # a timeout, a dropped connection, a response it cannot parse.
            if SENT[0] and not _refused_before_writing(error):
                raise

    call()
