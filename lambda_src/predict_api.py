"""API Gateway proxy handler for ``POST /predict``: one movie review in, one verdict out.

Deployed, this module is the Lambda handler ``predict_api.handler`` (the asset root is
``lambda_src/``); locally the API emulator imports it as ``lambda_src.predict_api`` and calls the
same function. It is deliberately self-contained (standard library and boto3 only) so it runs
unchanged in both places.

The request reaches the SageMaker endpoint ``ENDPOINT_NAME`` through ``InvokeEndpoint``; the
endpoint's JSON answer ``{"sentiment": "positive"|"negative", "score": 0..1}``, with the optional
boolean ``low_confidence`` (the verdict has little to stand on), is validated and returned. Every
failure becomes ``{"error": {"code", "message"}}`` with a status that tells the caller whose fault
it was and whether retrying can help (see ``lambda_src/openapi.json``).

Environment:
    ENDPOINT_NAME       the SageMaker endpoint to invoke (required)
    ALLOWED_ORIGIN      the web page's origin, e.g. ``https://d111.cloudfront.net``; ``*`` only
                        where that is intended, e.g. on a developer's machine (required)
    MAX_REVIEW_CHARS    longest accepted review in characters (default 20000)
    SAGEMAKER_CONNECT_TIMEOUT, SAGEMAKER_READ_TIMEOUT   seconds (defaults 2 and 8)
    SAGEMAKER_MAX_ATTEMPTS                              tries per request, retries included (2)
``AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME`` is honoured by boto3 itself; the local stack uses it to
point the client at the endpoint emulator.
"""

from __future__ import annotations

import base64
import json
import logging
import math
import os
import re
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError, HTTPClientError, ReadTimeoutError
from botocore.exceptions import ConnectionError as BotoConnectionError

DEFAULT_MAX_REVIEW_CHARS = 20_000

# Worst case with the defaults: 2 attempts x (2 s connect + 8 s read) + under 1 s of backoff,
# comfortably inside API Gateway's 29 s integration timeout, so the caller always gets our
# JSON error rather than the gateway's bare 504.
DEFAULT_CONNECT_TIMEOUT = 2.0
DEFAULT_READ_TIMEOUT = 8.0
DEFAULT_MAX_ATTEMPTS = 2

# A JSON string spends at most 12 bytes on one character (a "\\uXXXX\\uXXXX" surrogate pair), so
# a body larger than this cannot hold an acceptable review; refusing it before decoding keeps a
# 6 MB payload from costing a JSON parse.
_MAX_BODY_BYTES_PER_CHAR = 12
_BODY_OVERHEAD_BYTES = 1024

# The model's own message is passed on when it rejects a review; cap what a caller gets to see.
_MAX_MESSAGE_CHARS = 300

