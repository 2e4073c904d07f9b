"""bench/soak.py, for seconds instead of minutes, on the hand-weighted test model.

It must report what issue 6's reliability figures need, judge them against the targets, and
never leave a process of the stack behind, even when interrupted.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from model_artifacts import write_model_dir

from contract.layout import PROJECT_ROOT
from contract.packaging import build_tarball
from sentiment.model_loader import import_isolated

BENCH = PROJECT_ROOT / "bench"
STACK = {"sentiment up", "sentiment.endpoint_emulator", "sentiment.api_emulator"}
STACK |= {"sentiment.site_server"}
soak = import_isolated(BENCH, "soak")
local_api_load = import_isolated(BENCH, "local_api_load")


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("soak-model")
    return build_tarball(write_model_dir(root / "model"), root / "model.tar.gz")


def _bench(model: Path, source: Path, warmup: str, seconds: str) -> list[str]:
    return [
        *(sys.executable, str(BENCH / "soak.py"), "--model", str(model), "--source", str(source)),
        *("--reviews", "10", "--concurrency", "4", "--sample-seconds", "0.5"),
        *("--warmup-seconds", warmup, "--seconds", seconds),
    ]


@pytest.mark.slow
def test_a_short_soak_reports_the_load_and_each_process_memory(model: Path, imdb_dir: Path) -> None:
    run = subprocess.run(
        _bench(model, imdb_dir, "1", "3"), capture_output=True, text=True, timeout=240
    )
    assert run.returncode in (0, 1), run.stderr
    report = json.loads(run.stdout)

    assert report["errors"] == 0, report["errors_by_kind"]
    assert report["requests"] > 0
    assert report["concurrency"] == 4
    assert report["seconds"] >= 3
    assert 0 < report["p50_ms"] <= report["p99_ms"] <= report["max_ms"]
    assert report["reviews"] == {**report["reviews"], "source": str(imdb_dir), "count": 10}
    assert report["warmup"]["requests"] >= 10  # every review went through before the baseline
    assert set(report["processes"]) == STACK
    for memory in report["processes"].values():
        assert not memory["exited_during_soak"]
        assert 0 < memory["rss_after_warmup_mb"] <= memory["rss_max_mb"]
        assert 0 < memory["rss_end_mb"] <= memory["rss_max_mb"]
        trace = memory["rss_trace_mb"]
        assert (trace[0], trace[-1]) == (memory["rss_after_warmup_mb"], memory["rss_end_mb"])
    assert report["stack_stopped_cleanly"]
    assert report["stack_logged_warnings_or_errors"]["count"] == 0
    # A few seconds say nothing about leaks, so the verdict may go either way; it must match.
    assert report["passed"] == (report["failures"] == [])
    assert run.returncode == (0 if report["passed"] else 1)


def test_every_nth_request_is_one_to_refuse_in_turn() -> None:
    bodies = [b"%d" % index for index in range(12)]
    mixed = soak.with_refused(bodies, 3)

    assert [index for index, item in enumerate(mixed) if item not in bodies] == [2, 5, 8, 11]
    assert mixed[2::3] == list(soak.REFUSED[:4])
    assert soak.with_refused(bodies, 0) == bodies


@pytest.mark.slow
def test_refused_requests_mixed_in_get_their_documented_status_and_count_no_error(
    model: Path, imdb_dir: Path
) -> None:
    command = [*_bench(model, imdb_dir, "1", "3"), "--refused-every", "2"]
    run = subprocess.run(command, capture_output=True, text=True, timeout=240)
    report = json.loads(run.stdout)

    assert report["errors"] == 0, report["errors_by_kind"]
    assert set(report["refused_as_documented"]) == {"400", "413", "415"}
    assert report["reviews"]["refused_every"] == 2


@pytest.mark.slow
def test_ctrl_c_stops_the_load_then_every_process_of_the_stack(model: Path, imdb_dir: Path) -> None:
    bench = subprocess.Popen(
        _bench(model, imdb_dir, "60", "60"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert "warming up" in bench.stderr.readline()
        stack = psutil.Process(bench.pid).children(recursive=True)
        assert len(stack) == len(STACK)
        interrupted = time.monotonic()
        bench.send_signal(signal.SIGINT)
        _, errors = bench.communicate(timeout=60)
    finally:
        if bench.poll() is None:  # the assertions above failed: still stop the stack
            bench.send_signal(signal.SIGINT)
            bench.wait(60)
    # Stopped by SIGTERM, not killed once its time to stop ran out.
    assert time.monotonic() - interrupted < local_api_load.STOP_SECONDS
    assert bench.returncode == 130, errors
    assert "interrupted; the stack is stopped" in errors
    _, alive = psutil.wait_procs(stack, timeout=5)
    assert alive == []


def _result(errors: int = 0, **changes: float | None) -> dict:
    processes = {
        name: {"rss_change_percent": changes.get(name, 0.5), "exited_during_soak": False}
        for name in ("api", "endpoint")
    }
    for name, change in changes.items():
        processes[name]["exited_during_soak"] = change is None
    kinds = {"503": errors} if errors else {}
    return {"errors": errors, "errors_by_kind": kinds, "processes": processes}


@pytest.mark.parametrize(
    ("result", "missed"),
    [
        (_result(endpoint=-9.9), []),
        (_result(errors=1), ["errors: 1 ({'503': 1})"]),
        (_result(endpoint=10.5), ["endpoint RSS changed +10.5% (more than 10%)"]),
        (_result(api=-12.0), ["api RSS changed -12.0% (more than 10%)"]),
        (_result(api=None), ["api exited during the soak"]),
    ],
    ids=["within-10%", "one-error", "grew", "shrank", "exited"],
)
def test_the_verdict_is_zero_errors_and_memory_within_ten_percent(
    result: dict, missed: list[str]
) -> None:
    assert soak.failures(result) == missed
