"""`sentiment predict` against a loopback stand-in for the API: what it sends, what it prints,
and how it shows an explanation (issue #16) in a terminal.

tests/test_local_stack.py runs the same command against the real local stack and model.
"""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from sentiment import cli, prediction_client
from sentiment.prediction_client import (
    NOT_READ_MARK,
    explanation_text,
    strongest_words,
    wants_colour,
)

REVIEW = "Great acting, great score. 🎬 But a dull, DULL plot.\x1b[2J And more."
# Spans in code points: the emoji is one, whatever UTF-16 or UTF-8 make of it.
WORDS = {
    "Great": (0, 5, "read", 0.9),
    "acting": (6, 12, "read", 0.3),
    "great": (14, 19, "read", 0.5),
    "score": (20, 25, "read", -0.05),
    "But": (29, 32, "dropped", None),
    "a": (33, 34, "dropped", None),
    "dull": (35, 39, "read", -0.7),
    "DULL": (41, 45, "read", -0.6),
    "plot": (46, 50, "read", 0.0),
    "And": (56, 59, "not_read", None),
    "more": (60, 64, "not_read", None),
}
EXPLANATION = {
    "logit": 0.6,
    "base": 0.25,
    "method": "ngram-exact+lstm-integrated-gradients",
    "words": [
        {"start": start, "end": end, "status": status, "contribution": contribution}
        for start, end, status, contribution in WORDS.values()
    ],
}
VERDICT = {
    "sentiment": "positive",
    "score": 0.6457,
    "low_confidence": True,
    "model_version": "3f9c2a71d04b8e65",
    "prediction_id": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
}


def test_the_example_spans_point_at_their_words() -> None:
    assert [REVIEW[start:end] for start, end, *_ in WORDS.values()] == list(WORDS)


class _Api(BaseHTTPRequestHandler):
    """Answers each POST with the server's next answer, keeping what was asked."""

    def do_POST(self) -> None:
        self.server.asked.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        status, answer = self.server.answer
        body = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture
def api() -> Iterator[Any]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Api)
    server.daemon_threads = True
    server.asked = []
    server.answer = (200, VERDICT)
    server.url = f"http://127.0.0.1:{server.server_address[1]}/predict"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_without_explain_it_asks_and_prints_what_it_did_before(
    api: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["predict", REVIEW, "--api-url", api.url]) == 0

    assert api.asked == [{"review": REVIEW}]
    assert capsys.readouterr().out == (
        f"POSITIVE (score 0.6457)\n{prediction_client.LOW_CONFIDENCE_NOTE}\n"
    )


def test_with_explain_it_asks_and_prints_the_marked_review_and_the_strongest_words(
    api: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    api.answer = (200, VERDICT | {"explanation": EXPLANATION})

    assert cli.main(["predict", REVIEW, "--explain", "--api-url", api.url]) == 0

    assert api.asked == [{"review": REVIEW, "explain": True}]
    lines = capsys.readouterr().out.splitlines()
    assert lines[:2] == ["POSITIVE (score 0.6457)", prediction_client.LOW_CONFIDENCE_NOTE]
    assert lines[2] == ""
    # Captured output is no terminal: plain marks, no colour.
    assert "\x1b" not in "\n".join(lines)
    assert (
        "[+Great] [+acting], [+great] [-score]. 🎬 But a [-dull], [-DULL] plot.\ufffd[2J "
        f"{NOT_READ_MARK} And more." in lines
    )
    assert "Toward positive: Great +1.400 (2x), acting +0.300" in lines
    assert "Toward negative: dull -1.300 (2x), score -0.050" in lines
    assert any(line.startswith("Carried nothing: 2 words") for line in lines)
    assert any(line.startswith("Not read: the last 2 words") for line in lines)
    assert lines[-1] == (
        "Logit +0.600 = base +0.250 + the words' +0.350; score = sigmoid(logit) "
        "(ngram-exact+lstm-integrated-gradients)."
    )


@pytest.mark.parametrize(
    "answer",
    [
        VERDICT,
        VERDICT | {"explanation": None},
        VERDICT | {"explanation": EXPLANATION | {"words": EXPLANATION["words"][::-1]}},
        VERDICT
        | {
            "explanation": EXPLANATION
            | {"words": [{"start": 60, "end": 99, "status": "dropped", "contribution": None}]}
        },
    ],
    ids=["missing", "null", "out of order", "past the review"],
)
def test_an_answer_without_a_fitting_explanation_is_an_error(
    api: Any, capsys: pytest.CaptureFixture[str], answer: dict[str, Any]
) -> None:
    api.answer = (200, answer)

    with pytest.raises(SystemExit) as exited:
        cli.main(["predict", REVIEW, "--explain", "--api-url", api.url])

    assert exited.value.code == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "sent no explanation that fits the review" in captured.err


def test_the_apis_refusal_of_a_bad_explain_is_shown(
    api: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    message = 'The "explain" member must be true or false.'
    api.answer = (400, {"error": {"code": "invalid_explain", "message": message}})

    with pytest.raises(SystemExit):
        cli.main(["predict", REVIEW, "--explain", "--api-url", api.url])

    assert capsys.readouterr().err == f"sentiment predict: error: {message} (HTTP 400)\n"


def test_the_strongest_words_add_up_their_occurrences_and_keep_to_the_limit() -> None:
    words = [
        {"start": 2 * i, "end": 2 * i + 1, "status": "read", "contribution": c}
        for i, c in enumerate([0.1, 0.2, 0.3, -0.4, 0.5, 0.6, 0.7, 0.1])
    ]
    review = "a b c d e f g A"

    positive, negative = strongest_words(review, {"words": words}, limit=3)

    assert [(w.text, round(w.contribution, 6), w.count) for w in positive] == [
        ("g", 0.7, 1),
        ("f", 0.6, 1),
        ("e", 0.5, 1),
    ]
    assert [(w.text, w.count) for w in negative] == [("d", 1)]
    every, _ = strongest_words(review, {"words": words}, limit=8)
    # "a" and "A" are one word; it ties with "b" and, met first, comes first.
    assert [str(word) for word in every[-2:]] == ["a +0.200 (2x)", "b +0.200"]


def test_a_review_no_word_moved_says_so() -> None:
    text = explanation_text("The.", {**EXPLANATION, "logit": 0.25, "words": []})

    assert "Toward positive: no word" in text and "Toward negative: no word" in text
    assert "Not read" not in text and "Carried nothing" not in text


def test_colour_only_on_a_terminal_and_never_under_no_color() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert wants_colour(Terminal(), {"TERM": "xterm-256color"})
    assert not wants_colour(Terminal(), {"TERM": "xterm", "NO_COLOR": "1"})
    assert not wants_colour(Terminal(), {"TERM": "dumb"})
    assert not wants_colour(io.StringIO(), {"TERM": "xterm"})

    coloured = explanation_text(REVIEW, EXPLANATION, colour=True)
    # The marks are still there for whoever cannot tell the colours apart.
    assert "\x1b[32m[+Great]\x1b[0m" in coloured and "\x1b[31m[-dull]\x1b[0m" in coloured
    # The review's own escape sequence is not passed to the terminal.
    assert "\x1b[2J" not in coloured
