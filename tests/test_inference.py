"""The inference handlers, loaded from an artifact's code/ as the serving container loads them:
each content type, batches, every rejection with its status and message, and damaged artifacts."""

from __future__ import annotations

import itertools
import json
import math
import random
import re
import shutil
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from dataset import EncodedSplit, padded_batch
from model_artifacts import NEGATIVE_WORDS, NEUTRAL_WORDS, POSITIVE_WORDS, write_model_dir

from contract.layout import MODEL_SOURCE_DIR
from contract.limits import MAX_BATCH_REVIEWS
from contract.packaging import VENDOR_DIR
from sentiment import inference_toolkit
from sentiment.evaluation import torch_threads
from sentiment.model_loader import ServedModel, load_model_dir

JSON = "application/json"
TEXT = "text/plain"
PRAISE = "A wonderful film with a brilliant plot. <br /><br />The music is superb!"
SCORN = "An awful film: the plot is terrible and the music boring."


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread() -> Iterator[None]:
    # Tiny tensors gain nothing from more threads, and a busy machine makes them slower.
    with torch_threads(1):
        yield


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_model_dir(tmp_path_factory.mktemp("artifact") / "model")


@pytest.fixture(scope="module")
def served(model_dir: Path) -> ServedModel:
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("MAX_REVIEW_CHARS", raising=False)
        patch.delenv("LSTM_PRECISION", raising=False)
        return load_model_dir(model_dir)


def _answer(served: ServedModel, body: bytes, content_type: str, accept: str = JSON) -> dict:
    """The answer through the SageMaker inference toolkit, as the endpoint gives it."""
    response = inference_toolkit.invoke(served, body, content_type, accept)
    assert (response.status, response.content_type) == (200, JSON), response.body
    return json.loads(response.body)


@dataclass(frozen=True)
class Rejection:
    status_code: int
    message: str  # the body's first line; the toolkit adds the traceback after it

    def __str__(self) -> str:
        return self.message


def _rejection(served: ServedModel, body: bytes, content_type: str, accept: str = JSON):
    response = inference_toolkit.invoke(served, body, content_type, accept)
    assert response.status != 200, response.body
    return Rejection(response.status, response.body.decode().split("\n", 1)[0])


def test_the_serving_code_looks_for_its_packages_where_training_puts_them(
    served: ServedModel, model_dir: Path
) -> None:
    assert (model_dir / "code" / VENDOR_DIR / "bs4" / "__init__.py").is_file()
    vendored = served.handlers.vendored_packages.VENDOR
    assert vendored == (model_dir / "code" / VENDOR_DIR).resolve()


def test_handlers_and_the_modules_they_import_come_from_the_artifacts_code(
    served: ServedModel, model_dir: Path
):
    code = model_dir / "code"
    assert sorted(path.name for path in code.iterdir()) == [
        "explanation.py",
        "inference.py",
        "network.py",
        "preprocess.py",
        "vendor",
        "vendored_packages.py",
    ]
    assert Path(served.handlers.__file__) == code / "inference.py"
    handlers = served.handlers
    assert Path(handlers.SentimentNetwork.forward.__code__.co_filename) == code / "network.py"
    assert Path(handlers.Tokenizer.__call__.__code__.co_filename) == code / "preprocess.py"
    assert Path(handlers.explain.__code__.co_filename) == code / "explanation.py"
    # ...and nothing of it is left behind for the next import of those names.
    assert Path(sys.modules["preprocess"].__file__).parent == MODEL_SOURCE_DIR
    assert not {"inference", "network", "explanation"} & set(sys.modules)


@pytest.mark.parametrize("content_type", [TEXT, "text/plain; charset=utf-8", "Text/Plain"])
def test_plain_text_is_one_review(served: ServedModel, content_type: str):
    answer = _answer(served, PRAISE.encode(), content_type)
    assert set(answer) == {"sentiment", "score", "low_confidence", "model_version"}
    assert answer["sentiment"] == "positive"
    assert 0.5 < answer["score"] <= 1.0
    assert _answer(served, SCORN.encode(), content_type)["sentiment"] == "negative"


