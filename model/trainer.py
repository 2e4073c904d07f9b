"""The training job's steps, one method each, in the order Trainer.run takes them.

train.py (the SageMaker entry point) reads the arguments and the job's paths and writes the
model directory; this module trains: word2vec embeddings, the n-gram branch, the LSTM
branch epoch by epoch with checkpoints, the fusion, and the evaluation. network.py explains
the two branches. At about 420 lines it is over the project's usual size: the steps share
the Trainer's state (network, splits, checkpoint) and read best in one place.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from dataset import (
    EncodedSplit,
    bucketed_batches,
    concatenate,
    padded_batch,
    read_split,
    short_crops,
)
from network import NetworkConfig, SentimentNetwork
from ngram_fit import frequent_bigrams, logistic_regression, naive_bayes_ratios, presence
from preprocess import MIN_STEPS, VOCABULARY_FILE, Vocabulary
from pretrain import word2vec_embeddings
from progress import Progress
from torch import nn

CHECKPOINT_FILE = "checkpoint.pt"


@dataclass(frozen=True)
class Paths:
    model_dir: Path
    train: Path
    validation: Path
    test: Path | None
    unlabeled: Path | None
    output_dir: Path
    checkpoint_dir: Path


def log_metrics(prefix: str, **values: float) -> None:
    """One `key=value` line; SageMaker's MetricDefinitions read these from the log."""
    fields = " ".join(
        f"{key}={value:.4f}" if isinstance(value, float) else f"{key}={value}"
        for key, value in values.items()
    )
    print(f"{prefix} {fields}".strip(), flush=True)


def _batches_of(
    split: EncodedSplit, batch_size: int, device: torch.device, rng: np.random.Generator | None
):
    for indices in bucketed_batches(split.lengths, batch_size, rng):
        ids, lengths = padded_batch(split, indices)
        labels = None if split.labels is None else torch.from_numpy(split.labels[indices])
        yield (
            indices,
            torch.from_numpy(ids).to(device),
            torch.from_numpy(lengths).to(device),
            None if labels is None else labels.float().to(device),
        )


def predict_logits(
    network: SentimentNetwork,
    split: EncodedSplit,
    logit: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    batch_size: int,
    device: torch.device,
) -> torch.Tensor:
    """`logit(ids, lengths)` for every review, in the split's order."""
    network.eval()
    outputs = None
    with torch.no_grad():
        for indices, ids, lengths, _ in _batches_of(split, batch_size * 2, device, None):
            result = logit(ids, lengths).cpu()
            if outputs is None:
                outputs = torch.zeros((len(split), *result.shape[1:]))
            outputs[torch.from_numpy(indices)] = result
    network.train()
    return outputs


def _scores(logits: torch.Tensor, labels: np.ndarray) -> tuple[float, float]:
    """(loss, accuracy) of logits against labels."""
    targets = torch.from_numpy(labels).float()
    loss = nn.functional.binary_cross_entropy_with_logits(logits, targets).item()
    accuracy = ((logits > 0).numpy() == labels.astype(bool)).mean().item()
    return loss, accuracy


