"""The drift function's environment, read and checked once per run.

Environment:
    MODEL_DATA_URL      the deployed model.tar.gz, ``s3://bucket/key`` (required)
    CAPTURE_URL         where captured traffic lies, ``s3://bucket/capture`` (required)
    FEEDBACK_URL        where feedback records lie, ``s3://bucket/feedback`` (unset: none)
    BASELINE_URL        a baseline re-taken from page traffic (`sentiment monitor --rebaseline`),
                        used instead of the artifact's when it exists and names the same model
    ENDPOINT_NAME       the metrics' EndpointName dimension (required)
    WINDOW_HOURS        how far back each run looks (default 168, a week)
    METRIC_NAMESPACE    where the figures are published (default contract.drift's)
    THRESHOLDS          JSON object of contract.drift.Thresholds fields to override
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field

from contract.drift import METRIC_NAMESPACE, Thresholds

DEFAULT_WINDOW_HOURS = 168


class ConfigurationError(RuntimeError):
    """The function's environment is wrong: a deployment fault, never the traffic's."""


@dataclass(frozen=True)
class Settings:
    model_data_url: str
    capture_url: str
    endpoint_name: str
    feedback_url: str = ""
    baseline_url: str = ""
    window_hours: int = DEFAULT_WINDOW_HOURS
    namespace: str = METRIC_NAMESPACE
    thresholds: Thresholds = field(default_factory=Thresholds)


def _s3_url(environ: Mapping[str, str], name: str, required: bool) -> str:
    value = environ.get(name, "").strip()
    if (required or value) and not value.startswith("s3://"):
        raise ConfigurationError(f"{name} must be an s3:// URL, not {value!r}")
    return value


def load_settings(environ: Mapping[str, str]) -> Settings:
    endpoint = environ.get("ENDPOINT_NAME", "").strip()
    if not endpoint:
        raise ConfigurationError("ENDPOINT_NAME is not set")
    try:
        hours = int(environ.get("WINDOW_HOURS", "").strip() or DEFAULT_WINDOW_HOURS)
        thresholds = Thresholds.from_json(json.loads(environ.get("THRESHOLDS", "").strip() or "{}"))
    except (TypeError, ValueError, AttributeError) as error:
        raise ConfigurationError(f"WINDOW_HOURS or THRESHOLDS: {error}") from None
    if hours < 1:
        raise ConfigurationError(f"WINDOW_HOURS must be positive, not {hours}")
    return Settings(
        model_data_url=_s3_url(environ, "MODEL_DATA_URL", required=True),
        capture_url=_s3_url(environ, "CAPTURE_URL", required=True),
        endpoint_name=endpoint,
        feedback_url=_s3_url(environ, "FEEDBACK_URL", required=False),
        baseline_url=_s3_url(environ, "BASELINE_URL", required=False),
        window_hours=hours,
        namespace=environ.get("METRIC_NAMESPACE", "").strip() or METRIC_NAMESPACE,
        thresholds=thresholds,
    )
