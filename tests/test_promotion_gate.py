"""The promotion gate in the training job (model/promotion_gate.py), run through train.main.

Training itself is stubbed out: the "new model" is a tiny artifact (model_artifacts), copied
where train.py writes its model directory, and the serving model is a model.tar.gz of the same
artifact in the job's "serving" channel, its recorded validation accuracy moved to make one or
the other worse. The behaviour suite is asked through each artifact's own code/ handlers.
tests/test_training_entry_point.py runs the gate after a real training run.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from model_artifacts import write_model_dir

from contract.drift import BASELINE_FILE
from contract.files import TRAINING_REPORT_FILE
from contract.layout import MODEL_SOURCE_DIR
from contract.packaging import build_tarball, file_sha256
from contract.promotion import PROMOTION_FILE
from sentiment.model_loader import import_isolated


@pytest.fixture(scope="module")
def train():
    return import_isolated(MODEL_SOURCE_DIR, "train")


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_model_dir(tmp_path_factory.mktemp("tiny") / "model")


def with_accuracy(model_dir: Path, destination: Path, change: float) -> tuple[Path, float]:
    """A copy of the model directory, its recorded validation accuracy moved by ``change``."""
    shutil.copytree(model_dir, destination)
    baseline = json.loads((destination / BASELINE_FILE).read_text())
    baseline["accuracy"] += change
    (destination / BASELINE_FILE).write_text(json.dumps(baseline))
    return destination, baseline["accuracy"]


def serving_channel(model_dir: Path, channel: Path) -> Path:
    """The channel as SageMaker fills it: the serving job's model.tar.gz."""
    build_tarball(model_dir, channel / "model.tar.gz")
    return channel


