"""The endpoint's traffic, recorded here when the endpoint cannot record it (serverless).

A real-time endpoint captures its own traffic (its DataCaptureConfig); SageMaker's serverless
endpoints cannot, so the stack gives this function ``CAPTURE_DESTINATION`` instead and the
records it writes are the same (contract/capture.py), one S3 object each under the same key
layout. On a developer's machine the destination is a directory.
"""

from __future__ import annotations

import threading
from datetime import datetime
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from contract.api import ENDPOINT_VARIANT
from contract.capture import DirectoryCaptureWriter, TrafficCapture, capture_key, record_line

from .settings import Settings

# One per distinct environment (in Lambda: one per container).
_captures: dict[Settings, TrafficCapture] = {}
_lock = threading.Lock()


class S3CaptureWriter:
    """Each record as one S3 object, so a record is written whole or not at all."""

    def __init__(self, client: Any, destination: str, endpoint: str, variant: str) -> None:
        bucket, _, prefix = destination.removeprefix("s3://").partition("/")
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.endpoint = endpoint
        self.variant = variant

    def write(self, record: dict[str, Any], time: datetime) -> str:
        key = capture_key(self.endpoint, self.variant, time)
        key = f"{self.prefix}/{key}" if self.prefix else key
        self.client.put_object(
            Bucket=self.bucket, Key=key, Body=record_line(record), ContentType="application/jsonl"
        )
        return key


def _writer(settings: Settings) -> Any:
    destination = settings.capture_destination
    if destination.startswith("s3://"):
        client = boto3.client(
            "s3",
            # The answer waits for the record: one short try, and a slow write is dropped
            # (with the endpoint's worst case, still inside the function's timeout).
            config=Config(connect_timeout=1, read_timeout=2, retries={"total_max_attempts": 1}),
        )
        return S3CaptureWriter(client, destination, settings.endpoint_name, ENDPOINT_VARIANT)
    return DirectoryCaptureWriter(
        Path(destination),
        settings.endpoint_name,
        ENDPOINT_VARIANT,
        settings.capture_retention_days,
    )


def traffic_capture(settings: Settings) -> TrafficCapture | None:
    """The container's capture for ``settings``, made on first use; None when it records
    nothing."""
    if not settings.capture_destination:
        return None
    with _lock:
        if settings not in _captures:
            _captures[settings] = TrafficCapture(_writer(settings).write, settings.capture_percent)
        return _captures[settings]
