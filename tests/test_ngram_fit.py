"""Fitting the n-gram branch: the bigrams it keeps, their naive-Bayes ratios, and the
logistic regression, checked against scikit-learn's."""

from __future__ import annotations

import numpy as np
import torch
from scipy import sparse
from sklearn.linear_model import LogisticRegression

from contract.layout import MODEL_SOURCE_DIR
from sentiment.model_loader import import_isolated

ngram_fit = import_isolated(MODEL_SOURCE_DIR, "ngram_fit")
dataset = import_isolated(MODEL_SOURCE_DIR, "dataset")

VOCABULARY_SIZE = 10


def _key(first: int, second: int) -> int:
    return first * VOCABULARY_SIZE + second


def test_frequent_bigrams_are_counted_once_per_review_and_never_across_reviews():
    split = dataset.EncodedSplit.from_reviews(
        [[2, 3, 2, 3, 2, 3], [4, 2], [3, 5, 2, 3], [5]], labels=[1, 0, 1, 0]
    )
    # (2, 3) is in two reviews (three times in the first); (3, 2) in one; (3, 4) and
    # (2, 3) at the seams between reviews are no bigrams.
    assert ngram_fit.frequent_bigrams(split, VOCABULARY_SIZE, 2).tolist() == [_key(2, 3)]
    assert ngram_fit.frequent_bigrams(split, VOCABULARY_SIZE, 1).tolist() == sorted(
        [_key(2, 3), _key(3, 2), _key(4, 2), _key(3, 5), _key(5, 2)]
    )


def test_naive_bayes_ratios_favour_the_features_of_positive_reviews():
    # Feature 1 only in positive reviews, 2 only in negative ones, 3 in both.
    features = torch.tensor([1, 3, 1, 2, 3])
    positive = torch.tensor([True, True, True, False, False])
    ratios = ngram_fit.naive_bayes_ratios(features, positive, 4)
    assert ratios[0] == 0  # padding
    p, q = torch.tensor([1.0, 3, 1, 2]), torch.tensor([1.0, 1, 2, 2])
    expected = torch.log(p / p.sum()) - torch.log(q / q.sum())
    torch.testing.assert_close(ratios[1:], expected[1:].float())
    assert ratios[1] > ratios[3] > ratios[2]


def test_logistic_regression_finds_scikit_learns_solution():
    rng = np.random.default_rng(3)
    dense = (rng.random((300, 40)) < 0.15) * rng.normal(1.0, 0.5, (300, 40))
    truth = rng.normal(0, 2, 40)
    labels = (dense @ truth + rng.normal(0, 1, 300) > 0).astype(np.int64)
    coo = sparse.coo_matrix(dense)
    design = torch.sparse_coo_tensor(
        torch.from_numpy(np.stack([coo.row, coo.col]).astype(np.int64)),
        torch.from_numpy(coo.data),
        coo.shape,
        check_invariants=True,
    )

    fit = ngram_fit.logistic_regression(design, torch.from_numpy(labels), c=0.5)

    reference = LogisticRegression(C=0.5, tol=1e-10, max_iter=10_000).fit(dense, labels)
    np.testing.assert_allclose(fit.weights.numpy(), reference.coef_[0], atol=1e-3)
    assert abs(fit.bias - reference.intercept_[0]) < 1e-3
    assert 1 < fit.evaluations <= 500
