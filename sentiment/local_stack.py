"""``sentiment up``: the deployed app's three tiers as three local processes.

    browser ─▶ site server (frontend/ + config.json)          --port           (8000)
    browser ─▶ API emulator ─▶ lambda_src.prediction.handler  --api-port       (8001)
               handler ─boto3─▶ endpoint emulator (model.tar.gz) --endpoint-port (8002)

Each tier is its own process, as in AWS, so one can fail or be restarted without the others: a
tier that exits unexpectedly is restarted (as SageMaker replaces an unhealthy instance), and
the others keep serving meanwhile. SIGINT (Ctrl+C) or SIGTERM stops the site, then the API,
then the endpoint, each draining its requests in flight.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from contract import api, limits
from contract.capture import DEFAULT_CAPTURE_PERCENT, DEFAULT_CAPTURE_RETENTION_DAYS
from contract.feedback import DEFAULT_FEEDBACK_PER_SOURCE_PER_DAY
from contract.promotion import DEFAULT_TOLERANCE as DEFAULT_GATE_TOLERANCE
from sentiment.uvicorn_server import GRACEFUL_SHUTDOWN_SECONDS, LOG_FORMAT

DEFAULT_HOST = "127.0.0.1"
DEFAULT_ENDPOINT_NAME = "imdb-sentiment-local"
# What the emulators name where AWS would name the account and region; there are none here.
LOCAL_ACCOUNT = "000000000000"
LOCAL_REGION = "us-east-1"
DEFAULT_PAGE_PORT = 8000
DEFAULT_API_PORT = 8001
DEFAULT_ENDPOINT_PORT = 8002
DEFAULT_API_URL = f"http://{DEFAULT_HOST}:{DEFAULT_API_PORT}/{api.ROUTE}"

# Loading torch and the model takes a few seconds on a busy machine; the others start faster.
ENDPOINT_START_SECONDS = 120.0
START_SECONDS = 30.0
_STOP_SECONDS = GRACEFUL_SHUTDOWN_SECONDS + 5.0
_SUPERVISE_SECONDS = 0.5
# A tier that keeps failing to come back is retried less and less often.
_RESTART_DELAY_SECONDS = 1.0
_MAX_RESTART_DELAY_SECONDS = 30.0
# The API emulator runs the handler on 32 threads, and glibc keeps a cache of freed chunks for
# each thread (tcache: up to 7 per size class, reused by that thread only). Under a soak at
# concurrency 32 (bench/soak.py) the memory malloc held as in use kept growing with it, for
# minutes (+11% RSS in 15), while Python's own allocations stayed flat; without it the
# emulator stays flat at the same CPU time per request: Python serves its small objects from
# its own allocator, so little of its traffic went through glibc's cache anyway.
# Bodies of megabytes (up to the gateway's 10 MB, read, decoded and base64-encoded whole)
# are another matter: glibc raises its mmap threshold each time it frees such a buffer, so
# the next ones come from the heap and stay there once freed (199 MB held after a warm-up
# with 9 MB bodies in the mix, bench/soak.py --refused-every 10). A fixed threshold of 1 MB
# gives every such buffer back when it is freed: 65 MB, at the same requests per second.
API_EMULATOR_GLIBC_TUNABLES = "glibc.malloc.tcache_count=0:glibc.malloc.mmap_threshold=1048576"

_logger = logging.getLogger("sentiment.stack")


class StackError(RuntimeError):
    """A tier did not start."""


@dataclass(frozen=True)
class StackSettings:
    model: Path
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PAGE_PORT
    api_port: int = DEFAULT_API_PORT
    endpoint_port: int = DEFAULT_ENDPOINT_PORT
    endpoint_name: str = DEFAULT_ENDPOINT_NAME
    # Where the endpoint records its traffic (contract/capture.py); None records nothing.
    capture_dir: Path | None = None
    capture_percent: float = DEFAULT_CAPTURE_PERCENT
    capture_retention_days: int = DEFAULT_CAPTURE_RETENTION_DAYS
    # cdk.json's sentiment:endpointMode: a serverless endpoint cannot capture, so the
    # prediction handler records the traffic instead, as in AWS.
    endpoint_mode: str = "realtime"
    # Where feedback on verdicts is kept (contract/feedback.py), and the predictions it may
    # name (an SQLite file, DynamoDB's stand-in); None takes no feedback.
    feedback_dir: Path | None = None
    prediction_database: Path | None = None
    feedback_per_source_per_day: int = DEFAULT_FEEDBACK_PER_SOURCE_PER_DAY
    # The promotion gate before a hot swap (contract/promotion.py).
    gate_tolerance: float = DEFAULT_GATE_TOLERANCE
    force_promotion: bool = False
    # A model.tar.gz that answers a copy of each request, unseen, as a shadow variant.
    shadow_model: Path | None = None

    @property
    def endpoint_captures(self) -> bool:
        return self.capture_dir is not None and self.endpoint_mode == "realtime"

    @property
    def page_url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    @property
    def api_url(self) -> str:
        return f"http://{self.host}:{self.api_port}/predict"

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.endpoint_port}"

    @property
    def feedback_url(self) -> str | None:
        if self.feedback_dir is None:
            return None
        return f"http://{self.host}:{self.api_port}/{api.FEEDBACK_ROUTE}"


@dataclass
class Tier:
    """One server process: how to start it and how to tell it is ready."""

    name: str
    arguments: list[str]
    ready_url: str
    ready_method: str = "GET"
    start_seconds: float = START_SECONDS
    glibc_tunables: str = ""
    process: subprocess.Popen | None = field(default=None, repr=False)

    def start(self) -> None:
        # A session of its own: Ctrl+C in the terminal reaches `sentiment up` alone, which then
        # stops the tiers in order instead of all of them at once.
        self.process = subprocess.Popen(
            [sys.executable, "-m", *self.arguments],
            env={
                **with_glibc_tunables(os.environ, self.glibc_tunables),
                **limits.runtime_environment(),
            },
            start_new_session=True,
        )
        _logger.info("started %s (pid %d)", self.name, self.process.pid)

    def exited(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def wait_ready(self, stop: threading.Event) -> None:
        deadline = time.monotonic() + self.start_seconds
        with httpx.Client(trust_env=False, timeout=2.0) as client:
            while not stop.is_set():
                if self.exited() is not None:
                    raise StackError(f"{self.name} exited with status {self.process.returncode}")
                try:
                    response = client.request(self.ready_method, self.ready_url)
                    if response.is_success:
                        return
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise StackError(f"{self.name} not ready after {self.start_seconds:.0f} s")
                stop.wait(0.1)

    def stop(self) -> bool:
        """Stop the process, draining its requests; False unless it stopped cleanly."""
        if self.process is None:
            return True
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            status = self.process.wait(_STOP_SECONDS)
        except subprocess.TimeoutExpired:
            _logger.error("%s did not stop in %.0f s; killing it", self.name, _STOP_SECONDS)
            self.process.kill()
            self.process.wait()
            return False
        if status != 0:
            _logger.error("%s stopped with status %d", self.name, status)
        return status == 0


def with_glibc_tunables(environ: Mapping[str, str], tunables: str) -> dict[str, str]:
    """``environ`` with glibc's ``tunables`` set; those already set there come last, so they win.

    Other C libraries (macOS, musl) ignore the variable.
    """
    inherited = environ.get("GLIBC_TUNABLES")
    if tunables and inherited:
        tunables = f"{tunables}:{inherited}"
    return {**environ, "GLIBC_TUNABLES": tunables} if tunables else dict(environ)


def capture_arguments(settings: StackSettings, tier_records: bool) -> list[str]:
    """How the tier that records the traffic records it: the endpoint emulator, as a real-time
    endpoint's data capture, or the API emulator's handler, for a serverless endpoint."""
    if settings.capture_dir is None or not tier_records:
        return []
    return [
        *("--capture-dir", str(settings.capture_dir)),
        *("--capture-percent", str(settings.capture_percent)),
        *("--capture-retention-days", str(settings.capture_retention_days)),
    ]


def feedback_arguments(settings: StackSettings) -> list[str]:
    """Where the API emulator's feedback handler keeps what it is given."""
    if settings.feedback_dir is None or settings.prediction_database is None:
        return []
    return [
        *("--feedback-dir", str(settings.feedback_dir)),
        *("--prediction-database", str(settings.prediction_database)),
        *("--feedback-per-source-per-day", str(settings.feedback_per_source_per_day)),
        # As in AWS: a prediction can be named as long as its captured record is kept.
        *("--prediction-retention-days", str(settings.capture_retention_days)),
    ]


