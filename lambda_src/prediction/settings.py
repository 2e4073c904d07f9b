"""The function's environment, read and checked once per request.

Environment:
    ENDPOINT_NAME       the SageMaker endpoint to invoke (required)
    ALLOWED_ORIGIN      the web page's origin, e.g. ``https://d111.cloudfront.net``; ``*`` only
                        where that is intended, e.g. on a developer's machine (required)
    MAX_REVIEW_CHARS    longest accepted review in characters (default 20000)
    SAGEMAKER_CONNECT_TIMEOUT, SAGEMAKER_READ_TIMEOUT   seconds (defaults 2 and 8)
    SAGEMAKER_MAX_ATTEMPTS                              tries per request, retries included (2)
    CAPTURE_DESTINATION where to record what the endpoint is asked and answers, when it cannot
                        record it itself (a serverless endpoint): ``s3://bucket/prefix``, or
                        an absolute directory on a developer's machine; unset records nothing
    CAPTURE_PERCENT     the share of requests recorded (default 100)
    CAPTURE_RETENTION_DAYS  for a directory destination: older records are deleted (in S3
                        the bucket's lifecycle rule does it)
    PREDICTION_TABLE    the DynamoDB table that keeps each prediction for the feedback that
                        may name it (records.py), or
    PREDICTION_DATABASE an absolute SQLite file path on a developer's machine; neither set
                        keeps nothing, and feedback is then refused as naming no prediction
    PREDICTION_RETENTION_DAYS  how long a prediction can receive feedback (default 30)
The feedback function (feedback.py) reads ALLOWED_ORIGIN, PREDICTION_* and
    FEEDBACK_DESTINATION where feedback records go: ``s3://bucket/prefix`` or an absolute
                        directory (required)
    FEEDBACK_PER_SOURCE_PER_DAY  what one address may add in a UTC day (default 20)
``AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME`` is honoured by boto3 itself; the local stack uses it to
point the client at the endpoint emulator.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from contract.capture import DEFAULT_CAPTURE_PERCENT, DEFAULT_CAPTURE_RETENTION_DAYS
from contract.feedback import DEFAULT_FEEDBACK_PER_SOURCE_PER_DAY

from .errors import ConfigurationError

# The stacks set MAX_REVIEW_CHARS from contract/limits.py; this fallback is held to it by a test.
DEFAULT_MAX_REVIEW_CHARS = 20_000

# Worst case with the defaults: 2 attempts x (2 s connect + 8 s read) + under 1 s of backoff,
# comfortably inside API Gateway's 29 s integration timeout, so the caller always gets our
# JSON error rather than the gateway's bare 504.
DEFAULT_CONNECT_TIMEOUT = 2.0
DEFAULT_READ_TIMEOUT = 8.0
DEFAULT_MAX_ATTEMPTS = 2

_ORIGIN = re.compile(r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?$")
_S3_URL = re.compile(r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/[^\s]*)?$")


@dataclass(frozen=True)
class PredictionStoreSettings:
    """Where predictions are kept for feedback: a DynamoDB table, or a local SQLite file."""

    table: str = ""
    database: str = ""
    retention_days: int = DEFAULT_CAPTURE_RETENTION_DAYS


@dataclass(frozen=True)
class Settings:
    endpoint_name: str
    allowed_origin: str
    max_review_chars: int = DEFAULT_MAX_REVIEW_CHARS
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    read_timeout: float = DEFAULT_READ_TIMEOUT
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    capture_destination: str = ""
    capture_percent: float = DEFAULT_CAPTURE_PERCENT
    capture_retention_days: int | None = None
    predictions: PredictionStoreSettings | None = None


@dataclass(frozen=True)
class FeedbackSettings:
    allowed_origin: str
    predictions: PredictionStoreSettings | None
    destination: str
    per_source_per_day: int = DEFAULT_FEEDBACK_PER_SOURCE_PER_DAY


def _positive_number(environ: Mapping[str, str], name: str, default: float, kind: type) -> Any:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be a {kind.__name__}, not {raw!r}") from None
    if not value > 0:
        raise ConfigurationError(f"{name} must be positive, not {raw!r}")
    return value


def allowed_origin(environ: Mapping[str, str]) -> str:
    origin = environ.get("ALLOWED_ORIGIN", "").strip()
    if origin != "*" and not _ORIGIN.match(origin):
        raise ConfigurationError(
            f"ALLOWED_ORIGIN must be an origin such as https://example.org (or '*'), not {origin!r}"
        )
    return origin


def load_settings(environ: Mapping[str, str]) -> Settings:
    """Read and check the prediction function's environment."""
    endpoint_name = environ.get("ENDPOINT_NAME", "").strip()
    if not endpoint_name:
        raise ConfigurationError("ENDPOINT_NAME is not set")
    return Settings(
        endpoint_name=endpoint_name,
        allowed_origin=allowed_origin(environ),
        max_review_chars=_positive_number(
            environ, "MAX_REVIEW_CHARS", DEFAULT_MAX_REVIEW_CHARS, int
        ),
        connect_timeout=_positive_number(
            environ, "SAGEMAKER_CONNECT_TIMEOUT", DEFAULT_CONNECT_TIMEOUT, float
        ),
        read_timeout=_positive_number(
            environ, "SAGEMAKER_READ_TIMEOUT", DEFAULT_READ_TIMEOUT, float
        ),
        max_attempts=_positive_number(environ, "SAGEMAKER_MAX_ATTEMPTS", DEFAULT_MAX_ATTEMPTS, int),
        capture_destination=_destination(environ, "CAPTURE_DESTINATION"),
        capture_percent=_capture_percent(environ),
        capture_retention_days=(
            _positive_number(environ, "CAPTURE_RETENTION_DAYS", 0, int)
            if environ.get("CAPTURE_RETENTION_DAYS", "").strip()
            else None
        ),
        predictions=_prediction_store(environ),
    )


