"""Review text → tokens → word ids: the one preprocessing shared by training and serving.

`sentiment prepare` runs this module over the corpus, the training job stores its
settings and vocabulary in the model artifact, and the endpoint's inference handlers
load them back from there, so a review is always turned into ids the same way. It is one
module, longer than most, on purpose: it travels whole in model.tar.gz's code/, and every
line of it must be the same for training and serving.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from html.parser import HTMLParser
from pathlib import Path

from bs4 import BeautifulSoup
from bs4.builder import HTMLTreeBuilder
from bs4.dammit import EntitySubstitution, UnicodeDammit
from nltk.stem.porter import PorterStemmer

# Where a vocabulary is saved: in the prepared dataset's train/ and in the model directory.
VOCABULARY_FILE = "vocabulary.json"
PAD_ID = 0
OOV_ID = 1
# A review of stopwords only still gets this many steps to read, over padding ids: the LSTM
# needs one. Training (dataset.padded_batch) and serving (inference) both apply it.
MIN_STEPS = 1
_FIRST_WORD_ID = 2

STOPWORDS_FILE = Path(__file__).with_name("stopwords_english.txt")

# NLTK's list drops these, but "not good" and "good" mean opposite things. After the
# tokenizer splits on apostrophes, "didn't" reaches the stopword filter as "didn" + "t".
NEGATIONS = frozenset(
    {
        *("no", "nor", "not"),
        *("ain", "aren", "couldn", "didn", "doesn", "don", "hadn", "hasn", "haven", "isn"),
        *("mightn", "mustn", "needn", "shan", "shouldn", "wasn", "weren", "won", "wouldn"),
    }
)

# Words that open a negation's scope beyond NEGATIONS: "n't" is spelled out as " not" first,
# and visitors often type contractions without the apostrophe.
_CONTRACTION_OPENERS = NEGATIONS | {
    *("never", "cannot", "dont", "didnt", "doesnt", "isnt", "wasnt", "arent", "werent"),
    *("cant", "wont", "couldnt", "wouldnt", "shouldnt", "havent", "hasnt", "hadnt", "aint"),
}
# And the negative pronouns of Potts's negation lexicon ("nothing enjoyable about it");
# measured neutral on the validation reviews (README, Data preparation).
NEGATION_OPENERS = tuple(
    sorted(_CONTRACTION_OPENERS | {"nothing", "none", "nobody", "noone", "nowhere", "neither"})
)
# "not only X but Y" praises X: no scope opens.
_NOT_NEGATING = frozenset({"only", "just"})
# Stopwords that carry the structure of an opinion: contrast ("but"), degree ("too",
# "very", "most") and limitation ("only", "few"). Chosen by hand; measured together with
# the negation scope (README, Data preparation).
SENTIMENT_STRUCTURE_WORDS = (
    *("but", "against", "too", "very", "only", "few", "more", "most", "so", "than", "again"),
    *("off", "over", "same", "just", "all", "such", "should"),
)
# A negation's scope: the words after it up to clause punctuation, a contrast or the next
# negation.
NEGATED_PREFIX = "not_"
_SCOPE_ENDS = frozenset({".", ",", "!", "?", ";", ":", "(", ")", "but"})
# In a short text, the clause a contrast overrides: before "but" back to the sentence's start
# (or the last "but"), and from "although"/"though" to the end of its clause.
_CONTRASTS_BEFORE = frozenset({"but"})
_CONCESSIONS = frozenset({"although", "though"})
_SENTENCE_ENDS = frozenset({".", "!", "?", ";", ":", "(", ")"})
# Built once: the contrast rule tests every short review's pieces against them.
_CONTRAST_WORDS = _CONTRASTS_BEFORE | _CONCESSIONS
_CLAUSE_STARTS = _SENTENCE_ENDS | _CONTRASTS_BEFORE
_CLAUSE_ENDS = _SENTENCE_ENDS | {","}
# Anchored on the apostrophe, so the search skips along the text quickly.
_CONTRACTED_NOT = re.compile(r"n['\u2019]t(?![a-z0-9])")
# What "can't", "won't", "shan't" and "ain't" leave before the " not": not words.
_NOT_STEMS = frozenset({"ca", "wo", "sha", "ai"})

_TOKEN = re.compile(r"[a-z0-9]+")
_TOKEN_OR_PUNCTUATION = re.compile(r"[a-z0-9]+|[.,!?;:()]")
# Markup that BeautifulSoup would change: a tag, a comment, a declaration or an entity.
# Text without it parses to itself, so only such text pays for the parser.
_MARKUP = re.compile(r"<[A-Za-z/!?]|&[#A-Za-z]")
# IMDB reviews separate paragraphs with this tag; it is the only markup most of them have.
_LINE_BREAK = "<br />"
# Serving sees arbitrary words; the stem cache is cleared past this many entries so
# adversarial input cannot grow it without bound.
_STEM_CACHE_LIMIT = 500_000


def load_stopwords(path: Path = STOPWORDS_FILE) -> list[str]:
    """NLTK's English stopword list, carried by the project (nothing downloads at run time)."""
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@dataclass(frozen=True)
class PreprocessingSettings:
    """Everything that decides how text becomes ids; saved with the vocabulary."""

    stopwords: tuple[str, ...] = field(default_factory=lambda: tuple(load_stopwords()))
    keep_negations: bool = True
    # Stopwords kept all the same (see SENTIMENT_STRUCTURE_WORDS).
    kept_stopwords: tuple[str, ...] = SENTIMENT_STRUCTURE_WORDS
    # "n't" read as "not", and each word in a negation's scope stemmed with NEGATED_PREFIX.
    negation_scope: bool = True
    # The words that open a scope (those not dropped as stopwords).
    negation_openers: tuple[str, ...] = NEGATION_OPENERS
    # In a text of at most this many words (0: never), with negation_scope, the clause a
    # "but" or an "although" overrides is dropped (Tokenizer._drop_overridden_clauses).
    contrast_max_words: int = 40
    max_length: int = 500
    stemmer: str = "nltk-porter"

    def __post_init__(self) -> None:
        if self.contrast_max_words < 0:
            raise ValueError(
                f"contrast_max_words must be at least 0, got {self.contrast_max_words}"
            )
        if self.max_length < 1:
            raise ValueError(f"max_length must be at least 1, got {self.max_length}")
        if self.stemmer != "nltk-porter":
            raise ValueError(f"unknown stemmer {self.stemmer!r}; this code knows 'nltk-porter'")

    @property
    def dropped_words(self) -> frozenset[str]:
        dropped = frozenset(self.stopwords) - frozenset(self.kept_stopwords)
        if self.negation_scope:
            dropped |= _NOT_STEMS
        return dropped - NEGATIONS if self.keep_negations else dropped

    def to_json(self) -> dict:
        return {
            **asdict(self),
            "stopwords": list(self.stopwords),
            "kept_stopwords": list(self.kept_stopwords),
            "negation_openers": list(self.negation_openers),
        }

    @classmethod
    def from_json(cls, data: dict) -> PreprocessingSettings:
        # Vocabularies saved before a setting existed were made without it.
        data = {
            "kept_stopwords": (),
            "negation_scope": False,
            "negation_openers": sorted(_CONTRACTION_OPENERS),
            "contrast_max_words": 0,
            **data,
        }
        lists = ("stopwords", "kept_stopwords", "negation_openers")
        return cls(**{**data, **{name: tuple(data[name]) for name in lists}})