@pytest.mark.parametrize("content_type", [JSON, "application/json; charset=utf-8"])
def test_json_review_is_one_review(served: ServedModel, content_type: str):
    answer = _answer(served, json.dumps({"review": SCORN}).encode(), content_type)
    assert answer["sentiment"] == "negative"
    assert 0.0 <= answer["score"] < 0.5


def test_text_and_json_give_the_same_answer(served: ServedModel):
    assert _answer(served, PRAISE.encode(), TEXT) == _answer(
        served, json.dumps({"review": PRAISE}).encode(), JSON
    )


def test_every_answer_names_the_model_by_a_digest_of_its_files(
    served: ServedModel, model_dir: Path, tmp_path: Path
):
    version = _answer(served, PRAISE.encode(), TEXT)["model_version"]
    # The same files elsewhere are the same version; other weights are another.
    copy = shutil.copytree(model_dir, tmp_path / "copy")
    assert served.handlers.model_version(copy) == version
    weights = bytearray((copy / "model.pt").read_bytes())
    weights[-1] ^= 1
    (copy / "model.pt").write_bytes(bytes(weights))
    other = served.handlers.model_version(copy)
    assert re.fullmatch(r"[0-9a-f]{16}", version) and re.fullmatch(r"[0-9a-f]{16}", other)
    assert other != version


def test_a_batch_answers_each_review_in_order_as_if_alone(served: ServedModel):
    reviews = [PRAISE, SCORN, "film", "the", SCORN + " " + PRAISE * 3, "wonderful"]
    answer = _answer(served, json.dumps({"reviews": reviews}).encode(), JSON)
    assert list(answer) == ["predictions"]
    alone = [_answer(served, review.encode(), TEXT) for review in reviews]
    assert answer["predictions"] == alone
    assert [prediction["sentiment"] for prediction in alone[:2]] == ["positive", "negative"]


@pytest.mark.parametrize("in_flight", [2, 3])
def test_requests_in_flight_answer_in_order_and_never_more_at_once(
    served: ServedModel, monkeypatch: pytest.MonkeyPatch, in_flight: int
):
    requests = 8
    texts = [_words(count, seed) for seed, count in enumerate([5, 40, 1, 9] * 16 * requests)]
    one_at_a_time = inference_toolkit.batch_answers(served, texts)
    answer, running, most, lock = inference_toolkit._predictions, [0], [0], threading.Lock()

    def earliest_answered_last(model: ServedModel, body: str) -> list[dict]:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        request = texts.index(json.loads(body)["reviews"][0]) // MAX_BATCH_REVIEWS
        time.sleep(0.02 * (requests - request))
        try:
            return answer(model, body)
        finally:
            with lock:
                running[0] -= 1

    monkeypatch.setattr(inference_toolkit, "_predictions", earliest_answered_last)
    together = inference_toolkit.batch_answers(served, texts, in_flight=in_flight)
    assert together == one_at_a_time
    assert most[0] == in_flight


def test_a_review_refused_in_flight_is_reported_as_refused(served: ServedModel):
    texts = ["good film"] * 100 + [" "] + ["good film"] * 100
    with pytest.raises(inference_toolkit.RefusedReview, match="400"):
        inference_toolkit.batch_answers(served, texts, in_flight=2)


def test_the_largest_batch_and_the_longest_review_are_accepted(served: ServedModel):
    reviews = [f"{POSITIVE_WORDS[i % 3]} {NEGATIVE_WORDS[i % 2]} film {i}" for i in range(64)]
    answer = _answer(served, json.dumps({"reviews": reviews}).encode(), JSON)
    assert len(answer["predictions"]) == 64
    longest = ("superb " * 4000)[:20_000]
    assert _answer(served, longest.encode(), TEXT)["sentiment"] == "positive"


