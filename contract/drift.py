"""The drift report's figures: pure functions over profiles of reviews and answers.

A *profile* summarizes a body of reviews as the model read them and as it answered: the
distribution of their length in tokens (what the model's own preprocessing leaves), the share
of tokens its vocabulary does not know, the distribution of its positive score, the share of
low-confidence verdicts and the most frequent words. The training job records one from the
validation reviews in the model artifact (the *baseline*, ``drift_baseline.json``; model/
drift_baseline.py); `sentiment monitor` and the drift Lambda build one from captured traffic
and compare (``compare``). Histograms keep their bin edges, so the population stability index
(PSI) of later traffic is taken over the baseline's own bins.

Standard library only: the training job, the command line and the Lambda all run it. The
tokenizer is never imported here; it comes from the artifact (``review_words``).
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from types import ModuleType
from typing import Any

# Beside model_config.json and vocabulary.json in model.tar.gz.
BASELINE_FILE = "drift_baseline.json"
BASELINE_FORMAT = 1
REPORT_FORMAT = 1
# Tokens per review, in bins that double: page traffic (a few words) and IMDB reviews (hundreds,
# cut at max_length) both spread over several bins, so either can be the baseline.
LENGTH_EDGES = (0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
SCORE_EDGES = tuple(step / 10 for step in range(11))
TOP_WORDS = 25
# An empty bin on either side would make the PSI infinite; it counts as this share instead
# (the usual floor: one review in ten thousand).
PSI_FLOOR = 1e-4
# `sentiment monitor`'s exit status when a threshold is crossed (2 is a usage or input error).
EXIT_DRIFT = 3
# CloudWatch, where the drift Lambda publishes the figures (dimension: the endpoint's name).
METRIC_NAMESPACE = "ImdbSentiment/Drift"
# Where a baseline re-taken from page traffic goes in the artifact bucket, for the Lambda.
RETAKEN_BASELINE_KEY = "drift/baseline.json"
# Each published figure's metric name; the stack alarms on the thresholded ones.
METRIC_NAMES = {
    "reviews": "Reviews",
    "length_psi": "LengthPSI",
    "score_psi": "ScorePSI",
    "oov_rate": "OOVRate",
    "oov_rate_increase": "OOVRateIncrease",
    "low_confidence_share": "LowConfidenceShare",
    "low_confidence_increase": "LowConfidenceIncrease",
    "feedback_received": "FeedbackReceived",
    "feedback_accuracy": "FeedbackAccuracy",
    "thresholds_crossed": "ThresholdsCrossed",
}
# The figures with a threshold: all of them alarm above it, but accuracy below.
THRESHOLDED = ("length_psi", "score_psi", "oov_rate_increase", "low_confidence_increase")


@dataclass(frozen=True)
class Thresholds:
    """When the report says the model needs a look. Increases are over the baseline's figure.

    PSI below 0.1 is read as no shift and above 0.25 as a significant one (the usual rule
    of thumb from credit scoring); the other defaults are set for this demo's traffic, and the
    README says how to set them for a page's (cdk.json, or the command's flags).
    """

    length_psi: float = 0.25
    score_psi: float = 0.25
    oov_rate_increase: float = 0.05
    low_confidence_increase: float = 0.10
    # Judged only with at least `min_feedback` answers from visitors: a handful says little.
    feedback_accuracy: float = 0.80
    min_feedback: int = 20
    # Below this many reviews in the window there is no report: PSI over a few is noise.
    min_records: int = 50

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Thresholds:
        known = {field.name: field.type for field in fields(cls)}
        unknown = set(data) - set(known)
        if unknown:
            raise ValueError(f"unknown thresholds: {', '.join(sorted(unknown))}")
        return cls(
            **{name: (int if known[name] == "int" else float)(v) for name, v in data.items()}
        )

    def to_json(self) -> dict[str, float]:
        return asdict(self)


def histogram(values: Iterable[float], edges: Sequence[float]) -> list[int]:
    """Counts per bin ``[edges[i], edges[i + 1])``; values past either end go to the end bins."""
    counts = [0] * (len(edges) - 1)
    last = len(counts) - 1
    for value in values:
        counts[min(max(bisect_right(edges, value) - 1, 0), last)] += 1
    return counts


def proportions(counts: Sequence[int]) -> list[float]:
    total = sum(counts)
    return [count / total if total else 0.0 for count in counts]


def psi(expected: Sequence[float], actual: Sequence[float], floor: float = PSI_FLOOR) -> float:
    """Population stability index of ``actual`` against ``expected`` (proportions per bin):
    the sum of (actual - expected) * ln(actual / expected), each share at least ``floor``."""
    if len(expected) != len(actual):
        raise ValueError(f"{len(expected)} bins against {len(actual)}")
    total = 0.0
    for before, after in zip(expected, actual, strict=True):
        before, after = max(before, floor), max(after, floor)
        total += (after - before) * math.log(after / before)
    return total


class Profile:
    """Reviews added one by one; ``to_json`` is the profile a baseline file holds."""

    def __init__(
        self,
        length_edges: Sequence[float] = LENGTH_EDGES,
        score_edges: Sequence[float] = SCORE_EDGES,
    ) -> None:
        self.length_edges = list(length_edges)
        self.score_edges = list(score_edges)
        self.lengths: list[int] = []
        self.scores: list[float] = []
        self.low_confidence = 0
        self.unknown_tokens = 0
        self.known_words: Counter[str] = Counter()
        self.unknown_words: Counter[str] = Counter()

    @classmethod
    def like(cls, baseline: Mapping[str, Any]) -> Profile:
        """An empty profile over a baseline's bins."""
        return cls(baseline["length"]["edges"], baseline["score"]["edges"])

    def add(
        self,
        known_words: Sequence[str],
        unknown_words: Sequence[str],
        score: float,
        low_confidence: bool,
    ) -> None:
        """One review: its tokens as the model read them, split by whether the vocabulary knows
        them (an unknown word whose text is lost, as in a prepared split, is ``""``), and the
        model's answer."""
        self.lengths.append(len(known_words) + len(unknown_words))
        self.scores.append(float(score))
        self.low_confidence += bool(low_confidence)
        self.unknown_tokens += len(unknown_words)
        self.known_words.update(known_words)
        self.unknown_words.update(word for word in unknown_words if word)

    def __len__(self) -> int:
        return len(self.lengths)

    def to_json(self) -> dict[str, Any]:
        reviews, tokens = len(self.lengths), sum(self.lengths)
        return {
            "reviews": reviews,
            "tokens": tokens,
            "length": _distribution(self.lengths, self.length_edges),
            "score": _distribution(self.scores, self.score_edges),
            "oov_rate": self.unknown_tokens / tokens if tokens else 0.0,
            "low_confidence_share": self.low_confidence / reviews if reviews else 0.0,
            "top_words": [[word, count / tokens] for word, count in _most_common(self.known_words)],
            "top_unknown_words": [list(item) for item in _most_common(self.unknown_words)],
        }


