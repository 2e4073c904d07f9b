"""One request through the SageMaker inference toolkit's own request handling.

The PyTorch serving container hands each request to ``sagemaker_inference.Transformer``: it
decodes the body to text only for ``application/json`` and ``text/csv``, takes a missing or
``*/*`` Accept to mean ``$SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT``, calls ``input_fn`` →
``predict_fn`` → ``output_fn`` and turns an exception into the response: the status of a
``BaseInferenceToolkitError`` (which ``inference.RequestError`` is) or 500, with the message, a
newline and the traceback as the body. This module runs that very Transformer, the installed
toolkit's, not a copy: the endpoint emulator, ``sentiment evaluate`` and the benchmarks all
answer through invoke().

Two things stay ours, both outside the toolkit's request handling: the model server's
per-request context (TorchServe's in the container: the request's headers in, the response's
status and content type out), and where the handlers come from. The toolkit imports
``inference`` by its bare name and calls model_fn on the first request; model_loader has
already imported the artifact's own code/ in isolation (two artifacts can be loaded side by
side during a swap) and loaded the model, so the Transformer is handed both.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from http import HTTPStatus

from sagemaker_inference.environment import Environment
from sagemaker_inference.transformer import Transformer

from contract.limits import batch_requests
from sentiment.model_loader import ServedModel

JSON = "application/json"


@dataclass(frozen=True)
class ModelResponse:
    status: int
    body: bytes
    # None on an error: TorchServe sends a handler's error without a Content-Type.
    content_type: str | None


class _RequestProcessor:
    def __init__(self, headers: dict[str, str]) -> None:
        self.headers = headers

    def get_request_properties(self) -> dict[str, str]:
        return self.headers


class _Context:
    """The part of TorchServe's ``ts.context.Context`` that the Transformer uses."""

    def __init__(self, headers: dict[str, str]) -> None:
        # The model directory, for model_fn on the first request: the model is loaded already.
        self.system_properties: dict[str, str] = {}
        self.request_processor = [_RequestProcessor(headers)]
        self.status = int(HTTPStatus.OK)
        self.content_type = JSON

    def set_response_content_type(self, _index: int, content_type: str) -> None:
        self.content_type = content_type

    def set_response_status(self, code: int, phrase: str) -> None:
        self.status = code


class _LoadedTransformer(Transformer):
    """The toolkit's Transformer with the handlers and the model model_loader loaded."""

    def __init__(self, served: ServedModel) -> None:
        super().__init__()
        handlers = served.handlers
        self._environment = Environment()
        self._model_fn = handlers.model_fn
        self._input_fn = handlers.input_fn
        self._predict_fn = handlers.predict_fn
        self._output_fn = handlers.output_fn
        self._transform_fn = self._default_transform_fn
        self._model = served.model
        self._initialized = True


def _as_bytes(body: str | bytes) -> bytes:
    return body.encode("utf-8") if isinstance(body, str) else bytes(body)


def invoke(
    served: ServedModel, body: bytes, content_type: str | None, accept: str | None
) -> ModelResponse:
    """Answer one ``/invocations`` request as the serving container does."""
    headers = {
        name: value
        for name, value in (("Content-Type", content_type), ("Accept", accept))
        if value is not None
    }
    context = _Context(headers)
    (answer,) = _LoadedTransformer(served).transform([{"body": body}], context)
    if context.status != HTTPStatus.OK:
        return ModelResponse(context.status, _as_bytes(answer), None)
    return ModelResponse(context.status, _as_bytes(answer), context.content_type)


class RefusedReview(ValueError):
    """The model refused a review it was sent."""


def batch_answers(
    served: ServedModel,
    texts: Sequence[str],
    progress: Callable[[list[str]], Iterable[str]] = iter,
    in_flight: int = 1,
) -> list[dict]:
    """The handlers' answer for every text, in order, sent as JSON batches (contract.limits.
    batch_requests), `in_flight` at a time, as that many serving workers would take them;
    ``progress`` wraps the requests (a progress bar; it counts requests sent).

    With more than one in flight each request runs on a worker thread, which takes the
    torch thread count set when it starts its first work: set it before calling.
    """
    requests = progress(batch_requests(texts))
    if in_flight <= 1:
        return [answer for body in requests for answer in _predictions(served, body)]
    answers: list[dict] = []
    with ThreadPoolExecutor(in_flight) as pool:
        pending: deque[Future[list[dict]]] = deque()
        try:
            for body in requests:
                pending.append(pool.submit(_predictions, served, body))
                if len(pending) > in_flight:
                    answers.extend(pending.popleft().result())
            for answered in pending:
                answers.extend(answered.result())
        except BaseException:
            pool.shutdown(cancel_futures=True)  # nothing more to answer for
            raise
    return answers


def _predictions(served: ServedModel, body: str) -> list[dict]:
    answer = invoke(served, body.encode(), JSON, JSON)
    if answer.status != HTTPStatus.OK:
        reason = answer.body.decode("utf-8", "replace").split("\n", 1)[0]
        raise RefusedReview(f"the model answered {answer.status}: {reason}")
    return json.loads(answer.body)["predictions"]
