"""Vocabulary and encoding: ids, padding, truncation, out-of-vocabulary words, lengths, JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from preprocess import NEGATIONS, OOV_ID, PAD_ID, PreprocessingSettings, Vocabulary

SETTINGS = PreprocessingSettings(max_length=5)
DOCUMENTS = [
    ["great", "film", "great", "act"],
    ["bad", "film", "act"],
    ["great", "plot", "zebra"],
]
# Counts: great 3, act 2, film 2, bad 1, plot 1, zebra 1.


def _vocabulary(size: int = 100, settings: PreprocessingSettings = SETTINGS) -> Vocabulary:
    return Vocabulary.build(DOCUMENTS, size, settings)


def test_padding_and_out_of_vocabulary_have_the_first_ids():
    assert (PAD_ID, OOV_ID) == (0, 1)


def test_most_frequent_words_come_first_and_ties_are_alphabetical():
    vocabulary = _vocabulary()
    assert vocabulary.words == ["great", "act", "film", "bad", "plot", "zebra"]
    assert [vocabulary.ids([word]) for word in vocabulary.words] == [[2], [3], [4], [5], [6], [7]]
    assert len(vocabulary) == 8  # padding and out-of-vocabulary included


def test_size_keeps_the_most_frequent_words():
    vocabulary = _vocabulary(size=3)
    assert vocabulary.words == ["great", "act", "film"]
    assert len(vocabulary) == 5
    assert vocabulary.ids(["bad", "zebra", "film"]) == [OOV_ID, OOV_ID, 4]


def test_building_does_not_depend_on_document_order():
    assert Vocabulary.build(DOCUMENTS[::-1], 4, SETTINGS).words == _vocabulary(4).words


@pytest.mark.parametrize("size", [0, -1])
def test_size_must_be_positive(size: int):
    with pytest.raises(ValueError, match="at least 1"):
        _vocabulary(size)


def test_short_review_is_padded_and_keeps_its_length():
    assert _vocabulary().encode(["great", "film"]) == ([2, 4, 0, 0, 0], 2)


def test_long_review_is_truncated_to_max_length():
    tokens = ["great", "act", "film", "bad", "plot", "zebra", "great"]
    assert _vocabulary().encode(tokens) == ([2, 3, 4, 5, 6], 5)
    assert _vocabulary().ids(tokens) == [2, 3, 4, 5, 6]


def test_review_of_exactly_max_length_is_neither_padded_nor_truncated():
    assert _vocabulary().encode(["zebra"] * 5) == ([7] * 5, 5)


def test_empty_review_is_all_padding_with_length_zero():
    assert _vocabulary().encode([]) == ([0] * 5, 0)
    assert _vocabulary().ids([]) == []


def test_unknown_words_get_the_out_of_vocabulary_id():
    assert _vocabulary().encode(["great", "unseen", "", "GREAT"]) == ([2, 1, 1, 1, 0], 4)


def test_json_round_trip_keeps_words_settings_and_encoding(tmp_path: Path):
    settings = PreprocessingSettings(keep_negations=False, max_length=7)
    vocabulary = Vocabulary(["great", "café", "film"], settings)
    path = tmp_path / "vocabulary.json"
    vocabulary.save(path)

    data = json.loads(path.read_text(encoding="utf-8"))  # plain JSON, no pickle
    assert data["words"] == ["great", "café", "film"]
    assert data["settings"]["keep_negations"] is False
    assert data["settings"]["max_length"] == 7
    assert "café" in path.read_text(encoding="utf-8")

    loaded = Vocabulary.load(path)
    assert loaded.words == vocabulary.words
    assert loaded.settings == settings
    tokens = ["film", "café", "unseen"]
    assert loaded.encode(tokens) == vocabulary.encode(tokens) == ([4, 3, 1, 0, 0, 0, 0], 3)


def test_settings_round_trip_through_json():
    settings = PreprocessingSettings(keep_negations=False, max_length=42)
    data = json.loads(json.dumps(settings.to_json()))
    assert PreprocessingSettings.from_json(data) == settings
    assert isinstance(data["stopwords"], list)
    assert len(data["stopwords"]) == 179


def test_settings_refuse_what_they_cannot_do():
    with pytest.raises(ValueError, match="max_length"):
        PreprocessingSettings(max_length=0)
    with pytest.raises(ValueError, match="stemmer"):
        PreprocessingSettings(stemmer="snowball")


def test_negation_setting_decides_the_dropped_words():
    kept = PreprocessingSettings(keep_negations=True).dropped_words
    dropped = PreprocessingSettings(keep_negations=False).dropped_words
    assert "not" in dropped and "not" not in kept
    assert dropped - kept == NEGATIONS
    assert "the" in kept and "the" in dropped


_WORDS = st.text(alphabet="abcdef", min_size=1, max_size=3)


@settings(max_examples=200, deadline=None)
@given(
    documents=st.lists(st.lists(_WORDS, max_size=20), max_size=10),
    size=st.integers(1, 30),
    max_length=st.integers(1, 40),
    tokens=st.lists(st.one_of(_WORDS, st.text(max_size=5)), max_size=60),
)
def test_encoding_always_stays_within_bounds(
    documents: list[list[str]], size: int, max_length: int, tokens: list[str]
):
    vocabulary = Vocabulary.build(documents, size, PreprocessingSettings(max_length=max_length))
    ids, length = vocabulary.encode(tokens)
    assert len(ids) == max_length
    assert 0 <= length <= max_length
    assert length == min(len(tokens), max_length)
    assert all(0 <= word_id < len(vocabulary) for word_id in ids)
    assert PAD_ID not in ids[:length]
    assert ids[length:] == [PAD_ID] * (max_length - length)
    assert len(vocabulary) <= size + 2


def test_plain_word_ids_lead_each_negated_word_to_its_plain_word():
    vocabulary = Vocabulary(["good", "not_good", "not_dull", "film", "not"], SETTINGS)
    good, not_good, not_dull, film, negation = vocabulary.ids(
        ["good", "not_good", "not_dull", "film", "not"]
    )
    plain = vocabulary.plain_word_ids()
    assert len(plain) == len(vocabulary)
    assert plain[not_good] == good
    assert plain[not_dull] == OOV_ID  # "dull" is not in the vocabulary
    assert plain[good] == plain[film] == plain[negation] == PAD_ID  # no negated words
    assert plain[PAD_ID] == plain[OOV_ID] == PAD_ID
