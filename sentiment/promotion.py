"""The promotion gate: a new model replaces the serving one only if it is not worse.

Like with like: both models are scored now, through their own handlers, on the current
behaviour suite (sentiment/behaviour.py: short, templated reviews of the kind visitors type),
and each brings the validation accuracy its training recorded (drift_baseline.json; the test
split never takes part). The new model is refused when a figure falls by more than the
tolerance, unless promotion is forced. The local endpoint emulator applies it before a hot
swap (sentiment/model_slot.py) and logs both sets of figures when it refuses.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from contract.drift import BASELINE_FILE
from sentiment import behaviour
from sentiment.inference_toolkit import batch_answers
from sentiment.model_loader import ServedModel

# Points of a pass rate or an accuracy a new model may lose: the spread between retrainings
# of the same configuration on this suite is about one point.
DEFAULT_TOLERANCE = 0.01


@dataclass(frozen=True)
class GateFigures:
    validation_accuracy: float | None
    behaviour_pass_rate: float

    def shown(self) -> str:
        accuracy = (
            "unrecorded" if self.validation_accuracy is None else f"{self.validation_accuracy:.4f}"
        )
        return f"validation accuracy {accuracy}, behaviour suite {self.behaviour_pass_rate:.4f}"


def gate_figures(served: ServedModel) -> GateFigures:
    """One model's figures: its recorded validation accuracy, its behaviour suite now."""
    path = served.model_dir / BASELINE_FILE
    accuracy = json.loads(path.read_text()).get("accuracy") if path.is_file() else None
    suite = behaviour.run_suite(lambda texts: batch_answers(served, texts))
    return GateFigures(accuracy, suite["pass_rate"])


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
