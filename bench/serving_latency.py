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
import http.client
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from statistics import quantiles
from urllib.parse import urlsplit

import httpx
import torch

from sentiment import PROJECT_ROOT, inference_toolkit
from sentiment.model_loader import JSON, served_artifact

SAMPLE_REVIEWS = PROJECT_ROOT / "tests" / "data" / "sample_reviews.json"
MEDIAN_REVIEW_FILE = "train/pos/1402_7.txt"
BATCH = 64


def _sample_reviews() -> list[dict]:
    return json.loads(SAMPLE_REVIEWS.read_text(encoding="utf-8"))["reviews"]


def _percentiles_ms(seconds: list[float]) -> dict[str, float]:
    cuts = quantiles(seconds, n=100, method="inclusive")
    return {"p50_ms": round(cuts[49] * 1000, 3), "p99_ms": round(cuts[98] * 1000, 3)}


def _timed(call, repeats: int) -> list[float]:
    durations = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        durations.append(time.perf_counter() - started)
    return durations


def in_process(model: Path, repeats: int) -> dict:
    torch.set_num_threads(1)
    reviews = _sample_reviews()
    review = next(r["text"] for r in reviews if r["file"] == MEDIAN_REVIEW_FILE)
    body = json.dumps({"review": review}).encode()
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
        "handlers": _percentiles_ms(handlers),
        "predict_fn": _percentiles_ms(predict),
        "batch_of_64_reviews_per_second": round(BATCH * batches / sum(batch_seconds), 1),
    }


def run_load(url: str, bodies: list[bytes], concurrency: int, seconds: float) -> dict:
    """``concurrency`` closed-loop clients POSTing ``bodies`` in turn for ``seconds``.

    Each client is a thread with one keep-alive connection (http.client): a tenth of the CPU
    an asyncio httpx client spends per request, which on two cores is taken from the servers.
    """
    parts = urlsplit(url)
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    deadline = time.perf_counter() + seconds

    def client_loop(offset: int) -> None:
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=35)
        sent = offset
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            try:
                connection.request(
                    "POST",
                    parts.path,
                    body=bodies[sent % len(bodies)],
                    headers={"Content-Type": "application/json"},
                )
                response = connection.getresponse()
                answer = response.read()
                outcome = str(response.status)
                if response.status == 200 and b'"sentiment"' not in answer:
                    outcome = "200 without a verdict"
            except (OSError, http.client.HTTPException) as error:
                outcome = type(error).__name__
                connection.close()
            latencies.append(time.perf_counter() - started)
            if outcome != "200":
                errors[outcome] += 1
            sent += 1
        connection.close()

    started = time.perf_counter()
    clients = [threading.Thread(target=client_loop, args=(i,)) for i in range(concurrency)]
    for client in clients:
        client.start()
    for client in clients:
        client.join()
    elapsed = time.perf_counter() - started
    return {
        "concurrency": concurrency,
        "seconds": round(elapsed, 1),
        "requests": len(latencies),
        "requests_per_second": round(len(latencies) / elapsed, 1),
        **_percentiles_ms(latencies),
        "errors": sum(errors.values()),
        "errors_by_kind": dict(errors),
    }


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_until_serving(url: str, stack: subprocess.Popen, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if stack.poll() is not None:
            raise RuntimeError(f"sentiment up exited with status {stack.returncode}")
        try:
            if httpx.options(url, timeout=1.0, trust_env=False).status_code == 204:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the local API did not start within {timeout:.0f} s")


def end_to_end(model: Path, api_url: str | None, concurrency: int, seconds: float) -> dict:
    bodies = [json.dumps({"review": r["text"]}).encode() for r in _sample_reviews()]
    if api_url:
        return run_load(api_url, bodies, concurrency, seconds)
    ports = [_free_port() for _ in range(3)]
    api_url = f"http://127.0.0.1:{ports[1]}/predict"
    command = [
        *(sys.executable, "-m", "sentiment.cli", "up", "--model", str(model)),
        *("--port", str(ports[0]), "--api-port", str(ports[1]), "--endpoint-port", str(ports[2])),
    ]
    with tempfile.TemporaryFile() as log:
        # The Lambda logs a line per request; keep them out of the report.
        stack = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        try:
            _wait_until_serving(api_url, stack)
            run_load(api_url, bodies[:4], concurrency, 2.0)  # warm-up
            return run_load(api_url, bodies, concurrency, seconds)
        finally:
            stack.send_signal(signal.SIGTERM)
            stack.wait(30)


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
