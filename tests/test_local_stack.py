"""The local stack over real HTTP: `sentiment up` serving a model trained by the test.

Everything on the request path is the production code: the API emulator hands API Gateway's
proxy event to the unmodified Lambda handler, which calls the endpoint emulator through boto3,
which answers with the artifact's own inference handlers. The tests cover every status the API
documents, the endpoint's SageMaker contract as boto3 sees it, hot model swaps under load
(good, broken and corrupt artifacts), a killed endpoint, a silent one, and clean shutdowns.
"""

from __future__ import annotations

import http.client
import json
import math
import os
import re
import signal
import socket
import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
import httpx
import psutil
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from local_stack_harness import (
    RunningStack,
    free_port,
    install_atomically,
    modified_artifact,
    post_review,
    start_stack,
    train_tiny_model,
)

from contract.api import ENDPOINT_VARIANT
from contract.capture import DEFAULT_CAPTURE_RETENTION_DAYS, decoded, read_records
from contract.drift import BASELINE_FILE
from contract.feedback import parse_record
from contract.layout import PROJECT_ROOT
from contract.limits import MAX_REVIEW_CHARS
from contract.packaging import file_sha256
from contract.smoke import SMOKE_FILE
from contract.web_page import content_security_policy
from lambda_src.prediction.settings import DEFAULT_MAX_REVIEW_CHARS
from sentiment import cli, inference_toolkit
from sentiment.local_stack import API_EMULATOR_GLIBC_TUNABLES, DEFAULT_ENDPOINT_NAME
from sentiment.model_loader import JSON, served_artifact
from sentiment.prediction_client import LOW_CONFIDENCE_NOTE

pytestmark = pytest.mark.slow

OPENAPI = json.loads((PROJECT_ROOT / "lambda_src" / "openapi.json").read_text())
PROBE = "A wonderful film with a brilliant plot, and the music is superb."
BROKEN_PREDICT = (
    "+\n\ndef predict_fn(request, model):\n"
    "    raise RuntimeError('this artifact is broken on purpose')\n"
)
# Loads and answers, but not as it did at training: every verdict turned around.
TURNED_PREDICT = (
    "+\n\n_trained_predict_fn = predict_fn\n\n"
    "def predict_fn(request, model):\n"
    "    prediction = _trained_predict_fn(request, model)\n"
    "    for result in prediction.results:\n"
    "        result['score'] = 1 - result['score']\n"
    "        result['sentiment'] = 'positive' if result['score'] >= 0.5 else 'negative'\n"
    "    return prediction\n"
)


def verdict_in_process(artifact: Path, review: str, explain: bool = False) -> dict[str, Any]:
    """What the artifact's handlers answer for ``review``, without any server."""
    with served_artifact(artifact) as served:
        asked = {"review": review, "explain": True} if explain else {"review": review}
        body = json.dumps(asked).encode()
        answer = inference_toolkit.invoke(served, body, JSON, JSON)
    assert answer.status == 200
    return json.loads(answer.body)


def _member(artifact: Path, name: str) -> str:
    with tarfile.open(artifact) as archive:
        return archive.extractfile(name).read().decode()


