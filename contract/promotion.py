"""The promotion gate's rule: a new model replaces the serving one only if it is not worse.

Like with like: both models are scored now, through their own handlers, on the current
behaviour suite (contract/behaviour.py: short, templated reviews of the kind visitors type),
and each brings the validation accuracy its training recorded (drift_baseline.json; the test
split never takes part). The new model is refused when a figure falls by more than the
tolerance, unless promotion is forced.

Two tiers apply it, with this one rule and this one message: the local endpoint emulator
before a hot swap (sentiment/model_slot.py, which logs a refusal), and the SageMaker training
job (model/promotion_gate.py), which fails with the refusal as its FailureReason, so the
deployment stops before the endpoint changes. How each asks the handlers is its own: the
emulator through the inference toolkit, the job by calling them directly (the training
container has no serving toolkit).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from contract import behaviour
from contract.drift import BASELINE_FILE

# Points of a pass rate or an accuracy a new model may lose: the spread between retrainings
# of the same configuration on this suite is about one point.
DEFAULT_TOLERANCE = 0.01
# The training job's input channel that holds the serving model's model.tar.gz; the
# training custom resource adds it (lambda_src/training_job.py) when a model serves.
SERVING_CHANNEL = "serving"
# What the gate decided, in the training job's output (output.tar.gz).
PROMOTION_FILE = "promotion.json"
# How to push a refused model through, in each place a refusal is read.
FORCE_IN_AWS = (
    "to promote it anyway, deploy with -c sentiment:forcePromotion=true "
    "(sentiment train: --force-promotion true)"
)

Answer = Callable[[list[str]], list[dict]]


@dataclass(frozen=True)
class GateFigures:
    validation_accuracy: float | None
    behaviour_pass_rate: float

    def shown(self) -> str:
        accuracy = (
            "unrecorded" if self.validation_accuracy is None else f"{self.validation_accuracy:.4f}"
        )
        return f"validation accuracy {accuracy}, behaviour suite {self.behaviour_pass_rate:.4f}"

    def to_json(self) -> dict[str, float | None]:
        return {
            "validation_accuracy": self.validation_accuracy,
            "behaviour_pass_rate": self.behaviour_pass_rate,
        }


def recorded_accuracy(model_dir: Path) -> float | None:
    """The validation accuracy training recorded in the model directory (None: an older
    model that recorded none)."""
    path = model_dir / BASELINE_FILE
    return json.loads(path.read_text()).get("accuracy") if path.is_file() else None


def gate_figures(model_dir: Path, answer: Answer) -> GateFigures:
    """One model's figures: its recorded validation accuracy, and the behaviour suite asked
    now through ``answer`` (its handlers)."""
    suite = behaviour.run_suite(answer)
    return GateFigures(recorded_accuracy(model_dir), suite["pass_rate"])


def shortfalls(new: GateFigures, serving: GateFigures, tolerance: float) -> list[str]:
    """Each figure on which ``new`` is worse than ``serving`` by more than ``tolerance``."""
    found = []
    if (
        new.validation_accuracy is not None
        and serving.validation_accuracy is not None
        and new.validation_accuracy < serving.validation_accuracy - tolerance
    ):
        found.append("validation accuracy")
    if new.behaviour_pass_rate < serving.behaviour_pass_rate - tolerance:
        found.append("behaviour suite")
    return found


def refusal(
    worse: Sequence[str],
    tolerance: float,
    new: GateFigures,
    serving: GateFigures,
    serving_name: str,
) -> str:
    """Why the gate refuses, with both sets of figures (``serving_name``: which model serves,
    e.g. ``sha256=<12 hex digits>`` of its artifact)."""
    return (
        f"worse {' and '.join(worse)} by more than {tolerance:.3f}: the new model has "
        f"{new.shown()}, where {serving_name} serving has {serving.shown()}"
    )


@dataclass(frozen=True)
class Decision:
    """The gate's verdict on one new model against the serving one."""

    new: GateFigures
    serving: GateFigures
    tolerance: float
    forced: bool
    serving_name: str
    worse: tuple[str, ...]

    @property
    def promoted(self) -> bool:
        return not self.worse or self.forced

    def reason(self) -> str:
        """The refusal (empty when the new model is not worse)."""
        if not self.worse:
            return ""
        return refusal(self.worse, self.tolerance, self.new, self.serving, self.serving_name)

    def to_json(self) -> dict[str, Any]:
        return {
            "new": self.new.to_json(),
            "serving": self.serving.to_json() | {"name": self.serving_name},
            "tolerance": self.tolerance,
            "worse": list(self.worse),
            "forced": self.forced,
            "promoted": self.promoted,
            # True when the gate refused and promotion was forced past it.
            "refusal_overridden": bool(self.worse) and self.forced,
            "reason": self.reason() or None,
        }


def decide(
    new: GateFigures,
    serving: GateFigures,
    tolerance: float,
    *,
    forced: bool = False,
    serving_name: str = "the serving model",
) -> Decision:
    return Decision(
        new, serving, tolerance, forced, serving_name, tuple(shortfalls(new, serving, tolerance))
    )
