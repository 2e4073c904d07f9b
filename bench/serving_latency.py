"""How fast a trained model answers: in process, and through the whole local stack.

    .venv/bin/python bench/serving_latency.py --model artifacts/model/model.tar.gz
        [--source SOURCE] [--batch-reviews 6400] [--batch-threads 1 2] [--checkout-code]
        [--seconds 30] [--concurrency 16] [--api-url URL] [--skip-end-to-end]

1. In process: the artifact's handlers (input_fn → predict_fn → output_fn, through the
   serving toolkit's request path). One torch thread: one median-length IMDB review (173
   words; the corpus median is 174), p50/p99 over many calls, and predict_fn alone on the
   same review, also on each --batch-threads count, alternated. Then the first
   --batch-reviews test reviews in file order (as `sentiment evaluate` reads them) sent 64 to a
   request, with one torch thread and with one per core (--batch-threads; on more than one,
   a request's length batches run side by side): reviews per second, on a second pass (a
   serving process's stem cache and kernels are warm) and on the first; the same reviews
   sorted by length before they are cut into requests (no padding: the bound for bucketing
   inside a request); and the tokenizer alone on the same reviews, for its share. Beside the
   single review and the requests sorted by length, the network's LSTM alone (both
   directions' recurrence over the reviews' embeddings, length-bucketed as a request buckets
   them): the part of the work no handler change can skip, a floor for this network. And the
   same file-order requests with as many in flight as --batch-threads' largest count, on
   each count of torch threads. --checkout-code loads the artifact's weights with the
   checkout's model/ handlers instead of the artifact's own code/. `lstm_precision` says
   what the handlers ran the LSTM in on this CPU (bfloat16 where it has AMX, unless
   LSTM_PRECISION=float32 is set).
2. End to end over loopback: ``sentiment up --model ...`` on free ports (or the API at
   --api-url), then a bounded load generator — --concurrency clients, each sending its next
   review as soon as the last is answered, for --seconds — reports requests per second,
   p50/p99 latency and the count of anything but a 200 verdict.

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
from local_api_load import local_stack, percentiles_ms, review_body, run_load, sample_reviews
from prepare_speed import DEFAULT_ARCHIVE

from contract.layout import MODEL_SOURCE_DIR
from contract.limits import MAX_BATCH_REVIEWS
from sentiment import imdb_source, inference_toolkit
from sentiment.evaluation import read_reviews, torch_threads
from sentiment.model_loader import JSON, ServedModel, served_artifact

MEDIAN_REVIEW_FILE = "train/pos/1402_7.txt"


def _timed(call, repeats: int) -> list[float]:
    durations = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        durations.append(time.perf_counter() - started)
    return durations


def one_review(served: ServedModel, repeats: int, threads: list[int]) -> dict:
    review = next(r["text"] for r in sample_reviews() if r["file"] == MEDIAN_REVIEW_FILE)
    body = review_body(review)

    def one() -> None:
        answer = inference_toolkit.invoke(served, body, JSON, JSON)
        assert answer.status == 200, answer.body

    request = served.handlers.input_fn(body.decode(), JSON)
    lstm = _lstm_alone(served, [review])

    def predict() -> None:
        served.handlers.predict_fn(request, served.model)

    with torch_threads(1):
        _timed(one, 50)  # warm-up
        handlers = _timed(one, repeats)
        recurrence = _timed(lstm, repeats)
    by_threads = {}
    for count in threads:  # alternated, so that a spell of load weighs on each alike
        with torch_threads(count):
            _timed(predict, 50)
            by_threads[count] = _timed(predict, repeats // 2)
    for count in threads:
        with torch_threads(count):
            by_threads[count] += _timed(predict, repeats - repeats // 2)
    return {
        "torch_threads": 1,
        "review_words": len(review.split()),
        "calls": repeats,
        "handlers": percentiles_ms(handlers),
        "predict_fn": percentiles_ms(by_threads.get(1) or _timed(predict, repeats)),
        "predict_fn_by_torch_threads": {
            str(count): percentiles_ms(durations) for count, durations in by_threads.items()
        },
        "lstm_alone": percentiles_ms(recurrence),
    }


def _lstm_alone(served: ServedModel, texts: list[str]) -> Callable[[], None]:
    """A call that runs the network's LSTM module, and nothing else, over `texts` cut into
    MAX_BATCH_REVIEWS-review requests and length-bucketed as the handlers bucket them."""
    handlers, network = served.handlers, served.model.network
    batches = []
    with torch.inference_mode():
        for start in range(0, len(texts), MAX_BATCH_REVIEWS):
            request = texts[start : start + MAX_BATCH_REVIEWS]
            encoded = handlers.encode_reviews(request, served.model)
            for bucket in handlers.length_buckets([len(review) for review in encoded]):
                ids, lengths = handlers.encode_batch([encoded[row] for row in bucket])
                batches.append((network.embedding(ids), lengths))

    def run() -> None:
        with torch.inference_mode():
            for embedded, lengths in batches:
                network.lstm(embedded, lengths)

    return run


def batches_in_file_order(served: ServedModel, texts: list[str], threads: list[int]) -> dict:
    """Requests of MAX_BATCH_REVIEWS test reviews, sent as `sentiment evaluate` sends them
    (inference_toolkit.batch_answers); and the same reviews sorted by length first, so that
    each request's reviews are as long as each other: no padding to skip, the most that
    bucketing inside a request can reach."""
    model = served.model
    words = {text: len(model.vocabulary.ids(model.tokenizer(text))) for text in texts}
    orders = {"file_order": texts, "sorted_by_length": sorted(texts, key=words.__getitem__)}

    def send_all(reviews: list[str], in_flight: int = 1) -> None:
        inference_toolkit.batch_answers(served, reviews, in_flight=in_flight)

    lstm_sorted = _lstm_alone(served, orders["sorted_by_length"])
    in_flight = max(threads)
    throughput = []
    for count in threads:
        with torch_threads(count):
            # The first pass fills the stem cache and builds oneDNN's kernels for these batch
            # shapes: with two threads it ran 6 to 27 % slower.
            first = sum(_timed(lambda: send_all(texts), 1))
            seconds = {
                order: sum(_timed(lambda reviews=reviews: send_all(reviews), 1))
                for order, reviews in orders.items()
            }
            # As many requests in flight as the most threads measured, on `count` each.
            send_all(texts, in_flight)  # warm-up: the worker threads' first work
            concurrent = sum(_timed(lambda: send_all(texts, in_flight), 1))
            lstm_sorted()  # warm-up
            lstm_seconds = sum(_timed(lstm_sorted, 1))
        throughput.append(
            {
                "torch_threads": count,
                "reviews_per_second": round(len(texts) / seconds["file_order"], 1),
                "first_pass_reviews_per_second": round(len(texts) / first, 1),
                "sorted_by_length_reviews_per_second": round(
                    len(texts) / seconds["sorted_by_length"], 1
                ),
                "lstm_alone_sorted_by_length_reviews_per_second": round(
                    len(texts) / lstm_seconds, 1
                ),
                # How a server with a worker per core spends its cores (the serving
                # container's workers; contract/serving_workers.py).
                "requests_in_flight": in_flight,
                "in_flight_reviews_per_second": round(len(texts) / concurrent, 1),
            }
        )

    def tokenize() -> None:
        for text in texts:
            model.vocabulary.ids(model.tokenizer(text))

    tokenizer_seconds = sum(_timed(tokenize, 1))
    return {
        "reviews": len(texts),
        "request_batch": MAX_BATCH_REVIEWS,
        "mean_words_read": round(sum(words.values()) / len(texts), 1),
        "handlers": throughput,
        # Pure Python: one thread whatever torch's setting.
        "tokenizer_reviews_per_second": round(len(texts) / tokenizer_seconds, 1),
    }


def end_to_end(model: Path, api_url: str | None, concurrency: int, seconds: float) -> dict:
    bodies = [review_body(r["text"]) for r in sample_reviews()]
    if api_url:
        return run_load(api_url, bodies, concurrency, seconds)
    # The Lambda logs a line per request; keep them out of the report.
    with tempfile.TemporaryFile() as log, local_stack(model, log) as stack:
        run_load(stack.api_url, bodies[:4], concurrency, 2.0)  # warm-up
        return run_load(stack.api_url, bodies, concurrency, seconds)


def run_header(model: Path, checkout_code: bool) -> dict:
    """What a run measured and where: the model, whose handlers, the machine and its load."""
    return {
        "model": str(model),
        "handlers": "checkout model/" if checkout_code else "the artifact's code/",
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "load_average_at_start": [round(load, 2) for load in os.getloadavg()],
        "torch": torch.__version__,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True, help="model.tar.gz")
    parser.add_argument("--repeats", type=int, default=2000, help="in-process calls to time")
    parser.add_argument(
        "--source",
        default=os.environ.get(imdb_source.SOURCE_ENV) or str(DEFAULT_ARCHIVE),
        help="the IMDB archive or aclImdb directory the test reviews come from",
    )
    parser.add_argument("--cache-dir", type=Path, default=imdb_source.default_cache_dir())
    parser.add_argument("--batch-reviews", type=int, default=6400, help="0: skip the batches")
    parser.add_argument(
        "--batch-threads", type=int, nargs="+", default=sorted({1, os.cpu_count() or 1})
    )
    parser.add_argument(
        "--checkout-code", action="store_true", help="the checkout's model/ handlers"
    )
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--api-url", help="load this API instead of starting the local stack")
    parser.add_argument("--skip-end-to-end", action="store_true")
    args = parser.parse_args()
    results = run_header(args.model, args.checkout_code)
    code = MODEL_SOURCE_DIR if args.checkout_code else None
    with served_artifact(args.model, code) as served:
        # What the handlers' model_fn chose for this CPU (LSTM_PRECISION); older code: float32.
        results["lstm_precision"] = getattr(served.model.network.lstm, "precision", "float32")
        results["in_process_one_review"] = one_review(served, args.repeats, args.batch_threads)
        if args.batch_reviews:
            root = imdb_source.resolve(args.source, args.cache_dir)
            texts = read_reviews(root, "test").texts[: args.batch_reviews]
            results["in_process_batches_in_file_order"] = batches_in_file_order(
                served, texts, args.batch_threads
            )
    results["load_average_after_in_process"] = [round(load, 2) for load in os.getloadavg()]
    if not args.skip_end_to_end:
        results["local_api"] = end_to_end(args.model, args.api_url, args.concurrency, args.seconds)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
