"""The prediction API against its OpenAPI document, lambda_src/openapi.json.

Schemathesis derives requests from the document — its examples, the boundaries of every
constraint (20,000 and 20,001 characters, an empty body, a missing or foreign content type, ...)
and random valid and invalid bodies — and sends each over HTTP to `sentiment up`, whose API
emulator hands it to the unmodified Lambda handler, which asks a tiny trained model. Every answer
must carry a status the document lists for the operation, in the documented shape: valid input
is scored, invalid input is refused with a documented 4xx, and nothing is a 5xx or slower than
the request timeout. The run is derandomized and bounded, so CI sends the same requests each time.
"""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import jsonschema_rs
import pytest
import schemathesis
from local_stack_harness import RunningStack, start_stack, train_tiny_model
from schemathesis.core.failures import FailureGroup, ServerError
from schemathesis.openapi.checks import UndefinedStatusCode

from contract.layout import PROJECT_ROOT
from lambda_src.prediction.errors import ApiError
from lambda_src.prediction.request import parse_prediction_request
from lambda_src.prediction.settings import DEFAULT_MAX_REVIEW_CHARS
from sentiment import api_emulator

TEXT = "text/plain"
OPENAPI_PATH = PROJECT_ROOT / "lambda_src" / "openapi.json"
OPENAPI = json.loads(OPENAPI_PATH.read_text(encoding="utf-8"))
PREDICT = OPENAPI["paths"]["/predict"]["post"]
FEEDBACK = OPENAPI["paths"]["/feedback"]["post"]


def client_errors(operation: dict[str, Any]) -> list[str]:
    return sorted(status for status in operation["responses"] if status < "5")


# Seconds: the tiny model answers in milliseconds, so a request this slow is a hang.
REQUEST_TIMEOUT = 10
CONTRACT = {
    "request-timeout": REQUEST_TIMEOUT,
    "generation": {
        "mode": "all",
        "max-examples": 100,
        "deterministic": True,
        # Nothing replayed from a local .hypothesis directory: CI and a laptop send the same.
        "database": "none",
    },
    "phases": {"stateful": {"enabled": False}},
    "checks": {
        # Valid input must be scored (or the preflight answered): never refused, never a 5xx.
        "positive_data_acceptance": {"expected-statuses": ["2xx"]},
        # Invalid input must get one of the client errors the document lists, no other status.
        "negative_data_rejection": {"expected-statuses": client_errors(PREDICT)},
        # Other methods on /predict never reach the API this document describes: API Gateway
        # answers them itself with 403 "Missing Authentication Token", as a REST API does
        # (tests/test_local_stack.py checks that), not with the 405 this check wants.
        "unsupported_method": {"enabled": False},
    },
    "operations": [
        {
            "include-path": "/feedback",
            "checks": {
                # A well-formed id the API never issued names no prediction: 404 is the
                # documented answer to valid input (the local-stack tests give feedback on
                # real verdicts).
                "positive_data_acceptance": {"expected-statuses": ["2xx", "404"]},
                "negative_data_rejection": {"expected-statuses": client_errors(FEEDBACK)},
            },
        }
    ],
}

schema = schemathesis.openapi.from_path(
    OPENAPI_PATH, config=schemathesis.Config.from_dict(CONTRACT)
)


