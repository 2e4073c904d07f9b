"""What an explanation costs, and how many integrated-gradient steps it needs.

    .venv/bin/python bench/explanation_cost.py --model artifacts/model/model.tar.gz
        [--repeats 300] [--threads 2] [--checkout-code]

1. In process, through the artifact's handlers and the serving toolkit's request path, with
   --threads torch threads (default: every core): the median-length IMDB review kept with
   the tests (173 words), and a page-length text (its first 30 words), answered plain and
   with `"explain": true`, p50/p99 over --repeats calls each, interleaved so that a slow
   spell hits both alike. Target (issue 16): the explained 173-word review at most 20 ms at
   the median; the plain answer unchanged.
2. The integrated gradients' quadrature points, on the 24 sample reviews (10 to 644 words):
   for each count, the median time of the shares alone, how far the shares miss adding up
   (the completeness gap: the LSTM shares' sum against lstm(review) - lstm(empty review),
   taken to the final logit's scale, in logit units), and how far the shares of the final
   logit move from those taken with 128 steps, relative to the review's largest share.

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from statistics import median

import torch
from local_api_load import percentiles_ms, sample_reviews
from serving_latency import MEDIAN_REVIEW_FILE, run_header

from contract.layout import MODEL_SOURCE_DIR
from sentiment import inference_toolkit
from sentiment.evaluation import torch_threads
from sentiment.model_loader import JSON, ServedModel, import_isolated, served_artifact

STEP_COUNTS = (1, 4, 6, 8, 16, 32)
REFERENCE_STEPS = 128
PAGE_LENGTH_WORDS = 30


def one_review(served: ServedModel, review: str, repeats: int) -> dict:
    model = served.model
    words_read = len(model.vocabulary.ids(model.tokenizer(review)))
    explanation = import_isolated(Path(served.handlers.__file__).parent, "explanation")
    bodies = {
        "plain": json.dumps({"review": review}).encode(),
        "explained": json.dumps({"review": review, "explain": True}).encode(),
    }
    durations: dict[str, list[float]] = {name: [] for name in bodies}
    for round_ in range(repeats + 20):
        for name, body in bodies.items():
            started = time.perf_counter()
            answer = inference_toolkit.invoke(served, body, JSON, JSON)
            elapsed = time.perf_counter() - started
            assert answer.status == 200, answer.body
            if round_ >= 20:  # the first calls warm the stem cache and oneDNN's kernels
                durations[name].append(elapsed)
    return {
        "review_words": len(review.split()),
        "words_read": words_read,
        "quadrature_points": explanation.integration_steps(words_read),
        "calls_each": repeats,
        **{name: percentiles_ms(values) for name, values in durations.items()},
    }


def step_study(served: ServedModel) -> list[dict]:
    explanation = import_isolated(Path(served.handlers.__file__).parent, "explanation")
    model = served.model
    rows = []
    reviews = []
    for sample in sample_reviews():
        ids = model.vocabulary.ids(model.tokenizer(sample["text"]))
        if ids:
            reviews.append(torch.tensor(ids))
    reference = [explanation.step_shares(model.network, ids, REFERENCE_STEPS)[0] for ids in reviews]
    for steps in STEP_COUNTS:
        seconds, gaps, moves = [], [], []
        for ids, best in zip(reviews, reference, strict=True):
            lengths = torch.tensor([ids.numel()])
            with torch.no_grad():
                whole = model.network.lstm_logit(ids[None], lengths)
                empty = model.network.lstm_logit(torch.zeros_like(ids)[None], lengths)
            started = time.perf_counter()
            shares, _ = explanation.step_shares(model.network, ids, steps)
            seconds.append(time.perf_counter() - started)
            with torch.enable_grad():
                lstm = explanation.lstm_integrated_gradients(model.network, ids, steps)
            slope = explanation.branch_slopes(model.network, ids.numel())[0].item()
            gaps.append(abs(slope * (lstm.sum() - (whole - empty)).item()))
            moves.append(((shares - best).abs().max() / best.abs().max()).item())
        rows.append(
            {
                "steps": steps,
                "median_ms": round(median(seconds) * 1000, 2),
                "median_completeness_gap": round(median(gaps), 4),
                "largest_completeness_gap": round(max(gaps), 4),
                "median_shift_from_128_steps": round(median(moves), 4),
                "largest_shift_from_128_steps": round(max(moves), 4),
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True, help="model.tar.gz")
    parser.add_argument("--repeats", type=int, default=300, help="in-process calls to time")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument(
        "--checkout-code", action="store_true", help="the checkout's model/ handlers"
    )
    args = parser.parse_args()
    results = run_header(args.model, args.checkout_code) | {"torch_threads": args.threads}
    with (
        served_artifact(args.model, MODEL_SOURCE_DIR if args.checkout_code else None) as served,
        torch_threads(args.threads),
    ):
        review = next(r["text"] for r in sample_reviews() if r["file"] == MEDIAN_REVIEW_FILE)
        results["in_process_one_review"] = one_review(served, review, args.repeats)
        short = " ".join(review.split()[:PAGE_LENGTH_WORDS])
        results["in_process_page_length_text"] = one_review(served, short, args.repeats)
        results["integrated_gradient_steps"] = step_study(served)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