def strip_html(text: str) -> str:
    """The text BeautifulSoup(text, "html.parser").get_text(" ") gives: a space where a tag stood.

    Markup still open where the text ends stays text (see _PageText.close).
    """
    text = text.replace(_LINE_BREAK, " ")
    if _MARKUP.search(text) is None:
        return text
    page = _PageText()
    try:
        page.feed(text)
        page.close()
    except AssertionError:
        # html.parser gives up on some broken markup ("<![ "); its characters are not
        # letters or digits, so the text as it is yields the words.
        return text
    return " ".join(page.strings)


# How BeautifulSoup's html.parser tree builder treats elements and strings.
_VOID_ELEMENTS = frozenset(HTMLTreeBuilder.DEFAULT_EMPTY_ELEMENT_TAGS)
_HIDDEN_TEXT_ELEMENTS = frozenset(HTMLTreeBuilder.DEFAULT_STRING_CONTAINERS)  # script, style...
_WHITESPACE_ELEMENTS = frozenset(HTMLTreeBuilder.DEFAULT_PRESERVE_WHITESPACE_TAGS)
_ENTITIES = EntitySubstitution.HTML_ENTITY_TO_CHARACTER
# Past U+10FFFF, so BeautifulSoup makes it U+FFFD.
_OUTSIDE_UNICODE = 0x110000


