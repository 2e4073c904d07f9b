"""Explanations: the n-gram branch's exact shares, the LSTM's integrated gradients, shares that
add up to the logit, words mapped back to the characters of the text, and the handlers'
`explain` member."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator

import pytest
import torch
from model_artifacts import NEGATIVE_WORDS, POSITIVE_WORDS, write_model_dir
from preprocess import PreprocessingSettings, Tokenizer

from contract.layout import MODEL_SOURCE_DIR
from sentiment import inference_toolkit
from sentiment.evaluation import torch_threads
from sentiment.model_loader import ServedModel, import_isolated, load_model_dir

network = import_isolated(MODEL_SOURCE_DIR, "network")
explanation = import_isolated(MODEL_SOURCE_DIR, "explanation")

JSON = "application/json"
VOCABULARY_SIZE = 12


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread() -> Iterator[None]:
    with torch_threads(1):
        yield


def _network(negation_flips: bool = True, length_aware: bool = True, seed: int = 0):
    """Both branches with random weights, bigrams, and negated words (ids 9, 10, 11 are
    "not_" of ids 2, 3 and of a word outside the vocabulary)."""
    config = network.NetworkConfig(
        vocabulary_size=VOCABULARY_SIZE,
        embedding_dim=6,
        hidden_dim=5,
        bigrams=4,
        dropout=0.0,
        negation_flips=negation_flips,
        length_aware_fusion=length_aware,
    )
    torch.manual_seed(seed)
    model = network.SentimentNetwork(config)
    with torch.no_grad():
        pairs = [(2, 3), (3, 4), (4, 2), (9, 5)]
        model.bigram_keys.copy_(torch.tensor(sorted(a * VOCABULARY_SIZE + b for a, b in pairs)))
        model.ngram_ratios.uniform_(-1, 1)
        model.ngram_weights.weight.uniform_(-1, 1)
        model.ngram_bias.fill_(0.3)
        # An LSTM whose logit moves by whole units, as a trained one's does.
        model.lstm_head.weight.uniform_(-4, 4)
        model.embedding.weight.mul_(3)
        if negation_flips:
            model.plain_ids[9], model.plain_ids[10], model.plain_ids[11] = 2, 3, 1
        model.fusion.weight.copy_(
            torch.tensor([[0.7, 0.6, 0.3, -0.2, 0.1]])[:, : config.fusion_width]
        )
        model.fusion.bias.fill_(-0.25)
    return model.eval()


# Repeated words, repeated bigrams, an unknown word (1), negation scopes of one and two words.
IDS = [2, 3, 4, 2, 3, 1, 9, 5, 7, 10, 11, 8, 9, 4, 2, 6, 2]


@pytest.mark.parametrize("negation_flips", [True, False])
def test_the_ngram_branch_shares_add_up_to_its_logit(negation_flips: bool):
    model = _network(negation_flips)
    ids = torch.tensor(IDS)
    with torch.no_grad():
        shares = model.ngram_word_contributions(ids, len(IDS))
        logit = model.ngram_logit(ids[None], torch.tensor([len(IDS)]))
    assert shares.shape == (len(IDS),)
    torch.testing.assert_close(shares.sum() + model.ngram_bias, logit)


def test_a_term_is_shared_between_its_occurrences_and_a_bigram_between_its_words():
    model = _network(negation_flips=False)
    with torch.no_grad():
        value = model.ngram_weights.weight[:, 0] * model.ngram_ratios
        shares = model.ngram_word_contributions(torch.tensor([5, 6, 5]), 3)
        # Words 5 and 6 form no known bigram; 5 is counted once, half to each occurrence.
        torch.testing.assert_close(shares, torch.stack([value[5] / 2, value[6], value[5] / 2]))
        bigram = VOCABULARY_SIZE + model.bigram_keys.tolist().index(2 * VOCABULARY_SIZE + 3)
        shares = model.ngram_word_contributions(torch.tensor([2, 3]), 2)
        expected = torch.stack([value[2] + value[bigram] / 2, value[3] + value[bigram] / 2])
        torch.testing.assert_close(shares, expected)


def test_integrated_gradients_add_up_to_the_lstm_logit_over_the_empty_reviews():
    model = _network()
    ids = torch.tensor(IDS)
    lengths = torch.tensor([len(IDS)])
    with torch.no_grad():
        gap = model.lstm_logit(ids[None], lengths) - model.lstm_logit(
            torch.zeros_like(ids)[None], lengths
        )
    with torch.enable_grad():
        fine = explanation.lstm_integrated_gradients(model, ids, steps=256)
        default = explanation.lstm_integrated_gradients(
            model, ids, steps=explanation.integration_steps(len(IDS))
        )
    assert gap.abs().item() > 0.5
    # Max pooling switches between positions along the path, so the integrand has kinks and
    # the quadrature converges slowly: within a few % at the default, under 1 % at 256.
    assert abs(fine.sum() - gap[0]) < 0.01 * gap.abs().item()
    assert abs(default.sum() - gap[0]) < 0.06 * gap.abs().item()


def test_gauss_legendre_points_integrate_polynomials_up_to_their_degree_exactly():
    for points in range(1, explanation.MAX_POINTS + 1):
        nodes, weights = explanation.gauss_legendre(points)
        assert ((nodes > 0) & (nodes < 1)).all()
        for degree in range(2 * points):
            assert (weights * nodes**degree).sum().item() == pytest.approx(
                1 / (degree + 1), abs=1e-5
            )


def test_short_texts_get_the_most_points_and_long_reviews_fewer():
    steps = [explanation.integration_steps(length) for length in (1, 20, 100, 500)]
    assert steps == sorted(steps, reverse=True)
    assert steps[0] == explanation.MAX_POINTS and steps[-1] == explanation.MIN_POINTS


@pytest.mark.parametrize("length_aware", [True, False])
def test_the_fusion_slopes_are_the_final_logits_change_per_branch_logit(length_aware: bool):
    model = _network(length_aware=length_aware)
    ids = torch.tensor(IDS)[None]
    lengths = torch.tensor([len(IDS)])
    with torch.no_grad():
        branches = model.branch_logits(ids, lengths)
        slopes = explanation.branch_slopes(model, len(IDS))
        moved = model.fusion(model.fusion_inputs(branches + torch.tensor([[1.0, 2.0]]), lengths))
        torch.testing.assert_close(
            moved - model.fusion(model.fusion_inputs(branches, lengths)),
            (slopes[0] + 2 * slopes[1]).reshape(1, 1),
        )


def test_the_shares_and_the_base_add_up_to_the_final_logit_and_repeat_exactly():
    model = _network()
    ids = torch.tensor(IDS)
    shares, logit = explanation.step_shares(model, ids)
    with torch.no_grad():
        assert logit == pytest.approx(model(ids[None], torch.tensor([len(IDS)])).item())
    again, _ = explanation.step_shares(model, ids)
    assert torch.equal(shares, again)  # deterministic: no sampling, no dropout
    assert shares.shape == (len(IDS),)
    assert (shares != 0).all()


def _words_at(text: str, pieces: list[str]) -> list[str | None]:
    spans = explanation.piece_spans(text, pieces)
    return [None if span is None else text[span[0] : span[1]] for span in spans]


@pytest.mark.parametrize(
    ("text", "words"),
    [
        # Punctuation, case, repeated words: each occurrence its own characters.
        ("Good, GOOD... good!", ["Good", "GOOD", "good"]),
        # Emoji are one code point each, and so is each offset.
        ("🎬 Great 😀 film 👍🏽 great", ["Great", "film", "great"]),
        # Markup: tags, their attributes, comments and scripts hold no page text.
        (
            '<p title="great">Not <b class="great">great</b></p><!-- great -->'
            "<script>great</script> a great<br />end",
            ["Not", "great", "a", "great", "end"],
        ),
        # An entity is decoded before the words are read; the word after it is still found.
        ("Tom &amp; Jerry &eacute;clat", ["Tom", "Jerry", "clat"]),
        # Contractions: "didn't" is read as "did not", and each points into "didn't".
        (
            "I didn't like it, it can\u2019t work",
            ["I", "did", "n't", "like", "it", "it", "ca", "n\u2019t", "work"],
        ),
        # A word glued to digits or letters outside a-z is its own run, as the tokenizer reads it.
        ("naïve 2nd-rate x264", ["na", "ve", "2nd", "rate", "x264"]),
        # Markup left open where the text ends is text.
        ("fine <a href", ["fine", "a", "href"]),
    ],
)
def test_words_point_at_their_characters_in_the_original_text(text: str, words: list[str]):
    pieces, _ = Tokenizer(PreprocessingSettings()).read(text)
    found = [word for word in _words_at(text, pieces) if word is not None]
    assert found == words


def test_a_letter_written_as_a_character_reference_is_not_placed():
    pieces, _ = Tokenizer(PreprocessingSettings()).read("&#103;ood film")
    assert pieces == ["good", "film"]
    assert _words_at("&#103;ood film", pieces) == [None, "film"]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> ServedModel:
    served = load_model_dir(write_model_dir(tmp_path_factory.mktemp("artifact") / "model"))
    with torch.no_grad():  # both branches in the score, so the LSTM's shares count too
        served.model.network.fusion.weight.fill_(1.0)
    return served


def _answer(served: ServedModel, document: object) -> tuple[int, dict | str]:
    response = inference_toolkit.invoke(served, json.dumps(document).encode(), JSON, JSON)
    if response.status != 200:
        return response.status, response.body.decode().split("\n", 1)[0]
    return 200, json.loads(response.body)


REVIEW = (
    f"The {POSITIVE_WORDS[0].title()} film, and an {NEGATIVE_WORDS[0]} plot... {POSITIVE_WORDS[1]}!"
)


def test_an_explained_verdict_adds_up_and_marks_every_word(served: ServedModel):
    status, plain = _answer(served, {"review": REVIEW})
    status, answer = _answer(served, {"review": REVIEW, "explain": True})
    assert status == 200
    explained = answer.pop("explanation")
    assert answer == plain  # the verdict itself is unchanged
    assert explained["method"] == explanation.METHOD
    assert 1 / (1 + math.exp(-explained["logit"])) == pytest.approx(plain["score"], abs=1e-5)
    words = explained["words"]
    read = [word for word in words if word["status"] == "read"]
    assert explained["base"] + sum(w["contribution"] for w in read) == pytest.approx(
        explained["logit"], abs=1e-3
    )
    texts = {REVIEW[w["start"] : w["end"]]: w for w in words}
    assert list(texts) == ["The", "Wonderful", "film", "and", "an", "awful", "plot", "brilliant"]
    assert texts["The"] == {**texts["The"], "status": "dropped", "contribution": None}
    assert texts["Wonderful"]["contribution"] > 0 > texts["awful"]["contribution"]
    assert texts["brilliant"]["contribution"] > abs(texts["film"]["contribution"])


def test_explaining_twice_gives_the_same_answer(served: ServedModel):
    assert _answer(served, {"review": REVIEW, "explain": True}) == _answer(
        served, {"review": REVIEW, "explain": True}
    )


def test_words_past_the_reading_limit_are_marked_not_read(served: ServedModel):
    limit = served.model.vocabulary.settings.max_length
    review = " ".join([POSITIVE_WORDS[0]] * limit + [NEGATIVE_WORDS[0]] * 3)
    _, answer = _answer(served, {"review": review, "explain": True})
    statuses = [word["status"] for word in answer["explanation"]["words"]]
    assert statuses == ["read"] * limit + ["not_read"] * 3
    assert [w["contribution"] for w in answer["explanation"]["words"][limit:]] == [None] * 3


def test_a_batch_explains_each_review(served: ServedModel):
    reviews = [REVIEW, "the and of", "😀"]
    _, answer = _answer(served, {"reviews": reviews, "explain": True})
    for review, prediction in zip(reviews, answer["predictions"], strict=True):
        _, alone = _answer(served, {"review": review, "explain": True})
        assert prediction["explanation"]["words"] == alone["explanation"]["words"]
        assert prediction["score"] == pytest.approx(alone["score"], abs=1e-6)
    assert answer["predictions"][2]["explanation"]["words"] == []


@pytest.mark.parametrize("value", ["true", 1, None, [], {}])
def test_an_explain_that_is_not_a_boolean_is_refused(served: ServedModel, value: object):
    assert _answer(served, {"review": REVIEW, "explain": value}) == (
        400,
        '"explain" must be true or false',
    )


def test_explain_false_is_the_plain_answer(served: ServedModel):
    assert _answer(served, {"review": REVIEW, "explain": False}) == _answer(
        served, {"review": REVIEW}
    )
    assert _answer(served, {"explain": True})[0] == 400
