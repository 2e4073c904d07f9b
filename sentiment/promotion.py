"""The promotion gate in the local stack: a served model's figures, for contract/promotion.py.

The rule, the figures and the refusal are contract/promotion.py's, shared with the training
job's gate (model/promotion_gate.py). What is local is how a loaded model answers the
behaviour suite: through the SageMaker inference toolkit's request handling, in batches, as
the endpoint emulator serves it. The emulator applies the gate before a hot swap
(sentiment/model_slot.py) and logs both sets of figures when it refuses.
"""

from __future__ import annotations

from contract import promotion
from contract.promotion import GateFigures
from sentiment.inference_toolkit import batch_answers
from sentiment.model_loader import ServedModel


def gate_figures(served: ServedModel) -> GateFigures:
    """One model's figures: its recorded validation accuracy, its behaviour suite now."""
    return promotion.gate_figures(served.model_dir, lambda texts: batch_answers(served, texts))
