"""The seed project's `review_to_words`, kept verbatim as the reference our Tokenizer matches.

Only two things differ from the seed: `nltk.download` is gone (nothing downloads at
run time), and `stopwords` reads the stopword list the project carries (NLTK's own
English list) through NLTK's word-list corpus reader, as `nltk.corpus.stopwords` does,
so the benchmark's figure for the seed stays honest: it reads the file for every word.
"""

import re

import nltk
from bs4 import BeautifulSoup
from nltk.corpus.reader import WordListCorpusReader
from nltk.stem.porter import PorterStemmer
from preprocess import STOPWORDS_FILE


class _ProjectStopwords(WordListCorpusReader):
    """`nltk.corpus.stopwords`, reading the project's file for the language "english"."""

    def words(self, fileids: str = "english", **options) -> list[str]:
        if fileids != "english":
            raise ValueError(f"the project carries no {fileids!r} stopword list")
        return super().words(STOPWORDS_FILE.name, **options)


# NLTK reads corpora only from its data path.
nltk.data.path.append(str(STOPWORDS_FILE.parent))
stopwords = _ProjectStopwords(str(STOPWORDS_FILE.parent), [STOPWORDS_FILE.name])


# fmt: off
def review_to_words(review):
    stemmer = PorterStemmer()  # noqa: F841 - unused in the seed too
    text = BeautifulSoup(review, "html.parser").get_text() # Remove HTML tags
    text = re.sub(r"[^a-zA-Z0-9]", " ", text.lower()) # Convert to lower case
    words = text.split() # Split string into words
    words = [w for w in words if w not in stopwords.words("english")] # Remove stopwords
    words = [PorterStemmer().stem(w) for w in words] # stem
    return words
# fmt: on
