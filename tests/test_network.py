"""The network: shapes, padding that changes nothing, the LSTM against PyTorch's packed LSTM,
learning on a tiny batch, and the n-gram features."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
from torch import nn

from contract.layout import MODEL_SOURCE_DIR
from sentiment.evaluation import torch_threads
from sentiment.model_loader import import_isolated

network = import_isolated(MODEL_SOURCE_DIR, "network")


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread() -> Iterator[None]:
    # Tiny tensors gain nothing from more threads, and a busy machine makes them slower.
    with torch_threads(1):
        yield


VOCABULARY_SIZE = 12
# The bigrams the n-gram branch knows, as training would pick them; (2, 4) is not one.
KNOWN_BIGRAMS = [(2, 3), (3, 4), (4, 6), (6, 4), (5, 6), (10, 2), (11, 3)]


def _config(**overrides) -> network.NetworkConfig:
    settings = {
        "vocabulary_size": VOCABULARY_SIZE,
        "embedding_dim": 6,
        "hidden_dim": 5,
        "bigrams": len(KNOWN_BIGRAMS),
        "dropout": 0.0,
    }
    return network.NetworkConfig(**(settings | overrides))


def _padded(
    reviews: list[list[int]], width: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    width = width or max(map(len, reviews))
    ids = torch.zeros((len(reviews), width), dtype=torch.long)
    for row, review in enumerate(reviews):
        ids[row, : len(review)] = torch.tensor(review)
    return ids, torch.tensor([len(review) for review in reviews])


def _keys(bigrams: list[tuple[int, int]]) -> torch.Tensor:
    return torch.tensor(sorted(first * VOCABULARY_SIZE + second for first, second in bigrams))


def _bigram_feature(first: int, second: int) -> int:
    return VOCABULARY_SIZE + _keys(KNOWN_BIGRAMS).tolist().index(first * VOCABULARY_SIZE + second)


def _network(config: network.NetworkConfig, seed: int = 0) -> network.SentimentNetwork:
    torch.manual_seed(seed)
    model = network.SentimentNetwork(config)
    with torch.no_grad():  # as after training: both branches matter
        model.bigram_keys.copy_(_keys(KNOWN_BIGRAMS[: config.bigrams]))
        model.ngram_ratios.uniform_(-1, 1)
        model.ngram_ratios[0] = 0.0
        model.ngram_weights.weight.uniform_(-1, 1)
        fusion = torch.tensor([[0.7, 0.6, 0.3, -0.2, 0.1]])
        model.fusion.weight.copy_(fusion[:, : config.fusion_width])
    return model.eval()


REVIEWS = [[2, 3, 4, 5, 6, 7, 8], [9], [4, 4, 10, 2], [11, 3]]


@pytest.mark.parametrize("bidirectional", [True, False])
@pytest.mark.parametrize("layers", [1, 2])
def test_one_logit_per_review_of_mixed_lengths(layers: int, bidirectional: bool):
    model = _network(_config(layers=layers, bidirectional=bidirectional))
    ids, lengths = _padded(REVIEWS)
    with torch.no_grad():
        logits = model(ids, lengths)
        branches = model.branch_logits(ids, lengths)
    assert logits.shape == (len(REVIEWS),)
    assert branches.shape == (len(REVIEWS), 2)
    assert torch.isfinite(logits).all()


@pytest.mark.parametrize("bidirectional", [True, False])
def test_padding_and_batch_neighbours_do_not_change_a_reviews_logit(bidirectional: bool):
    model = _network(_config(layers=2, bidirectional=bidirectional))
    with torch.no_grad():
        batched = model(*_padded(REVIEWS, width=12))
        alone = torch.cat([model(*_padded([review])) for review in REVIEWS])
    torch.testing.assert_close(batched, alone)


def _copy_weights(ours: network.BidirectionalLSTM, reference: nn.LSTM) -> None:
    with torch.no_grad():
        for layer, directions in enumerate(ours.layers):
            for direction, lstm in enumerate(directions):
                suffix = "_reverse" if direction else ""
                for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                    getattr(lstm, f"{name}_l0").copy_(
                        getattr(reference, f"{name}_l{layer}{suffix}")
                    )


@pytest.mark.parametrize("bidirectional", [True, False])
@pytest.mark.parametrize("layers", [1, 2])
def test_lstm_computes_what_nn_lstm_computes_over_a_packed_sequence(
    layers: int, bidirectional: bool
):
    config = _config(layers=layers, bidirectional=bidirectional)
    torch.manual_seed(1)
    ours = network.BidirectionalLSTM(config).eval()
    features = ours.layers[0][0].input_size
    reference = nn.LSTM(
        features,
        config.hidden_dim,
        num_layers=layers,
        bidirectional=bidirectional,
        batch_first=True,
    ).eval()
    _copy_weights(ours, reference)
    lengths = torch.tensor([7, 1, 4, 7, 2])
    inputs = torch.randn(len(lengths), 9, features)  # padding past every review

    packed = nn.utils.rnn.pack_padded_sequence(
        inputs, lengths, batch_first=True, enforce_sorted=False
    )
    with torch.no_grad():
        expected, _ = nn.utils.rnn.pad_packed_sequence(reference(packed)[0], batch_first=True)
        outputs = ours(inputs, lengths)

    directions = 2 if bidirectional else 1
    assert outputs.shape == (len(lengths), 9, directions * config.hidden_dim)
    real = torch.arange(expected.size(1))[None, :] < lengths[:, None]
    torch.testing.assert_close(outputs[:, : expected.size(1)][real], expected[real])


@pytest.mark.parametrize("layers", [1, 2])
def test_serving_in_bfloat16_scores_near_float32_and_leaves_gradients_and_weights_float32(
    layers: int,
):
    model = _network(_config(layers=layers, embedding_dim=16, hidden_dim=24), seed=3)
    ids, lengths = _padded(REVIEWS)
    with torch.no_grad():
        full = model(ids, lengths)
    saved = {name: value.clone() for name, value in model.state_dict().items()}

    model.lstm.serve_in_bfloat16()
    with torch.no_grad():
        reduced = model(ids, lengths)
        neighbours = model(*_padded(REVIEWS, width=12))
    graded = model(ids, lengths)  # explanations take gradients: float32 weights

    assert reduced.dtype == torch.float32
    assert not torch.equal(reduced, full)  # it did score in bfloat16
    torch.testing.assert_close(reduced, full, rtol=0, atol=0.03)
    torch.testing.assert_close(neighbours, reduced, rtol=0, atol=1e-6)
    torch.testing.assert_close(graded.detach(), full)
    assert graded.requires_grad
    # The copy is no part of the weights: the state_dict saves and loads as before.
    assert model.state_dict().keys() == saved.keys()
    for name, value in model.state_dict().items():
        assert torch.equal(value, saved[name]), name

    # Weights written after the copy was made are the ones scoring reads.
    with torch.no_grad():
        for weight in model.lstm.layers.parameters():
            weight.mul_(-0.5)
        changed = model(ids, lengths)
    torch.testing.assert_close(changed, model(ids, lengths).detach(), rtol=0, atol=0.03)
    assert not torch.allclose(changed, reduced, atol=0.03)


def test_a_few_steps_on_a_tiny_batch_lower_the_loss():
    model = _network(_config(dropout=0.2))
    # Positive reviews hold word 2, negative ones word 3, among shared words.
    reviews = [[2, 5, 6], [7, 2], [2], [8, 9, 2, 10], [3, 5, 6], [7, 3], [3], [8, 9, 3, 10]]
    labels = torch.tensor([1.0] * 4 + [0.0] * 4)
    ids, lengths = _padded(reviews)
    # The n-gram branch is fitted on its own (with its own optimizer); the rest learns here.
    learned = [value for name, value in model.named_parameters() if not name.startswith("ngram_")]
    optimizer = torch.optim.Adam(learned, lr=0.05)
    torch.manual_seed(2)

    def loss() -> torch.Tensor:
        return nn.functional.binary_cross_entropy_with_logits(model(ids, lengths), labels)

    def evaluated_loss() -> float:  # without dropout's noise
        model.eval()
        with torch.no_grad():
            return loss().item()

    before = evaluated_loss()
    model.train()
    for _ in range(15):
        optimizer.zero_grad()
        loss().backward()
        optimizer.step()
    assert evaluated_loss() < before / 10


def test_ngram_features_are_the_words_then_the_known_bigrams_above_the_vocabulary():
    model = _network(_config())
    ids, lengths = _padded([[2, 3, 4], [5], [2, 4, 6]], width=4)
    features = model.ngram_features(ids, lengths)

    assert features.shape == (3, 4 + 3)  # max_len unigrams, max_len - 1 bigrams
    assert features[:, :4].tolist() == [[2, 3, 4, 0], [5, 0, 0, 0], [2, 4, 6, 0]]
    # Only pairs of two real words: none across into padding, none for a one-word review,
    # none the branch does not know (2, 4).
    assert features[0, 4:].tolist() == [_bigram_feature(2, 3), _bigram_feature(3, 4), 0]
    assert features[1, 4:].tolist() == [0, 0, 0]
    assert features[2, 4:].tolist() == [0, _bigram_feature(4, 6), 0]
    assert features.max() < VOCABULARY_SIZE + len(KNOWN_BIGRAMS)


def test_ngram_features_ignore_the_words_under_padding():
    model = _network(_config())
    ids, lengths = _padded([[2, 3]], width=4)
    ids[0, 2:] = torch.tensor([4, 6])  # garbage past the review's length, a known bigram
    assert model.ngram_features(ids, lengths).tolist() == [
        [2, 3, 0, 0, _bigram_feature(2, 3), 0, 0]
    ]


def test_without_bigrams_the_features_are_the_unigrams():
    ids, lengths = _padded([[2, 3, 4], [5]])
    features = _network(_config(bigrams=0)).ngram_features(ids, lengths)
    assert features.tolist() == [[2, 3, 4], [5, 0, 0]]


def test_unique_per_row_keeps_each_feature_once_and_pads_the_rest():
    features = torch.tensor([[7, 3, 7, 0, 3, 9], [4, 4, 4, 4, 0, 0]])
    unique = network.unique_per_row(features)
    assert unique.shape == features.shape
    for row, expected in zip(unique.tolist(), [[3, 7, 9], [4]], strict=True):
        assert sorted(value for value in row if value) == expected


def test_the_ngram_branch_counts_presence_not_repeats():
    model = _network(_config())
    with torch.no_grad():
        twice, four_times = model.ngram_logit(*_padded([[4, 6, 4, 6], [4, 6, 4, 6, 4, 6, 4, 6]]))
        without_the_bigram_6_4 = model.ngram_logit(*_padded([[4, 6]]))
    torch.testing.assert_close(twice, four_times)
    assert not torch.isclose(twice, without_the_bigram_6_4)


def test_config_round_trips_through_json_and_rejects_nonsense():
    config = _config(layers=2, bidirectional=False)
    assert network.NetworkConfig.from_json(config.to_json()) == config
    for overrides in (
        {"hidden_dim": 0},
        {"layers": 0},
        {"dropout": 1.0},
        {"bigrams": -1},
        {"negation_flip_window": 0},
    ):
        with pytest.raises(ValueError, match=next(iter(overrides))):
            _config(**overrides)


def test_the_first_word_of_a_negation_also_counts_as_its_plain_word_with_the_sign_turned():
    model = _network(_config(bigrams=0, negation_flip_window=1))
    negation, plain, negated, next_plain, next_negated, unknown, other = 2, 4, 9, 5, 10, 11, 3
    with torch.no_grad():
        model.plain_ids[negated] = plain
        model.plain_ids[next_negated] = next_plain
        model.plain_ids[unknown] = 1  # a negated word whose plain word is out of vocabulary
        model.ngram_bias.fill_(0.5)
    weight = model.ngram_weights.weight[:, 0].detach() * model.ngram_ratios

    reviews = [
        [negation, negated, next_negated, other],  # only the scope's first word turns
        [plain, negation, negated],  # written and turned in one review: the two cancel
        [negation, negated, other, negation, negated],  # presence: once, however often
        [negation, unknown, next_negated],  # nothing to turn for an unknown word
    ]
    with torch.no_grad():
        logits = model.ngram_logit(*_padded(reviews))
    w = weight.tolist()
    expected = [
        w[negation] + w[negated] + w[next_negated] + w[other] - w[plain],
        w[plain] + w[negation] + w[negated] - w[plain],
        w[negation] + w[negated] + w[other] - w[plain],
        w[negation] + w[unknown] + w[next_negated],
    ]
    torch.testing.assert_close(logits, torch.tensor(expected) + 0.5)


def _negations(
    model: network.SentimentNetwork, plain_of: dict[int, int], ratios: dict[int, float]
) -> None:
    with torch.no_grad():
        for negated, plain in plain_of.items():
            model.plain_ids[negated] = plain
        for word, ratio in ratios.items():
            model.ngram_ratios[word] = ratio


def test_the_word_that_flips_is_the_strongest_of_the_scope_s_first_words():
    negation, other = 2, 3
    # Negated words 7-11 and their plain words 4, 5, 6, 6 and (unknown) OOV.
    plain_of = {7: 4, 8: 5, 9: 6, 10: 6, 11: 1}
    ratios = {4: 0.1, 5: -0.9, 6: 0.5}
    model = _network(_config(bigrams=0, negation_flip_window=2))
    _negations(model, plain_of, ratios)
    reviews = [
        [negation, 7, 8, other],  # |-0.9| beats 0.1: the second word flips
        [negation, 8, 7],  # the first is the stronger
        [negation, 7, 7, 8],  # only the first two count: 8 is past the window
        [negation, 9, 10, other, negation, 11, 7],  # a tie goes to the earlier; per scope
        [negation, 11, 7],  # an unknown plain word never flips
        [7],  # a scope at the very start
    ]
    flipped = model.flipped_words(_padded(reviews)[0])
    assert flipped.tolist() == [
        [0, 0, 5, 0, 0, 0, 0],
        [0, 5, 0, 0, 0, 0, 0],
        [0, 4, 0, 0, 0, 0, 0],
        [0, 6, 0, 0, 0, 0, 4],
        [0, 0, 4, 0, 0, 0, 0],
        [4, 0, 0, 0, 0, 0, 0],
    ]
    # With a window of one, each scope's first word whose plain word is known.
    first = _network(_config(bigrams=0, negation_flip_window=1))
    _negations(first, plain_of, ratios)
    assert first.flipped_words(_padded(reviews[:2])[0]).tolist() == [[0, 4, 0, 0], [0, 5, 0, 0]]
    # ngram_terms reads the flip as the plain word's id, negated.
    terms = model.ngram_terms(*_padded(reviews[:1]))[0].tolist()
    assert -5 in terms and -4 not in terms


def test_without_negation_flips_the_network_has_no_plain_ids_so_older_weights_load():
    older = _network(_config(negation_flips=False))
    assert "plain_ids" not in older.state_dict()
    assert "plain_ids" in _network(_config()).state_dict()
    # A model_config.json saved before the setting existed reads as trained without it.
    saved = {key: value for key, value in _config().to_json().items() if key != "negation_flips"}
    assert network.NetworkConfig.from_json(saved).negation_flips is False
    # Artifacts from before the window flipped a scope's first word.
    saved.pop("negation_flip_window")
    assert network.NetworkConfig.from_json(saved).negation_flip_window == 1
    ids, lengths = _padded([[9, 4]])
    assert older.ngram_terms(ids, lengths).min() >= 0
