"""An API Gateway proxy event → the review (or the feedback) it carries, or an ``ApiError``
saying what is wrong."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from contract.feedback import LABELS, PREDICTION_ID
from contract.limits import MAX_FEEDBACK_BYTES

from .errors import ApiError

# A JSON string spends at most 12 bytes on one character (a "\\uXXXX\\uXXXX" surrogate pair), so
# a body larger than this cannot hold an acceptable review; refusing it before decoding keeps a
# 6 MB payload from costing a JSON parse.
_MAX_BODY_BYTES_PER_CHAR = 12
_BODY_OVERHEAD_BYTES = 1024

_SUPPORTED_MEDIA_TYPES = ("application/json", "text/plain")
_SUPPORTED_CHARSETS = ("utf-8", "utf8", "us-ascii")
# A JSON body's members; the review is required.
_REVIEW_MEMBERS = frozenset({"review", "explain"})
# The query parameter's spellings, exactly as documented: a near miss ("True", "1", "yes") is
# refused rather than guessed at.
_EXPLAIN_VALUES = {"true": True, "false": False}


@dataclass(frozen=True)
class PredictionRequest:
    """What a ``POST /predict`` asks: a verdict on ``review``, explained or not."""

    review: str
    explain: bool = False


def _header(event: Mapping[str, Any], name: str) -> str:
    for key, value in (event.get("headers") or {}).items():
        if key.lower() == name and value is not None:
            return str(value)
    return ""


def _media_type(
    content_type: str, supported: tuple[str, ...] = _SUPPORTED_MEDIA_TYPES, what: str = "review"
) -> str:
    """The lower-cased media type of a Content-Type header, or raise 415."""
    media_type, *parameters = (part.strip() for part in content_type.split(";"))
    media_type = media_type.lower()
    if media_type not in supported:
        shown = media_type or "none"
        raise ApiError(
            415,
            "unsupported_media_type",
            f"Send the {what} as {' or '.join(supported)} (got {shown}).",
        )
    for parameter in parameters:
        name, _, value = parameter.partition("=")
        charset = value.strip().strip('"').lower()
        if name.strip().lower() == "charset" and charset not in _SUPPORTED_CHARSETS:
            raise ApiError(
                415, "unsupported_media_type", "Send the review encoded as UTF-8 (charset=utf-8)."
            )
    return media_type


def _raw_body(event: Mapping[str, Any]) -> bytes:
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
    return raw


def _body_bytes(event: Mapping[str, Any], max_chars: int) -> bytes:
    raw = _raw_body(event)
    if len(raw) > max_chars * _MAX_BODY_BYTES_PER_CHAR + _BODY_OVERHEAD_BYTES:
        raise _too_long(max_chars)
    return raw


def _not_utf8() -> ApiError:
    return ApiError(400, "invalid_encoding", "The review is not valid UTF-8.")


def _too_long(max_chars: int) -> ApiError:
    return ApiError(
        413, "review_too_long", f"The review is longer than {max_chars:,} characters; shorten it."
    )


def _invalid_explain(message: str) -> ApiError:
    return ApiError(400, "invalid_explain", message)


def _review_from_json(text: str) -> tuple[Any, bool]:
    """The review member and the explain member (False when absent) of a JSON body."""
    try:
        document = json.loads(text)
    except (ValueError, RecursionError):
        raise ApiError(400, "invalid_json", "The request body is not valid JSON.") from None
    if (
        not isinstance(document, dict)
        or "review" not in document
        or set(document) - _REVIEW_MEMBERS
    ):
        raise ApiError(
            400,
            "invalid_body",
            'Send a JSON object with the member "review" (a string) and, to have the verdict '
            'explained, "explain" (true or false).',
        )
    explain = document.get("explain", False)
    # JSON's true and false alone: not "true", 1 or null.
    if not isinstance(explain, bool):
        raise _invalid_explain('The "explain" member must be true or false.')
    return document["review"], explain


def _explain_parameter(event: Mapping[str, Any]) -> bool:
    """The ``explain`` query parameter; False when absent."""
    # API Gateway keeps only the last of repeated parameters in queryStringParameters: a
    # request that says it twice is refused rather than read by that rule.
    repeated = (event.get("multiValueQueryStringParameters") or {}).get("explain") or []
    if len(repeated) > 1:
        raise _invalid_explain("Give the explain query parameter once, as true or false.")
    value = (event.get("queryStringParameters") or {}).get("explain")
    if value is None:
        return False
    if value not in _EXPLAIN_VALUES:
        raise _invalid_explain("The explain query parameter must be true or false.")
    return _EXPLAIN_VALUES[value]


def parse_prediction_request(event: Mapping[str, Any], max_chars: int) -> PredictionRequest:
    """The review in an API Gateway proxy event and whether to explain its verdict, or an
    ``ApiError`` saying what is wrong.

    A JSON body asks for an explanation with its ``explain`` member, a text/plain one with the
    ``explain`` query parameter; either way of asking works with either body, and an
    explanation is given when either says true (it only adds to the answer, so asking twice
    cannot conflict).
    """
    media_type = _media_type(_header(event, "content-type"))
    raw = _body_bytes(event, max_chars)
    explain = _explain_parameter(event)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _not_utf8() from None
    if media_type == "application/json":
        review, explain_member = _review_from_json(text)
        explain = explain or explain_member
    else:
        review = text
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
    return PredictionRequest(review, explain)


def parse_feedback(event: Mapping[str, Any]) -> tuple[str, str | None]:
    """The prediction id and the label (None: take the feedback back) in a feedback request."""
    _media_type(_header(event, "content-type"), ("application/json",), "feedback")
    raw = _raw_body(event)
    if len(raw) > MAX_FEEDBACK_BYTES:
        raise ApiError(
            413, "feedback_too_large", f"Feedback is at most {MAX_FEEDBACK_BYTES:,} bytes."
        )
    try:
        document = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise _not_utf8() from None
    except (ValueError, RecursionError):
        raise ApiError(400, "invalid_json", "The request body is not valid JSON.") from None
    if not isinstance(document, dict) or set(document) != {"prediction_id", "label"}:
        raise ApiError(
            400,
            "invalid_body",
            'Send a JSON object with two members, "prediction_id" and "label".',
        )
    prediction_id, label = document["prediction_id"], document["label"]
    if not isinstance(prediction_id, str) or not PREDICTION_ID.match(prediction_id):
        raise ApiError(
            400, "invalid_prediction_id", "prediction_id must be the id sent with a verdict."
        )
    if label is not None and label not in LABELS:
        raise ApiError(
            400, "invalid_label", 'label must be "positive", "negative", or null to take it back.'
        )
    return prediction_id, label
