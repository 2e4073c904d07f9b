"""One API Gateway request, whatever the route: call the route's function, map its failures to
the documented error answers, and log one JSON line."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping
from typing import Any

from .endpoint import failure_fields
from .errors import ApiError
from .responses import error_response
from .settings import allowed_origin

# The route's own work: the proxy event, the log line's fields to add to, the page's origin
# → the proxy response; an ApiError for anything the caller is told about.
Serve = Callable[[Mapping[str, Any], dict[str, Any], str], dict[str, Any]]


def answer(serve: Serve, event: Mapping[str, Any], context: Any, logger: logging.Logger) -> Any:
    """``serve``'s response to ``event``, or the error answer; never raises."""
    started = time.perf_counter()
    log: dict[str, Any] = {
        "aws_request_id": getattr(context, "aws_request_id", None),
        "api_request_id": (event.get("requestContext") or {}).get("requestId"),
    }
    level, exc_info = logging.INFO, None
    origin: str | None = None
    try:
        origin = allowed_origin(os.environ)
        response = serve(event, log, origin)
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
    logger.log(level, "request", exc_info=exc_info, extra={"fields": log})
    return response


def source_address(event: Mapping[str, Any]) -> str:
    """The caller's address as API Gateway saw it."""
    identity = (event.get("requestContext") or {}).get("identity") or {}
    return str(identity.get("sourceIp") or "unknown")
