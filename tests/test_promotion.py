"""The promotion gate's rule: a figure may fall by the tolerance, no more; an unrecorded
validation accuracy is not compared."""

from __future__ import annotations

import pytest

from sentiment.promotion import GateFigures, shortfalls

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
