"""The drift figures as CloudWatch metrics, one PutMetricData call per run.

Each figure the stack alarms on is published under contract.drift.METRIC_NAMES with the
endpoint's name as the one dimension; accuracy on feedback only once enough answers are in
(the threshold's own rule), so an alarm never fires on three answers.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from contract.drift import METRIC_NAMES, Thresholds

_COUNTS = {"reviews", "feedback_received", "thresholds_crossed"}


def metric_data(
    figures: dict[str, Any], endpoint_name: str, time: datetime, thresholds: Thresholds
) -> list[dict[str, Any]]:
    """PutMetricData's MetricData for a report's figures (a figure that is None is left out)."""
    values = dict(figures)
    if values.get("feedback_received", 0) < thresholds.min_feedback:
        values["feedback_accuracy"] = None
    return [
        {
            "MetricName": METRIC_NAMES[name],
            "Dimensions": [{"Name": "EndpointName", "Value": endpoint_name}],
            "Timestamp": time,
            "Value": float(values[name]),
            "Unit": "Count" if name in _COUNTS else "None",
        }
        for name in METRIC_NAMES
        if values.get(name) is not None
    ]


def publish(cloudwatch: Any, namespace: str, data: list[dict[str, Any]]) -> None:
    cloudwatch.put_metric_data(Namespace=namespace, MetricData=data)
