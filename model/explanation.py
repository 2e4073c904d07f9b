"""Why the model gave its verdict: each word of the review with its signed share of the logit.

The shown score is sigmoid(logit) of the network's final logit. The fusion that makes it is
also the calibration (network.py): a linear function of the two branch logits, whose length
terms are constants for a given review, so

    logit = a_lstm * lstm_logit + a_ngram * ngram_logit + c.

Shares are taken on that logit, the scale the score comes from; sigmoid is monotonic, so a
word that raises the logit raises the score, and equal shares weigh more near 0.5 than near
the extremes. A word's share is a_ngram times its n-gram share plus a_lstm times its LSTM
share:

- the n-gram branch is linear in its terms, so its shares are exact
  (SentimentNetwork.ngram_word_contributions);
- the LSTM branch is not: integrated gradients (Sundararajan, Taly & Yan 2017) on the word
  embeddings, from the empty review (every embedding zero, as padding's is) to the review.
  The path integral is taken by Gauss-Legendre quadrature, its points run as one batch;
  integration_steps() says how many. The shares add up to lstm(review) - lstm(empty review
  of the same length), up to the quadrature's error.

`base` is the rest, logit minus every share: the biases, the length terms, the LSTM's reading
of an empty review, and that approximation error, so base plus the shares is the logit. Where
scoring runs the LSTM in bfloat16 (BidirectionalLSTM.serve_in_bfloat16), the gradients are
float32's, and `base` also holds the two precisions' difference.
"""

from __future__ import annotations

import bisect
import functools
import re

import torch
from network import SentimentNetwork
from preprocess import MIN_STEPS, PAD_ID, Tokenizer, Vocabulary

METHOD = "ngram-exact+lstm-integrated-gradients"
# Each quadrature point runs the LSTM forward and back over the whole review, so the cost grows
# with points x words read: short texts (the page's) get the most points, a long review fewer.
# bench/explanation_cost.py measured, against 128 points on its 24 sample reviews: 16 points
# move the shares by 0.8 % of the largest at the median, 6 points by 2.3 %, and one point
# (gradient x input at the midpoint) by 27 %; 6 points on a 173-word review (101 words read)
# explained it in 15 ms (README, Benchmarks).
POINT_WORD_BUDGET = 640
MIN_POINTS, MAX_POINTS = 4, 16

READ, DROPPED, NOT_READ = "read", "dropped", "not_read"

# Text that is not page text (strip_html drops it): comments, hidden elements' contents and
# tags with their attributes, so a word is never found inside them. Markup left open where the
# text ends stays text, as strip_html keeps it.
_HIDDEN = re.compile(
    r"<!--.*?-->|<(script|style|template|rt|rp)\b[^>]*>.*?(?:</\1\s*>|\Z)|<[a-z/!?][^>]*>",
    re.IGNORECASE | re.DOTALL,
)


@functools.lru_cache(maxsize=4096)
def _piece_pattern(piece: str) -> re.Pattern[str]:
    """Where a piece of the lower-cased text stands in the original: the whole run of letters
    and digits, in any case; "not" also as the "n't" the tokenizer spelled out, and the word
    before it ("did" of "didn't") as the letters just before that "n't"."""
    contracted = r"n['\u2019]t(?![a-z0-9])"
    if piece == "not":
        return re.compile(rf"(?<![a-z0-9])not(?![a-z0-9])|{contracted}", re.IGNORECASE)
    word = re.escape(piece)
    return re.compile(rf"(?<![a-z0-9]){word}(?={contracted}|(?![a-z0-9]))", re.IGNORECASE)


def piece_spans(text: str, pieces: list[str]) -> list[tuple[int, int] | None]:
    """Each piece's (start, end) in `text`, found in order outside markup; None for
    punctuation and for the rare word the text does not spell out (a character reference
    such as "&#103;" standing for a letter)."""
    hidden = [match.span() for match in _HIDDEN.finditer(text)] if "<" in text else []
    hidden_starts = [start for start, _ in hidden]
    spans: list[tuple[int, int] | None] = []
    cursor = 0
    for piece in pieces:
        span = None
        if piece[0].isalnum():
            span = _find_outside(text, _piece_pattern(piece), cursor, hidden, hidden_starts)
        if span is not None:
            cursor = span[1]
        spans.append(span)
    return spans


