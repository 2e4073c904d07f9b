"""The Lambda entry point for ``POST /predict``: parse, call, record, answer."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from contract.feedback import prediction_record, source_id

from .capture import traffic_capture
from .endpoint import JSON, Exchange, invoke, read_verdict, runtime_client
from .gateway import answer, source_address
from .logs import json_logger
from .records import prediction_store
from .request import parse_prediction_request
from .responses import json_response
from .settings import Settings, load_settings

_logger = json_logger("prediction")


def _serve(event: Mapping[str, Any], log: dict[str, Any], origin: str) -> dict[str, Any]:
    settings = load_settings(os.environ)
    identifier = log["prediction_id"] = prediction_id(event, log.get("aws_request_id"))
    request = parse_prediction_request(event, settings.max_review_chars)
    review = request.review
    log["review_chars"] = len(review)
    log["explain"] = request.explain
    started = time.perf_counter()
    try:
        exchange = invoke(
            runtime_client(settings), settings.endpoint_name, review, identifier, request.explain
        )
    finally:
        log["model_ms"] = round((time.perf_counter() - started) * 1000, 2)
    verdict = read_verdict(exchange.response, review, request.explain)
    log["sentiment"] = verdict["sentiment"]
    log["low_confidence"] = verdict.get("low_confidence")
    log["model_version"] = verdict.get("model_version")
    # The capture keeps the exchange as it was (the explanation too); the prediction record
    # keeps the verdict alone (contract.feedback.prediction_record).
    _capture(settings, exchange, identifier, log)
    _remember(settings, event, review, verdict, identifier, log)
    # The id before the explanation, whose list of words can be long, so that a person reading
    # the raw answer (curl, a client's log) meets it first.
    explanation = verdict.pop("explanation", None)
    answer = verdict | {"prediction_id": identifier}
    if explanation is not None:
        answer["explanation"] = explanation
    return json_response(200, answer, origin)


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


def _remember(
    settings: Settings,
    event: Mapping[str, Any],
    review: str,
    verdict: dict[str, Any],
    prediction_id: str,
    log: dict[str, Any],
) -> None:
    """Keep the prediction for the feedback that may name it; a failure costs the chance of
    feedback on this verdict (it is then refused as unknown), not the answer."""
    if settings.predictions is None:
        return
    started = time.perf_counter()
    now = datetime.now(UTC)
    record = prediction_record(
        prediction_id=prediction_id,
        review=review,
        verdict=verdict,
        source=source_id(source_address(event)),
        time=now,
    )
    try:
        expires_at = int(now.timestamp()) + settings.predictions.retention_days * 86_400
        prediction_store(settings.predictions).put(record, expires_at)
        log["remembered"] = True
    except Exception as error:
        log["remembered"] = False
        log["remember_error"] = type(error).__name__
    log["remember_ms"] = round((time.perf_counter() - started) * 1000, 2)


def prediction_id(event: Mapping[str, Any], fallback: str | None) -> str:
    """The id the caller gets with the verdict, the endpoint's InferenceId, the capture record's
    and the one feedback names: API Gateway's request id, which its access log and
    x-amzn-RequestId carry too."""
    request_id = (event.get("requestContext") or {}).get("requestId")
    return str(request_id or fallback or uuid.uuid4())


def handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    """API Gateway (REST API) proxy integration entry point, for POST /predict alone.

    API Gateway answers the CORS preflight itself and refuses any other method or path
    before this runs (contract/api.py), so the handler never looks at the method.
    """
    return answer(_serve, event, context, _logger)