def test_a_review_of_only_stopwords_or_unknown_words_still_gets_an_answer(served: ServedModel):
    for review in ("the and of it", "zzyzx qwerty", "🎬 !!!"):
        answer = _answer(served, review.encode(), TEXT)
        assert 0.0 <= answer["score"] <= 1.0


# Gibberish, no words at all, stopwords only, and one known word among unknown ones: the last
# scores 0.88 on the word it knows, a confident number resting on a quarter of the review.
NOTHING_TO_GO_ON = ["zzyzx qwerty", "🎬 !!!", "the and of it", "wonderful zzyzx qwerty blorp"]
# Only known words, but none that carries an opinion: the score stays near even odds.
NEUTRAL_FACT = "The film has a plot and an actor."


def test_a_review_the_model_has_nothing_to_go_on_is_flagged_low_confidence(served: ServedModel):
    reviews = [*NOTHING_TO_GO_ON, NEUTRAL_FACT, PRAISE, SCORN]
    answer = _answer(served, json.dumps({"reviews": reviews}).encode(), JSON)
    flags = [prediction["low_confidence"] for prediction in answer["predictions"]]
    assert flags == [True] * (len(reviews) - 2) + [False, False]
    # The flag qualifies a verdict, it does not replace one.
    assert {prediction["sentiment"] for prediction in answer["predictions"]} <= {
        "positive",
        "negative",
    }
    assert _answer(served, NOTHING_TO_GO_ON[0].encode(), TEXT)["low_confidence"] is True
    assert _answer(served, PRAISE.encode(), TEXT)["low_confidence"] is False


def _flagged(served: ServedModel, score: float, words: int = 10, known: int = 10) -> bool:
    handlers = served.handlers
    return handlers.verdict(handlers.Scored(score, words, known))["low_confidence"]


def test_a_confidence_below_the_threshold_is_low_on_either_side(served: ServedModel):
    threshold = served.handlers.MIN_CONFIDENCE
    assert not _flagged(served, threshold)
    assert not _flagged(served, 1 - threshold)
    assert _flagged(served, threshold - 1e-6)
    assert _flagged(served, 1 - threshold + 1e-6)
    assert _flagged(served, 0.5)
    assert not _flagged(served, 0.999)
    assert not _flagged(served, 0.001)


def test_fewer_known_words_than_the_threshold_share_is_low_confidence(served: ServedModel):
    enough = math.ceil(10 * served.handlers.MIN_KNOWN_SHARE)
    assert not _flagged(served, 0.99, words=10, known=enough)
    assert _flagged(served, 0.99, words=10, known=enough - 1)
    assert _flagged(served, 0.99, words=1, known=0)
    # Stopwords only: the model read no word at all.
    assert _flagged(served, 0.99, words=0, known=0)


def test_the_verdict_keeps_its_side_and_score_when_flagged(served: ServedModel):
    handlers = served.handlers
    assert handlers.verdict(handlers.Scored(0.6, 10, 1)) == {
        "sentiment": "positive",
        "score": 0.6,
        "low_confidence": True,
    }
    assert handlers.verdict(handlers.Scored(0.0123456789, 4, 4)) == {
        "sentiment": "negative",
        "score": 0.012346,
        "low_confidence": False,
    }


def test_a_review_of_only_stopwords_is_encoded_as_the_training_job_encodes_it(
    served: ServedModel,
):
    handlers = served.handlers
    ids, lengths = handlers.encode_batch(handlers.encode_reviews(["the and of it"], served.model))
    # `sentiment prepare` stores such a review with no ids; training reads it back so.
    trained_ids, trained_lengths = padded_batch(EncodedSplit.from_reviews([[]], [1]), np.array([0]))
    assert (ids.tolist(), lengths.tolist()) == (trained_ids.tolist(), trained_lengths.tolist())


