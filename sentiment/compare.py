"""`sentiment compare`: how the shadow model answers the requests production answered.

With shadow testing on, data capture records both variants' answers to each request
(contract/capture.py's records, under ``<endpoint>/<variant>/...``; contract/drift_sources.py
reads them from a directory or S3). This module pairs the production variant's record of a
request with the shadow variant's, by the request's ``inferenceId`` (the prediction id the
API sends with every request) or, without one, its ``eventId``, and reports, over the
reviews both answered: how often the verdicts agree, how far the scores moved (shadow minus
production), each model's share of low-confidence verdicts, and each one's latency.

Captured records carry no latency. Locally, the endpoint emulator logs both models' time for
each exchange (SHADOW_LOG, written by sentiment/shadow.py): ``--latency-log`` reads that
log. In AWS the per-variant figure is CloudWatch's ModelLatency, and the report prints the
command that fetches it.
"""

from __future__ import annotations

import json
import math
import re
import statistics
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from contract.api import ENDPOINT_VARIANT, SHADOW_VARIANT
from contract.capture import read_records
from contract.drift_sources import (
    Answered,
    CaptureFile,
    Window,
    answered_reviews,
    capture_sources,
    timestamp,
)
from sentiment.monitor import s3_client, s3_errors_as_input_errors

REPORT_FORMAT = 1
REPORT_FILE = "compare_report.json"
# The emulator's line for each exchange the shadow answered (sentiment/shadow.py).
SHADOW_LOG = re.compile(
    r"shadow answered event_id=(?P<event_id>\S+) inference_id=(?P<inference_id>\S+) "
    r"production_ms=(?P<production_ms>[0-9.]+) shadow_ms=(?P<shadow_ms>[0-9.]+)"
)
# Reviews whose scores moved most, shown in the report.
EXAMPLES = 5


def shadow_log_line(
    event_id: str, inference_id: str | None, production_ms: float, shadow_ms: float
) -> str:
    """The log line SHADOW_LOG reads back."""
    return (
        f"shadow answered event_id={event_id} inference_id={inference_id or '-'} "
        f"production_ms={production_ms:.3f} shadow_ms={shadow_ms:.3f}"
    )


@dataclass(frozen=True)
class CompareOptions:
    capture: str
    window: Window = field(default_factory=Window)
    production_variant: str = ENDPOINT_VARIANT
    shadow_variant: str = SHADOW_VARIANT
    # Only this endpoint's records (default: every endpoint's under the source).
    endpoint: str | None = None
    # The endpoint emulator's log, for both models' latencies (local stack only).
    latency_log: Path | None = None


@dataclass(frozen=True)
class Captured:
    """One variant's record of one request: the reviews it answered."""

    endpoint: str | None
    event_id: str | None
    time: datetime
    answers: list[Answered]


@dataclass
class VariantRecords:
    """One variant's records in the window, by request."""

    by_request: dict[tuple[str | None, str], Captured] = field(default_factory=dict)
    # Records that answered no review (an error, or not a prediction's), and repeats of an id.
    unreadable: int = 0
    repeated: int = 0

    def add(self, endpoint: str | None, record: dict[str, Any], window: Window) -> None:
        answers = answered_reviews(record)
        metadata = record.get("eventMetadata", {})
        request = metadata.get("inferenceId") or metadata.get("eventId")
        if not answers or not request:
            self.unreadable += 1
            return
        if not window.holds(answers[0].time):
            return
        key = (endpoint, request)
        if key in self.by_request:
            self.repeated += 1  # a retried request: its first answer stands
            return
        self.by_request[key] = Captured(endpoint, metadata.get("eventId"), answers[0].time, answers)


def read_variants(
    files: Iterable[CaptureFile], options: CompareOptions
) -> tuple[VariantRecords, VariantRecords]:
    """(production, shadow) records under the source, of the options' endpoint and window."""
    production, shadow = VariantRecords(), VariantRecords()
    roles = {options.production_variant: production, options.shadow_variant: shadow}
    for file in files:
        records = roles.get(file.variant)
        if records is None or options.endpoint not in (None, file.endpoint):
            continue
        content = file.read()
        for record in read_records(content.splitlines(keepends=True)):
            records.add(file.endpoint, record, options.window)
    return production, shadow


@dataclass(frozen=True)
class Pair:
    """One review as both models answered it, in one request."""

    production: Answered
    shadow: Answered
    event_id: str | None


