"""Review text → tokens: HTML, case, punctuation, stopwords, stemming, and the seed's output."""

from __future__ import annotations

import json
import re
import time
from dataclasses import replace
from pathlib import Path

import pytest
from bs4 import BeautifulSoup, ParserRejectedMarkup
from bs4.builder._htmlparser import BeautifulSoupHTMLParser, HTMLParserTreeBuilder
from hypothesis import given, settings
from hypothesis import strategies as st
from nltk.stem.porter import PorterStemmer
from preprocess import NEGATIONS, PreprocessingSettings, Tokenizer, load_stopwords, strip_html
from seed_preprocessing import review_to_words

SAMPLE_REVIEWS = Path(__file__).with_name("data") / "sample_reviews.json"
TOKEN = re.compile(r"[a-z0-9]+")


# Word by word, as the first release read reviews: negations kept, the seed's stopword list
# drops them. The default's negation scopes and kept stopwords: tests/test_negation_scope.py.
WORD_BY_WORD = PreprocessingSettings(kept_stopwords=(), negation_scope=False)
tokenize = Tokenizer(WORD_BY_WORD)
tokenize_like_seed = Tokenizer(replace(WORD_BY_WORD, keep_negations=False))


def _sample_reviews() -> list[dict]:
    return json.loads(SAMPLE_REVIEWS.read_text(encoding="utf-8"))["reviews"]


# --- One behaviour at a time ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        # A tag separates words; the seed glued them ("wonderfulact").
        ("Wonderful<br />Acting", ["wonder", "act"]),
        ("Wonderful<br /><br />Acting", ["wonder", "act"]),
        ("Wonderful<BR>Acting<br/>Plot", ["wonder", "act", "plot"]),
        ("<i>Brilliant</i><b>acting</b>", ["brilliant", "act"]),
        ("<p>Brilliant<p>acting</p>", ["brilliant", "act"]),
        ("Brilliant <!-- a comment --> acting", ["brilliant", "act"]),
        ("<SPOILER>Brilliant</SPOILER>", ["brilliant"]),
        # Entities are decoded, with or without their semicolon.
        ("Tom &amp; Jerry", ["tom", "jerri"]),
        ("&quot;Brilliant&quot;", ["brilliant"]),
        ("&copy 2001 Studio", ["2001", "studio"]),
        ("AT&T", ["att"]),  # BeautifulSoup drops a bare "&" ending the text
        ("AT&T rocks", ["rock"]),  # and keeps it elsewhere ("at" and "t" are stopwords)
        ("I <3 it", ["3"]),
        ("a < b > c", ["b", "c"]),
    ],
)
def test_markup_is_removed_and_separates_words(text: str, tokens: list[str]):
    assert tokenize(text) == tokens


def test_case_is_folded():
    assert tokenize("GREAT Great great gReAt") == ["great"] * 4


def test_punctuation_splits_words_and_is_dropped():
    assert tokenize("great!!!...movie,excellent;plot?(really)") == [
        "great",
        "movi",
        "excel",
        "plot",
        "realli",
    ]
    assert tokenize("The director's cut -- 10/10, in 1999.") == [
        "director",
        "cut",
        "10",
        "10",
        "1999",
    ]


def test_stopwords_are_dropped():
    assert tokenize("The plot of the film and the acting") == ["plot", "film", "act"]
    assert tokenize("It is what it is, and they were there.") == []


def test_words_are_porter_stemmed():
    assert tokenize("running runs ran movies generously") == ["run", "run", "ran", "movi", "gener"]


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        # Only ASCII letters and digits make words, as in the seed: accents split them.
        ("café naïve Zürich", ["caf", "na", "z", "rich"]),
        ("Pokémon (1998)", ["pok", "mon", "1998"]),
        # Full-width letters, an Arabic-Indic and a CJK digit.
        ("\uff47\uff4f\uff4f\uff44 \u0663 \u4e09 movie", ["movi"]),
        ("great😍movie 😍😡👎", ["great", "movi"]),
        ("שלום film مرحبا", ["film"]),  # right-to-left scripts
        ("\u200bgreat\u200f\u202emovie", ["great", "movi"]),  # zero-width and bidi controls
    ],
)
def test_non_ascii_and_emoji_separate_words(text: str, tokens: list[str]):
    assert tokenize(text) == tokens


@pytest.mark.parametrize("text", ["", " ", "   \n\t\r  ", "<br />", "<br /><br />\n", "😍", "..."])
def test_empty_text_gives_no_tokens(text: str):
    assert tokenize(text) == []


def test_text_of_only_stopwords_gives_no_tokens():
    assert tokenize_like_seed("I am not what you were, nor are they.") == []


