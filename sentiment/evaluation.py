"""`sentiment evaluate`: score model.tar.gz on the official test reviews, as the endpoint would.

The prepared test split holds word ids; the endpoint receives text. So the raw test
reviews are read from the IMDB source and sent, 64 to a request (the endpoint's largest
batch), through the artifact's own inference handlers: input_fn → predict_fn →
output_fn, preprocessing included. What is measured is what the endpoint answers, and
how fast its handlers answer it. The same path answers the short texts visitors type:
the behaviour suite (behaviour.py) and the short-review check (short_reviews.py), with
calibration (calibration.py) on the test reviews and on that check.

With `--baseline`, a TF-IDF (unigrams and bigrams) logistic regression is fitted on the
very training reviews the network learned from — the prepared dataset's manifest names
the validation fraction and seed, and the split is drawn again the same way — with its
regularization chosen on the validation reviews, as the network's early stopping is.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from http import HTTPStatus
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure
from preprocess import strip_html
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    precision_score,
    recall_score,
    roc_auc_score,
    roc_curve,
)
from tqdm import tqdm

from contract.files import EVALUATION_REPORT_FILE, TRAINING_REPORT_FILE
from contract.packaging import file_sha256
from sentiment import behaviour, inference_toolkit
from sentiment.calibration import BINS, Reliability, calibration_figures, plot_reliability
from sentiment.labeled_reviews import (
    LabeledReviews,
    check_matches_prepared,
    read_reviews,
    training_and_validation,
)
from sentiment.model_loader import JSON, ServedModel, served_artifact
from sentiment.short_reviews import (
    ShortReviews,
    short_review_description,
    short_review_scores,
    short_reviews,
)

FIGURE_FILE = "evaluation.png"
REQUEST_BATCH = 64  # the endpoint's largest batch (inference.MAX_BATCH)
THRESHOLD = 0.5  # the endpoint says "positive" from this score up
BASELINE_C = (1.0, 4.0, 16.0, 64.0)
VALIDATION_NOTE = (
    "validation reviews share movies with the training reviews: validation figures read "
    "0.5-2 points above test"
)


@contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """Run with `count` torch threads (0: torch's default, every core), restored after."""
    previous = torch.get_num_threads()
    if count:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


class EvaluationError(ValueError):
    """The model refused a review it was sent (the command reports it as a bad input)."""


@dataclass(frozen=True)
class EndpointAnswers:
    scores: np.ndarray  # P(positive)
    positive: np.ndarray  # the answer's "sentiment" == "positive"
    seconds: float


def endpoint_predictions(served: ServedModel, texts: Sequence[str]) -> list[dict]:
    """The handlers' answer for every text, sent as JSON batches of REQUEST_BATCH."""
    predictions = []
    requests = range(0, len(texts), REQUEST_BATCH)
    # In a terminal only, as `sentiment prepare` shows its progress.
    for start in tqdm(requests, desc="Scoring", unit="request", disable=None, leave=False):
        body = json.dumps({"reviews": list(texts[start : start + REQUEST_BATCH])}).encode()
        answer = inference_toolkit.invoke(served, body, JSON, JSON)
        if answer.status != HTTPStatus.OK:
            reason = answer.body.decode("utf-8", "replace").split("\n", 1)[0]
            raise EvaluationError(f"the model answered {answer.status}: {reason}")
        predictions.extend(json.loads(answer.body)["predictions"])
    return predictions


def scores_and_decisions(predictions: Sequence[dict]) -> tuple[np.ndarray, np.ndarray]:
    """The answers' scores, P(positive), and whether each said "positive"."""
    scores = np.asarray([prediction["score"] for prediction in predictions], dtype=float)
    positive = np.asarray([prediction["sentiment"] == "positive" for prediction in predictions])
    return scores, positive.astype(bool)


def endpoint_answers(served: ServedModel, texts: Sequence[str]) -> EndpointAnswers:
    """Every review's score and decision from the handlers, and the time they took."""
    started = time.perf_counter()
    predictions = endpoint_predictions(served, texts)
    seconds = time.perf_counter() - started
    return EndpointAnswers(*scores_and_decisions(predictions), seconds)


def classification_metrics(labels: np.ndarray, scores: np.ndarray, positive: np.ndarray) -> dict:
    """Accuracy, precision, recall, F1 of the decisions; ROC AUC of the scores."""
    negatives, false_positives, false_negatives, positives = confusion_matrix(
        labels, positive, labels=[0, 1]
    ).ravel()
    return {
        "accuracy": float(accuracy_score(labels, positive)),
        "precision": float(precision_score(labels, positive, zero_division=0)),
        "recall": float(recall_score(labels, positive, zero_division=0)),
        "f1": float(f1_score(labels, positive, zero_division=0)),
        "roc_auc": float(roc_auc_score(labels, scores)),
        "confusion_matrix": {
            "true_negative": int(negatives),
            "false_positive": int(false_positives),
            "false_negative": int(false_negatives),
            "true_positive": int(positives),
        },
    }


def _plain_lowercase(text: str) -> str:
    return strip_html(text).lower()


@dataclass(frozen=True)
class Baseline:
    vectorizer: TfidfVectorizer
    classifier: LogisticRegression
    validation_accuracy: float
    fit_seconds: float

    def scores(self, texts: Sequence[str]) -> np.ndarray:
        return self.classifier.predict_proba(self.vectorizer.transform(texts))[:, 1]

    def answers(self, texts: Sequence[str]) -> list[dict]:
        """Answers shaped like the handlers' (never low_confidence: it has no such notion)."""
        return [
            {"sentiment": "positive" if score >= THRESHOLD else "negative", "score": float(score)}
            for score in self.scores(texts)
        ]


def fit_baseline(training: LabeledReviews, validation: LabeledReviews) -> Baseline:
    """TF-IDF unigrams and bigrams, logistic regression; C chosen on the validation reviews."""
    started = time.perf_counter()
    vectorizer = TfidfVectorizer(
        preprocessor=_plain_lowercase,
        ngram_range=(1, 2),
        min_df=2,
        sublinear_tf=True,
        dtype=np.float32,
    )
    features = vectorizer.fit_transform(training.texts)
    validation_features = vectorizer.transform(validation.texts)
    candidates = []
    for c in BASELINE_C:
        classifier = LogisticRegression(C=c, solver="liblinear").fit(features, training.labels)
        accuracy = accuracy_score(validation.labels, classifier.predict(validation_features))
        candidates.append((accuracy, -c, classifier))  # ties: the stronger regularization
    accuracy, _, classifier = max(candidates, key=lambda candidate: candidate[:2])
    return Baseline(vectorizer, classifier, float(accuracy), time.perf_counter() - started)


def short_text_figures(answer: Callable[[list[str]], list[dict]], short: ShortReviews) -> dict:
    """One model's behaviour suite and short-review check, from its answers."""
    scores, positive = scores_and_decisions(answer(short.texts))
    return {
        "behaviour": behaviour.run_suite(answer),
        "short_reviews": short_review_scores(short, scores, positive),
    }


def training_history(artifact: Path) -> tuple[list[dict], float | None]:
    """The per-epoch history and test accuracy of the training report beside the artifact."""
    report = artifact.parent / TRAINING_REPORT_FILE
    if not report.is_file():
        return [], None
    data = json.loads(report.read_text(encoding="utf-8"))
    return data.get("history", []), data.get("test", {}).get("accuracy")


def write_figure(
    path: Path,
    labels: np.ndarray,
    scores: dict[str, np.ndarray],
    confusion: dict[str, int],
    history: list[dict],
    calibration: dict[str, Reliability],
) -> Path:
    """One PNG: ROC curves, the model's confusion matrix, training and reliability curves."""
    figure = Figure(figsize=(12, 9.6), layout="constrained")
    (roc_axes, matrix_axes), (curve_axes, reliability_axes) = figure.subplots(2, 2)

    for name, model_scores in scores.items():
        false_rate, true_rate, _ = roc_curve(labels, model_scores)
        area = roc_auc_score(labels, model_scores)
        roc_axes.plot(false_rate, true_rate, label=f"{name} (AUC {area:.3f})")
    roc_axes.plot([0, 1], [0, 1], linestyle=":", color="grey")
    roc_axes.set(
        title="ROC curve, test reviews", xlabel="false positive rate", ylabel="true positive rate"
    )
    roc_axes.legend(loc="lower right")

    cells = np.array(
        [
            [confusion["true_negative"], confusion["false_positive"]],
            [confusion["false_negative"], confusion["true_positive"]],
        ]
    )
    matrix_axes.imshow(cells, cmap="Blues")
    for (row, column), count in np.ndenumerate(cells):
        share = count / max(1, cells[row].sum())
        colour = "white" if count > cells.max() / 2 else "black"
        matrix_axes.text(
            column, row, f"{count:,}\n{share:.1%}", ha="center", va="center", color=colour
        )
    matrix_axes.set(
        title="Confusion matrix, model",
        xlabel="predicted",
        ylabel="actual",
        xticks=[0, 1],
        yticks=[0, 1],
        xticklabels=["negative", "positive"],
        yticklabels=["negative", "positive"],
    )

    if history:
        epochs = [entry["epoch"] for entry in history]
        curve_axes.plot(
            epochs, [e["train_loss"] for e in history], marker="o", label="training loss"
        )
        curve_axes.plot(
            epochs, [e["val_loss"] for e in history], marker="o", label="validation loss"
        )
        accuracy_axes = curve_axes.twinx()
        accuracy_axes.plot(
            epochs,
            [e["val_accuracy"] for e in history],
            marker="s",
            color="tab:green",
            label="validation accuracy",
        )
        accuracy_axes.set_ylabel("validation accuracy (optimistic: shares movies)")
        handles = curve_axes.get_legend_handles_labels()
        extra = accuracy_axes.get_legend_handles_labels()
        curve_axes.legend(handles[0] + extra[0], handles[1] + extra[1], loc="center right")
        curve_axes.set_xticks(epochs)
    else:
        curve_axes.text(
            0.5,
            0.5,
            f"no training history\n(no {TRAINING_REPORT_FILE} beside the model)",
            ha="center",
            va="center",
            transform=curve_axes.transAxes,
        )
    curve_axes.set(title="Training (LSTM branch)", xlabel="epoch", ylabel="loss")
    plot_reliability(reliability_axes, calibration, "Reliability, model")

    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    return path


_ROWS = (
    ("accuracy", "accuracy"),
    ("precision", "precision"),
    ("recall", "recall"),
    ("F1", "f1"),
    ("ROC AUC", "roc_auc"),
)


def _row(title: str, values: Iterable[float | None]) -> str:
    cells = (f"{value:>12.4f}" if value is not None else f"{'-':>12}" for value in values)
    return f"{title:<26}" + "".join(cells)


def _short_text_rows(report: dict, models: dict[str, dict]) -> list[str]:
    """The table's rows for the short-review check and the behaviour suite."""
    short = [m["short_reviews"] for m in models.values()]
    suites = [m["behaviour"] for m in models.values()]
    return [
        f"short-review check: {report['short_reviews']['texts']:,} texts",
        _row("  accuracy", [check["accuracy"] for check in short]),
        _row("  ECE", [check["ece"] for check in short]),
        f"behaviour suite: {suites[0]['cases']} cases, pass rate",
        *(
            _row(f"  {name}", [suite["capabilities"][name]["pass_rate"] for suite in suites])
            for name in suites[0]["capabilities"]
        ),
        _row("  all cases", [suite["pass_rate"] for suite in suites]),
    ]


def summary_table(report: dict) -> str:
    """The report as a fixed-width table: a column per model."""
    models = {"model": report["model"]} | (
        {"baseline": report["baseline"]} if "baseline" in report else {}
    )
    lines = [
        f"{'test reviews: ' + format(report['test_reviews'], ','):<26}"
        + "".join(f"{name:>12}" for name in models)
    ]
    for title, key in _ROWS:
        lines.append(f"{title:<26}" + "".join(f"{m[key]:>12.4f}" for m in models.values()))
    for title, key in (
        ("true negative", "true_negative"),
        ("false positive", "false_positive"),
        ("false negative", "false_negative"),
        ("true positive", "true_positive"),
    ):
        lines.append(
            f"{title:<26}" + "".join(f"{m['confusion_matrix'][key]:>12,}" for m in models.values())
        )
    lines.append(_row(f"ECE ({BINS} bins)", [m["ece"] for m in models.values()]))
    lines.extend(_short_text_rows(report, models))
    lines.append(f"{'reviews/s (handlers)':<26}{report['model']['reviews_per_second']:>12,.0f}")
    if "baseline" in report:
        baseline = report["baseline"]
        lines.append(f"{'baseline fit seconds':<26}{'':>12}{baseline['fit_seconds']:>12.1f}")
    trained = report["model"].get("training_job_test_accuracy")
    if trained is not None:
        lines.append(f"The training job measured {trained:.4f} on the prepared test ids.")
    return "\n".join(lines)


def evaluate(
    artifact: Path,
    data_dir: Path,
    source_root: Path,
    output_dir: Path,
    *,
    baseline: bool = False,
    threads: int = 0,
) -> dict:
    """Score the artifact (and the baseline); write the report and figure.

    On the test reviews, the behaviour suite and the short-review check, whose texts come
    from the validation reviews: the training and validation reviews are read too.
    """
    test = read_reviews(source_root, "test")
    check_matches_prepared(test, data_dir, "test")
    training, validation = training_and_validation(read_reviews(source_root, "train"), data_dir)
    short = short_reviews(validation)
    with torch_threads(threads), served_artifact(artifact) as served:
        answers = endpoint_answers(served, test.texts)
        model_short_texts = short_text_figures(partial(endpoint_predictions, served), short)
    history, trained_accuracy = training_history(artifact)
    report = {
        "artifact": str(artifact),
        "artifact_sha256": file_sha256(artifact),
        "test_reviews": len(test.texts),
        "threshold": THRESHOLD,
        "short_reviews": short_review_description(short),
        "model": classification_metrics(test.labels, answers.scores, answers.positive)
        | calibration_figures(test.labels, answers.scores, answers.positive)
        | {
            "seconds": round(answers.seconds, 2),
            "reviews_per_second": len(test.texts) / max(answers.seconds, 1e-9),
            "request_batch": REQUEST_BATCH,
            "training_job_test_accuracy": trained_accuracy,
        }
        | model_short_texts,
    }
    scores = {"model": answers.scores}
    if baseline:
        fitted = fit_baseline(training, validation)
        scores["baseline"] = fitted.scores(test.texts)
        decisions = scores["baseline"] >= THRESHOLD
        report["baseline"] = (
            classification_metrics(test.labels, scores["baseline"], decisions)
            | calibration_figures(test.labels, scores["baseline"], decisions)
            | {
                "description": "TF-IDF unigrams+bigrams (min_df 2, sublinear tf), logistic "
                "regression (liblinear), C chosen on the validation reviews",
                "c": float(fitted.classifier.C),
                "training_reviews": len(training.texts),
                "validation_accuracy": fitted.validation_accuracy,
                "validation_note": VALIDATION_NOTE,
                "fit_seconds": round(fitted.fit_seconds, 1),
            }
            | short_text_figures(fitted.answers, short)
        )
    report["training_history"] = history
    model = report["model"]
    calibration = {
        "test reviews": Reliability.from_json(model["reliability"]),
        "short-review check": Reliability.from_json(model["short_reviews"]["reliability"]),
    }
    figure = write_figure(
        output_dir / FIGURE_FILE,
        test.labels,
        scores,
        model["confusion_matrix"],
        history,
        calibration,
    )
    report["figure"] = figure.name
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / EVALUATION_REPORT_FILE).write_text(
        json.dumps(report, indent=2) + "\n", encoding="utf-8"
    )
    return report