def _with_the_lstm_in_the_score(served: ServedModel) -> ServedModel:
    with torch.no_grad():
        served.model.network.fusion.weight.fill_(1.0)
    return served


@pytest.fixture(scope="module")
def both_branches(model_dir: Path) -> ServedModel:
    """The artifact with the LSTM branch in the score too, so that a batch which mixed up
    rows, or let a review read its neighbours' padding, would change the scores."""
    return _with_the_lstm_in_the_score(load_model_dir(model_dir))


def _words(count: int, seed: int) -> str:
    words = POSITIVE_WORDS + NEGATIVE_WORDS + NEUTRAL_WORDS + ("zzyzx",)
    generator = random.Random(seed)
    return " ".join(generator.choice(words) for _ in range(count))


def test_a_batch_of_mixed_lengths_in_mixed_order_scores_each_review_as_alone(
    both_branches: ServedModel,
):
    handlers, model = both_branches.handlers, both_branches.model
    # Lengths in no order, a review cut at max_length (500 words), one of stopwords only,
    # one with no words at all, and a review sent twice.
    lengths = [40, 3, 700, 17, 1, 230, 40, 9, 120, 60, 70, 80]
    reviews = [_words(n, seed) for seed, n in enumerate(lengths)]
    reviews[4:4] = ["the and of it", "🎬 !!!", reviews[0]]
    lengths = [len(ids) for ids in handlers.encode_reviews(reviews, model)]
    assert len(handlers.length_buckets(lengths)) > 2  # run as several batches, reordered
    batched = handlers.score_reviews(reviews, model)
    alone = [handlers.score_reviews([review], model)[0] for review in reviews]
    assert [(s.words, s.known) for s in batched] == [(s.words, s.known) for s in alone]
    assert [s.score for s in batched] == pytest.approx([s.score for s in alone], abs=1e-6)
    assert (alone[2].words, alone[4].words, alone[5].words) == (500, 0, 0)
    # Distinct but for the review sent twice and the two with no word to read.
    assert len({round(s.score, 4) for s in alone}) == len(reviews) - 2


def _torch_threads_of_a_new_thread() -> int:
    """The torch thread count a thread started now begins with."""
    counts: list[int] = []
    thread = threading.Thread(target=lambda: counts.append(torch.get_num_threads()))
    thread.start()
    thread.join()
    return counts[0]


def test_on_two_torch_threads_the_batches_run_side_by_side_with_the_same_scores(
    both_branches: ServedModel,
):
    handlers, model = both_branches.handlers, both_branches.model
    reviews = [_words(n, seed) for seed, n in enumerate([300, 3, 120, 40, 9, 700, 60, 1, 230])]
    lengths = [len(ids) for ids in handlers.encode_reviews(reviews, model)]
    assert len(handlers.length_buckets(lengths)) >= 2  # work for two workers
    serial = handlers.score_reviews(reviews, model)
    workers: dict[str, tuple[int, bool]] = {}
    # Each worker waits at its first batch for the other: one worker taking both shares
    # in turn would never get past it.
    both_started = threading.Barrier(2, timeout=10)
    network_forward = model.network.forward

    def forward(*inputs: torch.Tensor) -> torch.Tensor:
        name = threading.current_thread().name
        if name not in workers:
            workers[name] = (torch.get_num_threads(), torch.is_inference_mode_enabled())
            both_started.wait()
        return network_forward(*inputs)

    with torch_threads(2), pytest.MonkeyPatch.context() as patch:
        patch.setattr(model.network, "forward", forward)
        side_by_side = handlers.score_reviews(reviews, model)
        # Back on two threads, here and in a thread started after the request.
        assert (torch.get_num_threads(), _torch_threads_of_a_new_thread()) == (2, 2)
    assert [s.score for s in side_by_side] == pytest.approx([s.score for s in serial], abs=1e-6)
    assert [(s.words, s.known) for s in side_by_side] == [(s.words, s.known) for s in serial]
    # Two worker threads, neither of them this one, each on one torch thread, scoring in
    # inference mode.
    assert threading.current_thread().name not in workers
    assert list(workers.values()) == [(1, True), (1, True)]


