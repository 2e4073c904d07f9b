"""`sentiment prepare --feedback`: the page's feedback joins the training split only, and every
record left out says why."""

from __future__ import annotations

import io
import json
from pathlib import Path

import boto3
import numpy as np
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber
from dataset import read_split
from test_prepare import manifest, run_prepare

from contract.feedback import DirectoryFeedbackStore
from sentiment import feedback_intake
from sentiment.prepare import labeled_files, stratified_split

NEW_REVIEWS = {
    "10000000-0000-4000-8000-000000000001": (
        "Not something I enjoyed, the plot dragged.",
        "negative",
    ),
    "10000000-0000-4000-8000-000000000002": (
        "The first half drags, but the ending is wonderful.",
        "positive",
    ),
}


def record(
    prediction_id: str,
    review: str,
    label: str,
    source: str = "a1",
    at: str = "2026-12-02T10:00:00Z",
) -> dict:
    return {
        "prediction_id": prediction_id,
        "label": label,
        "predicted": "positive",
        "score": 0.7,
        "low_confidence": False,
        "model_version": "3f9c2a71d04b8e65",
        "review": review,
        "predicted_at": at,
        "received_at": at,
        "source": source,
    }


def pasted(text: str) -> str:
    """The same review as a visitor might paste it: other case, spacing and line breaks."""
    return "  " + text.replace("<br /><br />", "\n\n").upper() + "  "


@pytest.fixture
def feedback_dir(imdb_dir: Path, tmp_path: Path) -> Path:
    store = DirectoryFeedbackStore(tmp_path / "feedback")
    for prediction_id, (review, label) in NEW_REVIEWS.items():
        store.put(record(prediction_id, review, label))
    # The same review again, said earlier: the later word wins.
    store.put(
        record(
            "10000000-0000-4000-8000-000000000003",
            NEW_REVIEWS["10000000-0000-4000-8000-000000000001"][0] + " ",
            "positive",
            at="2026-12-01T10:00:00Z",
        )
    )
    test_review = next((imdb_dir / "test" / "pos").iterdir()).read_text(encoding="utf-8")
    store.put(record("20000000-0000-4000-8000-000000000001", pasted(test_review), "negative"))
    files, labels = labeled_files(imdb_dir, "train")
    kept, held_out = stratified_split(labels, 0.1, 13)
    validation_review = files[held_out[0]].path.read_text(encoding="utf-8")
    store.put(record("20000000-0000-4000-8000-000000000002", pasted(validation_review), "negative"))
    train_review = files[kept[0]].path.read_text(encoding="utf-8")
    store.put(record("20000000-0000-4000-8000-000000000003", train_review, "negative"))
    # One source floods: only --feedback-per-source of its records join.
    for n in range(3):
        store.put(
            record(
                f"30000000-0000-4000-8000-00000000000{n}",
                f"Flood review {n}, awful.",
                "negative",
                source="f1",
            )
        )
    (store.root / "40000000-0000-4000-8000-000000000000.json").write_text('{"label": "maybe"}')
    return store.root


def test_feedback_joins_the_training_split_only_with_the_reasons_for_the_rest(
    imdb_dir: Path, feedback_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_prepare(imdb_dir, tmp_path / "plain", tmp_path / "cache") == 0
    status = run_prepare(
        imdb_dir,
        tmp_path / "with",
        tmp_path / "cache",
        "--feedback",
        str(feedback_dir),
        "--feedback-per-source",
        "2",
    )

    assert status == 0
    intake = manifest(tmp_path / "with")["feedback"]
    assert intake["records"] == 10
    assert (intake["joined"], intake["positive"], intake["negative"]) == (4, 1, 3)
    assert intake["left_out"] == {
        "duplicate": 1,
        "in_test": 1,
        "in_train": 1,
        "in_validation": 1,
        "over_source_limit": 1,
        "unreadable": 1,
    }
    reasons = {item["prediction_id"]: item["reason"] for item in intake["left_out_records"]}
    assert reasons["10000000-0000-4000-8000-000000000003"] == "duplicate"
    assert reasons["20000000-0000-4000-8000-000000000001"] == "in_test"
    plain, with_feedback = (
        {split: read_split(root / split) for split in ("train", "validation", "test")}
        for root in (tmp_path / "plain", tmp_path / "with")
    )
    assert len(with_feedback["train"]) == len(plain["train"]) + 4
    for split in ("validation", "test"):
        assert np.array_equal(with_feedback[split].labels, plain[split].labels)
        assert np.array_equal(with_feedback[split].lengths, plain[split].lengths)
    assert "4 joined the training split (1 positive, 3 negative)" in capsys.readouterr().out


def test_the_same_feedback_gives_the_same_dataset(
    imdb_dir: Path, feedback_dir: Path, tmp_path: Path
) -> None:
    for name in ("first", "second"):
        assert (
            run_prepare(
                imdb_dir, tmp_path / name, tmp_path / "cache", "--feedback", str(feedback_dir)
            )
            == 0
        )

    first, second = manifest(tmp_path / "first"), manifest(tmp_path / "second")
    assert first["files"] == second["files"]
    assert first["feedback"]["joined_sha256"] == second["feedback"]["joined_sha256"]


def test_a_missing_feedback_directory_is_an_error_not_an_empty_intake(
    imdb_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        run_prepare(
            imdb_dir, tmp_path / "out", tmp_path / "cache", "--feedback", str(tmp_path / "none")
        )
        != 0
    )
    assert "no feedback directory" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_the_deployed_buckets_records_are_read_page_by_page() -> None:
    client = boto3.client("s3", region_name="eu-west-1")
    body = json.dumps(record("10000000-0000-4000-8000-000000000001", "Fine.", "positive")).encode()
    with Stubber(client) as stub:
        stub.add_response(
            "list_objects_v2",
            {
                "Contents": [{"Key": "feedback/10000000-0000-4000-8000-000000000001.json"}],
                "IsTruncated": True,
                "NextContinuationToken": "next",
            },
            {"Bucket": "artifacts", "Prefix": "feedback/"},
        )
        stub.add_response(
            "get_object",
            {"Body": StreamingBody(io.BytesIO(body), len(body))},
            {"Bucket": "artifacts", "Key": "feedback/10000000-0000-4000-8000-000000000001.json"},
        )
        stub.add_response(
            "list_objects_v2",
            {"Contents": [{"Key": "feedback/.hidden.tmp"}], "IsTruncated": False},
            {"Bucket": "artifacts", "Prefix": "feedback/", "ContinuationToken": "next"},
        )
        objects = list(feedback_intake._s3_objects("s3://artifacts/feedback", client))

    assert objects == [("10000000-0000-4000-8000-000000000001.json", body)]
