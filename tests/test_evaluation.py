"""`sentiment evaluate`: metrics, the raw reviews it reads, the baseline, the report and figure."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from dataset import read_split
from imdb_fixture import generate_reviews, write_directory
from model_artifacts import TINY_HYPERPARAMETERS
from preprocess import Tokenizer, Vocabulary
from sklearn import metrics

from contract import behaviour
from contract.files import EVALUATION_REPORT_FILE, TRAINING_REPORT_FILE
from contract.packaging import build_tarball, extract_tarball
from sentiment import (
    cli,
    evaluation,
    imdb_source,
    inference_toolkit,
    labeled_reviews,
    training_run,
)
from sentiment.baseline import BASELINE_C
from sentiment.model_loader import served_artifact
from sentiment.short_reviews import short_review_scores, short_reviews

pytestmark = pytest.mark.slow

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_metrics_of_known_decisions():
    labels = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 1])
    scores = np.array([0.9, 0.8, 0.4, 0.6, 0.3, 0.7, 0.1, 0.2, 0.45, 0.55])
    result = evaluation.classification_metrics(labels, scores, scores >= 0.5)
    assert result["confusion_matrix"] == {
        "true_negative": 4,
        "false_positive": 1,
        "false_negative": 1,
        "true_positive": 4,
    }
    assert result["accuracy"] == pytest.approx(0.8)
    assert result["precision"] == pytest.approx(4 / 5)
    assert result["recall"] == pytest.approx(4 / 5)
    assert result["f1"] == pytest.approx(0.8)
    # 21 of the 25 (positive, negative) pairs are ranked the right way round.
    assert result["roc_auc"] == pytest.approx(21 / 25)
    assert json.loads(json.dumps(result)) == result  # plain JSON types


def test_metrics_follow_the_answers_decisions_not_a_threshold_of_their_own():
    labels = np.array([1, 0, 1, 0])
    scores = np.array([0.9, 0.1, 0.8, 0.2])
    result = evaluation.classification_metrics(labels, scores, np.array([1, 1, 0, 0]))
    assert result["accuracy"] == 0.5
    assert result["roc_auc"] == 1.0


@pytest.fixture(scope="module")
def artifact(tmp_path_factory: pytest.TempPathFactory, prepared_imdb: Path) -> Path:
    """A model trained by `sentiment train` on the tiny corpus, its training report beside it."""
    root = tmp_path_factory.mktemp("trained")
    return training_run.train(
        prepared_imdb, root / "model", list(TINY_HYPERPARAMETERS), root / "checkpoints"
    )


def _evaluate(*argv: str, threads: tuple[str, ...] = ("--threads", "1")) -> tuple[int, str, str]:
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        status = cli.main(["evaluate", *argv, *threads])
    return status, stdout.getvalue(), stderr.getvalue()


@pytest.fixture(scope="module")
def evaluated(
    tmp_path_factory: pytest.TempPathFactory, artifact: Path, prepared_imdb: Path, imdb_dir: Path
) -> tuple[dict, Path, str]:
    """`sentiment evaluate --baseline`: its report, output directory and printed summary,
    with the default of a request per core in flight (two cores here, whatever the machine)."""
    output = tmp_path_factory.mktemp("evaluation") / "out"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(evaluation, "usable_cores", lambda: 2)
        status, printed, errors = _evaluate(
            *("--data", str(prepared_imdb), "--model", str(artifact), "--source", str(imdb_dir)),
            *("--output", str(output), "--baseline"),
            threads=(),
        )
    assert status == 0, errors
    return json.loads((output / "evaluation.json").read_text()), output, printed


def test_the_report_is_what_the_handlers_answer_for_each_test_review(
    evaluated: tuple[dict, Path, str], artifact: Path, imdb_dir: Path
):
    report, _, _ = evaluated
    test_files = sorted((imdb_dir / "test").glob("*/*.txt"))
    labels = np.array([path.parent.name == "pos" for path in test_files], dtype=int)
    with evaluation.torch_threads(1), served_artifact(artifact) as served:
        answers = [
            json.loads(inference_toolkit.invoke(served, path.read_bytes(), "text/plain", None).body)
            for path in test_files
        ]
    scores = np.array([answer["score"] for answer in answers])
    decisions = np.array([answer["sentiment"] == "positive" for answer in answers])

    model = report["model"]
    assert report["test_reviews"] == len(test_files) == 80
    assert model["accuracy"] == pytest.approx(metrics.accuracy_score(labels, decisions))
    assert model["precision"] == pytest.approx(metrics.precision_score(labels, decisions))
    assert model["recall"] == pytest.approx(metrics.recall_score(labels, decisions))
    assert model["f1"] == pytest.approx(metrics.f1_score(labels, decisions))
    assert model["roc_auc"] == pytest.approx(metrics.roc_auc_score(labels, scores))
    matrix = metrics.confusion_matrix(labels, decisions).ravel().tolist()
    assert list(model["confusion_matrix"].values()) == matrix
    assert model["reviews_per_second"] > 0 and model["request_batch"] == 64


def test_the_endpoint_path_agrees_with_the_training_jobs_own_test_score(
    evaluated: tuple[dict, Path, str], artifact: Path
):
    report, _, _ = evaluated
    training_report = json.loads((artifact.parent / TRAINING_REPORT_FILE).read_text())
    assert report["model"]["training_job_test_accuracy"] == training_report["test"]["accuracy"]
    assert report["model"]["accuracy"] == pytest.approx(training_report["test"]["accuracy"])
    assert report["training_history"] == training_report["history"]


def test_the_baseline_is_fitted_on_the_training_split_and_reported_beside_the_model(
    evaluated: tuple[dict, Path, str], prepared_imdb: Path
):
    report, _, _ = evaluated
    baseline = report["baseline"]
    manifest = json.loads((prepared_imdb / "manifest.json").read_text())
    assert baseline["training_reviews"] == manifest["splits"]["train"]["reviews"] == 72
    assert baseline["c"] in BASELINE_C
    matrix = baseline["confusion_matrix"]
    correct = matrix["true_positive"] + matrix["true_negative"]
    assert baseline["accuracy"] == pytest.approx(correct / report["test_reviews"])
    assert baseline["accuracy"] >= 0.9  # praise and scorn words separate the tiny corpus
    assert 0 <= baseline["validation_accuracy"] <= 1 and baseline["validation_note"]


def test_the_raw_training_reviews_are_split_exactly_as_prepare_split_them(
    prepared_imdb: Path, imdb_dir: Path
):
    training, validation = labeled_reviews.training_and_validation(
        labeled_reviews.read_reviews(imdb_dir, "train"), prepared_imdb
    )
    vocabulary = Vocabulary.load(prepared_imdb / "train" / "vocabulary.json")
    tokenizer = Tokenizer(vocabulary.settings)
    for reviews, name in ((training, "train"), (validation, "validation")):
        prepared = read_split(prepared_imdb / name)
        encoded = [vocabulary.ids(tokenizer(text)) for text in reviews.texts]
        assert encoded == [prepared.review(i).tolist() for i in range(len(prepared))]
        assert reviews.labels.tolist() == prepared.labels.tolist()


def test_the_short_text_figures_are_reported_for_both_models(
    evaluated: tuple[dict, Path, str], prepared_imdb: Path, imdb_dir: Path
):
    report, _, printed = evaluated
    _, validation = labeled_reviews.training_and_validation(
        labeled_reviews.read_reviews(imdb_dir, "train"), prepared_imdb
    )
    clear = int(((validation.ratings <= 2) | (validation.ratings >= 9)).sum())
    assert report["short_reviews"]["source_reviews"] == clear
    test = labeled_reviews.read_reviews(imdb_dir, "test")
    for model in (report["model"], report["baseline"]):
        assert 0 <= model["ece"] <= 1
        for figures in (
            model,
            model["short_reviews"],
            model["short_reviews_every_rating"],
            model["short_reviews_test"],
            model["short_reviews_test_clear_rating"],
        ):
            floor = figures["ece_if_calibrated"]
            assert 0 < floor["median"] <= floor["p90"] < 1
        assert sum(model["reliability"]["answers"]) == report["test_reviews"]
        assert model["short_reviews"]["texts"] == report["short_reviews"]["texts"]
        # Calibration is also read on the texts of every validation review, not only the
        # clearly rated ones.
        assert model["short_reviews_every_rating"]["texts"] > model["short_reviews"]["texts"]
        # And, for the report, on the same texts cut from the test reviews, every one and
        # the clearly rated ones.
        test_texts = short_reviews(test, every_rating=True)
        assert model["short_reviews_test"]["texts"] == len(test_texts.texts)
        assert model["short_reviews_test_clear_rating"]["texts"] == len(short_reviews(test).texts)
        assert 0 < model["short_reviews_test_clear_rating"]["texts"] < len(test_texts.texts)
        assert set(model["behaviour"]["capabilities"]) == set(behaviour.CAPABILITIES)
        assert model["behaviour"]["cases"] == len(behaviour.cases())
    lines = printed.splitlines()
    assert any(line.startswith("ECE (15 bins)") for line in lines)
    assert any(line.startswith("ECE if calibrated (p90)") for line in lines)
    every = report["model"]["short_reviews_every_rating"]["texts"]
    assert f"same, every validation review: {every:,} texts" in lines
    on_test = report["model"]["short_reviews_test"]["texts"]
    assert f"same, every test review: {on_test:,} texts" in lines
    negation = next(line for line in lines if line.strip().startswith("negated_positive"))
    assert negation.split()[1:] == [
        f"{report[name]['behaviour']['capabilities']['negated_positive']['pass_rate']:.4f}"
        for name in ("model", "baseline")
    ]


def test_the_clearly_rated_texts_are_judged_by_their_own_answers(
    evaluated: tuple[dict, Path, str], artifact: Path, prepared_imdb: Path, imdb_dir: Path
):
    """The check's figures and the clearly rated test texts' are cut from the answers for
    every review's texts: the same as asking for those texts alone."""
    report, _, _ = evaluated
    _, validation = labeled_reviews.training_and_validation(
        labeled_reviews.read_reviews(imdb_dir, "train"), prepared_imdb
    )
    test = labeled_reviews.read_reviews(imdb_dir, "test")
    with evaluation.torch_threads(1), served_artifact(artifact) as served:
        for key, reviews in (
            ("short_reviews", validation),
            ("short_reviews_test_clear_rating", test),
        ):
            texts = short_reviews(reviews)
            answers = inference_toolkit.batch_answers(served, texts.texts)
            alone = short_review_scores(texts, *evaluation.scores_and_decisions(answers))
            figures = report["model"][key]
            assert figures["texts"] == alone["texts"] > 0
            assert figures["accuracy"] == pytest.approx(alone["accuracy"])
            assert figures["ece"] == pytest.approx(alone["ece"], abs=1e-6)


