"""How far a model's confidence is from its accuracy: ECE and the reliability diagram.

The confidence of an answer is the probability the model gives the class it predicts:
the score for "positive", one minus it for "negative". Answers are put in BINS
equal-width bins of confidence, ((m-1)/M, m/M], and the expected calibration error is
the mean gap between each bin's accuracy and its mean confidence, weighted by the
bin's share of the answers (Guo et al., "On Calibration of Modern Neural Networks",
2017). For two classes confidence is at least 0.5, so the lower half of the bins stays
empty; the bins are the standard ones all the same, so figures compare with the
literature's.

ECE is biased upwards on a finite sample: even answers whose confidence is exactly their
chance of being right show a gap in every bin, from chance alone. calibration_noise()
measures that floor for the answers at hand, by drawing their outcomes as a perfectly
calibrated model's would fall; an ECE within it says nothing about miscalibration.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from matplotlib.axes import Axes

BINS = 15
# Draws of perfectly calibrated outcomes behind calibration_noise(); seeded, so a report is
# the same every time.
NOISE_DRAWS = 200
NOISE_SEED = 0


@dataclass(frozen=True)
class Reliability:
    """Per non-empty bin: mean confidence, accuracy and number of answers."""

    confidence: np.ndarray
    accuracy: np.ndarray
    counts: np.ndarray

    @classmethod
    def from_json(cls, document: dict) -> Reliability:
        return cls(*(np.asarray(document[key]) for key in ("confidence", "accuracy", "answers")))

    def to_json(self) -> dict:
        return {
            "confidence": self.confidence.tolist(),
            "accuracy": self.accuracy.tolist(),
            "answers": self.counts.tolist(),
        }

    @property
    def mean_confidence(self) -> float | None:
        """The answers' mean confidence in the class they predict; None for no answers."""
        total = self.counts.sum()
        return float((self.counts * self.confidence).sum() / total) if total else None

    @property
    def error(self) -> float:
        """The expected calibration error; 0 for no answers."""
        total = self.counts.sum()
        if not total:
            return 0.0
        return float((self.counts * np.abs(self.accuracy - self.confidence)).sum() / total)


def _binned_confidence(
    scores: np.ndarray, positive: np.ndarray, bins: int
) -> tuple[np.ndarray, np.ndarray]:
    """Each answer's confidence in the class it predicts, and its bin's index."""
    confidence = np.where(positive, scores, 1.0 - scores)
    # Bin m holds ((m-1)/M, m/M]; a confidence of exactly 0 joins the first.
    return confidence, np.clip(np.ceil(confidence * bins).astype(int) - 1, 0, bins - 1)


def reliability(
    labels: np.ndarray, scores: np.ndarray, positive: np.ndarray, bins: int = BINS
) -> Reliability:
    """Bin the answers by confidence: `scores` are P(positive), `positive` the decisions."""
    labels, scores, positive = np.asarray(labels), np.asarray(scores), np.asarray(positive, bool)
    confidence, index = _binned_confidence(scores, positive, bins)
    right = positive == (labels == 1)
    counts = np.bincount(index, minlength=bins)
    filled = counts > 0
    totals = np.bincount(index, weights=confidence, minlength=bins)
    hits = np.bincount(index, weights=right.astype(float), minlength=bins)
    return Reliability(
        totals[filled] / counts[filled], hits[filled] / counts[filled], counts[filled]
    )


def expected_calibration_error(
    labels: np.ndarray, scores: np.ndarray, positive: np.ndarray, bins: int = BINS
) -> float:
    """ECE over `bins` equal-width bins of the predicted class's confidence; 0 for no answers."""
    return reliability(labels, scores, positive, bins).error


def calibration_noise(
    scores: np.ndarray, positive: np.ndarray, bins: int = BINS, draws: int = NOISE_DRAWS
) -> dict:
    """The ECE a perfectly calibrated model would show on these answers, from chance alone:
    its median and 90th percentile over `draws` draws of each answer's outcome, right with
    probability its confidence. Zero for no answers."""
    scores, positive = np.asarray(scores, float), np.asarray(positive, bool)
    if not len(scores):
        return {"median": 0.0, "p90": 0.0, "draws": draws}
    confidence, index = _binned_confidence(scores, positive, bins)
    counts = np.bincount(index, minlength=bins)
    expected = np.bincount(index, weights=confidence, minlength=bins)
    right = np.random.default_rng(NOISE_SEED).random((draws, len(scores))) < confidence
    # Per draw and bin: |hits - sum of confidences|, summed over bins, over all answers.
    hits = np.stack([np.bincount(index, weights=row, minlength=bins) for row in right])
    errors = np.abs(hits - expected).sum(axis=1) / counts.sum()
    return {
        "median": float(np.median(errors)),
        "p90": float(np.quantile(errors, 0.9)),
        "draws": draws,
    }


def calibration_figures(labels: np.ndarray, scores: np.ndarray, positive: np.ndarray) -> dict:
    """ECE, the ECE that chance alone gives a calibrated model on as many answers
    (calibration_noise), the mean confidence (against accuracy: over- or underconfident) and
    the reliability diagram's bins, for a report."""
    binned = reliability(labels, scores, positive)
    return {
        "ece": binned.error,
        "mean_confidence": binned.mean_confidence,
        "ece_if_calibrated": calibration_noise(scores, positive),
        "reliability": binned.to_json(),
    }


def plot_reliability(axes: Axes, curves: dict[str, Reliability], title: str) -> None:
    """A reliability diagram: each curve's accuracy against confidence, per bin."""
    axes.plot([0.5, 1], [0.5, 1], linestyle=":", color="grey", label="calibrated")
    for name, binned in curves.items():
        label = f"{name} (ECE {binned.error:.3f})"
        axes.plot(binned.confidence, binned.accuracy, marker="o", label=label)
    axes.set(
        title=title,
        xlabel=f"confidence of the predicted class ({BINS} bins)",
        ylabel="accuracy",
        xlim=(0.45, 1.02),
        ylim=(0, 1.02),
    )
    axes.legend(loc="lower right")
