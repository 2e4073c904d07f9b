"""The drift report's pure parts (contract/drift.py, contract/drift_sources.py) and the
Lambda's metric data: histograms, PSI, profiles, thresholds, reading capture records."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta

import pytest

from contract import drift
from contract.capture import capture_record
from contract.drift_sources import (
    Window,
    answered_reviews,
    capture_hour,
    feedback_in,
    parse_s3_url,
    parse_time,
)
from lambda_src.drift.metrics import metric_data

TIME = datetime(2026, 12, 2, 16, 44, 4, tzinfo=UTC)


def test_histogram_bins_are_closed_on_the_left_and_the_ends_catch_the_rest() -> None:
    edges = [0, 1, 2, 4]
    assert drift.histogram([0, 0.5, 1, 2, 3, 4, 100, -1], edges) == [3, 1, 4]
    assert drift.histogram([1.0], drift.SCORE_EDGES)[-1] == 1  # a certain score: the last bin
    assert drift.proportions([1, 3, 0]) == [0.25, 0.75, 0]
    assert drift.proportions([0, 0]) == [0.0, 0.0]


def test_psi_is_zero_for_the_same_distribution_and_grows_with_the_shift() -> None:
    assert drift.psi([0.2, 0.3, 0.5], [0.2, 0.3, 0.5]) == 0
    small = drift.psi([0.5, 0.5], [0.55, 0.45])
    expected = 0.05 * math.log(0.55 / 0.5) - 0.05 * math.log(0.45 / 0.5)
    assert small == pytest.approx(expected)
    assert drift.psi([0.5, 0.5], [0.9, 0.1]) > 0.25 > small
    # An empty bin counts as the floor, not as infinity.
    assert drift.psi([1.0, 0.0], [0.0, 1.0]) == pytest.approx(
        2 * (1 - drift.PSI_FLOOR) * math.log(1 / drift.PSI_FLOOR)
    )
    with pytest.raises(ValueError, match="bins"):
        drift.psi([1.0], [0.5, 0.5])


def test_a_profile_counts_lengths_scores_unknown_words_and_low_confidence() -> None:
    profile = drift.Profile()
    profile.add(["good", "film"], ["rizz"], 0.9, False)
    profile.add(["good"], ["", ""], 0.4, True)  # unknown words whose text is lost
    profile.add([], [], 0.5, True)

    document = profile.to_json()
    assert (document["reviews"], document["tokens"]) == (3, 6)
    assert document["length"]["proportions"][:4] == pytest.approx([1 / 3, 0, 2 / 3, 0])
    assert document["length"]["mean"] == 2
    assert document["oov_rate"] == pytest.approx(3 / 6)
    assert document["low_confidence_share"] == pytest.approx(2 / 3)
    assert document["top_words"] == [["good", 2 / 6], ["film", 1 / 6]]
    assert document["top_unknown_words"] == [["rizz", 1]]
    assert drift.Profile().to_json()["oov_rate"] == 0


def baseline_like(profile: drift.Profile) -> dict:
    return drift.baseline_document(profile, source="test", model_version="v1", accuracy=0.9)


def test_compare_reports_each_figure_and_what_crossed_its_threshold() -> None:
    before, after = drift.Profile(), drift.Profile()
    for _ in range(50):
        before.add(["good"] * 100, [], 0.9, False)
        after.add(["good"], ["rizz"], 0.55, True)
    baseline = drift.check_baseline(baseline_like(before), "test")

    report = drift.compare(baseline, after, {"received": 0, "accuracy": None}, drift.Thresholds())

    figures = report["figures"]
    assert figures["length_psi"] > 1 and figures["score_psi"] > 1
    assert figures["oov_rate_increase"] == 0.5
    assert figures["low_confidence_increase"] == 1.0
    assert figures["baseline_accuracy"] == 0.9
    assert report["crossed"] == list(drift.THRESHOLDED)
    assert figures["thresholds_crossed"] == 4
    assert report["length"]["edges"] == list(drift.LENGTH_EDGES)
    assert report["top_unknown_words"] == [["rizz", 50]]
    same = drift.compare(baseline, before, drift.feedback_accuracy([]), drift.Thresholds())
    assert same["crossed"] == [] and same["figures"]["length_psi"] == 0


@pytest.mark.parametrize(
    ("right", "wrong", "crossed"),
    [(15, 5, True), (5, 5, False), (18, 2, False)],  # 0.75 of 20; too few to judge; 0.9
)
def test_feedback_accuracy_is_judged_only_past_enough_answers(
    right: int, wrong: int, crossed: bool
) -> None:
    records = [{"label": "positive", "predicted": "positive"}] * right
    records += [{"label": "positive", "predicted": "negative"}] * wrong
    summary = drift.feedback_accuracy(records)
    assert summary == {"received": right + wrong, "accuracy": right / (right + wrong)}
    figures = {name: 0 for name in drift.THRESHOLDED} | {
        "feedback_received": summary["received"],
        "feedback_accuracy": summary["accuracy"],
    }
    assert drift.crossed(figures, drift.Thresholds()) == (["feedback_accuracy"] if crossed else [])


def test_thresholds_read_from_json_refuse_unknown_names() -> None:
    assert drift.Thresholds.from_json({"min_records": "10", "score_psi": 1}) == drift.Thresholds(
        min_records=10, score_psi=1.0
    )
    assert drift.Thresholds.from_json(drift.Thresholds().to_json()) == drift.Thresholds()
    with pytest.raises(ValueError, match="colour"):
        drift.Thresholds.from_json({"colour": 1})


def test_a_baseline_of_another_format_is_refused() -> None:
    with pytest.raises(ValueError, match=r"x\.json is not a drift baseline"):
        drift.check_baseline({"format": 2}, "x.json")
    with pytest.raises(ValueError, match="no score histogram"):
        drift.check_baseline({"format": 1, "length": {"edges": []}}, "x.json")


def record(request: bytes, response: bytes, request_type: str = "application/json") -> dict:
    return capture_record(
        request=request,
        request_type=request_type,
        response=response,
        response_type="application/json",
        inference_id="p-1",
        time=TIME,
    )


def test_every_shape_of_request_is_read_back_with_its_answers() -> None:
    answer = {"sentiment": "positive", "score": 0.8, "low_confidence": False, "model_version": "v"}
    single = record(b'{"review": "Good."}', json.dumps(answer).encode())
    batch = record(
        b'{"reviews": ["Good.", "Bad."]}',
        json.dumps({"predictions": [answer, answer | {"score": 0.1}]}).encode(),
    )
    text = record("Très bien.".encode(), json.dumps(answer).encode(), "text/plain; charset=utf-8")

    (one,) = answered_reviews(single)
    assert (one.review, one.score, one.low_confidence, one.model_version) == (
        "Good.",
        0.8,
        False,
        "v",
    )
    assert one.time == datetime(2026, 12, 2, 16, 44, 4, tzinfo=UTC)
    assert [(item.review, item.score) for item in answered_reviews(batch)] == [
        ("Good.", 0.8),
        ("Bad.", 0.1),
    ]
    assert [item.review for item in answered_reviews(text)] == ["Très bien."]


def test_explained_exchanges_are_read_back_like_any_other() -> None:
    """Issue #16: a request may ask to explain, and the answer then carries an explanation."""
    explanation = {
        "logit": 1.386294,
        "base": 0.2,
        "method": "ngram-exact+lstm-integrated-gradients",
        "words": [{"start": 0, "end": 4, "status": "read", "contribution": 1.1863}],
    }
    answer = {"sentiment": "positive", "score": 0.8, "low_confidence": False, "model_version": "v"}
    explained = answer | {"explanation": explanation}
    single = record(b'{"review": "Good.", "explain": true}', json.dumps(explained).encode())
    batch = record(
        b'{"reviews": ["Good.", "Bad."], "explain": true}',
        json.dumps({"predictions": [explained, explained | {"score": 0.1}]}).encode(),
    )
    unasked = record(b'{"review": "Good.", "explain": false}', json.dumps(answer).encode())

    (one,) = answered_reviews(single)
    assert (one.review, one.score, one.low_confidence, one.model_version) == (
        "Good.",
        0.8,
        False,
        "v",
    )
    assert [(item.review, item.score) for item in answered_reviews(batch)] == [
        ("Good.", 0.8),
        ("Bad.", 0.1),
    ]
    assert [item.review for item in answered_reviews(unasked)] == ["Good."]