def test_negations_are_kept_or_dropped_by_the_setting():
    text = "This is not good, it isn't great, no way, nor fun, and it didn't work."
    assert tokenize(text) == [
        "not",
        "good",
        "isn",
        "great",
        "no",
        "way",
        "nor",
        "fun",
        "didn",
        "work",
    ]
    assert tokenize_like_seed(text) == ["good", "great", "way", "fun", "work"]


def test_negations_are_stopwords_that_the_stemmer_leaves_alone():
    # Otherwise keeping them would change nothing, or keep them under another name.
    assert set(load_stopwords()) >= NEGATIONS
    stemmer = PorterStemmer()
    assert {word: stemmer.stem(word) for word in NEGATIONS} == {word: word for word in NEGATIONS}


def test_the_stopword_list_is_nltks_english_list():
    words = load_stopwords()
    assert len(words) == len(set(words)) == 179
    assert {"i", "the", "not", "don't", "t", "wouldn"} <= set(words)


def test_a_long_run_of_y_is_stemmed_without_recursion_error():
    # NLTK before 3.10 resolved "y" recursively: 1,000 of them raised RecursionError.
    [stem] = tokenize("y" * 5_000)
    assert stem.startswith("yyyy")


def test_one_megabyte_word_is_tokenized_quickly():
    word = "ab" * 500_000 + "ational"
    started = time.perf_counter()
    tokens = tokenize(f"{word} {word}")
    assert time.perf_counter() - started < 10
    assert len(tokens) == 2
    assert tokens[0] == tokens[1]
    assert tokens[0].startswith("abab")


# --- strip_html: BeautifulSoup's text, in linear time --------------------------------------
# strip_html turns every "<br />" into a space first and returns text with no other markup as
# it is. Other text gets what BeautifulSoup(text, "html.parser").get_text(" ") gives, read from
# html.parser's events without BeautifulSoup's tree, with one change: markup still open where
# the text ends stays text (html.parser's close() is quadratic there, CVE-2025-6069).

LINE_BREAK = "<br />"
OTHER_MARKUP = re.compile(r"<[A-Za-z/!?]|&[#A-Za-z]")


class _OpenMarkupAsText(BeautifulSoupHTMLParser):
    """BeautifulSoup's parser with strip_html's one change: markup open at the end is text."""

    def close(self) -> None:
        if "<" in self.rawdata:
            self.handle_data(self.rawdata)
            self.rawdata = ""
        super().close()


class _OpenMarkupAsTextBuilder(HTMLParserTreeBuilder):
    def feed(self, markup: str) -> None:
        super().feed(markup, _parser_class=_OpenMarkupAsText)


def _soup_text(text: str) -> str:
    return BeautifulSoup(text, "html.parser").get_text(" ")


def _soup_tokens(text: str) -> list[str]:
    return TOKEN.findall(_soup_text(text).lower())


def _our_tokens(text: str) -> list[str]:
    return TOKEN.findall(strip_html(text).lower())


TRICKY_MARKUP = [
    "AT&T and Q&A",
    "&copy 2001",
    "&copy; 2001",
    "&amp;&lt;&gt;&quot;",
    "caf&eacute; &#233;t&#xe9; &#x e9;",
    "&#99999999999; &#0; &#",
    "I <3 this, <3",
    "a < b and c > d",
    "x <!-- hidden --> y <!-- unterminated",
    "<i>italic</i>word",
    "one<BR>two<Br/>three<br />four",
    "<p>a</p><p>b</p>",
    "<![CDATA[foo]]>bar <!DOCTYPE html> <?php echo 1 ?>",
    "<script>a<br />b</script>c<style>x</style>",
    "a</b c </",
    "<a href='x<br />y'>z</a>",
    "<grin> <sighs> <SPOILER>text</SPOILER>",
    "\r\nline\rbreaks\x00",
]

# Each exercises one of BeautifulSoup's rules that strip_html keeps.
NORMAL_MARKUP = [
    "<p>First paragraph.</p>\n<p>Second, <i>in italics</i> and <b>bold</b>.</p>",
    "<p>one<p>two<p>three",
    "<SPOILER>The butler did it.</SPOILER> Great <EM>movie</em>!",
    "<a href=\"http://example.com/?a=1&b=2\" title='t'>link</a> text",
    "<pre>  kept   as is  </pre> <pre> </pre><p> </p>\n<p>\n\t</p><textarea>\n</textarea>x",
    "before<script>var a = '<b>x</b>';</script>after<style>p {}</style>end",
    "<ruby>kan<rt>k</rt><rp>(</rp></ruby> <template><p>hidden</p></template>shown",
    "<div><rt>hidden <b>nested</b></div> shown again",
    "<rt>hidden <![CDATA[kept]]> hidden",
    "<![CDATA[  ]]> <!-- comment --> <!DOCTYPE html> <?xml version='1.0'?> <!bogus>",
    "a<br>b</br>c<hr>d<img src=x>e</img>f<br/>g</br>h",
    "<b><i>unclosed b and i</b> after</i> end",
    "&lt;tag&gt; &amp;amp; &eacute;&#233;&#xE9; &#128;&#150; &#x110000; &#0; &#xD800;",
    "Tom &amp Jerry &notanentity; &A; &c. A&B",
    "  <i> </i>  \n  <b>\n</b>",
]


