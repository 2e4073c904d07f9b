"""Short-text figures of a trained model beside the TF-IDF baseline's: what to steer by.

    .venv/bin/python bench/behaviour.py --model artifacts/.../model.tar.gz
                                        [--source SOURCE] [--data DIR] [--output DIR]

Runs `sentiment evaluate --baseline` (evaluation.evaluate: the test reviews and the
short texts through the artifact's own inference handlers, the baseline fitted on the
same training reviews) and prints one JSON object with, for the model and the baseline:
the behaviour suite's pass rate per capability (contract/behaviour.py), the short-review
check's accuracy and ECE (sentiment/short_reviews.py, validation reviews only), the same
texts cut from every validation review (where calibration is read), the same cut from
every test review and from the clearly rated ones, and test accuracy and ECE — test
figures are for reporting, never for choosing settings. The baseline answers without
`low_confidence`, so it fails every `no_signal` case and passes `negated_negative` only
when it says positive.

SOURCE is the IMDB archive or an extracted aclImdb directory (default: $IMDB_SOURCE, else
../shared/data/aclImdb.tar.gz beside the repository); DIR the dataset `sentiment prepare`
made from it. evaluation.json and evaluation.png are left in --output.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from prepare_speed import DEFAULT_ARCHIVE, machine

from sentiment import evaluation, imdb_source

TEST_NOTE = "test figures are for reporting only: steer by the suite and the short-review check"


def _rounded(noise: dict) -> dict:
    return {"median": round(noise["median"], 4), "p90": round(noise["p90"], 4)}


def _calibration(figures: dict) -> dict:
    return {
        "texts": figures["texts"],
        "accuracy": round(figures["accuracy"], 4),
        "mean_confidence": round(figures["mean_confidence"], 4),
        "ece": round(figures["ece"], 4),
        "ece_if_calibrated": _rounded(figures["ece_if_calibrated"]),
    }


def short_text_summary(model: dict) -> dict:
    """One model's figures from an evaluation report's entry for it."""
    suite, short = model["behaviour"], model["short_reviews"]
    every = model["short_reviews_every_rating"]
    return {
        "behaviour_pass_rate": {
            name: round(entry["pass_rate"], 4) for name, entry in suite["capabilities"].items()
        }
        | {"all_cases": round(suite["pass_rate"], 4)},
        "behaviour_mean_capability_pass_rate": round(suite["mean_capability_pass_rate"], 4),
        "behaviour_low_confidence": {
            name: entry["low_confidence"] for name, entry in suite["capabilities"].items()
        },
        "short_reviews_accuracy": short["accuracy"],
        "short_reviews_accuracy_by_part": short["accuracy_by_part"],
        "short_reviews_mean_confidence": round(short["mean_confidence"], 4),
        "short_reviews_ece": round(short["ece"], 4),
        # What chance alone gives a perfectly calibrated model on as many texts: an ECE
        # inside it cannot be told from calibrated.
        "short_reviews_ece_if_calibrated": _rounded(short["ece_if_calibrated"]),
        # The same cut from every validation review: the check picks the easiest texts,
        # so calibration is read here (README, Short texts).
        "short_reviews_every_rating": _calibration(every),
        # And from the test reviews, for the report only: ten times the texts, so a
        # calibration error is told from chance more closely.
        "short_reviews_test": _calibration(model["short_reviews_test"]),
        "short_reviews_test_clear_rating": _calibration(model["short_reviews_test_clear_rating"]),
        "test_accuracy": model["accuracy"],
        "test_ece": round(model["ece"], 4),
        "test_ece_if_calibrated": _rounded(model["ece_if_calibrated"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, required=True, help="model.tar.gz")
    parser.add_argument(
        "--source", default=os.environ.get(imdb_source.SOURCE_ENV) or str(DEFAULT_ARCHIVE)
    )
    parser.add_argument("--data", type=Path, default=Path("data/prepared"))
    parser.add_argument("--output", type=Path, default=Path("artifacts/bench/behaviour"))
    parser.add_argument("--cache-dir", type=Path, default=imdb_source.default_cache_dir())
    parser.add_argument("--threads", type=int, default=0, help="as `sentiment evaluate --threads`")
    args = parser.parse_args()

    load_before = os.getloadavg()
    started = time.perf_counter()
    report = evaluation.evaluate(
        args.model,
        args.data,
        imdb_source.resolve(args.source, args.cache_dir),
        args.output,
        baseline=True,
        threads=args.threads,
    )
    summary = {
        "artifact": str(args.model),
        "artifact_sha256": report["artifact_sha256"],
        "behaviour_cases": report["model"]["behaviour"]["cases"],
        "short_reviews": {
            key: report["short_reviews"][key]
            for key in ("texts", "source_reviews", "positive", "negative", "texts_by_part")
        },
        "test_reviews": report["test_reviews"],
        "test_note": TEST_NOTE,
        "model": short_text_summary(report["model"]),
        "baseline": short_text_summary(report["baseline"]),
        "seconds": round(time.perf_counter() - started, 1),
        "cores": os.cpu_count(),
        "machine": machine(),
        "load_average_before": [round(load, 2) for load in load_before],
    }
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
