"""The promotion gate inside the training job: the new model against the one serving.

When a deployment retrains, the training custom resource gives the job the serving model's
model.tar.gz as its "serving" channel (lambda_src/training_job.py). Once train.py has written
the new model directory, this module extracts the serving artifact (safely), loads each model
through its own code/ handlers, asks both the behaviour suite through input_fn → predict_fn →
output_fn (64 reviews a request, as the endpoint is asked) and takes each one's validation
accuracy from its drift_baseline.json; contract/promotion.py's rule decides, the same rule the
local stack applies before a hot swap. The decision goes to promotion.json in the output
directory (output.tar.gz) and to the log as one `key=value` line. A refusal that is not forced
raises: train.py writes it to SageMaker's failure file, the job fails, and the deployment shows
it (both sets of figures, and how to force) before the endpoint changes.

The handlers are called directly: the training container has no serving toolkit. Not served:
inference.py never imports this module.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

from contract.limits import batch_requests
from contract.model_code import CODE_DIR, HANDLER_MODULE, import_isolated
from contract.packaging import extract_tarball, file_sha256
from contract.promotion import (
    FORCE_IN_AWS,
    PROMOTION_FILE,
    SERVING_CHANNEL,
    Answer,
    GateFigures,
    decide,
    gate_figures,
)

JSON = "application/json"
SERVING_ENVIRONMENT = f"SM_CHANNEL_{SERVING_CHANNEL.upper()}"


class PromotionRefused(RuntimeError):
    """The new model is worse than the serving one, and promotion was not forced."""


def serving_channel(environ: Mapping[str, str]) -> Path | None:
    """The serving channel's directory; None when the job has no model to compare with (the
    first deployment, or `sentiment train` without --serving-model)."""
    configured = environ.get(SERVING_ENVIRONMENT)
    return Path(configured) if configured else None


def serving_artifact(channel: Path) -> Path:
    """The channel's one file: SageMaker downloads the one S3 object the channel names."""
    files = sorted(path for path in channel.rglob("*") if path.is_file())
    if len(files) != 1:
        raise FileNotFoundError(
            f"the {SERVING_CHANNEL} channel ({channel}) holds {len(files)} files, "
            "not one model.tar.gz"
        )
    return files[0]


def handler_answers(handlers: ModuleType, model: Any) -> Answer:
    """The handlers' answer to each text, asked in JSON batches as the endpoint is
    (contract.limits.batch_requests)."""

    def answer(texts: list[str]) -> list[dict]:
        answers = []
        # str bodies: the serving toolkit decodes JSON before input_fn sees it.
        for body in batch_requests(texts):
            response = handlers.output_fn(
                handlers.predict_fn(handlers.input_fn(body, JSON), model), JSON
            )
            # output_fn may return the body alone or with its content type, as the toolkit
            # accepts both (an older artifact's handlers may differ from today's).
            text = response[0] if isinstance(response, tuple) else response
            answers.extend(json.loads(text)["predictions"])
        return answers

    return answer


def model_figures(model_dir: Path) -> GateFigures:
    """An extracted model's figures, through the handlers in its own code/."""
    handlers = import_isolated(model_dir / CODE_DIR, HANDLER_MODULE)
    model = handlers.model_fn(str(model_dir))
    return gate_figures(model_dir, handler_answers(handlers, model))


def _metric_line(new: GateFigures, serving: GateFigures, promoted: bool, forced: bool) -> str:
    pairs = {
        "new_validation_accuracy": new.validation_accuracy,
        "serving_validation_accuracy": serving.validation_accuracy,
        "new_behaviour_pass_rate": new.behaviour_pass_rate,
        "serving_behaviour_pass_rate": serving.behaviour_pass_rate,
    }
    # An unrecorded accuracy is left out: every value on a metric line is a number.
    fields = [f"{key}={value:.4f}" for key, value in pairs.items() if value is not None]
    return " ".join(["promotion", *fields, f"promoted={int(promoted)}", f"forced={int(forced)}"])


def apply_gate(
    model_dir: Path, channel: Path, output_dir: Path, *, tolerance: float, force: bool
) -> dict[str, Any]:
    """Compare the new model in ``model_dir`` with the serving artifact in ``channel``; write
    promotion.json to ``output_dir`` and return it; raise PromotionRefused on a refusal that
    is not forced."""
    artifact = serving_artifact(channel)
    serving_name = f"sha256={file_sha256(artifact)[:12]}"
    # The new model just answered its smoke test through these handlers: if it cannot answer
    # the suite, the job fails whatever the flags say.
    new = model_figures(model_dir)
    with tempfile.TemporaryDirectory(prefix="serving-model-") as scratch:
        try:
            serving = model_figures(extract_tarball(artifact, Path(scratch) / "model"))
        except Exception as error:  # what an older or damaged artifact raises varies
            # No yardstick: a serving model the gate cannot run is not one to keep the new
            # model out for (the local gate passes such a model too). Said, not hidden.
            record = {
                "new": new.to_json(),
                "serving": {"name": serving_name, "error": f"{type(error).__name__}: {error}"},
                "promoted": True,
                "reason": "the serving model could not be scored; nothing to compare with",
            }
            print(f"promotion gate passed without comparing: {record['serving']['error']}")
            _write(output_dir, record)
            return record
    decision = decide(new, serving, tolerance, forced=force, serving_name=serving_name)
    record = decision.to_json()
    _write(output_dir, record)
    print(_metric_line(new, serving, decision.promoted, force), flush=True)
    if decision.worse and force:
        print(f"promotion forced past the gate's refusal: {decision.reason()}", flush=True)
    if not decision.promoted:
        raise PromotionRefused(
            f"refused by the promotion gate: {decision.reason()}; {FORCE_IN_AWS}"
        )
    return record


def _write(output_dir: Path, record: dict[str, Any]) -> None:
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / PROMOTION_FILE).write_text(json.dumps(record, indent=2) + "\n")
