"""`sentiment compare`: pairing production's and the shadow's captured answers, the figures,
latency, S3 (botocore's Stubber), and the drift report leaving the shadow's records out.

(A shadow model behind the real local stack: tests/test_local_stack_shadow.py.)
"""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from botocore.response import StreamingBody
from botocore.session import Session
from botocore.stub import Stubber

from contract.capture import capture_key, capture_record, record_line
from contract.drift_sources import Window, capture_files, capture_location, capture_sources
from sentiment import cli, compare
from sentiment.compare import CompareOptions

START = datetime(2026, 12, 2, 16, 0, tzinfo=UTC)
ENDPOINT = "imdb-sentiment"


def record(
    reviews: list[str],
    scores: list[float],
    *,
    inference_id: str | None,
    event_id: str,
    time: datetime = START,
    low: list[bool] | None = None,
    version: str = "v1",
) -> dict[str, Any]:
    """One captured exchange: a review (or a batch of them) and the model's answer."""
    verdicts = [
        {
            "sentiment": "positive" if score >= 0.5 else "negative",
            "score": score,
            "low_confidence": (low or [False] * len(scores))[index],
            "model_version": version,
        }
        for index, score in enumerate(scores)
    ]
    request = {"review": reviews[0]} if len(reviews) == 1 else {"reviews": reviews}
    answer = verdicts[0] if len(reviews) == 1 else {"predictions": verdicts}
    return capture_record(
        request=json.dumps(request).encode(),
        request_type="application/json",
        response=json.dumps(answer).encode(),
        response_type="application/json",
        inference_id=inference_id,
        time=time,
        event_id=event_id,
    )


def write(root: Path, variant: str, records: list[dict[str, Any]], time: datetime = START) -> str:
    key = capture_key(ENDPOINT, variant, time)
    path = root / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(record_line(one) for one in records))
    return key


@pytest.fixture
def capture(tmp_path: Path) -> Path:
    """Four requests: three answered by both variants (one a batch of two), one by production
    alone; the shadow lowers every score by 0.1 and flips the third review's verdict."""
    root = tmp_path / "capture"
    write(
        root,
        "AllTraffic",
        [
            record(["great"], [0.9], inference_id="a", event_id="e1"),
            record(
                ["dull", "fine"], [0.2, 0.8], inference_id="b", event_id="e2", low=[True, False]
            ),
            record(["meh"], [0.55], inference_id="c", event_id="e3", low=[True]),
            record(["unseen"], [0.7], inference_id="d", event_id="e4"),
        ],
    )
    write(
        root,
        "Shadow",
        [
            record(["great"], [0.8], inference_id="a", event_id="e1", version="v2"),
            record(["dull", "fine"], [0.1, 0.7], inference_id="b", event_id="e2", version="v2"),
            record(["meh"], [0.45], inference_id="c", event_id="e3", version="v2"),
        ],
    )
    return root


def test_answers_to_the_same_request_are_paired_and_compared(capture: Path) -> None:
    report = compare.compare(CompareOptions(capture=str(capture)))

    assert report["reviews"] == 4
    assert report["records"] == {
        "production": 4,
        "shadow": 3,
        "paired_requests": 3,
        "production_only": 1,
        "shadow_only": 0,
        "mismatched": 0,
        "unreadable": 0,
        "repeated": 0,
    }
    assert report["agreement"] == 0.75
    assert report["disagreements"] == {"positive->negative": 1}
    shift = report["score_shift"]
    assert shift["mean_abs"] == pytest.approx(0.1)
    assert shift["median_abs"] == pytest.approx(0.1)
    assert shift["p95_abs"] == pytest.approx(0.1)
    assert shift["mean_signed"] == pytest.approx(-0.1)
    assert report["low_confidence"] == {"production": 0.5, "shadow": 0.0}
    assert report["positive_share"] == {"production": 0.75, "shadow": 0.5}
    assert report["models"] == {"production": ["v1"], "shadow": ["v2"]}
    assert report["endpoint"] == ENDPOINT


