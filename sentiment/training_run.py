"""`sentiment train`: run the SageMaker entry point locally, the way the container runs it.

The training container downloads the source tarball, extracts it into /opt/ml/code
and runs `python train.py --hyperparameter value ...` there with SM_* variables naming
the model directory, the input channels and the output directory; afterwards
SageMaker tars the model directory into model.tar.gz. This does the same in a
temporary directory, so what is tested here is what runs in AWS. Given the model serving now,
it is the job's "serving" channel, as the deployment gives it, and the promotion gate runs
(model/promotion_gate.py): a refusal fails the run with both sets of figures.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from contract.files import CHANNELS, MANIFEST_FILE, MODEL_ARTIFACT
from contract.packaging import build_tarball, build_training_source, extract_tarball, file_sha256
from contract.promotion import SERVING_CHANNEL

ENTRY_POINT = "train.py"


class TrainingFailed(RuntimeError):
    """The entry point exited non-zero; the message is SageMaker's failure reason."""


def run_key(source_tarball: Path, data_dir: Path, hyperparameters: list[str]) -> str:
    """A digest of code, data and hyperparameters: equal keys mean the same training run."""
    digest = hashlib.sha256(file_sha256(source_tarball).encode())
    manifest = data_dir / MANIFEST_FILE
    digest.update(manifest.read_bytes() if manifest.exists() else str(data_dir.resolve()).encode())
    digest.update("\0".join(hyperparameters).encode())
    return digest.hexdigest()[:16]


def train(
    data_dir: Path,
    model_dir: Path,
    hyperparameters: list[str],
    checkpoint_root: Path,
    serving_model: Path | None = None,
) -> Path:
    """Train into `model_dir`/model.tar.gz; returns its path. Output streams to stdout.

    Checkpoints are kept per run key, so rerunning an interrupted run with the same
    code, data and hyperparameters resumes it, and anything else starts afresh. With
    `serving_model` (a model.tar.gz), the new model must pass the promotion gate against it.
    """
    if not (data_dir / "train").is_dir():
        raise FileNotFoundError(
            f"no prepared dataset in {data_dir} (run `sentiment prepare --output {data_dir}`)"
        )
    if serving_model is not None and not serving_model.is_file():
        raise FileNotFoundError(f"serving model not found: {serving_model}")
    with tempfile.TemporaryDirectory(prefix="sentiment-train-") as scratch_name:
        scratch = Path(scratch_name)
        tarball = build_training_source(scratch / "sourcedir.tar.gz")
        code_dir = extract_tarball(tarball, scratch / "code")
        checkpoint_dir = checkpoint_root / run_key(tarball, data_dir, hyperparameters)
        job_model_dir = scratch / "model"
        output_dir = scratch / "output" / "data"
        failure_file = scratch / "output" / "failure"
        serving: dict[str, str] = {}
        if serving_model is not None:
            # A copy, as SageMaker downloads the object into the channel: the run may replace
            # the file it was given (model_dir/model.tar.gz) when it succeeds.
            channel = scratch / "input" / SERVING_CHANNEL
            channel.mkdir(parents=True)
            shutil.copyfile(serving_model, channel / MODEL_ARTIFACT)
            serving = {f"SM_CHANNEL_{SERVING_CHANNEL.upper()}": str(channel)}
        environment = {
            **os.environ,
            "SM_MODEL_DIR": str(job_model_dir),
            "SM_OUTPUT_DATA_DIR": str(output_dir),
            **{
                f"SM_CHANNEL_{name.upper()}": str((data_dir / name).resolve())
                for name in CHANNELS
                if (data_dir / name).is_dir()
            },
            **serving,
            "PYTHONUNBUFFERED": "1",
        }
        command = [
            sys.executable,
            ENTRY_POINT,
            *hyperparameters,
            "--checkpoint-dir",
            str(checkpoint_dir.resolve()),
            "--failure-file",
            str(failure_file),
        ]
        result = subprocess.run(command, cwd=code_dir, env=environment, check=False)
        if result.returncode != 0:
            reason = (
                failure_file.read_text().strip()
                if failure_file.exists()
                else f"exit status {result.returncode}"
            )
            raise TrainingFailed(f"training failed: {reason}")
        model_dir.mkdir(parents=True, exist_ok=True)
        for report in output_dir.iterdir():
            shutil.copyfile(report, model_dir / report.name)
        artifact = build_tarball(job_model_dir, model_dir / MODEL_ARTIFACT)
        shutil.rmtree(checkpoint_dir, ignore_errors=True)
    return artifact
