"""CloudFormation custom resource: one SageMaker training job, for the CDK Provider framework.

``on_event`` starts the job and returns its name as the physical resource id; ``is_complete``
is then polled by the framework until the job completes (returning ``ModelDataUrl`` and
``TrainingJobName`` as resource attributes) or fails (raising SageMaker's ``FailureReason``,
which the framework reports as the reason in the CloudFormation event).

Resource properties (set by stacks/training.py):
    TrainingJobName     the base job name, derived from a hash of code, data, hyperparameters
                        and image: a new name means "train again", the same name means "keep"
    TrainingJobRequest  JSON of the CreateTrainingJob request without the job name; the
                        checkpoint S3Uri is a prefix that the job name is appended to

SageMaker job names are unique forever in an account and region. A job that already exists
under the base name is adopted when it is running or completed (a stack deleted and deployed
again reuses its model instead of paying for the same training twice); after a failed or
stopped one, the next free retry name ``<base>-2``, ``<base>-3``... is used.

Self-contained (boto3 only): the Lambda asset root is lambda_src/.
"""

from __future__ import annotations

import json
import logging
from functools import cache
from typing import Any

import boto3
from botocore.exceptions import ClientError

_logger = logging.getLogger(__name__)
_logger.setLevel(logging.INFO)

MAX_ATTEMPTS = 9
_ADOPTABLE = frozenset({"InProgress", "Completed"})
_FINISHED_WITHOUT_MODEL = frozenset({"Failed", "Stopped"})


class TrainingJobFailed(RuntimeError):
    """The job ended without a model; the message is what CloudFormation shows."""


@cache
def _sagemaker() -> Any:
    return boto3.client("sagemaker")


def on_event(event: dict[str, Any], context: object = None) -> dict[str, Any]:
    request_type = event["RequestType"]
    properties = event["ResourceProperties"]
    _logger.info("%s %s", request_type, event.get("PhysicalResourceId", "(new)"))
    if request_type == "Create":
        return {"PhysicalResourceId": start_training(_sagemaker(), properties)}
    if request_type == "Update":
        if properties["TrainingJobName"] == event["OldResourceProperties"]["TrainingJobName"]:
            # Same code, data, hyperparameters and image: the trained model still stands.
            return {"PhysicalResourceId": event["PhysicalResourceId"]}
        # A new physical id makes CloudFormation delete the old one after the update, which
        # only stops that job if it is still running: its artifacts stay in S3.
        return {"PhysicalResourceId": start_training(_sagemaker(), properties)}
    if request_type == "Delete":
        stop_if_running(_sagemaker(), event["PhysicalResourceId"], properties["TrainingJobName"])
        return {"PhysicalResourceId": event["PhysicalResourceId"]}
    raise ValueError(f"unknown request type {request_type!r}")


def is_complete(event: dict[str, Any], context: object = None) -> dict[str, Any]:
    if event["RequestType"] == "Delete":
        return {"IsComplete": True}
    name = event["PhysicalResourceId"]
    job = _sagemaker().describe_training_job(TrainingJobName=name)
    status = job["TrainingJobStatus"]
    _logger.info("%s: %s (%s)", name, status, job.get("SecondaryStatus", ""))
    if status == "Completed":
        return {
            "IsComplete": True,
            "Data": {
                "ModelDataUrl": job["ModelArtifacts"]["S3ModelArtifacts"],
                "TrainingJobName": name,
            },
        }
    if status in _FINISHED_WITHOUT_MODEL:
        reason = job.get("FailureReason") or "no reason given"
        raise TrainingJobFailed(f"SageMaker training job {name} {status.lower()}: {reason}")
    return {"IsComplete": False}


def start_training(client: Any, properties: dict[str, Any]) -> str:
    """Create the job (or adopt a running or completed one); return its name."""
    base = properties["TrainingJobName"]
    request = json.loads(properties["TrainingJobRequest"])
    for name in candidate_names(base):
        existing = describe(client, name)
        if existing is None:
            client.create_training_job(**job_request(name, request))
            _logger.info("started %s", name)
            return name
        if existing["TrainingJobStatus"] in _ADOPTABLE:
            _logger.info("adopted %s (%s)", name, existing["TrainingJobStatus"])
            return name
    raise TrainingJobFailed(
        f"training jobs {base} to {base}-{MAX_ATTEMPTS} all failed or were stopped; "
        "change the code, data or hyperparameters to train under a new name"
    )


def stop_if_running(client: Any, physical_id: str, base_name: str) -> None:
    """Stop the resource's job if it still runs; never touch its artifacts."""
    if not physical_id.startswith(base_name):
        return  # the create failed before a job existed: nothing to stop
    job = describe(client, physical_id)
    if job is not None and job["TrainingJobStatus"] == "InProgress":
        client.stop_training_job(TrainingJobName=physical_id)
        _logger.info("stopping %s", physical_id)


def candidate_names(base: str) -> list[str]:
    return [base] + [f"{base}-{attempt}" for attempt in range(2, MAX_ATTEMPTS + 1)]


def job_request(name: str, request: dict[str, Any]) -> dict[str, Any]:
    """The CreateTrainingJob arguments: the template, named, with per-job checkpoints."""
    arguments = json.loads(json.dumps(request))
    arguments["TrainingJobName"] = name
    checkpoints = arguments.get("CheckpointConfig")
    if checkpoints:
        # Checkpoints belong to one job: a retrained model must not resume an older one.
        checkpoints["S3Uri"] = f"{checkpoints['S3Uri'].rstrip('/')}/{name}"
    return arguments


def describe(client: Any, name: str) -> dict[str, Any] | None:
    try:
        return client.describe_training_job(TrainingJobName=name)
    except ClientError as error:
        details = error.response.get("Error", {})
        # SageMaker answers an unknown job name with ValidationException "...not found"; its
        # API reference also lists ResourceNotFound for DescribeTrainingJob.
        code = details.get("Code")
        if code == "ResourceNotFound" or (
            code == "ValidationException" and "not found" in str(details.get("Message", "")).lower()
        ):
            return None
        raise
