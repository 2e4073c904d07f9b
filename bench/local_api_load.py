"""Loading the local prediction API over loopback: the stack on free ports, closed-loop clients.

Shared by bench/serving_latency.py and bench/soak.py.
"""

from __future__ import annotations

import http.client
import itertools
import json
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from statistics import quantiles
from typing import BinaryIO
from urllib.parse import urlsplit

import httpx
import psutil

from contract.layout import PROJECT_ROOT

SAMPLE_REVIEWS = PROJECT_ROOT / "tests" / "data" / "sample_reviews.json"
START_SECONDS = 120.0
STOP_SECONDS = 30.0
_LOG_TAIL_BYTES = 4096


def sample_reviews() -> list[dict]:
    """The 24 IMDB reviews kept with the tests: {"file", "text"} each, 10 to 644 words."""
    return json.loads(SAMPLE_REVIEWS.read_text(encoding="utf-8"))["reviews"]


def review_body(text: str) -> bytes:
    return json.dumps({"review": text}).encode()


@dataclass(frozen=True)
class LoadRequest:
    """A request the load sends: its body, content type and the status it must get."""

    body: bytes
    content_type: str
    status: int


def percentiles_ms(seconds: list[float]) -> dict[str, float]:
    cuts = quantiles(seconds, n=100, method="inclusive")
    return {"p50_ms": round(cuts[49] * 1000, 3), "p99_ms": round(cuts[98] * 1000, 3)}


def run_load(url: str, bodies: list[bytes | LoadRequest], concurrency: int, seconds: float) -> dict:
    """``concurrency`` closed-loop clients POSTing ``bodies`` in turn for ``seconds``.

    Each client is a thread with one keep-alive connection (http.client): a tenth of the CPU
    an asyncio httpx client spends per request, which on two cores is taken from the servers.
    A bare body (a JSON review) must get a 200 with a verdict, a LoadRequest its status
    (a documented refusal is no error); anything else
    counts as an error, by status or exception name. Interrupted (Ctrl+C), each client stops
    after its request in flight.
    """
    parts = urlsplit(url)
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    refused: Counter[str] = Counter()  # refused as documented
    deadline = time.perf_counter() + seconds
    stop = threading.Event()

    # One sequence for all clients, so the bodies are sent in turn at the total request rate:
    # each client counting on its own would cycle through the first few bodies only. (next() on
    # a count is one C call: atomic under the GIL.)
    turn = itertools.count()

    def client_loop() -> None:
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=35)
        while time.perf_counter() < deadline and not stop.is_set():
            item = bodies[next(turn) % len(bodies)]
            if isinstance(item, bytes):
                item = LoadRequest(item, "application/json", 200)  # a review, to be scored
            started = time.perf_counter()
            try:
                connection.request(
                    "POST", parts.path, body=item.body, headers={"Content-Type": item.content_type}
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
            if outcome != str(item.status):
                errors[outcome] += 1
            elif item.status != 200:
                refused[outcome] += 1
        connection.close()

    started = time.perf_counter()
    clients = [threading.Thread(target=client_loop) for _ in range(concurrency)]
    try:
        for client in clients:
            client.start()
        for client in clients:
            client.join()
    finally:
        stop.set()
        for client in clients:
            if client.is_alive():
                client.join()
    elapsed = time.perf_counter() - started
    return {
        "concurrency": concurrency,
        "seconds": round(elapsed, 1),
        "requests": len(latencies),
        "requests_per_second": round(len(latencies) / elapsed, 1),
        **percentiles_ms(latencies),
        "max_ms": round(max(latencies) * 1000, 3),
        "errors": sum(errors.values()),
        "errors_by_kind": dict(errors),
        "refused_as_documented": dict(refused),
    }


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass(frozen=True)
class LocalStack:
    """A running ``sentiment up``: the supervisor process, with the three tiers as children."""

    process: subprocess.Popen
    api_url: str
    page_url: str


def _log_tail(log: BinaryIO) -> str:
    log.seek(0, 2)
    log.seek(max(0, log.tell() - _LOG_TAIL_BYTES))
    return log.read().decode("utf-8", errors="replace")


def _wait_until_serving(stack: LocalStack, log: BinaryIO) -> None:
    """Until the page answers: the last tier ``sentiment up`` starts, once the others are ready."""
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if stack.process.poll() is not None:
            raise RuntimeError(
                f"sentiment up exited with status {stack.process.returncode}:\n{_log_tail(log)}"
            )
        try:
            if httpx.get(f"{stack.page_url}config.json", timeout=1.0, trust_env=False).is_success:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the local stack did not start within {START_SECONDS:.0f} s")


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM, as Ctrl+C would; a stack that does not stop in time is killed, tiers and all."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        process.wait(STOP_SECONDS)
    except subprocess.TimeoutExpired:
        for tier in psutil.Process(process.pid).children(recursive=True):
            tier.kill()
        process.kill()
        process.wait()


@contextmanager
def local_stack(
    model: Path, log: BinaryIO, records_dir: Path | None = None
) -> Iterator[LocalStack]:
    """``sentiment up --model MODEL`` on free loopback ports, its output in ``log``; stopped after.

    With ``records_dir`` the stack records as deployed by default: all of the endpoint's traffic
    (capture/), each prediction for feedback (predictions.sqlite) and the feedback (feedback/);
    without one it records nothing. A session of its own: Ctrl+C in the terminal reaches this
    process alone, which stops the load first and then the stack, instead of the stack under
    load.
    """
    ports = [free_port() for _ in range(3)]
    records = (
        (
            *("--capture-dir", str(records_dir / "capture")),
            *("--feedback-dir", str(records_dir / "feedback")),
            *("--prediction-database", str(records_dir / "predictions.sqlite")),
        )
        if records_dir
        else ("--capture-percent", "0", "--feedback-per-source-per-day", "0")
    )
    command = [
        *(sys.executable, "-m", "sentiment.cli", "up", "--model", str(model)),
        *("--port", str(ports[0]), "--api-port", str(ports[1]), "--endpoint-port", str(ports[2])),
        *records,
    ]
    process = subprocess.Popen(
        command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    stack = LocalStack(
        process,
        api_url=f"http://127.0.0.1:{ports[1]}/predict",
        page_url=f"http://127.0.0.1:{ports[0]}/",
    )
    try:
        _wait_until_serving(stack, log)
        yield stack
    finally:
        _stop(process)
