"""Expected calibration error and the reliability diagram, on hand-made answers."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.figure import Figure

from sentiment import calibration


def _ece(labels: list[int], scores: list[float], positive: list[bool] | None = None) -> float:
    scores_array = np.asarray(scores)
    decisions = scores_array >= 0.5 if positive is None else np.asarray(positive)
    return calibration.expected_calibration_error(np.asarray(labels), scores_array, decisions)


def test_answers_as_right_as_they_are_sure_are_calibrated():
    # Four answers 75 % sure, three of them right: the bin's accuracy is its confidence.
    assert _ece([1, 1, 1, 0], [0.75] * 4) == pytest.approx(0.0)


def test_sure_and_always_wrong_is_the_worst():
    assert _ece([0, 0, 1], [1.0, 1.0, 0.0]) == pytest.approx(1.0)


def test_gaps_are_weighted_by_the_bins_share_of_answers():
    # Confidence 0.9 twice, both right (gap 0.1); confidence 0.7 three times, one right
    # (gap 0.7 - 1/3). A negative answer's confidence is one minus its score.
    labels = [1, 0, 1, 1, 0]
    scores = [0.9, 0.1, 0.3, 0.7, 0.7]
    expected = (2 * 0.1 + 3 * (0.7 - 1 / 3)) / 5
    assert _ece(labels, scores) == pytest.approx(expected)


def test_the_decisions_given_are_scored_not_a_threshold_of_its_own():
    # A score of 0.8 answered "negative" is 20 % sure, and right.
    assert _ece([0], [0.8], positive=[False]) == pytest.approx(0.8)


def test_a_bin_holds_its_upper_edge():
    binned = calibration.reliability(np.array([1, 1]), np.array([0.6, 0.6 + 1e-9]), [True, True])
    assert binned.counts.tolist() == [1, 1]  # 0.6 = 9/15 ends bin 9; a hair more starts bin 10


def test_agrees_with_the_definition_on_random_answers():
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 2, 500)
    scores = rng.random(500)
    positive = scores >= 0.5
    confidence = np.where(positive, scores, 1 - scores)
    right = positive == (labels == 1)
    expected = 0.0
    for m in range(1, calibration.BINS + 1):
        low, high = (m - 1) / calibration.BINS, m / calibration.BINS
        members = (confidence > low) & (confidence <= high)
        if members.any():
            gap = abs(right[members].mean() - confidence[members].mean())
            expected += members.sum() / len(labels) * gap
    assert calibration.expected_calibration_error(labels, scores, positive) == pytest.approx(
        expected
    )


def test_no_answers_no_error():
    assert _ece([], []) == 0.0


def test_the_report_s_bins_read_back_and_plot():
    labels, scores = np.array([1, 0, 1, 1, 0]), np.array([0.9, 0.1, 0.3, 0.7, 0.7])
    figures = calibration.calibration_figures(labels, scores, scores >= 0.5)
    assert figures["reliability"]["answers"] == [3, 2]
    binned = calibration.Reliability.from_json(figures["reliability"])
    assert binned.error == pytest.approx(figures["ece"])
    assert figures["mean_confidence"] == pytest.approx((0.9 + 0.9 + 0.7 + 0.7 + 0.7) / 5)
    axes = Figure().subplots()
    calibration.plot_reliability(axes, {"test": binned}, "Reliability")
    assert [line.get_label() for line in axes.get_lines()] == [
        "calibrated",
        f"test (ECE {figures['ece']:.3f})",
    ]


def _drawn_outcomes(scores: np.ndarray, positive: np.ndarray) -> np.ndarray:
    """The labels of calibration_noise's first draw: each answer right with its confidence."""
    confidence = np.where(positive, scores, 1 - scores)
    right = np.random.default_rng(calibration.NOISE_SEED).random((1, len(scores)))[0] < confidence
    return np.where(right == positive, 1, 0)


def test_the_noise_floor_is_the_ece_of_outcomes_drawn_as_the_confidence_says():
    rng = np.random.default_rng(5)
    scores = rng.random(300)
    positive = scores >= 0.5
    noise = calibration.calibration_noise(scores, positive, draws=1)
    labels = _drawn_outcomes(scores, positive)
    assert noise["median"] == pytest.approx(
        calibration.expected_calibration_error(labels, scores, positive)
    )
    assert noise["median"] > 0  # chance alone leaves a gap


def test_the_noise_floor_shrinks_with_the_number_of_answers():
    rng = np.random.default_rng(6)
    few, many = rng.random(250), rng.random(25_000)
    floor_few = calibration.calibration_noise(few, few >= 0.5)
    floor_many = calibration.calibration_noise(many, many >= 0.5)
    # About 1/sqrt(n): a hundred times the answers, a tenth of the floor.
    assert floor_few["median"] > 5 * floor_many["median"]
    assert floor_few["p90"] >= floor_few["median"]
    assert calibration.calibration_noise(few, few >= 0.5) == floor_few  # seeded


def test_certain_answers_have_no_noise_and_no_answers_none():
    scores = np.array([1.0, 0.0, 1.0])
    assert calibration.calibration_noise(scores, scores >= 0.5)["p90"] == 0.0
    assert calibration.calibration_noise(np.array([]), np.array([], bool))["median"] == 0.0


def test_the_report_gives_the_noise_floor_beside_the_error():
    scores = np.random.default_rng(7).random(100)
    figures = calibration.calibration_figures(np.ones(100), scores, scores >= 0.5)
    assert figures["ece_if_calibrated"] == calibration.calibration_noise(scores, scores >= 0.5)
