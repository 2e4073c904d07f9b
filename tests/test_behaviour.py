"""The behaviour suite: its cases, its scoring rules, and a run through real inference handlers."""

from __future__ import annotations

import functools
import json
from collections import Counter
from pathlib import Path

import pytest
from model_artifacts import write_model_dir

from contract import behaviour
from contract.behaviour import NEGATIVE, NO_SIGNAL, NOT_NEGATIVE, POSITIVE, Case
from sentiment.evaluation import endpoint_predictions
from sentiment.model_loader import load_model_dir


def test_cases_are_the_same_on_every_call():
    assert behaviour.cases() == behaviour.cases()


def test_cases_cover_every_capability_a_few_hundred_in_all():
    suite = behaviour.cases()
    assert {case.capability for case in suite} == set(behaviour.CAPABILITIES)
    assert 200 <= len(suite) <= 600
    assert len({case.text for case in suite}) == len(suite)
    assert {case.expected for case in suite} <= {POSITIVE, NEGATIVE, NOT_NEGATIVE, NO_SIGNAL}


@pytest.mark.parametrize(
    "capability", ["vocabulary", "contrast", "intensifiers", "diminishers", "short"]
)
def test_two_sided_capabilities_are_balanced(capability: str):
    counts = Counter(case.expected for case in behaviour.cases() if case.capability == capability)
    assert set(counts) == {POSITIVE, NEGATIVE}
    assert counts[POSITIVE] == counts[NEGATIVE]


@pytest.mark.parametrize(
    ("capability", "expected"),
    [("negated_positive", NEGATIVE), ("negated_negative", NOT_NEGATIVE), ("no_signal", NO_SIGNAL)],
)
def test_one_sided_capabilities_expect_one_thing(capability: str, expected: str):
    assert {c.expected for c in behaviour.cases() if c.capability == capability} == {expected}


def test_the_brief_s_examples_are_cases():
    texts = {case.text: case for case in behaviour.cases()}
    assert texts["This was not a good film."].expected == NEGATIVE
    assert texts["Not something I enjoyed."].capability == "negated_positive"
    assert texts["The acting was not bad at all."].expected == NOT_NEGATIVE
    assert texts["It starts slowly, but the direction is excellent."].expected == POSITIVE
    assert texts["Total waste of time."].capability == "short"
    assert texts["asdf qwerty zxcvb"].expected == NO_SIGNAL


def _answer(sentiment: str, low_confidence: bool | None = None) -> dict:
    answer = {"sentiment": sentiment, "score": 0.9 if sentiment == POSITIVE else 0.1}
    if low_confidence is not None:
        answer["low_confidence"] = low_confidence
    return answer


@pytest.mark.parametrize(
    ("expected", "answer", "passed"),
    [
        (POSITIVE, _answer(POSITIVE), True),
        (POSITIVE, _answer(NEGATIVE), False),
        (NEGATIVE, _answer(NEGATIVE, low_confidence=True), True),  # the label is the answer
        (NOT_NEGATIVE, _answer(POSITIVE), True),
        (NOT_NEGATIVE, _answer(NEGATIVE, low_confidence=True), True),
        (NOT_NEGATIVE, _answer(NEGATIVE, low_confidence=False), False),
        (NOT_NEGATIVE, _answer(NEGATIVE), False),  # no flag: confident
        (NO_SIGNAL, _answer(POSITIVE, low_confidence=True), True),
        (NO_SIGNAL, _answer(NEGATIVE, low_confidence=True), True),
        (NO_SIGNAL, _answer(POSITIVE, low_confidence=False), False),
        (NO_SIGNAL, _answer(NEGATIVE), False),
    ],
)
def test_scoring_rules(expected: str, answer: dict, passed: bool):
    assert behaviour.passes(expected, answer) is passed


def test_an_unknown_expectation_is_refused():
    with pytest.raises(ValueError, match="unknown expectation"):
        behaviour.passes("neutral", _answer(POSITIVE))