@pytest.mark.parametrize("text", TRICKY_MARKUP + NORMAL_MARKUP)
def test_strip_html_is_beautifulsoups_text(text: str):
    assert strip_html(text) == _soup_text(text.replace(LINE_BREAK, " "))
    assert _our_tokens(text) == _soup_tokens(text)


def test_strip_html_is_beautifulsoups_text_on_real_reviews():
    for review in _sample_reviews():
        text = review["text"]
        assert strip_html(text) == _soup_text(text.replace(LINE_BREAK, " ")), review["file"]
        assert _our_tokens(text) == _soup_tokens(text), review["file"]


def test_line_breaks_separate_words_even_where_html_parser_would_keep_them_as_text():
    # After a broken "&#", html.parser leaves the rest of the review as text, tags and all
    # (two of the 100,000 IMDB reviews): removing line breaks first keeps "br" out.
    text = "You can't say &#*%, or $@&%.<br /><br />So what did they do?"
    assert "br" in _soup_tokens(text)
    assert _our_tokens(text) == ["you", "can", "t", "say", "or", "so", "what", "did", "they", "do"]


_MARKUP_PIECES = st.sampled_from(
    ["<", ">", "/", "!", "-", "--", "?", "&", "#", ";", "[", "]", " ", "\n", "'", '"', "=",
     "br", "BR", "b", "i", "p", "x", "3", "amp", "lt", "copy", "CDATA", "script", LINE_BREAK,
     "é", "😍", "pre", "rt", "style", "template", "hr", "x41", "150", "DOCTYPE", "\t"]
)  # fmt: skip


@settings(max_examples=500, deadline=None)
@given(st.lists(_MARKUP_PIECES, max_size=40).map("".join))
def test_strip_html_is_beautifulsoup_after_line_breaks(text: str):
    separated = text.replace(LINE_BREAK, " ")
    if OTHER_MARKUP.search(separated) is None:  # the fast path
        assert _our_tokens(text) == _soup_tokens(text)
        return
    try:
        expected = BeautifulSoup(separated, builder=_OpenMarkupAsTextBuilder()).get_text(" ")
    except ParserRejectedMarkup:  # strip_html copes with these: see below
        expected = separated
    assert strip_html(text) == expected


@pytest.mark.parametrize("text", ["<![ ", "<![<![", "review <![x]]> text", "<![<"])
def test_markup_the_html_parser_rejects_still_gives_words(text: str):
    with pytest.raises(ParserRejectedMarkup):
        BeautifulSoup(text, "html.parser")
    assert _our_tokens(text) == TOKEN.findall(text.lower())
    assert isinstance(tokenize(text), list)


def test_markup_open_at_the_end_stays_text():
    text = "Good <!-- never closed, then <i>italics</i> film"
    assert strip_html(text) == text
    # BeautifulSoup takes "<!-- ... <i>" as text too, but parses on after that ">".
    assert _soup_text(text) == "Good <!-- never closed, then <i>italics  film"
    # The one IMDB review with markup open at its end reads the same either way.
    assert strip_html("I loved it </3") == _soup_text("I loved it </3") == "I loved it </3"


# Repeated with no ">" after them: html.parser's close() looked for the ">" again from every
# "<", so 20 KB of "<a " took seconds and a megabyte would take hours (CVE-2025-6069).
OPEN_MARKUP = ["<a ", "<a b='", "<a/", "<!--", "</", "</a", "<?", "<![CDATA[", "<![if ", "</script"]


