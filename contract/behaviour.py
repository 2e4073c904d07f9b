"""A behaviour suite for the sentiment model, in the spirit of CheckList (Ribeiro et al. 2020).

(Most of its length is the templates and lexicons themselves: data kept beside the few
functions that expand and score them.)

The test reviews are long; the web page's visitors type one to three sentences, with
negations and contrasts. Accuracy on the test split says little about those, so this
suite asks the model short, templated questions, each about one capability, and reports
a pass rate per capability.

Cases are generated from the templates and small lexicons below, deterministically (no
randomness: words are paired by rotating through the lists), so two runs ask exactly the
same questions and figures from different models compare. Positive and negative cases
are balanced wherever a capability has both directions.

The suite takes the answers from a callable, `answer(texts) -> [answer dict, ...]`, with
the inference handlers' answer shape (`{"sentiment", "score", "low_confidence"?}`); a
missing `low_confidence` counts as false. It never imports torch, so it scores anything
that can answer in that shape: the endpoint's handlers, a TF-IDF baseline. It lives in
contract/ because the training job asks it too: the promotion gate (contract/promotion.py)
scores the new and the serving model on it there, and the training source carries contract/.

About 400 lines, over the project's usual size: most of them are the lexicons and templates,
which read best beside the capability each serves.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

POSITIVE = "positive"
NEGATIVE = "negative"
# Right when positive, or when the model says it is unsure: "not bad" is faint praise
# at most, so only a confident "negative" is wrong.
NOT_NEGATIVE = "not_negative"
# Right only when the answer says low_confidence: the text carries no sentiment the
# model can read.
NO_SIGNAL = "no_signal"

CAPABILITIES = (
    "vocabulary",
    "negated_positive",
    "negated_negative",
    "contrast",
    "intensifiers",
    "diminishers",
    "short",
    "no_signal",
)
# Failing cases kept per capability in the report: enough to see the pattern.
FAILURE_EXAMPLES = 5

# Gradable adjectives read naturally after a diminisher ("somewhat boring").
MILD_POSITIVE = (
    "good",
    "enjoyable",
    "entertaining",
    "interesting",
    "funny",
    "charming",
    "engaging",
    "pleasant",
)
MILD_NEGATIVE = (
    "boring",
    "dull",
    "disappointing",
    "tedious",
    "predictable",
    "weak",
    "silly",
    "bland",
)
POSITIVE_ADJECTIVES = (
    *MILD_POSITIVE,
    "excellent",
    "wonderful",
    "superb",
    "brilliant",
    "amazing",
    "fantastic",
    "outstanding",
    "delightful",
)
NEGATIVE_ADJECTIVES = (
    *MILD_NEGATIVE,
    "bad",
    "awful",
    "terrible",
    "horrible",
    "dreadful",
    "atrocious",
    "pathetic",
    "mediocre",
)
# (base form, past tense)
POSITIVE_VERBS = (
    ("love", "loved"),
    ("enjoy", "enjoyed"),
    ("like", "liked"),
    ("adore", "adored"),
    ("admire", "admired"),
    ("appreciate", "appreciated"),
)
NEGATIVE_VERBS = (
    ("hate", "hated"),
    ("dislike", "disliked"),
    ("despise", "despised"),
    ("loathe", "loathed"),
    ("detest", "detested"),
    ("resent", "resented"),
)
# Countable: they take "a" ("a good film").
WORKS = ("film", "movie", "story", "plot", "ending", "script", "performance", "soundtrack")
ASPECTS = (*WORKS, "acting", "direction", "dialogue", "writing", "cast", "cinematography")
INTENSIFIERS = (
    "really",
    "extremely",
    "very",
    "truly",
    "incredibly",
    "absolutely",
    "remarkably",
    "so",
)
DIMINISHERS = ("somewhat", "fairly", "rather", "mildly", "slightly", "moderately")
# Opening clauses for contrasts, by the polarity they carry; the final clause opposes it.
OPENERS = {
    NEGATIVE: (
        "The first half drags",
        "It starts slowly",
        "The opening is clumsy",
        "The trailer looked awful",
    ),
    POSITIVE: (
        "The cast is great",
        "It starts brilliantly",
        "The premise is promising",
        "The first half is fun",
    ),
}
SHORT_REVIEWS = {
    POSITIVE: (
        "Brilliant!",
        "Masterpiece.",
        "Wonderful!",
        "Superb.",
        "Amazing!",
        "Loved it.",
        "Great movie!",
        "Highly recommended.",
        "Absolutely loved it.",
        "A true classic.",
        "Must see!",
        "Pure joy.",
        "Ten out of ten.",
        "Worth every minute.",
        "Best film ever.",
        "Simply beautiful.",
        "Funny and moving.",
        "Great acting.",
        "What a performance!",
        "An instant favourite.",
    ),
    NEGATIVE: (
        "Awful!",
        "Boring.",
        "Terrible.",
        "Rubbish.",
        "Unwatchable.",
        "Hated it.",
        "Worst film ever.",
        "Total waste of time.",
        "Don't bother.",
        "Pure garbage.",
        "Avoid at all costs.",
        "Utterly pointless.",
        "Two hours wasted.",
        "Awful acting.",
        "Painfully dull.",
        "A complete disaster.",
        "Save your money.",
        "Zero stars.",
        "Absolute trash.",
        "Dreadful script.",
    ),
}
NO_SIGNAL_TEXTS = (
    # gibberish
    "asdf qwerty zxcvb",
    "lorem ipsum dolor sit amet",
    "blorp fnord zizzle",
    "qwertyuiop",
    "xkcd wibble quux",
    "hjkl hjkl hjkl",
    # neutral facts
    "The film is 120 minutes long.",
    "It was released in 1994.",
    "The movie was shot in Canada.",
    "I watched it on a Tuesday.",
    "The story takes place in Chicago.",
    "The director also wrote the script.",
    # other languages, which the model was never taught to read
    "Der Film hat mir sehr gut gefallen.",
    "La película es demasiado larga.",
    "Ce film dure deux heures.",
    "Il film è uscito nel 2003.",
    "Ik heb de film gisteren gezien.",
    "Filmen spelades in i Norge.",
    # punctuation and numbers only
    "!!!",
    "...",
    "?!?",
    "123 456 789",
    "1984",
    "- - -",
)


@dataclass(frozen=True)
class Case:
    capability: str
    text: str
    expected: str  # POSITIVE, NEGATIVE, NOT_NEGATIVE or NO_SIGNAL


def _at(words: Sequence, index: int):
    return words[index % len(words)]


def _a(word: str) -> str:
    """The indefinite article for `word` (the lexicons hold no "an hour"-like exceptions)."""
    return "an" if word[0].lower() in "aeiou" else "a"


def _opposite(polarity: str) -> str:
    return NEGATIVE if polarity == POSITIVE else POSITIVE


_LEXICON = {
    POSITIVE: (POSITIVE_ADJECTIVES, MILD_POSITIVE, POSITIVE_VERBS),
    NEGATIVE: (NEGATIVE_ADJECTIVES, MILD_NEGATIVE, NEGATIVE_VERBS),
}


def _vocabulary() -> list[Case]:
    cases = []
    for polarity, (adjectives, _, verbs) in _LEXICON.items():
        for i, adjective in enumerate(adjectives):
            cases.append(Case("vocabulary", f"The {_at(ASPECTS, i)} was {adjective}.", polarity))
            work = _at(WORKS, i + 3)
            cases.append(Case("vocabulary", f"What {_a(adjective)} {adjective} {work}!", polarity))
        for i, (_, past) in enumerate(verbs):
            cases.append(Case("vocabulary", f"I {past} this {_at(WORKS, i)}.", polarity))
    return cases


def _negated_positive() -> list[Case]:
    texts = []
    for i, adjective in enumerate(POSITIVE_ADJECTIVES):
        work, aspect = _at(WORKS, i), _at(ASPECTS, i + 5)
        texts.append(f"This was not {_a(adjective)} {adjective} {work}.")
        negation = "isn't" if i % 2 else "was not"
        texts.append(f"The {aspect} {negation} {adjective}.")
        texts.append(f"There is nothing {adjective} about this {_at(WORKS, i + 2)}.")
    for i, (base, past) in enumerate(POSITIVE_VERBS):
        texts.append(f"Not something I {past}.")
        texts.append(f"I didn't {base} the {_at(ASPECTS, i + 2)} at all.")
        texts.append(f"I did not {base} this {_at(WORKS, i + 4)}.")
    return [Case("negated_positive", text, NEGATIVE) for text in texts]


def _negated_negative() -> list[Case]:
    texts = []
    for i, adjective in enumerate(NEGATIVE_ADJECTIVES):
        texts.append(f"The {_at(ASPECTS, i)} was not {adjective} at all.")
        texts.append(f"This was not {_a(adjective)} {adjective} {_at(WORKS, i + 1)}.")
    for i, (base, _) in enumerate(NEGATIVE_VERBS):
        texts.append(f"I didn't {base} the {_at(ASPECTS, i + 3)}.")
    return [Case("negated_negative", text, NOT_NEGATIVE) for text in texts]


def _contrast(per_direction: int = 20) -> list[Case]:
    """The final clause carries the verdict; its opening clause says the opposite."""
    cases = []
    for verdict in (POSITIVE, NEGATIVE):
        opening = _opposite(verdict)
        for i in range(per_direction):
            first, last = _at(_LEXICON[opening][0], i), _at(_LEXICON[verdict][0], i + 3)
            aspect, other = _at(ASPECTS, i), _at(ASPECTS, i + 4)
            text = (
                f"The {aspect} is {first}, but the {other} is {last}.",
                f"Although the {aspect} was {first}, the {other} was {last}.",
                f"{_at(OPENERS[opening], i)}, but the {other} is {last}.",
            )[i % 3]
            cases.append(Case("contrast", text, verdict))
    return cases


def _graded(capability: str, modifiers: Sequence[str], mild_only: bool) -> list[Case]:
    """Modified adjectives ("really good", "somewhat boring"): the base word's label."""
    cases = []
    for polarity, (adjectives, mild, _) in _LEXICON.items():
        for i, adjective in enumerate(mild if mild_only else adjectives):
            for j in range(2 if mild_only else 1):
                modifier = _at(modifiers, i + 3 * j)
                text = (
                    f"The {_at(ASPECTS, i + j)} was {modifier} {adjective}."
                    if (i + j) % 2 == 0
                    else f"{_a(modifier).capitalize()} {modifier} {adjective} {_at(WORKS, i)}."
                )
                cases.append(Case(capability, text, polarity))
    return cases


