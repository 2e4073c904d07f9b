"""The Lambda entry point, run by an EventBridge schedule: the drift report as metrics.

Each run reads the deployed model.tar.gz's tokenizer and baseline (once per container), the
captured traffic and feedback of the last WINDOW_HOURS, computes what `sentiment monitor`
computes, publishes the figures to CloudWatch and logs them as one JSON line. A window with
fewer reviews than the thresholds' ``min_records`` publishes the count alone: the alarms then
see no data, which they treat as not breaching. A fault (settings, S3, the artifact) fails
the run, and the stack's alarm on the function's errors says so.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3

from contract.drift import check_baseline, compare, feedback_accuracy
from contract.drift_sources import (
    Window,
    answered_in,
    capture_files,
    collect_traffic,
    feedback_files,
    feedback_in,
    parse_s3_url,
    s3_objects,
)

from .metrics import metric_data, publish
from .settings import Settings, load_settings
from .tokenizer import ModelReading, read_model

_models: dict[str, ModelReading] = {}


def model_reading(s3: Any, url: str) -> ModelReading:
    """The artifact's reader, loaded once per container (the URL names one artifact)."""
    if url not in _models:
        _models[url] = read_model(s3, url)
    return _models[url]


def baseline_for(s3: Any, settings: Settings, model: ModelReading) -> tuple[dict, str]:
    """A re-taken baseline when there is one for this model, else the artifact's; and which."""
    if settings.baseline_url:
        bucket, key = parse_s3_url(settings.baseline_url)
        # Listed first: a missing object reads as AccessDenied without bucket-wide ListBucket.
        if any(item["Key"] == key for item in s3_objects(s3, bucket, key.rpartition("/")[0])):
            retaken = check_baseline(
                json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read()),
                settings.baseline_url,
            )
            artifact_version = (model.baseline or {}).get("model_version")
            if retaken.get("model_version") in (None, artifact_version):
                return retaken, settings.baseline_url
    if model.baseline is None:
        raise ValueError(f"{settings.model_data_url} has no drift baseline and none was re-taken")
    return model.baseline, settings.model_data_url


def run(settings: Settings, s3: Any, cloudwatch: Any, now: datetime) -> dict[str, Any]:
    """One scheduled run: the figures published, and what was logged."""
    model = model_reading(s3, settings.model_data_url)
    baseline, baseline_source = baseline_for(s3, settings, model)
    window = Window(since=now - timedelta(hours=settings.window_hours), until=now)
    version = baseline.get("model_version")
    traffic, counts = collect_traffic(
        baseline,
        answered_in(capture_files(settings.capture_url, window, s3), window),
        model.words,
        version,
    )
    summary: dict[str, Any] = {
        "window": window.to_json(),
        "model_version": version,
        "baseline": baseline_source,
        "records": counts,
    }
    if len(traffic) < settings.thresholds.min_records:
        figures = {"reviews": len(traffic)}
        summary["status"] = "too_few_records"
    else:
        feedback = feedback_accuracy(
            feedback_in(feedback_files(settings.feedback_url, window, s3), window, version)
            if settings.feedback_url
            else []
        )
        report = compare(baseline, traffic, feedback, settings.thresholds)
        figures = report["figures"]
        summary |= {"status": "reported", "crossed": report["crossed"]}
    summary["figures"] = figures
    publish(
        cloudwatch,
        settings.namespace,
        metric_data(figures, settings.endpoint_name, now, settings.thresholds),
    )
    return summary


def handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    settings = load_settings(os.environ)
    summary = run(settings, boto3.client("s3"), boto3.client("cloudwatch"), datetime.now(UTC))
    # One JSON line, which CloudWatch Logs Insights reads field by field.
    print(json.dumps({"message": "drift"} | summary), flush=True)
    return summary
