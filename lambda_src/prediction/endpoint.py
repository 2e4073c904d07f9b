"""One review → the SageMaker endpoint's verdict, every AWS failure mapped to an ``ApiError``.

The endpoint answers ``{"sentiment": "positive"|"negative", "score": 0..1}``, with the optional
boolean ``low_confidence`` (the verdict has little to stand on), and, when asked with
``"explain": true``, the verdict's ``explanation`` (contract/explanation.py); the answer is
checked before it is passed on. A failure's status tells the caller whose fault it was and
whether retrying helps.
"""

from __future__ import annotations

import json
import math
import re
import threading
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError, HTTPClientError, ReadTimeoutError
from botocore.exceptions import ConnectionError as BotoConnectionError

from contract.explanation import MalformedExplanation, checked_explanation

from .errors import ApiError
from .settings import Settings

JSON = "application/json"

# The model's own message is passed on when it rejects a review; cap what a caller gets to see.
_MAX_MESSAGE_CHARS = 300

# Error codes the runtime uses for "try again later" (throttling, capacity, model loading).
_UNAVAILABLE_ERROR_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ServiceUnavailable",
        "ModelNotReadyException",
        "InternalDependencyException",
    }
)
# With fixed, well-formed parameters the runtime's validation error means the endpoint does not
# exist or is not InService (e.g. while it is being created).
_ENDPOINT_MISSING_ERROR_CODES = frozenset({"ValidationError", "ValidationException"})

# Statuses with which the model rejects the input itself (see model/inference.py): the caller's
# fault, so they pass through with the model's explanation.
_MODEL_REJECTION_CODES = {
    400: "invalid_review",
    413: "review_too_long",
    415: "unsupported_media_type",
}

# The model's name for itself (model/inference.py: a digest prefix); anything else is not passed on.
_MODEL_VERSION = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")

_client: Any = None
_client_lock = threading.Lock()


def runtime_client(settings: Settings) -> Any:
    """The container's one ``sagemaker-runtime`` client, created on first use.

    Created lazily so importing the module needs no region or credentials; guarded by a lock
    because creating clients from boto3's default session is not thread-safe and the local API
    emulator calls the handler from several threads.
    """
    global _client
    with _client_lock:
        if _client is None:
            _client = boto3.client(
                "sagemaker-runtime",
                config=Config(
                    connect_timeout=settings.connect_timeout,
                    read_timeout=settings.read_timeout,
                    retries={"total_max_attempts": settings.max_attempts, "mode": "standard"},
                    # A Lambda container serves one request at a time, the local emulator many.
                    max_pool_connections=64,
                ),
            )
        return _client


def _json_object(data: str | bytes) -> dict[str, Any] | None:
    """``data`` parsed if it is a JSON object, else None."""
    try:
        document = json.loads(data)
    except (ValueError, RecursionError):
        return None
    return document if isinstance(document, dict) else None


def _model_message(original: Any, status: int) -> str:
    """The human-readable part of what the model container answered.

    The SageMaker inference toolkit answers an error with its message, a newline and the
    container's stack trace: only the first line is meant for people. A handler's own JSON
    error body may span lines too, so the whole answer is read as JSON first.
    """
    message = original if isinstance(original, str) else ""
    document = _json_object(message)
    if document is None:
        message = message.split("\n", 1)[0]
        document = _json_object(message)
    if document is not None:
        nested = document.get("error")
        candidate = nested.get("message") if isinstance(nested, dict) else document.get("message")
        # A JSON body without a message is no text for people: the general message instead.
        message = candidate if isinstance(candidate, str) else ""
    message = " ".join(message.split())
    if not message:
        return f"The model rejected the review (HTTP {status})."
    if len(message) > _MAX_MESSAGE_CHARS:
        message = message[: _MAX_MESSAGE_CHARS - 1] + "…"
    return message


