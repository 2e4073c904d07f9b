"""The prediction Lambda: request parsing, the InvokeEndpoint call, error mapping, CORS and logs.

AWS answers come from botocore's Stubber; failures below the AWS API (timeouts, refused
connections) are raised where botocore's HTTP layer raises them, and a few tests talk real HTTP to
a loopback server so the client's timeouts and botocore's ModelError parsing are exercised for real.
"""

from __future__ import annotations

import base64
import io
import json
import math
import os
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import jsonschema_rs
import pytest
from botocore.exceptions import (
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)
from botocore.response import StreamingBody
from botocore.stub import Stubber

from contract.capture import decoded, read_records
from contract.drift_sources import answered_reviews
from contract.explanation import METHOD, STATUSES
from lambda_src.prediction import capture, endpoint
from lambda_src.prediction import handler as entry_point
from lambda_src.prediction.settings import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_MAX_REVIEW_CHARS,
    DEFAULT_READ_TIMEOUT,
    load_settings,
)

ENDPOINT = "imdb-sentiment-endpoint"
SITE = "https://d111111abcdef8.cloudfront.net"
OPENAPI = json.loads((Path(endpoint.__file__).parent.parent / "openapi.json").read_text())
CONTEXT = SimpleNamespace(aws_request_id="lambda-request-1")
API_REQUEST_ID = "c6af9ac6-7b61-11e6-9a41-93e8deadbeef"


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.setenv("ENDPOINT_NAME", ENDPOINT)
    monkeypatch.setenv("ALLOWED_ORIGIN", SITE)
    for name in ("MAX_REVIEW_CHARS", "SAGEMAKER_CONNECT_TIMEOUT", "SAGEMAKER_READ_TIMEOUT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("SAGEMAKER_MAX_ATTEMPTS", raising=False)
    for name in ("CAPTURE_DESTINATION", "CAPTURE_PERCENT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(capture, "_captures", {})
    # Every test gets the client a fresh container would create from its environment.
    monkeypatch.setattr(endpoint, "_client", None)


@pytest.fixture
def client() -> Any:
    return endpoint.runtime_client(load_settings(os.environ))


@pytest.fixture
def stub(client: Any) -> Iterator[Stubber]:
    with Stubber(client) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    handler = entry_point._logger.handlers[0]
    buffer = io.StringIO()
    original = handler.setStream(buffer)
    yield buffer
    handler.setStream(original)


def event(
    body: str | bytes | None,
    content_type: str | None = "application/json",
    base64_encoded: bool = False,
) -> dict[str, Any]:
    """A REST API (payload format 1.0) proxy event as API Gateway sends it."""
    if isinstance(body, bytes) or base64_encoded:
        raw = body if isinstance(body, bytes) else (body or "").encode()
        body, base64_encoded = base64.b64encode(raw).decode("ascii"), True
    return {
        "resource": "/predict",
        "path": "/predict",
        "httpMethod": "POST",
        "headers": {"Content-Type": content_type} if content_type is not None else None,
        "body": body,
        "isBase64Encoded": base64_encoded,
        "requestContext": {"requestId": API_REQUEST_ID, "stage": "prod"},
    }


def review_event(review: str) -> dict[str, Any]:
    return event(json.dumps({"review": review}))


def with_query(request: dict[str, Any], **parameters: str | list[str]) -> dict[str, Any]:
    """``request`` with query parameters, as API Gateway puts them in a proxy event: the last
    of each name alone, and every value."""
    every = {
        name: value if isinstance(value, list) else [value] for name, value in parameters.items()
    }
    return {
        **request,
        "queryStringParameters": {name: values[-1] for name, values in every.items()},
        "multiValueQueryStringParameters": every,
    }


def documented(name: str) -> Any:
    """A validator for a schema of the OpenAPI document, read as JSON Schema: OpenAPI 3.0's
    ``nullable`` becomes a null type, and $refs resolve within the document."""

    def plain(node: Any) -> Any:
        if isinstance(node, dict):
            node = {key: plain(value) for key, value in node.items()}
            if node.pop("nullable", False):
                node["type"] = [node["type"], "null"]
            return node
        return [plain(item) for item in node] if isinstance(node, list) else node

    return jsonschema_rs.validator_for(
        {"$ref": f"#/components/schemas/{name}", "components": plain(OPENAPI["components"])}
    )


VERDICT_SCHEMA = documented("Verdict")
ERROR_SCHEMA = documented("Error")


class Kept:
    """Matches any parameter, keeping what it was compared with."""

    value: Any = None

    def __eq__(self, other: object) -> bool:
        self.value = other
        return True


class JsonBody:
    """Matches the InvokeEndpoint Body whatever its exact serialization."""

    def __init__(self, expected: Any) -> None:
        self.expected = expected

    def __eq__(self, other: object) -> bool:
        return isinstance(other, bytes) and json.loads(other) == self.expected

    def __repr__(self) -> str:
        return f"JsonBody({self.expected!r})"


def expect_invocation(
    stub: Stubber,
    review: str,
    answer: bytes,
    inference_id: str = API_REQUEST_ID,
    explain: bool = False,
    body: Any = None,
) -> None:
    """The endpoint's answer to one invocation, which must send `body` (by default the JSON
    of the review, explain included when asked)."""
    asked = {"review": review, "explain": True} if explain else {"review": review}
    stub.add_response(
        "invoke_endpoint",
        {"Body": StreamingBody(io.BytesIO(answer), len(answer)), "ContentType": "application/json"},
        {
            "EndpointName": ENDPOINT,
            "ContentType": "application/json",
            "Accept": "application/json",
            "Body": JsonBody(asked) if body is None else body,
            "InferenceId": inference_id,
        },
    )


def call(request: dict[str, Any]) -> tuple[int, dict[str, str], Any]:
    """Invoke the handler and check the answer is one the OpenAPI document promises."""
    response = entry_point.handler(request, CONTEXT)
    status, headers = response["statusCode"], response["headers"]
    body = json.loads(response["body"]) if response["body"] else None
    assert response["isBase64Encoded"] is False
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Cache-Control"] == "no-store"
    assert headers["Vary"] == "Origin"
    operation = OPENAPI["paths"]["/predict"]["post"]
    assert str(status) in operation["responses"], f"undocumented status {status}"
    if status == 200:
        VERDICT_SCHEMA.validate(body)
        # The id to give feedback by: API Gateway's request id, sent to the endpoint too.
        assert body.pop("prediction_id") == request["requestContext"]["requestId"]
        assert body["sentiment"] in ("positive", "negative")
        assert 0.0 <= body["score"] <= 1.0
        assert isinstance(body.get("low_confidence", False), bool)
    elif status >= 400:
        ERROR_SCHEMA.validate(body)
        assert set(body) == {"error"}
        assert set(body["error"]) == {"code", "message"}
        assert all(isinstance(value, str) and value for value in body["error"].values())
    return status, headers, body


# --- success --------------------------------------------------------------------------------


def test_json_review_is_scored_by_the_endpoint(stub: Stubber) -> None:
    expect_invocation(stub, "A superb film.", b'{"sentiment": "positive", "score": 0.93}')

    status, headers, body = call(review_event("A superb film."))

    assert status == 200
    assert body == {"sentiment": "positive", "score": 0.93}
    assert headers["Access-Control-Allow-Origin"] == SITE
    assert headers["Content-Type"] == "application/json"


@pytest.mark.parametrize(
    ("content_type", "base64_encoded"),
    [
        ("text/plain", False),
        ("text/plain; charset=UTF-8", False),
        ('TEXT/PLAIN;charset="utf-8"', True),
    ],
)
def test_plain_text_review_is_accepted(
    stub: Stubber, content_type: str, base64_encoded: bool
) -> None:
    review = "Ein großartiger Film — «superbe» 🎬"
    expect_invocation(stub, review, b'{"sentiment": "positive", "score": 0.8}')

    status, _, body = call(event(review, content_type, base64_encoded=base64_encoded))

    assert (status, body["sentiment"]) == (200, "positive")


def test_base64_encoded_json_body_is_decoded(stub: Stubber) -> None:
    expect_invocation(stub, "Dull.", b'{"sentiment": "negative", "score": 0.04}')

    status, _, body = call(event(json.dumps({"review": "Dull."}).encode()))

    assert (status, body) == (200, {"sentiment": "negative", "score": 0.04})


@pytest.mark.parametrize("low_confidence", [True, False])
def test_the_models_low_confidence_flag_is_passed_on_and_logged(
    stub: Stubber, log_lines: io.StringIO, low_confidence: bool
) -> None:
    answer = {"sentiment": "negative", "score": 0.45, "low_confidence": low_confidence}
    expect_invocation(stub, "Zzyzx qwerty.", json.dumps(answer).encode())

    status, _, body = call(review_event("Zzyzx qwerty."))

    assert (status, body) == (200, answer)
    assert json.loads(log_lines.getvalue())["low_confidence"] is low_confidence


def test_an_answer_without_the_flag_from_an_older_model_is_passed_on_without_it(
    stub: Stubber, log_lines: io.StringIO
) -> None:
    expect_invocation(stub, "Fine.", b'{"sentiment": "positive", "score": 0.8}')

    assert call(review_event("Fine."))[2] == {"sentiment": "positive", "score": 0.8}
    assert json.loads(log_lines.getvalue())["low_confidence"] is None


def test_the_version_rule_is_the_one_the_openapi_document_states() -> None:
    schema = OPENAPI["components"]["schemas"]["Verdict"]["properties"]["model_version"]
    assert schema["pattern"] == endpoint._MODEL_VERSION.pattern


def test_the_explanation_rules_are_the_ones_the_openapi_document_states() -> None:
    schemas = OPENAPI["components"]["schemas"]
    assert schemas["Explanation"]["properties"]["method"]["pattern"] == METHOD.pattern
    assert schemas["ExplainedWord"]["properties"]["status"]["enum"] == list(STATUSES)
    assert schemas["Explanation"]["required"] == ["logit", "base", "method", "words"]


def test_the_models_version_is_passed_on_and_logged(stub: Stubber, log_lines: io.StringIO) -> None:
    answer = {
        "sentiment": "positive",
        "score": 0.8,
        "low_confidence": False,
        "model_version": "3f9c2a71d04b8e65",
    }
    expect_invocation(stub, "Fine.", json.dumps(answer).encode())

    assert call(review_event("Fine."))[2] == answer
    assert json.loads(log_lines.getvalue())["model_version"] == "3f9c2a71d04b8e65"


def test_integer_score_from_the_model_is_accepted(stub: Stubber) -> None:
    expect_invocation(stub, "Perfect.", b'{"sentiment": "positive", "score": 1}')

    assert call(review_event("Perfect."))[2] == {"sentiment": "positive", "score": 1.0}


def test_review_of_exactly_the_limit_is_accepted_counting_characters_not_bytes(
    stub: Stubber,
) -> None:
    review = "🎬" * DEFAULT_MAX_REVIEW_CHARS  # 4 bytes each in UTF-8, 12 as JSON
    expect_invocation(stub, review, b'{"sentiment": "positive", "score": 0.5}')

    assert call(review_event(review))[0] == 200


# --- explanations ---------------------------------------------------------------------------

# The document's own example of an explained answer: what the handler passes on is that.
EXPLAINED = OPENAPI["paths"]["/predict"]["post"]["responses"]["200"]["content"]["application/json"][
    "examples"
]["explained"]["value"]
EXPLAINED_REVIEW = OPENAPI["paths"]["/predict"]["post"]["requestBody"]["content"][
    "application/json"
]["examples"]["explained"]["value"]["review"]
EXPLANATION = EXPLAINED["explanation"]
EXPLAINED_VERDICT = {name: EXPLAINED[name] for name in ("sentiment", "score", "low_confidence")}


def explained_answer(explanation: Any = EXPLANATION) -> bytes:
    return json.dumps(EXPLAINED_VERDICT | {"explanation": explanation}).encode()


ASKING = {
    "JSON member": lambda review: event(json.dumps({"review": review, "explain": True})),
    "query, text": lambda review: with_query(event(review, "text/plain"), explain="true"),
    "query, JSON": lambda review: with_query(review_event(review), explain="true"),
    # Asking either way is asking: an explanation only adds to the answer.
    "query only": lambda review: with_query(
        event(json.dumps({"review": review, "explain": False})), explain="true"
    ),
}


@pytest.mark.parametrize("asking", ASKING.values(), ids=ASKING)
def test_an_explanation_asked_for_is_asked_of_the_endpoint_and_passed_on(
    stub: Stubber, log_lines: io.StringIO, asking: Any
) -> None:
    expect_invocation(stub, EXPLAINED_REVIEW, explained_answer(), explain=True)

    status, _, body = call(asking(EXPLAINED_REVIEW))

    assert status == 200
    assert body == EXPLAINED_VERDICT | {"explanation": EXPLANATION}
    entry = json.loads(log_lines.getvalue().splitlines()[0])
    assert entry["explain"] is True
    assert "boring" not in log_lines.getvalue() and "contribution" not in log_lines.getvalue()


NOT_ASKING = {
    "JSON": lambda review: review_event(review),
    "JSON member false": lambda review: event(json.dumps({"review": review, "explain": False})),
    "text": lambda review: event(review, "text/plain"),
    "query false": lambda review: with_query(event(review, "text/plain"), explain="false"),
    "other parameters": lambda review: with_query(review_event(review), lang="en"),
}


@pytest.mark.parametrize("not_asking", NOT_ASKING.values(), ids=NOT_ASKING)
def test_unasked_the_endpoint_gets_todays_request_and_the_caller_todays_answer(
    stub: Stubber, log_lines: io.StringIO, not_asking: Any
) -> None:
    body = Kept()
    # An endpoint that explains regardless: what it adds is not passed on.
    expect_invocation(stub, EXPLAINED_REVIEW, explained_answer(), body=body)

    status, _, answered = call(not_asking(EXPLAINED_REVIEW))

    assert status == 200
    assert body.value == json.dumps({"review": EXPLAINED_REVIEW}).encode()
    assert answered == EXPLAINED_VERDICT
    assert json.loads(log_lines.getvalue())["explain"] is False


def test_the_explained_answer_puts_the_id_before_the_words(stub: Stubber) -> None:
    expect_invocation(stub, EXPLAINED_REVIEW, explained_answer(), explain=True)
    request = event(json.dumps({"review": EXPLAINED_REVIEW, "explain": True}))

    answer = json.loads(entry_point.handler(request, CONTEXT)["body"])

    assert list(answer) == [*EXPLAINED_VERDICT, "prediction_id", "explanation"]


def test_an_explanation_is_rebuilt_from_its_documented_members(stub: Stubber) -> None:
    extra = EXPLANATION | {"debug": "gradients"}
    extra["words"] = [word | {"stem": "x"} for word in EXPLANATION["words"]]
    expect_invocation(stub, EXPLAINED_REVIEW, explained_answer(extra), explain=True)

    body = call(event(json.dumps({"review": EXPLAINED_REVIEW, "explain": True})))[2]

    assert body["explanation"] == EXPLANATION


def _words(*changes: dict[str, Any]) -> list[dict[str, Any]]:
    """The example's words with the first ones changed."""
    words = [dict(word) for word in EXPLANATION["words"]]
    for index, change in enumerate(changes):
        words[index] |= change
    return words


READ_WORD = EXPLANATION["words"][1]  # "great", read
BAD_EXPLANATIONS = {
    "missing": None,
    "a list": [],
    "a string": "great: +1.62",
    "no words": {k: v for k, v in EXPLANATION.items() if k != "words"},
    "no base": {k: v for k, v in EXPLANATION.items() if k != "base"},
    "logit a string": EXPLANATION | {"logit": "1.1"},
    "logit a boolean": EXPLANATION | {"logit": True},
    "logit NaN": EXPLANATION | {"logit": math.nan},
    "base infinite": EXPLANATION | {"base": math.inf},
    "method a number": EXPLANATION | {"method": 3},
    "method markup": EXPLANATION | {"method": "<img src=x>"},
    "method empty": EXPLANATION | {"method": ""},
    "words an object": EXPLANATION | {"words": {"0": READ_WORD}},
    "a word a list": EXPLANATION | {"words": [[0, 1, "dropped", None]]},
    "a word without its contribution": EXPLANATION
    | {"words": [{k: v for k, v in READ_WORD.items() if k != "contribution"}]},
    "start a float": EXPLANATION | {"words": _words({"start": 0.0})},
    "start a boolean": EXPLANATION | {"words": _words({"start": False})},
    "start negative": EXPLANATION | {"words": _words({"start": -1})},
    "end before start": EXPLANATION | {"words": _words({"start": 1, "end": 0})},
    "end past the review": EXPLANATION
    | {"words": [READ_WORD | {"start": 20, "end": len(EXPLAINED_REVIEW) + 1}]},
    "out of order": EXPLANATION | {"words": EXPLANATION["words"][::-1]},
    "overlapping": EXPLANATION | {"words": _words({}, {"start": 0})},
    "unknown status": EXPLANATION | {"words": _words({}, {"status": "ignored"})},
    "read without a contribution": EXPLANATION | {"words": _words({}, {"contribution": None})},
    "read, contribution a string": EXPLANATION | {"words": _words({}, {"contribution": "1"})},
    "read, contribution NaN": EXPLANATION | {"words": _words({}, {"contribution": math.nan})},
    "dropped with a contribution": EXPLANATION | {"words": _words({"contribution": 0.0})},
    "not_read with a contribution": EXPLANATION
    | {"words": _words({"status": "not_read", "contribution": 0.1})},
}


@pytest.mark.parametrize("explanation", BAD_EXPLANATIONS.values(), ids=BAD_EXPLANATIONS)
def test_a_malformed_explanation_from_the_endpoint_is_a_bad_gateway(
    stub: Stubber, log_lines: io.StringIO, explanation: Any
) -> None:
    answer = (
        EXPLAINED_VERDICT
        if explanation is None
        else EXPLAINED_VERDICT | {"explanation": explanation}
    )
    expect_invocation(stub, EXPLAINED_REVIEW, json.dumps(answer).encode(), explain=True)

    status, _, body = call(event(json.dumps({"review": EXPLAINED_REVIEW, "explain": True})))

    assert (status, body["error"]["code"]) == (502, "invalid_model_response")
    assert json.loads(log_lines.getvalue())["cause"] == "MalformedExplanation"


def test_an_explanation_of_nothing_but_a_base_is_passed_on(stub: Stubber) -> None:
    """A review whose every word the preprocessing drops: no word carries anything."""
    explanation = EXPLANATION | {"logit": 0.12, "words": []}
    expect_invocation(stub, "...", explained_answer(explanation), explain=True)

    body = call(with_query(event("...", "text/plain"), explain="true"))[2]

    assert body["explanation"]["words"] == []


def test_spans_count_code_points_not_utf16_units_or_bytes(stub: Stubber) -> None:
    review = "🎬 Superb 🎬 film"
    words = [
        {"start": 2, "end": 8, "status": "read", "contribution": 1.5},
        {"start": 11, "end": 15, "status": "read", "contribution": 0.1},
    ]
    assert [review[w["start"] : w["end"]] for w in words] == ["Superb", "film"]
    explanation = EXPLANATION | {"logit": 1.72, "words": words}
    expect_invocation(stub, review, explained_answer(explanation), explain=True)

    body = call(event(json.dumps({"review": review, "explain": True})))[2]

    assert body["explanation"]["words"] == words


def test_an_explained_exchange_is_captured_whole_and_read_back_by_the_drift_report(
    stub: Stubber, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CAPTURE_DESTINATION", str(tmp_path))
    answer = explained_answer()
    expect_invocation(stub, EXPLAINED_REVIEW, answer, explain=True)

    assert call(with_query(event(EXPLAINED_REVIEW, "text/plain"), explain="true"))[0] == 200

    (path,) = tmp_path.rglob("*.jsonl")
    (record,) = read_records(path.open("rb"))
    data = record["captureData"]
    # What the endpoint was asked (JSON, though the caller sent text) and what it answered.
    assert json.loads(decoded(data["endpointInput"])) == {
        "review": EXPLAINED_REVIEW,
        "explain": True,
    }
    assert decoded(data["endpointOutput"]) == answer
    (answered,) = answered_reviews(record)
    assert (answered.review, answered.score) == (EXPLAINED_REVIEW, EXPLAINED["score"])


# --- bad requests: rejected before any call to the endpoint ---------------------------------

BAD_REQUESTS = {
    "empty JSON body": (event(""), 400, "invalid_json"),
    "missing JSON body": (event(None), 400, "invalid_json"),
    "invalid JSON": (event('{"review": '), 400, "invalid_json"),
    "deeply nested JSON": (event("[" * 100_000 + "]" * 100_000), 400, "invalid_json"),
    "UTF-8 byte order mark": (event(b'\xef\xbb\xbf{"review": "x"}'), 400, "invalid_json"),
    "JSON array": (event('["A fine film."]'), 400, "invalid_body"),
    "JSON string": (event('"A fine film."'), 400, "invalid_body"),
    "review not a string": (event('{"review": 5}'), 400, "invalid_body"),
    "review NaN": (event('{"review": NaN}'), 400, "invalid_body"),
    "review null": (event('{"review": null}'), 400, "invalid_body"),
    "batch": (event(json.dumps({"reviews": ["a"] * 65})), 400, "invalid_body"),
    "extra member": (event('{"review": "x", "stars": 5}'), 400, "invalid_body"),
    "extra member beside explain": (
        event('{"review": "x", "explain": true, "stars": 5}'),
        400,
        "invalid_body",
    ),
    "explain without a review": (event('{"explain": true}'), 400, "invalid_body"),
    **{
        f"explain {value}": (
            event(f'{{"review": "x", "explain": {value}}}'),
            400,
            "invalid_explain",
        )
        for value in ('"true"', "1", "0", "null", "[]", "{}", '"yes"')
    },
    **{
        f"explain={value!r}": (
            with_query(event("x", "text/plain"), explain=value),
            400,
            "invalid_explain",
        )
        for value in ("True", "TRUE", "1", "yes", "", " true", "true ")
    },
    "explain=1 with JSON": (with_query(review_event("x"), explain="1"), 400, "invalid_explain"),
    "explain twice": (
        with_query(event("x", "text/plain"), explain=["true", "false"]),
        400,
        "invalid_explain",
    ),
    "explain twice alike": (
        with_query(event("x", "text/plain"), explain=["true", "true"]),
        400,
        "invalid_explain",
    ),
    "empty review": (review_event(""), 400, "empty_review"),
    "whitespace review": (review_event(" \n\t\u2003"), 400, "empty_review"),
    "empty text": (event("", "text/plain"), 400, "empty_review"),
    "whitespace text": (event("  \r\n ", "text/plain"), 400, "empty_review"),
    "lone surrogate": (event('{"review": "bad \\ud800 text"}'), 400, "invalid_encoding"),
    "invalid UTF-8": (event(b"caf\xe9 au lait", "text/plain"), 400, "invalid_encoding"),
    "invalid UTF-8 in JSON": (event(b'{"review": "\xff"}'), 400, "invalid_encoding"),
    "invalid base64": (
        {**event("not base64!", "text/plain"), "isBase64Encoded": True},
        400,
        "invalid_body",
    ),
    "no content type": (event("A fine film.", None), 415, "unsupported_media_type"),
    "form content type": (
        event("review=A+fine+film", "application/x-www-form-urlencoded"),
        415,
        "unsupported_media_type",
    ),
    "HTML content type": (event("<p>A fine film.</p>", "text/html"), 415, "unsupported_media_type"),
    "latin-1 charset": (
        event("A fine film.", "text/plain; charset=ISO-8859-1"),
        415,
        "unsupported_media_type",
    ),
    "one character too many": (
        review_event("x" * (DEFAULT_MAX_REVIEW_CHARS + 1)),
        413,
        "review_too_long",
    ),
    "text one character too many": (
        event("é" * (DEFAULT_MAX_REVIEW_CHARS + 1), "text/plain"),
        413,
        "review_too_long",
    ),
    "megabytes of body": (event("x" * 3_000_000, "text/plain"), 413, "review_too_long"),
}


@pytest.mark.parametrize(
    ("request_event", "status", "code"), BAD_REQUESTS.values(), ids=BAD_REQUESTS
)
def test_bad_request_is_rejected_without_calling_the_endpoint(
    stub: Stubber, request_event: dict[str, Any], status: int, code: str
) -> None:
    got_status, headers, body = call(request_event)

    assert (got_status, body["error"]["code"]) == (status, code)
    assert headers["Access-Control-Allow-Origin"] == SITE


def test_length_limit_follows_max_review_chars(
    stub: Stubber, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAX_REVIEW_CHARS", "10")
    expect_invocation(stub, "x" * 10, b'{"sentiment": "negative", "score": 0.2}')

    assert call(review_event("x" * 10))[0] == 200
    status, _, body = call(review_event("x" * 11))
    assert status == 413
    assert "10 characters" in body["error"]["message"]


def test_openapi_document_states_the_default_limit() -> None:
    review_schema = OPENAPI["components"]["schemas"]["ReviewText"]
    assert review_schema["maxLength"] == DEFAULT_MAX_REVIEW_CHARS


# --- CORS -----------------------------------------------------------------------------------


def test_wildcard_origin_only_when_configured(
    stub: Stubber, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ALLOWED_ORIGIN", "*")

    assert call(review_event(""))[1]["Access-Control-Allow-Origin"] == "*"


# --- the endpoint's answers -----------------------------------------------------------------

BAD_ANSWERS = {
    "not JSON": b"<html>oops</html>",
    "empty": b"",
    "a list": b'[{"sentiment": "positive", "score": 0.9}]',
    "unknown sentiment": b'{"sentiment": "meh", "score": 0.5}',
    "score above 1": b'{"sentiment": "positive", "score": 1.5}',
    "score below 0": b'{"sentiment": "negative", "score": -0.1}',
    "score a string": b'{"sentiment": "positive", "score": "0.9"}',
    "score a boolean": b'{"sentiment": "positive", "score": true}',
    "score NaN": b'{"sentiment": "positive", "score": NaN}',
    "score missing": b'{"sentiment": "positive"}',
    "a batch answer": b'{"predictions": [{"sentiment": "positive", "score": 0.9}]}',
    "low_confidence a string": b'{"sentiment": "positive", "score": 0.6, "low_confidence": "true"}',
    "low_confidence a number": b'{"sentiment": "positive", "score": 0.6, "low_confidence": 1}',
    "low_confidence null": b'{"sentiment": "positive", "score": 0.6, "low_confidence": null}',
    "model_version a number": b'{"sentiment": "positive", "score": 0.6, "model_version": 7}',
    "model_version markup": b'{"sentiment": "positive", "score": 0.6, "model_version": "<b>"}',
    "model_version empty": b'{"sentiment": "positive", "score": 0.6, "model_version": ""}',
}


@pytest.mark.parametrize("answer", BAD_ANSWERS.values(), ids=BAD_ANSWERS)
def test_unreadable_model_answer_is_a_bad_gateway(stub: Stubber, answer: bytes) -> None:
    expect_invocation(stub, "Fine.", answer)

    status, _, body = call(review_event("Fine."))

    assert (status, body["error"]["code"]) == (502, "invalid_model_response")


def add_model_error(stub: Stubber, original_status: int, original_message: str) -> None:
    stub.add_client_error(
        "invoke_endpoint",
        service_error_code="ModelError",
        service_message=f"Received client error ({original_status}) from primary with message "
        f'"{original_message}". See the log stream for more information.',
        http_status_code=424,
        modeled_fields={
            "OriginalStatusCode": original_status,
            "OriginalMessage": original_message,
            "LogStreamArn": "arn:aws:logs:eu-west-1:123456789012:log-group:/aws/sagemaker/x",
        },
    )


@pytest.mark.parametrize(
    ("original_status", "original_message", "code", "message"),
    [
        (400, "The review is empty.", "invalid_review", "The review is empty."),
        (
            413,
            '{"code": 413, "type": "InputTooLarge", "message": "Review longer than 20000."}',
            "review_too_long",
            "Review longer than 20000.",
        ),
        (
            415,
            '{"error": {"code": "unsupported_media_type", "message": "Use text/plain."}}',
            "unsupported_media_type",
            "Use text/plain.",
        ),
        (400, "", "invalid_review", "The model rejected the review (HTTP 400)."),
        (
            413,
            "the review has 20001 characters; the limit is 20000\nTraceback (most recent "
            'call last):\n  File "/opt/ml/model/code/inference.py", line 1',
            "review_too_long",
            "the review has 20001 characters; the limit is 20000",
        ),
        (
            415,
            json.dumps({"error": {"message": "Send text/plain,\nnothing else."}}, indent=2),
            "unsupported_media_type",
            "Send text/plain, nothing else.",
        ),
        (
            413,
            '{"message": "Review longer than 20000."}\nTraceback (most recent call last):',
            "review_too_long",
            "Review longer than 20000.",
        ),
        (400, '{\n  "code": 400\n}', "invalid_review", "The model rejected the review (HTTP 400)."),
    ],
    ids=[
        "plain",
        "json",
        "nested-json",
        "empty",
        "toolkit-message-and-trace",
        "pretty-printed-json",
        "toolkit-json-and-trace",
        "json-without-message",
    ],
)
def test_model_rejecting_the_input_passes_its_status_and_message_on(
    stub: Stubber, original_status: int, original_message: str, code: str, message: str
) -> None:
    add_model_error(stub, original_status, original_message)

    status, _, body = call(review_event("Fine."))

    assert (status, body["error"]) == (original_status, {"code": code, "message": message})


def test_long_model_message_is_shortened(stub: Stubber) -> None:
    add_model_error(stub, 400, "word " * 1000)

    message = call(review_event("Fine."))[2]["error"]["message"]

    assert len(message) <= 300
    assert message.endswith("…")


@pytest.mark.parametrize("original_status", [500, 503, 404, 0])
def test_model_failure_is_a_bad_gateway_without_its_details(
    stub: Stubber, original_status: int
) -> None:
    add_model_error(stub, original_status, "Traceback (most recent call last): torch exploded")

    status, _, body = call(review_event("Fine."))

    assert (status, body["error"]["code"]) == (502, "model_error")
    assert "Traceback" not in json.dumps(body)


@pytest.mark.parametrize(
    ("aws_code", "http_status", "status", "code"),
    [
        ("ThrottlingException", 400, 503, "model_unavailable"),
        ("ServiceUnavailable", 503, 503, "model_unavailable"),
        ("ModelNotReadyException", 429, 503, "model_unavailable"),
        ("InternalDependencyException", 530, 503, "model_unavailable"),
        ("ValidationError", 400, 503, "endpoint_unavailable"),
        ("InternalFailure", 500, 502, "upstream_error"),
        ("AccessDeniedException", 400, 502, "upstream_error"),
    ],
)
def test_aws_errors_map_to_gateway_statuses(
    stub: Stubber, aws_code: str, http_status: int, status: int, code: str
) -> None:
    stub.add_client_error(
        "invoke_endpoint",
        service_error_code=aws_code,
        service_message=f"Endpoint {ENDPOINT} of account 123456789012 not found.",
        http_status_code=http_status,
    )

    got_status, headers, body = call(review_event("Fine."))

    assert (got_status, body["error"]["code"]) == (status, code)
    assert ENDPOINT not in body["error"]["message"]
    assert headers["Access-Control-Allow-Origin"] == SITE
    if status == 503:
        assert headers["Retry-After"] == "1"


# --- transport failures ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (ReadTimeoutError(endpoint_url="https://runtime"), 504, "model_timeout"),
        (ConnectTimeoutError(endpoint_url="https://runtime"), 503, "model_unreachable"),
        (EndpointConnectionError(endpoint_url="https://runtime"), 503, "model_unreachable"),
        (ConnectionClosedError(endpoint_url="https://runtime"), 502, "upstream_error"),
    ],
    ids=["read timeout", "connect timeout", "connection refused", "connection closed"],
)
def test_transport_failures_are_retried_once_then_mapped(
    client: Any, error: Exception, status: int, code: str
) -> None:
    attempts = []

    def fail(**_: Any) -> None:
        attempts.append(time.monotonic())
        raise error

    # Where botocore's HTTP layer raises them, so its retry policy applies as in production.
    client.meta.events.register("before-send.sagemaker-runtime.InvokeEndpoint", fail)

    got_status, _, body = call(review_event("Fine."))

    assert (got_status, body["error"]["code"]) == (status, code)
    assert len(attempts) == DEFAULT_MAX_ATTEMPTS


# --- captured traffic (for a serverless endpoint, which cannot capture its own) -------------

VERDICT = b'{"sentiment": "positive", "score": 0.93, "model_version": "3f9c2a71d04b8e65"}'


def capture_client(monkeypatch: pytest.MonkeyPatch) -> Any:
    """The S3 client the function's capture writes with, made as a cold container makes it."""
    monkeypatch.setenv("CAPTURE_DESTINATION", "s3://imdb-artifacts/capture")
    return capture.traffic_capture(load_settings(os.environ))._write.__self__.client


def test_a_serverless_endpoints_traffic_is_recorded_one_s3_object_each(
    stub: Stubber, monkeypatch: pytest.MonkeyPatch, log_lines: io.StringIO
) -> None:
    s3 = capture_client(monkeypatch)
    key, body = Kept(), Kept()
    expect_invocation(stub, "A superb film.", VERDICT)

    with Stubber(s3) as s3_stub:
        s3_stub.add_response(
            "put_object",
            {},
            {
                "Bucket": "imdb-artifacts",
                "Key": key,
                "Body": body,
                "ContentType": "application/jsonl",
            },
        )
        assert call(review_event("A superb film."))[0] == 200
        s3_stub.assert_no_pending_responses()

    assert key.value.startswith(f"capture/{ENDPOINT}/AllTraffic/")
    (record,) = read_records([body.value])
    assert record["eventMetadata"]["inferenceId"] == API_REQUEST_ID
    data = record["captureData"]
    assert json.loads(decoded(data["endpointInput"])) == {"review": "A superb film."}
    assert decoded(data["endpointOutput"]) == VERDICT
    entry = json.loads(log_lines.getvalue())
    assert entry["captured"] is True and entry["capture_ms"] >= 0


def test_a_failed_record_costs_the_record_not_the_answer(
    stub: Stubber, monkeypatch: pytest.MonkeyPatch, log_lines: io.StringIO
) -> None:
    s3 = capture_client(monkeypatch)
    expect_invocation(stub, "A superb film.", VERDICT)

    with Stubber(s3) as s3_stub:
        s3_stub.add_client_error("put_object", "AccessDenied", http_status_code=403)
        status, _, body = call(review_event("A superb film."))

    assert (status, body["sentiment"]) == (200, "positive")
    entry = json.loads(log_lines.getvalue())
    assert (entry["captured"], entry["capture_error"]) == (False, "AccessDenied")


def test_on_a_developers_machine_the_records_go_to_a_directory(
    stub: Stubber, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CAPTURE_DESTINATION", str(tmp_path))
    expect_invocation(stub, "A superb film.", VERDICT)

    assert call(review_event("A superb film."))[0] == 200

    (path,) = tmp_path.rglob("*.jsonl")
    assert path.relative_to(tmp_path).parts[:2] == (ENDPOINT, "AllTraffic")
    (record,) = read_records(path.open("rb"))
    assert record["eventMetadata"]["inferenceId"] == API_REQUEST_ID


def test_the_configured_share_is_what_the_capture_draws_against(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CAPTURE_DESTINATION", str(tmp_path))
    monkeypatch.setenv("CAPTURE_PERCENT", "12.5")

    assert capture.traffic_capture(load_settings(os.environ)).percent == 12.5


# --- configuration and our own faults -------------------------------------------------------


def test_one_client_per_container_with_short_timeouts_and_few_retries() -> None:
    settings = load_settings(os.environ)

    client = endpoint.runtime_client(settings)

    assert endpoint.runtime_client(settings) is client
    config = client.meta.config
    assert config.connect_timeout == DEFAULT_CONNECT_TIMEOUT
    assert config.read_timeout == DEFAULT_READ_TIMEOUT
    assert config.retries["total_max_attempts"] == DEFAULT_MAX_ATTEMPTS
    worst_case = config.retries["total_max_attempts"] * (
        config.connect_timeout + config.read_timeout
    )
    assert worst_case + 1 < 29, "must answer before API Gateway's integration timeout"


def test_client_honours_the_endpoint_url_environment_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", "http://127.0.0.1:8765")

    client = endpoint.runtime_client(load_settings(os.environ))

    assert client.meta.endpoint_url == "http://127.0.0.1:8765"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("ENDPOINT_NAME", ""),
        ("ALLOWED_ORIGIN", ""),
        ("ALLOWED_ORIGIN", "https://example.org/page"),
        ("ALLOWED_ORIGIN", "https://a.example, https://b.example"),
        ("MAX_REVIEW_CHARS", "lots"),
        ("MAX_REVIEW_CHARS", "0"),
        ("SAGEMAKER_READ_TIMEOUT", "-1"),
        ("CAPTURE_DESTINATION", "imdb-artifacts/capture"),
        ("CAPTURE_PERCENT", "150"),
    ],
)
def test_broken_configuration_is_an_opaque_internal_error(
    stub: Stubber, monkeypatch: pytest.MonkeyPatch, log_lines: io.StringIO, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)

    status, _, body = call(review_event("Fine."))

    assert (status, body["error"]["code"]) == (500, "internal_error")
    assert name not in json.dumps(body)
    assert name in log_lines.getvalue(), "the operator must learn what is misconfigured"


def test_our_own_bug_is_logged_but_never_shown(
    stub: Stubber, monkeypatch: pytest.MonkeyPatch, log_lines: io.StringIO
) -> None:
    def broken(*_: Any) -> None:
        raise KeyError("internal detail")

    monkeypatch.setattr(entry_point, "invoke", broken)

    status, headers, body = call(review_event("Fine."))

    assert (status, body["error"]["code"]) == (500, "internal_error")
    assert "internal detail" not in json.dumps(body)
    assert headers["Access-Control-Allow-Origin"] == SITE
    entry = json.loads(log_lines.getvalue().splitlines()[-1])
    assert entry["level"] == "ERROR"
    assert "internal detail" in entry["exception"]


# --- logs -----------------------------------------------------------------------------------

SECRET_REVIEW = "Zanzibar marmalade opinion"


def test_each_request_logs_one_json_line_with_ids_and_no_review_text(
    stub: Stubber, log_lines: io.StringIO
) -> None:
    expect_invocation(stub, SECRET_REVIEW, b'{"sentiment": "positive", "score": 0.7}')

    call(review_event(SECRET_REVIEW))

    lines = log_lines.getvalue().splitlines()
    assert len(lines) == 1
    entry = json.loads(lines[0])
    assert entry["aws_request_id"] == "lambda-request-1"
    assert entry["api_request_id"] == API_REQUEST_ID
    assert entry["status"] == 200
    assert entry["review_chars"] == len(SECRET_REVIEW)
    assert entry["latency_ms"] >= entry["model_ms"] >= 0
    assert "Zanzibar" not in lines[0]


def test_failed_requests_log_the_cause_but_no_review_text(
    stub: Stubber, log_lines: io.StringIO
) -> None:
    add_model_error(stub, 400, f"Cannot score '{SECRET_REVIEW}'")
    call(review_event(SECRET_REVIEW))
    call(event(json.dumps({"review": SECRET_REVIEW, "x": 1})))

    entries = [json.loads(line) for line in log_lines.getvalue().splitlines()]

    assert [entry["status"] for entry in entries] == [400, 400]
    assert entries[0]["aws_error_code"] == "ModelError"
    assert entries[0]["model_status"] == 400
    assert entries[1]["error_code"] == "invalid_body"
    assert "Zanzibar" not in log_lines.getvalue()


# --- real HTTP against a loopback server ----------------------------------------------------


class _FakeRuntime(BaseHTTPRequestHandler):
    """Answers like the SageMaker runtime, or not at all, depending on the endpoint name."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        if "/endpoints/silent/" in self.path:
            time.sleep(2)
            return
        # The runtime's answer when the container returned 413 (see botocore's ModelError shape).
        body = json.dumps(
            {
                "ErrorCode": "CLIENT_ERROR_FROM_MODEL",
                "Message": "Received client error (413) from primary with message ...",
                "OriginalMessage": "Review longer than 20000 characters.",
                "OriginalStatusCode": 413,
                "LogStreamArn": "arn:aws:logs:eu-west-1:123456789012:log-group:x",
            }
        ).encode()
        self.send_response(424)
        self.send_header("Content-Type", "application/json")
        self.send_header("x-amzn-ErrorType", "ModelError:http://internal.amazon.com/coral/")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture(scope="module")
def fake_runtime() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeRuntime)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_model_error_over_http_passes_the_original_status_on(
    monkeypatch: pytest.MonkeyPatch, fake_runtime: str
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", fake_runtime)

    status, _, body = call(review_event("Fine."))

    assert status == 413
    assert body["error"] == {
        "code": "review_too_long",
        "message": "Review longer than 20000 characters.",
    }


def test_silent_endpoint_times_out_within_the_configured_read_timeout(
    monkeypatch: pytest.MonkeyPatch, fake_runtime: str
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", fake_runtime)
    monkeypatch.setenv("ENDPOINT_NAME", "silent")
    monkeypatch.setenv("SAGEMAKER_READ_TIMEOUT", "0.2")
    started = time.monotonic()

    status, _, body = call(review_event("Fine."))

    assert (status, body["error"]["code"]) == (504, "model_timeout")
    assert time.monotonic() - started < 1.5


def test_endpoint_that_is_down_is_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", f"http://127.0.0.1:{port}")

    status, headers, body = call(review_event("Fine."))

    assert (status, body["error"]["code"]) == (503, "model_unreachable")
    assert headers["Retry-After"] == "1"
