"""The prepared dataset's on-disk format: one directory per split (one SageMaker channel).

A split directory holds three NumPy arrays, stored unpadded so nothing is spent on
padding and batches can be cut to the length of their longest review:

- `ids.npy`: int32, every review's word ids one after another;
- `lengths.npy`: int32, how many ids each review has;
- `labels.npy`: int8, 1 positive and 0 negative (absent for the unlabeled split).

The training split's directory also holds `vocabulary.json` (words and preprocessing
settings), since the vocabulary is derived from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
from preprocess import MIN_STEPS

_IDS, _LENGTHS, _LABELS = "ids.npy", "lengths.npy", "labels.npy"


@dataclass(frozen=True)
class EncodedSplit:
    ids: np.ndarray
    lengths: np.ndarray
    labels: np.ndarray | None

    def __post_init__(self) -> None:
        if int(self.lengths.sum()) != len(self.ids):
            total = int(self.lengths.sum())
            raise ValueError(f"corrupt split: lengths add up to {total} ids, found {len(self.ids)}")
        if self.labels is not None and len(self.labels) != len(self.lengths):
            raise ValueError(
                f"corrupt split: {len(self.labels)} labels for {len(self.lengths)} reviews"
            )

    def __len__(self) -> int:
        return len(self.lengths)

    @cached_property
    def offsets(self) -> np.ndarray:
        """Where each review starts in `ids`."""
        return np.concatenate(([0], np.cumsum(self.lengths[:-1], dtype=np.int64)))

    def review(self, index: int) -> np.ndarray:
        start = int(self.offsets[index])
        return self.ids[start : start + int(self.lengths[index])]

    @classmethod
    def from_reviews(cls, reviews: list[list[int]], labels: list[int] | None) -> EncodedSplit:
        lengths = np.fromiter(
            (len(review) for review in reviews), dtype=np.int32, count=len(reviews)
        )
        ids = np.fromiter(
            (word for review in reviews for word in review),
            dtype=np.int32,
            count=int(lengths.sum()),
        )
        return cls(ids, lengths, None if labels is None else np.asarray(labels, dtype=np.int8))


def concatenate(splits: list[EncodedSplit]) -> EncodedSplit:
    """The reviews of every split, one split after another."""
    labels = [split.labels for split in splits]
    return EncodedSplit(
        np.concatenate([split.ids for split in splits]),
        np.concatenate([split.lengths for split in splits]),
        None if any(label is None for label in labels) else np.concatenate(labels),
    )


def short_crops(
    split: EncodedSplit, per_review: int, max_words: int, rng: np.random.Generator
) -> EncodedSplit:
    """`per_review` windows of 1 to `max_words` consecutive words from each review, labeled
    as the review: inputs of the length people type into the page, from real reviews.

    A review no longer than a window is taken whole; an empty one gives none.
    """
    reviews = np.repeat(np.flatnonzero(split.lengths > 0), per_review)
    count = len(reviews)
    lengths = split.lengths[reviews].astype(np.int64)
    sizes = np.minimum(rng.integers(1, max_words + 1, size=count), lengths)
    starts = split.offsets[reviews] + (rng.random(count) * (lengths - sizes + 1)).astype(np.int64)
    positions = np.repeat(starts - np.cumsum(sizes) + sizes, sizes) + np.arange(sizes.sum())
    labels = None if split.labels is None else split.labels[reviews]
    return EncodedSplit(split.ids[positions], sizes.astype(np.int32), labels)


def write_split(split: EncodedSplit, directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    np.save(directory / _IDS, split.ids, allow_pickle=False)
    np.save(directory / _LENGTHS, split.lengths, allow_pickle=False)
    if split.labels is not None:
        np.save(directory / _LABELS, split.labels, allow_pickle=False)


def read_split(directory: Path) -> EncodedSplit:
    """Load a split; a missing or unreadable file is an error that names it."""
    if not directory.is_dir():
        raise FileNotFoundError(f"dataset split directory not found: {directory}")

    def load(name: str) -> np.ndarray:
        path = directory / name
        try:
            return np.load(path, allow_pickle=False)
        except FileNotFoundError:
            raise FileNotFoundError(f"dataset file missing: {path}") from None
        except ValueError as error:
            raise ValueError(f"dataset file unreadable: {path}: {error}") from None

    labels = load(_LABELS) if (directory / _LABELS).exists() else None
    return EncodedSplit(load(_IDS), load(_LENGTHS), labels)


def padded_batch(split: EncodedSplit, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The chosen reviews as a (batch, longest) id matrix padded with 0, and their lengths.

    An empty review (every word a stopword) is given MIN_STEPS over padding ids.
    """
    lengths = np.maximum(split.lengths[indices], MIN_STEPS)
    offsets = split.offsets[indices]
    batch = np.zeros((len(indices), int(lengths.max())), dtype=np.int64)
    for row, (start, length) in enumerate(zip(offsets, split.lengths[indices], strict=True)):
        batch[row, :length] = split.ids[start : start + length]
    return batch, lengths.astype(np.int64)


def bucketed_batches(
    lengths: np.ndarray, batch_size: int, rng: np.random.Generator | None = None
) -> list[np.ndarray]:
    """Index batches of reviews of similar length, so little is spent on padding.

    With `rng`, reviews are shuffled, sorted by length within pools of 50 batches, and
    the batches shuffled: similar lengths together, a different mix every epoch.
    Without, batches simply follow length order (for evaluation).
    """
    if rng is None:
        order = np.argsort(lengths, kind="stable")
        return [order[start : start + batch_size] for start in range(0, len(order), batch_size)]
    shuffled = rng.permutation(len(lengths))
    pool = batch_size * 50
    batches = []
    for start in range(0, len(shuffled), pool):
        members = shuffled[start : start + pool]
        members = members[np.argsort(lengths[members], kind="stable")]
        batches.extend(members[i : i + batch_size] for i in range(0, len(members), batch_size))
    return [batches[i] for i in rng.permutation(len(batches))]
