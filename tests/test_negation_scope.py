"""The default preprocessing's reading of opinions: negation scopes and the stopwords it keeps."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st
from preprocess import (
    NEGATED_PREFIX,
    SENTIMENT_STRUCTURE_WORDS,
    PreprocessingSettings,
    Tokenizer,
    Vocabulary,
)

tokenize = Tokenizer(PreprocessingSettings())
# The negation and stopword tests read every clause, even of a short text with a "but".
every_clause = Tokenizer(PreprocessingSettings(contrast_max_words=0))


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        # The words after a negation, up to clause punctuation, are read as negated.
        ("This was not a good film.", ["not", "not_good", "not_film"]),
        ("Not good. Great ending", ["not", "not_good", "great", "end"]),
        ("no fun, great cast", ["no", "not_fun", "great", "cast"]),
        ("Never boring; funny", ["never", "not_bore", "funni"]),
        ("cannot recommend it!", ["cannot", "not_recommend"]),
        ("Nothing enjoyable about it", ["noth", "not_enjoy"]),
        ("none of it works", ["none", "not_work"]),
        # "but" ends the scope and is kept: the clause after it is not negated.
        ("not funny but moving", ["not", "not_funni", "but", "move"]),
        # "not only X but Y" praises X.
        ("Not only funny but moving", ["not", "onli", "funni", "but", "move"]),
    ],
)
def test_a_negation_marks_the_words_of_its_clause(text: str, tokens: list[str]):
    assert every_clause(text) == tokens


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("I didn't like it", ["not", "not_like"]),
        ("I can't recommend it", ["not", "not_recommend"]),
        ("It won't work", ["not", "not_work"]),
        ("It isn\u2019t good", ["not", "not_good"]),  # a phone's curly apostrophe
        ("It ain't good", ["not", "not_good"]),
        # Typed without the apostrophe, the contraction still opens a scope.
        ("dont waste your time", ["dont", "not_wast", "not_time"]),
        ("it wasnt good", ["wasnt", "not_good"]),
    ],
)
def test_contractions_of_not_negate(text: str, tokens: list[str]):
    assert tokenize(text) == tokens


def test_stopwords_that_structure_an_opinion_are_kept_and_the_rest_dropped():
    assert every_clause("The first half is too slow, but it is very good") == [
        "first",
        "half",
        "too",
        "slow",
        "but",
        "veri",
        "good",
    ]
    assert set(SENTIMENT_STRUCTURE_WORDS) <= set(PreprocessingSettings().stopwords)
    assert not set(SENTIMENT_STRUCTURE_WORDS) & PreprocessingSettings().dropped_words


def test_without_negation_scope_words_are_read_one_by_one():
    plain = Tokenizer(PreprocessingSettings(negation_scope=False))
    assert plain("This was not a good film, but fun") == ["not", "good", "film", "but", "fun"]
    assert plain("I didn't like it") == ["didn", "like"]


def test_vocabularies_saved_before_the_settings_existed_read_reviews_as_they_did():
    saved = PreprocessingSettings().to_json()
    del saved["kept_stopwords"], saved["negation_scope"]
    settings = Vocabulary.from_json({"settings": saved, "words": []}).settings
    assert settings.kept_stopwords == ()
    assert settings.negation_scope is False
    assert Tokenizer(settings)("It was not very good, but fun") == ["not", "good", "fun"]


def test_vocabularies_saved_before_the_negative_pronouns_opened_scopes_read_as_they_did():
    saved = PreprocessingSettings().to_json()
    del saved["negation_openers"]
    settings = Vocabulary.from_json({"settings": saved, "words": []}).settings
    assert Tokenizer(settings)("nothing good, not good") == ["noth", "good", "not", "not_good"]
    assert tokenize("nothing good, not good") == ["noth", "not_good", "not", "not_good"]


def test_the_settings_round_trip_through_json():
    settings = PreprocessingSettings(kept_stopwords=("but",), negation_scope=False)
    assert PreprocessingSettings.from_json(settings.to_json()) == settings
    assert PreprocessingSettings.from_json(PreprocessingSettings().to_json()).negation_scope


NEGATED_OR_PLAIN_WORD = re.compile(rf"({NEGATED_PREFIX})?[a-z0-9]+")


@given(st.text(alphabet=st.sampled_from(list("ab n't.,!?;:()'\u2019NOT")), max_size=200))
def test_any_text_gives_words_or_negated_words(text: str):
    for token in tokenize(text):
        assert NEGATED_OR_PLAIN_WORD.fullmatch(token)


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        # The clause before "but", back to the sentence's start, is dropped; "but" is kept.
        ("The film is boring, but the ending is interesting.", ["but", "end", "interest"]),
        (
            "Great cast. The plot drags but the ending works",
            ["great", "cast", "but", "end", "work"],
        ),
        ("Dull, but funny, but long", ["but", "but", "long"]),
        # An "although" or "though" clause is dropped up to its punctuation.
        ("Although the movie was dull, the script was funny.", ["script", "funni"]),
        ("It was fun, though slow.", ["fun"]),
        # Negations are marked first: what is left of them keeps its scope.
        ("It is not bad, but not good either", ["but", "not", "not_good", "not_either"]),
    ],
)
def test_in_a_short_text_the_clause_a_contrast_overrides_is_dropped(text: str, tokens: list[str]):
    assert tokenize(text) == tokens


def test_a_long_text_keeps_the_clause_before_but():
    long_text = "The film is boring, but the ending is interesting. " + "A plot summary. " * 20
    assert tokenize(long_text)[:5] == ["film", "bore", "but", "end", "interest"]
    assert Tokenizer(PreprocessingSettings(contrast_max_words=0))("Boring, but interesting") == [
        "bore",
        "but",
        "interest",
    ]


def test_vocabularies_saved_before_the_contrast_rule_read_every_clause():
    saved = PreprocessingSettings().to_json()
    del saved["contrast_max_words"]
    settings = Vocabulary.from_json({"settings": saved, "words": []}).settings
    assert settings.contrast_max_words == 0
    assert Tokenizer(settings)("Boring, but interesting") == ["bore", "but", "interest"]
    with pytest.raises(ValueError, match="contrast_max_words"):
        PreprocessingSettings(contrast_max_words=-1)