@pytest.fixture(scope="module")
def stack(prepared_imdb: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    model = train_tiny_model(prepared_imdb, tmp_path_factory.mktemp("model") / "model", seed=5)
    running = start_stack(model)
    yield running
    assert running.stop() == 0


@pytest.fixture(scope="module")
def base_url(stack: RunningStack) -> str:
    return stack.api_url.removesuffix("/predict")


@pytest.mark.slow
@schema.parametrize()
def test_every_generated_request_gets_a_documented_answer(case: Any, base_url: str) -> None:
    response = case.call_and_validate(base_url=base_url)

    assert response.status_code < 500, response.text
    assert "Traceback" not in response.text


# --- the checks can fail ----------------------------------------------------------------------


@pytest.mark.slow
def test_a_status_the_document_does_not_list_fails_the_contract(base_url: str) -> None:
    document = copy.deepcopy(OPENAPI)
    del document["paths"]["/predict"]["post"]["responses"]["413"]
    doctored = schemathesis.openapi.from_dict(
        document, config=schemathesis.Config.from_dict(CONTRACT)
    )
    too_long = {"review": "x" * (DEFAULT_MAX_REVIEW_CHARS + 1)}
    case = doctored["/predict"]["POST"].Case(body=too_long, media_type="application/json")

    with pytest.raises(FailureGroup) as caught:
        case.call_and_validate(base_url=base_url)

    [failure] = caught.value.exceptions
    assert isinstance(failure, UndefinedStatusCode) and failure.status_code == 413


def test_a_documented_server_error_still_fails_the_contract() -> None:
    case = schema["/predict"]["POST"].Case(body={"review": "Fine."}, media_type="application/json")
    request = httpx.Request("POST", "http://127.0.0.1:9/predict", json=case.body)
    unavailable = httpx.Response(
        503,
        json={"error": {"code": "model_unreachable", "message": "Try again."}},
        headers={"Retry-After": "1"},
        request=request,
    )
    unavailable.elapsed = timedelta(milliseconds=5)

    with pytest.raises(FailureGroup) as caught:
        case.validate_response(unavailable)

    assert [type(failure) for failure in caught.value.exceptions] == [ServerError]


def test_the_gateways_own_413_for_a_body_over_its_quota_is_the_documented_one() -> None:
    def function(event: Any, context: Any) -> dict:
        raise AssertionError("API Gateway refuses such a body before the function runs")

    async def send() -> httpx.Response:
        transport = httpx.ASGITransport(app=api_emulator.create_app("*", function))
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            body = b"x" * (api_emulator.MAX_BODY_BYTES + 1)
            return await client.post("/predict", content=body, headers={"Content-Type": TEXT})

    answered = asyncio.run(send())
    case = schema["/predict"]["POST"].Case(body="Fine.", media_type=TEXT)
    response = httpx.Response(
        answered.status_code,
        content=answered.content,
        headers=answered.headers,
        request=httpx.Request("POST", "http://127.0.0.1:9/predict", content=b"Fine."),
    )
    response.elapsed = timedelta(milliseconds=5)

    assert response.status_code == 413
    assert response.json() == {"message": "Request Too Long"}
    case.validate_response(response)  # raises a FailureGroup on any failed check


# --- the document and the handler agree -------------------------------------------------------


def test_the_documented_review_text_is_exactly_what_the_handler_accepts() -> None:
    """One character at a time, over the whole Basic Multilingual Plane (no other plane holds
    whitespace): the pattern read as ECMA-262, as JSON Schema validators read it, must accept
    exactly what the handler scores rather than refusing as an empty review."""
    documented = jsonschema_rs.validator_for(OPENAPI["components"]["schemas"]["ReviewText"])
    disagreements = []
    for code_point in range(0x10000):
        if 0xD800 <= code_point <= 0xDFFF:  # surrogates are not text
            continue
        review = chr(code_point)
        event = {"headers": {"Content-Type": "text/plain"}, "body": review}
        try:
            accepted = parse_prediction_request(event, DEFAULT_MAX_REVIEW_CHARS).review == review
        except ApiError as error:
            assert error.code == "empty_review"
            accepted = False
        if accepted != documented.is_valid(review):
            disagreements.append(f"U+{code_point:04X}")

    assert disagreements == []


def test_the_documented_explain_values_are_exactly_what_the_handler_accepts() -> None:
    """The body's member and the query parameter: what the document allows is scored (and
    explained when true), anything else is the documented 400 invalid_explain."""
    documented = jsonschema_rs.validator_for(
        OPENAPI["components"]["schemas"]["ReviewRequest"]["properties"]["explain"]
    )
    for member in (True, False, "true", "false", 1, 0, None, [], {}, 1.0):
        body = json.dumps({"review": "Fine.", "explain": member})
        event = {"headers": {"Content-Type": "application/json"}, "body": body}
        try:
            explain = parse_prediction_request(event, DEFAULT_MAX_REVIEW_CHARS).explain
        except ApiError as error:
            assert error.code == "invalid_explain", member
            assert not documented.is_valid(member), member
        else:
            assert documented.is_valid(member) and explain is member, member
    (parameter,) = PREDICT["parameters"]
    assert (parameter["name"], parameter["in"], parameter["schema"]["type"]) == (
        "explain",
        "query",
        "boolean",
    )
    # A query string is text: a boolean parameter is sent as true or false (as Schemathesis
    # and every OpenAPI client serialize it), and nothing else is one.
    for value in ("true", "false", "True", "1", "0", "yes", "", "null"):
        event = {
            "headers": {"Content-Type": TEXT},
            "body": "Fine.",
            "queryStringParameters": {"explain": value},
        }
        try:
            explain = parse_prediction_request(event, DEFAULT_MAX_REVIEW_CHARS).explain
        except ApiError as error:
            assert error.code == "invalid_explain" and value not in ("true", "false"), value
        else:
            assert explain is (value == "true") and value in ("true", "false"), value


def test_an_explained_answer_is_the_documented_one() -> None:
    """The document's example of an explained verdict passes Schemathesis's own checks on an
    answer (schema conformance with OpenAPI 3.0's nullable contributions, headers, status)."""
    examples = PREDICT["requestBody"]["content"]["application/json"]["examples"]
    case = schema["/predict"]["POST"].Case(
        body=examples["explained"]["value"], media_type="application/json"
    )
    answer = PREDICT["responses"]["200"]["content"]["application/json"]["examples"]["explained"]
    response = httpx.Response(
        200,
        json=answer["value"],
        headers={"Access-Control-Allow-Origin": "*"},
        request=httpx.Request("POST", "http://127.0.0.1:9/predict", json=case.body),
    )
    response.elapsed = timedelta(milliseconds=5)

    case.validate_response(response)  # raises a FailureGroup on any failed check

    malformed = dict(answer["value"])
    malformed["explanation"] = {**malformed["explanation"], "words": [{"start": 0}]}
    broken = httpx.Response(200, json=malformed, request=response.request)
    broken.elapsed = response.elapsed
    with pytest.raises(FailureGroup):
        case.validate_response(broken)
