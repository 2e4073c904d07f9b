"""The smoke test the training job leaves in the model artifact (contract/smoke.py).

The model answers contract.smoke.SMOKE_REVIEWS through its own inference handlers, exactly as
the endpoint will call them, and the answers are kept: the deployment asks the live endpoint
the same and fails if any answer differs. Not served: inference.py never imports it.
"""

from __future__ import annotations

import json
from pathlib import Path

from inference import JSON, input_fn, model_fn, output_fn, predict_fn

from contract.smoke import SMOKE_FILE, SMOKE_REVIEWS, smoke_case, smoke_document


def write_smoke_test(model_dir: Path) -> Path:
    """smoke_test.json in a model directory whose weights, settings and vocabulary are written."""
    model = model_fn(str(model_dir))
    cases = []
    for review, label in SMOKE_REVIEWS:
        request = input_fn(json.dumps({"review": review}), JSON)
        body, _ = output_fn(predict_fn(request, model), JSON)
        cases.append(smoke_case(review, label, json.loads(body)))
    path = model_dir / SMOKE_FILE
    path.write_text(json.dumps(smoke_document(cases, model.version), indent=1) + "\n")
    return path