def pairs(production: VariantRecords, shadow: VariantRecords) -> tuple[list[Pair], dict[str, int]]:
    """The reviews both variants answered in the same request, and the counts left unpaired."""
    found: list[Pair] = []
    mismatched = 0
    for key, ours in production.by_request.items():
        theirs = shadow.by_request.get(key)
        if theirs is None:
            continue
        reviews = [answer.review for answer in ours.answers]
        if reviews != [answer.review for answer in theirs.answers]:
            mismatched += 1  # the same id on two different requests: not comparable
            continue
        found.extend(
            Pair(a, b, ours.event_id) for a, b in zip(ours.answers, theirs.answers, strict=True)
        )
    both = production.by_request.keys() & shadow.by_request.keys()
    return found, {
        "production": len(production.by_request),
        "shadow": len(shadow.by_request),
        "paired_requests": len(both) - mismatched,
        "production_only": len(production.by_request) - len(both),
        "shadow_only": len(shadow.by_request) - len(both),
        "mismatched": mismatched,
        "unreadable": production.unreadable + shadow.unreadable,
        "repeated": production.repeated + shadow.repeated,
    }


def percentile(values: list[float], share: float) -> float:
    """The ``share`` quantile of ``values``, linearly interpolated between closest ranks."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * share
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def verdict(answer: Answered) -> str:
    """The verdict as the model worded it, or as its score reads (an answer that has none)."""
    return answer.sentiment or ("positive" if answer.score >= 0.5 else "negative")


def figures(found: list[Pair]) -> dict[str, Any]:
    """Agreement, score shift and low-confidence rates over the paired reviews."""
    count = len(found)
    shifts = [pair.shadow.score - pair.production.score for pair in found]
    distances = [abs(shift) for shift in shifts]
    changed = Counter(
        f"{verdict(pair.production)}->{verdict(pair.shadow)}"
        for pair in found
        if verdict(pair.production) != verdict(pair.shadow)
    )
    return {
        "reviews": count,
        "agreement": (count - sum(changed.values())) / count,
        "disagreements": dict(sorted(changed.items())),
        "score_shift": {
            "mean_abs": statistics.fmean(distances),
            "median_abs": statistics.median(distances),
            "p95_abs": percentile(distances, 0.95),
            "max_abs": max(distances),
            # Positive: the shadow scores reviews more positive than production.
            "mean_signed": statistics.fmean(shifts),
        },
        "low_confidence": {
            "production": sum(pair.production.low_confidence for pair in found) / count,
            "shadow": sum(pair.shadow.low_confidence for pair in found) / count,
        },
        "positive_share": {
            "production": sum(verdict(pair.production) == "positive" for pair in found) / count,
            "shadow": sum(verdict(pair.shadow) == "positive" for pair in found) / count,
        },
    }


def examples(found: list[Pair], limit: int = EXAMPLES) -> list[dict[str, Any]]:
    """The reviews whose scores moved most, largest first."""
    moved = sorted(found, key=lambda pair: -abs(pair.shadow.score - pair.production.score))
    return [
        {
            "review": pair.production.review[:160],
            "production": {"verdict": verdict(pair.production), "score": pair.production.score},
            "shadow": {"verdict": verdict(pair.shadow), "score": pair.shadow.score},
        }
        for pair in moved[:limit]
        if pair.shadow.score != pair.production.score
    ]


def latencies(lines: Iterable[str]) -> dict[str, tuple[float, float]]:
    """(production ms, shadow ms) of each exchange the emulator's log names, by event id."""
    found = {}
    for line in lines:
        match = SHADOW_LOG.search(line)
        if match:
            found[match["event_id"]] = (
                float(match["production_ms"]),
                float(match["shadow_ms"]),
            )
    return found


def _spread(values: list[float]) -> dict[str, float]:
    return {
        "mean": statistics.fmean(values),
        "p50": percentile(values, 0.5),
        "p95": percentile(values, 0.95),
    }


def cloudwatch_commands(
    endpoint: str | None, variants: list[str], since: datetime, until: datetime
) -> list[str]:
    """The AWS CLI commands that fetch each variant's ModelLatency (microseconds)."""
    return [
        "aws cloudwatch get-metric-statistics --namespace AWS/SageMaker "
        "--metric-name ModelLatency --dimensions "
        f"Name=EndpointName,Value={endpoint or '<endpoint>'} Name=VariantName,Value={variant} "
        f"--start-time {timestamp(since)} --end-time {timestamp(until)} --period 3600 "
        "--extended-statistics p50 p95"
        for variant in variants
    ]


