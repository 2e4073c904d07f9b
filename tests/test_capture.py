"""The captured-traffic record format (contract/capture.py): SageMaker Data Capture's own."""

from __future__ import annotations

import base64
import json
import os
import threading
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from contract import capture

TIME = datetime(2026, 12, 2, 16, 44, 4, 123456, tzinfo=UTC)
REQUEST = json.dumps({"review": "Wonderful — très bien."}).encode()
RESPONSE = b'{"sentiment": "positive", "score": 0.97, "low_confidence": false}'


def record(**overrides: object) -> dict:
    fields = {
        "request": REQUEST,
        "request_type": "application/json",
        "response": RESPONSE,
        "response_type": "application/json",
        "inference_id": "prediction-1",
        "time": TIME,
        "event_id": "event-1",
    } | overrides
    return capture.capture_record(**fields)


def test_a_json_exchange_is_recorded_as_sagemaker_data_capture_records_it() -> None:
    assert record() == {
        "captureData": {
            "endpointInput": {
                "observedContentType": "application/json",
                "mode": "INPUT",
                "data": REQUEST.decode(),
                "encoding": "JSON",
            },
            "endpointOutput": {
                "observedContentType": "application/json",
                "mode": "OUTPUT",
                "data": RESPONSE.decode(),
                "encoding": "JSON",
            },
        },
        "eventMetadata": {
            "eventId": "event-1",
            "inferenceId": "prediction-1",
            "inferenceTime": "2026-12-02T16:44:04.123Z",
        },
        "eventVersion": "0",
    }


@pytest.mark.parametrize(
    ("body", "content_type"),
    [(b"A fine film.", "text/plain"), (b'{"review": "caf\xe9"}', "application/json")],
    ids=["not JSON", "JSON that is not UTF-8"],
)
def test_any_other_body_is_kept_byte_for_byte_in_base64(body: bytes, content_type: str) -> None:
    data = record(request=body, request_type=content_type)["captureData"]["endpointInput"]

    assert data["encoding"] == "BASE64"
    assert base64.b64decode(data["data"]) == body
    assert capture.decoded(data) == body


def test_without_an_inference_id_the_metadata_has_none_and_times_are_utc() -> None:
    local = TIME.astimezone(timezone(timedelta(hours=5)))
    metadata = record(inference_id=None, time=local)["eventMetadata"]

    assert "inferenceId" not in metadata
    assert metadata["inferenceTime"] == "2026-12-02T16:44:04.123Z"


def test_files_are_laid_out_by_endpoint_variant_and_utc_hour() -> None:
    key = capture.capture_key("imdb-sentiment", "AllTraffic", TIME, "abc")

    assert key == "imdb-sentiment/AllTraffic/2026/12/02/16/44-04-123-abc.jsonl"


def test_sampling_keeps_the_configured_share() -> None:
    draws = [i / 1000 for i in range(1000)]

    assert sum(capture.sampled(25, draw) for draw in draws) == 250
    assert not any(capture.sampled(0, draw) for draw in draws)
    assert all(capture.sampled(100, draw) for draw in draws)


def test_a_record_line_reads_back_and_a_line_cut_short_is_skipped() -> None:
    whole = capture.record_line(record())
    lines = [whole, b"\n", whole, whole[: len(whole) // 2]]

    assert list(capture.read_records(lines)) == [record(), record()]
    with pytest.raises(ValueError):
        list(capture.read_records([whole[: len(whole) // 2] + b"\n", whole]))


def test_the_directory_writer_appends_from_many_threads_one_file_an_hour(tmp_path: Path) -> None:
    writer = capture.DirectoryCaptureWriter(tmp_path, "endpoint", "AllTraffic")

    def write(n: int) -> None:
        for i in range(50):
            writer.write(record(event_id=f"{n}-{i}"), TIME)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    later = writer.write(record(event_id="next hour"), TIME + timedelta(hours=1))

    files = sorted(tmp_path.rglob("*.jsonl"))
    assert [f.relative_to(tmp_path).parts[:6] for f in files] == [
        ("endpoint", "AllTraffic", "2026", "12", "02", "16"),
        ("endpoint", "AllTraffic", "2026", "12", "02", "17"),
    ]
    assert later == files[1]
    events = [r["eventMetadata"]["eventId"] for r in capture.read_records(files[0].open("rb"))]
    assert sorted(events) == sorted(f"{n}-{i}" for n in range(8) for i in range(50))


def test_an_interrupted_write_leaves_no_partial_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = capture.DirectoryCaptureWriter(tmp_path, "endpoint", "AllTraffic")
    path = writer.write(record(event_id="kept"), TIME)
    real_write = os.write

    def half(descriptor: int, data: bytes) -> int:
        return real_write(descriptor, data[: len(data) // 2])

    monkeypatch.setattr(capture.os, "write", half)
    with pytest.raises(OSError, match="short write"):
        writer.write(record(event_id="lost"), TIME)
    monkeypatch.undo()
    writer.write(record(event_id="after"), TIME)

    events = [r["eventMetadata"]["eventId"] for r in capture.read_records(path.open("rb"))]
    assert events == ["kept", "after"]


def test_a_new_hour_deletes_the_hours_past_the_retention(tmp_path: Path) -> None:
    old = capture.DirectoryCaptureWriter(tmp_path, "endpoint", "AllTraffic")
    stale = old.write(record(event_id="stale"), TIME - timedelta(days=8))
    recent = old.write(record(event_id="recent"), TIME - timedelta(days=6))

    kept = capture.DirectoryCaptureWriter(tmp_path, "endpoint", "AllTraffic", retention_days=7)
    new = kept.write(record(event_id="new"), TIME)

    assert not stale.exists() and not stale.parent.exists()
    assert recent.exists() and new.exists()