def _short() -> list[Case]:
    return [
        Case("short", text, polarity) for polarity, texts in SHORT_REVIEWS.items() for text in texts
    ]


def cases() -> list[Case]:
    """Every case of the suite, in a fixed order."""
    return [
        *_vocabulary(),
        *_negated_positive(),
        *_negated_negative(),
        *_contrast(),
        *_graded("intensifiers", INTENSIFIERS, mild_only=False),
        *_graded("diminishers", DIMINISHERS, mild_only=True),
        *_short(),
        *(Case("no_signal", text, NO_SIGNAL) for text in NO_SIGNAL_TEXTS),
    ]


def is_low_confidence(answer: Mapping) -> bool:
    """The answer's `low_confidence` flag; answers without one are confident."""
    return bool(answer.get("low_confidence", False))


def passes(expected: str, answer: Mapping) -> bool:
    """Whether one answer is right for a case that expects `expected`.

    POSITIVE and NEGATIVE need that label (with or without low_confidence: the label is
    the answer); NOT_NEGATIVE needs positive or low_confidence; NO_SIGNAL needs
    low_confidence.
    """
    sentiment = answer["sentiment"]
    if expected in (POSITIVE, NEGATIVE):
        return sentiment == expected
    if expected == NOT_NEGATIVE:
        return sentiment == POSITIVE or is_low_confidence(answer)
    if expected == NO_SIGNAL:
        return is_low_confidence(answer)
    raise ValueError(f"unknown expectation {expected!r}")


