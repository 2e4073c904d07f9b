"""The API emulator's gateway behaviour, in process: the proxy event it builds and what it does
when the function misbehaves. (With the real handler and model: tests/test_local_stack.py.)"""

from __future__ import annotations

import asyncio
import base64
import time
from typing import Any

import httpx
import pytest

from sentiment import api_emulator

ORIGIN = "http://127.0.0.1:8000"
OK = {"statusCode": 200, "headers": {"Content-Type": "application/json"}, "body": "{}"}


class Gateway:
    """Requests to the emulator's ASGI app in process, one event loop each."""

    def __init__(self, handler: Any, function_timeout: float = 5.0) -> None:
        self.app = api_emulator.create_app(ORIGIN, handler, function_timeout)

    def request(self, method: str, url: str, **options: Any) -> httpx.Response:
        async def send() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app, client=("127.0.0.1", 50000))
            async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
                return await client.request(method, url, **options)

        return asyncio.run(send())

    def post(self, url: str, **options: Any) -> httpx.Response:
        return self.request("POST", url, **options)


def capture() -> tuple[list[tuple[dict, Any]], Any]:
    calls: list[tuple[dict, Any]] = []

    def handler(event: dict, context: Any) -> dict:
        calls.append((event, context))
        return OK

    return calls, handler


def test_a_post_becomes_a_rest_api_proxy_event() -> None:
    calls, handler = capture()

    gateway = Gateway(handler)
    response = gateway.post(
        "/predict?lang=en&lang=fr",
        content=b'{"review": "Fine."}',
        headers={"Content-Type": "application/json", "X-Custom": "1"},
    )

    event, context = calls[0]
    assert response.status_code == 200
    assert (event["httpMethod"], event["path"], event["resource"]) == (
        "POST",
        "/predict",
        "/predict",
    )
    assert (event["body"], event["isBase64Encoded"]) == ('{"review": "Fine."}', False)
    assert event["headers"]["content-type"] == "application/json"
    assert event["multiValueHeaders"]["x-custom"] == ["1"]
    assert event["queryStringParameters"] == {"lang": "fr"}
    assert event["multiValueQueryStringParameters"] == {"lang": ["en", "fr"]}
    assert event["requestContext"]["requestId"] == response.headers["x-amzn-requestid"]
    assert event["requestContext"]["httpMethod"] == "POST"
    assert context.aws_request_id and context.aws_request_id != event["requestContext"]["requestId"]
    assert 0 < context.get_remaining_time_in_millis() <= 5000


def test_the_explain_query_parameter_reaches_the_deployed_handler(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A refused value never reaches the endpoint, so the real handler answers without one."""
    from lambda_src.prediction import handler

    monkeypatch.setenv("ENDPOINT_NAME", "imdb-sentiment-endpoint")
    monkeypatch.setenv("ALLOWED_ORIGIN", ORIGIN)
    monkeypatch.delenv("CAPTURE_DESTINATION", raising=False)
    gateway = Gateway(handler.handler)

    response = gateway.post(
        "/predict?explain=yes", content=b"Fine.", headers={"Content-Type": "text/plain"}
    )

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_explain"


def test_a_body_that_is_not_utf8_arrives_base64_encoded_and_an_empty_one_as_null() -> None:
    calls, handler = capture()

    gateway = Gateway(handler)
    gateway.post("/predict", content=b"caf\xe9", headers={"Content-Type": "text/plain"})
    gateway.post("/predict")

    binary, empty = (event for event, _ in calls)
    assert binary["isBase64Encoded"] is True
    assert base64.b64decode(binary["body"]) == b"caf\xe9"
    assert (empty["body"], empty["isBase64Encoded"]) == (None, False)


def test_the_functions_response_becomes_the_http_response() -> None:
    def handler(event: dict, context: Any) -> dict:
        return {
            "statusCode": 418,
            "headers": {"X-One": "1"},
            "multiValueHeaders": {"Set-Cookie": ["a=1", "b=2"]},
            "body": base64.b64encode(b"\x00\x01").decode(),
            "isBase64Encoded": True,
        }

    gateway = Gateway(handler)
    response = gateway.post("/predict")

    assert response.status_code == 418
    assert response.content == b"\x00\x01"
    assert response.headers["x-one"] == "1"
    assert response.headers.get_list("set-cookie") == ["a=1", "b=2"]


def _fails(event: dict, context: Any) -> dict:
    raise RuntimeError("bug")


def _answers_nonsense(event: dict, context: Any) -> Any:
    return "not a proxy response"


def _hangs(event: dict, context: Any) -> dict:
    time.sleep(1.0)
    return OK


@pytest.mark.parametrize("handler", [_fails, _answers_nonsense, _hangs], ids=lambda h: h.__name__)
def test_a_function_that_fails_is_an_internal_server_error_from_the_gateway(handler: Any) -> None:
    gateway = Gateway(handler, function_timeout=0.2)
    response = gateway.post("/predict", content=b"x", headers={"Content-Type": "text/plain"})

    assert response.status_code == 502
    assert response.json() == {"message": "Internal server error"}
    assert response.headers["access-control-allow-origin"] == ORIGIN


def test_the_gateway_answers_what_never_reaches_the_function() -> None:
    calls, handler = capture()

    gateway = Gateway(handler)
    preflight = gateway.request("OPTIONS", "/predict")
    elsewhere = gateway.post("/other")
    too_long = gateway.post("/predict", content=b"x" * (api_emulator.MAX_BODY_BYTES + 1))

    assert calls == []
    assert preflight.status_code == 204
    assert preflight.headers["access-control-max-age"] == "3600"
    assert (elsewhere.status_code, elsewhere.json()) == (
        403,
        {"message": "Missing Authentication Token"},
    )
    assert (too_long.status_code, too_long.json()) == (413, {"message": "Request Too Long"})


def test_the_function_never_sees_the_developers_aws_credentials() -> None:
    environment = api_emulator.lambda_environment(
        {
            "AWS_PROFILE": "production",
            "AWS_ACCESS_KEY_ID": "AKIAREAL",
            "AWS_SESSION_TOKEN": "token",
            "MAX_REVIEW_CHARS": "100",
            "PATH": "/usr/bin",
        },
        endpoint_url="http://127.0.0.1:8002",
        endpoint_name="imdb-sentiment-local",
        allowed_origin=ORIGIN,
    )

    assert "AWS_PROFILE" not in environment and "AWS_SESSION_TOKEN" not in environment
    assert environment["AWS_ACCESS_KEY_ID"] == "local"
    assert environment["AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME"] == "http://127.0.0.1:8002"
    assert (environment["MAX_REVIEW_CHARS"], environment["PATH"]) == ("100", "/usr/bin")
    assert (environment["ENDPOINT_NAME"], environment["ALLOWED_ORIGIN"]) == (
        "imdb-sentiment-local",
        ORIGIN,
    )
