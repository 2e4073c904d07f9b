"""API Gateway proxy responses: JSON, never cached, with CORS and security headers."""

from __future__ import annotations

import json
from typing import Any

from .errors import ApiError

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


def json_response(status: int, body: dict[str, Any], origin: str | None) -> dict[str, Any]:
    """A proxy response with ``body`` as compact JSON; ``origin`` None sends no CORS header."""
    return {
        "statusCode": status,
        "headers": _headers(origin),
        "body": json.dumps(body, separators=(",", ":")),
        "isBase64Encoded": False,
    }


def error_response(error: ApiError, origin: str | None) -> dict[str, Any]:
    """``{"error": {"code", "message"}}`` with the error's status; a 503 says when to retry."""
    response = json_response(
        error.status, {"error": {"code": error.code, "message": error.message}}, origin
    )
    if error.status == 503:
        response["headers"]["Retry-After"] = "1"
    return response
