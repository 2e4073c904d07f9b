"""SageMaker inference handlers, loaded by the PyTorch serving container from code/.

The container imports this module from /opt/ml/model/code (SAGEMAKER_PROGRAM) and calls
model_fn once, then input_fn → predict_fn → output_fn per request. Everything the
model needs comes from the artifact: weights, network settings, vocabulary and
preprocessing settings. Nothing is downloaded or guessed.

Requests: `text/plain` (one review) or `application/json` with `{"review": "..."}`
or `{"reviews": [...]}` (at most 64), either with `"explain": true` to have each verdict
explained (explanation.py). Responses: `{"sentiment": "positive" |
"negative", "score": P(positive), "low_confidence": bool, "model_version": str}`, or
`{"predictions": [...]}` for a batch. `low_confidence` is true when the verdict has little
to stand on: the model knew none or few of the review's words, or its confidence is low
(see verdict()). `model_version` names the model that answered (model_version()). Asked to
explain, each verdict also carries `explanation`: every word's share of the logit.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import torch
import vendored_packages  # noqa: F401  (before preprocess: it may need code/vendor/)
from explanation import explain
from network import CONFIG_FILE, WEIGHTS_FILE, NetworkConfig, SentimentNetwork
from preprocess import MIN_STEPS, OOV_ID, PAD_ID, VOCABULARY_FILE, Tokenizer, Vocabulary

JSON = "application/json"
TEXT = "text/plain"
MAX_BATCH = 64
MAX_REVIEW_CHARS = int(os.environ.get("MAX_REVIEW_CHARS", "20000"))
# Thresholds for flagging a verdict low_confidence (verdict()): set by hand, retune with the model.
# The model gives every review a side, so a text with no opinion (a neutral fact, a mixed
# review) still leans one way; below this confidence, max(score, 1 - score), the lean says little.
MIN_CONFIDENCE = 0.7
# Below this share of known words the review is mostly gibberish or another language, and the
# score rests on the few words the model happened to recognise.
MIN_KNOWN_SHARE = 0.5
# "auto": the LSTM scores in bfloat16 on a CPU with AMX (BidirectionalLSTM.serve_in_bfloat16;
# its `precision` says which ran), float32 elsewhere: bfloat16 was measured faster on AMX only.
# "float32": float32 everywhere.
LSTM_PRECISION = os.environ.get("LSTM_PRECISION", "auto")
LSTM_PRECISIONS = ("auto", "float32")

try:
    # The serving container answers with this error's status code and message;
    # any other exception becomes a 500.
    from sagemaker_inference.errors import BaseInferenceToolkitError as _ServingError
except ImportError:  # outside the container: same attributes, same meaning

    class _ServingError(Exception):  # type: ignore[no-redef]
        def __init__(self, status_code: int, message: str, phrase: str) -> None:
            super().__init__(status_code, message, phrase)
            self.status_code = status_code
            self.message = message
            self.phrase = phrase


class RequestError(_ServingError):
    """A request the model cannot answer; `status_code` says why (400, 406, 413, 415)."""

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(status_code, message, message)

    def __str__(self) -> str:
        return self.message


class ArtifactError(RuntimeError):
    """A model artifact file that is missing or cannot be read."""


@dataclass(frozen=True)
class Request:
    reviews: list[str]
    batch: bool
    explain: bool = False


@dataclass(frozen=True)
class Prediction:
    results: list[dict]
    batch: bool


@dataclass
class LoadedModel:
    network: SentimentNetwork
    vocabulary: Vocabulary
    tokenizer: Tokenizer
    version: str


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ArtifactError(f"model artifact file missing: {path}") from None
    except (ValueError, UnicodeDecodeError) as error:
        raise ArtifactError(f"model artifact file corrupt: {path}: {error}") from None


def _read_settings(path: Path, parse):
    """`parse` of a JSON file; a file of the wrong shape is an error that names it."""
    try:
        return parse(_read_json(path))
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        if isinstance(error, ArtifactError):
            raise
        raise ArtifactError(f"model artifact file invalid: {path}: {error!r}") from None


def model_fn(model_dir: str) -> LoadedModel:
    directory = Path(model_dir)
    vocabulary = _read_settings(directory / VOCABULARY_FILE, Vocabulary.from_json)
    config = _read_settings(directory / CONFIG_FILE, NetworkConfig.from_json)
    if config.vocabulary_size != len(vocabulary):
        raise ArtifactError(
            f"{CONFIG_FILE} expects {config.vocabulary_size} word ids, "
            f"{VOCABULARY_FILE} has {len(vocabulary)}"
        )
    weights = directory / WEIGHTS_FILE
    network = SentimentNetwork(config)
    try:
        network.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    except FileNotFoundError:
        raise ArtifactError(f"model artifact file missing: {weights}") from None
    except Exception as error:  # torch raises several types for a damaged file
        raise ArtifactError(f"model artifact file corrupt: {weights}: {error}") from None
    network.eval()
    if lstm_precision(LSTM_PRECISION) == "bfloat16":
        network.lstm.serve_in_bfloat16()
    return LoadedModel(
        network, vocabulary, Tokenizer(vocabulary.settings), model_version(directory)
    )


def lstm_precision(setting: str) -> str:
    """What the LSTM scores in under `setting` (LSTM_PRECISIONS) on this CPU."""
    if setting not in LSTM_PRECISIONS:
        raise ValueError(f"LSTM_PRECISION must be one of {LSTM_PRECISIONS}, got {setting!r}")
    has_amx = getattr(torch.cpu, "_is_amx_tile_supported", lambda: False)()
    return "bfloat16" if setting == "auto" and has_amx else "float32"


def model_version(model_dir: Path) -> str:
    """16 hex digits of a digest of the weights, network settings and vocabulary.

    The same files answer the same way wherever they serve, so the version is the same in
    the endpoint, the emulator and the capture records; blue and green fleets share one
    variant name, and this is what tells their answers apart.
    """
    digest = hashlib.sha256()
    for name in (WEIGHTS_FILE, CONFIG_FILE, VOCABULARY_FILE):
        digest.update(hashlib.sha256((model_dir / name).read_bytes()).digest())
    return digest.hexdigest()[:16]


def _media_type(content_type: str | None) -> str:
    return (content_type or "").split(";")[0].strip().lower()


def _check_review(review: object, where: str) -> str:
    if not isinstance(review, str):
        raise RequestError(400, f"{where} must be a string")
    try:
        # JSON escapes can smuggle in lone surrogates, which are not text (the API refuses
        # them with the same rule).
        review.encode("utf-8")
    except UnicodeEncodeError:
        raise RequestError(400, f"{where} is not valid UTF-8 text") from None
    if not review.strip():
        raise RequestError(400, f"{where} is empty")
    if len(review) > MAX_REVIEW_CHARS:
        raise RequestError(
            413, f"{where} has {len(review)} characters; the limit is {MAX_REVIEW_CHARS}"
        )
    return review


_REQUEST_SHAPE = 'send {"review": "..."} or {"reviews": ["...", ...]}, optionally with "explain"'


def input_fn(request_body: bytes | str, request_content_type: str) -> Request:
    media_type = _media_type(request_content_type)
    if media_type not in (JSON, TEXT):
        raise RequestError(
            415, f"unsupported content type {request_content_type!r}; send {JSON} or {TEXT}"
        )
    if isinstance(request_body, bytes | bytearray):
        try:
            request_body = bytes(request_body).decode("utf-8")
        except UnicodeDecodeError:
            raise RequestError(400, "the request body is not valid UTF-8") from None
    if media_type == TEXT:
        return Request([_check_review(request_body, "the review")], batch=False)
    try:
        document = json.loads(request_body)
    except (ValueError, RecursionError):  # nested deeper than the parser goes, too
        raise RequestError(400, "the request body is not valid JSON") from None
    if not isinstance(document, dict):
        raise RequestError(400, _REQUEST_SHAPE)
    explained = document.pop("explain", False)
    if not isinstance(explained, bool):
        raise RequestError(400, '"explain" must be true or false')
    if set(document) == {"review"}:
        return Request([_check_review(document["review"], '"review"')], False, explained)
    if set(document) == {"reviews"}:
        reviews = document["reviews"]
        if not isinstance(reviews, list) or not reviews:
            raise RequestError(400, '"reviews" must be a non-empty list of strings')
        if len(reviews) > MAX_BATCH:
            raise RequestError(
                400, f'"reviews" has {len(reviews)} reviews; at most {MAX_BATCH} per request'
            )
        checked = [_check_review(review, f'"reviews"[{i}]') for i, review in enumerate(reviews)]
        return Request(checked, True, explained)
    raise RequestError(400, _REQUEST_SHAPE)


@dataclass(frozen=True)
class Scored:
    """What the model made of one review: the score and how much it had to go on."""

    score: float  # P(positive), calibrated (see network.SentimentNetwork.forward)
    words: int  # tokens the model read, after preprocessing and truncation
    known: int  # of those, the ones in the vocabulary
    logit: float | None = None  # score = sigmoid(logit); what an explanation shares out


def encode_reviews(reviews: list[str], model: LoadedModel) -> list[list[int]]:
    """Each review's word ids, preprocessed exactly as the training data was (a review of
    stopwords only is MIN_STEPS padding ids)."""
    encoded = [model.vocabulary.ids(model.tokenizer(review)) for review in reviews]
    return [ids + [PAD_ID] * (MIN_STEPS - len(ids)) for ids in encoded]


def encode_batch(encoded: Sequence[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """The reviews' word ids padded to the longest, and their lengths."""
    longest = max(map(len, encoded))
    ids = [review + [PAD_ID] * (longest - len(review)) for review in encoded]
    lengths = [len(review) for review in encoded]
    return torch.tensor(ids, dtype=torch.long), torch.tensor(lengths, dtype=torch.long)