def test_a_failing_batch_side_by_side_fails_the_request_and_leaves_the_threads_as_they_were(
    served: ServedModel,
):
    handlers, model = served.handlers, served.model
    reviews = [_words(n, seed) for seed, n in enumerate([300, 3, 120, 40, 9])]

    def broken(*inputs: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("broken batch")

    with torch_threads(2), pytest.MonkeyPatch.context() as patch:
        patch.setattr(model.network, "forward", broken)
        with pytest.raises(RuntimeError, match="broken batch"):
            handlers.score_reviews(reviews, model)
        assert (torch.get_num_threads(), _torch_threads_of_a_new_thread()) == (2, 2)


def test_worker_shares_deal_the_costliest_batches_first_to_the_least_loaded(
    served: ServedModel,
):
    handlers = served.handlers
    lengths = [500, 10, 10, 10, 400, 100]
    buckets = [[0], [1, 2, 3], [4], [5]]
    shares = handlers.worker_shares(buckets, lengths, 2)
    assert shares == [[[0], [1, 2, 3]], [[4], [5]]]
    assert handlers.worker_shares(buckets, lengths, 8) == [[[0]], [[4]], [[5]], [[1, 2, 3]]]
    assert handlers.worker_shares(buckets, lengths, 1) == [[[0], [4], [5], [1, 2, 3]]]


@pytest.mark.parametrize(
    ("setting", "amx", "precision"),
    [("auto", True, "bfloat16"), ("auto", False, "float32"), ("float32", True, "float32")],
)
def test_the_lstm_scores_in_bfloat16_on_a_cpu_with_amx_unless_told_float32(
    model_dir: Path, monkeypatch: pytest.MonkeyPatch, setting: str, amx: bool, precision: str
):
    monkeypatch.setenv("LSTM_PRECISION", setting)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)
    served = load_model_dir(model_dir)
    assert served.model.network.lstm.precision == precision
    monkeypatch.setenv("LSTM_PRECISION", "float32")
    reference = load_model_dir(model_dir)
    assert reference.model.network.lstm.precision == "float32"
    reviews = [PRAISE, SCORN, _words(120, 1)]
    scores, exact = (
        [one.score for one in loaded.handlers.score_reviews(reviews, loaded.model)]
        for loaded in (_with_the_lstm_in_the_score(served), _with_the_lstm_in_the_score(reference))
    )
    assert scores == pytest.approx(exact, abs=0.01)
    assert (scores != exact) == (precision == "bfloat16")


