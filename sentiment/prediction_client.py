"""``sentiment predict``: one review sent to the prediction API, local or deployed, and its
verdict (with ``--explain``, the words that moved it) as text for a terminal."""

from __future__ import annotations

import os
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TextIO

import httpx

from contract.explanation import DROPPED, NOT_READ, READ, MalformedExplanation, checked_explanation

# A little over API Gateway's 29 s integration timeout, so its own answer can still arrive.
TIMEOUT_SECONDS = 30.0
LOW_CONFIDENCE_NOTE = (
    "The model found little to go on in this review (few words it knows, or no clear opinion), "
    "so treat this verdict as a guess."
)


# How many words the explanation lists on each side, strongest first.
STRONGEST_WORDS = 5
# ANSI colours for the marks, used only on a terminal: green toward positive, red toward
# negative, dim for the part the model did not read. The [+...] and [-...] marks say the same
# without colour.
_GREEN, _RED, _DIM, _RESET = "\x1b[32m", "\x1b[31m", "\x1b[2m", "\x1b[0m"
NOT_READ_MARK = "[not read from here on:]"


@dataclass(frozen=True)
class Verdict:
    sentiment: str
    score: float
    low_confidence: bool = False
    # contract/explanation.py's shape, checked against the review; None when not asked for.
    explanation: dict[str, Any] | None = field(default=None, repr=False)

    def __str__(self) -> str:
        verdict = f"{self.sentiment.upper()} (score {self.score:.4f})"
        return f"{verdict}\n{LOW_CONFIDENCE_NOTE}" if self.low_confidence else verdict


class PredictionError(Exception):
    """The API could not be reached or answered with an error; the message says which."""


def _error_message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        body = None
    # The Lambda answers {"error": {"message"}}; API Gateway's own errors {"message"}.
    if not isinstance(body, dict):
        body = {}
    error = body.get("error")
    message = (error if isinstance(error, dict) else body).get("message")
    if not isinstance(message, str) or not message.strip():
        message = "the API answered without an explanation"
    return f"{message} (HTTP {response.status_code})"


def predict(
    api_url: str, review: str, timeout: float = TIMEOUT_SECONDS, explain: bool = False
) -> Verdict:
    """The API's verdict on ``review``; with ``explain``, its explanation too."""
    # Unless it asks, exactly the body a client sent before explanations existed.
    asked: dict[str, Any] = {"review": review, "explain": True} if explain else {"review": review}
    try:
        response = httpx.post(api_url, json=asked, timeout=timeout)
    except httpx.TimeoutException:
        raise PredictionError(f"{api_url} did not answer within {timeout:.0f} s") from None
    except httpx.HTTPError as error:
        raise PredictionError(f"could not reach {api_url}: {error}") from None
    if response.is_error:
        raise PredictionError(_error_message(response))
    try:
        body = response.json()
        verdict = Verdict(
            str(body["sentiment"]), float(body["score"]), body.get("low_confidence") is True
        )
    except (ValueError, TypeError, KeyError):
        raise PredictionError(f"{api_url} sent an answer that is not a verdict") from None
    if not explain:
        return verdict
    try:
        explanation = checked_explanation(body.get("explanation"), review)
    except MalformedExplanation as error:
        raise PredictionError(
            f"{api_url} sent no explanation that fits the review: {error}"
        ) from None
    return Verdict(verdict.sentiment, verdict.score, verdict.low_confidence, explanation)


def wants_colour(stream: TextIO, environ: Mapping[str, str] = os.environ) -> bool:
    """Whether to colour the marks: on a terminal, unless NO_COLOR (no-color.org) says not."""
    isatty = getattr(stream, "isatty", None)
    return (
        bool(isatty and isatty())
        and not environ.get("NO_COLOR")
        and environ.get("TERM", "") != "dumb"
    )


def _shown(text: str) -> str:
    """``text`` with its control characters (escape sequences among them) made visible as
    U+FFFD, so a review cannot drive the terminal; line breaks and tabs stay."""
    return "".join(
        "\ufffd" if unicodedata.category(char) == "Cc" and char not in "\n\r\t" else char
        for char in text
    )