# What a batch costs the network beyond its reviews' steps, in units of one review's step:
# a fixed cost per batch (setting up the LSTM calls, the other layers' dispatch), and per step
# a cost whatever the batch's size. bench/bucket_costs.py measures the handlers' throughput
# under other values: on the default model, bfloat16, with a request's batches side by side
# on two threads (score_reviews), these were the fastest of 150:1, 300:4, 600:8 and 1200:8
# on one thread and on two (README, Benchmarks); to be chosen again with the next change of
# the network.
BATCH_OVERHEAD_STEPS = 300.0
STEP_OVERHEAD_REVIEWS = 4.0


def batch_cost(
    longest: int,
    reviews: int,
    batch_overhead: float = BATCH_OVERHEAD_STEPS,
    step_overhead: float = STEP_OVERHEAD_REVIEWS,
) -> float:
    """What a batch of `reviews` reviews padded to `longest` steps costs the network, in
    units of one review's step."""
    return batch_overhead + longest * (step_overhead + reviews)


def length_buckets(
    lengths: Sequence[int],
    batch_overhead: float = BATCH_OVERHEAD_STEPS,
    step_overhead: float = STEP_OVERHEAD_REVIEWS,
) -> list[list[int]]:
    """The indices of `lengths` cut into batches of similar length, shortest first.

    The cuts between the sorted lengths are the cheapest in total (batch_cost; dynamic
    programming, exact).
    """
    order = sorted(range(len(lengths)), key=lengths.__getitem__)
    # cheapest[end]: the least cost of the first `end` sorted reviews; start[end]: where
    # the last batch of that cheapest cutting begins.
    cheapest, start = [0.0], [0]
    for end in range(1, len(order) + 1):
        longest = lengths[order[end - 1]]
        # The last batch from `first` costs overhead + longest * (step + end - first).
        costs = [cost - longest * first for first, cost in enumerate(cheapest)]
        first = costs.index(min(costs))
        cost = batch_cost(longest, end - first, batch_overhead, step_overhead)
        cheapest.append(cheapest[first] + cost)
        start.append(first)
    buckets, end = [], len(order)
    while end:
        buckets.append(order[start[end] : end])
        end = start[end]
    return buckets[::-1]


