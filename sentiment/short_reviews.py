"""The short-review check: short texts cut from validation reviews with a clear rating.

What the web page's visitors type is one to three sentences, and the test reviews are
long, so test accuracy says little about it. This check makes short texts out of real
reviews, without touching the test split, so that preprocessing and training can be
steered by it:

- the reviews are the *validation* reviews, drawn again exactly as `sentiment prepare`
  drew them (labeled_reviews.training_and_validation): never the test split, never a review
  the network trained on;
- only reviews with a clear rating are used, 1-2 or 9-10 stars of the file name
  `<id>_<rating>.txt` (the labels come from 1-4 and 7-10);
- from each, after HTML is stripped and the text cut into sentences, two texts: its
  *ending* (the last two sentences when they fit in MAX_WORDS, else the last one:
  reviews tend to end with the verdict) and its *opening* (the first sentence, when the
  ending does not already hold it); each kept when it has MIN_WORDS to MAX_WORDS words;
- each text carries its review's label. Nothing is random: the same split gives the
  same texts in the same order.

What it can tell: how well the model reads short, real, reviewer-written text, and how
well its confidence is calibrated on such text, compared between models or settings.
What it cannot: the labels are the whole review's, so some texts are neutral ("I saw
this at a festival.") or even say the opposite ("The first hour is dull." in a 10-star
review) — no model reaches 100 %, and openings are noisier than endings; the validation
reviews are about the same movies as the training reviews, so it reads optimistic; and
real visitors write neither like reviewers' last sentences nor about IMDB's movies only.
It compares models; it is no estimate of accuracy on the page. Nor of calibration on short
texts in general: a clear rating picks the easiest texts, so calibration is also read on the
same texts cut from every validation review (short_reviews(every_rating=True)), and, for the
report only, on those cut from every test review: ten times as many texts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
from preprocess import strip_html

from sentiment.calibration import calibration_figures
from sentiment.labeled_reviews import LabeledReviews

MIN_WORDS = 4
MAX_WORDS = 40
# Ratings far enough from the middle that the review's label is the text's verdict.
MOST_NEGATIVE_RATING = 2
MOST_POSITIVE_RATING = 9
OPENING = "opening"
ENDING = "ending"
# A sentence ends at . ! or ? followed by space and what starts a sentence, so that
# "e.g. the" and "3.5 stars" stay whole (most abbreviations before a capital do not).
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[]?[A-Z0-9])")


@dataclass(frozen=True)
class ShortReviews:
    texts: list[str]
    labels: np.ndarray  # 1 positive, 0 negative: the source review's label
    parts: list[str]  # OPENING or ENDING
    source_reviews: int  # reviews the texts were cut from
    ratings: np.ndarray  # the source review's rating, 1-10

    def clearly_rated(self) -> np.ndarray:
        """Which texts come from a review with a clear rating (clear_ratings): cut from
        every review, those that short_reviews() cuts from the clearly rated ones alone,
        in the same order."""
        return clear_ratings(self.ratings)


def clear_ratings(ratings: np.ndarray) -> np.ndarray:
    """Whether each rating is far enough from the middle that the review's label is the
    verdict of its texts too."""
    return (ratings <= MOST_NEGATIVE_RATING) | (ratings >= MOST_POSITIVE_RATING)


def sentences(review: str) -> list[str]:
    """The review's sentences, HTML stripped and whitespace collapsed."""
    text = " ".join(strip_html(review).split())
    return [sentence for sentence in _SENTENCE_END.split(text) if sentence]


def _word_count(text: str) -> int:
    return len(text.split())


def short_texts(review: str) -> list[tuple[str, str]]:
    """(part, text) cut from one review: its ending, then its opening, each if short enough."""
    parts = sentences(review)
    if not parts:
        return []
    last_two = " ".join(parts[-2:])
    ending_sentences = 2 if len(parts) >= 2 and _word_count(last_two) <= MAX_WORDS else 1
    cut = [(ENDING, " ".join(parts[-ending_sentences:]))]
    if len(parts) > ending_sentences:
        cut.append((OPENING, parts[0]))
    return [(part, text) for part, text in cut if MIN_WORDS <= _word_count(text) <= MAX_WORDS]


def short_reviews(reviews: LabeledReviews, every_rating: bool = False) -> ShortReviews:
    """The check's texts, cut from the (validation) reviews with a clear rating; with
    `every_rating`, from every review: the sample to measure calibration on.

    A clear rating picks the texts that are easiest to judge, so a model whose confidence
    is right for short texts in general looks underconfident on them (README, Short texts).
    """
    texts, labels, parts, ratings = [], [], [], []
    used = np.ones(len(reviews.ratings), dtype=bool)
    if not every_rating:
        used = clear_ratings(reviews.ratings)
    for index in np.flatnonzero(used).tolist():
        for part, text in short_texts(reviews.texts[index]):
            texts.append(text)
            labels.append(reviews.labels[index])
            parts.append(part)
            ratings.append(reviews.ratings[index])
    return ShortReviews(
        texts,
        np.asarray(labels, dtype=np.int8),
        parts,
        int(used.sum()),
        np.asarray(ratings, dtype=np.int8),
    )


def short_review_scores(short: ShortReviews, scores: np.ndarray, positive: np.ndarray) -> dict:
    """Accuracy (None without texts) and calibration of one model's answers on the texts."""
    right = np.asarray(positive, bool) == (short.labels == 1)
    parts = np.asarray(short.parts)
    return {
        "texts": len(short.texts),
        "accuracy": float(right.mean()) if len(right) else None,
        "accuracy_by_part": {
            part: float(right[parts == part].mean()) for part in (ENDING, OPENING) if part in parts
        },
    } | calibration_figures(short.labels, scores, positive)


def short_review_description(short: ShortReviews) -> dict:
    """How the check was made, for the report."""
    return {
        "texts": len(short.texts),
        "source_reviews": short.source_reviews,
        "positive": int((short.labels == 1).sum()),
        "negative": int((short.labels == 0).sum()),
        "texts_by_part": {part: short.parts.count(part) for part in (ENDING, OPENING)},
        "made_from": f"validation reviews rated <= {MOST_NEGATIVE_RATING} or >= "
        f"{MOST_POSITIVE_RATING}: each one's last one or two sentences and its first "
        f"sentence, {MIN_WORDS}-{MAX_WORDS} words, labelled with the review's label",
        "caveat": "labels are the whole review's (some texts are neutral or opposite), and "
        "validation reviews share movies with the training reviews: compare models with "
        "it, do not read it as accuracy on the page",
    }