def page_arguments(settings: StackSettings) -> list[str]:
    """What the page tells visitors about the recording, and where it sends feedback."""
    arguments = []
    if settings.capture_dir is not None:
        arguments += ["--capture-retention-days", str(settings.capture_retention_days)]
    if settings.feedback_url is not None:
        arguments += ["--feedback-url", settings.feedback_url]
    return arguments


def tiers(settings: StackSettings) -> list[Tier]:
    """The tiers in start order: each needs the one before it."""
    host = ["--host", settings.host]
    page_origin = settings.page_url.rstrip("/")
    return [
        Tier(
            "endpoint emulator",
            [
                "sentiment.endpoint_emulator",
                *("--model", str(settings.model), "--endpoint-name", settings.endpoint_name),
                *host,
                *("--port", str(settings.endpoint_port)),
                *("--endpoint-mode", settings.endpoint_mode),
                *("--gate-tolerance", str(settings.gate_tolerance)),
                *(("--force-promotion",) if settings.force_promotion else ()),
                *(("--shadow-model", str(settings.shadow_model)) if settings.shadow_model else ()),
                *capture_arguments(settings, settings.endpoint_captures),
            ],
            ready_url=f"{settings.endpoint_url}/ping",
            start_seconds=ENDPOINT_START_SECONDS,
        ),
        Tier(
            "API emulator",
            [
                "sentiment.api_emulator",
                *("--endpoint-url", settings.endpoint_url),
                *("--endpoint-name", settings.endpoint_name),
                *("--allowed-origin", page_origin),
                *host,
                *("--port", str(settings.api_port)),
                *capture_arguments(settings, not settings.endpoint_captures),
                *feedback_arguments(settings),
            ],
            ready_url=settings.api_url,
            ready_method="OPTIONS",
            glibc_tunables=API_EMULATOR_GLIBC_TUNABLES,
        ),
        Tier(
            "site server",
            [
                "sentiment.site_server",
                *("--api-url", settings.api_url),
                *host,
                *("--port", str(settings.port)),
                *page_arguments(settings),
            ],
            ready_url=f"{settings.page_url}config.json",
        ),
    ]


@contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    def request_stop(signum: int, _frame: object) -> None:
        if not stop.is_set():
            _logger.info("%s received; stopping", signal.Signals(signum).name)
        stop.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _supervise(stack: list[Tier], stop: threading.Event) -> None:
    """Restart any tier that exits, until asked to stop."""
    failed_restarts = dict.fromkeys((tier.name for tier in stack), 0)
    while not stop.wait(_SUPERVISE_SECONDS):
        for tier in stack:
            status = tier.exited()
            if status is None or stop.is_set():
                continue
            delay = min(
                _RESTART_DELAY_SECONDS * 2 ** failed_restarts[tier.name], _MAX_RESTART_DELAY_SECONDS
            )
            _logger.warning(
                "%s exited with status %d; restarting it in %.0f s", tier.name, status, delay
            )
            if stop.wait(delay):
                return
            tier.start()
            try:
                tier.wait_ready(stop)
                failed_restarts[tier.name] = 0
            except StackError as error:
                failed_restarts[tier.name] += 1
                _logger.error("%s did not come back: %s", tier.name, error)


def _announce(settings: StackSettings) -> None:
    captured = (
        f"{settings.capture_percent:g} % of requests, in {settings.capture_dir}"
        if settings.capture_dir
        else "nothing"
    )
    print(
        f"Endpoint emulator  {settings.endpoint_url}  (serving {settings.model}; a new "
        "model.tar.gz there is swapped in)\n"
        f"Prediction API     {settings.api_url}\n"
        f"Web page           {settings.page_url}\n"
        + (
            f"Shadow model       {settings.shadow_model} (answers a copy of each request, "
            "unseen; `sentiment compare` reports how it differs)\n"
            if settings.shadow_model
            else ""
        )
        + f"Traffic captured   {captured}\n"
        f"Feedback kept in   {settings.feedback_dir or 'nothing (none taken)'}\n"
        "Press Ctrl+C to stop.",
        flush=True,
    )


def run(settings: StackSettings) -> int:
    """Start the stack, serve until SIGINT/SIGTERM, stop it; 0 on a clean stop, 1 on failure."""
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT, stream=sys.stderr)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per readiness probe
    if not settings.model.is_file():
        raise FileNotFoundError(f"model artifact not found: {settings.model}")
    stop = threading.Event()
    stack = tiers(settings)
    started: list[Tier] = []
    failed = False
    with _stop_on_signals(stop):
        try:
            for tier in stack:
                tier.start()
                started.append(tier)
                tier.wait_ready(stop)
            if not stop.is_set():
                _announce(settings)
                _supervise(stack, stop)
        except StackError as error:
            _logger.error("%s", error)
            failed = True
        finally:
            clean = [tier.stop() for tier in reversed(started)]
    if failed or not all(clean):
        return 1
    _logger.info("stopped")
    return 0
