"""Feedback from the page → labeled reviews for the next training split, and why others stay out.

`sentiment prepare --feedback SOURCE` reads the records (a local directory such as
``artifacts/feedback/``, or the deployed bucket's ``s3://<artifact bucket>/feedback``) and
adds what passes to the training split only. A record stays out, with its reason, when:

- ``unreadable``: not a feedback record (contract/feedback.py);
- ``in_validation``, ``in_test``, ``in_train``: its review is already in that split (visitors
  paste IMDB reviews; compared as normalized text). Held-out reviews must stay held out, and a
  training review already has its label;
- ``duplicate``: another record holds the same review (the latest received is kept);
- ``over_source_limit``: its source already gave ``per_source`` records that joined (the
  API's daily allowance adds up over days; this bounds what one address adds to one dataset).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from contract.feedback import DirectoryFeedbackStore, normalized_text, parse_record


@dataclass(frozen=True)
class FeedbackReview:
    prediction_id: str
    review: str
    label: int  # 1 positive, 0 negative, as the dataset stores labels


@dataclass
class Intake:
    """What joins the training split, and what stays out and why."""

    source: str
    joined: list[FeedbackReview] = field(default_factory=list)
    left_out: list[dict[str, str]] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """The manifest's record of the intake."""
        digest = hashlib.sha256()
        for review in self.joined:
            digest.update(f"{review.prediction_id}\0{review.label}\0{review.review}\0".encode())
        return {
            "source": self.source,
            "records": len(self.joined) + len(self.left_out),
            "joined": len(self.joined),
            "positive": sum(review.label for review in self.joined),
            "negative": sum(1 - review.label for review in self.joined),
            "joined_sha256": digest.hexdigest(),
            "left_out": dict(sorted(Counter(item["reason"] for item in self.left_out).items())),
            "left_out_records": sorted(self.left_out, key=lambda item: item["prediction_id"]),
        }


def text_key(review: str) -> str:
    """What two reviews share when they are the same review pasted again."""
    return hashlib.sha256(normalized_text(review).encode("utf-8")).hexdigest()


def read_source(source: str) -> Iterator[tuple[str, bytes]]:
    """(name, bytes) of each stored record at ``source``: a directory or ``s3://bucket/prefix``."""
    if source.startswith("s3://"):
        yield from _s3_objects(source)
        return
    directory = Path(source)
    if not directory.is_dir():
        raise FileNotFoundError(f"no feedback directory at {source}")
    yield from DirectoryFeedbackStore(directory).items()


def _s3_objects(url: str, client: Any = None) -> Iterator[tuple[str, bytes]]:
    import boto3

    bucket, _, prefix = url.removeprefix("s3://").partition("/")
    prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
    client = client or boto3.client("s3")
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            if item["Key"].endswith(".json"):
                body = client.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
                yield item["Key"].rsplit("/", 1)[-1], body


def select(
    source: str,
    stored: Iterable[tuple[str, bytes]],
    splits: Mapping[str, set[str]],
    per_source: int,
) -> Intake:
    """The records that may join the training split.

    ``splits`` maps a split's name to the text keys (text_key) of its reviews.
    """
    intake = Intake(source)
    readable = []
    for name, raw in stored:
        try:
            readable.append(parse_record(raw))
        except ValueError as error:
            intake.left_out.append(
                {
                    "prediction_id": name.removesuffix(".json"),
                    "reason": "unreadable",
                    "detail": str(error)[:200],
                }
            )
    # The latest word on a review wins; ties break on the id, so a rerun picks the same.
    readable.sort(key=lambda r: (r.get("received_at", ""), r["prediction_id"]), reverse=True)
    seen: set[str] = set()
    per_source_joined: Counter[str] = Counter()
    for record in readable:
        key = text_key(record["review"])
        reason = next(
            (f"in_{split}" for split in ("validation", "test", "train") if key in splits[split]),
            None,
        )
        if reason is None and key in seen:
            reason = "duplicate"
        source_id = str(record.get("source"))
        if reason is None and per_source_joined[source_id] >= per_source:
            reason = "over_source_limit"
        seen.add(key)
        if reason is not None:
            intake.left_out.append({"prediction_id": record["prediction_id"], "reason": reason})
            continue
        per_source_joined[source_id] += 1
        intake.joined.append(
            FeedbackReview(
                record["prediction_id"], record["review"], int(record["label"] == "positive")
            )
        )
    intake.joined.sort(key=lambda review: review.prediction_id)
    return intake
