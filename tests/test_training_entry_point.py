"""The SageMaker training entry point end to end, run as the PyTorch training container runs it.

Each run starts in a fresh directory that holds only the extracted source tarball, with
the paths in SM_* variables and tiny hyperparameters. The corpus is the generated one of
tests/imdb_fixture.py, with 200 reviews a folder so an epoch lasts long enough to be
interrupted in the middle of a run.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

import bs4
import nltk.stem.porter
import numpy as np
import pytest
import torch
from imdb_fixture import FixtureReview, generate_reviews, write_directory
from model_artifacts import MODEL_DIR_LAYOUT, TINY_HYPERPARAMETERS, VENDORED, layout

from contract.drift import BASELINE_FILE
from contract.files import TRAINING_REPORT_FILE
from contract.layout import MODEL_SOURCE_DIR
from contract.packaging import (
    build_tarball,
    build_training_source,
    extract_tarball,
    file_sha256,
    source_files,
)
from sentiment import cli
from sentiment.prepare import PrepareOptions, prepare

pytestmark = pytest.mark.slow

CHANNELS = ("train", "validation", "test", "unlabeled")
TIMEOUT = 300


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The generated aclImdb directory, 200 reviews a labeled folder."""
    return write_directory(generate_reviews(per_class=200), tmp_path_factory.mktemp("corpus"))


