"""Captured traffic: what the model was asked and what it answered, one JSON line a request.

The records are SageMaker Data Capture's own format, so that one reader serves every source:
a real-time endpoint writes them itself (its DataCaptureConfig); a serverless endpoint cannot
capture, so the prediction Lambda writes the same records; locally the endpoint emulator (or,
for a serverless endpoint, the Lambda's handler) writes them under ``artifacts/capture/``. A
record, on one line::

    {"captureData": {
       "endpointInput":  {"observedContentType": "application/json", "mode": "INPUT",
                          "data": "{\"review\": \"...\"}", "encoding": "JSON"},
       "endpointOutput": {"observedContentType": "application/json", "mode": "OUTPUT",
                          "data": "{\"sentiment\": ...}", "encoding": "JSON"}},
     "eventMetadata": {"eventId": "<uuid>", "inferenceId": "<prediction id>",
                       "inferenceTime": "2026-12-02T16:44:04.123Z"},
     "eventVersion": "0"}

``data`` is the body as text when its content type is JSON, else base64 (``"BASE64"``).
``inferenceId`` is the prediction id the API gave the caller (absent when the endpoint was
invoked without one). Files are JSON Lines, under
``<destination>/<endpoint>/<variant>/<yyyy>/<mm>/<dd>/<hh>/<mm>-<ss>-<ms>-<id>.jsonl``
(UTC), as SageMaker lays them out; a file may hold one record or many. With shadow testing
on, the shadow variant's answers to the same requests lie beside the production variant's,
under its own variant name (contract.api.SHADOW_VARIANT).
"""

from __future__ import annotations

import base64
import json
import os
import random
import shutil
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

# Under the model-artifact bucket in AWS, under artifacts/ locally.
CAPTURE_PREFIX = "capture"
# This demo's traffic is small: record all of it unless told otherwise (cdk.json, or the flags).
DEFAULT_CAPTURE_PERCENT = 100
DEFAULT_CAPTURE_RETENTION_DAYS = 30
EVENT_VERSION = "0"
JSON_CONTENT_TYPES = ("application/json",)


def _media_type(content_type: str) -> str:
    return content_type.split(";")[0].strip().lower()


def capture_data(body: bytes, content_type: str, mode: str) -> dict[str, str]:
    """One side of the exchange: ``mode`` is ``"INPUT"`` or ``"OUTPUT"``."""
    if _media_type(content_type) in JSON_CONTENT_TYPES:
        try:
            data, encoding = body.decode("utf-8"), "JSON"
        except UnicodeDecodeError:
            data, encoding = base64.b64encode(body).decode("ascii"), "BASE64"
    else:
        data, encoding = base64.b64encode(body).decode("ascii"), "BASE64"
    return {"observedContentType": content_type, "mode": mode, "data": data, "encoding": encoding}


def capture_record(
    *,
    request: bytes,
    request_type: str,
    response: bytes,
    response_type: str,
    inference_id: str | None,
    time: datetime,
    event_id: str | None = None,
) -> dict[str, Any]:
    """The record of one invocation, as SageMaker Data Capture writes it."""
    metadata = {"eventId": event_id or str(uuid.uuid4())}
    if inference_id:
        metadata["inferenceId"] = inference_id
    metadata["inferenceTime"] = _timestamp(time)
    return {
        "captureData": {
            "endpointInput": capture_data(request, request_type, "INPUT"),
            "endpointOutput": capture_data(response, response_type, "OUTPUT"),
        },
        "eventMetadata": metadata,
        "eventVersion": EVENT_VERSION,
    }


def _timestamp(time: datetime) -> str:
    time = time.astimezone(UTC)
    return time.strftime("%Y-%m-%dT%H:%M:%S.") + f"{time.microsecond // 1000:03d}Z"


