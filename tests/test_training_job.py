"""The training-job custom resource handlers (lambda_src/training_job.py) against a stubbed
SageMaker: the Stubber also checks every request against the real API model."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from lambda_src import training_job

BASE_NAME = "imdb-sentiment-0123456789abcdef"
MODEL_URL = f"s3://artifacts/training-jobs/{BASE_NAME}/output/model.tar.gz"
REQUEST = {
    "AlgorithmSpecification": {
        "TrainingImage": (
            "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.6.0-cpu-py312"
        ),
        "TrainingInputMode": "File",
        "MetricDefinitions": [{"Name": "validation:loss", "Regex": "val_loss=([0-9.]+)"}],
    },
    "RoleArn": "arn:aws:iam::123456789012:role/training",
    "HyperParameters": {
        "sagemaker_program": "train.py",
        "sagemaker_submit_directory": "s3://assets/abc.gz",
        "sagemaker_region": "us-east-1",
    },
    "InputDataConfig": [
        {
            "ChannelName": "train",
            "DataSource": {
                "S3DataSource": {
                    "S3DataType": "S3Prefix",
                    "S3Uri": "s3://data/prepared/0123/train/",
                    "S3DataDistributionType": "FullyReplicated",
                }
            },
        }
    ],
    "OutputDataConfig": {"S3OutputPath": "s3://artifacts/training-jobs/"},
    "ResourceConfig": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 30},
    "StoppingCondition": {"MaxRuntimeInSeconds": 3000},
    "EnableManagedSpotTraining": False,
    "CheckpointConfig": {
        "S3Uri": "s3://artifacts/checkpoints/",
        "LocalPath": "/opt/ml/checkpoints",
    },
}
PROPERTIES = {
    "ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:provider",
    "TrainingJobName": BASE_NAME,
    "TrainingJobRequest": json.dumps(REQUEST),
}


@pytest.fixture
def sagemaker(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stubber]:
    client = boto3.client(
        "sagemaker",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    monkeypatch.setattr(training_job, "_sagemaker", lambda: client)
    with Stubber(client) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


def expected_create(name: str) -> dict[str, Any]:
    request = json.loads(json.dumps(REQUEST))
    request["TrainingJobName"] = name
    request["CheckpointConfig"]["S3Uri"] = f"s3://artifacts/checkpoints/{name}"
    return request


def described(name: str, status: str, **extra: Any) -> dict[str, Any]:
    return {
        "TrainingJobName": name,
        "TrainingJobArn": f"arn:aws:sagemaker:us-east-1:123456789012:training-job/{name}",
        "TrainingJobStatus": status,
        "SecondaryStatus": {"InProgress": "Training", "Completed": "Completed"}.get(status, status),
        "ModelArtifacts": {"S3ModelArtifacts": extra.pop("model_url", "")},
        "AlgorithmSpecification": {"TrainingInputMode": "File"},
        "ResourceConfig": REQUEST["ResourceConfig"],
        "StoppingCondition": REQUEST["StoppingCondition"],
        "CreationTime": datetime(2026, 1, 1, tzinfo=UTC),
        **extra,
    }


def not_found(stubber: Stubber, name: str, code: str = "ValidationException") -> None:
    stubber.add_client_error(
        "describe_training_job",
        service_error_code=code,
        service_message="Requested resource not found.",
        expected_params={"TrainingJobName": name},
    )


def describe(stubber: Stubber, name: str, status: str, **extra: Any) -> None:
    stubber.add_response(
        "describe_training_job",
        described(name, status, **extra),
        {"TrainingJobName": name},
    )


def create(stubber: Stubber, name: str) -> None:
    stubber.add_response(
        "create_training_job",
        {"TrainingJobArn": f"arn:aws:sagemaker:us-east-1:123456789012:training-job/{name}"},
        expected_create(name),
    )


def event(request_type: str, **fields: Any) -> dict[str, Any]:
    return {"RequestType": request_type, "ResourceProperties": PROPERTIES, **fields}


@pytest.mark.parametrize("code", ["ValidationException", "ResourceNotFound"])
def test_create_starts_a_job_named_after_the_fingerprint(sagemaker: Stubber, code: str) -> None:
    not_found(sagemaker, BASE_NAME, code)
    create(sagemaker, BASE_NAME)

    assert training_job.on_event(event("Create")) == {"PhysicalResourceId": BASE_NAME}


def test_create_adopts_a_completed_job_of_the_same_name(sagemaker: Stubber) -> None:
    describe(sagemaker, BASE_NAME, "Completed", model_url=MODEL_URL)

    assert training_job.on_event(event("Create")) == {"PhysicalResourceId": BASE_NAME}


def test_create_after_a_failed_job_takes_the_next_free_name(sagemaker: Stubber) -> None:
    describe(sagemaker, BASE_NAME, "Failed", FailureReason="capacity")
    describe(sagemaker, f"{BASE_NAME}-2", "Stopped")
    not_found(sagemaker, f"{BASE_NAME}-3")
    create(sagemaker, f"{BASE_NAME}-3")

    assert training_job.on_event(event("Create")) == {"PhysicalResourceId": f"{BASE_NAME}-3"}


def test_create_gives_up_when_every_retry_name_failed(sagemaker: Stubber) -> None:
    for name in training_job.candidate_names(BASE_NAME):
        describe(sagemaker, name, "Failed", FailureReason="bad code")

    with pytest.raises(training_job.TrainingJobFailed, match="change the code"):
        training_job.on_event(event("Create"))


def test_unexpected_describe_errors_propagate(sagemaker: Stubber) -> None:
    sagemaker.add_client_error(
        "describe_training_job",
        service_error_code="AccessDeniedException",
        service_message="not authorized",
    )

    with pytest.raises(Exception, match="AccessDenied"):
        training_job.on_event(event("Create"))


def test_still_in_progress_is_not_complete(sagemaker: Stubber) -> None:
    describe(sagemaker, BASE_NAME, "InProgress")

    assert training_job.is_complete(event("Create", PhysicalResourceId=BASE_NAME)) == {
        "IsComplete": False
    }


def test_completed_returns_the_model_artifact_url(sagemaker: Stubber) -> None:
    describe(sagemaker, BASE_NAME, "Completed", model_url=MODEL_URL)

    assert training_job.is_complete(event("Create", PhysicalResourceId=BASE_NAME)) == {
        "IsComplete": True,
        "Data": {"ModelDataUrl": MODEL_URL, "TrainingJobName": BASE_NAME},
    }


@pytest.mark.parametrize("status", ["Failed", "Stopped"])
def test_a_job_without_a_model_fails_with_sagemakers_reason(
    sagemaker: Stubber, status: str
) -> None:
    reason = "AlgorithmError: ExecuteUserScriptError: train.py exited with 1"
    describe(sagemaker, BASE_NAME, status, FailureReason=reason)

    with pytest.raises(training_job.TrainingJobFailed) as failure:
        training_job.is_complete(event("Create", PhysicalResourceId=BASE_NAME))

    assert reason in str(failure.value)
    assert BASE_NAME in str(failure.value)


def test_update_with_a_changed_hash_starts_a_new_job(sagemaker: Stubber) -> None:
    # ...which the promotion gate compares with the model serving now (below).
    not_found(sagemaker, BASE_NAME)
    describe(sagemaker, OLD_NAME, "Completed", model_url=SERVING_URL)
    create_with_serving(sagemaker, BASE_NAME)

    result = training_job.on_event(
        event("Update", PhysicalResourceId=OLD_NAME, OldResourceProperties=OLD_PROPERTIES)
    )

    assert result == {"PhysicalResourceId": BASE_NAME}


def test_update_with_the_same_hash_keeps_the_job(sagemaker: Stubber) -> None:
    # Other settings changed (say, the instance type): no SageMaker call, same physical id.
    old = {**PROPERTIES, "TrainingJobRequest": json.dumps({**REQUEST, "RoleArn": "old"})}

    result = training_job.on_event(
        event("Update", PhysicalResourceId=f"{BASE_NAME}-2", OldResourceProperties=old)
    )

    assert result == {"PhysicalResourceId": f"{BASE_NAME}-2"}


def test_update_with_the_same_hash_reports_the_existing_model(sagemaker: Stubber) -> None:
    describe(sagemaker, BASE_NAME, "Completed", model_url=MODEL_URL)

    result = training_job.is_complete(
        event("Update", PhysicalResourceId=BASE_NAME, OldResourceProperties=PROPERTIES)
    )

    assert result["Data"]["ModelDataUrl"] == MODEL_URL


def test_delete_stops_a_running_job_and_nothing_else(sagemaker: Stubber) -> None:
    describe(sagemaker, BASE_NAME, "InProgress")
    sagemaker.add_response("stop_training_job", {}, {"TrainingJobName": BASE_NAME})

    result = training_job.on_event(event("Delete", PhysicalResourceId=BASE_NAME))

    assert result == {"PhysicalResourceId": BASE_NAME}
    assert training_job.is_complete(event("Delete", PhysicalResourceId=BASE_NAME)) == {
        "IsComplete": True
    }


@pytest.mark.parametrize("status", ["Completed", "Failed"])
def test_delete_leaves_a_finished_job_and_its_artifacts(sagemaker: Stubber, status: str) -> None:
    describe(sagemaker, BASE_NAME, status, model_url=MODEL_URL)

    training_job.on_event(event("Delete", PhysicalResourceId=BASE_NAME))


def test_delete_of_a_job_that_never_started_calls_nothing(sagemaker: Stubber) -> None:
    # A failed create leaves CloudFormation with a physical id that names no job.
    training_job.on_event(event("Delete", PhysicalResourceId="request-id-1234"))


def test_job_request_is_the_template_with_the_name_and_own_checkpoints() -> None:
    request = training_job.job_request(f"{BASE_NAME}-2", REQUEST)

    assert request == expected_create(f"{BASE_NAME}-2")
    assert REQUEST["CheckpointConfig"]["S3Uri"] == "s3://artifacts/checkpoints/"


def test_retry_names_stay_within_sagemakers_limit() -> None:
    longest_base = "a" * 40 + "-" + "0" * 16

    assert all(len(name) <= 63 for name in training_job.candidate_names(longest_base))


# The promotion gate: an update that trains again hands the new job the serving model.
OLD_NAME = "imdb-sentiment-ffffffffffffffff"
OLD_PROPERTIES = {**PROPERTIES, "TrainingJobName": OLD_NAME}
SERVING_URL = f"s3://artifacts/training-jobs/{OLD_NAME}/output/model.tar.gz"


def serving_channel(url: str = SERVING_URL) -> dict[str, Any]:
    """The channel SageMaker downloads the serving model.tar.gz through."""
    return {
        "ChannelName": "serving",
        "DataSource": {
            "S3DataSource": {
                "S3DataType": "S3Prefix",
                "S3Uri": url,
                "S3DataDistributionType": "FullyReplicated",
            }
        },
        "InputMode": "File",
    }


def create_with_serving(stubber: Stubber, name: str, serving_url: str = SERVING_URL) -> None:
    request = expected_create(name)
    request["InputDataConfig"] = [*request["InputDataConfig"], serving_channel(serving_url)]
    stubber.add_response(
        "create_training_job",
        {"TrainingJobArn": f"arn:aws:sagemaker:us-east-1:123456789012:training-job/{name}"},
        request,
    )


def update(physical_id: str = OLD_NAME) -> dict[str, Any]:
    return event("Update", PhysicalResourceId=physical_id, OldResourceProperties=OLD_PROPERTIES)


def test_the_serving_model_is_the_previous_retry_jobs(sagemaker: Stubber) -> None:
    # The job that serves ran under a retry name: the old physical id names it.
    serving_url = f"s3://artifacts/training-jobs/{OLD_NAME}-2/output/model.tar.gz"
    not_found(sagemaker, BASE_NAME)
    describe(sagemaker, f"{OLD_NAME}-2", "Completed", model_url=serving_url)
    create_with_serving(sagemaker, BASE_NAME, serving_url)

    assert training_job.on_event(update(f"{OLD_NAME}-2")) == {"PhysicalResourceId": BASE_NAME}


def test_a_retry_after_a_refused_job_is_gated_too(sagemaker: Stubber) -> None:
    # The refused job failed; forcing (or any redeploy) trains under the next retry name.
    describe(sagemaker, BASE_NAME, "Failed", FailureReason="PromotionRefused: ...")
    not_found(sagemaker, f"{BASE_NAME}-2")
    describe(sagemaker, OLD_NAME, "Completed", model_url=SERVING_URL)
    create_with_serving(sagemaker, f"{BASE_NAME}-2")

    assert training_job.on_event(update()) == {"PhysicalResourceId": f"{BASE_NAME}-2"}


@pytest.mark.parametrize("status", ["Failed", "Stopped", "InProgress"])
def test_an_old_job_without_a_model_adds_no_channel(sagemaker: Stubber, status: str) -> None:
    not_found(sagemaker, BASE_NAME)
    describe(sagemaker, OLD_NAME, status, FailureReason="capacity")
    create(sagemaker, BASE_NAME)

    assert training_job.on_event(update()) == {"PhysicalResourceId": BASE_NAME}


def test_an_old_job_that_is_gone_adds_no_channel(sagemaker: Stubber) -> None:
    not_found(sagemaker, BASE_NAME)
    not_found(sagemaker, OLD_NAME, "ResourceNotFound")
    create(sagemaker, BASE_NAME)

    assert training_job.on_event(update()) == {"PhysicalResourceId": BASE_NAME}


def test_an_old_physical_id_that_names_no_job_is_not_looked_up(sagemaker: Stubber) -> None:
    # A create that failed before a job existed leaves a request id as the physical id.
    not_found(sagemaker, BASE_NAME)
    create(sagemaker, BASE_NAME)

    assert training_job.on_event(update("request-id-1234")) == {"PhysicalResourceId": BASE_NAME}


def test_a_serving_model_outside_the_output_path_is_not_given(sagemaker: Stubber) -> None:
    # The training role may read model artifacts under the stack's output path only.
    not_found(sagemaker, BASE_NAME)
    describe(sagemaker, OLD_NAME, "Completed", model_url="s3://elsewhere/model.tar.gz")
    create(sagemaker, BASE_NAME)

    assert training_job.on_event(update()) == {"PhysicalResourceId": BASE_NAME}


def test_an_update_that_adopts_a_job_does_not_look_up_the_serving_model(
    sagemaker: Stubber,
) -> None:
    describe(sagemaker, BASE_NAME, "Completed", model_url=MODEL_URL)

    assert training_job.on_event(update()) == {"PhysicalResourceId": BASE_NAME}


def test_a_create_has_no_serving_channel(sagemaker: Stubber) -> None:
    not_found(sagemaker, BASE_NAME)
    create(sagemaker, BASE_NAME)  # expected_create: the template's channels alone

    training_job.on_event(event("Create"))


# With shadow testing the previous job's model was the shadow's: the stack names the pin.
PINNED = "imdb-sentiment-eeeeeeeeeeeeeeee"
PINNED_URL = f"s3://artifacts/training-jobs/{PINNED}/output/model.tar.gz"
PINNED_PROPERTIES = {**PROPERTIES, "ServingTrainingJobName": PINNED}


def test_with_shadow_testing_the_model_to_beat_is_the_pinned_production_jobs(
    sagemaker: Stubber,
) -> None:
    not_found(sagemaker, BASE_NAME)
    describe(sagemaker, PINNED, "Completed", model_url=PINNED_URL)
    create_with_serving(sagemaker, BASE_NAME, PINNED_URL)

    pinned_update = {**update(), "ResourceProperties": PINNED_PROPERTIES}
    assert training_job.on_event(pinned_update) == {"PhysicalResourceId": BASE_NAME}


def test_a_create_with_a_pinned_production_job_is_gated_against_it(sagemaker: Stubber) -> None:
    not_found(sagemaker, BASE_NAME)
    describe(sagemaker, PINNED, "Completed", model_url=PINNED_URL)
    create_with_serving(sagemaker, BASE_NAME, PINNED_URL)

    training_job.on_event({**event("Create"), "ResourceProperties": PINNED_PROPERTIES})


def test_the_serving_channel_downloads_the_one_artifact_in_file_mode() -> None:
    request = training_job.job_request(BASE_NAME, REQUEST, SERVING_URL)

    assert request["InputDataConfig"] == [*REQUEST["InputDataConfig"], serving_channel()]
    assert REQUEST["InputDataConfig"][-1]["ChannelName"] == "train"  # the template untouched
