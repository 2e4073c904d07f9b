"""Feedback from the page: a visitor's word on whether a verdict was right.

The page sends only a prediction id (issued by the API with the verdict) and the label the
visitor says is right; the review, the verdict, its score and the model's version come from
the server's own record of that prediction (``prediction_record``), never from the visitor.
A feedback record is one JSON object per prediction, so a second answer replaces the first
and taking it back deletes it::

    {"prediction_id": "c6af9ac6-...", "label": "negative",
     "predicted": "positive", "score": 0.79, "low_confidence": false,
     "model_version": "3f9c2a71d04b8e65", "review": "...",
     "predicted_at": "2026-12-02T16:44:04Z", "received_at": "2026-12-02T16:44:09Z",
     "source": "5d41402abc4b2a76"}

Stored as ``<prediction id>.json`` under ``feedback/`` in the model-artifact bucket, and under
``artifacts/feedback/`` locally. ``source`` is a hash of the visitor's address, kept only to
cap what one source can add; an IPv4 address can be recovered from it by trying them all, so
the records are personal data: private, encrypted and deleted after the configured days.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import unicodedata
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

# Under the model-artifact bucket in AWS, under artifacts/ locally.
FEEDBACK_PREFIX = "feedback"
LABELS = ("negative", "positive")
# What one source (address) may add in a UTC day, at the API; `sentiment prepare` caps each
# source's share of a training set again (DEFAULT_FEEDBACK_PER_SOURCE), since days add up.
DEFAULT_FEEDBACK_PER_SOURCE_PER_DAY = 20
DEFAULT_FEEDBACK_PER_SOURCE = 100
DEFAULT_FEEDBACK_RETENTION_DAYS = 365
# The ids the API issues: API Gateway's request ids (and, locally, the emulator's) are UUIDs.
PREDICTION_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
# The members of a server's prediction record that a feedback record copies.
PREDICTION_FIELDS = (
    "prediction_id",
    "review",
    "predicted",
    "score",
    "low_confidence",
    "model_version",
    "predicted_at",
    "source",
)
# The server's store of predictions (a DynamoDB table in AWS) holds two kinds of item, told
# apart by the key's prefix so that each function's role can be limited to its kind:
# "prediction#<id>" (the record feedback joins) and "quota#<source>#<yyyy-mm-dd>" (the count
# of feedback that source gave that UTC day).
PREDICTION_KEY_PREFIX = "prediction#"
QUOTA_KEY_PREFIX = "quota#"
_NOT_WORD = re.compile(r"[\W_]+")


def timestamp(time: datetime) -> str:
    """UTC, to the second, ISO 8601 with a Z."""
    return time.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def source_id(address: str) -> str:
    """The pseudonym a visitor's address is kept under."""
    return hashlib.sha256(address.encode("utf-8")).hexdigest()[:16]


def prediction_record(
    *, prediction_id: str, review: str, verdict: Mapping[str, Any], source: str, time: datetime
) -> dict[str, Any]:
    """What the server keeps of a prediction, for the feedback that may name it later."""
    return {
        "prediction_id": prediction_id,
        "review": review,
        "predicted": verdict["sentiment"],
        "score": verdict["score"],
        "low_confidence": bool(verdict.get("low_confidence", False)),
        "model_version": verdict.get("model_version"),
        "predicted_at": timestamp(time),
        "source": source,
    }


def feedback_record(prediction: Mapping[str, Any], label: str, time: datetime) -> dict[str, Any]:
    """The feedback record: the visitor's ``label`` beside the server's record of the
    prediction."""
    if label not in LABELS:
        raise ValueError(f"label must be one of {LABELS}, not {label!r}")
    return {
        "prediction_id": prediction["prediction_id"],
        "label": label,
        **{name: prediction.get(name) for name in PREDICTION_FIELDS if name != "prediction_id"},
        "received_at": timestamp(time),
    }


def feedback_name(prediction_id: str) -> str:
    """The record's file (object) name below the feedback prefix."""
    if not PREDICTION_ID.match(prediction_id):
        raise ValueError(f"not a prediction id: {prediction_id!r}")
    return f"{prediction_id}.json"


def record_bytes(record: Mapping[str, Any]) -> bytes:
    return json.dumps(record, ensure_ascii=False, sort_keys=True).encode("utf-8")


def parse_record(raw: bytes) -> dict[str, Any]:
    """A stored feedback record, or ValueError saying what is wrong with it."""
    record = json.loads(raw)
    if not isinstance(record, dict):
        raise ValueError("not a JSON object")
    if record.get("label") not in LABELS:
        raise ValueError(f"label is not one of {LABELS}")
    if not isinstance(record.get("review"), str) or not record["review"].strip():
        raise ValueError("no review")
    if not PREDICTION_ID.match(str(record.get("prediction_id"))):
        raise ValueError("no prediction id")
    return record


def normalized_text(review: str) -> str:
    """A review reduced to its words, to find one pasted again with other spacing, case,
    punctuation or HTML line breaks (IMDB's files hold ``<br />``)."""
    text = unicodedata.normalize("NFKC", review).replace("<br />", " ").casefold()
    return " ".join(_NOT_WORD.sub(" ", text).split())


class DirectoryFeedbackStore:
    """Feedback records as files below a local directory, each written whole or not at all."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def put(self, record: Mapping[str, Any]) -> Path:
        path = self.root / feedback_name(record["prediction_id"])
        self.root.mkdir(parents=True, exist_ok=True)
        # Written beside its final name and renamed over it: a reader sees the old record or
        # the new one, and a write cut short leaves only a hidden temporary file.
        descriptor, temporary = tempfile.mkstemp(prefix=".", suffix=".tmp", dir=self.root)
        try:
            with os.fdopen(descriptor, "wb") as file:
                file.write(record_bytes(record))
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return path

    def delete(self, prediction_id: str) -> bool:
        """Take a record back; False if there was none."""
        try:
            (self.root / feedback_name(prediction_id)).unlink()
        except FileNotFoundError:
            return False
        return True

    def items(self) -> Iterator[tuple[str, bytes]]:
        """(name, bytes) of each stored record, in name order; temporary files skipped."""
        if not self.root.is_dir():
            return
        for path in sorted(self.root.glob("*.json")):
            yield path.name, path.read_bytes()
