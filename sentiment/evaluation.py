"""`sentiment evaluate`: score model.tar.gz on the official test reviews, as the endpoint would.

The prepared test split holds word ids; the endpoint receives text. So the raw test
reviews are read from the IMDB source and sent, 64 to a request (the endpoint's largest
batch), through the artifact's own inference handlers: input_fn → predict_fn →
output_fn, preprocessing included. What is measured is what the endpoint answers, and
how fast its handlers answer it. The same path answers the short texts visitors type:
the behaviour suite (contract/behaviour.py) and the short-review check (short_reviews.py),
with calibration (calibration.py) on the test reviews, on that check and on the same texts
cut from every validation review.

With `--baseline`, baseline.py's TF-IDF logistic regression is fitted on the very training
reviews the network learned from — the prepared dataset's manifest names the validation
fraction and seed, and the split is drawn again the same way — and scored the same way.
The figure and the printed table are evaluation_report.py's.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    precision_score,
    recall_score,
    roc_auc_score,
)
from tqdm import tqdm

from contract import behaviour
from contract.files import EVALUATION_REPORT_FILE, TRAINING_REPORT_FILE
from contract.limits import MAX_BATCH_REVIEWS
from contract.packaging import file_sha256
from sentiment import inference_toolkit
from sentiment.baseline import THRESHOLD, fit_baseline
from sentiment.calibration import Reliability, calibration_figures
from sentiment.evaluation_report import write_figure
from sentiment.labeled_reviews import (
    check_matches_prepared,
    read_reviews,
    training_and_validation,
)
from sentiment.model_loader import ServedModel, served_artifact
from sentiment.short_reviews import (
    ShortReviews,
    short_review_description,
    short_review_scores,
    short_reviews,
)

FIGURE_FILE = "evaluation.png"
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


def usable_cores() -> int:
    """The cores this process may run on (its affinity, where the platform says)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


# The model refused a review it was sent (the command reports it as a bad input).
EvaluationError = inference_toolkit.RefusedReview


@dataclass(frozen=True)
class EndpointAnswers:
    scores: np.ndarray  # P(positive)
    positive: np.ndarray  # the answer's "sentiment" == "positive"
    seconds: float


def endpoint_predictions(
    served: ServedModel, texts: Sequence[str], in_flight: int = 1
) -> list[dict]:
    """The handlers' answer for every text, in batches, `in_flight` at a time
    (inference_toolkit.batch_answers), with a progress bar in a terminal only, as `sentiment
    prepare` shows its progress."""
    return inference_toolkit.batch_answers(
        served,
        texts,
        lambda requests: tqdm(requests, desc="Scoring", unit="request", disable=None, leave=False),
        in_flight,
    )


def scores_and_decisions(predictions: Sequence[dict]) -> tuple[np.ndarray, np.ndarray]:
    """The answers' scores, P(positive), and whether each said "positive"."""
    scores = np.asarray([prediction["score"] for prediction in predictions], dtype=float)
    positive = np.asarray([prediction["sentiment"] == "positive" for prediction in predictions])
    return scores, positive.astype(bool)


def endpoint_answers(
    served: ServedModel, texts: Sequence[str], in_flight: int = 1
) -> EndpointAnswers:
    """Every review's score and decision from the handlers, and the time they took."""
    started = time.perf_counter()
    predictions = endpoint_predictions(served, texts, in_flight)
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


def short_text_figures(
    answer: Callable[[list[str]], list[dict]],
    short: ShortReviews,
    every: ShortReviews,
    test_texts: ShortReviews,
    clear_test_texts: ShortReviews,
) -> dict:
    """One model's behaviour suite, short-review check (`short`) and the same texts cut from
    every validation review (`every`, short_reviews(every_rating=True): for calibration).

    And the same texts cut from every test review (`test_texts`), ten times as many:
    calibration measured closer than `every`'s few thousand texts allow; and, among them,
    those of the clearly rated test reviews (`clear_test_texts`, short_reviews() of the test
    reviews). For the report only, as the test accuracy is: nothing is chosen by them.
    """
    every_figures, check_figures = _with_clearly_rated(answer, every, short)
    test_figures, clear_test_figures = _with_clearly_rated(answer, test_texts, clear_test_texts)
    return {
        "behaviour": behaviour.run_suite(answer),
        "short_reviews": check_figures,
        "short_reviews_every_rating": every_figures,
        "short_reviews_test": test_figures,
        "short_reviews_test_clear_rating": clear_test_figures,
    }


def _with_clearly_rated(
    answer: Callable[[list[str]], list[dict]], every: ShortReviews, clear: ShortReviews
) -> tuple[dict, dict]:
    """The figures of every review's texts and of the clearly rated reviews' among them
    (`clear`: the same reviews' short_reviews()), each text asked once."""
    scores, positive = scores_and_decisions(answer(every.texts))
    kept = every.clearly_rated()
    return (
        short_review_scores(every, scores, positive),
        short_review_scores(clear, scores[kept], positive[kept]),
    )


def training_history(artifact: Path) -> tuple[list[dict], float | None]:
    """The per-epoch history and test accuracy of the training report beside the artifact."""
    report = artifact.parent / TRAINING_REPORT_FILE
    if not report.is_file():
        return [], None
    data = json.loads(report.read_text(encoding="utf-8"))
    return data.get("history", []), data.get("test", {}).get("accuracy")


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
    from the validation reviews (the training and validation reviews are read too), and on
    the same short texts cut from the test reviews, for the report. With
    `threads` 0, a request per core is in flight, one torch thread each (as a serving
    worker per core takes them: faster than two threads on one request's small matrices);
    otherwise one request at a time, its length batches side by side on `threads` torch
    threads (score_reviews in the handlers).
    """
    in_flight = 1 if threads else usable_cores()
    test = read_reviews(source_root, "test")
    check_matches_prepared(test, data_dir, "test")
    training, validation = training_and_validation(read_reviews(source_root, "train"), data_dir)
    short, every = short_reviews(validation), short_reviews(validation, every_rating=True)
    short_texts_of = partial(
        short_text_figures,
        short=short,
        every=every,
        test_texts=short_reviews(test, every_rating=True),
        clear_test_texts=short_reviews(test),
    )
    with torch_threads(threads or 1), served_artifact(artifact) as served:
        answers = endpoint_answers(served, test.texts, in_flight)
        answer = partial(endpoint_predictions, served, in_flight=in_flight)
        model_short_texts = short_texts_of(answer)
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
            "request_batch": MAX_BATCH_REVIEWS,
            "requests_in_flight": in_flight,
            "torch_threads": threads or 1,
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
            | short_texts_of(fitted.answers)
        )
    report["training_history"] = history
    model = report["model"]
    calibration = {
        "test reviews": Reliability.from_json(model["reliability"]),
        "short-review check": Reliability.from_json(model["short_reviews"]["reliability"]),
        "short texts, every test review": Reliability.from_json(
            model["short_reviews_test"]["reliability"]
        ),
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