def test_the_score_shift_figures_over_uneven_differences() -> None:
    pairs = [
        compare.Pair(
            production=answered(score), shadow=answered(score + shift), event_id=str(index)
        )
        for index, (score, shift) in enumerate(
            [(0.5, 0.0), (0.6, 0.1), (0.2, -0.2), (0.3, 0.3), (0.1, 0.4)]
        )
    ]

    figures = compare.figures(pairs)["score_shift"]

    assert figures["mean_abs"] == pytest.approx(0.2)
    assert figures["median_abs"] == pytest.approx(0.2)
    # Linear between the closest ranks: 0.3 + 0.8 * (0.4 - 0.3).
    assert figures["p95_abs"] == pytest.approx(0.38)
    assert figures["max_abs"] == pytest.approx(0.4)
    assert figures["mean_signed"] == pytest.approx(0.12)


def answered(score: float) -> Any:
    from contract.drift_sources import Answered

    return Answered(review="r", score=score, low_confidence=False, model_version=None, time=START)


def test_without_an_inference_id_the_event_id_pairs_them(tmp_path: Path) -> None:
    root = tmp_path / "capture"
    write(root, "AllTraffic", [record(["good"], [0.9], inference_id=None, event_id="only")])
    write(root, "Shadow", [record(["good"], [0.6], inference_id=None, event_id="only")])

    report = compare.compare(CompareOptions(capture=str(root)))

    assert (report["reviews"], report["agreement"]) == (1, 1.0)
    assert report["score_shift"]["mean_signed"] == pytest.approx(-0.3)


def test_an_id_on_two_different_requests_a_retry_and_an_error_are_left_out(
    tmp_path: Path,
) -> None:
    root = tmp_path / "capture"
    error = record(["x"], [0.5], inference_id="err", event_id="err")
    error["captureData"]["endpointOutput"]["data"] = '{"error": "model failed"}'
    write(
        root,
        "AllTraffic",
        [
            record(["good"], [0.9], inference_id="a", event_id="1"),
            record(["good"], [0.1], inference_id="a", event_id="2"),  # retried: first stands
            record(["this"], [0.9], inference_id="b", event_id="3"),
            error,
        ],
    )
    write(
        root,
        "Shadow",
        [
            record(["good"], [0.8], inference_id="a", event_id="1"),
            record(["that"], [0.9], inference_id="b", event_id="3"),
        ],
    )

    report = compare.compare(CompareOptions(capture=str(root)))

    assert report["reviews"] == 1
    assert report["score_shift"]["mean_signed"] == pytest.approx(-0.1)
    records = report["records"]
    assert (records["mismatched"], records["repeated"], records["unreadable"]) == (1, 1, 1)


def test_only_the_window_is_compared(capture: Path) -> None:
    later = START + timedelta(hours=2)
    write(
        capture,
        "AllTraffic",
        [record(["late"], [0.9], inference_id="z", event_id="z", time=later)],
        later,
    )
    write(
        capture,
        "Shadow",
        [record(["late"], [0.1], inference_id="z", event_id="z", time=later)],
        later,
    )

    report = compare.compare(CompareOptions(capture=str(capture), window=Window(since=later)))

    assert report["reviews"] == 1
    assert report["agreement"] == 0.0


def test_no_pairs_is_an_error_that_says_what_was_found(tmp_path: Path, capsys: Any) -> None:
    root = tmp_path / "capture"
    write(root, "AllTraffic", [record(["good"], [0.9], inference_id="a", event_id="1")])

    status = cli.main(["compare", "--capture", str(root), "--out", str(tmp_path / "out")])

    assert status == 2
    error = capsys.readouterr().err
    assert "sentiment compare: error: no request in" in error
    assert "(AllTraffic: 1 records) and the shadow variant (Shadow: 0 records)" in error
    assert "is shadow testing on" in error
    assert not (tmp_path / "out").exists()


def test_latency_comes_from_the_emulators_log_when_given(capture: Path, tmp_path: Path) -> None:
    log = tmp_path / "up.log"
    log.write_text(
        "2026-12-02 16:00:01 sentiment.endpoint INFO "
        + compare.shadow_log_line("e1", "a", 2.0, 4.0)
        + " agree=1/1 max_shift=0.1000\n"
        + "noise\n"
        + compare.shadow_log_line("e2", "b", 4.0, 8.0)
        + "\n"
        + compare.shadow_log_line("elsewhere", None, 100.0, 100.0)
        + "\n"
    )

    latency = compare.compare(CompareOptions(capture=str(capture), latency_log=log))["latency"]

    assert latency["requests"] == 2
    assert latency["AllTraffic"] == {"mean": 3.0, "p50": 3.0, "p95": pytest.approx(3.9)}
    assert latency["Shadow"]["mean"] == 6.0