class _PageText(HTMLParser):
    """The strings get_text(" ") joins, read from html.parser's events without building a tree.

    BeautifulSoup links each new node in time proportional to the nesting depth and looks end
    tags up in a list, so deeply nested markup took minutes per megabyte; here every event
    costs the same. Its rules are kept: a tag or comment ends a string; a string of only
    whitespace becomes one space or newline, except inside <pre> or <textarea>; text inside
    <script>, <style>, <template>, <rt> or <rp> is not page text, but CDATA sections are, even
    there; comments, declarations and processing instructions are dropped; an end tag closes
    the elements opened after its own, and one for a void element seen before ("<br></br>") is
    skipped.
    """

    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)  # references are resolved as BeautifulSoup does
        self.strings: list[str] = []
        self._pieces: list[str] = []  # of the string being read
        self._open: list[str] = []  # open elements, innermost last
        self._open_count: Counter[str] = Counter()
        self._voids_closed: Counter[str] = Counter()  # each skips one later end tag
        self._hiding = 0  # open elements from _HIDDEN_TEXT_ELEMENTS
        self._keeping_whitespace = 0  # open elements from _WHITESPACE_ELEMENTS

    def close(self) -> None:
        # feed() parsed all it could; what is left begins with markup still open where the text
        # ends: "<a " or "<!--" with no ">" after it, or "&amp" ending the text. With a "<" in
        # there, html.parser's close() searches the rest again from every "<": quadratic time
        # (CVE-2025-6069). So such a rest is text; close() keeps open markup as text too, but
        # only up to the next ">", and parses on after it.
        if "<" in self.rawdata:
            self.handle_data(self.rawdata)
            self.rawdata = ""
        super().close()
        self._end_string()

    def _end_string(self, cdata: bool = False) -> None:
        if not self._pieces:
            return
        string = "".join(self._pieces)
        self._pieces.clear()
        if not self._keeping_whitespace and not string.strip(BeautifulSoup.ASCII_SPACES):
            string = "\n" if "\n" in string else " "
        if cdata or not self._hiding:
            self.strings.append(string)

    def _open_element(self, name: str) -> None:
        self._open.append(name)
        self._open_count[name] += 1
        self._hiding += name in _HIDDEN_TEXT_ELEMENTS
        self._keeping_whitespace += name in _WHITESPACE_ELEMENTS

    def _close_element(self, name: str) -> None:
        if not self._open_count[name]:
            return
        closed = None
        while closed != name:
            closed = self._open.pop()
            self._open_count[closed] -= 1
            self._hiding -= closed in _HIDDEN_TEXT_ELEMENTS
            self._keeping_whitespace -= closed in _WHITESPACE_ELEMENTS

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._end_string()
        self._open_element(tag)
        if tag in _VOID_ELEMENTS:
            self._close_element(tag)
            self._voids_closed[tag] += 1

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._end_string()
        self._open_element(tag)
        self._close_element(tag)

    def handle_endtag(self, tag: str) -> None:
        if self._voids_closed[tag]:
            self._voids_closed[tag] -= 1
        else:
            self._end_string()
            self._close_element(tag)

    def handle_data(self, data: str) -> None:
        self._pieces.append(data)

    def handle_entityref(self, name: str) -> None:
        self._pieces.append(_ENTITIES.get(name, "&" + name))

    def handle_charref(self, name: str) -> None:
        hexadecimal = name[0] in "xX"
        digits = (name[1:] if hexadecimal else name).lstrip("0") or "0"
        # Nine digits are past U+10FFFF anyway, and int() refuses decimal numerals of over
        # 4,300 digits: BeautifulSoup raised ValueError on them.
        number = int(digits, 16 if hexadecimal else 10) if len(digits) < 9 else _OUTSIDE_UNICODE
        self._pieces.append(UnicodeDammit.numeric_character_reference(number)[0])

    def handle_comment(self, data: str) -> None:
        self._end_string()

    handle_decl = handle_pi = handle_comment

    def unknown_decl(self, data: str) -> None:
        self._end_string()
        if data[:6].upper() == "CDATA[":
            self._pieces.append(data[6:])
            self._end_string(cdata=True)