class Job:
    """train.main with the training stubbed: its model directory is a copy of ``new_model``."""

    def __init__(self, train: Any, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.train, self.root, self.monkeypatch = train, root, monkeypatch
        for name in ("SM_TRAINING_ENV", "SM_CHANNEL_SERVING"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("SM_MODEL_DIR", str(root / "model"))
        monkeypatch.setenv("SM_OUTPUT_DATA_DIR", str(self.output_dir))
        monkeypatch.setenv("SM_CHANNEL_TRAIN", str(root / "data" / "train"))
        monkeypatch.setenv("SM_CHANNEL_VALIDATION", str(root / "data" / "validation"))

    @property
    def output_dir(self) -> Path:
        return self.root / "output" / "data"

    @property
    def failure_file(self) -> Path:
        return self.root / "output" / "failure"

    def promotion(self) -> dict[str, Any]:
        return json.loads((self.output_dir / PROMOTION_FILE).read_text())

    def run(self, new_model: Path, serving: Path | None, *hyperparameters: str) -> int:
        class Trained:
            def __init__(self, _args: object, _paths: object) -> None:
                pass

            def run(self) -> dict[str, Any]:
                return {"stubbed": True}

        def copy_model(_trainer: object, model_dir: Path) -> None:
            shutil.copytree(new_model, model_dir)

        self.monkeypatch.setattr(self.train, "Trainer", Trained)
        self.monkeypatch.setattr(self.train, "write_model_dir", copy_model)
        if serving is not None:
            self.monkeypatch.setenv("SM_CHANNEL_SERVING", str(serving))
        arguments = ["--failure-file", str(self.failure_file), *hyperparameters]
        try:
            return self.train.main(arguments)
        except SystemExit as exit_:
            return int(exit_.code)


@pytest.fixture
def job(train: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Job:
    return Job(train, tmp_path / "job", monkeypatch)


def test_a_worse_model_fails_the_job_with_both_sets_of_figures(
    job: Job, tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    serving_accuracy = json.loads((tiny_model / BASELINE_FILE).read_text())["accuracy"]
    worse, worse_accuracy = with_accuracy(tiny_model, tmp_path / "worse", -0.2)
    channel = serving_channel(tiny_model, tmp_path / "serving")

    assert job.run(worse, channel) == 1

    reason = job.failure_file.read_text().strip()
    digest = file_sha256(channel / "model.tar.gz")[:12]
    assert reason.startswith(
        "PromotionRefused: refused by the promotion gate: worse validation accuracy by more "
        f"than 0.010: the new model has validation accuracy {worse_accuracy:.4f}, behaviour "
        "suite "
    )
    assert f"where sha256={digest} serving has validation accuracy {serving_accuracy:.4f}" in (
        reason
    )
    assert reason.endswith(
        "to promote it anyway, deploy with -c sentiment:forcePromotion=true "
        "(sentiment train: --force-promotion true)"
    )
    # SageMaker keeps 1024 characters of the reason, the training toolkit's framing included.
    assert len(reason) < 600
    decision = job.promotion()
    assert decision["promoted"] is False
    assert decision["worse"] == ["validation accuracy"]
    assert decision["new"]["validation_accuracy"] == pytest.approx(worse_accuracy)
    assert decision["serving"]["validation_accuracy"] == pytest.approx(serving_accuracy)
    assert decision["serving"]["name"] == f"sha256={digest}"
    # The training report is written before the gate: the refused job still has it.
    assert json.loads((job.output_dir / TRAINING_REPORT_FILE).read_text())["stubbed"] is True
    assert "promotion new_validation_accuracy=" in capsys.readouterr().out


def test_forcing_promotes_the_worse_model_and_records_the_override(
    job: Job, tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    worse, _ = with_accuracy(tiny_model, tmp_path / "worse", -0.2)
    channel = serving_channel(tiny_model, tmp_path / "serving")

    assert job.run(worse, channel, "--force-promotion", "true") == 0

    assert not job.failure_file.exists()
    decision = job.promotion()
    assert decision["promoted"] is True
    assert decision["forced"] is True
    assert decision["refusal_overridden"] is True
    assert decision["reason"].startswith("worse validation accuracy by more than 0.010")
    output = capsys.readouterr().out
    assert "promoted=1 forced=1" in output
    assert "promotion forced past the gate's refusal: worse validation accuracy" in output


@pytest.mark.parametrize("change", [0.0, 0.05, -0.009])
def test_a_model_as_good_or_better_or_within_the_tolerance_passes(
    job: Job, tiny_model: Path, tmp_path: Path, change: float
) -> None:
    new, _ = with_accuracy(tiny_model, tmp_path / "new", change)
    channel = serving_channel(tiny_model, tmp_path / "serving")

    assert job.run(new, channel) == 0

    decision = job.promotion()
    assert decision["promoted"] is True
    assert decision["worse"] == []
    assert decision["refusal_overridden"] is False
    # Both were asked the suite through their own handlers: the same model, the same score.
    assert decision["new"]["behaviour_pass_rate"] == decision["serving"]["behaviour_pass_rate"]
    assert 0 < decision["new"]["behaviour_pass_rate"] < 1


def test_a_wider_tolerance_lets_a_worse_model_through(
    job: Job, tiny_model: Path, tmp_path: Path
) -> None:
    worse, _ = with_accuracy(tiny_model, tmp_path / "worse", -0.2)
    channel = serving_channel(tiny_model, tmp_path / "serving")

    assert job.run(worse, channel, "--promotion-tolerance", "0.25") == 0
    assert job.promotion()["tolerance"] == 0.25


def test_without_a_serving_channel_there_is_no_gate(job: Job, tiny_model: Path) -> None:
    worse_than_anything = tiny_model  # nothing to compare with

    assert job.run(worse_than_anything, None) == 0

    assert not (job.output_dir / PROMOTION_FILE).exists()
    assert (job.output_dir / TRAINING_REPORT_FILE).is_file()


def test_a_serving_model_that_cannot_be_scored_is_no_yardstick(
    job: Job, tiny_model: Path, tmp_path: Path
) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(tiny_model, broken)
    (broken / "model.pt").unlink()
    channel = serving_channel(broken, tmp_path / "serving")

    assert job.run(tiny_model, channel) == 0

    decision = job.promotion()
    assert decision["promoted"] is True
    assert "model artifact file missing" in decision["serving"]["error"]


def test_an_empty_serving_channel_fails_the_job(job: Job, tiny_model: Path, tmp_path: Path) -> None:
    # The deployment names one object: an empty channel is a fault, not a pass.
    channel = tmp_path / "serving"
    channel.mkdir()

    assert job.run(tiny_model, channel) == 1
    assert "holds 0 files" in job.failure_file.read_text()