_ORIGIN = re.compile(r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?$")

_SUPPORTED_MEDIA_TYPES = ("application/json", "text/plain")
_SUPPORTED_CHARSETS = ("utf-8", "utf8", "us-ascii")

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

_logger = logging.getLogger("predict_api")


class _JsonLineFormatter(logging.Formatter):
    """One JSON object per line, so CloudWatch Logs Insights can query the fields directly."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(getattr(record, "fields", {}))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def _configure_logging() -> None:
    # Our own handler rather than the root logger: the Lambda runtime installs a plain-text root
    # handler, and the local API emulator has its own, so neither can reformat these lines.
    if not _logger.handlers:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(_JsonLineFormatter())
        _logger.addHandler(handler)
        _logger.setLevel(logging.INFO)
        _logger.propagate = False


_configure_logging()


class ApiError(Exception):
    """A failure with the HTTP status and the ``error`` object the caller receives."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


class ConfigurationError(Exception):
    """The function's environment is missing or malformed: a deployment bug."""


@dataclass(frozen=True)
class Settings:
    endpoint_name: str
    allowed_origin: str
    max_review_chars: int = DEFAULT_MAX_REVIEW_CHARS
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    read_timeout: float = DEFAULT_READ_TIMEOUT
    max_attempts: int = DEFAULT_MAX_ATTEMPTS


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


def load_settings(environ: Mapping[str, str]) -> Settings:
    """Read and check the function's environment."""
    endpoint_name = environ.get("ENDPOINT_NAME", "").strip()
    if not endpoint_name:
        raise ConfigurationError("ENDPOINT_NAME is not set")
    origin = environ.get("ALLOWED_ORIGIN", "").strip()
    if origin != "*" and not _ORIGIN.match(origin):
        raise ConfigurationError(
            f"ALLOWED_ORIGIN must be an origin such as https://example.org (or '*'), not {origin!r}"
        )
    return Settings(
        endpoint_name=endpoint_name,
        allowed_origin=origin,
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
    )


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


# --- request parsing ------------------------------------------------------------------------


def _header(event: Mapping[str, Any], name: str) -> str:
    for key, value in (event.get("headers") or {}).items():
        if key.lower() == name and value is not None:
            return str(value)
    return ""


def _media_type(content_type: str) -> str:
    """The lower-cased media type of a Content-Type header, or raise 415."""
    media_type, *parameters = (part.strip() for part in content_type.split(";"))
    media_type = media_type.lower()
    if media_type not in _SUPPORTED_MEDIA_TYPES:
        shown = media_type or "none"
        raise ApiError(
            415,
            "unsupported_media_type",
            f"Send the review as application/json or text/plain (got {shown}).",
        )
    for parameter in parameters:
        name, _, value = parameter.partition("=")
        charset = value.strip().strip('"').lower()
        if name.strip().lower() == "charset" and charset not in _SUPPORTED_CHARSETS:
            raise ApiError(
                415, "unsupported_media_type", "Send the review encoded as UTF-8 (charset=utf-8)."
            )
    return media_type


def _body_bytes(event: Mapping[str, Any], max_chars: int) -> bytes:
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        try:
            raw = base64.b64decode(body, validate=True)
        except ValueError:  # binascii.Error is one
            raise ApiError(400, "invalid_body", "The request body is not valid base64.") from None
    else:
        try:
            raw = body.encode("utf-8")
        except UnicodeEncodeError:
            raise _not_utf8() from None
    if len(raw) > max_chars * _MAX_BODY_BYTES_PER_CHAR + _BODY_OVERHEAD_BYTES:
        raise _too_long(max_chars)
    return raw


def _not_utf8() -> ApiError:
    return ApiError(400, "invalid_encoding", "The review is not valid UTF-8.")


def _too_long(max_chars: int) -> ApiError:
    return ApiError(
        413, "review_too_long", f"The review is longer than {max_chars:,} characters; shorten it."
    )


def _review_from_json(text: str) -> Any:
    try:
        document = json.loads(text)
    except (ValueError, RecursionError):
        raise ApiError(400, "invalid_json", "The request body is not valid JSON.") from None
    if not isinstance(document, dict) or set(document) != {"review"}:
        raise ApiError(
            400, "invalid_body", 'Send a JSON object with one member, "review" (a string).'
        )
    return document["review"]


def parse_review(event: Mapping[str, Any], max_chars: int) -> str:
    """The review in an API Gateway proxy event, or an ``ApiError`` saying what is wrong."""
    media_type = _media_type(_header(event, "content-type"))
    raw = _body_bytes(event, max_chars)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _not_utf8() from None
    review = _review_from_json(text) if media_type == "application/json" else text
    if not isinstance(review, str):
        raise ApiError(400, "invalid_body", 'The "review" member must be a string.')
    try:
        # JSON escapes can smuggle in lone surrogates, which are not text.
        review.encode("utf-8")
    except UnicodeEncodeError:
        raise _not_utf8() from None
    if not review.strip():
        raise ApiError(400, "empty_review", "The review is empty; write a few words.")
    if len(review) > max_chars:
        raise _too_long(max_chars)
    return review


# --- the model ------------------------------------------------------------------------------


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


def _verdict(payload: bytes) -> dict[str, Any]:
    """The endpoint's answer, checked: sentiment, score, the optional low_confidence, no more."""
    document = _json_object(payload)
    if document is not None:
        sentiment = document.get("sentiment")
        score = document.get("score")
        # Optional: models trained before the flag existed do not send it.
        low_confidence = document.get("low_confidence", False)
        if (
            sentiment in ("positive", "negative")
            and isinstance(score, int | float)
            and not isinstance(score, bool)
            and math.isfinite(score)
            and 0.0 <= score <= 1.0
            and isinstance(low_confidence, bool)
        ):
            verdict = {"sentiment": sentiment, "score": float(score)}
            if "low_confidence" in document:
                verdict["low_confidence"] = low_confidence
            return verdict
    raise ApiError(502, "invalid_model_response", "The model gave an answer we cannot read.")


def predict(client: Any, endpoint_name: str, review: str) -> dict[str, Any]:
    """Score one review on the endpoint, mapping every AWS failure to an ``ApiError``."""
    try:
        response = client.invoke_endpoint(
            EndpointName=endpoint_name,
            ContentType="application/json",
            Accept="application/json",
            Body=json.dumps({"review": review}).encode("utf-8"),
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
    return _verdict(payload)


# --- responses ------------------------------------------------------------------------------


# On every answer: JSON is never sniffed as anything else, and never framed or run as a page.
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
}


def _headers(origin: str | None) -> dict[str, str]:
    headers = {
        "Content-Type": "application/json",
        "Cache-Control": "no-store",
        **SECURITY_HEADERS,
        "Vary": "Origin",
    }
    if origin:
        headers["Access-Control-Allow-Origin"] = origin
    return headers


def _response(status: int, body: dict[str, Any] | None, origin: str | None) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": _headers(origin),
        "body": "" if body is None else json.dumps(body, separators=(",", ":")),
        "isBase64Encoded": False,
    }


