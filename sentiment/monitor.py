"""`sentiment monitor`: is today's traffic still what the model learned from?

Reads captured traffic (contract/capture.py's records, from artifacts/capture/ or the deployed
bucket's capture/ prefix) and the page's feedback, reads each review with the model artifact's
own preprocessing and vocabulary (its code/preprocess.py, never the checkout's), and compares
them with the artifact's drift baseline, or one re-taken from captured traffic
(``rebaseline``). The figures and thresholds are contract/drift.py's, which the drift Lambda
shares; this module reads the sources and writes the report, the page and the summary.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from contract.drift import (
    BASELINE_FILE,
    REPORT_FORMAT,
    Profile,
    Thresholds,
    baseline_document,
    check_baseline,
    compare,
    feedback_accuracy,
    review_words,
)
from contract.drift_sources import (
    Window,
    answered_in,
    capture_files,
    collect_traffic,
    feedback_files,
    feedback_in,
    timestamp,
)
from contract.packaging import extract_tarball
from sentiment.drift_page import drift_page
from sentiment.model_loader import CODE_DIR, import_isolated

REPORT_FILE = "drift_report.json"
PAGE_FILE = "drift_report.html"
VOCABULARY_FILE = "vocabulary.json"


@dataclass(frozen=True)
class MonitorOptions:
    model: Path
    capture: str
    feedback: str
    window: Window
    thresholds: Thresholds
    # A baseline file taken with `--rebaseline`; None: the artifact's own.
    baseline: Path | None = None
    # Every answer in the window, whichever model gave it (default: the baseline's model only).
    all_versions: bool = False


@dataclass(frozen=True)
class ArtifactReading:
    """What the monitor takes from model.tar.gz: its way of reading a review, its baseline."""

    words: Callable[[str], tuple[list[str], list[str]]]
    baseline: dict[str, Any] | None


def read_artifact(model: Path) -> ArtifactReading:
    """The artifact's tokenizer and vocabulary (its own code/preprocess.py) and its baseline
    (None for an artifact trained before baselines were recorded)."""
    if not model.is_file():
        raise FileNotFoundError(f"model artifact not found: {model}")
    with tempfile.TemporaryDirectory(prefix="sentiment-monitor-") as scratch:
        directory = extract_tarball(model, Path(scratch) / "model")
        preprocess = import_isolated(directory / CODE_DIR, "preprocess")
        vocabulary = json.loads((directory / VOCABULARY_FILE).read_text(encoding="utf-8"))
        baseline_path = directory / BASELINE_FILE
        baseline = (
            check_baseline(json.loads(baseline_path.read_text(encoding="utf-8")), str(model))
            if baseline_path.is_file()
            else None
        )
    return ArtifactReading(review_words(preprocess, vocabulary), baseline)


def s3_client(*sources: str) -> Any:
    if not any(source.startswith("s3://") for source in sources):
        return None
    import boto3

    return boto3.client("s3")


def _baseline(options: MonitorOptions, artifact: ArtifactReading) -> dict[str, Any]:
    if options.baseline is not None:
        retaken = check_baseline(
            json.loads(options.baseline.read_text(encoding="utf-8")), str(options.baseline)
        )
        model = (artifact.baseline or {}).get("model_version")
        if None not in (model, retaken.get("model_version")) and retaken["model_version"] != model:
            raise ValueError(
                f"{options.baseline} was taken for model {retaken['model_version']}, "
                f"{options.model} is model {model}: re-take it (--rebaseline)"
            )
        return retaken
    if artifact.baseline is None:
        raise ValueError(
            f"{options.model} has no {BASELINE_FILE} (trained before baselines were recorded): "
            "take one from captured traffic with --rebaseline and pass it with --baseline"
        )
    return artifact.baseline


def _traffic(
    options: MonitorOptions,
    words: Callable[[str], tuple[list[str], list[str]]],
    bins: dict[str, Any],
    version: str | None,
    s3: Any,
) -> tuple[Profile, dict[str, int]]:
    """The window's traffic over ``bins``' histogram edges: ValueError with too few reviews."""
    profile, counts = collect_traffic(
        bins,
        answered_in(capture_files(options.capture, options.window, s3), options.window),
        words,
        version,
    )
    if len(profile) < options.thresholds.min_records:
        window = options.window.to_json()
        model = f" answered by model {version}" if version else ""
        raise ValueError(
            f"{len(profile)} captured reviews{model} in {options.capture} between "
            f"{window['since'] or 'the first record'} and {window['until'] or 'now'} "
            f"({counts['other_model_versions']} by other models); at least "
            f"{options.thresholds.min_records} are needed (--min-records, --since, --until)"
        )
    return profile, counts


@contextmanager
def s3_errors_as_input_errors() -> Iterator[None]:
    """A bucket that cannot be read (no credentials, no such bucket, access denied) is bad
    input to the command, said in one line, not a traceback."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except (BotoCoreError, ClientError) as error:
        raise ValueError(f"reading S3: {error}") from None


