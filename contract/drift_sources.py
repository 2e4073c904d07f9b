"""The drift report's inputs: captured exchanges and feedback records, from a local directory
or an S3 prefix.

Captured traffic is contract/capture.py's records, under ``.../<yyyy>/<mm>/<dd>/<hh>/`` (UTC):
files whose hour lies outside the window are never opened. The drift report reads what the
endpoint answered its callers: a shadow variant's records (shadow testing) are left out, and
`sentiment compare` reads both (capture_sources). Feedback is one JSON object per
prediction (contract/feedback.py). S3 is read through a boto3 client the caller makes, so this
module stays free of boto3: the command line makes one only for an ``s3://`` source, and the
Lambda always has one.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from contract.api import SHADOW_VARIANT
from contract.capture import decoded, read_records
from contract.drift import Profile
from contract.feedback import LABELS

_HOUR_PATH = re.compile(r"(?:^|/)(\d{4})/(\d{2})/(\d{2})/(\d{2})/[^/]+$")
_TEXT = "text/plain"


@dataclass(frozen=True)
class Window:
    """``since`` ≤ time < ``until``; None leaves that side open."""

    since: datetime | None = None
    until: datetime | None = None

    def holds(self, time: datetime) -> bool:
        return (self.since is None or time >= self.since) and (
            self.until is None or time < self.until
        )

    def may_hold_hour(self, hour: datetime) -> bool:
        """Whether the hour starting at ``hour`` overlaps the window."""
        return (self.since is None or hour + timedelta(hours=1) > self.since) and (
            self.until is None or hour < self.until
        )

    def to_json(self) -> dict[str, str | None]:
        return {
            "since": self.since and timestamp(self.since),
            "until": self.until and timestamp(self.until),
        }


@dataclass(frozen=True)
class Answered:
    """One review the model was asked about, and its answer."""

    review: str
    score: float
    low_confidence: bool
    model_version: str | None
    time: datetime
    # The verdict as the model worded it ("positive" or "negative"); None if it gave none.
    sentiment: str | None = None


@dataclass(frozen=True)
class CaptureFile:
    """One file of captured records, and whose records its key says they are."""

    endpoint: str | None
    variant: str | None
    read: Callable[[], bytes]


def timestamp(time: datetime) -> str:
    return time.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> datetime:
    """An ISO 8601 time (``Z`` or an offset; none means UTC), or a date (its midnight, UTC)."""
    time = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return time if time.tzinfo else time.replace(tzinfo=UTC)


def capture_hour(key: str) -> datetime | None:
    """The hour a capture file's key or path says it holds; None if it says none."""
    found = _HOUR_PATH.search(key)
    if not found:
        return None
    year, month, day, hour = map(int, found.groups())
    return datetime(year, month, day, hour, tzinfo=UTC)


def capture_location(relative_key: str) -> tuple[str | None, str | None]:
    """(endpoint, variant) of a capture file from its key below the source, laid out as
    ``[<endpoint>/]<variant>/<yyyy>/<mm>/<dd>/<hh>/<file>``; None where the key is shorter."""
    parts = relative_key.split("/")
    if capture_hour(relative_key) is None:
        return None, None
    variant = parts[-6] if len(parts) >= 6 else None
    endpoint = parts[-7] if len(parts) >= 7 else None
    return endpoint, variant


def parse_s3_url(url: str) -> tuple[str, str]:
    """``s3://bucket/prefix`` → (bucket, prefix without slashes at its ends)."""
    bucket, _, prefix = url.removeprefix("s3://").partition("/")
    if not url.startswith("s3://") or not bucket:
        raise ValueError(f"not an S3 URL: {url!r}")
    return bucket, prefix.strip("/")


def answered_reviews(record: dict[str, Any]) -> list[Answered]:
    """The reviews a capture record asked about, with the answers; none when the model refused
    the request or the record is not one of a prediction."""
    try:
        data = record["captureData"]
        time = parse_time(record["eventMetadata"]["inferenceTime"])
        request = decoded(data["endpointInput"]).decode("utf-8")
        answer = json.loads(decoded(data["endpointOutput"]))
        if data["endpointInput"]["observedContentType"].split(";")[0].strip() == _TEXT:
            reviews = [request]
        else:
            asked = json.loads(request)
            reviews = [asked["review"]] if "review" in asked else list(asked["reviews"])
        verdicts = answer.get("predictions", [answer])
        if len(verdicts) != len(reviews):
            return []
        return [
            Answered(
                review=review,
                score=float(verdict["score"]),
                low_confidence=bool(verdict.get("low_confidence", False)),
                model_version=verdict.get("model_version"),
                time=time,
                sentiment=verdict.get("sentiment"),
            )
            for review, verdict in zip(reviews, verdicts, strict=True)
            if isinstance(review, str)
        ]
    except (KeyError, TypeError, ValueError, AttributeError):
        return []  # an error answer, or a body that is not a prediction's