class Trainer:
    """The training steps, with the state a checkpoint needs to resume them."""

    def __init__(self, args: argparse.Namespace, paths: Paths) -> None:
        self.args = args
        self.paths = paths
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.checkpoint_dir = args.checkpoint_dir or paths.checkpoint_dir
        self.vocabulary = Vocabulary.load(paths.train / VOCABULARY_FILE)
        self.train = read_split(paths.train)
        self.validation = read_split(paths.validation)
        for name, split in (("train", self.train), ("validation", self.validation)):
            if split.labels is None or len(split) == 0:
                raise ValueError(f"the {name} channel has no labeled reviews")
        # What visitors type is one to three sentences: the n-gram branch learns from, and
        # the fusion is calibrated on, short windows of the reviews beside the whole
        # reviews. The LSTM learns from whole reviews: on the crops too, early stopping on
        # the mixed validation loss ended it after one epoch, and the fused model lost.
        self.train_crops, self.validation_crops = (
            short_crops(split, args.crops_per_review, args.crop_max_words, rng)
            for split, rng in (
                (self.train, np.random.default_rng([args.seed, 3])),
                (self.validation, np.random.default_rng([args.seed, 4])),
            )
        )
        if args.ngram_c <= 0:
            raise ValueError(f"--ngram-c must be positive, got {args.ngram_c}")
        bigrams = (
            frequent_bigrams(self.train, len(self.vocabulary), args.bigram_min_reviews)
            if args.bigram_min_reviews > 0
            else torch.zeros(0, dtype=torch.long)
        )
        self.config = NetworkConfig(
            vocabulary_size=len(self.vocabulary),
            embedding_dim=args.embedding_dim,
            hidden_dim=args.hidden_dim,
            layers=args.layers,
            bidirectional=args.bidirectional,
            dropout=args.dropout,
            bigrams=len(bigrams),
            negation_flips=args.negation_flips,
            negation_flip_window=args.negation_flip_window,
        )
        torch.manual_seed(args.seed)
        self.network = SentimentNetwork(self.config).to(self.device)
        self.network.bigram_keys.copy_(bigrams)
        if args.negation_flips:
            self.network.plain_ids.copy_(torch.tensor(self.vocabulary.plain_word_ids()))
        self.state = {
            "step": "start",
            "epoch": 0,
            "history": [],
            "best_loss": math.inf,
            "bad_epochs": 0,
        }
        self.best_lstm: dict[str, torch.Tensor] | None = None

    # -- checkpoints -------------------------------------------------------------

    def save_checkpoint(
        self,
        optimizer: torch.optim.Optimizer | None = None,
        schedule: torch.optim.lr_scheduler.LRScheduler | None = None,
    ) -> None:
        self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        checkpoint = {
            "state": json.dumps(self.state),
            "network": self.network.state_dict(),
            "best_lstm": self.best_lstm or {},
            "optimizer": optimizer.state_dict() if optimizer else {},
            "schedule": schedule.state_dict() if schedule else {},
        }
        partial = self.checkpoint_dir / f".{CHECKPOINT_FILE}.partial"
        torch.save(checkpoint, partial)
        partial.replace(self.checkpoint_dir / CHECKPOINT_FILE)

    def load_checkpoint(self) -> dict | None:
        path = self.checkpoint_dir / CHECKPOINT_FILE
        if not path.exists():
            return None
        checkpoint = torch.load(path, map_location=self.device, weights_only=True)
        self.state = json.loads(checkpoint["state"])
        self.network.load_state_dict(checkpoint["network"])
        self.best_lstm = checkpoint["best_lstm"] or None
        print(
            f"Resuming from {path}: step {self.state['step']}, epoch {self.state['epoch']}",
            flush=True,
        )
        return checkpoint

    # -- steps ---------------------------------------------------------------------

    def pretrain_embeddings(self) -> None:
        if self.args.word2vec_epochs == 0:
            return
        started = time.perf_counter()
        reviews = [self.train.review(i) for i in range(len(self.train))]
        if self.paths.unlabeled is not None and self.paths.unlabeled.is_dir():
            unlabeled = read_split(self.paths.unlabeled)
            reviews += [unlabeled.review(i) for i in range(len(unlabeled))]
        matrix = word2vec_embeddings(
            reviews,
            self.config.vocabulary_size,
            self.config.embedding_dim,
            epochs=self.args.word2vec_epochs,
            seed=self.args.seed,
            workers=1,  # gensim is only reproducible on one worker
        )
        with torch.no_grad():
            self.network.embedding.weight.copy_(torch.from_numpy(matrix))
        print(
            f"word2vec: {len(reviews)} reviews in {time.perf_counter() - started:.1f} s", flush=True
        )

    def train_ngram_branch(self) -> None:
        """Naive-Bayes ratios from the training reviews, then the n-gram weights."""
        network, config = self.network, self.config
        started = time.perf_counter()
        reviews, features, signs = presence(network, self.train, self.args.batch_size)
        positive = torch.from_numpy(self.train.labels.astype(bool))[reviews]
        feature_count = config.vocabulary_size + config.bigrams
        # The ratios count whole reviews, and the words as written (not the flipped
        # negations); the weights also fit the crops, so that a short text's few features
        # are weighed as a short text's.
        written = signs > 0
        ratios = naive_bayes_ratios(features[written], positive[written], feature_count)
        with torch.no_grad():
            # Which word of a negation scope flips depends on them (flipped_words).
            network.ngram_ratios.copy_(ratios)
        fitted = concatenate([self.train, self.train_crops])
        reviews, features, signs = presence(network, fitted, self.args.batch_size)
        design = torch.sparse_coo_tensor(
            torch.stack([reviews, features]),
            ratios[features] * signs,
            (len(fitted), feature_count),
            check_invariants=False,  # built from valid indices just above
        ).coalesce()  # a word both written and flipped in one review adds up to one entry
        fit = logistic_regression(design, torch.from_numpy(fitted.labels), self.args.ngram_c)
        with torch.no_grad():
            network.ngram_weights.weight.copy_(fit.weights[:, None])
            network.ngram_bias.fill_(fit.bias)
        val_loss, val_accuracy = _scores(
            self._logits(self.validation, network.ngram_logit), self.validation.labels
        )
        log_metrics(
            "ngram",
            features=feature_count,
            evaluations=fit.evaluations,
            train_objective=fit.loss,
            val_loss=val_loss,
            val_accuracy=val_accuracy,
            seconds=round(time.perf_counter() - started),
        )

    def _logits(self, split: EncodedSplit, logit) -> torch.Tensor:
        return predict_logits(self.network, split, logit, self.args.batch_size, self.device)

    def _lstm_parameters(self) -> list[nn.Parameter]:
        network = self.network
        return [
            *network.embedding.parameters(),
            *network.lstm.parameters(),
            *network.lstm_head.parameters(),
        ]

    def _epoch(self, split: EncodedSplit, logit, step, rng, progress: Progress) -> float:
        """One pass over `split`: `logit(indices, ids, lengths)` gives a batch's logits,
        `step()` updates the weights from the gradients and clears them."""
        total, count = 0.0, 0
        for indices, ids, lengths, labels in _batches_of(
            split, self.args.batch_size, self.device, rng
        ):
            loss = nn.functional.binary_cross_entropy_with_logits(
                logit(indices, ids, lengths), labels
            )
            loss.backward()
            step()
            total += loss.item() * len(indices)
            count += len(indices)
            progress.advance()
        progress.finish()
        return total / count

    def train_lstm_branch(self, checkpoint: dict | None) -> None:
        network, args = self.network, self.args
        optimizer = torch.optim.Adam(self._lstm_parameters(), lr=args.learning_rate)
        steps_per_epoch = len(bucketed_batches(self.train.lengths, args.batch_size))
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(
            optimizer, T_max=max(1, args.epochs * steps_per_epoch)
        )
        if checkpoint and checkpoint["optimizer"]:
            optimizer.load_state_dict(checkpoint["optimizer"])
            schedule.load_state_dict(checkpoint["schedule"])

        def lstm_logit(_, ids, lengths) -> torch.Tensor:
            return network.lstm_logit(ids, lengths)

        def step() -> None:
            nn.utils.clip_grad_norm_(self._lstm_parameters(), 5.0)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad()

        while self.state["epoch"] < args.epochs and self.state["bad_epochs"] < args.patience:
            epoch = self.state["epoch"] + 1
            # Seeded per epoch, so a resumed run shuffles and drops out exactly as an
            # uninterrupted one would.
            torch.manual_seed(args.seed * 1000 + epoch)
            rng = np.random.default_rng([args.seed, 2, epoch])
            started = time.perf_counter()
            progress = Progress(f"LSTM epoch {epoch}/{args.epochs}", steps_per_epoch, "batches")
            train_loss = self._epoch(self.train, lstm_logit, step, rng, progress)
            val_loss, val_accuracy = _scores(
                self._logits(self.validation, network.lstm_logit), self.validation.labels
            )
            self.state["history"].append(
                {
                    "epoch": epoch,
                    "train_loss": train_loss,
                    "val_loss": val_loss,
                    "val_accuracy": val_accuracy,
                }
            )
            if val_loss < self.state["best_loss"]:
                self.state.update(best_loss=val_loss, bad_epochs=0)
                self.best_lstm = {
                    name: value.detach().clone() for name, value in network.state_dict().items()
                }
            else:
                self.state["bad_epochs"] += 1
            self.state["epoch"] = epoch
            # Checkpoint first: an epoch whose line was logged is never trained again, so
            # SageMaker never records its metrics twice.
            self.save_checkpoint(optimizer, schedule)
            log_metrics(
                f"epoch={epoch}",
                train_loss=train_loss,
                val_loss=val_loss,
                val_accuracy=val_accuracy,
                seconds=round(time.perf_counter() - started),
            )
        if self.best_lstm is not None:
            network.load_state_dict(self.best_lstm)

    def _fusion_inputs(self, split: EncodedSplit) -> torch.Tensor:
        network = self.network
        branches = self._logits(split, network.branch_logits)
        lengths = torch.from_numpy(np.maximum(split.lengths, MIN_STEPS))
        return network.fusion_inputs(branches, lengths)

    def fit_fusion(self) -> None:
        """The fusion, a logistic regression over the branches' logits (and the length),
        fitted on the validation reviews and their crops: it also calibrates the score."""
        network = self.network
        split = concatenate([self.validation, self.validation_crops])
        branches = self._fusion_inputs(split)
        targets = torch.from_numpy(split.labels).float()
        # Whole reviews and crops weigh the same, however many crops each review gives.
        weights = torch.ones(len(split))
        weights[len(self.validation) :] = len(self.validation) / max(1, len(self.validation_crops))
        fusion = nn.Linear(self.config.fusion_width, 1)
        optimizer = torch.optim.LBFGS(fusion.parameters(), max_iter=200)

        def closure() -> torch.Tensor:
            optimizer.zero_grad()
            loss = (
                nn.functional.binary_cross_entropy_with_logits(
                    fusion(branches).squeeze(1), targets, weight=weights
                )
                * len(split)
                / weights.sum()
                + 1e-3 * fusion.weight.square().sum()
            )
            loss.backward()
            return loss

        optimizer.step(closure)
        with torch.no_grad():
            network.fusion.load_state_dict(fusion.state_dict())

    def evaluate(self) -> dict:
        network = self.network
        results = {
            "validation_note": "the validation reviews share movies with the training "
            "reviews and the fusion weights are fitted on them: expect validation "
            "figures 0.5-2 points above test"
        }
        splits = {"validation": self.validation}
        if len(self.validation_crops):
            splits["validation_crops"] = self.validation_crops
        if self.paths.test is not None:
            splits["test"] = read_split(self.paths.test)
        for name, split in splits.items():
            inputs = self._fusion_inputs(split)
            branches = inputs[:, :2]
            with torch.no_grad():
                fused = network.fusion(inputs.to(self.device)).squeeze(1).cpu()
            loss, accuracy = _scores(fused, split.labels)
            results[name] = {
                "reviews": len(split),
                "loss": loss,
                "accuracy": accuracy,
                "lstm_accuracy": _scores(branches[:, 0], split.labels)[1],
                "ngram_accuracy": _scores(branches[:, 1], split.labels)[1],
            }
        values = {"val_accuracy": results["validation"]["accuracy"]}
        if "validation_crops" in results:
            values["val_crops_accuracy"] = results["validation_crops"]["accuracy"]
        if "test" in results:
            values |= {
                "test_loss": results["test"]["loss"],
                "test_accuracy": results["test"]["accuracy"],
            }
        log_metrics("final", **values)
        results["history"] = self.state["history"]
        results["fusion"] = {
            "weights": network.fusion.weight.detach().flatten().tolist(),
            "bias": network.fusion.bias.item(),
        }
        return results

    def run(self) -> dict:
        checkpoint = self.load_checkpoint()
        if self.state["step"] == "start":
            self.pretrain_embeddings()
            self.train_ngram_branch()
            self.state["step"] = "lstm"
            self.save_checkpoint()
        self.train_lstm_branch(checkpoint)
        self.fit_fusion()
        return self.evaluate()