@pytest.mark.parametrize(
    ("request_body", "response"),
    [
        (b'{"review": "Good."}', b'{"message": "the review is empty"}'),  # a refusal
        (b"not json", b'{"score": 0.5}'),
        (b'{"reviews": ["a", "b"]}', b'{"predictions": [{"score": 0.5}]}'),  # one answer short
    ],
)
def test_records_that_are_not_answered_predictions_are_skipped(
    request_body: bytes, response: bytes
) -> None:
    assert answered_reviews(record(request_body, response)) == []
    assert answered_reviews({"eventVersion": "0"}) == []


def test_windows_times_hours_and_urls() -> None:
    window = Window(since=TIME, until=TIME + timedelta(days=1))
    assert window.holds(TIME) and not window.holds(TIME + timedelta(days=1))
    assert window.may_hold_hour(TIME.replace(minute=0, second=0))
    assert not window.may_hold_hour(TIME.replace(hour=15, minute=0, second=0))
    assert Window().holds(TIME) and Window().to_json() == {"since": None, "until": None}
    assert parse_time("2026-12-02") == datetime(2026, 12, 2, tzinfo=UTC)
    assert parse_time("2026-12-02T16:44:04.123Z").tzinfo is not None
    assert capture_hour("capture/ep/AllTraffic/2026/12/02/16/44-04-123-x.jsonl") == datetime(
        2026, 12, 2, 16, tzinfo=UTC
    )
    assert capture_hour("capture/notes.jsonl") is None
    assert parse_s3_url("s3://bucket/capture/") == ("bucket", "capture")
    with pytest.raises(ValueError):
        parse_s3_url("/local/dir")