def _error_response(error: ApiError, origin: str | None) -> dict[str, Any]:
    response = _response(
        error.status, {"error": {"code": error.code, "message": error.message}}, origin
    )
    if error.status == 503:
        response["headers"]["Retry-After"] = "1"
    return response


def _serve(event: Mapping[str, Any], settings: Settings, log: dict[str, Any]) -> dict[str, Any]:
    review = parse_review(event, settings.max_review_chars)
    log["review_chars"] = len(review)
    started = time.perf_counter()
    try:
        verdict = predict(runtime_client(settings), settings.endpoint_name, review)
    finally:
        log["model_ms"] = round((time.perf_counter() - started) * 1000, 2)
    log["sentiment"] = verdict["sentiment"]
    log["low_confidence"] = verdict.get("low_confidence")
    return _response(200, verdict, settings.allowed_origin)


def _cause(error: BaseException) -> dict[str, Any]:
    """What an operator needs to know about an upstream failure, without any review text."""
    cause = error.__cause__
    if cause is None:
        return {}
    fields: dict[str, Any] = {"cause": type(cause).__name__}
    if isinstance(cause, ClientError):
        fields["aws_error_code"] = cause.response.get("Error", {}).get("Code")
        fields["model_status"] = cause.response.get("OriginalStatusCode")
    return fields


def handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    """API Gateway (REST API) proxy integration entry point, for POST /predict alone.

    API Gateway answers the CORS preflight itself and refuses any other method or path
    before this runs (contract/api.py), so the handler never looks at the method.
    """
    started = time.perf_counter()
    log: dict[str, Any] = {
        "aws_request_id": getattr(context, "aws_request_id", None),
        "api_request_id": (event.get("requestContext") or {}).get("requestId"),
    }
    level, exc_info = logging.INFO, None
    origin: str | None = None
    try:
        settings = load_settings(os.environ)
        origin = settings.allowed_origin
        response = _serve(event, settings, log)
    except ApiError as error:
        log["error_code"] = error.code
        log.update(_cause(error))
        level = logging.WARNING if error.status >= 500 else logging.INFO
        response = _error_response(error, origin)
    except Exception as error:
        # Our own bug or a broken deployment: the details go to the log, never to the caller.
        log["error_code"] = "internal_error"
        level, exc_info = logging.ERROR, error
        response = _error_response(
            ApiError(500, "internal_error", "Something went wrong on our side; try again later."),
            origin,
        )
    log["status"] = response["statusCode"]
    log["latency_ms"] = round((time.perf_counter() - started) * 1000, 2)
    _logger.log(level, "request", exc_info=exc_info, extra={"fields": log})
    return response
