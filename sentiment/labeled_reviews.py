"""The labeled IMDB reviews as raw text, in the order and splits `sentiment prepare` made.

The prepared dataset holds word ids; whatever needs the text (the endpoint's handlers,
the baseline, the short-review check) reads the raw reviews again from the IMDB source,
and checks that they are the ones the prepared splits were made from.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from dataset import read_split
from preprocess import VOCABULARY_FILE, Tokenizer, Vocabulary

from sentiment.prepare import labeled_files, read_manifest, stratified_split

# Reviews per split preprocessed again to check that the source is the prepared one.
_CHECKED_REVIEWS = 50


@dataclass(frozen=True)
class LabeledReviews:
    texts: list[str]
    labels: np.ndarray  # 1 positive, 0 negative
    ratings: np.ndarray  # the reviewer's stars, 1-4 negative, 7-10 positive

    def subset(self, indices: Sequence[int]) -> LabeledReviews:
        chosen = list(indices)
        return LabeledReviews(
            [self.texts[i] for i in chosen], self.labels[chosen], self.ratings[chosen]
        )


def read_reviews(root: Path, split: str) -> LabeledReviews:
    """A labeled split of an aclImdb directory, in the order `sentiment prepare` reads it."""
    files, labels = labeled_files(root, split)
    # Decoded as `sentiment prepare` decodes them.
    texts = [review.path.read_bytes().decode("utf-8", errors="replace") for review in files]
    ratings = np.asarray([review.rating for review in files], dtype=np.int8)
    return LabeledReviews(texts, np.asarray(labels, dtype=np.int8), ratings)


def check_matches_prepared(reviews: LabeledReviews, data_dir: Path, split: str) -> None:
    """Refuse raw reviews other than those the prepared split was made from.

    Number and labels must agree, and a sample of reviews spread over the split must
    preprocess to exactly the prepared word ids: another corpus, or a split drawn
    differently, fails it.
    """
    prepared = read_split(data_dir / split)
    advice = "pass the --source that `sentiment prepare` read"
    if len(prepared) != len(reviews.texts):
        raise ValueError(
            f"the IMDB source has {len(reviews.texts)} {split} reviews, {data_dir} was prepared "
            f"from {len(prepared)}: {advice}"
        )
    if not np.array_equal(prepared.labels, reviews.labels):
        raise ValueError(f"the IMDB source's {split} labels differ from {data_dir}'s: {advice}")
    vocabulary = Vocabulary.load(data_dir / "train" / VOCABULARY_FILE)
    tokenizer = Tokenizer(vocabulary.settings)
    checked = np.linspace(0, len(prepared) - 1, num=min(len(prepared), _CHECKED_REVIEWS))
    for index in checked.round().astype(int).tolist():
        if vocabulary.ids(tokenizer(reviews.texts[index])) != prepared.review(index).tolist():
            raise ValueError(
                f"{split} review {index} of the IMDB source is not the one {data_dir} was "
                f"prepared from: {advice}"
            )


def training_and_validation(
    train: LabeledReviews, data_dir: Path
) -> tuple[LabeledReviews, LabeledReviews]:
    """The raw training reviews split as `sentiment prepare` split them for `data_dir`."""
    manifest = read_manifest(data_dir)
    kept, held_out = stratified_split(
        train.labels.tolist(), manifest["validation_fraction"], manifest["seed"]
    )
    training, validation = train.subset(kept), train.subset(held_out)
    check_matches_prepared(training, data_dir, "train")
    check_matches_prepared(validation, data_dir, "validation")
    return training, validation