def test_feedback_outside_the_window_of_another_model_or_unreadable_is_left_out() -> None:
    def feedback(**fields: object) -> bytes:
        base = {
            "label": "positive",
            "predicted": "negative",
            "model_version": "v1",
            "received_at": "2026-12-02T17:00:00Z",
        }
        return json.dumps(base | fields).encode()

    files = [
        feedback(),
        feedback(model_version="v0"),
        feedback(received_at="2026-11-01T00:00:00Z"),
        feedback(label="meh"),
        b"{not json",
        b"[]",
    ]
    window = Window(since=TIME, until=TIME + timedelta(days=1))
    assert len(list(feedback_in(files, window, "v1"))) == 1
    assert len(list(feedback_in(files, Window(), None))) == 3


def test_the_lambda_publishes_each_figure_once_and_accuracy_only_when_judged() -> None:
    figures = {name: 0.5 for name in drift.METRIC_NAMES} | {"feedback_received": 3}
    data = metric_data(figures, "ep", TIME, drift.Thresholds())
    names = [item["MetricName"] for item in data]
    assert sorted(names) == sorted(set(drift.METRIC_NAMES.values()) - {"FeedbackAccuracy"})
    assert all(item["Dimensions"] == [{"Name": "EndpointName", "Value": "ep"}] for item in data)
    units = {item["MetricName"]: item["Unit"] for item in data}
    assert units["Reviews"] == "Count" and units["LengthPSI"] == "None"
    judged = metric_data(figures | {"feedback_received": 20}, "ep", TIME, drift.Thresholds())
    assert "FeedbackAccuracy" in [item["MetricName"] for item in judged]