def latency(
    found: list[Pair], options: CompareOptions, endpoint: str | None, span: tuple[datetime, ...]
) -> dict[str, Any]:
    """Both models' latency over the paired requests, from the emulator's log; else where to
    find it (CloudWatch's ModelLatency per variant)."""
    variants = [options.production_variant, options.shadow_variant]
    if options.latency_log is None:
        # Whole hours around the paired requests, the commands' period.
        since = options.window.since or min(span).replace(minute=0, second=0, microsecond=0)
        until = options.window.until or max(span).replace(
            minute=0, second=0, microsecond=0
        ) + timedelta(hours=1)
        return {
            "source": None,
            "note": "captured records carry no latency; in AWS it is CloudWatch's ModelLatency "
            "per variant (microseconds); locally, pass the endpoint emulator's log with "
            "--latency-log",
            "commands": cloudwatch_commands(endpoint, variants, since, until),
        }
    logged = latencies(
        options.latency_log.read_text(encoding="utf-8", errors="replace").splitlines()
    )
    requests = {pair.event_id for pair in found} & logged.keys()
    if not requests:
        return {
            "source": str(options.latency_log),
            "note": "the log names none of the paired requests",
            "requests": 0,
        }
    timed = [logged[event] for event in sorted(requests)]
    return {
        "source": str(options.latency_log),
        "requests": len(timed),
        "unit": "ms",
        options.production_variant: _spread([production for production, _ in timed]),
        options.shadow_variant: _spread([shadow for _, shadow in timed]),
    }


def _versions(answers: Iterator[Answered]) -> list[str]:
    return sorted({answer.model_version for answer in answers if answer.model_version})


def compare(options: CompareOptions, s3: Any = None) -> dict[str, Any]:
    """The comparison report; ValueError when no request was answered by both variants."""
    with s3_errors_as_input_errors():
        s3 = s3 if s3 is not None else s3_client(options.capture)
        production, shadow = read_variants(
            capture_sources(options.capture, options.window, s3), options
        )
    found, counts = pairs(production, shadow)
    window = options.window.to_json()
    if not found:
        raise ValueError(
            f"no request in {options.capture} between {window['since'] or 'the first record'} "
            f"and {window['until'] or 'now'} was answered by both the production variant "
            f"({options.production_variant}: {counts['production']} records) and the shadow "
            f"variant ({options.shadow_variant}: {counts['shadow']} records); is shadow "
            "testing on (sentiment:shadowDeployment, or `sentiment up --shadow-model`), and "
            "is traffic captured?"
        )
    endpoints = Counter(record.endpoint for record in production.by_request.values())
    endpoint = options.endpoint or endpoints.most_common(1)[0][0]
    span = tuple(pair.production.time for pair in found)
    return {
        "format": REPORT_FORMAT,
        "created_at": timestamp(datetime.now(UTC)),
        "capture": options.capture,
        "window": window,
        "endpoint": endpoint,
        "variants": {"production": options.production_variant, "shadow": options.shadow_variant},
        "models": {
            "production": _versions(pair.production for pair in found),
            "shadow": _versions(pair.shadow for pair in found),
        },
        "records": counts,
        **figures(found),
        "latency": latency(found, options, endpoint, span),
        "largest_shifts": examples(found),
    }


def write_report(report: dict[str, Any], directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / REPORT_FILE
    path.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    return path


def _shares(values: dict[str, float]) -> str:
    return f"production {values['production']:.3f}, shadow {values['shadow']:.3f}"


def summary(report: dict[str, Any]) -> str:
    """A few lines for the terminal."""
    window, records, shift = report["window"], report["records"], report["score_shift"]
    variants, models = report["variants"], report["models"]
    changed = ", ".join(f"{count} {kind}" for kind, count in report["disagreements"].items())
    lines = [
        f"Shadow comparison: {report['reviews']} reviews in {records['paired_requests']} "
        f"requests answered by both {variants['production']} (model "
        f"{', '.join(models['production']) or '?'}) and {variants['shadow']} (model "
        f"{', '.join(models['shadow']) or '?'}), from {window['since'] or 'the first record'} "
        f"to {window['until'] or 'now'}",
        f"  verdicts agree      {report['agreement']:.3f}"
        + (f" (differ: {changed})" if changed else ""),
        f"  score shift         |shadow - production| mean {shift['mean_abs']:.4f}, median "
        f"{shift['median_abs']:.4f}, p95 {shift['p95_abs']:.4f}, max {shift['max_abs']:.4f}; "
        f"mean signed {shift['mean_signed']:+.4f}",
        f"  low confidence      {_shares(report['low_confidence'])}",
        f"  positive verdicts   {_shares(report['positive_share'])}",
    ]
    latency = report["latency"]
    if latency.get("requests"):
        lines.append(
            "  latency (ms)        "
            + "; ".join(
                f"{variant} mean {latency[variant]['mean']:.2f}, p50 "
                f"{latency[variant]['p50']:.2f}, p95 {latency[variant]['p95']:.2f}"
                for variant in (variants["production"], variants["shadow"])
            )
            + f" ({latency['requests']} requests, {latency['source']})"
        )
    else:
        lines.append(f"  latency             {latency['note']}")
        lines.extend(f"    {command}" for command in latency.get("commands", []))
    lines.append(
        f"  unpaired            {records['production_only']} production only, "
        f"{records['shadow_only']} shadow only"
    )
    return "\n".join(lines)
