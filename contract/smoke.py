"""The smoke test a model carries: reviews it was asked at training, and what it answered.

Training writes ``smoke_test.json`` into the model artifact (model/smoke_test.py): a handful
of short, clear reviews and the verdict the model gave each through its own inference
handlers. A model is proven to serve when the endpoint (or the local emulator) gives the same
verdicts again: the same sentiment, and a score within ``SCORE_TOLERANCE`` (the endpoint's
torch and CPU round differently). A corrupt or mismatched ``model.pt``, broken inference code
or a missing dependency all fail it, where the endpoint's health check does not notice. The
deployment runs it against the live endpoint (lambda_src/smoke_check/), the local endpoint
emulator before it swaps a model in (sentiment/model_slot.py).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

SMOKE_FILE = "smoke_test.json"
SMOKE_FORMAT = 1
SCORE_TOLERANCE = 0.02
# Short and clear, of the kind visitors type; labelled, so that a model that gets one wrong
# says so in its own smoke test (the case's "label" beside its "sentiment").
SMOKE_REVIEWS = (
    ("A wonderful film: moving, funny and beautifully acted.", "positive"),
    ("One of the best movies I have seen in years. I loved every minute.", "positive"),
    ("Brilliant script, superb cast and a great ending.", "positive"),
    ("Dull, predictable and far too long.", "negative"),
    ("The worst film I have ever seen, a complete waste of time.", "negative"),
    ("Terrible acting and a boring, pointless plot.", "negative"),
)


def smoke_document(cases: list[dict[str, Any]], model_version: str) -> dict[str, Any]:
    return {"format": SMOKE_FORMAT, "model_version": model_version, "cases": cases}


def smoke_case(review: str, label: str, answer: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "review": review,
        "label": label,
        "sentiment": answer["sentiment"],
        "score": answer["score"],
    }


def parse_smoke_test(raw: bytes) -> list[dict[str, Any]]:
    """The cases of a stored smoke test, or ValueError saying what is wrong with it."""
    document = json.loads(raw)
    if not isinstance(document, dict) or document.get("format") != SMOKE_FORMAT:
        raise ValueError(f"{SMOKE_FILE} is not a format-{SMOKE_FORMAT} smoke test")
    cases = document.get("cases")
    if not isinstance(cases, list) or not cases:
        raise ValueError(f"{SMOKE_FILE} has no cases")
    return cases


def failures(cases: list[dict[str, Any]], ask: Callable[[bytes], tuple[int, bytes]]) -> list[str]:
    """What went wrong asking each case: ``ask`` sends a JSON body and returns the status and
    the answer's body. Empty when the model gave every recorded verdict again."""
    found = []
    for case in cases:
        review = case["review"]
        status, body = ask(json.dumps({"review": review}).encode("utf-8"))
        if status != 200:
            found.append(f"{review!r}: status {status}: {body[:200].decode(errors='replace')}")
            continue
        try:
            answer = json.loads(body)
            sentiment, score = answer["sentiment"], float(answer["score"])
        except (ValueError, KeyError, TypeError):
            found.append(f"{review!r}: an answer that is not a verdict: {body[:200]!r}")
            continue
        if sentiment != case["sentiment"] or abs(score - case["score"]) > SCORE_TOLERANCE:
            found.append(
                f"{review!r}: {sentiment} {score:.4f}, where training answered "
                f"{case['sentiment']} {case['score']:.4f}"
            )
    return found