def _distribution(values: Sequence[float], edges: Sequence[float]) -> dict[str, Any]:
    return {
        "edges": list(edges),
        "proportions": proportions(histogram(values, edges)),
        "mean": sum(values) / len(values) if values else 0.0,
    }


def _most_common(counts: Counter[str]) -> list[tuple[str, int]]:
    # Ties broken alphabetically, so the same traffic gives the same report.
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:TOP_WORDS]


def baseline_document(
    profile: Profile, *, source: str, model_version: str | None, **extra: Any
) -> dict[str, Any]:
    """A baseline file's contents: the profile and where it came from (``extra``: the period
    of traffic it was taken from, the validation accuracy...)."""
    return {
        "format": BASELINE_FORMAT,
        "source": source,
        "model_version": model_version,
        **extra,
        **profile.to_json(),
    }


def check_baseline(baseline: Mapping[str, Any], where: str) -> Mapping[str, Any]:
    """The baseline if it is one this code reads, else ValueError naming ``where``."""
    if not isinstance(baseline, Mapping) or baseline.get("format") != BASELINE_FORMAT:
        raise ValueError(f"{where} is not a drift baseline of format {BASELINE_FORMAT}")
    for part in ("length", "score"):
        if not isinstance(baseline.get(part), Mapping) or "edges" not in baseline[part]:
            raise ValueError(f"{where} has no {part} histogram")
    return baseline