def score_answers(suite: Sequence[Case], answers: Sequence[Mapping]) -> dict:
    """Pass counts and rates per capability and overall, with a few failures each.

    `overall` is the share of all cases passed; `mean_capability_pass_rate` weighs every
    capability alike, whatever its number of cases.
    """
    if len(answers) != len(suite):
        raise ValueError(f"{len(answers)} answers for {len(suite)} cases")
    capabilities: dict[str, dict] = {}
    for case, answer in zip(suite, answers, strict=True):
        entry = capabilities.setdefault(
            case.capability, {"cases": 0, "passed": 0, "low_confidence": 0, "failures": []}
        )
        entry["cases"] += 1
        entry["low_confidence"] += is_low_confidence(answer)
        if passes(case.expected, answer):
            entry["passed"] += 1
        elif len(entry["failures"]) < FAILURE_EXAMPLES:
            entry["failures"].append(
                {
                    "text": case.text,
                    "expected": case.expected,
                    "sentiment": answer["sentiment"],
                    "score": answer["score"],
                    "low_confidence": is_low_confidence(answer),
                }
            )
    for entry in capabilities.values():
        entry["pass_rate"] = entry["passed"] / entry["cases"]
    passed = sum(entry["passed"] for entry in capabilities.values())
    rates = [entry["pass_rate"] for entry in capabilities.values()]
    return {
        "cases": len(suite),
        "passed": passed,
        "pass_rate": passed / len(suite) if suite else 0.0,
        "mean_capability_pass_rate": sum(rates) / len(rates) if rates else 0.0,
        "capabilities": capabilities,
    }


def run_suite(
    answer: Callable[[list[str]], list[dict]], suite: Sequence[Case] | None = None
) -> dict:
    """Ask `answer` every case's text in one call and score the answers (see score_answers).

    `answer` gets every text at once; batching them for an endpoint is its business.
    """
    suite = cases() if suite is None else suite
    return score_answers(suite, answer([case.text for case in suite]))