def test_the_figure_is_one_png(evaluated: tuple[dict, Path, str]):
    report, output, _ = evaluated
    assert report["figure"] == "evaluation.png"
    assert sorted(path.name for path in output.iterdir()) == ["evaluation.json", "evaluation.png"]
    assert (output / "evaluation.png").read_bytes().startswith(PNG_SIGNATURE)


def test_the_summary_table_shows_both_models(evaluated: tuple[dict, Path, str]):
    report, output, printed = evaluated
    lines = printed.splitlines()
    assert lines[0].split()[-2:] == ["model", "baseline"]
    accuracy = next(line for line in lines if line.startswith("accuracy"))
    assert accuracy.split()[1:] == [
        f"{report['model']['accuracy']:.4f}",
        f"{report['baseline']['accuracy']:.4f}",
    ]
    assert any(line.startswith("ROC AUC") for line in lines)
    assert any(line.startswith("reviews/s") for line in lines)
    assert "  2 request(s) in flight, 1 torch thread(s) each" in lines
    assert (report["model"]["requests_in_flight"], report["model"]["torch_threads"]) == (2, 1)
    assert str(output / "evaluation.json") in printed


def test_without_baseline_or_training_report_the_model_is_still_evaluated(
    artifact: Path, prepared_imdb: Path, imdb_dir: Path, tmp_path: Path, monkeypatch
):
    alone = tmp_path / "elsewhere" / "model.tar.gz"
    alone.parent.mkdir()
    shutil.copyfile(artifact, alone)
    # No --source: the reviews come from where `sentiment prepare` read them (its manifest),
    # not from the default source, which here leads nowhere.
    monkeypatch.setenv(imdb_source.SOURCE_ENV, str(tmp_path / "nowhere"))
    assert json.loads((prepared_imdb / "manifest.json").read_text())["source"] == str(
        imdb_dir.resolve()
    )
    status, printed, errors = _evaluate(
        *("--data", str(prepared_imdb), "--model", str(alone), "--output", str(tmp_path / "out"))
    )
    assert status == 0, errors
    report = json.loads((tmp_path / "out" / "evaluation.json").read_text())
    assert "baseline" not in report
    assert report["training_history"] == []
    assert report["model"]["training_job_test_accuracy"] is None
    assert (tmp_path / "out" / "evaluation.png").read_bytes().startswith(PNG_SIGNATURE)
    assert printed.splitlines()[0].split()[-1] == "model"


