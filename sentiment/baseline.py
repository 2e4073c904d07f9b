"""The baseline every model must beat: TF-IDF unigrams and bigrams with logistic regression.

Fitted by `sentiment evaluate --baseline` on the very training reviews the network learned
from (raw text, every word kept), with its regularization chosen on the validation reviews,
as the network's early stopping is; it answers in the handlers' shape, so the behaviour
suite and the short-review check score it the same way.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from preprocess import strip_html
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score

from sentiment.labeled_reviews import LabeledReviews

BASELINE_C = (1.0, 4.0, 16.0, 64.0)
THRESHOLD = 0.5  # "positive" from this score up, as the endpoint says it


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
