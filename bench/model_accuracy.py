"""The model's targets, measured: test accuracy, training time and memory, against the baseline.

    .venv/bin/python bench/model_accuracy.py [--source SOURCE] [--data DIR] [--work DIR]
                                             [HYPERPARAMETER ...]

1. `sentiment prepare`, unless --data already holds a prepared dataset (not timed);
2. `sentiment train` with the default hyperparameters (or the ones given, e.g.
   `--epochs 2`), from fresh checkpoints, timed, while the resident memory of its whole
   process tree is sampled;
3. `sentiment evaluate --baseline`: the 25,000 test reviews through the artifact's
   inference handlers, and TF-IDF + logistic regression fitted on the same training split.

SOURCE is the IMDB archive or an extracted aclImdb directory (default: $IMDB_SOURCE, else
../shared/data/aclImdb.tar.gz beside the repository). Each command runs as its own
process, as a user runs it; their output goes to stderr. Prints one JSON object.
Targets (issue 3): test accuracy >= 0.91, training <= 10 minutes, peak RSS <= 4 GB.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from prepare_speed import DEFAULT_ARCHIVE, machine, peak_tree_rss

from contract.files import EVALUATION_REPORT_FILE, MODEL_ARTIFACT, TRAINING_REPORT_FILE
from sentiment import imdb_source

TARGET_ACCURACY = 0.91
TARGET_MINUTES = 10
TARGET_RSS_MB = 4096
_MIB = 1 << 20


def _sentiment(*argv: str) -> None:
    """Run a `sentiment` command to completion, its output on our stderr."""
    command = [sys.executable, "-m", "sentiment.cli", *argv]
    subprocess.run(command, stdout=sys.stderr, check=True)


def timed_training(data: Path, model_dir: Path, hyperparameters: list[str]) -> dict:
    """`sentiment train`'s wall time and the peak RSS of its process tree."""
    with tempfile.TemporaryDirectory(prefix="bench-checkpoints-") as checkpoints:
        command = [sys.executable, "-m", "sentiment.cli", "train", "--data", str(data)]
        command += ["--model-dir", str(model_dir), "--checkpoint-dir", checkpoints]
        started = time.perf_counter()
        process = subprocess.Popen([*command, *hyperparameters], stdout=sys.stderr)
        peak: list[int] = []
        sampler = threading.Thread(target=lambda: peak.append(peak_tree_rss(process)))
        sampler.start()
        process.wait()
        seconds = time.perf_counter() - started
        sampler.join()
    if process.returncode != 0:
        raise RuntimeError(f"sentiment train failed with exit status {process.returncode}")
    return {"seconds": round(seconds, 1), "peak_rss_mb": round(peak[0] / _MIB)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--source", default=os.environ.get(imdb_source.SOURCE_ENV) or str(DEFAULT_ARCHIVE)
    )
    parser.add_argument("--data", type=Path, default=Path("data/prepared"))
    parser.add_argument("--work", type=Path, default=Path("artifacts/bench"))
    parser.add_argument("--cache-dir", type=Path, default=imdb_source.default_cache_dir())
    args, hyperparameters = parser.parse_known_args()
    cache = ("--cache-dir", str(args.cache_dir))

    if not (args.data / "manifest.json").is_file():
        _sentiment("prepare", "--source", args.source, "--output", str(args.data), *cache)
    load_before = os.getloadavg()
    training = timed_training(args.data, args.work / "model", hyperparameters)
    artifact = args.work / "model" / MODEL_ARTIFACT
    output = args.work / "evaluation"
    _sentiment(
        *("evaluate", "--data", str(args.data), "--model", str(artifact)),
        *("--source", args.source, "--output", str(output), "--baseline", *cache),
    )

    evaluation = json.loads((output / EVALUATION_REPORT_FILE).read_text(encoding="utf-8"))
    trained = json.loads((artifact.parent / TRAINING_REPORT_FILE).read_text(encoding="utf-8"))
    model, baseline = evaluation["model"], evaluation["baseline"]
    report = {
        "test_accuracy": model["accuracy"],
        "baseline_test_accuracy": baseline["accuracy"],
        "test_reviews": evaluation["test_reviews"],
        "test_roc_auc": model["roc_auc"],
        "test_f1": model["f1"],
        "validation_accuracy": trained["validation"]["accuracy"],
        "validation_note": trained.get("validation_note"),
        "training_seconds": training["seconds"],
        "peak_rss_mb": training["peak_rss_mb"],
        "handler_reviews_per_second": round(model["reviews_per_second"]),
        "handler_requests_in_flight": model["requests_in_flight"],
        "handler_torch_threads": model["torch_threads"],
        "baseline_fit_seconds": baseline["fit_seconds"],
        "hyperparameters": hyperparameters or "defaults",
        "targets_met": {
            f"test_accuracy>={TARGET_ACCURACY}": model["accuracy"] >= TARGET_ACCURACY,
            f"training<={TARGET_MINUTES}min": training["seconds"] <= TARGET_MINUTES * 60,
            f"peak_rss<={TARGET_RSS_MB}MB": training["peak_rss_mb"] <= TARGET_RSS_MB,
            "beats_baseline": model["accuracy"] > baseline["accuracy"],
        },
        "cores": os.cpu_count(),
        "machine": machine(),
        "load_average_before": [round(load, 2) for load in load_before],
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