class Tokenizer:
    """HTML stripped, lower-cased, letters and digits, stopwords dropped, Porter-stemmed."""

    def __init__(self, settings: PreprocessingSettings) -> None:
        self.settings = settings
        self._dropped = settings.dropped_words
        self._stemmer = PorterStemmer()
        # Stemming is the slow step and a corpus repeats the same few thousand words: each
        # word's token is cached, "" for a dropped word.
        self._tokens: dict[str, str] = {}
        self._negations = frozenset(settings.negation_openers) - self._dropped

    def _token(self, word: str) -> str:
        if len(self._tokens) >= _STEM_CACHE_LIMIT:
            self._tokens.clear()
        dropped = word in self._dropped or not word[0].isalnum()  # or punctuation
        token = self._tokens[word] = "" if dropped else self._stemmer.stem(word)
        return token

    def _tokens_of(self, words: list[str]) -> list[str]:
        """Each word's token, "" where it is dropped."""
        tokens = list(map(self._tokens.get, words))
        if None in tokens:
            tokens = [
                self._token(word) if token is None else token
                for word, token in zip(words, tokens, strict=True)
            ]
        return tokens

    def __call__(self, text: str) -> list[str]:
        return list(filter(None, self.read(text)[1]))

    def read(self, text: str) -> tuple[list[str], list[str]]:
        """The text's pieces (words, and clause punctuation with negation_scope) as the model
        reads them, and each piece's token, "" where it is dropped (explanation.py maps them
        back to the text)."""
        text = strip_html(text).lower()
        if not self.settings.negation_scope:
            pieces = _TOKEN.findall(text)
            return pieces, self._tokens_of(pieces)
        if "n't" in text or "n\u2019t" in text:
            text = _CONTRACTED_NOT.sub(" not", text)
        pieces = _TOKEN_OR_PUNCTUATION.findall(text)
        tokens = self._tokens_of(pieces)
        if not self._negations.isdisjoint(pieces):
            self._mark_negation_scopes(pieces, tokens)
        if not _CONTRAST_WORDS.isdisjoint(pieces):
            self._drop_overridden_clauses(pieces, tokens)
        return pieces, tokens

    def _drop_overridden_clauses(self, pieces: list[str], tokens: list[str]) -> None:
        """In a short text, drop the clause before each "but" and each "although" clause.

        In "The film is boring, but the ending is interesting." the final clause carries the
        verdict, and in a sentence or two nothing else does: the reviews teach neither
        branch that (a strong word wins whatever its clause), so the short text is read as
        its overriding clause (Polanyi & Zaenen 2004, contextual valence shifters; VADER
        halves the words before "but"). Long reviews are read whole: there the clause
        before a "but" is evidence the model learned to weigh.
        """
        words = sum(piece[0].isalnum() for piece in pieces)
        if words > self.settings.contrast_max_words:
            return
        for index, piece in enumerate(pieces):
            if piece in _CONTRASTS_BEFORE:
                start = index - 1
                while start >= 0 and pieces[start] not in _CLAUSE_STARTS:
                    tokens[start] = ""
                    start -= 1
            elif piece in _CONCESSIONS:
                end = index
                while end < len(pieces) and pieces[end] not in _CLAUSE_ENDS:
                    tokens[end] = ""
                    end += 1

    def _mark_negation_scopes(self, pieces: list[str], tokens: list[str]) -> None:
        """Prefix the tokens after each negation, up to the end of its scope."""
        negations = self._negations
        for start in [index for index, piece in enumerate(pieces) if piece in negations]:
            end = start + 1
            if end < len(pieces) and pieces[end] in _NOT_NEGATING:
                continue
            while end < len(pieces) and pieces[end] not in _SCOPE_ENDS:
                if pieces[end] in negations:
                    break
                if tokens[end]:
                    tokens[end] = NEGATED_PREFIX + tokens[end]
                end += 1


class Vocabulary:
    """Word ↔ id. Id 0 is padding, id 1 any word outside the vocabulary."""

    def __init__(self, words: Sequence[str], settings: PreprocessingSettings) -> None:
        self.words = list(words)
        self.settings = settings
        self._ids = {word: index for index, word in enumerate(self.words, start=_FIRST_WORD_ID)}

    def __len__(self) -> int:
        """The number of ids, padding and out-of-vocabulary included."""
        return len(self.words) + _FIRST_WORD_ID

    @classmethod
    def build(
        cls, documents: Iterable[Sequence[str]], size: int, settings: PreprocessingSettings
    ) -> Vocabulary:
        """The `size` most frequent words (ties broken alphabetically, so it is reproducible)."""
        if size < 1:
            raise ValueError(f"vocabulary size must be at least 1, got {size}")
        counts: Counter[str] = Counter()
        for tokens in documents:
            counts.update(tokens)
        ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
        return cls([word for word, _ in ranked[:size]], settings)

    def plain_word_ids(self) -> list[int]:
        """Per id, the id of the same word outside a negation ("not_good" → "good", OOV_ID
        if that word is not in the vocabulary); PAD_ID for the words outside a negation."""
        plain = [PAD_ID] * len(self)
        for word, index in self._ids.items():
            if word.startswith(NEGATED_PREFIX):
                plain[index] = self._ids.get(word[len(NEGATED_PREFIX) :], OOV_ID)
        return plain

    def ids(self, tokens: Sequence[str]) -> list[int]:
        """Word ids of the first `max_length` tokens, unpadded."""
        lookup = self._ids.get
        return [lookup(token, OOV_ID) for token in tokens[: self.settings.max_length]]

    def encode(self, tokens: Sequence[str]) -> tuple[list[int], int]:
        """Ids truncated or padded to `max_length`, and the true (truncated) length."""
        ids = self.ids(tokens)
        return ids + [PAD_ID] * (self.settings.max_length - len(ids)), len(ids)

    def to_json(self) -> dict:
        return {"settings": self.settings.to_json(), "words": self.words}

    @classmethod
    def from_json(cls, data: dict) -> Vocabulary:
        return cls(data["words"], PreprocessingSettings.from_json(data["settings"]))

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_json(), ensure_ascii=False) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> Vocabulary:
        return cls.from_json(json.loads(path.read_text(encoding="utf-8")))