def test_an_unknown_lstm_precision_is_refused_by_name(
    model_dir: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("LSTM_PRECISION", "float16")
    with pytest.raises(ValueError, match="LSTM_PRECISION must be one of"):
        load_model_dir(model_dir)


def _batch_cost(buckets: list[list[int]], lengths: list[int], overhead: float, step: float):
    return sum(overhead + max(lengths[i] for i in b) * (step + len(b)) for b in buckets)


def test_length_buckets_cut_the_sorted_lengths_where_it_costs_least(served: ServedModel):
    length_buckets = served.handlers.length_buckets
    generator = random.Random(0)
    for _ in range(300):
        lengths = [generator.randint(1, 500) for _ in range(generator.randint(1, 8))]
        overhead, step = generator.choice([0, 10, 150, 2000]), generator.choice([0, 1, 5])
        buckets = length_buckets(lengths, overhead, step)
        order = [i for bucket in buckets for i in bucket]
        assert sorted(order) == list(range(len(lengths)))
        assert [lengths[i] for i in order] == sorted(lengths)
        cuttings = (  # every way to cut the sorted lengths into batches
            [order[start:end] for start, end in itertools.pairwise((0, *cuts, len(order)))]
            for size in range(len(order))
            for cuts in itertools.combinations(range(1, len(order)), size)
        )
        cheapest = min(_batch_cost(cutting, lengths, overhead, step) for cutting in cuttings)
        assert _batch_cost(buckets, lengths, overhead, step) == pytest.approx(cheapest)


def test_length_buckets_in_plain_cases(served: ServedModel):
    length_buckets = served.handlers.length_buckets
    assert length_buckets([7]) == [[0]]
    assert length_buckets([5, 5, 5]) == [[0, 1, 2]]
    # Batches cost nothing: no padding at all. Prohibitive: one batch.
    assert length_buckets([3, 1, 2, 1], 0, 0) == [[1, 3], [2], [0]]
    assert length_buckets([400, 1, 3], 100_000, 1) == [[1, 2, 0]]
    # One long review does not make 63 short ones read its length.
    assert length_buckets([500] + [10] * 63) == [list(range(1, 64)), [0]]


def test_scores_are_probabilities_matching_the_sentiment(served: ServedModel):
    reviews = [PRAISE, SCORN, "wonderful awful", "film"]
    answer = _answer(served, json.dumps({"reviews": reviews}).encode(), JSON)
    for prediction in answer["predictions"]:
        assert 0.0 <= prediction["score"] <= 1.0
        expected = "positive" if prediction["score"] >= 0.5 else "negative"
        assert prediction["sentiment"] == expected


@pytest.mark.parametrize("content_type", ["text/csv", "application/x-www-form-urlencoded", ""])
def test_other_content_types_are_refused_naming_the_accepted_ones(
    served: ServedModel, content_type: str
):
    error = _rejection(served, PRAISE.encode(), content_type)
    assert error.status_code == 415
    assert JSON in error.message and TEXT in error.message


REJECTED = [
    pytest.param(b"{not json", JSON, "not valid JSON", id="invalid-json"),
    pytest.param(b'["a review"]', JSON, '{"review": "..."}', id="json-list"),
    pytest.param(b'"a review"', JSON, '{"review": "..."}', id="json-string"),
    pytest.param(b'{"text": "a review"}', JSON, '{"review": "..."}', id="unknown-key"),
    pytest.param(b'{"review": "a", "reviews": ["b"]}', JSON, '{"review": "..."}', id="both-keys"),
    pytest.param(b'{"review": 5}', JSON, '"review" must be a string', id="review-not-string"),
    pytest.param(b'{"review": null}', JSON, '"review" must be a string', id="review-null"),
    pytest.param(b'{"reviews": "a review"}', JSON, "non-empty list", id="reviews-not-list"),
    pytest.param(b'{"reviews": []}', JSON, "non-empty list", id="reviews-empty"),
    pytest.param(b'{"reviews": ["fine", 3]}', JSON, r'"reviews"[1] must be a string', id="item"),
    pytest.param(b"", TEXT, "the review is empty", id="empty-text"),
    pytest.param(b" \n\t\r ", TEXT, "the review is empty", id="whitespace-text"),
    pytest.param(b'{"review": ""}', JSON, '"review" is empty', id="empty-json"),
    pytest.param(b'{"review": " \\n "}', JSON, '"review" is empty', id="whitespace-json"),
    pytest.param(b'{"reviews": ["fine", "  "]}', JSON, '"reviews"[1] is empty', id="empty-item"),
    pytest.param(b"caf\xe9 au lait", TEXT, "not valid UTF-8", id="latin-1-text"),
    # Deeper than Python's parser goes: a RecursionError inside json.loads, not a 500.
    pytest.param(b"[" * 100_000 + b"]" * 100_000, JSON, "not valid JSON", id="nested-100k"),
    # A JSON escape for half a surrogate pair is no character: the API's rule, too.
    pytest.param(b'{"review": "\\ud800 good"}', JSON, "not valid UTF-8 text", id="lone-surrogate"),
    pytest.param(
        b'{"reviews": ["fine", "\\udfff"]}',
        JSON,
        '"reviews"[1] is not valid UTF-8',
        id="item-surrogate",
    ),
]


@pytest.mark.parametrize(("body", "content_type", "message"), REJECTED)
def test_malformed_requests_are_refused_with_400_and_a_reason(
    served: ServedModel, body: bytes, content_type: str, message: str
):
    error = _rejection(served, body, content_type)
    assert error.status_code == 400
    assert message in error.message
    assert str(error) == error.message


def test_a_json_body_that_is_not_utf8_fails_in_the_toolkit_before_the_handlers(
    served: ServedModel,
):
    # The toolkit decodes application/json bodies as UTF-8 before input_fn sees them, and a
    # decoding error is not one of its own: the container answers 500 whatever inference.py
    # does. The API refuses such a body with 400 before it reaches the endpoint
    # (test_prediction_lambda.py); text/plain reaches input_fn as bytes and gets 400 (above).
    error = _rejection(served, b'{"review": "caf\xe9"}', JSON)
    assert error.status_code == 500
    assert "'utf-8' codec can't decode byte 0xe9" in error.message


def test_a_batch_of_65_is_refused(served: ServedModel):
    error = _rejection(served, json.dumps({"reviews": ["fine"] * 65}).encode(), JSON)
    assert error.status_code == 400
    assert "65" in error.message and "64" in error.message


@pytest.mark.parametrize(
    ("body", "content_type", "where"),
    [
        (("a" * 20_001).encode(), TEXT, "the review"),
        (json.dumps({"review": "a" * 20_001}).encode(), JSON, '"review"'),
        (json.dumps({"reviews": ["fine", "é" * 20_001]}).encode(), JSON, '"reviews"[1]'),
    ],
)
def test_reviews_over_20000_characters_are_refused_with_413(
    served: ServedModel, body: bytes, content_type: str, where: str
):
    error = _rejection(served, body, content_type)
    assert error.status_code == 413
    assert error.message.startswith(where)
    assert "20001" in error.message and "20000" in error.message


def test_the_review_size_limit_is_configurable(model_dir: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("MAX_REVIEW_CHARS", "100")
    served = load_model_dir(model_dir)
    assert _answer(served, ("a" * 100).encode(), TEXT)
    assert _rejection(served, ("a" * 101).encode(), TEXT).status_code == 413


@pytest.mark.parametrize("accept", ["text/csv", "text/html, text/plain", "image/*"])
def test_answers_in_other_media_types_are_refused_with_406(served: ServedModel, accept: str):
    error = _rejection(served, PRAISE.encode(), TEXT, accept)
    assert error.status_code == 406
    assert JSON in error.message


@pytest.mark.parametrize(
    "accept", [JSON, "application/json; charset=utf-8", "*/*", "application/*", "text/html, */*"]
)
def test_json_is_acceptable_however_it_is_asked_for(served: ServedModel, accept: str):
    assert _answer(served, PRAISE.encode(), TEXT, accept)["sentiment"] == "positive"


# -- damaged artifacts -------------------------------------------------------------


@pytest.fixture
def damaged(model_dir: Path, tmp_path: Path) -> Path:
    """A copy of the artifact for a test to damage."""
    return Path(shutil.copytree(model_dir, tmp_path / "model"))


def _artifact_error(served: ServedModel, model_dir: Path) -> str:
    with pytest.raises(served.handlers.ArtifactError) as caught:
        served.handlers.model_fn(str(model_dir))
    return str(caught.value)


def test_truncated_weights_are_named(served: ServedModel, damaged: Path):
    weights = damaged / "model.pt"
    weights.write_bytes(weights.read_bytes()[:1000])
    message = _artifact_error(served, damaged)
    assert str(weights) in message and "corrupt" in message


def test_missing_weights_are_named(served: ServedModel, damaged: Path):
    (damaged / "model.pt").unlink()
    message = _artifact_error(served, damaged)
    assert str(damaged / "model.pt") in message and "missing" in message


def test_weights_that_are_not_plain_tensors_are_refused(served: ServedModel, damaged: Path):
    # weights_only=True: a pickle that would build arbitrary objects is never unpickled.
    torch.save({"embedding.weight": Path("/etc/passwd")}, damaged / "model.pt")
    assert str(damaged / "model.pt") in _artifact_error(served, damaged)


def test_weights_of_another_network_are_refused(served: ServedModel, damaged: Path):
    state = torch.load(damaged / "model.pt", weights_only=True)
    state["embedding.weight"] = torch.zeros(3, 3)
    torch.save(state, damaged / "model.pt")
    assert str(damaged / "model.pt") in _artifact_error(served, damaged)


def test_invalid_vocabulary_json_is_named(served: ServedModel, damaged: Path):
    vocabulary = damaged / "vocabulary.json"
    vocabulary.write_text('{"words": ["film", ')
    message = _artifact_error(served, damaged)
    assert str(vocabulary) in message and "corrupt" in message


def test_missing_config_is_named(served: ServedModel, damaged: Path):
    (damaged / "model_config.json").unlink()
    message = _artifact_error(served, damaged)
    assert str(damaged / "model_config.json") in message and "missing" in message


def test_config_for_another_vocabulary_names_both_files(served: ServedModel, damaged: Path):
    config_file = damaged / "model_config.json"
    config = json.loads(config_file.read_text())
    config_file.write_text(json.dumps(config | {"vocabulary_size": config["vocabulary_size"] + 1}))
    message = _artifact_error(served, damaged)
    assert "model_config.json" in message and "vocabulary.json" in message


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("vocabulary.json", '{"settings": {}}'),
        ("model_config.json", '{"vocabulary_size": 16, "colour": "blue"}'),
    ],
)
def test_settings_of_the_wrong_shape_are_named(
    served: ServedModel, damaged: Path, name: str, content: str
):
    (damaged / name).write_text(content)
    assert str(damaged / name) in _artifact_error(served, damaged)


