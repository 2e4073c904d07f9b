"""`sentiment monitor`: captured traffic against the artifact's drift baseline, end to end.

The artifact is the hand-made one (model_artifacts), whose baseline the training job's own
writer took from 200 sample reviews; its traffic is answered by its own handlers and recorded
as the endpoint records it. Traffic drawn from the same distribution must pass; traffic in
words the vocabulary has never seen must be reported as drift, with a non-zero exit.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from xml.etree import ElementTree

import pytest
from botocore.response import StreamingBody
from botocore.session import Session
from botocore.stub import Stubber
from drift_traffic import (
    SHIFTED_WORDS,
    START,
    answered_records,
    build_artifact,
    shifted_reviews,
    write_capture,
    write_feedback,
)
from model_artifacts import sample_reviews

from contract.capture import capture_key, record_line
from contract.drift import BASELINE_FILE, EXIT_DRIFT
from sentiment import cli, monitor
from sentiment.model_loader import ServedModel, served_artifact


@pytest.fixture(scope="module")
def artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_artifact(tmp_path_factory.mktemp("drift-artifact"))


@pytest.fixture(scope="module")
def served(artifact: Path) -> Iterator[ServedModel]:
    with served_artifact(artifact) as loaded:
        yield loaded


@pytest.fixture(scope="module")
def baseline(artifact: Path) -> dict:
    return monitor.read_artifact(artifact).baseline


def sample_texts(count: int, seed: int) -> list[str]:
    return [text for text, _ in sample_reviews(count, seed)]


def run(artifact: Path, capture: Path | str, out: Path, *extra: str) -> int:
    """`sentiment monitor`'s exit status (a crossed threshold exits as SystemExit does)."""
    try:
        return cli.main(
            [
                *("monitor", "--model", str(artifact), "--capture", str(capture)),
                *("--out", str(out), "--feedback", str(out / "no-feedback"), *extra),
            ]
        )
    except SystemExit as stopped:
        return stopped.code


def test_the_artifact_carries_a_baseline_of_its_validation_reviews(
    baseline: dict, served: ServedModel
) -> None:
    assert baseline["source"] == "validation reviews"
    assert baseline["reviews"] == 200
    assert baseline["model_version"] == served.model.version
    assert sum(baseline["length"]["proportions"]) == pytest.approx(1)
    assert sum(baseline["score"]["proportions"]) == pytest.approx(1)
    assert baseline["oov_rate"] == 0  # the sample reviews speak the vocabulary's words only
    assert baseline["accuracy"] == 1.0
    assert {word for word, _ in baseline["top_words"]} >= {"superb", "plot"}


