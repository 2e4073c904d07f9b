"""model/train.py under AWS's own training toolkit (sagemaker-training), as the job runs it.

The toolkit reads /opt/ml/input/config (here under SAGEMAKER_BASE_DIR, a temporary
directory), extracts sagemaker_submit_directory into code/, pip-installs its
requirements.txt into the interpreter that runs it, and runs the entry point with the
hyperparameters as `--name value`. It also compiles a C extension when installed. So it
runs from a virtual environment of its own (build/training-toolkit/, made once and kept,
about 30 s) that sees the project's installed packages through a .pth file: whatever the
toolkit installs goes there, never into .venv. The hyperparameters are the ones the CDK
app synthesizes into the CreateTrainingJob request.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
from pathlib import Path

import pytest
from cdk_stacks import context_with, synthesized, training_request
from imdb_fixture import generate_reviews, write_directory
from model_artifacts import MODEL_DIR_LAYOUT, layout, write_model_dir
from toolkit_environments import toolkit_environment

from contract.drift import BASELINE_FILE
from contract.layout import MODEL_SOURCE_DIR
from contract.packaging import build_tarball, build_training_source, file_sha256
from contract.promotion import PROMOTION_FILE
from sentiment.prepare import PrepareOptions, prepare

pytestmark = pytest.mark.slow

TOOLKIT = "sagemaker-training==5.1.4"
TINY = {
    "embedding-dim": 8,
    "hidden-dim": 8,
    "word2vec-epochs": 1,
    "epochs": 2,
    "patience": 2,
    "threads": 1,
}
TIMEOUT = 600


@pytest.fixture(scope="session")
def toolkit_train() -> Path:
    """The toolkit's `train` command, installed in its own environment."""
    return toolkit_environment("training-toolkit", TOOLKIT) / "train"


def synthesized_hyperparameters(**settings: object) -> dict[str, str]:
    """The CreateTrainingJob request's HyperParameters, as the CDK app writes them."""
    model = synthesized(context_with(hyperparameters=settings)).template("model").to_json()
    return training_request(model)["HyperParameters"]


def opt_ml(root: Path, hyperparameters: dict[str, str], data: Path) -> Path:
    """A training job's /opt/ml: its config files and input channels, the code tarball."""
    config = root / "input" / "config"
    config.mkdir(parents=True)
    tarball = build_training_source(root / "sourcedir.tar.gz")
    hyperparameters = {
        **hyperparameters,
        # The request's S3 URL and region are deployment tokens; the toolkit also reads a path.
        "sagemaker_submit_directory": str(tarball),
        "sagemaker_region": "us-east-1",
    }
    channels = sorted(path.name for path in data.iterdir() if path.is_dir())
    (config / "hyperparameters.json").write_text(json.dumps(hyperparameters))
    # The toolkit waits until every host's name resolves: this machine's resolves.
    host = socket.gethostname()
    (config / "resourceconfig.json").write_text(json.dumps({"current_host": host, "hosts": [host]}))
    (config / "inputdataconfig.json").write_text(
        json.dumps({channel: {"TrainingInputMode": "File"} for channel in channels})
    )
    shutil.copytree(data, root / "input" / "data")
    return root


def run_toolkit(train: Path, root: Path) -> subprocess.CompletedProcess:
    environment = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("SM_", "SAGEMAKER_", "PYTHON"))
    }
    return subprocess.run(
        [str(train)],
        env={**environment, "SAGEMAKER_BASE_DIR": str(root), "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    corpus = write_directory(generate_reviews(per_class=150), tmp_path_factory.mktemp("corpus"))
    output = tmp_path_factory.mktemp("prepared") / "prepared"
    prepare(corpus, output, PrepareOptions(workers=1))
    return output


def test_the_training_job_runs_under_the_toolkit_with_the_synthesized_hyperparameters(
    toolkit_train: Path, data: Path, tmp_path: Path
) -> None:
    hyperparameters = synthesized_hyperparameters(**TINY)
    assert hyperparameters["sagemaker_program"] == "train.py"
    root = opt_ml(tmp_path / "opt-ml", hyperparameters, data)

    result = run_toolkit(toolkit_train, root)

    assert result.returncode == 0, result.stderr[-3000:]
    model_dir = root / "model"
    assert layout(model_dir) == MODEL_DIR_LAYOUT
    assert not (root / "output" / "failure").exists()
    # The toolkit passed every synthesized hyperparameter to train.py.
    assert "--embedding-dim 8" in result.stdout + result.stderr
    # SageMaker reads the metrics from the log with these expressions.
    log = (result.stdout + result.stderr).splitlines()
    definitions = json.loads((MODEL_SOURCE_DIR / "metric_definitions.json").read_text())
    unread = [
        definition["Name"]
        for definition in definitions
        if not any(re.search(definition["Regex"], line) for line in log)
    ]
    assert unread == []


def test_a_bad_hyperparameter_is_the_jobs_failure_reason(
    toolkit_train: Path, data: Path, tmp_path: Path
) -> None:
    # cdk synth refuses it (tests/test_hyperparameters.py); a request made another way may not.
    hyperparameters = {**synthesized_hyperparameters(**TINY), "epochs": "two"}
    root = opt_ml(tmp_path / "opt-ml", hyperparameters, data)

    result = run_toolkit(toolkit_train, root)

    assert result.returncode != 0
    failure = (root / "output" / "failure").read_text()
    assert "'epochs': expected int, got 'two'" in failure


def test_a_promotion_refusal_is_the_jobs_failure_reason(
    toolkit_train: Path, data: Path, tmp_path: Path
) -> None:
    # The serving channel as the custom resource adds it: the serving job's model.tar.gz,
    # here a tiny artifact claiming a validation accuracy no new model can reach.
    serving_dir = write_model_dir(tmp_path / "serving-model")
    baseline = json.loads((serving_dir / BASELINE_FILE).read_text())
    (serving_dir / BASELINE_FILE).write_text(json.dumps({**baseline, "accuracy": 2.0}))
    channels = tmp_path / "channels"
    shutil.copytree(data, channels)
    serving = build_tarball(serving_dir, channels / "serving" / "model.tar.gz")
    root = opt_ml(tmp_path / "opt-ml", synthesized_hyperparameters(**TINY), channels)

    result = run_toolkit(toolkit_train, root)

    assert result.returncode != 0
    # The toolkit leaves train.py's failure file as it is: SageMaker's FailureReason.
    failure = (root / "output" / "failure").read_text()
    assert failure.startswith(
        "PromotionRefused: refused by the promotion gate: worse validation accuracy by more "
        "than 0.010: the new model has validation accuracy "
    )
    assert f"where sha256={file_sha256(serving)[:12]} serving has validation accuracy 2.0000" in (
        failure
    )
    assert "deploy with -c sentiment:forcePromotion=true" in failure
    promotion = json.loads((root / "output" / "data" / PROMOTION_FILE).read_text())
    assert promotion["promoted"] is False