@dataclass(frozen=True)
class _Strongest:
    """One word of the review, its occurrences taken together (ignoring case), and their total
    contribution."""

    text: str
    contribution: float
    count: int

    def __str__(self) -> str:
        times = f" ({self.count}x)" if self.count > 1 else ""
        return f"{_shown(self.text)} {self.contribution:+.3f}{times}"


def strongest_words(
    review: str, explanation: Mapping[str, Any], limit: int = STRONGEST_WORDS
) -> tuple[list[_Strongest], list[_Strongest]]:
    """The words that pushed hardest toward positive and toward negative, each word's
    occurrences added up, at most ``limit`` a side, strongest first."""
    totals: dict[str, list[Any]] = {}
    for word in explanation["words"]:
        if word["status"] == READ:
            text = review[word["start"] : word["end"]]
            total = totals.setdefault(text.casefold(), [text, 0.0, 0])
            total[1] += word["contribution"]
            total[2] += 1
    words = [_Strongest(text, contribution, count) for text, contribution, count in totals.values()]
    # Ties go to the word met first, so the same answer always prints the same.
    positive = sorted((w for w in words if w.contribution > 0), key=lambda w: -w.contribution)
    negative = sorted((w for w in words if w.contribution < 0), key=lambda w: w.contribution)
    return positive[:limit], negative[:limit]


def _marked_review(
    review: str, explanation: Mapping[str, Any], marked: set[str], colour: bool
) -> str:
    """The review with each occurrence of the ``marked`` words (casefolded) as [+word] or
    [-word] by the sign of that occurrence's contribution, and where the model stopped
    reading."""
    parts, position, stopped = [], 0, False
    for word in explanation["words"]:
        start, end = word["start"], word["end"]
        text = review[start:end]
        if word["status"] == NOT_READ and not stopped:
            stopped = True
            parts.append(_shown(review[position:start]))
            parts.append(f"{_DIM}{NOT_READ_MARK}{_RESET} " if colour else f"{NOT_READ_MARK} ")
            position = start
        contribution = word["contribution"]
        if word["status"] != READ or not contribution or text.casefold() not in marked:
            continue
        sign, tint = ("+", _GREEN) if contribution > 0 else ("-", _RED)
        mark = f"[{sign}{_shown(text)}]"
        parts.append(_shown(review[position:start]))
        parts.append(f"{tint}{mark}{_RESET}" if colour else mark)
        position = end
    parts.append(_shown(review[position:]))
    return "".join(parts)


def explanation_text(review: str, explanation: Mapping[str, Any], colour: bool = False) -> str:
    """The explanation for a terminal: the review with its strongest words marked, those words
    on each side with their contributions, and what the model did not read."""
    positive, negative = strongest_words(review, explanation)
    marked = {word.text.casefold() for word in (*positive, *negative)}
    words = explanation["words"]
    read_sum = sum(word["contribution"] for word in words if word["status"] == READ)
    not_read = sum(1 for word in words if word["status"] == NOT_READ)
    dropped = sum(1 for word in words if word["status"] == DROPPED)
    lines = [
        f"Why (the {STRONGEST_WORDS} strongest words each way: [+word] toward positive, "
        "[-word] toward negative):",
        "",
        _marked_review(review, explanation, marked, colour),
        "",
        "Toward positive: " + (", ".join(map(str, positive)) or "no word"),
        "Toward negative: " + (", ".join(map(str, negative)) or "no word"),
    ]
    if dropped:
        lines.append(
            f"Carried nothing: {dropped} word{'s' if dropped != 1 else ''} the preprocessing "
            'drops (stopwords, and clauses overridden by "but" or "although").'
        )
    if not_read:
        lines.append(
            f"Not read: the last {not_read} word{'s' if not_read != 1 else ''}, past the "
            "model's reading limit (its first 500 tokens); they did not count."
        )
    # The words' shares add up to the logit the score comes from: shown so a reader can check.
    lines.append(
        f"Logit {explanation['logit']:+.3f} = base {explanation['base']:+.3f} + the words' "
        f"{read_sum:+.3f}; score = sigmoid(logit) ({explanation['method']})."
    )
    return "\n".join(lines)