def test_a_source_other_than_the_prepared_one_is_refused(
    artifact: Path, prepared_imdb: Path, tmp_path: Path
):
    other = write_directory(generate_reviews(per_class=30), tmp_path)
    status, _, errors = _evaluate(
        *("--data", str(prepared_imdb), "--model", str(artifact), "--source", str(other)),
        *("--output", str(tmp_path / "out")),
    )
    assert status == 2
    assert "--source" in errors and "has 60 test reviews" in errors and "from 80" in errors
    assert not (tmp_path / "out").exists()


def test_a_source_of_the_same_size_but_other_reviews_is_refused(
    artifact: Path, prepared_imdb: Path, tmp_path: Path
):
    other = write_directory(generate_reviews(seed=7), tmp_path)
    status, _, errors = _evaluate(
        *("--data", str(prepared_imdb), "--model", str(artifact), "--source", str(other)),
        *("--output", str(tmp_path / "out")),
    )
    assert status == 2
    assert "test review 0 of the IMDB source is not the one" in errors


def test_the_training_report_beside_the_model_is_not_overwritten(
    artifact: Path, prepared_imdb: Path, imdb_dir: Path
):
    before = (artifact.parent / TRAINING_REPORT_FILE).read_bytes()
    status, _, errors = _evaluate(
        *("--data", str(prepared_imdb), "--model", str(artifact), "--source", str(imdb_dir)),
        *("--output", str(artifact.parent)),
    )
    # The two reports have names of their own (contract/files.py): both stay.
    assert status == 0, errors
    assert (artifact.parent / TRAINING_REPORT_FILE).read_bytes() == before
    assert (artifact.parent / EVALUATION_REPORT_FILE).is_file()


def test_a_missing_or_damaged_artifact_is_a_one_line_error(
    artifact: Path, prepared_imdb: Path, imdb_dir: Path, tmp_path: Path
):
    common = ("--data", str(prepared_imdb), "--source", str(imdb_dir))
    status, _, errors = _evaluate(*common, "--model", str(tmp_path / "none.tar.gz"))
    assert status == 2 and "model artifact not found" in errors

    model_dir = extract_tarball(artifact, tmp_path / "model")
    weights = model_dir / "model.pt"
    weights.write_bytes(weights.read_bytes()[:500])
    damaged = build_tarball(model_dir, tmp_path / "damaged" / "model.tar.gz")
    status, _, errors = _evaluate(*common, "--model", str(damaged))
    assert status == 2
    assert errors.startswith("sentiment evaluate: error: model artifact file corrupt")
    assert "model.pt" in errors
