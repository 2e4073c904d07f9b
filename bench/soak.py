"""A soak of the local stack: minutes of load at concurrency 32, no errors, no memory growth.

(A benchmark script, whole in one file so that it reads top to bottom with its report.)

    .venv/bin/python bench/soak.py [--model artifacts/model/model.tar.gz] [--source SOURCE]
        [--seconds 300] [--warmup-seconds 20] [--concurrency 32] [--reviews 2000] [--seed 0]
        [--refused-every N]

1. `sentiment up --model MODEL` on free loopback ports: the supervisor and its three tiers
   (endpoint emulator, API emulator, site server), each a process of its own.
2. The requests: a seeded sample of --reviews official test reviews read from SOURCE, so
   their lengths follow the corpus's (default: $IMDB_SOURCE, else ../shared/data/aclImdb.tar.gz
   beside the repository if it is there, else the 24 IMDB reviews kept with the tests).
   With --refused-every N, every Nth request is one the API must refuse, in turn: a 9 MB
   review (read, decoded and handed to the function whole, within API Gateway's 10 MB),
   one character over the review limit, invalid JSON, an empty review and a wrong content
   type; each must get its documented status, and counts as an error otherwise.
3. Warm-up: the same load for --warmup-seconds, longer if need be until every review has been
   sent once; then the resident memory (RSS) of each process of the stack, a tier's own
   children included.
4. The soak: --concurrency closed-loop clients sending the reviews in turn for --seconds, RSS
   sampled meanwhile (reported with a trace at even steps, to tell growth that levels off
   from a leak).

Prints one JSON object and exits with status 1 unless the soak passed issue 6's targets: no
errors (anything but a 200 with a verdict), and every process's RSS at the end within 10% of
its value after warm-up. Ctrl+C (or SIGTERM) stops the load, then the stack.

About 400 lines, over the project's usual size: one script a reader can follow from the
stack's start to the verdict, as the other benches are.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import re
import signal
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import psutil
from local_api_load import (
    LoadRequest,
    LocalStack,
    local_stack,
    review_body,
    run_load,
    sample_reviews,
)
from prepare_speed import DEFAULT_ARCHIVE, machine

from contract.capture import read_records
from contract.files import MODEL_ARTIFACT
from contract.limits import MAX_REVIEW_CHARS
from sentiment import imdb_source
from sentiment.cli import DEFAULT_MODEL_DIR

MAX_ERRORS = 0
MAX_RSS_CHANGE_PERCENT = 10.0
TEST_FOLDERS = ("test/pos", "test/neg")
SUPERVISOR = "sentiment up"
TRACE_POINTS = 11
_MIB = 1 << 20
_LOGGED_PROBLEM = re.compile(r"\b(WARNING|ERROR|CRITICAL)\b")
_LOGGED_PROBLEMS_SHOWN = 5


# --- the reviews -----------------------------------------------------------------------------


def _default_source() -> str | None:
    configured = os.environ.get(imdb_source.SOURCE_ENV)
    if configured:
        return configured
    return str(DEFAULT_ARCHIVE) if DEFAULT_ARCHIVE.exists() else None


def load_reviews(source: str | None, count: int, seed: int) -> tuple[list[str], str]:
    """``count`` test reviews drawn with ``seed`` from ``source``, and where they came from."""
    if source is None:
        return [review["text"] for review in sample_reviews()], "tests/data/sample_reviews.json"
    root = imdb_source.resolve(source, imdb_source.default_cache_dir())
    files = [f for folder in TEST_FOLDERS for f in imdb_source.review_files(root, folder)]
    chosen = random.Random(seed).sample(files, min(count, len(files)))
    texts = [f.path.read_bytes().decode("utf-8", errors="replace") for f in chosen]
    return texts, source


# --- the processes and their usage -----------------------------------------------------------


def stack_processes(stack: LocalStack) -> dict[str, psutil.Process]:
    """The supervisor, and each tier by the module it runs (``python -m sentiment.<tier>``)."""
    supervisor = psutil.Process(stack.process.pid)
    processes = {SUPERVISOR: supervisor}
    for tier in supervisor.children():
        command = tier.cmdline()
        processes[command[command.index("-m") + 1]] = tier
    return processes


def _cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system


def _tree(process: psutil.Process, measured_apart: set[int]) -> list[psutil.Process]:
    """``process`` and its descendants, less the subtrees of the processes measured apart."""
    members, pending = [], [process]
    while pending:
        member = pending.pop()
        members.append(member)
        pending.extend(c for c in member.children() if c.pid not in measured_apart)
    return members


def evenly_spaced(values: list[int], count: int = TRACE_POINTS) -> list[int]:
    """``count`` values from first to last at even steps (all of them, if there are fewer)."""
    if len(values) <= count:
        return values
    return [values[round(i * (len(values) - 1) / (count - 1))] for i in range(count)]


@dataclass
class ProcessUsage:
    """One process's RSS at each sample from the end of warm-up on, and its CPU time."""

    process: psutil.Process
    rss: list[int] = field(default_factory=list)
    cpu_seconds_at_warmup: float = 0.0
    cpu_seconds: float = 0.0
    exited: bool = False

    def report(self) -> dict:
        after_warmup, end = self.rss[0], self.rss[-1]
        return {
            "pid": self.process.pid,
            "rss_after_warmup_mb": round(after_warmup / _MIB, 1),
            "rss_end_mb": None if self.exited else round(end / _MIB, 1),
            "rss_change_percent": (
                None if self.exited else round((end - after_warmup) / after_warmup * 100, 2)
            ),
            "rss_max_mb": round(max(self.rss) / _MIB, 1),
            # Growth that levels off (allocator arenas filling) reads differently from a leak.
            "rss_trace_mb": [round(rss / _MIB, 1) for rss in evenly_spaced(self.rss)],
            "cpu_seconds_during_soak": round(self.cpu_seconds - self.cpu_seconds_at_warmup, 1),
            "exited_during_soak": self.exited,
        }


