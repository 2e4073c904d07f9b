"""The deployment's smoke check: the live endpoint answers the model's own smoke test.

The S3 and SageMaker runtime calls are checked with botocore's Stubber; the artifact is a real
one (tests/model_artifacts.py), whose smoke test training wrote through its handlers.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber
from model_artifacts import write_model_dir

from contract.packaging import build_tarball
from contract.smoke import SMOKE_FILE, parse_smoke_test
from lambda_src.smoke_check import handler as smoke_check

ENDPOINT = "imdb-sentiment"
MODEL_URL = "s3://artifacts/training-jobs/imdb-sentiment-0123/output/model.tar.gz"


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, list[dict[str, Any]]]:
    directory = write_model_dir(tmp_path_factory.mktemp("artifact") / "model")
    artifact = build_tarball(directory, directory.parent / "model.tar.gz").read_bytes()
    return artifact, parse_smoke_test((directory / SMOKE_FILE).read_bytes())


def clients() -> tuple[Any, Any]:
    return (
        boto3.client("s3", region_name="eu-west-1"),
        boto3.client("sagemaker-runtime", region_name="eu-west-1"),
    )


def expect_artifact(s3: Stubber, artifact: bytes) -> None:
    s3.add_response(
        "get_object",
        {"Body": StreamingBody(io.BytesIO(artifact), len(artifact))},
        {"Bucket": "artifacts", "Key": "training-jobs/imdb-sentiment-0123/output/model.tar.gz"},
    )


def expect_answer(runtime: Stubber, review: str, answer: dict[str, Any]) -> None:
    body = json.dumps(answer).encode()
    runtime.add_response(
        "invoke_endpoint",
        {"Body": StreamingBody(io.BytesIO(body), len(body)), "ContentType": "application/json"},
        {
            "EndpointName": ENDPOINT,
            "ContentType": "application/json",
            "Accept": "application/json",
            "Body": json.dumps({"review": review}).encode(),
        },
    )


def test_training_wrote_labelled_cases_with_the_models_own_answers(model: Any) -> None:
    _, cases = model

    assert len(cases) == 6
    assert {case["label"] for case in cases} == {"positive", "negative"}
    assert all(0 <= case["score"] <= 1 for case in cases)
    assert all((case["score"] >= 0.5) == (case["sentiment"] == "positive") for case in cases)


def test_an_endpoint_that_answers_as_at_training_is_proven(model: Any) -> None:
    artifact, cases = model
    s3, runtime = clients()
    with Stubber(s3) as s3_stub, Stubber(runtime) as runtime_stub:
        expect_artifact(s3_stub, artifact)
        for case in cases:
            # The endpoint's torch rounds differently: within the tolerance is the same answer.
            answer = {"sentiment": case["sentiment"], "score": case["score"] + 0.001}
            expect_answer(runtime_stub, case["review"], answer)
        proven = smoke_check.check(s3, runtime, ENDPOINT, MODEL_URL)
        runtime_stub.assert_no_pending_responses()

    assert proven == len(cases)


def test_a_different_answer_or_a_model_error_fails_the_deployment_naming_each(
    model: Any,
) -> None:
    artifact, cases = model
    s3, runtime = clients()
    with Stubber(s3) as s3_stub, Stubber(runtime) as runtime_stub:
        expect_artifact(s3_stub, artifact)
        first, second, *rest = cases
        turned = "negative" if first["sentiment"] == "positive" else "positive"
        expect_answer(runtime_stub, first["review"], {"sentiment": turned, "score": 0.5})
        runtime_stub.add_client_error(
            "invoke_endpoint",
            service_error_code="ModelError",
            service_message="Received server error (500) from primary: Worker died.",
            http_status_code=424,
            response_meta={},
        )
        for case in rest:
            expect_answer(runtime_stub, case["review"], case)
        with pytest.raises(smoke_check.SmokeTestFailed) as failed:
            smoke_check.check(s3, runtime, ENDPOINT, MODEL_URL)

    message = str(failed.value)
    assert f"2 of {len(cases)} answers differ" in message
    assert first["review"] in message and f"{turned} 0.5000" in message
    assert second["review"] in message and "Worker died" in message


def test_a_model_without_a_smoke_test_is_not_waved_through(tmp_path: Path) -> None:
    directory = write_model_dir(tmp_path / "model")
    (directory / SMOKE_FILE).unlink()
    artifact = build_tarball(directory, tmp_path / "model.tar.gz").read_bytes()
    s3, runtime = clients()
    with Stubber(s3) as s3_stub, pytest.raises(smoke_check.SmokeTestFailed, match="carries no"):
        expect_artifact(s3_stub, artifact)
        smoke_check.check(s3, runtime, ENDPOINT, MODEL_URL)
