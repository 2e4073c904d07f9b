"""The Lambda entry point for ``POST /predict``: parse, call, map errors, log one line."""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections.abc import Mapping
from typing import Any

from .capture import traffic_capture
from .endpoint import JSON, Exchange, failure_fields, invoke, read_verdict, runtime_client
from .errors import ApiError
from .logs import json_logger
from .request import parse_review
from .responses import error_response, json_response
from .settings import Settings, load_settings

_logger = json_logger("predict_api")


def _serve(
    event: Mapping[str, Any], settings: Settings, prediction_id: str, log: dict[str, Any]
) -> dict[str, Any]:
    review = parse_review(event, settings.max_review_chars)
    log["review_chars"] = len(review)
    started = time.perf_counter()
    try:
        exchange = invoke(runtime_client(settings), settings.endpoint_name, review, prediction_id)
    finally:
        log["model_ms"] = round((time.perf_counter() - started) * 1000, 2)
    verdict = read_verdict(exchange.response)
    log["sentiment"] = verdict["sentiment"]
    log["low_confidence"] = verdict.get("low_confidence")
    log["model_version"] = verdict.get("model_version")
    _capture(settings, exchange, prediction_id, log)
    return json_response(200, verdict | {"prediction_id": prediction_id}, settings.allowed_origin)


def _capture(
    settings: Settings, exchange: Exchange, prediction_id: str, log: dict[str, Any]
) -> None:
    """Record the exchange where the endpoint cannot; a failure costs the record, not the
    answer."""
    capture = traffic_capture(settings)
    if capture is None:
        return
    started = time.perf_counter()
    try:
        log["captured"] = capture(
            request=exchange.request,
            request_type=JSON,
            response=exchange.response,
            response_type=exchange.response_type,
            inference_id=prediction_id,
        )
    except Exception as error:
        log["captured"] = False
        log["capture_error"] = type(error).__name__
    log["capture_ms"] = round((time.perf_counter() - started) * 1000, 2)


def prediction_id(event: Mapping[str, Any], context: Any) -> str:
    """The id the caller gets with the verdict, the endpoint's InferenceId and the capture
    record's: API Gateway's request id, which its access log and x-amzn-RequestId carry too."""
    request_id = (event.get("requestContext") or {}).get("requestId")
    return str(request_id or getattr(context, "aws_request_id", None) or uuid.uuid4())


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
    identifier = prediction_id(event, context)
    level, exc_info = logging.INFO, None
    origin: str | None = None
    try:
        settings = load_settings(os.environ)
        origin = settings.allowed_origin
        response = _serve(event, settings, identifier, log)
    except ApiError as error:
        log["error_code"] = error.code
        log.update(failure_fields(error))
        level = logging.WARNING if error.status >= 500 else logging.INFO
        response = error_response(error, origin)
    except Exception as error:
        # Our own bug or a broken deployment: the details go to the log, never to the caller.
        log["error_code"] = "internal_error"
        level, exc_info = logging.ERROR, error
        response = error_response(
            ApiError(500, "internal_error", "Something went wrong on our side; try again later."),
            origin,
        )
    log["status"] = response["statusCode"]
    log["latency_ms"] = round((time.perf_counter() - started) * 1000, 2)
    _logger.log(level, "request", exc_info=exc_info, extra={"fields": log})
    return response
