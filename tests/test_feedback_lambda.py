"""Feedback on a verdict: the prediction Lambda keeps each prediction, the feedback Lambda takes
a visitor's label for one, and every bad request gets its documented status.

The SQLite store (the local stack's) runs for real; the DynamoDB and S3 calls deployed
functions make are checked with botocore's Stubber.
"""

from __future__ import annotations

import io
import json
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from test_prediction_lambda import (
    EXPLAINED_REVIEW,
    OPENAPI,
    SITE,
    VERDICT,
    Kept,
    event,
    expect_invocation,
    explained_answer,
    review_event,
)

from contract.feedback import (
    DEFAULT_FEEDBACK_PER_SOURCE_PER_DAY,
    PREDICTION_FIELDS,
    DirectoryFeedbackStore,
    parse_record,
    source_id,
)
from lambda_src.prediction import endpoint, feedback, records
from lambda_src.prediction import handler as prediction
from lambda_src.prediction.records import DynamoDbPredictionStore, SqlitePredictionStore
from lambda_src.prediction.settings import load_settings

PREDICTION_ID = "c6af9ac6-7b61-11e6-9a41-93e8deadbeef"
UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"
VISITOR = "203.0.113.7"
CONTEXT = SimpleNamespace(aws_request_id="lambda-request-1")


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME"):
        monkeypatch.delenv(name, raising=False)
    for name in ("CAPTURE_DESTINATION", "PREDICTION_TABLE", "FEEDBACK_PER_SOURCE_PER_DAY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.setenv("ENDPOINT_NAME", "imdb-sentiment-endpoint")
    monkeypatch.setenv("ALLOWED_ORIGIN", SITE)
    monkeypatch.setenv("PREDICTION_DATABASE", str(tmp_path / "predictions.sqlite"))
    monkeypatch.setenv("FEEDBACK_DESTINATION", str(tmp_path / "feedback"))
    monkeypatch.setattr(endpoint, "_client", None)
    monkeypatch.setattr(records, "_stores", {})
    monkeypatch.setattr(feedback, "_stores", {})


@pytest.fixture
def stub() -> Iterator[Stubber]:
    with Stubber(endpoint.runtime_client(load_settings(os.environ))) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


def predict(stub: Stubber, review: str = "A superb film.", visitor: str = VISITOR) -> str:
    """Score ``review`` through the prediction handler; the prediction id it answered with."""
    request_id = str(uuid.uuid4())
    expect_invocation(stub, review, VERDICT, request_id)
    event = review_event(review)
    event["requestContext"] = {"requestId": request_id, "identity": {"sourceIp": visitor}}
    response = prediction.handler(event, CONTEXT)
    assert response["statusCode"] == 200, response["body"]
    return json.loads(response["body"])["prediction_id"]


def feedback_event(
    body: Any, content_type: str = "application/json", visitor: str = VISITOR
) -> dict[str, Any]:
    return {
        "resource": "/feedback",
        "path": "/feedback",
        "httpMethod": "POST",
        "headers": {"Content-Type": content_type},
        "body": body if isinstance(body, str) else json.dumps(body),
        "isBase64Encoded": False,
        "requestContext": {
            "requestId": "f00dfeed-0000-4000-8000-000000000001",
            "identity": {"sourceIp": visitor},
        },
    }


def send(body: Any, **options: Any) -> tuple[int, Any]:
    """Give feedback through the handler; the answer must be one the document promises."""
    response = feedback.handler(feedback_event(body, **options), CONTEXT)
    status, answer = response["statusCode"], json.loads(response["body"])
    assert response["headers"]["Access-Control-Allow-Origin"] == SITE
    operation = OPENAPI["paths"]["/feedback"]["post"]
    assert str(status) in operation["responses"], f"undocumented status {status}"
    if status == 200:
        receipt = OPENAPI["components"]["schemas"]["FeedbackReceipt"]
        assert set(answer) == set(receipt["properties"])
    else:
        assert set(answer) == {"error"} and set(answer["error"]) == {"code", "message"}
    return status, answer


def stored(tmp_path: Path) -> dict[str, dict[str, Any]]:
    store = DirectoryFeedbackStore(tmp_path / "feedback")
    return {name: parse_record(raw) for name, raw in store.items()}


def test_feedback_joins_the_servers_record_of_the_prediction(stub: Stubber, tmp_path: Path) -> None:
    prediction_id = predict(stub)

    status, answer = send({"prediction_id": prediction_id, "label": "negative"})

    assert (status, answer) == (
        200,
        {"prediction_id": prediction_id, "label": "negative", "status": "recorded"},
    )
    record = stored(tmp_path)[f"{prediction_id}.json"]
    assert record["label"] == "negative"
    # Everything else is the server's own: the visitor sent only an id and a label.
    assert (record["review"], record["predicted"], record["score"]) == (
        "A superb film.",
        "positive",
        0.93,
    )
    assert record["model_version"] == "3f9c2a71d04b8e65"
    assert record["source"] == source_id(VISITOR) != VISITOR


def test_an_explained_verdict_is_kept_and_given_feedback_without_its_explanation(
    stub: Stubber, tmp_path: Path
) -> None:
    request_id = str(uuid.uuid4())
    expect_invocation(stub, EXPLAINED_REVIEW, explained_answer(), request_id, explain=True)
    request = event(json.dumps({"review": EXPLAINED_REVIEW, "explain": True}))
    request["requestContext"] = {"requestId": request_id, "identity": {"sourceIp": VISITOR}}
    answer = json.loads(prediction.handler(request, CONTEXT)["body"])
    assert "explanation" in answer

    assert send({"prediction_id": request_id, "label": "negative"})[0] == 200

    # The server keeps what feedback joins, the verdict; the explanation is the caller's alone.
    with sqlite3.connect(tmp_path / "predictions.sqlite") as database:
        (kept,) = database.execute("SELECT record FROM items WHERE pk LIKE 'prediction#%'")
    assert set(json.loads(kept[0])) == set(PREDICTION_FIELDS)
    (record,) = stored(tmp_path).values()
    assert set(record) == {*PREDICTION_FIELDS, "label", "received_at"}
    assert record["review"] == EXPLAINED_REVIEW


def test_a_second_answer_replaces_the_first_and_null_takes_it_back(
    stub: Stubber, tmp_path: Path
) -> None:
    prediction_id = predict(stub)
    send({"prediction_id": prediction_id, "label": "negative"})
    send({"prediction_id": prediction_id, "label": "positive"})

    assert [record["label"] for record in stored(tmp_path).values()] == ["positive"]

    status, answer = send({"prediction_id": prediction_id, "label": None})

    assert (status, answer["status"]) == (200, "withdrawn")
    assert stored(tmp_path) == {}
    # Taking back what is no longer there is not an error.
    assert send({"prediction_id": prediction_id, "label": None})[0] == 200


@pytest.mark.parametrize(
    ("body", "options", "status", "code"),
    [
        ({"prediction_id": UNKNOWN_ID, "label": "negative"}, {}, 404, "unknown_prediction"),
        (
            {"prediction_id": "../../etc/passwd", "label": "negative"},
            {},
            400,
            "invalid_prediction_id",
        ),
        (
            {"prediction_id": PREDICTION_ID.upper(), "label": "negative"},
            {},
            400,
            "invalid_prediction_id",
        ),
        ({"prediction_id": PREDICTION_ID, "label": "neutral"}, {}, 400, "invalid_label"),
        ({"prediction_id": PREDICTION_ID, "label": 1}, {}, 400, "invalid_label"),
        ({"prediction_id": PREDICTION_ID}, {}, 400, "invalid_body"),
        # What the record says about the review comes from the server, never from the client.
        (
            {"prediction_id": PREDICTION_ID, "label": "negative", "review": "x"},
            {},
            400,
            "invalid_body",
        ),
        (["a list"], {}, 400, "invalid_body"),
        ('{"prediction_id": ', {}, 400, "invalid_json"),
        ("x" * 2000, {}, 413, "feedback_too_large"),
        (
            {"prediction_id": PREDICTION_ID, "label": "negative"},
            {"content_type": "text/plain"},
            415,
            "unsupported_media_type",
        ),
    ],
)
def test_bad_feedback_gets_its_documented_status_and_stores_nothing(
    body: Any, options: dict[str, str], status: int, code: str, tmp_path: Path
) -> None:
    got_status, answer = send(body, **options)

    assert (got_status, answer["error"]["code"]) == (status, code)
    assert stored(tmp_path) == {}


def test_one_address_adds_at_most_its_daily_allowance(
    stub: Stubber, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("FEEDBACK_PER_SOURCE_PER_DAY", "3")
    ids = [predict(stub, f"Review number {n}.") for n in range(5)]

    statuses = [send({"prediction_id": i, "label": "negative"})[0] for i in ids]

    assert statuses == [200, 200, 200, 429, 429]
    assert len(stored(tmp_path)) == 3
    # Another address has its own allowance; taking back costs none.
    assert send({"prediction_id": ids[3], "label": "negative"}, visitor="198.51.100.1")[0] == 200
    assert send({"prediction_id": ids[0], "label": None})[0] == 200


def test_the_allowance_holds_under_concurrent_feedback(tmp_path: Path) -> None:
    store = SqlitePredictionStore(str(tmp_path / "allowance.sqlite"))
    now = datetime.now(UTC)
    granted: list[bool] = []

    def take() -> None:
        for _ in range(10):
            granted.append(store.take_allowance("source", now, 15))

    threads = [threading.Thread(target=take) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert granted.count(True) == 15


def test_an_expired_prediction_takes_no_feedback_and_is_deleted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "expiry.sqlite"
    store = SqlitePredictionStore(str(path))
    expires_at = int(time.time()) + 600
    store.put({"prediction_id": PREDICTION_ID, "review": "Fine."}, expires_at)
    store.put({"prediction_id": UNKNOWN_ID, "review": "Old."}, int(time.time()) - 1)

    assert store.get(PREDICTION_ID, now=expires_at - 1) == {
        "prediction_id": PREDICTION_ID,
        "review": "Fine.",
    }
    assert store.get(PREDICTION_ID, now=expires_at) is None
    assert store.get(UNKNOWN_ID, now=time.time()) is None
    # Deleted at the next pruning, as DynamoDB's TTL deletes in its own time.
    monkeypatch.setattr(store, "PRUNE_SECONDS", 0)
    store.put({"prediction_id": str(uuid.uuid4()), "review": "New."}, expires_at)
    with sqlite3.connect(path) as connection:
        keys = [row[0] for row in connection.execute("SELECT pk FROM items")]
    assert f"prediction#{UNKNOWN_ID}" not in keys and f"prediction#{PREDICTION_ID}" in keys


def test_a_failed_record_costs_the_chance_of_feedback_not_the_answer(
    stub: Stubber, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PREDICTION_DATABASE", "/nonexistent/directory/predictions.sqlite")
    buffer = io.StringIO()
    original = prediction._logger.handlers[0].setStream(buffer)
    try:
        prediction_id = predict(stub)
    finally:
        prediction._logger.handlers[0].setStream(original)

    entry = json.loads(buffer.getvalue())
    assert (entry["remembered"], entry["remember_error"]) == (False, "OperationalError")
    assert prediction_id == entry["prediction_id"]


def test_an_interrupted_write_leaves_the_old_record_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = DirectoryFeedbackStore(tmp_path)
    old = {"prediction_id": PREDICTION_ID, "label": "negative", "review": "Dull."}
    store.put(old)

    def crash(_: int) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", crash)
    with pytest.raises(OSError, match="disk full"):
        store.put(old | {"label": "positive"})

    assert [path.name for path in tmp_path.iterdir()] == [f"{PREDICTION_ID}.json"]
    assert json.loads((tmp_path / f"{PREDICTION_ID}.json").read_bytes()) == old


# --- the deployed stores: DynamoDB and S3 -------------------------------------------------------


def dynamodb_store() -> tuple[DynamoDbPredictionStore, Any]:
    client = boto3.client("dynamodb", region_name="eu-west-1")
    return DynamoDbPredictionStore(client, "predictions"), client


def test_a_prediction_is_kept_under_its_kind_with_its_expiry() -> None:
    store, client = dynamodb_store()
    record = {"prediction_id": PREDICTION_ID, "review": "Fine.", "score": 0.5}
    with Stubber(client) as stubber:
        stubber.add_response(
            "put_item",
            {},
            {
                "TableName": "predictions",
                "Item": {
                    "pk": {"S": f"prediction#{PREDICTION_ID}"},
                    "record": {"S": json.dumps(record)},
                    "expires_at": {"N": "1900000000"},
                },
            },
        )
        store.put(record, 1_900_000_000)


@pytest.mark.parametrize(("expires_at", "found"), [(2_000, True), (1_000, False)])
def test_a_prediction_is_read_consistently_and_not_after_it_expires(
    expires_at: int, found: bool
) -> None:
    store, client = dynamodb_store()
    record = {"prediction_id": PREDICTION_ID, "review": "Fine."}
    with Stubber(client) as stubber:
        stubber.add_response(
            "get_item",
            {"Item": {"record": {"S": json.dumps(record)}, "expires_at": {"N": str(expires_at)}}},
            {
                "TableName": "predictions",
                "Key": {"pk": {"S": f"prediction#{PREDICTION_ID}"}},
                "ConsistentRead": True,
            },
        )
        assert store.get(PREDICTION_ID, now=1_500.0) == (record if found else None)


def test_the_daily_allowance_is_one_conditional_update() -> None:
    store, client = dynamodb_store()
    now = datetime(2026, 12, 2, 23, 59, tzinfo=UTC)
    expected = {
        "TableName": "predictions",
        "Key": {"pk": {"S": "quota#5d41402abc4b2a76#2026-12-02"}},
        "UpdateExpression": Kept(),
        "ConditionExpression": "attribute_not_exists(n) OR n < :limit",
        "ExpressionAttributeValues": {
            ":one": {"N": "1"},
            ":limit": {"N": str(DEFAULT_FEEDBACK_PER_SOURCE_PER_DAY)},
            ":expires": {"N": str(int(now.timestamp()) + 2 * 86_400)},
        },
    }
    with Stubber(client) as stubber:
        stubber.add_response("update_item", {}, expected)
        stubber.add_client_error(
            "update_item", "ConditionalCheckFailedException", expected_params=expected
        )
        taken = [
            store.take_allowance("5d41402abc4b2a76", now, DEFAULT_FEEDBACK_PER_SOURCE_PER_DAY)
            for _ in range(2)
        ]

    assert taken == [True, False]


def s3_feedback(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("FEEDBACK_DESTINATION", "s3://imdb-artifacts/feedback")
    return feedback.feedback_store("s3://imdb-artifacts/feedback").client


def test_in_aws_a_record_is_one_s3_object_named_by_its_prediction(
    stub: Stubber, monkeypatch: pytest.MonkeyPatch
) -> None:
    prediction_id = predict(stub)
    s3 = s3_feedback(monkeypatch)
    body = Kept()
    with Stubber(s3) as s3_stub:
        s3_stub.add_response(
            "put_object",
            {},
            {
                "Bucket": "imdb-artifacts",
                "Key": f"feedback/{prediction_id}.json",
                "Body": body,
                "ContentType": "application/json",
            },
        )
        s3_stub.add_response(
            "delete_object",
            {},
            {"Bucket": "imdb-artifacts", "Key": f"feedback/{prediction_id}.json"},
        )
        assert send({"prediction_id": prediction_id, "label": "negative"})[0] == 200
        assert send({"prediction_id": prediction_id, "label": None})[0] == 200
        s3_stub.assert_no_pending_responses()

    assert parse_record(body.value)["review"] == "A superb film."


def test_a_store_that_fails_gets_a_503_to_retry(
    stub: Stubber, monkeypatch: pytest.MonkeyPatch
) -> None:
    prediction_id = predict(stub)
    s3 = s3_feedback(monkeypatch)
    with Stubber(s3) as s3_stub:
        s3_stub.add_client_error("put_object", "SlowDown", http_status_code=503)
        status, answer = send({"prediction_id": prediction_id, "label": "negative"})

    assert (status, answer["error"]["code"]) == (503, "feedback_unavailable")
