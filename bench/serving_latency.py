"""How fast a trained model answers: in process, and through the whole local stack.

    .venv/bin/python bench/serving_latency.py --model artifacts/model/model.tar.gz
        [--seconds 30] [--concurrency 16] [--api-url URL]

1. In process, one torch thread: the artifact's handlers (input_fn → predict_fn → output_fn,
   through the serving toolkit's request path) on one median-length IMDB review (173 words;
   the corpus median is 174), p50/p99 over many calls; predict_fn alone on the same review;
   and reviews per second for batches of 64.
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
from pathlib import Path

import torch
from local_api_load import local_stack, percentiles_ms, review_body, run_load, sample_reviews

from sentiment import inference_toolkit
from sentiment.model_loader import JSON, served_artifact

MEDIAN_REVIEW_FILE = "train/pos/1402_7.txt"
BATCH = 64


def _timed(call, repeats: int) -> list[float]:
    durations = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        durations.append(time.perf_counter() - started)
    return durations


def in_process(model: Path, repeats: int) -> dict:
    torch.set_num_threads(1)
    reviews = sample_reviews()
    review = next(r["text"] for r in reviews if r["file"] == MEDIAN_REVIEW_FILE)
    body = review_body(review)
    batch_body = json.dumps(
        {"reviews": [reviews[i % len(reviews)]["text"] for i in range(BATCH)]}
    ).encode()
    with served_artifact(model) as served:

        def one() -> None:
            answer = inference_toolkit.invoke(served, body, JSON, JSON)
            assert answer.status == 200, answer.body

        request = served.handlers.input_fn(body.decode(), JSON)
        _timed(one, 50)  # warm-up
        handlers = _timed(one, repeats)
        predict = _timed(lambda: served.handlers.predict_fn(request, served.model), repeats)
        batches = max(3, repeats // 200)
        batch_seconds = _timed(
            lambda: inference_toolkit.invoke(served, batch_body, JSON, JSON), batches
        )
    return {
        "review_words": len(review.split()),
        "calls": repeats,
        "handlers": percentiles_ms(handlers),
        "predict_fn": percentiles_ms(predict),
        "batch_of_64_reviews_per_second": round(BATCH * batches / sum(batch_seconds), 1),
    }


def end_to_end(model: Path, api_url: str | None, concurrency: int, seconds: float) -> dict:
    bodies = [review_body(r["text"]) for r in sample_reviews()]
    if api_url:
        return run_load(api_url, bodies, concurrency, seconds)
    # The Lambda logs a line per request; keep them out of the report.
    with tempfile.TemporaryFile() as log, local_stack(model, log) as stack:
        run_load(stack.api_url, bodies[:4], concurrency, 2.0)  # warm-up
        return run_load(stack.api_url, bodies, concurrency, seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True, help="model.tar.gz")
    parser.add_argument("--repeats", type=int, default=2000, help="in-process calls to time")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--api-url", help="load this API instead of starting the local stack")
    parser.add_argument("--skip-end-to-end", action="store_true")
    args = parser.parse_args()
    results = {
        "model": str(args.model),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "load_average_at_start": [round(load, 2) for load in os.getloadavg()],
        "torch": torch.__version__,
        "in_process_one_thread": in_process(args.model, args.repeats),
    }
    if not args.skip_end_to_end:
        results["local_api"] = end_to_end(args.model, args.api_url, args.concurrency, args.seconds)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
