"""model.tar.gz's inference handlers, loaded the way the SageMaker PyTorch serving container does.

The container extracts model.tar.gz into /opt/ml/model, puts /opt/ml/model/code first on
the import path and imports `inference` by its bare name; `inference` imports its
siblings (`network`, `preprocess`) the same way. So a model is served by the code that
was packed with it, never by the checkout's model/. `model_fn` then loads the weights,
settings and vocabulary from /opt/ml/model, and every request goes through input_fn →
predict_fn → output_fn.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

# These live in contract/ (the training job's promotion gate needs them too); they are
# imported here for this module's callers as well.
from contract.model_code import CODE_DIR, HANDLER_MODULE, import_isolated
from contract.packaging import extract_tarball

JSON = "application/json"


@dataclass(frozen=True)
class ServedModel:
    """An artifact's inference handlers, the model their model_fn loaded, and where."""

    handlers: ModuleType
    model: Any
    model_dir: Path


class ArtifactLoadError(ValueError):
    """model_fn refused the artifact: a file is missing or corrupt (the message names it)."""


def load_model_dir(model_dir: Path, code: Path | None = None) -> ServedModel:
    """Load an extracted model directory (what the container has at /opt/ml/model).

    With `code`, the handlers come from that directory instead of the artifact's code/:
    changed handlers measured on trained weights (bench/serving_latency.py --checkout-code).
    """
    handlers = import_isolated(code or model_dir / CODE_DIR, HANDLER_MODULE)
    try:
        model = handlers.model_fn(str(model_dir))
    except handlers.ArtifactError as error:
        raise ArtifactLoadError(str(error)) from error
    return ServedModel(handlers, model, model_dir)


@contextmanager
def served_artifact(artifact: Path, code: Path | None = None) -> Iterator[ServedModel]:
    """model.tar.gz extracted (safely) into a temporary directory and loaded from there
    (with the handlers in `code`, if given: see load_model_dir)."""
    if not artifact.is_file():
        raise FileNotFoundError(f"model artifact not found: {artifact}")
    with tempfile.TemporaryDirectory(prefix="sentiment-model-") as scratch:
        yield load_model_dir(extract_tarball(artifact, Path(scratch) / "model"), code)
