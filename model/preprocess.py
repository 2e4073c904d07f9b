"""Review text → tokens → word ids: the one preprocessing shared by training and serving.

`sentiment prepare` runs this module over the corpus, the training job stores its
settings and vocabulary in the model artifact, and the endpoint's inference handlers
load them back from there, so a review is always turned into ids the same way.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bs4 import BeautifulSoup, ParserRejectedMarkup
from nltk.stem.porter import PorterStemmer

PAD_ID = 0
OOV_ID = 1
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

_TOKEN = re.compile(r"[a-z0-9]+")
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
    max_length: int = 500
    stemmer: str = "nltk-porter"

    def __post_init__(self) -> None:
        if self.max_length < 1:
            raise ValueError(f"max_length must be at least 1, got {self.max_length}")
        if self.stemmer != "nltk-porter":
            raise ValueError(f"unknown stemmer {self.stemmer!r}; this code knows 'nltk-porter'")

    @property
    def dropped_words(self) -> frozenset[str]:
        dropped = frozenset(self.stopwords)
        return dropped - NEGATIONS if self.keep_negations else dropped

    def to_json(self) -> dict:
        return {**asdict(self), "stopwords": list(self.stopwords)}

    @classmethod
    def from_json(cls, data: dict) -> PreprocessingSettings:
        return cls(**{**data, "stopwords": tuple(data["stopwords"])})


def strip_html(text: str) -> str:
    """The text BeautifulSoup extracts, with a space wherever a tag stood."""
    text = text.replace(_LINE_BREAK, " ")
    if _MARKUP.search(text) is None:
        return text
    try:
        return BeautifulSoup(text, "html.parser").get_text(" ")
    except ParserRejectedMarkup:
        # html.parser gives up on some broken markup ("<![ "); its characters are not
        # letters or digits, so the text as it is yields the words.
        return text


class Tokenizer:
    """HTML stripped, lower-cased, letters and digits, stopwords dropped, Porter-stemmed."""

    def __init__(self, settings: PreprocessingSettings) -> None:
        self.settings = settings
        self._dropped = settings.dropped_words
        self._stemmer = PorterStemmer()
        # Stemming is the slow step and a corpus repeats the same few thousand words.
        self._stems: dict[str, str] = {}

    def _stem(self, word: str) -> str:
        stem = self._stems.get(word)
        if stem is None:
            if len(self._stems) >= _STEM_CACHE_LIMIT:
                self._stems.clear()
            stem = self._stems[word] = self._stemmer.stem(word)
        return stem

    def __call__(self, text: str) -> list[str]:
        dropped = self._dropped
        stem = self._stem
        words = _TOKEN.findall(strip_html(text).lower())
        return [stem(word) for word in words if word not in dropped]


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
