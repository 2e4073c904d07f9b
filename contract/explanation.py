"""A verdict's explanation: which words of the review moved it, and how far (issue #16).

The endpoint adds one to a verdict only when asked (``{"review": "...", "explain": true}``);
the prediction API checks it and passes it on, and the page and ``sentiment predict --explain``
show it. Its shape (``Explanation`` in lambda_src/openapi.json)::

    {"logit": 1.1, "base": 0.12, "method": "ngram-exact+lstm-integrated-gradients",
     "words": [{"start": 0, "end": 1, "status": "dropped", "contribution": null},
               {"start": 2, "end": 7, "status": "read", "contribution": 1.62}, ...]}

``logit`` is the final (calibrated) logit, so the verdict's score is sigmoid(logit); ``base``
is the part no word carries, and base + the read words' contributions == logit (up to the
rounding of each contribution). ``words`` lists every word of the review in text order; a span
is ``review[start:end]``: Unicode code point offsets, as Python indexes a str (JavaScript:
``Array.from(review)``, not UTF-16 units). A word is ``read`` (its contribution is signed, on
the logit's scale, > 0 toward positive), ``dropped`` by the preprocessing or ``not_read``
(past the model's reading limit); only read words have a contribution, the others null.

Standard library only: the Lambda checks an endpoint's answer with it and the command line the
API's.
"""

from __future__ import annotations

import math
import re
from typing import Any

READ = "read"
DROPPED = "dropped"
NOT_READ = "not_read"
STATUSES = (READ, DROPPED, NOT_READ)
# A name for the attribution method, shown to people: short, and nothing a terminal or a page
# could take for markup or control characters.
METHOD = re.compile(r"^[A-Za-z0-9._+:-]{1,64}$")
_MEMBERS = ("logit", "base", "method", "words")
_WORD_MEMBERS = ("start", "end", "status", "contribution")


class MalformedExplanation(ValueError):
    """An explanation that is not of the documented shape, or does not fit its review."""


def _finite(value: Any, where: str) -> float:
    # bool is an int in Python, but JSON's true is no number.
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise MalformedExplanation(f"{where} is not a finite number")
    return float(value)


def _offset(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise MalformedExplanation(f"{where} is not an integer")
    return value


def _word(value: Any, index: int, after: int, review_chars: int) -> dict[str, Any]:
    where = f"words[{index}]"
    if not isinstance(value, dict) or not all(name in value for name in _WORD_MEMBERS):
        raise MalformedExplanation(f"{where} is not an object with {', '.join(_WORD_MEMBERS)}")
    start = _offset(value["start"], f"{where}.start")
    end = _offset(value["end"], f"{where}.end")
    # In text order and apart: each word starts where the one before it ended, or later.
    if not after <= start <= end <= review_chars:
        raise MalformedExplanation(
            f"{where} spans {start}..{end}, not within {after}..{review_chars} of the review"
        )
    status = value["status"]
    if status not in STATUSES:
        raise MalformedExplanation(f"{where}.status is not one of {', '.join(STATUSES)}")
    contribution = value["contribution"]
    if status == READ:
        contribution = _finite(contribution, f"{where}.contribution")
    elif contribution is not None:
        raise MalformedExplanation(f"{where} was not read, so its contribution must be null")
    return {"start": start, "end": end, "status": status, "contribution": contribution}


def checked_explanation(value: Any, review: str) -> dict[str, Any]:
    """``value`` as the explanation of ``review``'s verdict, rebuilt from the documented members
    alone (any other member is left out); ``MalformedExplanation`` saying what is wrong."""
    if not isinstance(value, dict) or not all(name in value for name in _MEMBERS):
        raise MalformedExplanation(f"the explanation is not an object with {', '.join(_MEMBERS)}")
    method = value["method"]
    if not isinstance(method, str) or not METHOD.match(method):
        raise MalformedExplanation("method is not a short name")
    if not isinstance(value["words"], list):
        raise MalformedExplanation("words is not a list")
    words, after = [], 0
    for index, item in enumerate(value["words"]):
        words.append(_word(item, index, after, len(review)))
        after = words[-1]["end"]
    return {
        "logit": _finite(value["logit"], "logit"),
        "base": _finite(value["base"], "base"),
        "method": method,
        "words": words,
    }