def _find_outside(
    text: str,
    pattern: re.Pattern[str],
    cursor: int,
    hidden: list[tuple[int, int]],
    hidden_starts: list[int],
) -> tuple[int, int] | None:
    while (match := pattern.search(text, cursor)) is not None:
        region = bisect.bisect_right(hidden_starts, match.start()) - 1
        if region < 0 or hidden[region][1] <= match.start():
            return match.span()
        cursor = hidden[region][1]
    return None


def branch_slopes(network: SentimentNetwork, length: int) -> torch.Tensor:
    """How much the final logit moves per unit of each branch's logit, for a review of
    `length` steps: the fusion is linear in the branch logits, so the difference from zero
    logits is exact."""
    corners = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    fused = network.fusion(network.fusion_inputs(corners, torch.full((3,), length))).squeeze(1)
    return fused[1:] - fused[0]


def integration_steps(length: int) -> int:
    """How many quadrature points a review of `length` words read gets."""
    return max(MIN_POINTS, min(MAX_POINTS, POINT_WORD_BUDGET // max(length, 1)))


@functools.lru_cache(maxsize=MAX_POINTS + 1)
def gauss_legendre(points: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Gauss-Legendre points and weights on [0, 1] (Golub-Welsch: the eigenvalues of the
    Jacobi matrix); exact for polynomials of degree 2 * points - 1, where the midpoint rule's
    equal steps are exact to degree 1."""
    k = torch.arange(1, points, dtype=torch.float64)
    jacobi = torch.diag(k / torch.sqrt(4 * k**2 - 1), 1)
    nodes, vectors = torch.linalg.eigh(jacobi + jacobi.T)
    return ((nodes + 1) / 2).float(), vectors[0].square().float()


def lstm_integrated_gradients(
    network: SentimentNetwork, ids: torch.Tensor, steps: int
) -> torch.Tensor:
    """Each step's share of the LSTM branch's logit over the empty review's: (length,),
    the path integral taken with `steps` quadrature points."""
    embedded = network.embedding(ids[None]).detach()
    nodes, weights = gauss_legendre(steps)
    path = (nodes[:, None, None] * embedded).requires_grad_()
    logits = network.lstm_logit_of(path, torch.full((steps,), ids.numel()))
    (gradients,) = torch.autograd.grad(logits.sum(), path)
    return (torch.einsum("s,std->td", weights, gradients) * embedded[0]).sum(dim=-1)


def step_shares(
    network: SentimentNetwork,
    ids: torch.Tensor,
    steps: int | None = None,
    logit: float | None = None,
) -> tuple[torch.Tensor, float]:
    """Each step's share of the final logit, and that logit. `ids`: one review's word ids;
    `steps`: quadrature points (integration_steps() when None); `logit`: the network's, when
    the caller has it (scoring the review took it), saving a second run."""
    length = ids.numel()
    steps = steps or integration_steps(length)
    with torch.no_grad():
        if logit is None:
            logit = network(ids[None], torch.tensor([length])).item()
        slopes = branch_slopes(network, length)
        ngram = network.ngram_word_contributions(ids, length)
    with torch.enable_grad():
        lstm = lstm_integrated_gradients(network, ids, steps)
    return slopes[0] * lstm + slopes[1] * ngram, logit


def explain(
    review: str,
    network: SentimentNetwork,
    vocabulary: Vocabulary,
    tokenizer: Tokenizer,
    steps: int | None = None,
    logit: float | None = None,
) -> dict:
    """The review's words with their status and share of the logit (the module's docstring
    says how); the shape lambda_src/openapi.json documents as Explanation."""
    pieces, tokens = tokenizer.read(review)
    ids = vocabulary.ids([token for token in tokens if token])
    read = len(ids)
    padded = torch.tensor(ids + [PAD_ID] * (MIN_STEPS - read), dtype=torch.long)
    shares, logit = step_shares(network, padded, steps, logit)
    values = shares.tolist()
    words = []
    step = 0
    for piece, token, span in zip(pieces, tokens, piece_spans(review, pieces), strict=True):
        if not piece[0].isalnum():
            continue
        status, contribution = DROPPED, None
        if token:
            status = READ if step < read else NOT_READ
            contribution = round(values[step], 4) if step < read else None
            step += 1
        if span is not None:
            words.append(
                {"start": span[0], "end": span[1], "status": status, "contribution": contribution}
            )
    return {
        "logit": round(logit, 6),
        "base": round(logit - sum(values), 6),
        "method": METHOD,
        "words": words,
    }
