"""The promotion gate's rule: a figure may fall by the tolerance, no more; an unrecorded
validation accuracy is not compared. One rule and one refusal for the local stack's hot swap
and the training job (contract/promotion.py)."""

from __future__ import annotations

import pytest

from contract.promotion import GateFigures, decide, shortfalls

SERVING = GateFigures(validation_accuracy=0.92, behaviour_pass_rate=0.90)


@pytest.mark.parametrize(
    ("new", "worse"),
    [
        (GateFigures(0.92, 0.90), []),
        (GateFigures(0.911, 0.891), []),  # within the tolerance
        (GateFigures(0.905, 0.90), ["validation accuracy"]),
        (GateFigures(0.92, 0.85), ["behaviour suite"]),
        (GateFigures(0.80, 0.80), ["validation accuracy", "behaviour suite"]),
        (GateFigures(None, 0.90), []),  # a model older than the recorded figure
        (GateFigures(0.99, 0.99), []),
    ],
)
def test_a_new_model_may_lose_the_tolerance_and_no_more(new: GateFigures, worse: list[str]) -> None:
    assert shortfalls(new, SERVING, tolerance=0.01) == worse


def test_the_figures_read_as_the_log_shows_them() -> None:
    assert GateFigures(None, 0.5).shown() == (
        "validation accuracy unrecorded, behaviour suite 0.5000"
    )


def test_a_refusal_names_what_is_worse_and_gives_both_sets_of_figures() -> None:
    decision = decide(GateFigures(0.80, 0.74), SERVING, 0.01, serving_name="sha256=0123456789ab")

    assert not decision.promoted
    assert decision.reason() == (
        "worse validation accuracy and behaviour suite by more than 0.010: the new model has "
        "validation accuracy 0.8000, behaviour suite 0.7400, where sha256=0123456789ab serving "
        "has validation accuracy 0.9200, behaviour suite 0.9000"
    )
    assert decision.to_json()["refusal_overridden"] is False


def test_forcing_promotes_a_refused_model_and_says_the_refusal_was_overridden() -> None:
    forced = decide(GateFigures(0.80, 0.90), SERVING, 0.01, forced=True)
    passed = decide(SERVING, SERVING, 0.01, forced=True)

    assert forced.promoted and forced.to_json()["refusal_overridden"] is True
    assert forced.to_json()["worse"] == ["validation accuracy"]
    # Forcing a model that passes anyway overrides nothing.
    assert passed.promoted and passed.to_json()["refusal_overridden"] is False
    assert passed.reason() == ""
