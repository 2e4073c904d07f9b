"""What recording the traffic costs the request path (issue #14's targets).

1. In process: one record built and written by the endpoint emulator's capture
   (contract/capture.py: TrafficCapture over a DirectoryCaptureWriter), for a typical review
   and answer; median and p99 over --repeats calls. Target: at most 1 ms a request. Beside
   it, the prediction handler keeping the prediction for feedback in the local store
   (lambda_src/prediction/records.py, SQLite; DynamoDB's PutItem in AWS).
2. End to end: the local API at --concurrency for --seconds, recording as deployed by default
   (all traffic captured, every prediction kept for feedback) and recording nothing,
   alternated --rounds times (each round a fresh stack); requests/s of each, and the drop.
   Target: at most 5 % fewer.

    python bench/capture_cost.py --model artifacts/bench/model/model.tar.gz
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from local_api_load import local_stack, review_body, run_load, sample_reviews
from prepare_speed import machine

from contract.api import ENDPOINT_VARIANT
from contract.capture import DirectoryCaptureWriter, TrafficCapture, read_records
from lambda_src.prediction.records import SqlitePredictionStore

ANSWER = (
    b'{"sentiment": "positive", "score": 0.912345, "low_confidence": false, '
    b'"model_version": "3f9c2a71d04b8e65"}'
)


def in_process(repeats: int) -> dict:
    bodies = [review_body(review["text"]) for review in sample_reviews()]
    with tempfile.TemporaryDirectory() as root:
        writer = DirectoryCaptureWriter(Path(root), "endpoint", ENDPOINT_VARIANT)
        capture = TrafficCapture(writer.write, 100)
        seconds = []
        for i in range(repeats):
            started = time.perf_counter()
            capture(
                request=bodies[i % len(bodies)],
                request_type="application/json",
                response=ANSWER,
                response_type="application/json",
                inference_id=f"prediction-{i}",
            )
            seconds.append(time.perf_counter() - started)
        written = sum(1 for p in Path(root).rglob("*.jsonl") for _ in read_records(p.open("rb")))
    cuts = statistics.quantiles(seconds, n=100)
    return {
        "records": written,
        "mean_review_bytes": round(statistics.mean(map(len, bodies))),
        "p50_ms": round(cuts[49] * 1000, 4),
        "p99_ms": round(cuts[98] * 1000, 4),
    }


def prediction_keeping(repeats: int) -> dict:
    reviews = [review["text"] for review in sample_reviews()]
    with tempfile.TemporaryDirectory() as root:
        store = SqlitePredictionStore(str(Path(root) / "predictions.sqlite"))
        seconds = []
        for i in range(repeats):
            record = {
                "prediction_id": f"{i:08d}-0000-4000-8000-000000000000",
                "review": reviews[i % len(reviews)],
                "score": 0.91,
            }
            started = time.perf_counter()
            store.put(record, int(time.time()) + 86_400)
            seconds.append(time.perf_counter() - started)
    cuts = statistics.quantiles(seconds, n=100)
    return {"p50_ms": round(cuts[49] * 1000, 4), "p99_ms": round(cuts[98] * 1000, 4)}


def end_to_end(model: Path, rounds: int, concurrency: int, seconds: float) -> dict:
    bodies = [review_body(review["text"]) for review in sample_reviews()]
    rates: dict[str, list[float]] = {"without": [], "with": []}
    errors = 0
    for _ in range(rounds):
        for setting in ("without", "with"):
            with (
                tempfile.TemporaryDirectory() as records,
                tempfile.TemporaryFile() as log,
                local_stack(model, log, Path(records) if setting == "with" else None) as stack,
            ):
                run_load(stack.api_url, bodies[:4], concurrency, 2.0)  # warm-up
                load = run_load(stack.api_url, bodies, concurrency, seconds)
                rates[setting].append(load["requests_per_second"])
                errors += load["errors"]
    without, with_ = statistics.mean(rates["without"]), statistics.mean(rates["with"])
    return {
        "concurrency": concurrency,
        "seconds_each": seconds,
        "requests_per_second": rates,
        "drop_percent": round((without - with_) / without * 100, 1),
        "errors": errors,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, required=True, help="model.tar.gz")
    parser.add_argument("--repeats", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    report = {
        "machine": machine(),
        "in_process_record": in_process(args.repeats),
        "in_process_prediction_kept": prediction_keeping(args.repeats),
    }
    if args.rounds:
        report["local_api"] = end_to_end(args.model, args.rounds, args.concurrency, args.seconds)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