@pytest.mark.parametrize("unit", OPEN_MARKUP)
@pytest.mark.parametrize("prefix", ["A review. ", "&#; "])  # a broken "&#" goes to close() early
def test_a_megabyte_of_open_markup_is_stripped_quickly_and_kept_as_text(prefix: str, unit: str):
    text = prefix + unit * (1_000_000 // len(unit))
    started = time.perf_counter()
    assert strip_html(text) == text
    assert time.perf_counter() - started < 5


def test_deep_nesting_is_stripped_quickly():
    # BeautifulSoup linked each node in time proportional to the depth: minutes for this.
    depth = 25_000
    text = "<b>" * depth + "word<i></i>" * depth
    started = time.perf_counter()
    assert strip_html(text) == " ".join(["word"] * depth)
    assert time.perf_counter() - started < 5


def test_end_tags_after_many_void_elements_are_stripped_quickly():
    # BeautifulSoup looked each end tag up in a list of the void elements seen: ~10 s here.
    count = 30_000
    text = "<br>" * count + "</p>" * count + "end"
    started = time.perf_counter()
    assert strip_html(text) == "end"
    assert time.perf_counter() - started < 5


def test_a_numeric_reference_too_long_for_int_is_a_replacement_character():
    with pytest.raises(ValueError, match="4300 digits"):  # BeautifulSoup fails
        _soup_text("&#" + "9" * 5_000 + ";")
    assert strip_html("a &#" + "9" * 5_000 + "; b") == "a \ufffd b"
    assert strip_html("&#" + "0" * 5_000 + "65;") == _soup_text("&#" + "0" * 4_000 + "65;") == "A"


# --- The seed's output ----------------------------------------------------------------------


def _with_tags_spaced(review: str) -> str:
    """The review with a space each side of every tag: the seed's output minus its word gluing."""
    return re.sub(r"(<[^>]*>)", r" \1 ", review)


def test_sample_covers_markup_non_ascii_and_negations():
    texts = [review["text"] for review in _sample_reviews()]
    assert len(texts) >= 20
    assert sum("<br />" in text for text in texts) >= 5
    assert any(re.search(r"<(?!br /)[A-Za-z/]", text) for text in texts)
    assert any(re.search(r"&[#A-Za-z]", text) for text in texts)
    assert any(re.search(r"[^\x00-\x7f]", text) for text in texts)
    assert sum(bool(re.search(r"\b(not|no|nor)\b|n't", text)) for text in texts) >= 5


def test_same_tokens_as_the_seed_on_real_reviews():
    """With the seed's stopwords, only the deliberate change differs: tags separate words."""
    for review in _sample_reviews():
        text = review["text"]
        assert tokenize_like_seed(text) == review_to_words(_with_tags_spaced(text)), review["file"]


def test_the_seed_glued_words_at_tags_where_we_separate_them():
    changed = [
        review["file"]
        for review in _sample_reviews()
        if tokenize_like_seed(review["text"]) != review_to_words(review["text"])
    ]
    assert changed, "the sample should show the deliberate change"
    unchanged_without_markup = [
        review["file"]
        for review in _sample_reviews()
        if "<" not in review["text"]
        and tokenize_like_seed(review["text"]) == review_to_words(review["text"])
    ]
    assert unchanged_without_markup
    assert tokenize_like_seed("great<br />The end") == ["great", "end"]
    assert review_to_words("great<br />The end") == ["greatth", "end"]


def test_keeping_negations_only_adds_the_negation_words():
    added = 0
    for review in _sample_reviews():
        kept = tokenize(review["text"])
        assert [word for word in kept if word not in NEGATIONS] == tokenize_like_seed(
            review["text"]
        ), review["file"]
        added += sum(word in NEGATIONS for word in kept)
    assert added > 0


# --- Any input ------------------------------------------------------------------------------

_CONTROL = st.characters(categories=["Cc", "Cf", "Zl", "Zp"])
_EMOJI = st.characters(min_codepoint=0x1F300, max_codepoint=0x1FAFF)
_RIGHT_TO_LEFT = st.characters(min_codepoint=0x0590, max_codepoint=0x06FF)
_MARKUP = st.lists(
    st.sampled_from(
        ["<br />", "<i>", "</i>", "<p>", "<!--", "-->", "&amp;", "&#", "<![", "<", ">"]
    ),
    max_size=30,
).map("".join)

ANY_TEXT = st.one_of(
    st.text(),
    st.text(_CONTROL),
    st.text(_EMOJI),
    st.text(_RIGHT_TO_LEFT),
    st.text(st.sampled_from("0123456789 ")),
    _MARKUP,
    st.lists(st.one_of(st.text(), _MARKUP, st.text(_EMOJI)), max_size=5).map(" ".join),
)


@settings(max_examples=400, deadline=None)
@given(ANY_TEXT)
def test_any_text_gives_a_list_of_ascii_words(text: str):
    for tokenizer in (tokenize, tokenize_like_seed):
        tokens = tokenizer(text)
        assert isinstance(tokens, list)
        assert all(isinstance(token, str) and TOKEN.fullmatch(token) for token in tokens)


@settings(max_examples=100, deadline=None)
@given(st.text(st.sampled_from("0123456789 \n"), min_size=1))
def test_digits_are_words(text: str):
    assert tokenize_like_seed(text) == text.split()