def test_the_artifacts_calibrated_fusion_is_what_the_endpoint_serves(tmp_path: Path):
    """The fusion, fitted on validation reviews and their crops, is the calibration: it
    travels in model.pt and the served score is its sigmoid, length terms included."""
    directory = write_model_dir(tmp_path / "model")
    weights = torch.load(directory / "model.pt", weights_only=True)
    # Only the length terms: 1/sqrt(length) * 3 (n-gram logit 0 for neutral words) + 0.5.
    weights["fusion.weight"] = torch.tensor([[0.0, 0.0, 0.0, 0.0, 3.0]])
    weights["fusion.bias"] = torch.tensor([0.5])
    torch.save(weights, directory / "model.pt")
    served = load_model_dir(directory)
    for words in (1, 4, 9):
        answer = _answer(served, " ".join(["film"] * words).encode(), TEXT)
        expected = 1 / (1 + math.exp(-(0.5 + 3 / math.sqrt(words))))
        assert answer["score"] == pytest.approx(expected, abs=1e-6)


def test_an_artifact_from_before_the_length_aware_fusion_still_serves(tmp_path: Path):
    directory = write_model_dir(tmp_path / "model")
    config = json.loads((directory / "model_config.json").read_text())
    del config["length_aware_fusion"]
    (directory / "model_config.json").write_text(json.dumps(config))
    weights = torch.load(directory / "model.pt", weights_only=True)
    weights["fusion.weight"] = torch.tensor([[0.0, 1.0]])
    torch.save(weights, directory / "model.pt")
    served = load_model_dir(directory)
    assert _answer(served, b"wonderful", TEXT)["score"] == pytest.approx(1 / (1 + math.exp(-2)))
