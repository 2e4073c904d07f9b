"""One request through the inference handlers, as the SageMaker inference toolkit makes it.

The PyTorch serving container hands each request to ``sagemaker_inference.Transformer``, which
decodes the body to text only for ``application/json`` and ``text/csv`` (exact match), takes a
missing or ``*/*`` Accept to mean ``$SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT`` (JSON by default),
calls ``input_fn`` → ``predict_fn`` → ``output_fn``, and answers with what ``output_fn`` returns:
a ``(body, content type)`` pair, or a body in the accepted type. An exception carrying
``status_code`` (the toolkit's ``BaseInferenceToolkitError``, which ``inference.RequestError``
is) becomes that status; any other exception a 500. Either way the body is the error's message,
a newline and the Python traceback, which is what SageMaker then passes on as the
``OriginalMessage`` of a ``ModelError``.
"""

from __future__ import annotations

import os
import traceback
from dataclasses import dataclass
from http import HTTPStatus

from sentiment.model_loader import ServedModel

JSON = "application/json"
ANY = "*/*"
# sagemaker_inference.content_types.UTF8_TYPES
UTF8_TYPES = (JSON, "text/csv")
DEFAULT_ACCEPT_ENV = "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT"


@dataclass(frozen=True)
class ModelResponse:
    status: int
    body: bytes
    content_type: str


def default_accept() -> str:
    return os.environ.get(DEFAULT_ACCEPT_ENV, JSON)


def _error_response(status: int, message: str) -> ModelResponse:
    body = f"{message}\n{traceback.format_exc()}"
    return ModelResponse(status, body.encode("utf-8", "backslashreplace"), "text/plain")


def _as_bytes(body: str | bytes) -> bytes:
    return body.encode("utf-8") if isinstance(body, str) else bytes(body)


def _status_code(error: Exception) -> int | None:
    """The status a toolkit error asks for, if ``error`` is one (duck-typed, like inference.py's
    stand-in for ``BaseInferenceToolkitError`` when the toolkit is not installed)."""
    status = getattr(error, "status_code", None)
    if isinstance(status, int) and not isinstance(status, bool) and 100 <= status <= 599:
        return status
    return None


def invoke(
    served: ServedModel, body: bytes, content_type: str | None, accept: str | None
) -> ModelResponse:
    """Answer one ``/invocations`` request with the artifact's handlers."""
    if not accept or accept == ANY:
        accept = default_accept()
    handlers = served.handlers
    try:
        data: str | bytes = body.decode("utf-8") if content_type in UTF8_TYPES else body
        request = handlers.input_fn(data, content_type)
        prediction = handlers.predict_fn(request, served.model)
        result = handlers.output_fn(prediction, accept)
    except Exception as error:
        status = _status_code(error)
        if status is None:
            return _error_response(HTTPStatus.INTERNAL_SERVER_ERROR, str(error))
        return _error_response(status, str(getattr(error, "message", error)))
    if isinstance(result, tuple):
        return ModelResponse(HTTPStatus.OK, _as_bytes(result[0]), result[1])
    return ModelResponse(HTTPStatus.OK, _as_bytes(result), accept)