def record_line(record: dict[str, Any]) -> bytes:
    """The record as one line of JSON Lines, newline included."""
    return (json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")


def capture_key(endpoint: str, variant: str, time: datetime, unique: str | None = None) -> str:
    """Where a file of records starting at ``time`` goes, below the capture destination."""
    time = time.astimezone(UTC)
    name = f"{time:%M-%S}-{time.microsecond // 1000:03d}-{unique or uuid.uuid4().hex}.jsonl"
    return f"{endpoint}/{variant}/{time:%Y/%m/%d/%H}/{name}"


def sampled(percent: float, draw: float) -> bool:
    """Whether a request with a uniform ``draw`` in [0, 1) is captured at ``percent``."""
    return draw * 100 < percent


def decoded(data: dict[str, str]) -> bytes:
    """A captured body's bytes, whatever its encoding."""
    if data.get("encoding") == "BASE64":
        return base64.b64decode(data["data"])
    return data["data"].encode("utf-8")


def read_records(lines: Iterable[bytes | str]) -> Iterator[dict[str, Any]]:
    """The records in JSON Lines, skipping blank lines and a last line cut short."""
    for line in lines:
        if isinstance(line, bytes):
            line = line.decode("utf-8")
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            if line.endswith("\n"):
                raise
            return  # a write cut short: the record was never complete
        yield record


class DirectoryCaptureWriter:
    """Records appended to files below a local directory, one file per writer and hour.

    Each record is one ``os.write`` to a file only this writer appends to; a write that fails
    or falls short is cut back off the file, so an interrupted write leaves no partial record.
    With ``retention_days``, each new hour's file first deletes the hours older than that, as
    the bucket's lifecycle rule does in AWS. Thread-safe: the local servers capture from
    several threads.
    """

    def __init__(
        self, root: Path, endpoint: str, variant: str, retention_days: int | None = None
    ) -> None:
        self.root = root
        self.endpoint = endpoint
        self.variant = variant
        self.retention_days = retention_days
        self._lock = threading.Lock()
        self._hour: str | None = None
        self._path: Path | None = None

    def write(self, record: dict[str, Any], time: datetime) -> Path:
        line = record_line(record)
        with self._lock:
            path = self._file_for(time)
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            try:
                end = os.fstat(descriptor).st_size
                try:
                    written = os.write(descriptor, line)
                except BaseException:
                    os.ftruncate(descriptor, end)
                    raise
                if written != len(line):
                    os.ftruncate(descriptor, end)
                    raise OSError(f"short write to {path}: {written} of {len(line)} bytes")
            finally:
                os.close(descriptor)
        return path

    def _file_for(self, time: datetime) -> Path:
        hour = f"{time.astimezone(UTC):%Y%m%d%H}"
        if hour != self._hour or self._path is None:
            self._hour = hour
            if self.retention_days is not None:
                self._delete_before(time - timedelta(days=self.retention_days))
            self._path = self.root / capture_key(self.endpoint, self.variant, time)
            self._path.parent.mkdir(parents=True, exist_ok=True)
        return self._path

    def _delete_before(self, cutoff: datetime) -> None:
        """Delete the hour folders that ended before ``cutoff``."""
        limit = f"{cutoff.astimezone(UTC):%Y%m%d%H}"
        for hour in (self.root / self.endpoint / self.variant).glob("*/*/*/*"):
            if hour.is_dir() and "".join(hour.parts[-4:]) < limit:
                shutil.rmtree(hour, ignore_errors=True)


class TrafficCapture:
    """Records ``percent`` of the exchanges it is shown with ``write(record, time)``."""

    def __init__(
        self,
        write: Callable[[dict[str, Any], datetime], object],
        percent: float,
        draw: Callable[[], float] = random.random,
    ) -> None:
        self._write = write
        self.percent = percent
        self._draw = draw

    def __call__(
        self,
        *,
        request: bytes,
        request_type: str,
        response: bytes,
        response_type: str,
        inference_id: str | None,
        event_id: str | None = None,
    ) -> bool:
        """Capture one exchange if it is drawn; True if it was written. ``event_id`` names
        the record (a fresh one when None): a shadow's record of the same request shares it."""
        if not sampled(self.percent, self._draw()):
            return False
        now = datetime.now(UTC)
        self._write(
            capture_record(
                request=request,
                request_type=request_type,
                response=response,
                response_type=response_type,
                inference_id=inference_id,
                time=now,
                event_id=event_id,
            ),
            now,
        )
        return True
