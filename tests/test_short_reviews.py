"""The short-review check: sentences, the texts cut from a review, and which reviews are used."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from imdb_fixture import generate_reviews, write_directory

from sentiment.labeled_reviews import LabeledReviews, read_reviews, training_and_validation
from sentiment.prepare import PrepareOptions, prepare
from sentiment.short_reviews import (
    ENDING,
    MAX_WORDS,
    MIN_WORDS,
    OPENING,
    sentences,
    short_review_description,
    short_review_scores,
    short_reviews,
    short_texts,
)


def test_sentences_are_cut_at_sentence_ends_only():
    review = "Saw it e.g. at home.<br /><br />It got 3.5 stars from me! Was it good? Yes."
    assert sentences(review) == [
        "Saw it e.g. at home.",
        "It got 3.5 stars from me!",
        "Was it good?",
        "Yes.",
    ]


def test_the_ending_is_the_last_two_sentences_and_the_opening_the_first():
    review = "I rented it on a whim. The middle part is slow. In the end I loved every minute."
    assert short_texts(review) == [
        (ENDING, "The middle part is slow. In the end I loved every minute."),
        (OPENING, "I rented it on a whim."),
    ]


def test_the_ending_is_the_last_sentence_alone_when_two_are_too_long():
    long_sentence = "So " + " ".join(["word"] * (MAX_WORDS - 5)) + "."
    review = f"First things first here. {long_sentence} Truly a great film overall."
    assert short_texts(review) == [
        (ENDING, "Truly a great film overall."),
        (OPENING, "First things first here."),
    ]


def test_the_opening_is_not_repeated_when_the_ending_holds_it():
    assert short_texts("I watched it twice. A wonderful film, really.") == [
        (ENDING, "I watched it twice. A wonderful film, really.")
    ]


def test_texts_outside_the_word_limits_are_dropped():
    longest = " ".join(["Long"] + ["long"] * (MAX_WORDS - 1)) + "."
    too_long = " ".join(["Long"] + ["long"] * MAX_WORDS) + "."
    assert short_texts(longest) == [(ENDING, longest)]
    assert short_texts(too_long) == []
    assert short_texts("Bad. Awful.") == []  # two words: fewer than MIN_WORDS
    # The opening has three words: dropped.
    texts = short_texts(f"Nice one there. {too_long} It is really good.")
    assert texts == [(ENDING, "It is really good.")]


def test_only_clearly_rated_reviews_are_used_with_their_labels():
    reviews = LabeledReviews(
        [f"This is review number {n}. It was rated {n}." for n in range(6)],
        np.array([0, 0, 0, 1, 1, 1], dtype=np.int8),
        np.array([1, 2, 3, 8, 9, 10], dtype=np.int8),
    )
    short = short_reviews(reviews)
    assert short.source_reviews == 4
    assert [int(re.search(r"\d", text)[0]) for text in short.texts] == [0, 1, 4, 5]
    assert short.labels.tolist() == [0, 0, 1, 1]
    assert short.parts == [ENDING] * 4
    every = short_reviews(reviews, every_rating=True)
    assert every.source_reviews == 6
    assert [int(re.search(r"\d", text)[0]) for text in every.texts] == list(range(6))
    assert every.labels.tolist() == reviews.labels.tolist()
    assert every.ratings.tolist() == reviews.ratings.tolist()
    # The clearly rated texts among every review's are the check's own, in its order.
    clear = every.clearly_rated()
    assert [text for text, kept in zip(every.texts, clear, strict=True) if kept] == short.texts
    assert every.labels[clear].tolist() == short.labels.tolist()
    assert every.ratings[clear].tolist() == short.ratings.tolist() == [1, 2, 9, 10]


def test_scores_per_part():
    reviews = LabeledReviews(
        ["A dull start there. The middle is long. It ends very well indeed."] * 2,
        np.array([1, 0], dtype=np.int8),
        np.array([10, 1], dtype=np.int8),
    )
    short = short_reviews(reviews)
    assert short.parts == [ENDING, OPENING, ENDING, OPENING]
    # Right on both of the positive review's texts, wrong on the negative review's ending.
    positive = np.array([True, True, True, False])
    scores = np.where(positive, 0.8, 0.2)
    result = short_review_scores(short, scores, positive)
    assert result["texts"] == 4
    assert result["accuracy"] == pytest.approx(3 / 4)
    assert result["accuracy_by_part"] == {ENDING: 0.5, OPENING: 1.0}
    assert result["ece"] == pytest.approx(0.8 - 3 / 4)
    assert short_review_description(short)["texts_by_part"] == {ENDING: 2, OPENING: 2}


_MARKER = re.compile(r"Review (\d+) of (train/\w+) ends here\.")


@pytest.fixture(scope="module")
def marked_imdb(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A tiny corpus whose every review ends with a sentence naming it, and its preparation."""
    marked = [
        replace(r, text=f"{r.text}<br /><br />Review {r.review_id} of {r.folder} ends here.")
        for r in generate_reviews()
    ]
    root = write_directory(marked, tmp_path_factory.mktemp("marked"))
    output = tmp_path_factory.mktemp("marked-prepared") / "prepared"
    prepare(root, output, PrepareOptions(workers=1))
    return root, output


def test_the_check_reads_the_clearly_rated_validation_reviews_only(marked_imdb):
    root, prepared = marked_imdb
    _, validation = training_and_validation(read_reviews(root, "train"), prepared)
    short = short_reviews(validation)

    endings = [text for text, part in zip(short.texts, short.parts, strict=True) if part == ENDING]
    named = [_MARKER.search(text).groups() for text in endings]
    validation_reviews = {
        _MARKER.search(text).groups(): rating
        for text, rating in zip(validation.texts, validation.ratings.tolist(), strict=True)
    }
    clear = {review for review, rating in validation_reviews.items() if rating <= 2 or rating >= 9}
    assert clear and len(clear) < len(validation_reviews)
    assert sorted(named) == sorted(clear)  # one ending from each, from no other review
    assert short.source_reviews == len(clear)
    for text, label in zip(short.texts, short.labels.tolist(), strict=True):
        assert MIN_WORDS <= len(text.split()) <= MAX_WORDS
        assert label in (0, 1)
    again = short_reviews(training_and_validation(read_reviews(root, "train"), prepared)[1])
    assert again.texts == short.texts and again.labels.tolist() == short.labels.tolist()