def _client_error(error: ClientError) -> ApiError:
    response = error.response
    code = response.get("Error", {}).get("Code", "")
    http_status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    if code == "ModelError":
        # botocore lifts the modeled fields of ModelError to the top of the response.
        try:
            original_status = int(response.get("OriginalStatusCode"))
        except (TypeError, ValueError):
            original_status = 0
        if original_status in _MODEL_REJECTION_CODES:
            return ApiError(
                original_status,
                _MODEL_REJECTION_CODES[original_status],
                _model_message(response.get("OriginalMessage"), original_status),
            )
        return ApiError(502, "model_error", "The model failed to score this review.")
    if code in _UNAVAILABLE_ERROR_CODES or http_status in (429, 503):
        return ApiError(
            503, "model_unavailable", "The model is busy or unavailable; try again shortly."
        )
    if code in _ENDPOINT_MISSING_ERROR_CODES:
        return ApiError(503, "endpoint_unavailable", "The model endpoint is not in service yet.")
    return ApiError(502, "upstream_error", "The model service failed; try again later.")


def _unreadable() -> ApiError:
    return ApiError(502, "invalid_model_response", "The model gave an answer we cannot read.")


def read_verdict(payload: bytes, review: str, explain: bool = False) -> dict[str, Any]:
    """The endpoint's answer about ``review``, checked: sentiment, score, the optional
    low_confidence and model_version, and the explanation when one was asked for, no more.

    An explanation is the endpoint's whole answer to ``explain``: one that is missing or does
    not fit the review is as unreadable as a missing score. Unasked, none is passed on.
    """
    document = _json_object(payload)
    if document is not None:
        sentiment = document.get("sentiment")
        score = document.get("score")
        # Optional: models older than these fields do not send them.
        low_confidence = document.get("low_confidence", False)
        version = document.get("model_version", "")
        if (
            sentiment in ("positive", "negative")
            and isinstance(score, int | float)
            and not isinstance(score, bool)
            and math.isfinite(score)
            and 0.0 <= score <= 1.0
            and isinstance(low_confidence, bool)
            and isinstance(version, str)
            and ("model_version" not in document or _MODEL_VERSION.match(version))
        ):
            verdict = {"sentiment": sentiment, "score": float(score)}
            if "low_confidence" in document:
                verdict["low_confidence"] = low_confidence
            if "model_version" in document:
                verdict["model_version"] = version
            if explain:
                try:
                    verdict["explanation"] = checked_explanation(
                        document.get("explanation"), review
                    )
                except MalformedExplanation as error:
                    raise _unreadable() from error
            return verdict
    raise _unreadable()


@dataclass(frozen=True)
class Exchange:
    """What was sent to the endpoint and what it answered: what a capture record holds."""

    request: bytes
    response: bytes
    response_type: str


def invoke(
    client: Any, endpoint_name: str, review: str, inference_id: str, explain: bool = False
) -> Exchange:
    """Score one review on the endpoint, mapping every AWS failure to an ``ApiError``.

    ``inference_id`` goes with the request, so the endpoint's own data capture records it.
    ``explain`` asks for the verdict's explanation; without it the request is exactly what it
    was before explanations existed, so the endpoint answers as fast and as it always did.
    """
    asked: dict[str, Any] = {"review": review}
    if explain:
        asked["explain"] = True
    request = json.dumps(asked).encode("utf-8")
    try:
        response = client.invoke_endpoint(
            EndpointName=endpoint_name,
            ContentType=JSON,
            Accept=JSON,
            Body=request,
            InferenceId=inference_id,
        )
        payload = response["Body"].read()
    except ClientError as error:
        raise _client_error(error) from error
    # Order matters: a read timeout is an HTTPClientError, a connect timeout a ConnectionError.
    except ReadTimeoutError as error:
        raise ApiError(
            504, "model_timeout", "The model took too long to answer; try again."
        ) from error
    except BotoConnectionError as error:
        raise ApiError(
            503, "model_unreachable", "The model could not be reached; try again."
        ) from error
    except HTTPClientError as error:
        raise ApiError(
            502, "upstream_error", "The connection to the model broke; try again."
        ) from error
    return Exchange(request, payload, response.get("ContentType", JSON))


def failure_fields(error: BaseException) -> dict[str, Any]:
    """What an operator needs to know about an upstream failure, without any review text."""
    cause = error.__cause__
    if cause is None:
        return {}
    fields: dict[str, Any] = {"cause": type(cause).__name__}
    if isinstance(cause, ClientError):
        fields["aws_error_code"] = cause.response.get("Error", {}).get("Code")
        fields["model_status"] = cause.response.get("OriginalStatusCode")
    return fields
