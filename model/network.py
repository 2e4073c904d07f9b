"""The sentiment classifier: an LSTM over word embeddings, beside a bag-of-n-grams model.

Two branches read the same word ids and each gives a logit:

- the LSTM branch: embedding → (bi)LSTM that ignores padding (see BidirectionalLSTM)
  → max and mean pooling of the outputs over the real positions → linear;
- the n-gram branch: a linear model over the review's unigrams and the bigrams seen in
  the training reviews, each weighted by its naive-Bayes log-count ratio (NBSVM, Wang &
  Manning 2012).

The branches are trained separately (trained jointly, the n-gram branch memorizes the
training set and starves the LSTM) and combined by a logistic regression over the two
logits and the review's length (fusion_inputs), fitted on the validation reviews and
short crops of them: it is also the score's calibration. Everything is a tensor in one
state_dict.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass

import torch
from preprocess import OOV_ID
from torch import nn

# Where a model directory keeps the network's weights (a state_dict) and its settings.
WEIGHTS_FILE = "model.pt"
CONFIG_FILE = "model_config.json"


@dataclass(frozen=True)
class NetworkConfig:
    vocabulary_size: int
    embedding_dim: int = 128
    hidden_dim: int = 128
    layers: int = 1
    bidirectional: bool = True
    dropout: float = 0.4
    # How many bigrams the n-gram branch knows; training picks them from its reviews.
    bigrams: int = 0
    # Whether the fusion also reads the review's length (see SentimentNetwork.fusion_inputs).
    length_aware_fusion: bool = True
    # Whether the n-gram branch also reads a negated word as its plain word with the sign
    # turned (see SentimentNetwork.ngram_terms), and which: of each negation scope's first
    # `negation_flip_window` words, the one whose plain word's |naive-Bayes ratio| is largest.
    negation_flips: bool = True
    negation_flip_window: int = 2

    def __post_init__(self) -> None:
        for name in (
            "vocabulary_size",
            "embedding_dim",
            "hidden_dim",
            "layers",
            "negation_flip_window",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.bigrams < 0:
            raise ValueError(f"bigrams must be at least 0, got {self.bigrams}")

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> NetworkConfig:
        # Artifacts saved before a setting existed were trained without it (and flipped a
        # scope's first word).
        saved = {"length_aware_fusion": False, "negation_flips": False, "negation_flip_window": 1}
        return cls(**saved | data)

    @property
    def fusion_width(self) -> int:
        return 5 if self.length_aware_fusion else 2


def bigram_keys(ids: torch.Tensor, vocabulary_size: int) -> torch.Tensor:
    """One integer per pair of neighbouring ids: first * vocabulary_size + second."""
    return ids[..., :-1].long() * vocabulary_size + ids[..., 1:]


def reverse_within_lengths(values: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Each row's first `length` steps in reverse order; padding stays where it is."""
    batch, steps = values.shape[:2]
    positions = torch.arange(steps, device=values.device)[None, :]
    source = torch.where(positions < lengths[:, None], lengths[:, None] - 1 - positions, positions)
    # Whole steps moved with index_select: gather, element by element, took 5 to 25 times longer
    # on CPU (a tenth of the network's time on a batch of 64).
    source = source + steps * torch.arange(batch, device=values.device)[:, None]
    return values.reshape(batch * steps, -1).index_select(0, source.view(-1)).view_as(values)