@pytest.fixture(scope="module")
def models(prepared_imdb: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two tiny trained models, and artifacts that fail in each way that matters."""
    root = tmp_path_factory.mktemp("models")
    first = train_tiny_model(prepared_imdb, root / "first", seed=1)
    config = json.loads(_member(first, "model_config.json"))
    config["vocabulary_size"] += 1
    corrupt = root / "corrupt.tar.gz"
    corrupt.write_bytes(first.read_bytes()[: first.stat().st_size // 2])
    return {
        "first": first,
        # Less regularized, so it is surer of itself and answers differently.
        "second": train_tiny_model(prepared_imdb, root / "second", 2, "--ngram-c", "5"),
        # Without its smoke test (a model older than them) it is served, and fails.
        "broken": modified_artifact(
            first,
            root / "broken.tar.gz",
            {"code/inference.py": BROKEN_PREDICT, SMOKE_FILE: None},
        ),
        "failing": modified_artifact(
            first, root / "failing.tar.gz", {"code/inference.py": BROKEN_PREDICT}
        ),
        "turned": modified_artifact(
            first, root / "turned.tar.gz", {"code/inference.py": TURNED_PREDICT}
        ),
        "incompatible": modified_artifact(
            first, root / "incompatible.tar.gz", {"model_config.json": json.dumps(config)}
        ),
        "corrupt": corrupt,
    }


@pytest.fixture(scope="module")
def scores(models: dict[str, Path]) -> dict[str, float]:
    """The probe review's score by each good model, computed without any server."""
    found = {name: verdict_in_process(models[name], PROBE)["score"] for name in ("first", "second")}
    assert abs(found["first"] - found["second"]) > 1e-3, "the two models must be told apart"
    return found


@pytest.fixture(scope="module")
def stack(models: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    served = tmp_path_factory.mktemp("served") / "model.tar.gz"
    install_atomically(models["first"], served)
    running = start_stack(served)
    yield running
    assert running.stop(signal.SIGTERM) == 0


@pytest.fixture
def first_model(
    stack: RunningStack, models: dict[str, Path], scores: dict[str, float]
) -> Iterator[RunningStack]:
    """The stack, serving the first model before and after the test."""
    if _probe(stack) != pytest.approx(scores["first"]):
        stack.serve(models["first"])
    yield stack
    if _probe(stack) != pytest.approx(scores["first"]):
        stack.serve(models["first"])


def _probe(stack: RunningStack) -> float | str:
    response = post_review(stack.api_url, PROBE)
    return response.json()["score"] if response.status_code == 200 else response.text


def assert_documented_error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert str(status) in OPENAPI["paths"]["/predict"]["post"]["responses"]
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["error"]["code"] == code
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}
    assert "Traceback" not in response.text


# --- answers --------------------------------------------------------------------------------


@pytest.mark.slow
def test_up_without_a_model_prepares_the_data_and_trains_one_first(
    imdb_dir: Path, tmp_path: Path
) -> None:
    environment = {"IMDB_SOURCE": str(imdb_dir), "SENTIMENT_CACHE_DIR": str(tmp_path / "cache")}
    stack = start_stack(None, environment, cwd=tmp_path, start_seconds=600)
    try:
        response = post_review(stack.api_url, "A wonderful, brilliant film. Superb acting!")
        model_served = (tmp_path / "artifacts" / "model" / "model.tar.gz").is_file()
        prepared = (tmp_path / "data" / "prepared" / "manifest.json").is_file()
    finally:
        status = stack.stop()
    assert "preparing the data and training one first" in stack.log_since(0)
    assert prepared and model_served
    assert response.status_code == 200
    assert set(response.json()) == {
        "sentiment",
        "score",
        "low_confidence",
        "model_version",
        "prediction_id",
    }
    assert status == 0


@pytest.mark.parametrize("as_text", [False, True], ids=["json", "text"])
def test_a_review_is_scored_by_the_served_model(
    first_model: RunningStack, models: dict[str, Path], as_text: bool
) -> None:
    review = "An awful film: the plot is terrible and the music boring. <br /><br />Dull!"
    if as_text:
        response = httpx.post(
            first_model.api_url, content=review.encode(), headers={"Content-Type": "text/plain"}
        )
    else:
        response = post_review(first_model.api_url, review)

    expected = verdict_in_process(models["first"], review)
    assert response.status_code == 200
    assert response.json() == {
        "sentiment": expected["sentiment"],
        "score": pytest.approx(expected["score"], abs=1e-5),
        "low_confidence": expected["low_confidence"],
        # The same files answer as the same version in process and behind the API.
        "model_version": expected["model_version"],
        # API Gateway's request id names the prediction.
        "prediction_id": response.headers["x-amzn-requestid"],
    }
    assert response.headers["access-control-allow-origin"] == first_model.page_url.rstrip("/")


EXPLAINED_REVIEW = (
    "An awful film: the plot is terrible and the music boring. <br /><br />Dull! 🎬 Dull."
)


@pytest.mark.parametrize("as_text", [False, True], ids=["json", "text"])
def test_an_explained_verdict_comes_through_the_api_and_adds_up(
    first_model: RunningStack,
    models: dict[str, Path],
    capsys: pytest.CaptureFixture[str],
    as_text: bool,
) -> None:
    review = EXPLAINED_REVIEW
    if as_text:
        response = httpx.post(
            first_model.api_url,
            params={"explain": "true"},
            content=review.encode(),
            headers={"Content-Type": "text/plain"},
        )
    else:
        response = httpx.post(first_model.api_url, json={"review": review, "explain": True})

    expected = verdict_in_process(models["first"], review, explain=True)
    assert response.status_code == 200, response.text
    answer = response.json()
    explanation = answer.pop("explanation")
    assert answer == {
        "sentiment": expected["sentiment"],
        "score": pytest.approx(expected["score"], abs=1e-5),
        "low_confidence": expected["low_confidence"],
        "model_version": expected["model_version"],
        "prediction_id": response.headers["x-amzn-requestid"],
    }
    # Every word of the text as written, in order, in code points (the emoji is one): the
    # markup's "br" is no word, and punctuation is not listed.
    words = explanation["words"]
    assert [review[w["start"] : w["end"]] for w in words] == re.findall(
        r"[A-Za-z]+", review.replace("<br />", " ")
    )
    assert {w["status"] for w in words} <= {"read", "dropped"}
    assert all((w["contribution"] is None) == (w["status"] != "read") for w in words)
    read = [w["contribution"] for w in words if w["status"] == "read"]
    assert read, "the model reads some of these words"
    assert explanation["base"] + sum(read) == pytest.approx(explanation["logit"], abs=1e-3)
    assert 1 / (1 + math.exp(-explanation["logit"])) == pytest.approx(answer["score"], abs=1e-4)
    # The same as in process, through the endpoint emulator, boto3, the Lambda and the gateway.
    in_process = expected["explanation"]
    assert (explanation["method"], len(words)) == (in_process["method"], len(in_process["words"]))
    for got, want in zip(words, in_process["words"], strict=True):
        assert (got["start"], got["end"], got["status"]) == (
            want["start"],
            want["end"],
            want["status"],
        )
        assert got["contribution"] == pytest.approx(want["contribution"], abs=1e-3)

    assert cli.main(["predict", review, "--explain", "--api-url", first_model.api_url]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith(answer["sentiment"].upper())
    assert "Toward negative:" in printed and "Logit " in printed


def test_a_bad_explain_is_refused_by_the_api(first_model: RunningStack) -> None:
    as_json = httpx.post(first_model.api_url, json={"review": "Fine.", "explain": "yes"})
    as_text = httpx.post(
        first_model.api_url,
        params={"explain": "1"},
        content=b"Fine.",
        headers={"Content-Type": "text/plain"},
    )

    assert_documented_error(as_json, 400, "invalid_explain")
    assert_documented_error(as_text, 400, "invalid_explain")


def captured_exchanges(stack: RunningStack, reviews: list[str]) -> list[tuple[dict, dict]]:
    """Each review sent through the API, with its answer and the record captured of it."""
    answers = []
    for review in reviews:
        response = post_review(stack.api_url, review)
        assert response.status_code == 200
        answers.append(response.json())
    records = {
        record["eventMetadata"].get("inferenceId"): record
        for path in stack.capture_dir.rglob("*.jsonl")
        for record in read_records(path.open("rb"))
    }
    (path, *_) = stack.capture_dir.rglob("*.jsonl")
    assert path.relative_to(stack.capture_dir).parts[:2] == (
        DEFAULT_ENDPOINT_NAME,
        ENDPOINT_VARIANT,
    )
    return [(answer, records[answer["prediction_id"]]) for answer in answers]


CAPTURED_REVIEWS = ["An awful, boring film.", "Wonderful and brilliant.", "Zzyzx qwerty."]


def assert_recorded(exchanges: list[tuple[dict, dict]]) -> None:
    for review, (answer, record) in zip(CAPTURED_REVIEWS, exchanges, strict=True):
        data = record["captureData"]
        assert json.loads(decoded(data["endpointInput"])) == {"review": review}
        output = json.loads(decoded(data["endpointOutput"]))
        assert output == {k: v for k, v in answer.items() if k != "prediction_id"}
        assert data["endpointInput"]["encoding"] == data["endpointOutput"]["encoding"] == "JSON"


def test_the_endpoint_records_each_exchange_by_the_prediction_id_the_caller_got(
    first_model: RunningStack,
) -> None:
    assert_recorded(captured_exchanges(first_model, CAPTURED_REVIEWS))


def test_feedback_is_kept_with_the_servers_record_of_the_verdict_and_can_be_taken_back(
    first_model: RunningStack,
) -> None:
    exchanges = captured_exchanges(first_model, CAPTURED_REVIEWS)
    (answer, record), *_ = exchanges
    prediction_id = answer["prediction_id"]
    other = "negative" if answer["sentiment"] == "positive" else "positive"

    given = httpx.post(
        first_model.feedback_url, json={"prediction_id": prediction_id, "label": other}
    )
    kept = first_model.feedback_dir / f"{prediction_id}.json"
    stored = parse_record(kept.read_bytes())
    unknown = httpx.post(
        first_model.feedback_url,
        json={"prediction_id": "00000000-0000-4000-8000-000000000000", "label": other},
    )
    taken_back = httpx.post(
        first_model.feedback_url, json={"prediction_id": prediction_id, "label": None}
    )

    assert given.status_code == 200 and given.json()["status"] == "recorded"
    assert given.headers["access-control-allow-origin"] == first_model.page_url.rstrip("/")
    # The captured record and the feedback name the same prediction and hold the same review.
    assert record["eventMetadata"]["inferenceId"] == stored["prediction_id"] == prediction_id
    assert (stored["review"], stored["label"]) == (CAPTURED_REVIEWS[0], other)
    assert (stored["predicted"], stored["score"]) == (answer["sentiment"], answer["score"])
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "unknown_prediction"
    assert taken_back.json()["status"] == "withdrawn" and not kept.exists()


def test_for_a_serverless_endpoint_the_handler_records_the_same_records(
    models: dict[str, Path],
) -> None:
    stack = start_stack(models["first"], arguments=("--endpoint-mode", "serverless"))
    try:
        exchanges = captured_exchanges(stack, CAPTURED_REVIEWS)
    finally:
        assert stack.stop() == 0
    assert_recorded(exchanges)


@pytest.mark.parametrize(
    ("review", "low_confidence"),
    [("Zzyzx qwerty blorp fnord.", True), ("Truly dreadful: dull, lazy and badly paced.", False)],
    ids=["gibberish", "clear"],
)
def test_a_verdict_with_little_to_go_on_is_flagged_and_sentiment_predict_says_so(
    first_model: RunningStack,
    models: dict[str, Path],
    capsys: pytest.CaptureFixture[str],
    review: str,
    low_confidence: bool,
) -> None:
    response = post_review(first_model.api_url, review)
    printed = cli.main(["predict", review, "--api-url", first_model.api_url])

    assert verdict_in_process(models["first"], review)["low_confidence"] is low_confidence
    assert response.status_code == 200
    assert response.json()["low_confidence"] is low_confidence
    assert printed == 0
    output = capsys.readouterr().out
    assert output.startswith(response.json()["sentiment"].upper())
    assert (LOW_CONFIDENCE_NOTE in output) is low_confidence


def test_a_review_of_exactly_the_limit_is_scored(first_model: RunningStack) -> None:
    review = ("superb " * DEFAULT_MAX_REVIEW_CHARS)[:DEFAULT_MAX_REVIEW_CHARS]

    assert post_review(first_model.api_url, review).status_code == 200


def test_the_largest_body_a_review_within_the_limit_can_take_is_scored(
    first_model: RunningStack,
) -> None:
    # ASCII-only JSON spells each emoji as a surrogate pair, "\\ud83c\\udfac": 12 bytes, the most
    # one character can take, so this body is just under the size the handler refuses unread.
    body = json.dumps({"review": "\N{CLAPPER BOARD}" * DEFAULT_MAX_REVIEW_CHARS}).encode()
    assert len(body) == 12 * DEFAULT_MAX_REVIEW_CHARS + len(b'{"review": ""}')

    response = httpx.post(
        first_model.api_url, content=body, headers={"Content-Type": "application/json"}
    )

    assert response.status_code == 200, response.text


BAD_REQUESTS = {
    "empty body": (b"", "application/json", 400, "invalid_json"),
    "invalid JSON": (b'{"review": ', "application/json", 400, "invalid_json"),
    "wrong shape": (b'{"text": "A fine film."}', "application/json", 400, "invalid_body"),
    "batch of 65": (
        json.dumps({"reviews": ["A fine film."] * 65}).encode(),
        "application/json",
        400,
        "invalid_body",
    ),
    "review not a string": (b'{"review": 5}', "application/json", 400, "invalid_body"),
    "empty batch": (b'{"reviews": []}', "application/json", 400, "invalid_body"),
    "batch of an empty review": (b'{"reviews": [""]}', "application/json", 400, "invalid_body"),
    "whitespace review": (b'{"review": " \\n\\t "}', "application/json", 400, "empty_review"),
    "not UTF-8": (b"caf\xe9 au lait, tr\xe8s bon", "text/plain", 400, "invalid_encoding"),
    "lone surrogate": (b'{"review": "\\ud83c fine"}', "application/json", 400, "invalid_encoding"),
    "one character over": (
        json.dumps({"review": "x" * (DEFAULT_MAX_REVIEW_CHARS + 1)}).encode(),
        "application/json",
        413,
        "review_too_long",
    ),
    "no content type": (b'{"review": "A fine film."}', None, 415, "unsupported_media_type"),
    "HTML": (b"<p>A fine film.</p>", "text/html", 415, "unsupported_media_type"),
    "Latin-1 charset": (
        b"caf\xe9 au lait",
        "text/plain; charset=iso-8859-1",
        415,
        "unsupported_media_type",
    ),
    "form": (
        b"review=A+fine+film",
        "application/x-www-form-urlencoded",
        415,
        "unsupported_media_type",
    ),
}


@pytest.mark.parametrize(
    ("body", "content_type", "status", "code"), BAD_REQUESTS.values(), ids=BAD_REQUESTS
)
def test_a_bad_request_gets_its_documented_error(
    stack: RunningStack, body: bytes, content_type: str | None, status: int, code: str
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}

    response = httpx.post(stack.api_url, content=body, headers=headers)

    assert_documented_error(response, status, code)
    assert response.headers["access-control-allow-origin"] == stack.page_url.rstrip("/")


@pytest.mark.parametrize("route", ["predict", "feedback"])
def test_the_gateway_answers_the_preflight_and_refuses_other_routes(
    stack: RunningStack, route: str
) -> None:
    origin = stack.page_url.rstrip("/")
    url = stack.api_url.removesuffix("predict") + route
    preflight = httpx.options(
        url,
        headers={"Origin": origin, "Access-Control-Request-Method": "POST"},
    )
    other = httpx.get(url)

    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == origin
    assert preflight.headers["access-control-allow-methods"] == "POST"
    assert preflight.headers["access-control-allow-headers"] == "Content-Type"
    assert other.status_code == 403
    assert other.json() == {"message": "Missing Authentication Token"}
    assert other.headers["access-control-allow-origin"] == origin


def test_a_body_over_the_gateways_limit_is_refused_by_the_gateway(stack: RunningStack) -> None:
    response = httpx.post(
        stack.api_url, content=b"x" * (10 * 1024 * 1024 + 1), headers={"Content-Type": "text/plain"}
    )

    assert response.status_code == 413
    assert response.json() == {"message": "Request Too Long"}


def test_the_page_is_served_with_the_deployed_security_headers(stack: RunningStack) -> None:
    api_origin = stack.api_url.removesuffix("/predict")

    page = httpx.get(stack.page_url)
    config = httpx.get(stack.page_url + "config.json")

    assert page.status_code == 200 and "<textarea" in page.text
    assert page.headers["content-security-policy"] == content_security_policy(api_origin)
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert config.json() == {
        "apiUrl": stack.api_url,
        "maxReviewChars": MAX_REVIEW_CHARS,
        # The endpoint records the traffic: the page says for how long it is kept.
        "captureRetentionDays": DEFAULT_CAPTURE_RETENTION_DAYS,
        "feedbackUrl": stack.feedback_url,
        # Nothing deletes feedback on a developer's machine: the page promises no time.
        "feedbackRetentionDays": None,
    }
    assert config.headers["content-security-policy"] == page.headers["content-security-policy"]


@pytest.mark.parametrize("path", ["/.", "/./", "/index.html/", "/app.js/", "/%2e/app.js"])
def test_the_page_server_maps_paths_to_files_as_s3_does(stack: RunningStack, path: str) -> None:
    # http.client sends the path as given; a browser or httpx would normalize some of these.
    page = urlsplit(stack.page_url)
    connection = http.client.HTTPConnection(page.hostname, page.port, timeout=10)
    try:
        connection.request("GET", path, headers={"Host": "evil.example"})
        response = connection.getresponse()
        response.read()
    finally:
        connection.close()

    # No redirect echoing the Host header, no file reached by a path that only normalizes to it.
    assert (response.status, response.getheader("Location")) == (404, None)
    assert response.getheader("X-Frame-Options") == "DENY"


def _status_with_padding(url: str, padding: int) -> tuple[int, dict[str, str]]:
    """The status of a GET to `url` whose request line and headers total about `padding` bytes."""
    parts = urlsplit(url)
    request = f"GET {parts.path or '/'} HTTP/1.1\r\nHost: {parts.netloc}\r\nConnection: close\r\n"
    filler = "X-Padding: " + "a" * (padding - len(request) - len("X-Padding: \r\n\r\n")) + "\r\n"
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as connection:
        connection.sendall((request + filler + "\r\n").encode())
        response = b""
        while chunk := connection.recv(65536):
            response += chunk
    head = response.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in head[1:])
    return int(head[0].split()[1]), headers


@pytest.mark.parametrize(
    ("tier", "limit"),
    [("page_url", 20_480), ("api_url", 10_240), ("endpoint_url", 16 * 1024)],
)
def test_each_tier_refuses_headers_over_its_services_limit_with_431(
    stack: RunningStack, tier: str, limit: int
) -> None:
    url = getattr(stack, tier)
    within, _ = _status_with_padding(url, limit)
    over, headers = _status_with_padding(url, limit + 1)

    assert within != 431
    assert over == 431
    assert headers["x-content-type-options"] == "nosniff"


# --- the endpoint, as boto3 sees it ---------------------------------------------------------


@pytest.fixture
def runtime(stack: RunningStack, monkeypatch: pytest.MonkeyPatch) -> Any:
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    return boto3.client(
        "sagemaker-runtime",
        endpoint_url=stack.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
        config=Config(retries={"total_max_attempts": 1}),
    )


def test_boto3_invokes_the_endpoint_emulator_like_sagemaker(
    runtime: Any, first_model: RunningStack, models: dict[str, Path]
) -> None:
    response = runtime.invoke_endpoint(
        EndpointName=DEFAULT_ENDPOINT_NAME,
        ContentType="application/json",
        Accept="application/json",
        Body=json.dumps({"review": PROBE}),
    )

    assert json.loads(response["Body"].read()) == verdict_in_process(models["first"], PROBE)
    assert response["ContentType"] == "application/json"
    assert response["InvokedProductionVariant"] == "AllTraffic"


def test_a_review_the_model_rejects_is_a_model_error_for_boto3(
    runtime: Any, stack: RunningStack
) -> None:
    with pytest.raises(ClientError) as caught:
        runtime.invoke_endpoint(
            EndpointName=DEFAULT_ENDPOINT_NAME, ContentType="text/plain", Body=b"   "
        )

    error = caught.value.response
    assert error["Error"]["Code"] == "ModelError"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 424
    assert error["OriginalStatusCode"] == 400
    first_line, _, trace = error["OriginalMessage"].partition("\n")
    assert first_line == "the review is empty"
    assert trace.startswith("Traceback")  # as the inference toolkit answers


def test_an_unknown_endpoint_is_a_validation_error_for_boto3(runtime: Any) -> None:
    with pytest.raises(ClientError) as caught:
        runtime.invoke_endpoint(EndpointName="no-such-endpoint", Body=b"x")

    assert caught.value.response["Error"]["Code"] == "ValidationError"


def test_the_container_contract_answers_ping_and_invocations(
    first_model: RunningStack, models: dict[str, Path]
) -> None:
    ping = httpx.get(first_model.endpoint_url + "/ping")
    answer = httpx.post(
        first_model.endpoint_url + "/invocations",
        content=PROBE.encode(),
        headers={"Content-Type": "text/plain", "Accept": "*/*"},
    )
    refused = httpx.post(
        first_model.endpoint_url + "/invocations",
        content=b"x",
        headers={"Content-Type": "text/html"},
    )

    assert ping.status_code == 200
    assert answer.json() == verdict_in_process(models["first"], PROBE)
    assert refused.status_code == 415


# --- model updates --------------------------------------------------------------------------


def _hammer(url: str, stop: threading.Event, outcomes: list[Any]) -> None:
    with httpx.Client(trust_env=False, timeout=30) as client:
        while not stop.is_set():
            try:
                response = client.post(url, json={"review": PROBE})
                outcomes.append(
                    response.json()["score"] if response.status_code == 200 else response.text
                )
            except httpx.HTTPError as error:
                outcomes.append(repr(error))


def test_a_new_model_is_swapped_in_under_load_without_a_failed_request(
    first_model: RunningStack, models: dict[str, Path], scores: dict[str, float]
) -> None:
    old, new = scores["first"], scores["second"]
    stop, outcomes = threading.Event(), []
    clients = [
        threading.Thread(target=_hammer, args=(first_model.api_url, stop, outcomes))
        for _ in range(4)
    ]
    for client in clients:
        client.start()
    try:
        time.sleep(0.5)
        first_model.serve(models["second"])
        time.sleep(0.5)
    finally:
        stop.set()
        for client in clients:
            client.join()

    failures = [outcome for outcome in outcomes if not isinstance(outcome, float)]
    assert failures == []
    assert {round(score, 5) for score in outcomes} == {round(old, 5), round(new, 5)}
    assert outcomes[0] == pytest.approx(old) and outcomes[-1] == pytest.approx(new)


@pytest.mark.parametrize("bad", ["corrupt", "incompatible", "failing", "turned"])
def test_an_artifact_that_does_not_load_or_prove_itself_leaves_the_old_model_serving(
    first_model: RunningStack, models: dict[str, Path], scores: dict[str, float], bad: str
) -> None:
    since = first_model.mark()

    install_atomically(models[bad], first_model.model_path)
    refusal = first_model.wait_for("model update refused", since)

    assert f"still serving sha256={file_sha256(models['first'])[:12]}" in refusal
    if bad in ("failing", "turned"):
        # It loads; its own smoke test refuses it.
        first_model.wait_for(r"SmokeTestFailed: 6 of 6 smoke-test answers differ", since)
    assert _probe(first_model) == pytest.approx(scores["first"])
    # ...and the next good artifact is taken.
    first_model.serve(models["second"])
    assert _probe(first_model) == pytest.approx(scores["second"])


def recorded_accuracy(artifact: Path, destination: Path, change: float) -> tuple[Path, float]:
    """The same model, its recorded validation accuracy moved by ``change``."""
    baseline = json.loads(_member(artifact, BASELINE_FILE))
    baseline["accuracy"] += change
    return (
        modified_artifact(artifact, destination, {BASELINE_FILE: json.dumps(baseline)}),
        baseline["accuracy"],
    )


def test_the_promotion_gate_refuses_a_worse_model_and_takes_a_better_one(
    models: dict[str, Path], tmp_path: Path
) -> None:
    worse, worse_accuracy = recorded_accuracy(models["first"], tmp_path / "worse.tar.gz", -0.2)
    better, _ = recorded_accuracy(models["first"], tmp_path / "better.tar.gz", 0.01)
    served = tmp_path / "served" / "model.tar.gz"
    served.parent.mkdir()
    install_atomically(models["first"], served)
    stack = start_stack(served, gate=True)
    try:
        since = stack.mark()
        install_atomically(worse, stack.model_path)
        refusal = stack.wait_for("model update refused by the promotion gate", since)
        probe = _probe(stack)
        stack.serve(better)
        passed = stack.log_since(since)
    finally:
        assert stack.stop() == 0

    assert "worse validation accuracy by more than 0.010" in refusal
    assert f"validation accuracy {worse_accuracy:.4f}" in refusal
    assert f"where sha256={file_sha256(models['first'])[:12]} serving has" in refusal
    assert file_sha256(served) == file_sha256(better)
    assert probe == pytest.approx(verdict_in_process(models["first"], PROBE)["score"])
    assert "promotion gate passed" in passed


def test_a_model_that_fails_is_a_bad_gateway_without_its_details(
    first_model: RunningStack, models: dict[str, Path]
) -> None:
    first_model.serve(models["broken"])
    since = first_model.mark()

    response = post_review(first_model.api_url, PROBE)

    assert_documented_error(response, 502, "model_error")
    assert "broken on purpose" not in response.text
    first_model.wait_for(r"model failed \(500\).*broken on purpose", since)


# --- faults ---------------------------------------------------------------------------------


def test_a_killed_endpoint_is_unavailable_then_restarted_without_restarting_the_api(
    first_model: RunningStack,
) -> None:
    api_pid = first_model.tier_pid("api_emulator")

    since = first_model.kill_endpoint()
    answers = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        started = time.monotonic()
        response = post_review(first_model.api_url, PROBE)
        answers.append((response.status_code, time.monotonic() - started))
        if response.status_code == 200 and len(answers) > 1:
            break
        if response.status_code == 503:
            assert_documented_error(response, 503, "model_unreachable")
            assert response.headers["retry-after"] == "1"
        elif response.status_code == 502:
            assert_documented_error(response, 502, "upstream_error")
        time.sleep(0.1)

    statuses = {status for status, _ in answers}
    assert 200 in statuses and statuses & {502, 503} and statuses <= {200, 502, 503}
    assert max(seconds for _, seconds in answers) < 5
    first_model.wait_for_endpoint_restart(since)
    assert first_model.tier_pid("api_emulator") == api_pid


@pytest.fixture
def silent_endpoint() -> Iterator[str]:
    """A port that accepts connections and never answers: a hung model server."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(64)
        yield f"http://127.0.0.1:{server.getsockname()[1]}"


@pytest.fixture
def api_before(tmp_path: Path) -> Iterator[Any]:
    """An API emulator of its own in front of a given endpoint, with given Lambda settings."""
    started = []

    def start(endpoint_url: str, endpoint_name: str, **environment: str) -> str:
        port = free_port()
        process = subprocess.Popen(
            [
                *(sys.executable, "-m", "sentiment.api_emulator"),
                *("--endpoint-url", endpoint_url, "--endpoint-name", endpoint_name),
                *("--allowed-origin", "*", "--port", str(port)),
            ],
            cwd=PROJECT_ROOT,
            env={**os.environ, **environment},
            stdout=(tmp_path / "api.log").open("w"),
            stderr=subprocess.STDOUT,
        )
        started.append(process)
        url = f"http://127.0.0.1:{port}/predict"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                httpx.options(url, timeout=1)
                return url
            except httpx.TransportError:
                time.sleep(0.1)
        raise AssertionError("the API emulator did not start")

    yield start
    for process in started:
        process.send_signal(signal.SIGTERM)
        process.wait(15)


def test_a_silent_endpoint_is_a_gateway_timeout_within_the_configured_time(
    api_before: Any, silent_endpoint: str
) -> None:
    url = api_before(
        silent_endpoint,
        DEFAULT_ENDPOINT_NAME,
        SAGEMAKER_READ_TIMEOUT="1",
        SAGEMAKER_MAX_ATTEMPTS="1",
    )
    started = time.monotonic()

    response = post_review(url, PROBE)

    assert_documented_error(response, 504, "model_timeout")
    assert time.monotonic() - started < 5


def test_an_endpoint_not_in_service_is_unavailable(api_before: Any, stack: RunningStack) -> None:
    url = api_before(stack.endpoint_url, "not-deployed-yet")

    assert_documented_error(post_review(url, PROBE), 503, "endpoint_unavailable")


def test_the_api_emulator_runs_with_its_malloc_settings(stack: RunningStack) -> None:
    # What keeps its memory flat under a soak (see API_EMULATOR_GLIBC_TUNABLES). glibc
    # rewrites the variable in the process's own environment as it starts, keeping only the
    # tunables it would hand on (not mmap_threshold, which it applies all the same).
    environment = psutil.Process(stack.tier_pid("api_emulator")).environ()
    visible = environment["GLIBC_TUNABLES"].split(":")

    assert "glibc.malloc.tcache_count=0" in visible
    assert set(visible) <= set(API_EMULATOR_GLIBC_TUNABLES.split(":"))


# --- shutdown -------------------------------------------------------------------------------


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_stops_every_tier_cleanly(models: dict[str, Path], signum: int) -> None:
    running = start_stack(models["first"])
    tiers = psutil.Process(running.process.pid).children()
    assert len(tiers) == 3
    assert post_review(running.api_url, PROBE).status_code == 200

    assert running.stop(signum, timeout=20) == 0

    # Exit status 0 means every tier stopped by itself with status 0 too.
    assert running.wait_for("sentiment.stack INFO stopped$")
    assert psutil.wait_procs(tiers, timeout=5)[1] == []
    with pytest.raises(httpx.TransportError):
        httpx.get(running.page_url, timeout=2)
