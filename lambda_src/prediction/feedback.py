"""The Lambda entry point for ``POST /feedback``: a visitor's word on a verdict, kept for
training (contract/feedback.py says what is kept and why).

The visitor sends ``{"prediction_id", "label"}``; everything else in the record comes from
the server's record of that prediction (records.py). A label of null takes the feedback back.
Each address may add ``FEEDBACK_PER_SOURCE_PER_DAY`` records a UTC day.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from contract.feedback import (
    DirectoryFeedbackStore,
    feedback_name,
    feedback_record,
    record_bytes,
    source_id,
)

from .errors import ApiError
from .gateway import answer, source_address
from .logs import json_logger
from .records import prediction_store
from .request import parse_feedback
from .responses import json_response
from .settings import FeedbackSettings, load_feedback_settings

_logger = json_logger("feedback")

_UNAVAILABLE = ApiError(
    503, "feedback_unavailable", "Your feedback could not be recorded just now; try again."
)


class S3FeedbackStore:
    """Each record as one S3 object, written whole or not at all."""

    def __init__(self, client: Any, destination: str) -> None:
        bucket, _, prefix = destination.removeprefix("s3://").partition("/")
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/")

    def _key(self, prediction_id: str) -> str:
        name = feedback_name(prediction_id)
        return f"{self.prefix}/{name}" if self.prefix else name

    def put(self, record: Mapping[str, Any]) -> str:
        key = self._key(record["prediction_id"])
        self.client.put_object(
            Bucket=self.bucket, Key=key, Body=record_bytes(record), ContentType="application/json"
        )
        return key

    def delete(self, prediction_id: str) -> bool:
        # S3 deletes what is not there without complaint: taking back twice is not an error.
        self.client.delete_object(Bucket=self.bucket, Key=self._key(prediction_id))
        return True


_stores: dict[str, Any] = {}
_lock = threading.Lock()


def feedback_store(destination: str) -> S3FeedbackStore | DirectoryFeedbackStore:
    with _lock:
        if destination not in _stores:
            if destination.startswith("s3://"):
                client = boto3.client(
                    "s3",
                    config=Config(
                        connect_timeout=2, read_timeout=5, retries={"total_max_attempts": 3}
                    ),
                )
                _stores[destination] = S3FeedbackStore(client, destination)
            else:
                _stores[destination] = DirectoryFeedbackStore(Path(destination))
        return _stores[destination]


def _serve(event: Mapping[str, Any], log: dict[str, Any], origin: str) -> dict[str, Any]:
    settings = load_feedback_settings(os.environ)
    prediction_id, label = parse_feedback(event)
    log["prediction_id"], log["label"] = prediction_id, label
    try:
        status = _record(settings, event, prediction_id, label)
    except (BotoCoreError, ClientError, OSError, sqlite3.Error) as error:
        log["store_error"] = type(error).__name__
        raise _UNAVAILABLE from error
    log["feedback"] = status
    return json_response(
        200, {"prediction_id": prediction_id, "label": label, "status": status}, origin
    )


def _record(
    settings: FeedbackSettings, event: Mapping[str, Any], prediction_id: str, label: str | None
) -> str:
    now = datetime.now(UTC)
    store = settings.predictions and prediction_store(settings.predictions)
    prediction = store.get(prediction_id, now.timestamp()) if store else None
    if store is None or prediction is None:
        raise ApiError(
            404,
            "unknown_prediction",
            "No verdict with this prediction_id is on record (it may be too old).",
        )
    feedback = feedback_store(settings.destination)
    if label is None:
        feedback.delete(prediction_id)
        return "withdrawn"
    if not store.take_allowance(source_id(source_address(event)), now, settings.per_source_per_day):
        raise ApiError(
            429,
            "feedback_limit",
            "Thank you: that is all the feedback we take from one address today.",
        )
    feedback.put(feedback_record(prediction, label, now))
    return "recorded"


def handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    """API Gateway (REST API) proxy integration entry point, for POST /feedback alone."""
    return answer(_serve, event, context, _logger)
