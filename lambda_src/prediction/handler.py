"""The Lambda entry point for ``POST /predict``: parse, call, map errors, log one line."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping
from typing import Any

from .endpoint import failure_fields, predict, runtime_client
from .errors import ApiError
from .logs import json_logger
from .request import parse_review
from .responses import error_response, json_response
from .settings import Settings, load_settings

_logger = json_logger("predict_api")


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
    log["model_version"] = verdict.get("model_version")
    return json_response(200, verdict, settings.allowed_origin)


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
