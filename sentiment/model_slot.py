"""The model an endpoint emulator serves, swapped atomically when its artifact file changes.

A model.tar.gz is snapshotted, extracted and loaded through its own ``code/inference.py``
(``sentiment.model_loader``). While it serves, the file is polled: a new artifact that has
settled is loaded in the background and swapped in with one reference assignment, so requests
in flight finish on the model they started with, as during a SageMaker endpoint update.
Before it serves, a model answers its own smoke test (contract/smoke.py), as the deployment
asks the live endpoint after an update. An artifact that does not load, or answers differently
from training, leaves the current model serving, and the reason is logged.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from contract.packaging import file_sha256
from contract.promotion import GateFigures, decide
from contract.smoke import SMOKE_FILE, failures, parse_smoke_test
from sentiment import inference_toolkit
from sentiment.inference_toolkit import RefusedReview
from sentiment.model_loader import JSON, ServedModel, served_artifact
from sentiment.promotion import gate_figures

POLL_SECONDS = 1.0
HANDLER_FUNCTIONS = ("model_fn", "input_fn", "predict_fn", "output_fn")

# The endpoint emulator's logger: these lines are the endpoint's log.
_logger = logging.getLogger("sentiment.endpoint")


@dataclass(frozen=True)
class FileState:
    """What changes when a file is rewritten or replaced."""

    inode: int
    size: int
    mtime_ns: int


def file_state(path: Path) -> FileState | None:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return FileState(stat.st_ino, stat.st_size, stat.st_mtime_ns)


class IncompleteHandlersError(ValueError):
    """code/inference.py lacks one of the handler functions this endpoint calls."""


class SmokeTestFailed(ValueError):
    """The model does not give the verdicts it gave at training (contract/smoke.py)."""


def prove(served: ServedModel) -> int:
    """Ask the model its own smoke test through the handlers, as the deployment asks the live
    endpoint; the number of cases (0 for a model older than smoke tests, which is logged)."""
    path = served.model_dir / SMOKE_FILE
    if not path.is_file():
        _logger.warning("the model carries no %s: serving it unproven", SMOKE_FILE)
        return 0
    cases = parse_smoke_test(path.read_bytes())

    def ask(body: bytes) -> tuple[int, bytes]:
        answer = inference_toolkit.invoke(served, body, JSON, JSON)
        return answer.status, answer.body

    found = failures(cases, ask)
    if found:
        raise SmokeTestFailed(
            f"{len(found)} of {len(cases)} smoke-test answers differ from training's: "
            + "; ".join(found)
        )
    return len(cases)


@dataclass
class LoadedArtifact:
    served: ServedModel
    sha256: str
    _resources: contextlib.ExitStack
    # Smoke-test cases answered as at training before it served (0: it carried none).
    proven: int = 0

    def close(self) -> None:
        self._resources.close()


def load_artifact(artifact: Path) -> LoadedArtifact:
    """Snapshot, extract and load a model.tar.gz; raises whatever makes it unservable.

    The snapshot makes the digest and the loaded model describe the same bytes even if the
    file is replaced meanwhile. The extracted directory lives as long as the model serves, as
    /opt/ml/model does in the container.
    """
    resources = contextlib.ExitStack()
    try:
        scratch = Path(resources.enter_context(tempfile.TemporaryDirectory(prefix="endpoint-")))
        snapshot = shutil.copyfile(artifact, scratch / "model.tar.gz")
        served = resources.enter_context(served_artifact(snapshot))
        missing = [name for name in HANDLER_FUNCTIONS if not hasattr(served.handlers, name)]
        if missing:
            raise IncompleteHandlersError(f"code/inference.py does not define {', '.join(missing)}")
        proven = prove(served)
        return LoadedArtifact(served, file_sha256(snapshot), resources, proven)
    except BaseException:
        resources.close()
        raise


@dataclass(frozen=True)
class Gate:
    """The promotion gate's settings (contract/promotion.py): how much worse a new model may
    be, and whether to promote it anyway."""

    tolerance: float
    force: bool = False


class ModelSlot:
    """The model being served, replaced atomically when its artifact file changes."""

    def __init__(self, artifact: Path, gate: Gate | None = None) -> None:
        self.artifact = artifact
        self.gate = gate
        self._serving_figures: GateFigures | None = None
        self._state = file_state(artifact)
        self._loaded = load_artifact(artifact)
        self._pending: FileState | None = None
        self._refused: FileState | None = None
        _logger.info("serving model sha256=%s from %s", self._loaded.sha256[:12], artifact)

    @property
    def served(self) -> ServedModel:
        # One attribute read: a request keeps the model it got even if a swap follows.
        return self._loaded.served

    @property
    def sha256(self) -> str:
        return self._loaded.sha256

    def poll(self) -> bool:
        """Swap to the artifact on disk if it changed and has settled; True if swapped.

        A new state is loaded only once it has been seen unchanged on two polls in a row, so a
        file still being copied in place is not mistaken for a corrupt one.
        """
        state = file_state(self.artifact)
        if state is None or state in (self._state, self._refused):
            self._pending = None
            return False
        if state != self._pending:
            self._pending = state
            return False
        self._pending = None
        started = time.perf_counter()
        try:
            loaded = load_artifact(self.artifact)
        except Exception:
            self._refused = state
            _logger.exception(
                "model update refused: %s does not load or fails its smoke test; still "
                "serving sha256=%s",
                self.artifact,
                self.sha256[:12],
            )
            return False
        if not self._promotes(loaded):
            loaded.close()
            self._refused = state
            return False
        previous, self._loaded, self._state = self._loaded, loaded, state
        self._serving_figures = None
        previous.close()
        _logger.info(
            "model updated: now serving sha256=%s (was %s), loaded and %d smoke-test answers "
            "proven in %.2f s",
            loaded.sha256[:12],
            previous.sha256[:12],
            loaded.proven,
            time.perf_counter() - started,
        )
        return True

    def _promotes(self, candidate: LoadedArtifact) -> bool:
        """Whether the promotion gate lets ``candidate`` replace the serving model."""
        if self.gate is None:
            return True
        verdict = "promoted anyway (forced)" if self.gate.force else "model update refused"
        try:
            new = gate_figures(candidate.served)
        except RefusedReview as error:
            _logger.warning(
                "%s by the promotion gate: it cannot answer the behaviour suite: %s",
                verdict,
                error,
            )
            return self.gate.force
        try:
            if self._serving_figures is None:
                self._serving_figures = gate_figures(self.served)
        except RefusedReview as error:
            _logger.warning("promotion gate passed: the serving model cannot answer: %s", error)
            return True
        serving = self._serving_figures
        decision = decide(
            new,
            serving,
            self.gate.tolerance,
            forced=self.gate.force,
            serving_name=f"sha256={self.sha256[:12]}",
        )
        if not decision.worse:
            _logger.info("promotion gate passed: %s (serving: %s)", new.shown(), serving.shown())
            return True
        _logger.warning("%s by the promotion gate: %s", verdict, decision.reason())
        return decision.promoted

    def watch(self, stop: threading.Event, interval: float = POLL_SECONDS) -> None:
        while not stop.wait(interval):
            try:
                self.poll()
            except Exception:  # never let the watcher die: the endpoint would stop updating
                _logger.exception("model watcher failed; retrying")

    def close(self) -> None:
        self._loaded.close()
