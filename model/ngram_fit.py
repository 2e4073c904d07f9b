"""Fitting the n-gram branch: which bigrams it knows, their naive-Bayes ratios, its weights.

NBSVM's recipe (Wang & Manning 2012) with a logistic loss: a review is the set of its
unigrams and bigrams, each scaled by its naive-Bayes log-count ratio, and an
L2-regularized logistic regression weighs them. The regression is solved to convergence
by full-batch L-BFGS over a sparse (review, feature) matrix, so the weights depend on
the data and the regularization alone (no learning rate, no epoch count) and take
seconds.

Only bigrams seen in a few training reviews are kept: one seen once carries a ratio
estimated from a single review, and dropping them shrinks the branch about fourfold.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch
from dataset import EncodedSplit, bucketed_batches, padded_batch
from network import SentimentNetwork, bigram_keys
from torch import nn


def frequent_bigrams(split: EncodedSplit, vocabulary_size: int, min_reviews: int) -> torch.Tensor:
    """Sorted keys (see network.bigram_keys) of the bigrams in at least `min_reviews` reviews."""
    keys = bigram_keys(torch.from_numpy(split.ids), vocabulary_size)
    review = torch.repeat_interleave(torch.from_numpy(split.lengths.astype(np.int64)))
    # A pair that straddles two reviews is no bigram.
    within = review[:-1] == review[1:]
    keys, review = keys[within], review[:-1][within]
    # Count each bigram once per review: unique (review, key) pairs, then unique keys.
    # (torch.unique: NumPy 2.4's np.unique is some 30 times slower on these.)
    span = vocabulary_size**2
    pairs = torch.unique(review * span + keys)
    distinct, reviews = torch.unique(pairs % span, return_counts=True)
    return distinct[reviews >= min_reviews]


def presence(
    network: SentimentNetwork, split: EncodedSplit, batch_size: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(review index, feature id, sign) of every distinct n-gram term of every review (see
    SentimentNetwork.ngram_terms), on the CPU."""
    device = network.bigram_keys.device  # the lookup runs where the network is (CUDA or not)
    reviews, terms = [], []
    for indices in bucketed_batches(split.lengths, batch_size):
        ids, lengths = padded_batch(split, indices)
        present = network.ngram_terms(
            torch.from_numpy(ids).to(device), torch.from_numpy(lengths).to(device)
        ).cpu()
        row, column = present.nonzero(as_tuple=True)
        reviews.append(torch.from_numpy(indices)[row])
        terms.append(present[row, column])
    signed = torch.cat(terms)
    return torch.cat(reviews), signed.abs(), signed.sign().float()


def naive_bayes_ratios(
    features: torch.Tensor, positive: torch.Tensor, feature_count: int
) -> torch.Tensor:
    """log((p / |p|) / (q / |q|)) per feature, p (q) counting the positive (negative)
    reviews it occurs in, add-one smoothed; 0 for padding. `positive` flags each entry."""
    p = 1 + torch.bincount(features[positive], minlength=feature_count).double()
    q = 1 + torch.bincount(features[~positive], minlength=feature_count).double()
    ratios = torch.log(p / p.sum()) - torch.log(q / q.sum())
    ratios[0] = 0.0
    return ratios.float()


@dataclass(frozen=True)
class LinearFit:
    weights: torch.Tensor
    bias: float
    loss: float
    evaluations: int


def logistic_regression(
    design: torch.Tensor, labels: torch.Tensor, c: float, max_evaluations: int = 500
) -> LinearFit:
    """Minimize C * sum(log-loss) + |w|^2 / 2 (scikit-learn's C) over a sparse COO design matrix.

    The gradient is written out (X.T @ (sigmoid(X @ w + b) - y)), which keeps autograd from
    rebuilding the transposed sparse matrix at every evaluation.
    """
    rows = len(labels)
    design = design.double()
    with warnings.catch_warnings():
        # "Sparse CSR support is in beta": the matrix-vector products used here are not.
        warnings.simplefilter("ignore", UserWarning)
        matrix, transposed = design.to_sparse_csr(), design.t().coalesce().to_sparse_csr()
    weights = torch.zeros(design.size(1), dtype=torch.float64)
    bias = torch.zeros(1, dtype=torch.float64)
    targets = labels.double()
    # The objective divided by C · rows: a mean log-loss, whose scale L-BFGS handles well.
    l2 = 1.0 / (2.0 * c * rows)
    optimizer = torch.optim.LBFGS(
        [weights, bias],
        max_iter=max_evaluations,
        max_eval=max_evaluations,
        history_size=10,
        tolerance_grad=1e-7,
        tolerance_change=1e-10,
        line_search_fn="strong_wolfe",
    )
    evaluations = 0

    def objective() -> torch.Tensor:
        nonlocal evaluations
        evaluations += 1
        logits = matrix @ weights + bias
        loss = nn.functional.binary_cross_entropy_with_logits(logits, targets)
        residual = (torch.sigmoid(logits) - targets) / rows
        weights.grad = transposed @ residual + 2 * l2 * weights
        bias.grad = residual.sum().reshape(1)
        return loss + l2 * weights.square().sum()

    optimizer.step(objective)
    loss = objective().item()  # step() returns the loss it started from
    return LinearFit(weights.float(), bias.item(), loss, evaluations)
