"""Every copy of a limit agrees with contract/limits.py, its one definition.

model/ and lambda_src/ run alone in AWS's containers and keep a fallback for a bare run;
the page reads the limit from config.json; the OpenAPI document states it for clients.
"""

from __future__ import annotations

import json
import re

from contract import limits
from contract.layout import MODEL_SOURCE_DIR, PROJECT_ROOT
from contract.web_page import page_settings
from lambda_src.prediction import settings as prediction_settings
from sentiment.model_loader import import_isolated

OPENAPI = json.loads((PROJECT_ROOT / "lambda_src" / "openapi.json").read_text())


def test_the_runtime_fallbacks_are_the_contract(monkeypatch) -> None:
    monkeypatch.delenv(limits.MAX_REVIEW_CHARS_ENV, raising=False)
    inference = import_isolated(MODEL_SOURCE_DIR, "inference")
    assert inference.MAX_REVIEW_CHARS == limits.MAX_REVIEW_CHARS
    assert prediction_settings.DEFAULT_MAX_REVIEW_CHARS == limits.MAX_REVIEW_CHARS
    assert inference.MAX_BATCH == limits.MAX_BATCH_REVIEWS


def test_a_batch_request_holds_at_most_the_largest_batch_in_order() -> None:
    texts = [f"review {number}" for number in range(2 * limits.MAX_BATCH_REVIEWS + 1)]
    bodies = [json.loads(body)["reviews"] for body in limits.batch_requests(texts)]
    assert [len(reviews) for reviews in bodies] == [limits.MAX_BATCH_REVIEWS] * 2 + [1]
    assert [text for reviews in bodies for text in reviews] == texts
    assert limits.batch_requests([]) == []


def test_the_runtime_reads_the_environment_the_stacks_set(monkeypatch) -> None:
    monkeypatch.setenv(limits.MAX_REVIEW_CHARS_ENV, "123")
    assert import_isolated(MODEL_SOURCE_DIR, "inference").MAX_REVIEW_CHARS == 123
    assert limits.runtime_environment() == {"MAX_REVIEW_CHARS": str(limits.MAX_REVIEW_CHARS)}


def test_the_page_gets_the_limit_from_its_settings_and_holds_no_copy() -> None:
    assert page_settings("https://api.example/predict")["maxReviewChars"] == limits.MAX_REVIEW_CHARS
    for page_file in ("index.html", "app.js"):
        text = (PROJECT_ROOT / "frontend" / page_file).read_text()
        assert not re.search(r"20[,_]?000", text), page_file


def test_the_openapi_document_states_the_limit() -> None:
    review = OPENAPI["components"]["schemas"]["ReviewText"]
    assert review["maxLength"] == limits.MAX_REVIEW_CHARS
    # Every number the descriptions write with a thousands separator is one of these limits.
    written = re.findall(r"\b\d{1,3}(?:,\d{3})+\b", json.dumps(OPENAPI))
    assert {int(number.replace(",", "")) for number in written} == {
        limits.MAX_REVIEW_CHARS,
        limits.MAX_FEEDBACK_BYTES,
    }
    feedback_413 = OPENAPI["paths"]["/feedback"]["post"]["responses"]["413"]["description"]
    assert f"{limits.MAX_FEEDBACK_BYTES:,} bytes" in feedback_413