@dataclass
class UsageSampler:
    """RSS and CPU time of each process of the stack, a tier's children counted with it."""

    usage: dict[str, ProcessUsage]
    samples: int = 0
    stopping: threading.Event = field(default_factory=threading.Event, init=False)

    @classmethod
    def of(cls, processes: dict[str, psutil.Process]) -> UsageSampler:
        return cls({name: ProcessUsage(process) for name, process in processes.items()})

    def sample(self) -> None:
        apart = {entry.process.pid for entry in self.usage.values()}
        for entry in self.usage.values():
            if entry.exited:
                continue
            try:
                members = _tree(entry.process, apart)
                rss = sum(member.memory_info().rss for member in members)
                cpu_seconds = sum(_cpu_seconds(member) for member in members)
            except psutil.NoSuchProcess:
                # A child gone between listing and reading it, or the process itself (a tier
                # that died, which the supervisor replaces with a new process).
                entry.exited = not entry.process.is_running()
                continue
            entry.rss.append(rss)
            entry.cpu_seconds = cpu_seconds
        self.samples += 1

    def mark_warm(self) -> None:
        """The first sample of the soak: everything from here on is compared with it."""
        self.sample()
        for name, entry in self.usage.items():
            if entry.exited:
                raise RuntimeError(f"{name} exited during the warm-up")
            entry.rss = entry.rss[-1:]
            entry.cpu_seconds_at_warmup = entry.cpu_seconds
        self.samples = 1

    def run(self, interval: float) -> None:
        """Sample every ``interval`` seconds until ``stopping`` is set, then once more."""
        while not self.stopping.wait(interval):
            self.sample()
        self.sample()


# --- the verdict -----------------------------------------------------------------------------


def failures(result: dict) -> list[str]:
    """Each way a soak's result misses issue 6's targets, in words; none when it passed."""
    missed = []
    if result["errors"] > MAX_ERRORS:
        missed.append(f"errors: {result['errors']} ({result['errors_by_kind']})")
    for name, memory in result["processes"].items():
        if memory["exited_during_soak"]:
            missed.append(f"{name} exited during the soak")
        elif abs(memory["rss_change_percent"]) > MAX_RSS_CHANGE_PERCENT:
            missed.append(
                f"{name} RSS changed {memory['rss_change_percent']:+.1f}% "
                f"(more than {MAX_RSS_CHANGE_PERCENT:.0f}%)"
            )
    return missed


def _logged_problems(log: BinaryIO) -> dict:
    """Lines the stack logged at WARNING or above: none are expected under healthy load."""
    log.seek(0)
    lines = [line.decode("utf-8", "replace").rstrip() for line in log]
    problems = [line for line in lines if _LOGGED_PROBLEM.search(line)]
    return {"count": len(problems), "first": problems[:_LOGGED_PROBLEMS_SHOWN]}