def test_traffic_from_the_baselines_own_distribution_passes(
    artifact: Path, served: ServedModel, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    capture = write_capture(tmp_path / "capture", served, sample_texts(300, seed=7))

    assert run(artifact, capture, tmp_path / "report") == 0

    report = json.loads((tmp_path / "report" / monitor.REPORT_FILE).read_text())
    assert report["crossed"] == []
    assert report["records"] == {"answered": 300, "other_model_versions": 0}
    assert report["figures"]["length_psi"] < 0.1 and report["figures"]["score_psi"] < 0.1
    assert report["figures"]["oov_rate"] == 0
    assert report["figures"]["feedback_accuracy"] is None
    assert "No threshold crossed" in (tmp_path / "report" / monitor.PAGE_FILE).read_text()
    assert "Drift report: 300 reviews" in capsys.readouterr().out


def test_traffic_in_words_the_vocabulary_never_saw_is_drift(
    artifact: Path, served: ServedModel, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    reviews = shifted_reviews(150, seed=3) + sample_texts(50, seed=8)
    capture = write_capture(tmp_path / "capture", served, reviews)

    assert run(artifact, capture, tmp_path / "report") == EXIT_DRIFT

    report = json.loads((tmp_path / "report" / monitor.REPORT_FILE).read_text())
    figures = report["figures"]
    assert {"oov_rate_increase", "low_confidence_increase"} <= set(report["crossed"])
    assert figures["oov_rate"] > 0.5 and figures["low_confidence_share"] > 0.5
    # The course's "new words" check: the words the vocabulary does not know, most frequent first.
    assert {word for word, _ in report["top_unknown_words"]} >= {"lowkey", "bussin", "rizz"}
    output = capsys.readouterr().out
    assert "CROSSED" in output and "Thresholds crossed: " in output
    page = (tmp_path / "report" / monitor.PAGE_FILE).read_text()
    assert "lowkey" in page and "Thresholds crossed" in page


def test_the_page_is_one_self_contained_document(
    artifact: Path, served: ServedModel, tmp_path: Path
) -> None:
    capture = write_capture(tmp_path / "capture", served, shifted_reviews(60, seed=4))
    run(artifact, capture, tmp_path / "report")

    page = (tmp_path / "report" / monitor.PAGE_FILE).read_text()
    assert "<script" not in page and "http://" not in page.replace("http://www.w3.org", "")
    assert "https://" not in page and "src=" not in page
    svgs = page.split("<svg")[1:]
    assert len(svgs) == 2
    for svg in svgs:  # each chart is well-formed SVG
        ElementTree.fromstring("<svg" + svg.split("</svg>")[0] + "</svg>")


def test_only_the_window_counts(artifact: Path, served: ServedModel, tmp_path: Path) -> None:
    capture = tmp_path / "capture"
    write_capture(capture, served, sample_texts(100, seed=7))
    later = START + timedelta(days=2)
    write_capture(capture, served, shifted_reviews(100, seed=3), start=later)
    since, until = START.date().isoformat(), (START + timedelta(days=1)).isoformat()

    status = run(artifact, capture, tmp_path / "a", "--since", since, "--until", until)
    assert status == 0
    assert run(artifact, capture, tmp_path / "b", "--since", later.isoformat()) == EXIT_DRIFT
    assert run(artifact, capture, tmp_path / "c") == EXIT_DRIFT


@pytest.mark.parametrize(
    ("reviews", "flags", "message"),
    [
        (0, [], "0 captured reviews"),
        (10, [], "at least 50 are needed"),
        (60, ["--since", "2027-01-01"], "0 captured reviews"),
    ],
)
def test_a_window_with_too_few_records_is_an_input_error(
    artifact: Path,
    served: ServedModel,
    tmp_path: Path,
    capsys: pytest.CaptureFixture,
    reviews: int,
    flags: list[str],
    message: str,
) -> None:
    capture = tmp_path / "capture"
    capture.mkdir()
    write_capture(capture, served, sample_texts(reviews, seed=7))

    assert run(artifact, capture, tmp_path / "report", *flags) == 2

    assert message in capsys.readouterr().err
    assert not (tmp_path / "report" / monitor.REPORT_FILE).exists()


def test_a_missing_capture_directory_or_artifact_is_an_input_error(
    artifact: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    assert run(artifact, tmp_path / "nowhere", tmp_path / "report") == 2
    assert "no captured traffic at" in capsys.readouterr().err
    assert run(tmp_path / "missing.tar.gz", tmp_path, tmp_path / "report") == 2
    assert "model artifact not found" in capsys.readouterr().err


def test_answers_of_another_model_are_left_out_unless_asked_for(
    artifact: Path, served: ServedModel, tmp_path: Path
) -> None:
    capture = tmp_path / "capture"
    path = capture / capture_key("imdb-sentiment", "AllTraffic", START)
    path.parent.mkdir(parents=True)
    lines = []
    for record, _ in answered_records(served, sample_texts(80, seed=7)):
        answer = json.loads(record["captureData"]["endpointOutput"]["data"])
        record["captureData"]["endpointOutput"]["data"] = json.dumps(
            answer | {"model_version": "0123456789abcdef"}
        )
        lines.append(record_line(record))
    path.write_bytes(b"".join(lines))

    assert run(artifact, capture, tmp_path / "report") == 2
    assert run(artifact, capture, tmp_path / "report", "--all-versions") == 0
    report = json.loads((tmp_path / "report" / monitor.REPORT_FILE).read_text())
    assert report["model_version"] is None and report["records"]["answered"] == 80


def test_accuracy_on_feedback_is_reported_and_judged_past_enough_answers(
    artifact: Path, served: ServedModel, tmp_path: Path
) -> None:
    capture = write_capture(tmp_path / "capture", served, sample_texts(100, seed=7))
    version = served.model.version
    few_wrong = [("negative", "positive")] * 5
    feedback = write_feedback(tmp_path / "few", few_wrong, version)
    out = tmp_path / "report"

    assert run(artifact, capture, out, "--feedback", str(feedback)) == 0
    figures = json.loads((out / monitor.REPORT_FILE).read_text())["figures"]
    assert (figures["feedback_received"], figures["feedback_accuracy"]) == (5, 0.0)

    many = [("positive", "positive")] * 14 + [("negative", "positive")] * 6
    feedback = write_feedback(tmp_path / "many", many, version)
    assert run(artifact, capture, out, "--feedback", str(feedback)) == EXIT_DRIFT
    report = json.loads((out / monitor.REPORT_FILE).read_text())
    assert report["figures"]["feedback_accuracy"] == pytest.approx(0.7)
    assert report["crossed"] == ["feedback_accuracy"]
    flags = ["--feedback", str(feedback), "--feedback-accuracy", "0.6"]
    assert run(artifact, capture, out, *flags) == 0


def test_a_baseline_retaken_from_page_traffic_accepts_that_traffic(
    artifact: Path, served: ServedModel, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """Page traffic is not IMDB's: re-baselined on a quiet week, the same kind passes."""
    capture = tmp_path / "capture"
    write_capture(capture, served, shifted_reviews(200, seed=3))
    later = START + timedelta(days=3)
    write_capture(capture, served, shifted_reviews(200, seed=5), start=later)
    week = ["--until", (START + timedelta(days=1)).isoformat()]

    assert run(artifact, capture, tmp_path / "b", "--rebaseline", *week) == 0
    retaken = tmp_path / "b" / BASELINE_FILE
    baseline = json.loads(retaken.read_text())
    assert baseline["source"] == "captured traffic" and baseline["reviews"] == 200
    assert baseline["period"]["until"] == "2026-12-02T10:00:00Z"
    assert baseline["model_version"] == served.model.version
    assert str(retaken) in capsys.readouterr().out

    since = ["--since", later.isoformat()]
    assert run(artifact, capture, tmp_path / "r", *since) == EXIT_DRIFT
    assert run(artifact, capture, tmp_path / "r", *since, "--baseline", str(retaken)) == 0


def test_a_baseline_file_of_another_kind_is_refused(
    artifact: Path, served: ServedModel, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    capture = write_capture(tmp_path / "capture", served, sample_texts(60, seed=7))
    wrong = tmp_path / "wrong.json"
    wrong.write_text('{"format": 99}')

    assert run(artifact, capture, tmp_path / "r", "--baseline", str(wrong)) == 2
    assert "is not a drift baseline" in capsys.readouterr().err
    other_model = tmp_path / "other.json"
    baseline = monitor.read_artifact(artifact).baseline
    other_model.write_text(json.dumps(baseline | {"model_version": "0123456789abcdef"}))
    assert run(artifact, capture, tmp_path / "r", "--baseline", str(other_model)) == 2
    assert "re-take it (--rebaseline)" in capsys.readouterr().err


def s3_object(body: bytes) -> dict:
    return {"Body": StreamingBody(io.BytesIO(body), len(body))}


def test_capture_and_feedback_are_read_from_s3_prefixes(
    served: ServedModel, baseline: dict
) -> None:
    """An s3:// source is listed by prefix, and files of hours outside the window unread."""
    from contract.drift_sources import Window, answered_in, capture_files, feedback_files

    client = Session().create_client("s3", region_name="us-east-1")
    records = answered_records(served, sample_texts(3, seed=7))
    inside = "capture/imdb-sentiment/AllTraffic/2026/12/01/10/00-00-000-a.jsonl"
    outside = "capture/imdb-sentiment/AllTraffic/2026/11/01/10/00-00-000-b.jsonl"
    window = Window(since=START, until=START + timedelta(days=1))
    with Stubber(client) as stub:
        stub.add_response(
            "list_objects_v2",
            {"Contents": [{"Key": inside}, {"Key": outside}], "IsTruncated": False},
            {"Bucket": "artifacts", "Prefix": "capture/"},
        )
        body = b"".join(record_line(record) for record, _ in records)
        stub.add_response("get_object", s3_object(body), {"Bucket": "artifacts", "Key": inside})
        answered = list(
            answered_in(capture_files("s3://artifacts/capture", window, client), window)
        )
        stub.assert_no_pending_responses()

        modified = START + timedelta(hours=1)
        stub.add_response(
            "list_objects_v2",
            {
                "Contents": [
                    {"Key": "feedback/a.json", "LastModified": modified},
                    {"Key": "feedback/old.json", "LastModified": START - timedelta(days=9)},
                ],
                "IsTruncated": False,
            },
            {"Bucket": "artifacts", "Prefix": "feedback/"},
        )
        stub.add_response(
            "get_object", s3_object(b"{}"), {"Bucket": "artifacts", "Key": "feedback/a.json"}
        )
        assert list(feedback_files("s3://artifacts/feedback/", window, client)) == [b"{}"]
        stub.assert_no_pending_responses()

    assert [item.review for item in answered] == sample_texts(3, seed=7)
    assert all(item.model_version == baseline["model_version"] for item in answered)


def test_shifted_words_are_unknown_to_the_artifact(artifact: Path) -> None:
    words = monitor.read_artifact(artifact).words
    assert words(" ".join(SHIFTED_WORDS))[0] == []
    assert words("A superb plot.") == (["superb", "plot"], [])


def test_a_bucket_that_cannot_be_read_is_an_input_error(
    artifact: Path, tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = Session().create_client("s3", region_name="us-east-1")
    monkeypatch.setattr(monitor, "s3_client", lambda *sources: client)
    with Stubber(client) as stub:
        stub.add_client_error("list_objects_v2", "AccessDenied", "Access Denied", 403)
        status = run(artifact, "s3://artifacts/capture", tmp_path / "report")

    assert status == 2
    assert "reading S3: An error occurred (AccessDenied)" in capsys.readouterr().err
