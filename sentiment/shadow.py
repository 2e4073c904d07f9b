"""A shadow model beside the endpoint emulator's, as a SageMaker shadow variant runs beside the
production variant (`sentiment up --shadow-model PATH`; stacks/shadow.py in AWS).

Every request on the runtime route is answered by the production model alone. Once it has
its answer, a copy goes to the shadow model on threads of its own, off the request path: the
shadow's answer is never returned. It is recorded (data capture under the shadow variant,
contract.api.SHADOW_VARIANT, sharing the production record's ``eventId`` and
``inferenceId``, so that `sentiment compare` pairs the two) and logged with both models'
latencies (compare.shadow_log_line, which `sentiment compare --latency-log` reads). A shadow
that fails,
falls behind or cannot load costs its own record and a log line, never an answer: copies
beyond MAX_PENDING waiting ones are dropped and counted.

The shadow artifact is loaded once, when the emulator starts (its smoke test included); a
new file at its path is not watched: restart to shadow another model.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path

from contract.capture import TrafficCapture
from sentiment import inference_toolkit
from sentiment.compare import shadow_log_line
from sentiment.inference_toolkit import ModelResponse
from sentiment.model_loader import ServedModel
from sentiment.model_slot import LoadedArtifact, load_artifact

# Copies waiting for the shadow beyond this are dropped: memory stays bounded under a burst.
MAX_PENDING = 256

_logger = logging.getLogger("sentiment.endpoint")


@dataclass(frozen=True)
class Exchange:
    """A request the production model answered, to be answered again by the shadow."""

    body: bytes
    content_type: str | None
    accept: str | None
    inference_id: str | None
    event_id: str
    production: ModelResponse
    production_ms: float
    # The production exchange was captured: the shadow's answer is recorded too.
    recorded: bool


def timed(
    served: ServedModel, body: bytes, content_type: str | None, accept: str | None
) -> tuple[ModelResponse, float]:
    """The model's answer and how long the model took, in milliseconds (the part SageMaker's
    ModelLatency measures: the container's handling, not the transport)."""
    started = time.perf_counter()
    answer = inference_toolkit.invoke(served, body, content_type, accept)
    return answer, (time.perf_counter() - started) * 1000


def _verdicts(answer: ModelResponse) -> list[tuple[str | None, float]]:
    try:
        document = json.loads(answer.body)
        verdicts = document.get("predictions", [document])
        return [(verdict.get("sentiment"), float(verdict["score"])) for verdict in verdicts]
    except (ValueError, TypeError, KeyError, AttributeError):
        return []


def agreement(production: ModelResponse, shadow: ModelResponse) -> str:
    """``agree=<same verdicts>/<reviews> max_shift=<largest score difference>`` for the log."""
    ours, theirs = _verdicts(production), _verdicts(shadow)
    if not ours or len(ours) != len(theirs):
        return "agree=n/a"
    same = sum(a == b for (a, _), (b, _) in zip(ours, theirs, strict=True))
    shift = max(abs(a - b) for (_, a), (_, b) in zip(ours, theirs, strict=True))
    return f"agree={same}/{len(ours)} max_shift={shift:.4f}"


class ShadowHost:
    """The shadow model, its threads and its capture."""

    def __init__(
        self,
        artifact: Path,
        capture: TrafficCapture | None = None,
        workers: int | None = None,
        max_pending: int = MAX_PENDING,
    ) -> None:
        self.artifact = artifact
        self._loaded: LoadedArtifact = load_artifact(artifact)
        self._capture = capture
        self._max_pending = max_pending
        self._pending = 0
        self.dropped = 0
        self._lock = threading.Lock()
        # Half the cores: the shadow keeps up with ordinary traffic without taking the
        # production model's workers away (in AWS it has instances of its own).
        self._executor = ThreadPoolExecutor(
            max_workers=workers or max(1, (os.cpu_count() or 1) // 2),
            thread_name_prefix="shadow",
        )
        _logger.info(
            "shadow model sha256=%s from %s: answers a copy of each request, unseen",
            self._loaded.sha256[:12],
            artifact,
        )

    @property
    def sha256(self) -> str:
        return self._loaded.sha256

    def mirror(self, exchange: Exchange) -> bool:
        """Queue the copy for the shadow; False (and counted) when too many are waiting."""
        with self._lock:
            if self._pending >= self._max_pending:
                self.dropped += 1
                dropped = self.dropped
            else:
                self._pending += 1
                dropped = 0
        if dropped:
            if dropped == 1 or dropped % 100 == 0:
                _logger.warning("shadow model falling behind: %d copies dropped so far", dropped)
            return False
        try:
            self._executor.submit(self._answer, exchange)
        except RuntimeError:  # shutting down
            with self._lock:
                self._pending -= 1
            return False
        return True

    def _answer(self, exchange: Exchange) -> None:
        try:
            answer, shadow_ms = timed(
                self._loaded.served, exchange.body, exchange.content_type, exchange.accept
            )
            if answer.status != HTTPStatus.OK:
                _logger.warning(
                    "shadow model failed (%d) on event_id=%s: %s",
                    answer.status,
                    exchange.event_id,
                    answer.body.decode("utf-8", "replace").split("\n", 1)[0],
                )
                return
            if exchange.recorded and self._capture is not None:
                self._record(exchange, answer)
            _logger.info(
                "%s %s",
                shadow_log_line(
                    exchange.event_id, exchange.inference_id, exchange.production_ms, shadow_ms
                ),
                agreement(exchange.production, answer),
            )
        except Exception:  # the shadow's failure is its own
            _logger.exception("shadow model failed on event_id=%s", exchange.event_id)
        finally:
            with self._lock:
                self._pending -= 1

    def _record(self, exchange: Exchange, answer: ModelResponse) -> None:
        try:
            self._capture(
                request=exchange.body,
                request_type=exchange.content_type or "",
                response=answer.body,
                response_type=answer.content_type or "",
                inference_id=exchange.inference_id,
                event_id=exchange.event_id,
            )
        except Exception:
            _logger.exception("shadow traffic capture failed")

    def close(self) -> None:
        """Answer the copies already queued, then unload the model."""
        self._executor.shutdown(wait=True)
        self._loaded.close()


def load_shadow(artifact: Path, capture: TrafficCapture | None) -> ShadowHost | None:
    """The shadow host, or None (logged) when the artifact cannot serve: production serves
    on regardless, as an endpoint whose shadow fails keeps answering its callers."""
    try:
        return ShadowHost(artifact, capture)
    except Exception as error:
        _logger.error("no shadow model: %s cannot serve: %s", artifact, error)
        return None