class BidirectionalLSTM(nn.Module):
    """A (bi)LSTM whose outputs at real positions ignore the padding after them.

    It computes exactly what nn.LSTM over a PackedSequence computes, without packing:
    the forward direction never reads the padding that follows a review, and the
    backward direction reads each review reversed within its own length. Packing
    would save the few padded steps that length-bucketed batches still have, but in
    PyTorch 2.13 on CPU the backward pass over a packed batch of mixed lengths is
    about 19 times slower than over the padded batch (bench/lstm_packing.py).

    serve_in_bfloat16() gives it a bfloat16 copy of its weights that scoring (no gradient)
    runs on; gradients (training, explanations) keep the float32 weights.
    """

    def __init__(self, config: NetworkConfig) -> None:
        super().__init__()
        self.bidirectional = config.bidirectional
        self.dropout = nn.Dropout(config.dropout)
        directions = 2 if config.bidirectional else 1
        self.layers = nn.ModuleList()
        for layer in range(config.layers):
            size = config.embedding_dim if layer == 0 else directions * config.hidden_dim
            self.layers.append(
                nn.ModuleList(
                    nn.LSTM(size, config.hidden_dim, batch_first=True) for _ in range(directions)
                )
            )
        # The bfloat16 copy and the float32 weights' version it was made from; a plain
        # attribute, not a submodule, so that it is no part of the state_dict.
        self._bfloat16_layers: tuple[nn.ModuleList, int] | None = None

    def serve_in_bfloat16(self) -> None:
        """Score in bfloat16 from now on: on CPUs with AMX, oneDNN's bfloat16 recurrence is
        the faster (README, Serving precision: bench/serving_latency.py run with and without
        LSTM_PRECISION=float32). Call it after eval()."""
        reduced = copy.deepcopy(self.layers).to(torch.bfloat16)
        self._bfloat16_layers = (reduced, self._weights_version())

    @property
    def precision(self) -> str:
        """What scoring runs the recurrence in: "bfloat16" once serve_in_bfloat16() ran."""
        return "float32" if self._bfloat16_layers is None else "bfloat16"

    def _weights_version(self) -> int:
        """Changes whenever a float32 weight is written in place (load_state_dict, an
        optimizer step, a test's edit)."""
        return sum(weight._version for weight in self.layers.parameters())

    def forward(self, inputs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """(batch, steps, features) → (batch, steps, directions * hidden), float32."""
        if self._bfloat16_layers is None or torch.is_grad_enabled():
            return self._run(self.layers, inputs, lengths)
        if self._bfloat16_layers[1] != self._weights_version():
            self.serve_in_bfloat16()  # the weights changed since the copy was made
        reduced = self._bfloat16_layers[0]
        return self._run(reduced, inputs.to(torch.bfloat16), lengths).float()

    def _run(
        self, layers: nn.ModuleList, inputs: torch.Tensor, lengths: torch.Tensor
    ) -> torch.Tensor:
        outputs = inputs
        for index, layer in enumerate(layers):
            if index > 0:
                outputs = self.dropout(outputs)
            forward, _ = layer[0](outputs)
            if not self.bidirectional:
                outputs = forward
                continue
            backward, _ = layer[1](reverse_within_lengths(outputs, lengths))
            outputs = torch.cat([forward, reverse_within_lengths(backward, lengths)], dim=2)
        return outputs


class SentimentNetwork(nn.Module):
    def __init__(self, config: NetworkConfig) -> None:
        super().__init__()
        self.config = config
        self.embedding = nn.Embedding(config.vocabulary_size, config.embedding_dim, padding_idx=0)
        self.lstm = BidirectionalLSTM(config)
        directions = 2 if config.bidirectional else 1
        self.dropout = nn.Dropout(config.dropout)
        self.lstm_head = nn.Linear(2 * directions * config.hidden_dim, 1)

        # Feature ids: the word ids (0 is padding), then one per known bigram. The
        # bigrams (sorted keys) and naive-Bayes ratios are data, not learned: buffers.
        features = config.vocabulary_size + config.bigrams
        self.ngram_weights = nn.EmbeddingBag(features, 1, mode="sum", padding_idx=0)
        nn.init.zeros_(self.ngram_weights.weight)
        self.register_buffer("bigram_keys", torch.zeros(config.bigrams, dtype=torch.long))
        self.register_buffer("ngram_ratios", torch.zeros(features))
        self.ngram_bias = nn.Parameter(torch.zeros(1))
        if config.negation_flips:
            # Per word id, the id of the same word outside a negation ("not_good" → "good";
            # OOV_ID when that word is not in the vocabulary), 0 for the words outside any
            # negation; training fills it from the vocabulary.
            self.register_buffer("plain_ids", torch.zeros(config.vocabulary_size, dtype=torch.long))
        # Fusion of the two branch logits; starts as the LSTM alone.
        self.fusion = nn.Linear(config.fusion_width, 1)
        with torch.no_grad():
            self.fusion.weight.zero_()
            self.fusion.weight[0, 0] = 1.0
            self.fusion.bias.zero_()

    def lstm_logit(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.lstm_logit_of(self.embedding(ids), lengths)

    def lstm_logit_of(self, embedded: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """The LSTM branch's logit from the word embeddings (explanations vary these)."""
        outputs = self.lstm(self.dropout(embedded), lengths)
        real = torch.arange(embedded.size(1), device=embedded.device)[None, :] < lengths[:, None]
        real = real.unsqueeze(-1)
        largest = outputs.masked_fill(~real, float("-inf")).amax(dim=1)
        mean = (outputs * real).sum(dim=1) / lengths[:, None].to(outputs.dtype)
        pooled = self.dropout(torch.cat([largest, mean], dim=1))
        return self.lstm_head(pooled).squeeze(1)

    def ngram_features(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Each review's unigram and known-bigram feature ids, 0 where there is none.

        Returns a (batch, 2 * max_len - 1) tensor: the words, then the bigrams.
        """
        positions = torch.arange(ids.size(1), device=ids.device)
        unigrams = ids.masked_fill(positions >= lengths[:, None], 0)
        if self.config.bigrams == 0:
            return unigrams
        keys = bigram_keys(ids, self.config.vocabulary_size)
        index = torch.searchsorted(self.bigram_keys, keys).clamp(max=self.config.bigrams - 1)
        known = self.bigram_keys[index] == keys
        known &= positions[:-1] < lengths[:, None] - 1
        bigrams = torch.where(known, self.config.vocabulary_size + index, 0)
        return torch.cat([unigrams, bigrams], dim=1)

    def ngram_terms(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Each review's distinct n-gram terms as signed feature ids, 0 where there is none.

        Presence, not counts (NBSVM's binarized features): repeats within a review are
        dropped. With `negation_flips`, one word of each negation's scope also counts as its
        plain word with the sign turned (flipped_words), written as the plain word's id
        negated: "not enjoyable" weighs against the film as much as "enjoyable" weighs for
        it, even where the reviews hold too few "not_enjoy" for that feature's own weight to
        say so; fitted beside the flip, that weight corrects it where the reviews disagree
        ("not bad" is faint praise at best).
        """
        features = self.ngram_features(ids, lengths)
        if self.config.negation_flips:
            features = torch.cat([features, -self.flipped_words(ids)], dim=1)
        return unique_per_row(features)

    def flipped_words(self, ids: torch.Tensor) -> torch.Tensor:
        """(batch, steps): the plain word id at the one word of each negation scope that
        flips, 0 everywhere else (padding is outside any scope).

        The word is the one, among the scope's first `negation_flip_window` words, whose
        plain word has the largest absolute naive-Bayes ratio (a buffer, fixed before the
        weights are fitted), the earliest on a tie; a word outside the vocabulary has no
        weight to turn (and a negated word outside it reads as OOV, outside any scope, so it
        ends one).
        One word per scope, near its start: flipping every word of a long scope cost
        validation accuracy, and the first word alone missed "not something I loved"
        (`someth`, then `love`). Measured on the validation split with the default model's
        LSTM: the stronger of the first two words, fused 0.9224 against 0.9232 for the first
        word alone (2 reviews of 2,500), validation crops 0.7312 against 0.7304, negated
        praise in the behaviour suite 0.924 against 0.879.
        """
        plain = self.plain_ids[ids]
        negated = plain > 0
        if not negated.any():  # most texts: nothing to choose
            return torch.zeros_like(plain)
        starts = negated.clone()
        starts[:, 1:] &= ~negated[:, :-1]
        position = torch.arange(ids.size(1), device=ids.device)
        # Where the scope holding each word starts; equal for two words of one scope.
        scope_start = torch.where(starts, position, 0).cummax(dim=1).values
        chosen = negated & (plain > OOV_ID)
        chosen &= position - scope_start < self.config.negation_flip_window
        strength = torch.where(chosen, self.ngram_ratios[plain].abs(), -1.0)
        for gap in range(1, self.config.negation_flip_window):
            same_scope = scope_start[:, gap:] == scope_start[:, :-gap]
            # Out: a word with a stronger one `gap` words later, or one as strong `gap` earlier.
            later = same_scope & (strength[:, gap:] > strength[:, :-gap])
            earlier = same_scope & (strength[:, :-gap] >= strength[:, gap:])
            chosen[:, :-gap] &= ~later
            chosen[:, gap:] &= ~earlier
        return torch.where(chosen, plain, 0)

    def ngram_logit(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        terms = self.ngram_terms(ids, lengths)
        features = terms.abs()
        weights = self.ngram_ratios[features]
        if self.config.negation_flips:
            weights = torch.where(terms < 0, -weights, weights)
        return self.ngram_weights(features, per_sample_weights=weights).squeeze(1) + self.ngram_bias

    def ngram_word_contributions(self, ids: torch.Tensor, length: int) -> torch.Tensor:
        """One review's n-gram logit shared out over its words, exactly: (length,), adding up
        to ngram_logit less ngram_bias.

        Each distinct term weighs weight * ratio (sign turned for a negation flip) once per
        review (ngram_terms), so its value is shared between its occurrences, and a bigram's
        share between its two words. `ids` is the review's (length,) word ids.
        """
        ids = ids[:length]
        lengths = torch.tensor([length])
        features = self.ngram_features(ids[None], lengths)[0]
        # Where each occurrence of a term sits: a word, or the first of a bigram's two words.
        positions = torch.arange(length)
        words = [positions]
        if self.config.bigrams:
            words.append(positions[:-1])
        if self.config.negation_flips:
            features = torch.cat([features, -self.flipped_words(ids[None])[0]])
            words.append(positions)
        starts = torch.cat(words)
        values = self.ngram_weights.weight[features.abs(), 0] * self.ngram_ratios[features.abs()]
        values = torch.where(features < 0, -values, values).masked_fill(features == 0, 0.0)
        _, occurrence_of, occurrences = torch.unique(
            features, return_inverse=True, return_counts=True
        )
        shares = values / occurrences[occurrence_of]
        is_bigram = torch.zeros_like(features, dtype=torch.bool)
        if self.config.bigrams:
            is_bigram[length : 2 * length - 1] = True
        contributions = torch.zeros(length, dtype=values.dtype)
        contributions.index_add_(0, starts, torch.where(is_bigram, shares / 2, shares))
        contributions.index_add_(0, starts[is_bigram] + 1, shares[is_bigram] / 2)
        return contributions

    def branch_logits(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return torch.stack([self.lstm_logit(ids, lengths), self.ngram_logit(ids, lengths)], dim=1)

    def fusion_inputs(self, branches: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """What the fusion reads: the two branch logits and, when length-aware, the same
        scaled by 1/sqrt(length) and that scale alone.

        A short review gives the branches little to add up, and the n-gram branch's bias
        was fitted on whole reviews; the length terms let the fusion, fitted on whole
        reviews and short crops of them, weigh and calibrate the branches by length.
        """
        if not self.config.length_aware_fusion:
            return branches
        scale = lengths.to(branches.dtype).clamp(min=1).rsqrt()[:, None]
        return torch.cat([branches, branches * scale, scale], dim=1)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """One calibrated logit per review (positive > 0). `ids` is padded with 0; every
        length ≥ 1."""
        inputs = self.fusion_inputs(self.branch_logits(ids, lengths), lengths)
        return self.fusion(inputs).squeeze(1)


def unique_per_row(features: torch.Tensor) -> torch.Tensor:
    """Each row's distinct feature ids, the rest of the row set to padding (0)."""
    ordered, _ = features.sort(dim=1)
    repeated = torch.zeros_like(ordered, dtype=torch.bool)
    repeated[:, 1:] = ordered[:, 1:] == ordered[:, :-1]
    return ordered.masked_fill(repeated, 0)