def feedback_accuracy(records: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """How often the model's verdict was the visitor's answer; None with no feedback."""
    answers = [record["predicted"] == record["label"] for record in records]
    return {
        "received": len(answers),
        "accuracy": sum(answers) / len(answers) if answers else None,
    }


def compare(
    baseline: Mapping[str, Any],
    traffic: Profile,
    feedback: Mapping[str, Any],
    thresholds: Thresholds,
) -> dict[str, Any]:
    """The figures, and which thresholds they cross (``crossed``, in a fixed order)."""
    observed = traffic.to_json()
    figures = {
        "reviews": observed["reviews"],
        "length_psi": psi(baseline["length"]["proportions"], observed["length"]["proportions"]),
        "score_psi": psi(baseline["score"]["proportions"], observed["score"]["proportions"]),
        "mean_length": observed["length"]["mean"],
        "baseline_mean_length": baseline["length"]["mean"],
        "oov_rate": observed["oov_rate"],
        "baseline_oov_rate": baseline["oov_rate"],
        "oov_rate_increase": observed["oov_rate"] - baseline["oov_rate"],
        "low_confidence_share": observed["low_confidence_share"],
        "baseline_low_confidence_share": baseline["low_confidence_share"],
        "low_confidence_increase": (
            observed["low_confidence_share"] - baseline["low_confidence_share"]
        ),
        "feedback_received": feedback["received"],
        "feedback_accuracy": feedback["accuracy"],
        "baseline_accuracy": baseline.get("accuracy"),
    }
    names = crossed(figures, thresholds)
    figures["thresholds_crossed"] = len(names)
    return {
        "figures": figures,
        "crossed": names,
        "thresholds": thresholds.to_json(),
        "length": _side_by_side(baseline["length"], observed["length"]),
        "score": _side_by_side(baseline["score"], observed["score"]),
        "top_words": observed["top_words"],
        "baseline_top_words": baseline.get("top_words", []),
        "top_unknown_words": observed["top_unknown_words"],
    }


def crossed(figures: Mapping[str, Any], thresholds: Thresholds) -> list[str]:
    """The names of the figures past their threshold."""
    names = [name for name in THRESHOLDED if figures[name] > getattr(thresholds, name)]
    if (
        figures["feedback_received"] >= thresholds.min_feedback
        and figures["feedback_accuracy"] is not None
        and figures["feedback_accuracy"] < thresholds.feedback_accuracy
    ):
        names.append("feedback_accuracy")
    return names


def _side_by_side(baseline: Mapping[str, Any], traffic: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "edges": baseline["edges"],
        "baseline": baseline["proportions"],
        "traffic": traffic["proportions"],
    }


def review_words(
    preprocess: ModuleType, vocabulary: Mapping[str, Any]
) -> Callable[[str], tuple[list[str], list[str]]]:
    """A review → (known, unknown) tokens, as the model reads it: the artifact's own
    ``preprocess`` module (code/preprocess.py) and its vocabulary.json, cut at max_length."""
    loaded = preprocess.Vocabulary.from_json(vocabulary)
    tokenizer = preprocess.Tokenizer(loaded.settings)
    unknown_id = preprocess.OOV_ID

    def split(review: str) -> tuple[list[str], list[str]]:
        tokens = tokenizer(review)[: loaded.settings.max_length]
        ids = loaded.ids(tokens)
        known = [token for token, index in zip(tokens, ids, strict=True) if index != unknown_id]
        unknown = [token for token, index in zip(tokens, ids, strict=True) if index == unknown_id]
        return known, unknown

    return split