def test_without_a_log_it_says_where_latency_is_and_prints_the_command(
    capture: Path, tmp_path: Path, capsys: Any
) -> None:
    status = cli.main(["compare", "--capture", str(capture), "--out", str(tmp_path)])

    printed = capsys.readouterr().out
    report = json.loads((tmp_path / compare.REPORT_FILE).read_text())
    assert status == 0
    assert report["latency"]["source"] is None
    assert "CloudWatch's ModelLatency per variant" in report["latency"]["note"]
    for variant in ("AllTraffic", "Shadow"):
        command = (
            "aws cloudwatch get-metric-statistics --namespace AWS/SageMaker --metric-name "
            f"ModelLatency --dimensions Name=EndpointName,Value={ENDPOINT} "
            f"Name=VariantName,Value={variant} --start-time 2026-12-02T16:00:00Z "
            "--end-time 2026-12-02T17:00:00Z --period 3600"
        )
        assert command in printed
    assert "verdicts agree      0.750 (differ: 1 positive->negative)" in printed
    assert "mean signed -0.1000" in printed
    assert "unpaired            1 production only, 0 shadow only" in printed


def s3_object(body: bytes) -> dict:
    return {"Body": StreamingBody(io.BytesIO(body), len(body))}


def test_captured_traffic_is_read_from_s3_by_prefix(capture: Path) -> None:
    """Both variants' files under the prefix are listed and read; other hours are not."""
    client = Session().create_client("s3", region_name="us-east-1")
    keys = sorted(path.relative_to(capture).as_posix() for path in capture.rglob("*.jsonl"))
    outside = capture_key(ENDPOINT, "Shadow", START - timedelta(days=3))
    with Stubber(client) as stub:
        stub.add_response(
            "list_objects_v2",
            {
                "Contents": [{"Key": f"capture/{key}"} for key in [*keys, outside]],
                "IsTruncated": False,
            },
            {"Bucket": "artifacts", "Prefix": "capture/"},
        )
        for key in keys:
            stub.add_response(
                "get_object",
                s3_object((capture / key).read_bytes()),
                {"Bucket": "artifacts", "Key": f"capture/{key}"},
            )
        report = compare.compare(
            CompareOptions(
                capture="s3://artifacts/capture",
                window=Window(since=START - timedelta(days=1)),
            ),
            s3=client,
        )
        stub.assert_no_pending_responses()

    assert (report["reviews"], report["agreement"]) == (4, 0.75)
    assert report["capture"] == "s3://artifacts/capture"


def test_an_s3_error_is_bad_input_in_one_line(
    tmp_path: Path, capsys: Any, monkeypatch: Any
) -> None:
    client = Session().create_client("s3", region_name="us-east-1")
    monkeypatch.setattr(compare, "s3_client", lambda *sources: client)
    with Stubber(client) as stub:
        stub.add_client_error("list_objects_v2", "NoSuchBucket", "The bucket does not exist", 404)
        status = cli.main(["compare", "--capture", "s3://gone/capture", "--out", str(tmp_path)])

    assert status == 2
    assert "reading S3: An error occurred (NoSuchBucket)" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("key", "location"),
    [
        ("imdb/AllTraffic/2026/12/02/16/f.jsonl", ("imdb", "AllTraffic")),
        ("prefix/imdb/Shadow/2026/12/02/16/f.jsonl", ("imdb", "Shadow")),
        ("Shadow/2026/12/02/16/f.jsonl", (None, "Shadow")),
        ("2026/12/02/16/f.jsonl", (None, None)),
        ("imdb/Shadow/f.jsonl", (None, None)),
    ],
)
def test_a_capture_keys_endpoint_and_variant(key: str, location: tuple) -> None:
    assert capture_location(key) == location


def test_the_drift_report_reads_production_answers_only(capture: Path) -> None:
    everything = [file.variant for file in capture_sources(str(capture), Window())]
    read = list(capture_files(str(capture), Window()))

    assert sorted(everything) == ["AllTraffic", "Shadow"]
    # Only production's file: it alone holds the request the shadow never answered.
    assert len(read) == 1
    assert b'"inferenceId":"d"' in read[0]