def capture_sources(source: str, window: Window, s3: Any = None) -> Iterator[CaptureFile]:
    """Each capture file under ``source`` that may hold the window's records, read when asked."""
    if source.startswith("s3://"):
        bucket, prefix = parse_s3_url(source)
        for item in s3_objects(s3, bucket, prefix):
            key = item["Key"]
            hour = capture_hour(key)
            if key.endswith(".jsonl") and (hour is None or window.may_hold_hour(hour)):
                yield CaptureFile(
                    *capture_location(key.removeprefix(f"{prefix}/") if prefix else key),
                    read=lambda key=key: s3.get_object(Bucket=bucket, Key=key)["Body"].read(),
                )
        return
    root = Path(source)
    if not root.is_dir():
        raise FileNotFoundError(f"no captured traffic at {root}")
    for path in sorted(root.rglob("*.jsonl")):
        relative = path.relative_to(root).as_posix()
        hour = capture_hour(relative)
        if hour is None or window.may_hold_hour(hour):
            yield CaptureFile(*capture_location(relative), read=path.read_bytes)


def capture_files(
    source: str,
    window: Window,
    s3: Any = None,
    skip_variants: Collection[str] = (SHADOW_VARIANT,),
) -> Iterator[bytes]:
    """The contents of each capture file under ``source`` that may hold the window's records,
    but those of ``skip_variants``: by default the shadow variant's, which no caller saw."""
    for file in capture_sources(source, window, s3):
        if file.variant not in skip_variants:
            yield file.read()


def answered_in(files: Iterable[bytes], window: Window) -> Iterator[Answered]:
    """Every answered review in the files whose record falls in the window."""
    for content in files:
        for record in read_records(content.splitlines(keepends=True)):
            for answered in answered_reviews(record):
                if window.holds(answered.time):
                    yield answered


def collect_traffic(
    baseline: dict[str, Any],
    answered: Iterable[Answered],
    words: Any,
    model_version: str | None,
) -> tuple[Profile, dict[str, int]]:
    """The profile of the answers ``model_version`` gave (every answer when None), over the
    baseline's bins; ``words`` is drift.review_words' splitter. Also the counts left out."""
    profile = Profile.like(baseline)
    other_versions = 0
    for item in answered:
        if model_version is not None and item.model_version != model_version:
            other_versions += 1
            continue
        known, unknown = words(item.review)
        profile.add(known, unknown, item.score, item.low_confidence)
    return profile, {"answered": len(profile), "other_model_versions": other_versions}


def feedback_files(source: str, window: Window, s3: Any = None) -> Iterator[bytes]:
    """Each feedback record's bytes under ``source``; none when a local directory is missing
    (no feedback yet). In S3, objects last written before the window are skipped unread."""
    if source.startswith("s3://"):
        bucket, prefix = parse_s3_url(source)
        for item in s3_objects(s3, bucket, prefix):
            fresh = window.since is None or item["LastModified"] >= window.since
            if item["Key"].endswith(".json") and fresh:
                yield s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
        return
    root = Path(source)
    if root.is_dir():
        # Hidden files are writes still in progress (contract.feedback.DirectoryFeedbackStore).
        for path in sorted(root.glob("[!.]*.json")):
            yield path.read_bytes()


def feedback_in(
    files: Iterable[bytes], window: Window, model_version: str | None
) -> Iterator[dict[str, Any]]:
    """The readable feedback records received in the window about ``model_version``'s
    answers (any model's when None)."""
    for content in files:
        try:
            record = json.loads(content)
            received = parse_time(record["received_at"])
        except (KeyError, TypeError, ValueError, AttributeError):
            continue
        if record.get("label") not in LABELS or record.get("predicted") not in LABELS:
            continue
        if model_version is not None and record.get("model_version") != model_version:
            continue
        if window.holds(received):
            yield record


def s3_objects(s3: Any, bucket: str, prefix: str) -> Iterator[dict[str, Any]]:
    """Every object under ``prefix/`` (ListObjectsV2, page by page)."""
    pages = s3.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix=f"{prefix}/" if prefix else ""
    )
    for page in pages:
        yield from page.get("Contents", [])