def test_scores_per_capability_with_a_few_failures_each():
    suite = [
        Case("a", "one", POSITIVE),
        Case("a", "two", NEGATIVE),
        Case("b", "three", NOT_NEGATIVE),
        Case("b", "four", NO_SIGNAL),
        Case("b", "five", NO_SIGNAL),
    ]
    answers = [
        _answer(POSITIVE),
        _answer(POSITIVE),
        _answer(NEGATIVE, low_confidence=True),
        _answer(NEGATIVE, low_confidence=True),
        _answer(POSITIVE),
    ]
    result = behaviour.score_answers(suite, answers)
    assert result["cases"] == 5
    assert result["passed"] == 3
    assert result["pass_rate"] == pytest.approx(3 / 5)
    assert result["capabilities"]["a"]["pass_rate"] == pytest.approx(1 / 2)
    assert result["capabilities"]["b"]["pass_rate"] == pytest.approx(2 / 3)
    assert result["capabilities"]["b"]["low_confidence"] == 2
    assert result["mean_capability_pass_rate"] == pytest.approx((1 / 2 + 2 / 3) / 2)
    assert result["capabilities"]["a"]["failures"] == [
        {
            "text": "two",
            "expected": NEGATIVE,
            "sentiment": POSITIVE,
            "score": 0.9,
            "low_confidence": False,
        }
    ]
    assert [f["text"] for f in result["capabilities"]["b"]["failures"]] == ["five"]


def test_failure_examples_are_capped():
    suite = [Case("a", str(i), POSITIVE) for i in range(behaviour.FAILURE_EXAMPLES + 3)]
    result = behaviour.score_answers(suite, [_answer(NEGATIVE)] * len(suite))
    assert len(result["capabilities"]["a"]["failures"]) == behaviour.FAILURE_EXAMPLES
    assert result["capabilities"]["a"]["passed"] == 0


def test_answers_must_match_the_cases():
    with pytest.raises(ValueError, match="2 answers for 1 cases"):
        behaviour.score_answers([Case("a", "x", POSITIVE)], [_answer(POSITIVE)] * 2)


def test_run_suite_asks_every_text_once():
    asked = []

    def always_positive(texts: list[str]) -> list[dict]:
        asked.append(texts)
        return [_answer(POSITIVE) for _ in texts]

    result = behaviour.run_suite(always_positive)
    suite = behaviour.cases()
    assert asked == [[case.text for case in suite]]
    rates = {name: entry["pass_rate"] for name, entry in result["capabilities"].items()}
    assert rates["vocabulary"] == 0.5
    assert rates["negated_positive"] == 0.0
    assert rates["negated_negative"] == 1.0
    assert rates["no_signal"] == 0.0


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory):
    """The hand-weighted tiny model of model_artifacts, through its own inference handlers."""
    return load_model_dir(write_model_dir(tmp_path_factory.mktemp("artifact") / "model"))


def test_the_suite_runs_through_the_inference_handlers(served):
    result = behaviour.run_suite(functools.partial(endpoint_predictions, served))
    assert result["cases"] == len(behaviour.cases())
    assert list(result["capabilities"]) == list(behaviour.CAPABILITIES)
    for entry in result["capabilities"].values():
        assert 0 <= entry["passed"] <= entry["cases"]
        assert entry["pass_rate"] == pytest.approx(entry["passed"] / entry["cases"])
    # The tiny model knows "superb" and "awful": plain statements with them pass.
    known = [
        Case("vocabulary", "The acting was superb.", POSITIVE),
        Case("vocabulary", "The plot was awful.", NEGATIVE),
    ]
    answered = behaviour.run_suite(functools.partial(endpoint_predictions, served), known)
    assert answered["capabilities"]["vocabulary"]["passed"] == 2
    assert json.loads(json.dumps(result)) == result


def test_module_does_not_import_torch():
    source = Path(behaviour.__file__).read_text(encoding="utf-8")
    assert "torch" not in source.split('"""', 2)[2]
