"""Which length-bucket costs make the handlers fastest (model/inference.py's
BATCH_OVERHEAD_STEPS and STEP_OVERHEAD_REVIEWS).

    .venv/bin/python bench/bucket_costs.py --model artifacts/bench/model/model.tar.gz
        [--checkout-code] [--settings 150:1 300:4 300:8 600:8] [--threads 1 2] [--rounds 3]

The first 6,400 test reviews in file order, 64 to a request, through the handlers
(inference_toolkit.batch_answers, as `sentiment evaluate` sends them), once per setting
OVERHEAD:STEP and torch thread count, the settings alternated round after round so that a
spell of load weighs on each alike. Prints one JSON object: reviews per second per round
and their median, and the LSTM's precision on this CPU (LSTM_PRECISION decides).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from functools import partial
from pathlib import Path

from prepare_speed import DEFAULT_ARCHIVE, machine

from contract.layout import MODEL_SOURCE_DIR
from sentiment import imdb_source, inference_toolkit
from sentiment.evaluation import read_reviews, torch_threads
from sentiment.model_loader import served_artifact


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, required=True, help="model.tar.gz")
    parser.add_argument(
        "--source", default=os.environ.get(imdb_source.SOURCE_ENV) or str(DEFAULT_ARCHIVE)
    )
    parser.add_argument("--cache-dir", type=Path, default=imdb_source.default_cache_dir())
    parser.add_argument("--checkout-code", action="store_true", help="the checkout's model/")
    parser.add_argument("--settings", nargs="+", default=["150:1", "300:4", "300:8", "600:8"])
    parser.add_argument("--threads", type=int, nargs="+", default=sorted({1, os.cpu_count()}))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--reviews", type=int, default=6400)
    args = parser.parse_args()
    settings = [tuple(float(part) for part in setting.split(":")) for setting in args.settings]
    texts = read_reviews(imdb_source.resolve(args.source, args.cache_dir), "test").texts
    texts = texts[: args.reviews]
    code = MODEL_SOURCE_DIR if args.checkout_code else None
    rates: dict[tuple[int, str], list[float]] = {}
    with served_artifact(args.model, code) as served:
        handlers = served.handlers
        default_buckets = handlers.length_buckets
        inference_toolkit.batch_answers(served, texts)  # warm the stem cache and kernels
        for _ in range(args.rounds):
            for threads in args.threads:
                for overhead, step in settings:
                    handlers.length_buckets = partial(
                        default_buckets, batch_overhead=overhead, step_overhead=step
                    )
                    with torch_threads(threads):
                        started = time.perf_counter()
                        inference_toolkit.batch_answers(served, texts)
                        seconds = time.perf_counter() - started
                    key = (threads, f"{overhead:g}:{step:g}")
                    rates.setdefault(key, []).append(round(len(texts) / seconds, 1))
        precision = getattr(served.model.network.lstm, "precision", "float32")
    print(
        json.dumps(
            {
                "model": str(args.model),
                "handlers": "checkout model/" if args.checkout_code else "the artifact's code/",
                "lstm_precision": precision,
                "reviews": len(texts),
                "defaults": f"{handlers.BATCH_OVERHEAD_STEPS:g}:{handlers.STEP_OVERHEAD_REVIEWS:g}",
                "reviews_per_second": [
                    {
                        "torch_threads": threads,
                        "setting": setting,
                        "rounds": values,
                        "median": statistics.median(values),
                    }
                    for (threads, setting), values in rates.items()
                ],
                "machine": machine(),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