def worker_shares(
    buckets: list[list[int]], lengths: Sequence[int], workers: int
) -> list[list[list[int]]]:
    """`buckets` dealt to at most `workers` (at least one) workers so that they finish
    about together: the costliest first (batch_cost), each to the least loaded (longest
    processing time first)."""
    costed = [
        (batch_cost(max(lengths[row] for row in bucket), len(bucket)), bucket) for bucket in buckets
    ]
    costed.sort(key=lambda pair: pair[0], reverse=True)
    shares: list[list[list[int]]] = [[] for _ in range(min(workers, len(buckets)))]
    loads = [0.0] * len(shares)
    for cost, bucket in costed:
        least = loads.index(min(loads))
        shares[least].append(bucket)
        loads[least] += cost
    return shares


def score_reviews(reviews: list[str], model: LoadedModel) -> list[Scored]:
    """Every review scored, in the order given, as if it were scored alone.

    The reviews run in batches of similar length (length_buckets): padded to the longest
    of the whole request, the network spent most of its time on padding. With more than one
    torch thread, the batches run side by side, a worker thread each on one torch thread
    (worker_shares): the LSTM's small matrices keep a second thread of the same batch
    mostly waiting, two batches apart keep two cores busy (README, Benchmarks). That is
    for a process answering one request at a time (`sentiment evaluate --threads N`, the
    promotion gate in the training job); a serving worker runs on one torch thread
    (contract/serving_workers.py).
    """
    encoded = encode_reviews(reviews, model)
    lengths = [len(review) for review in encoded]
    scores, logits = [0.0] * len(reviews), [0.0] * len(reviews)

    def run(buckets: list[list[int]]) -> None:
        with torch.inference_mode():  # a per-thread setting
            for bucket in buckets:
                batch = model.network(*encode_batch([encoded[row] for row in bucket]))
                for row, logit, score in zip(
                    bucket, batch.tolist(), torch.sigmoid(batch).tolist(), strict=True
                ):
                    scores[row], logits[row] = score, logit

    buckets, threads = length_buckets(lengths), torch.get_num_threads()
    if threads == 1 or len(buckets) < 2:
        run(buckets)
    else:
        _side_by_side(run, worker_shares(buckets, lengths, threads), threads)
    return _scored(encoded, scores, logits)