@pytest.fixture(scope="module")
def data(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    output = tmp_path_factory.mktemp("prepared") / "prepared"
    prepare(corpus, output, PrepareOptions(workers=1))
    return output


@pytest.fixture(scope="module")
def source_tarball(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_training_source(tmp_path_factory.mktemp("source") / "sourcedir.tar.gz")


@dataclass(frozen=True)
class Job:
    """One training job's directories, as /opt/ml lays them out."""

    root: Path

    @property
    def code(self) -> Path:
        return self.root / "code"

    @property
    def model_dir(self) -> Path:
        return self.root / "model"

    @property
    def output_dir(self) -> Path:
        return self.root / "output" / "data"

    @property
    def failure_file(self) -> Path:
        return self.root / "output" / "failure"

    @property
    def checkpoint_dir(self) -> Path:
        return self.root / "checkpoints"


def _new_job(root: Path, source_tarball: Path) -> Job:
    job = Job(root)
    extract_tarball(source_tarball, job.code)
    return job


def _environment(job: Job, data: Path, channels: tuple[str, ...] = CHANNELS) -> dict[str, str]:
    environment = {name: value for name, value in os.environ.items() if not name.startswith("SM_")}
    return environment | {
        "SM_MODEL_DIR": str(job.model_dir),
        "SM_OUTPUT_DATA_DIR": str(job.output_dir),
        **{f"SM_CHANNEL_{name.upper()}": str(data / name) for name in channels},
    }


def _command(job: Job, *hyperparameters: str, checkpoint_dir: Path | None = None) -> list[str]:
    return [
        sys.executable,
        "train.py",
        *TINY_HYPERPARAMETERS,
        *hyperparameters,
        "--checkpoint-dir",
        str(checkpoint_dir or job.checkpoint_dir),
        "--failure-file",
        str(job.failure_file),
    ]


def _train(
    job: Job, data: Path, *hyperparameters: str, checkpoint_dir: Path | None = None
) -> subprocess.CompletedProcess:
    result = subprocess.run(
        _command(job, *hyperparameters, checkpoint_dir=checkpoint_dir),
        cwd=job.code,
        env=_environment(job, data),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=True)


def _assert_same_weights(actual: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]):
    assert actual.keys() == expected.keys()
    different = [name for name in expected if not torch.equal(actual[name], expected[name])]
    assert not different, f"tensors differ: {different}"


@pytest.fixture(scope="module")
def reference(
    tmp_path_factory: pytest.TempPathFactory, source_tarball: Path, data: Path
) -> tuple[Job, str]:
    """An uninterrupted run with the test hyperparameters: the job and its stdout."""
    job = _new_job(tmp_path_factory.mktemp("reference-job"), source_tarball)
    shipped = {path.relative_to(job.code).as_posix() for path in job.code.rglob("*")}
    assert {path for path in shipped if "/" not in path} - {"contract"} == {
        path.relative_to(MODEL_SOURCE_DIR).as_posix() for path in source_files(MODEL_SOURCE_DIR)
    }
    assert "contract/hyperparameters.py" in shipped
    return job, _train(job, data).stdout


def test_the_model_directory_holds_weights_settings_vocabulary_and_code(
    reference: tuple[Job, str],
):
    job, _ = reference
    assert layout(job.model_dir) == MODEL_DIR_LAYOUT
    # What preprocess.py imports travels with it, copied from the training environment: the
    # container installs nothing.
    vendor = job.model_dir / VENDORED
    porter = vendor / "nltk" / "stem" / "porter.py"
    assert porter.read_bytes() == Path(nltk.stem.porter.__file__).read_bytes()
    assert (vendor / "bs4" / "__init__.py").read_bytes() == Path(bs4.__file__).read_bytes()
    assert (vendor / "licenses" / "beautifulsoup4").is_dir()
    assert (vendor / "licenses" / "nltk").is_dir()
    for name in ("inference.py", "network.py", "preprocess.py"):
        assert (job.model_dir / "code" / name).read_bytes() == (
            MODEL_SOURCE_DIR / name
        ).read_bytes()
    weights = _weights(job.model_dir / "model.pt")
    assert weights and all(isinstance(value, torch.Tensor) for value in weights.values())
    config = json.loads((job.model_dir / "model_config.json").read_text())
    assert (config["embedding_dim"], config["hidden_dim"]) == (8, 8)
    assert 0 < config["bigrams"] == len(weights["bigram_keys"])
    vocabulary = json.loads((job.model_dir / "vocabulary.json").read_text())
    assert vocabulary["words"] and vocabulary["settings"]["stopwords"]


def test_the_evaluation_is_written_to_the_output_data_directory(reference: tuple[Job, str]):
    job, _ = reference
    evaluation = json.loads((job.output_dir / TRAINING_REPORT_FILE).read_text())
    assert evaluation["test"]["reviews"] == 400
    assert evaluation["validation"]["reviews"] == 40
    assert [entry["epoch"] for entry in evaluation["history"]] == [1, 2, 3]
    assert 0.9 <= evaluation["test"]["accuracy"] <= 1.0
    assert not job.failure_file.exists()


def test_the_drift_baseline_profiles_the_validation_reviews_as_the_model_answers_them(
    reference: tuple[Job, str],
):
    job, _ = reference
    baseline = json.loads((job.model_dir / "drift_baseline.json").read_text())
    evaluation = json.loads((job.output_dir / TRAINING_REPORT_FILE).read_text())

    assert baseline["source"] == "validation reviews" and baseline["reviews"] == 40
    # The fused score the endpoint serves, judged as the training job's evaluation judged it.
    assert baseline["accuracy"] == pytest.approx(evaluation["validation"]["accuracy"])
    assert baseline["model_version"] == _served_version(job.model_dir)
    assert sum(baseline["length"]["proportions"]) == pytest.approx(1)
    assert 0 <= baseline["oov_rate"] < 0.5 and baseline["top_words"]


def _served_version(model_dir: Path) -> str:
    from sentiment.model_loader import import_isolated

    return import_isolated(model_dir / "code", "inference").model_version(model_dir)


def test_every_metric_definition_matches_the_log_and_every_metric_line_is_read(
    reference: tuple[Job, str],
):
    _, stdout = reference
    definitions = json.loads((MODEL_SOURCE_DIR / "metric_definitions.json").read_text())
    lines = stdout.splitlines()
    found = {}
    for definition in definitions:
        pattern = re.compile(definition["Regex"])
        values = [float(m[1]) for line in lines if (m := pattern.search(line))]
        found[definition["Name"]] = values
    assert {name: len(values) for name, values in found.items()} == {
        "train:loss": 3,
        "validation:loss": 3,
        "validation:accuracy": 3,
        "validation:short_accuracy": 1,
        "test:loss": 1,
        "test:accuracy": 1,
        "ngram:validation:accuracy": 1,
    }
    evaluation = json.loads((reference[0].output_dir / TRAINING_REPORT_FILE).read_text())
    assert found["validation:loss"] == [
        pytest.approx(entry["val_loss"], abs=5e-5) for entry in evaluation["history"]
    ]
    assert found["test:accuracy"] == [pytest.approx(evaluation["test"]["accuracy"], abs=5e-5)]
    assert found["validation:short_accuracy"] == [
        pytest.approx(evaluation["validation_crops"]["accuracy"], abs=5e-5)
    ]
    # Every key=value pair is numeric, so SageMaker never reads a partial value.
    metric_lines = [line for line in lines if line.startswith(("epoch=", "ngram ", "final "))]
    assert len(metric_lines) == 3 + 1 + 1
    for line in metric_lines:
        for pair in line.removeprefix("final ").removeprefix("ngram ").split():
            assert re.fullmatch(r"[a-z_]+=[0-9]+(\.[0-9]+)?", pair), line


_SERVE = """
import json, sys
model_dir, code_dir, site_packages = sys.argv[1:4]
sys.path[:0] = [code_dir, site_packages]
import inference
model = inference.model_fn(model_dir)
reviews = json.load(sys.stdin)
answers = []
for start in range(0, len(reviews), 64):
    body = json.dumps({"reviews": reviews[start:start + 64]}).encode()
    request = inference.input_fn(body, "application/json")
    response, _ = inference.output_fn(inference.predict_fn(request, model), "application/json")
    answers += json.loads(response)["predictions"]
modules = {name: sys.modules[name].__file__ for name in ("inference", "network", "preprocess")}
print(json.dumps({"answers": answers, "modules": modules}))
"""


def test_the_tarred_artifact_serves_with_nothing_but_its_own_code(
    reference: tuple[Job, str], corpus: Path, tmp_path: Path
):
    job, _ = reference
    artifact = build_tarball(job.model_dir, tmp_path / "model.tar.gz")
    served = extract_tarball(artifact, tmp_path / "opt" / "ml" / "model")
    test_files = sorted((corpus / "test").glob("*/*.txt"))
    reviews = [path.read_text(encoding="utf-8") for path in test_files]
    labels = np.array([path.parent.name == "pos" for path in test_files])

    # -S: no site module, so no .pth file puts the checkout's model/ on the path; only
    # code/ and the installed third-party packages, as in the serving container.
    result = subprocess.run(
        [
            sys.executable,
            "-S",
            "-c",
            _SERVE,
            str(served),
            str(served / "code"),
            sysconfig.get_paths()["purelib"],
        ],
        input=json.dumps(reviews),
        cwd=tmp_path,
        env={"PATH": os.environ["PATH"], "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    output = json.loads(result.stdout)
    assert {Path(file).parent for file in output["modules"].values()} == {served / "code"}

    scores = np.array([answer["score"] for answer in output["answers"]])
    assert ((scores >= 0) & (scores <= 1)).all()
    assert [a["sentiment"] == "positive" for a in output["answers"]] == (scores >= 0.5).tolist()
    # The endpoint's path from raw text scores the test reviews as the training job's
    # evaluation did from the prepared word ids.
    accuracy = ((scores >= 0.5) == labels).mean()
    evaluation = json.loads((job.output_dir / TRAINING_REPORT_FILE).read_text())
    assert accuracy == pytest.approx(evaluation["test"]["accuracy"], abs=1e-9)


def test_the_same_seed_gives_the_same_weights(
    reference: tuple[Job, str], source_tarball: Path, data: Path, tmp_path: Path
):
    job = _new_job(tmp_path / "job", source_tarball)
    _train(job, data)
    _assert_same_weights(
        _weights(job.model_dir / "model.pt"), _weights(reference[0].model_dir / "model.pt")
    )


# Interrupted after epoch 1's metric line, the run has (nearly always) not yet saved that
# epoch's checkpoint: it resumes the LSTM from scratch, after word2vec and the n-gram
# branch. After epoch 2's line, epoch 1's checkpoint is on disk: it resumes the LSTM
# with its optimizer and learning-rate schedule mid-way.
@pytest.mark.parametrize("interrupted_after", [1, 2])
def test_a_rerun_after_an_interruption_resumes_and_ends_with_the_same_weights(
    reference: tuple[Job, str],
    source_tarball: Path,
    data: Path,
    tmp_path: Path,
    interrupted_after: int,
):
    job = _new_job(tmp_path / "job", source_tarball)
    process = subprocess.Popen(
        _command(job),
        cwd=job.code,
        env=_environment(job, data),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        for line in process.stdout:
            if line.startswith(f"epoch={interrupted_after} "):
                process.send_signal(signal.SIGTERM)  # what a spot interruption sends
                break
        process.stdout.close()
        returncode = process.wait(timeout=TIMEOUT)
    finally:
        process.kill()
    assert returncode == -signal.SIGTERM, "the run ended before it could be interrupted"
    assert not job.model_dir.exists()
    assert (job.checkpoint_dir / "checkpoint.pt").is_file()

    resumed = _train(
        _new_job(tmp_path / "rerun", source_tarball), data, checkpoint_dir=job.checkpoint_dir
    )
    match = re.search(r"^Resuming from .*: step (\w+), epoch (\d+)$", resumed.stdout, re.MULTILINE)
    assert match, resumed.stdout
    done = int(match[2])
    assert done in (interrupted_after - 1, interrupted_after)
    epochs = [int(m) for m in re.findall(r"^epoch=(\d+) ", resumed.stdout, re.MULTILINE)]
    assert epochs == list(range(done + 1, 4))
    assert not re.search("^ngram ", resumed.stdout, re.MULTILINE)  # done before the interruption
    _assert_same_weights(
        _weights(tmp_path / "rerun" / "model" / "model.pt"),
        _weights(reference[0].model_dir / "model.pt"),
    )


@pytest.mark.parametrize(
    ("missing", "sagemaker"),
    [("validation", True), ("train", False)],
    ids=["channel-variable-absent", "channel-directory-absent"],
)
def test_a_missing_channel_writes_the_failure_file_and_exits_non_zero(
    source_tarball: Path, data: Path, tmp_path: Path, missing: str, sagemaker: bool
):
    job = _new_job(tmp_path / "job", source_tarball)
    environment = _environment(job, data)
    if sagemaker:
        # Inside SageMaker a channel that was not configured has no variable at all.
        environment["SM_TRAINING_ENV"] = "{}"
        del environment[f"SM_CHANNEL_{missing.upper()}"]
    else:
        environment[f"SM_CHANNEL_{missing.upper()}"] = str(tmp_path / "nowhere" / missing)
    result = subprocess.run(
        _command(job),
        cwd=job.code,
        env=environment,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert result.returncode != 0
    reason = job.failure_file.read_text()
    assert reason.endswith("\n") and reason.count("\n") == 1
    assert missing in reason
    assert reason.strip() in result.stderr
    assert not job.model_dir.exists()


def test_sentiment_train_leaves_model_tar_gz_and_evaluation(
    reference: tuple[Job, str], data: Path, tmp_path: Path, capfd: pytest.CaptureFixture
):
    model_dir, checkpoints = tmp_path / "model", tmp_path / "checkpoints"
    argv = ["train", "--data", str(data), "--model-dir", str(model_dir)]
    argv += ["--checkpoint-dir", str(checkpoints), *TINY_HYPERPARAMETERS, "--seed", "14"]
    assert cli.main(argv) == 0

    output = capfd.readouterr().out
    assert re.search(r"^epoch=3 train_loss=", output, re.MULTILINE)  # progress streamed
    assert f"Model artifact: {model_dir / 'model.tar.gz'}" in output
    assert sorted(path.name for path in model_dir.iterdir()) == [
        "model.tar.gz",
        "training_report.json",
    ]
    extracted = extract_tarball(model_dir / "model.tar.gz", tmp_path / "extracted")
    assert layout(extracted) == MODEL_DIR_LAYOUT
    assert not any(checkpoints.iterdir())  # a finished run's checkpoints are removed
    # Another seed, other weights: the seed is what makes runs equal.
    weights = _weights(extracted / "model.pt")
    expected = _weights(reference[0].model_dir / "model.pt")
    assert not torch.equal(weights["lstm_head.weight"], expected["lstm_head.weight"])


def test_sentiment_train_refuses_a_model_worse_than_the_serving_one(
    reference: tuple[Job, str], data: Path, tmp_path: Path, capfd: pytest.CaptureFixture
):
    # The serving model: the reference run's, claiming a validation accuracy 0.5 higher.
    serving_dir = tmp_path / "serving"
    shutil.copytree(reference[0].model_dir, serving_dir)
    baseline = json.loads((serving_dir / BASELINE_FILE).read_text())
    new_accuracy, baseline["accuracy"] = baseline["accuracy"], baseline["accuracy"] + 0.5
    (serving_dir / BASELINE_FILE).write_text(json.dumps(baseline))
    serving = build_tarball(serving_dir, tmp_path / "serving.tar.gz")
    model_dir = tmp_path / "model"
    argv = ["train", "--data", str(data), "--model-dir", str(model_dir), "--no-cdk-json"]
    argv += ["--checkpoint-dir", str(tmp_path / "checkpoints"), "--serving-model", str(serving)]

    assert cli.main([*argv, *TINY_HYPERPARAMETERS]) == 2

    error = capfd.readouterr().err
    # The same seed trains the same model: the suite scores both alike, the accuracy differs.
    assert re.search(
        r"training failed: PromotionRefused: refused by the promotion gate: worse validation "
        rf"accuracy by more than 0\.010: the new model has validation accuracy {new_accuracy:.4f}, "
        rf"behaviour suite (0\.\d{{4}}), where sha256={file_sha256(serving)[:12]} serving has "
        rf"validation accuracy {baseline['accuracy']:.4f}, behaviour suite \1; to promote it "
        r"anyway, deploy with -c sentiment:forcePromotion=true",
        error,
    ), error
    assert not (model_dir / "model.tar.gz").exists()


def test_the_ngram_branch_is_fitted_on_the_flips_it_serves_with(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """The word of a negation scope that flips depends on the naive-Bayes ratios, so they
    must be in the network before the weights' design is read: fitted on other flips than
    it serves with, the branch would be wrong without any error."""
    sys.path.insert(0, str(MODEL_SOURCE_DIR))
    import dataset
    import ngram_fit
    import train as train_module
    import trainer as trainer_module
    from preprocess import OOV_ID

    # Scopes whose first word ("plot", in reviews of both kinds) is weaker than their
    # second ("terrible", in negative ones only).
    extra = [
        FixtureReview("train/pos", 1000 + index, 8, "A fine film. It is not plot terrible.")
        for index in range(10)
    ]
    corpus = write_directory(generate_reviews() + extra, tmp_path / "corpus")
    data = tmp_path / "prepared"
    prepare(corpus, data, PrepareOptions(workers=1))
    paths = trainer_module.Paths(
        model_dir=tmp_path / "model",
        train=data / "train",
        validation=data / "validation",
        test=None,
        unlabeled=None,
        output_dir=tmp_path / "output",
        checkpoint_dir=tmp_path / "checkpoints",
    )
    args = train_module.parse_args(["--negation-flip-window", "2"])
    fitting = trainer_module.Trainer(args, paths)
    seen = []

    def recorded_presence(*arguments):
        seen.append(ngram_fit.presence(*arguments))
        return seen[-1]

    monkeypatch.setattr(trainer_module, "presence", recorded_presence)
    fitting.train_ngram_branch()
    network, fitted = fitting.network, dataset.concatenate([fitting.train, fitting.train_crops])
    served = ngram_fit.presence(network, fitted, args.batch_size)
    for at_fit, now in zip(seen[-1], served, strict=True):
        assert torch.equal(at_fit, now)
    # A second word flips after a first that could have: the check above can fail.
    ids = torch.from_numpy(dataset.padded_batch(fitted, np.arange(len(fitted)))[0])
    flipped = network.flipped_words(ids)
    could_flip = network.plain_ids[ids] > OOV_ID
    assert (flipped[:, 1:] > 0)[could_flip[:, :-1]].any()