def load_feedback_settings(environ: Mapping[str, str]) -> FeedbackSettings:
    """Read and check the feedback function's environment."""
    destination = _destination(environ, "FEEDBACK_DESTINATION")
    if not destination:
        raise ConfigurationError("FEEDBACK_DESTINATION is not set")
    return FeedbackSettings(
        allowed_origin=allowed_origin(environ),
        predictions=_prediction_store(environ),
        destination=destination,
        per_source_per_day=_positive_number(
            environ, "FEEDBACK_PER_SOURCE_PER_DAY", DEFAULT_FEEDBACK_PER_SOURCE_PER_DAY, int
        ),
    )


def _prediction_store(environ: Mapping[str, str]) -> PredictionStoreSettings | None:
    table = environ.get("PREDICTION_TABLE", "").strip()
    database = environ.get("PREDICTION_DATABASE", "").strip()
    if table and database:
        raise ConfigurationError("set PREDICTION_TABLE or PREDICTION_DATABASE, not both")
    if database and not database.startswith("/"):
        raise ConfigurationError(f"PREDICTION_DATABASE must be an absolute path, not {database!r}")
    if not (table or database):
        return None
    return PredictionStoreSettings(
        table=table,
        database=database,
        retention_days=_positive_number(
            environ, "PREDICTION_RETENTION_DAYS", DEFAULT_CAPTURE_RETENTION_DAYS, int
        ),
    )


def _destination(environ: Mapping[str, str], name: str) -> str:
    destination = environ.get(name, "").strip()
    if destination and not (_S3_URL.match(destination) or destination.startswith("/")):
        raise ConfigurationError(
            f"{name} must be s3://bucket/prefix or an absolute directory, not {destination!r}"
        )
    return destination


def _capture_percent(environ: Mapping[str, str]) -> float:
    percent = _positive_number(environ, "CAPTURE_PERCENT", DEFAULT_CAPTURE_PERCENT, float)
    if percent > 100:
        raise ConfigurationError(f"CAPTURE_PERCENT must be at most 100, not {percent:g}")
    return percent