def _side_by_side(
    run: Callable[[list[list[int]]], None], shares: list[list[list[int]]], threads: int
) -> None:
    """`run` on each share at once, a worker thread each on one torch thread; the calling
    thread's `threads` is the process's count again after."""
    try:
        with ThreadPoolExecutor(len(shares), initializer=_one_torch_thread) as workers:
            list(workers.map(run, shares))
    finally:
        # torch.set_num_threads also sets the count threads that start later begin with.
        torch.set_num_threads(threads)


def _one_torch_thread() -> None:
    # A thread takes the process's count at its first torch call: take it first, so
    # that nothing set later replaces this thread's one.
    torch.get_num_threads()
    torch.set_num_threads(1)


def _scored(encoded: list[list[int]], scores: list[float], logits: list[float]) -> list[Scored]:
    """The reviews' scores and logits with the words each one read and knew."""
    words = [len(review) - review.count(PAD_ID) for review in encoded]
    known = [count - review.count(OOV_ID) for count, review in zip(words, encoded, strict=True)]
    return [Scored(*values) for values in zip(scores, words, known, logits, strict=True)]


def verdict(scored: Scored) -> dict:
    """The answer for one review, flagged when the model had too little to go on."""
    score = round(scored.score, 6)
    low_confidence = (
        # No word the model knows (stopwords only, or all unknown): nothing to judge by.
        scored.known == 0
        or scored.known < scored.words * MIN_KNOWN_SHARE
        # The score as sent, so a client recomputing the confidence agrees with the flag.
        or max(score, 1 - score) < MIN_CONFIDENCE
    )
    return {
        "sentiment": "positive" if scored.score >= 0.5 else "negative",
        "score": score,
        "low_confidence": low_confidence,
    }


def predict_fn(request: Request, model: LoadedModel) -> Prediction:
    scored = score_reviews(request.reviews, model)
    results = [verdict(one) | {"model_version": model.version} for one in scored]
    if request.explain:
        for result, review, one in zip(results, request.reviews, scored, strict=True):
            result["explanation"] = explain(
                review, model.network, model.vocabulary, model.tokenizer, logit=one.logit
            )
    return Prediction(results, request.batch)


def output_fn(prediction: Prediction, accept: str | None) -> tuple[str, str]:
    accepted = [_media_type(part) for part in (accept or JSON).split(",")]
    if not {JSON, "application/*", "*/*"} & set(accepted):
        raise RequestError(406, f"cannot answer in {accept!r}; this model answers in {JSON}")
    body = {"predictions": prediction.results} if prediction.batch else prediction.results[0]
    return json.dumps(body), JSON