def monitor(options: MonitorOptions) -> dict[str, Any]:
    """The drift report: ValueError when the window holds too few records to judge."""
    with s3_errors_as_input_errors():
        return _monitor(options)


def _monitor(options: MonitorOptions) -> dict[str, Any]:
    artifact = read_artifact(options.model)
    baseline = _baseline(options, artifact)
    s3 = s3_client(options.capture, options.feedback)
    version = None if options.all_versions else baseline.get("model_version")
    profile, counts = _traffic(options, artifact.words, baseline, version, s3)
    feedback = feedback_accuracy(
        feedback_in(feedback_files(options.feedback, options.window, s3), options.window, version)
    )
    return {
        "format": REPORT_FORMAT,
        "created_at": timestamp(datetime.now(UTC)),
        "window": options.window.to_json(),
        "capture": options.capture,
        "feedback": options.feedback,
        "model_version": version,
        "baseline": {
            "source": baseline.get("source"),
            "reviews": baseline.get("reviews"),
            "period": baseline.get("period"),
        },
        "records": counts,
        **compare(baseline, profile, feedback, options.thresholds),
    }


def rebaseline(options: MonitorOptions) -> dict[str, Any]:
    """A baseline from the window's captured traffic, for later runs' ``--baseline``, over the
    standard bins (contract.drift's) whatever the artifact's baseline used."""
    with s3_errors_as_input_errors():
        return _rebaseline(options)


def _rebaseline(options: MonitorOptions) -> dict[str, Any]:
    artifact = read_artifact(options.model)
    version = None
    if artifact.baseline is not None and not options.all_versions:
        version = artifact.baseline.get("model_version")
    profile, _ = _traffic(
        options, artifact.words, Profile().to_json(), version, s3_client(options.capture)
    )
    return baseline_document(
        profile,
        source="captured traffic",
        model_version=version,
        period=options.window.to_json(),
        capture=options.capture,
        created_at=timestamp(datetime.now(UTC)),
    )


def write_report(report: dict[str, Any], directory: Path) -> tuple[Path, Path]:
    """drift_report.json and drift_report.html in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    document = directory / REPORT_FILE
    document.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    page = directory / PAGE_FILE
    page.write_text(drift_page(report), encoding="utf-8")
    return document, page


def write_baseline(baseline: dict[str, Any], directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / BASELINE_FILE
    path.write_text(json.dumps(baseline, indent=1) + "\n", encoding="utf-8")
    return path


def _signed(value: float) -> str:
    return f"{value:+.3f}"


def summary(report: dict[str, Any]) -> str:
    """A few lines for the terminal: each figure, its threshold, and what crossed."""
    figures, limits, crossed = report["figures"], report["thresholds"], set(report["crossed"])
    window = report["window"]

    def line(name: str, label: str, value: str, threshold: str) -> str:
        mark = "  CROSSED" if name in crossed else ""
        return f"  {label:<20}{value:<34}threshold {threshold}{mark}"

    accuracy = figures["feedback_accuracy"]
    unknown = ", ".join(f"{word} ({count})" for word, count in report["top_unknown_words"][:8])
    lines = [
        f"Drift report: {figures['reviews']} reviews from {window['since'] or 'the first record'}"
        f" to {window['until'] or 'now'}, model {report['model_version'] or 'any'}, baseline: "
        f"{report['baseline']['source']}",
        line("length_psi", "length PSI", f"{figures['length_psi']:.3f}", f"{limits['length_psi']}"),
        line("score_psi", "score PSI", f"{figures['score_psi']:.3f}", f"{limits['score_psi']}"),
        line(
            "oov_rate_increase",
            "unknown words",
            f"{figures['oov_rate']:.3f} ({_signed(figures['oov_rate_increase'])})",
            f"+{limits['oov_rate_increase']}",
        ),
        line(
            "low_confidence_increase",
            "low confidence",
            f"{figures['low_confidence_share']:.3f} "
            f"({_signed(figures['low_confidence_increase'])})",
            f"+{limits['low_confidence_increase']}",
        ),
        line(
            "feedback_accuracy",
            "feedback accuracy",
            ("n/a" if accuracy is None else f"{accuracy:.3f}")
            + f" ({figures['feedback_received']} answers)",
            f"{limits['feedback_accuracy']} (with {limits['min_feedback']}+ answers)",
        ),
        f"  most frequent unknown words: {unknown or 'none'}",
    ]
    if crossed:
        lines.append(f"Thresholds crossed: {', '.join(report['crossed'])}")
    return "\n".join(lines)
