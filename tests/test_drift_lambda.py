"""The drift Lambda (lambda_src/drift/): S3 and CloudWatch through botocore's Stubber.

The artifact is the hand-made one (model_artifacts) as model.tar.gz bytes, its traffic answered
by its own handlers. The last test loads that artifact's preprocess.py the way Lambda will:
from the built asset alone, with no site-packages, so BeautifulSoup and the Porter stemmer can
only come from what the asset carries.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from botocore.response import StreamingBody
from botocore.session import Session
from botocore.stub import ANY, Stubber
from drift_traffic import START, answered_records, build_artifact, shifted_reviews
from model_artifacts import sample_reviews

from contract.capture import record_line
from contract.drift import METRIC_NAMES, METRIC_NAMESPACE
from contract.packaging import (
    TOKENIZER_PACKAGES_DIR,
    build_lambda_asset,
    tokenizer_package_members,
)
from lambda_src.drift import handler, tokenizer
from lambda_src.drift.settings import ConfigurationError, load_settings
from sentiment import monitor
from sentiment.model_loader import ServedModel, served_artifact

BUCKET = "artifacts"
MODEL_KEY = "training-jobs/job-1/output/model.tar.gz"
CAPTURE_KEY = "capture/imdb-sentiment/AllTraffic/2026/12/01/10/00-00-000-a.jsonl"
NOW = START + timedelta(days=1)
ENVIRONMENT = {
    "MODEL_DATA_URL": f"s3://{BUCKET}/{MODEL_KEY}",
    "CAPTURE_URL": f"s3://{BUCKET}/capture",
    "FEEDBACK_URL": f"s3://{BUCKET}/feedback",
    "ENDPOINT_NAME": "imdb-sentiment",
}


@pytest.fixture(scope="module")
def artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_artifact(tmp_path_factory.mktemp("drift-lambda"))


@pytest.fixture(scope="module")
def served(artifact: Path) -> Iterator[ServedModel]:
    with served_artifact(artifact) as loaded:
        yield loaded


@pytest.fixture(autouse=True)
def fresh_containers() -> Iterator[None]:
    handler._models.clear()
    yield
    handler._models.clear()


@pytest.fixture
def s3() -> Iterator[Stubber]:
    client = Session().create_client("s3", region_name="us-east-1")
    with Stubber(client) as stub:
        yield stub
        stub.assert_no_pending_responses()


@pytest.fixture
def cloudwatch() -> Iterator[Stubber]:
    client = Session().create_client("cloudwatch", region_name="us-east-1")
    with Stubber(client) as stub:
        yield stub
        stub.assert_no_pending_responses()


def body(content: bytes) -> dict[str, Any]:
    return {"Body": StreamingBody(io.BytesIO(content), len(content))}


def expect_model(s3: Stubber, artifact: Path) -> None:
    s3.add_response("get_object", body(artifact.read_bytes()), {"Bucket": BUCKET, "Key": MODEL_KEY})


def expect_listing(s3: Stubber, prefix: str, keys: list[str]) -> None:
    contents = [{"Key": key, "LastModified": START} for key in keys]
    s3.add_response(
        "list_objects_v2",
        {"Contents": contents, "IsTruncated": False},
        {"Bucket": BUCKET, "Prefix": prefix},
    )


def expect_capture(s3: Stubber, served: ServedModel, reviews: list[str]) -> None:
    expect_listing(s3, "capture/", [CAPTURE_KEY])
    records = b"".join(record_line(record) for record, _ in answered_records(served, reviews))
    s3.add_response("get_object", body(records), {"Bucket": BUCKET, "Key": CAPTURE_KEY})


def published(cloudwatch: Stubber) -> list[dict[str, Any]]:
    """Expect one PutMetricData to the drift namespace; the list its MetricData lands in."""
    sent: list[dict[str, Any]] = []
    cloudwatch.add_response(
        "put_metric_data", {}, {"Namespace": METRIC_NAMESPACE, "MetricData": ANY}
    )
    cloudwatch.client.meta.events.register(
        "provide-client-params.cloudwatch.PutMetricData",
        lambda params, **_: sent.extend(params["MetricData"]),
    )
    return sent


def run(s3: Stubber, cloudwatch: Stubber, **environment: str) -> dict[str, Any]:
    settings = load_settings(ENVIRONMENT | environment)
    return handler.run(settings, s3.client, cloudwatch.client, NOW)


def values(data: list[dict[str, Any]]) -> dict[str, float]:
    assert {tuple(map(tuple, (d.items() for d in m["Dimensions"]))) for m in data} == {
        ((("Name", "EndpointName"), ("Value", "imdb-sentiment")),)
    }
    return {metric["MetricName"]: metric["Value"] for metric in data}


def test_the_settings_are_checked() -> None:
    settings = load_settings(ENVIRONMENT | {"THRESHOLDS": '{"length_psi": 0.4}'})
    assert settings.thresholds.length_psi == 0.4 and settings.window_hours == 168
    for wrong in (
        {"MODEL_DATA_URL": "/tmp/model.tar.gz"},
        {"ENDPOINT_NAME": ""},
        {"THRESHOLDS": '{"colour": 1}'},
        {"THRESHOLDS": "[1]"},
        {"WINDOW_HOURS": "0"},
    ):
        with pytest.raises(ConfigurationError):
            load_settings(ENVIRONMENT | wrong)


def test_the_artifacts_reader_and_baseline_come_from_its_tarball(
    s3: Stubber, artifact: Path, served: ServedModel
) -> None:
    expect_model(s3, artifact)

    model = tokenizer.read_model(s3.client, ENVIRONMENT["MODEL_DATA_URL"])

    assert model.words("A superb plot, and popcorn.") == (["superb", "plot"], ["popcorn"])
    assert model.baseline["model_version"] == served.model.version


def test_traffic_like_the_baseline_publishes_every_figure_and_crosses_nothing(
    s3: Stubber, cloudwatch: Stubber, artifact: Path, served: ServedModel
) -> None:
    expect_model(s3, artifact)
    expect_capture(s3, served, [text for text, _ in sample_reviews(120, seed=7)])
    expect_listing(s3, "feedback/", [])
    data = published(cloudwatch)

    summary = run(s3, cloudwatch)

    assert summary["status"] == "reported" and summary["crossed"] == []
    published_values = values(data)
    assert set(published_values) == set(METRIC_NAMES.values()) - {"FeedbackAccuracy"}
    assert published_values["Reviews"] == 120 and published_values["ThresholdsCrossed"] == 0
    assert published_values["LengthPSI"] < 0.1


def test_drifted_traffic_is_published_past_its_thresholds(
    s3: Stubber, cloudwatch: Stubber, artifact: Path, served: ServedModel
) -> None:
    expect_model(s3, artifact)
    expect_capture(s3, served, shifted_reviews(120, seed=3))
    data = published(cloudwatch)

    summary = run(s3, cloudwatch, FEEDBACK_URL="")

    assert {"oov_rate_increase", "low_confidence_increase"} <= set(summary["crossed"])
    published_values = values(data)
    assert published_values["OOVRateIncrease"] > 0.05
    assert published_values["ThresholdsCrossed"] == len(summary["crossed"])


def test_a_quiet_window_publishes_the_count_alone(
    s3: Stubber, cloudwatch: Stubber, artifact: Path, served: ServedModel
) -> None:
    expect_model(s3, artifact)
    expect_capture(s3, served, ["A superb plot."] * 3)
    data = published(cloudwatch)

    summary = run(s3, cloudwatch)

    assert summary["status"] == "too_few_records"
    assert values(data) == {"Reviews": 3}


def test_feedback_accuracy_is_published_once_enough_answers_are_in(
    s3: Stubber, cloudwatch: Stubber, artifact: Path, served: ServedModel
) -> None:
    expect_model(s3, artifact)
    expect_capture(s3, served, [text for text, _ in sample_reviews(60, seed=7)])
    keys = [f"feedback/{index:08d}-0000-0000-0000-000000000000.json" for index in range(20)]
    expect_listing(s3, "feedback/", keys)
    for index, key in enumerate(keys):
        record = {
            "label": "positive",
            "predicted": "positive" if index % 4 else "negative",
            "model_version": served.model.version,
            "received_at": "2026-12-01T12:00:00Z",
        }
        s3.add_response(
            "get_object", body(json.dumps(record).encode()), {"Bucket": BUCKET, "Key": key}
        )
    data = published(cloudwatch)

    summary = run(s3, cloudwatch)

    assert values(data)["FeedbackAccuracy"] == 0.75
    assert summary["crossed"] == ["feedback_accuracy"]


def test_a_baseline_retaken_for_this_model_replaces_the_artifacts(
    s3: Stubber, cloudwatch: Stubber, artifact: Path, served: ServedModel
) -> None:
    expect_model(s3, artifact)
    baseline_key = "drift/baseline.json"
    expect_listing(s3, "drift/", [baseline_key])
    from contract.drift import Profile, baseline_document

    retaken = Profile()
    for _ in range(100):
        retaken.add([], ["lowkey", "bussin"], 0.5, True)
    document = baseline_document(
        retaken, source="captured traffic", model_version=served.model.version
    )
    s3.add_response(
        "get_object", body(json.dumps(document).encode()), {"Bucket": BUCKET, "Key": baseline_key}
    )
    expect_capture(s3, served, shifted_reviews(120, seed=3))
    published(cloudwatch)

    summary = run(s3, cloudwatch, FEEDBACK_URL="", BASELINE_URL=f"s3://{BUCKET}/{baseline_key}")

    assert summary["baseline"] == f"s3://{BUCKET}/{baseline_key}"
    assert "oov_rate_increase" not in summary["crossed"]


def test_a_missing_or_foreign_retaken_baseline_leaves_the_artifacts(
    s3: Stubber, cloudwatch: Stubber, artifact: Path, served: ServedModel
) -> None:
    expect_model(s3, artifact)
    expect_listing(s3, "drift/", [])
    expect_capture(s3, served, shifted_reviews(60, seed=3))
    published(cloudwatch)

    summary = run(s3, cloudwatch, FEEDBACK_URL="", BASELINE_URL=f"s3://{BUCKET}/drift/b.json")

    assert summary["baseline"] == ENVIRONMENT["MODEL_DATA_URL"]


def test_the_asset_alone_runs_an_artifacts_preprocessing(artifact: Path, tmp_path: Path) -> None:
    """No site-packages: bs4 and the Porter stemmer come from the asset, and read reviews
    exactly as the full NLTK and BeautifulSoup do."""
    asset = build_lambda_asset(tmp_path / "asset", tokenizer_package_members())
    assert (asset / TOKENIZER_PACKAGES_DIR / "nltk" / "stem" / "porter.py").is_file()
    reviews = [
        "<b>Loved</b> it &amp; the acting wasn't bad, but the ending?! Meh... 10/10 running",
        "Generously, relational conditional hopefulness; the sequels didn't disappoint.",
        "Nothing enjoyable about it. Not only funny but moving!",
    ]
    probe = """
import json, sys
sys.path.insert(0, sys.argv[1])
from contract.drift import review_words
from drift.tokenizer import load_preprocess
preprocess = load_preprocess(open(sys.argv[2], "rb").read())
assert "site-packages" not in sys.modules["bs4"].__file__, sys.modules["bs4"].__file__
words = review_words(preprocess, json.load(open(sys.argv[3])))
print(json.dumps([words(review) for review in json.loads(sys.argv[4])]))
"""
    with tarfile.open(artifact) as tar:
        code, vocabulary = tmp_path / "preprocess.py", tmp_path / "vocabulary.json"
        code.write_bytes(tar.extractfile("code/preprocess.py").read())
        vocabulary.write_bytes(tar.extractfile("vocabulary.json").read())
    arguments = [*map(str, (asset, code, vocabulary)), json.dumps(reviews)]
    done = subprocess.run(
        [sys.executable, "-I", "-S", "-c", probe, *arguments],
        capture_output=True,
        text=True,
        check=False,
        cwd="/",
    )
    assert done.returncode == 0, done.stderr

    words = monitor.read_artifact(artifact).words  # the checkout's full NLTK and bs4
    expected = [list(words(review)) for review in reviews]
    assert json.loads(done.stdout) == expected