# Requests the API must refuse (--refused-every), each with its documented status.
REFUSED = (
    LoadRequest(b"a " * (9 * 1024 * 1024 // 2), "text/plain", 413),
    LoadRequest(review_body("a" * (MAX_REVIEW_CHARS + 1)), "application/json", 413),
    LoadRequest(b'{"review": "unfinished', "application/json", 400),
    LoadRequest(review_body(" "), "application/json", 400),
    LoadRequest(b"a review", "text/csv", 415),
)


def with_refused(bodies: list[bytes], every: int) -> list[bytes | LoadRequest]:
    """`bodies` with one of REFUSED, in turn, in place of every `every`th (0: none)."""
    if every == 0:
        return list(bodies)
    refused = itertools.cycle(REFUSED)
    return [
        next(refused) if index % every == every - 1 else body for index, body in enumerate(bodies)
    ]


# --- the run ---------------------------------------------------------------------------------


def _progress(message: str) -> None:
    print(f"soak: {message}", file=sys.stderr, flush=True)


def warm_up(url: str, bodies: list[bytes | LoadRequest], concurrency: int, seconds: float) -> dict:
    """Load for ``seconds``, longer if need be until every body has been sent once.

    What the reviews leave behind by design (the endpoint's stem cache holds their words)
    then belongs to the baseline, not to the soak's growth.
    """
    started, sent = time.perf_counter(), 0
    while sent < len(bodies):
        first = sent % len(bodies)  # go on where the last round stopped
        sent += run_load(url, bodies[first:] + bodies[:first], concurrency, seconds)["requests"]
    return {"seconds": round(time.perf_counter() - started, 1), "requests": sent}


def soak(args: argparse.Namespace, bodies: list[bytes | LoadRequest], log: BinaryIO) -> dict:
    """Warm up, soak, sample; the load, each process's memory and the stack's shutdown."""
    load_before = os.getloadavg()
    # The endpoint records its traffic, as deployed by default.
    with (
        tempfile.TemporaryDirectory(prefix="soak-capture-") as capture,
        local_stack(args.model, log, Path(capture)) as stack,
    ):
        sampler = UsageSampler.of(stack_processes(stack))
        _progress(f"stack up; warming up for {args.warmup_seconds:g} s")
        warmup = warm_up(stack.api_url, bodies, args.concurrency, args.warmup_seconds)
        sampler.mark_warm()
        _progress(f"soaking for {args.seconds:g} s at concurrency {args.concurrency}")
        sampling = threading.Thread(target=sampler.run, args=(args.sample_seconds,), daemon=True)
        psutil.cpu_percent()  # from here on
        generator_cpu = _cpu_seconds(psutil.Process())
        sampling.start()
        try:
            load = run_load(stack.api_url, bodies, args.concurrency, args.seconds)
        finally:
            sampler.stopping.set()
            sampling.join()
        machine_busy = psutil.cpu_percent()
        generator_cpu = _cpu_seconds(psutil.Process()) - generator_cpu
        _progress("stopping the stack")
        captured = sum(
            1 for path in Path(capture).rglob("*.jsonl") for _ in read_records(path.open("rb"))
        )
    processes = {name: entry.report() for name, entry in sampler.usage.items()}
    return {
        **load,
        "warmup": warmup,
        # Every answered request of warm-up and soak, recorded by the endpoint.
        "captured_records": captured,
        "processes": processes,
        "rss_samples": sampler.samples,
        "stack_stopped_cleanly": stack.process.returncode == 0,
        "stack_logged_warnings_or_errors": _logged_problems(log),
        # On a shared machine, what the stack and the clients took of the CPU it was busy with.
        "machine_cpu_busy_percent_during_soak": machine_busy,
        "load_generator_cpu_seconds_during_soak": round(generator_cpu, 1),
        "load_average_before": [round(value, 2) for value in load_before],
        "load_average_after": [round(value, 2) for value in os.getloadavg()],
    }


def _positive(convert: type[int] | type[float]) -> Callable[[str], int | float]:
    def number(text: str) -> int | float:
        value = convert(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be more than 0, not {text}")
        return value

    return number


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--model", type=Path, default=DEFAULT_MODEL_DIR / MODEL_ARTIFACT, help="(%(default)s)"
    )
    parser.add_argument(
        "--source",
        default=_default_source(),
        help="the IMDB archive or an extracted aclImdb directory (default: %(default)s; "
        "none: the 24 reviews kept with the tests)",
    )
    parser.add_argument(
        "--reviews", type=_positive(int), default=2000, help="test reviews to send in turn"
    )
    parser.add_argument("--seed", type=int, default=0, help="which reviews are drawn")
    parser.add_argument("--seconds", type=_positive(float), default=300.0, help="the soak's length")
    parser.add_argument("--warmup-seconds", type=_positive(float), default=20.0)
    parser.add_argument("--concurrency", type=_positive(int), default=32)
    parser.add_argument(
        "--refused-every",
        type=int,
        default=0,
        help="make every Nth request one the API must refuse (0: none)",
    )
    parser.add_argument(
        "--sample-seconds", type=_positive(float), default=2.0, help="between RSS samples"
    )
    args = parser.parse_args()
    if not args.model.is_file():
        parser.error(
            f"no model artifact at {args.model}: train one (`sentiment train`, or `make up`), "
            "or name one with --model"
        )
    return args


def main() -> int:
    args = _arguments()
    texts, source = load_reviews(args.source, args.reviews, args.seed)
    words = [len(text.split()) for text in texts]
    # A kill ends the run the way Ctrl+C does: load stopped, then the stack. SIGINT too is set
    # here: a process started with it ignored (a background job of a script, some test
    # runners) inherits that, and Python then leaves it ignored.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.default_int_handler)
    with tempfile.TemporaryFile() as log:
        try:
            bodies = with_refused([review_body(text) for text in texts], args.refused_every)
            result = soak(args, bodies, log)
        except KeyboardInterrupt:
            _progress("interrupted; the stack is stopped")
            return 130
    missed = failures(result)
    report = {
        "passed": not missed,
        "failures": missed,
        "targets": {"errors": MAX_ERRORS, "rss_change_percent_at_most": MAX_RSS_CHANGE_PERCENT},
        **result,
        "model": str(args.model),
        "reviews": {
            "source": source,
            "count": len(texts),
            "seed": args.seed,
            "words_median": statistics.median(words),
            "words_max": max(words),
            "refused_every": args.refused_every,
        },
        "cores": os.cpu_count(),
        "machine": machine(),
    }
    print(json.dumps(report, indent=2))
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
