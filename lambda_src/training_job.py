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

The promotion gate: on an update that starts a new job, the model serving now is the previous
job's (the old physical resource id). If that job completed, its model.tar.gz is added to the
new job as the ``serving`` input channel, and the job fails rather than finish with a model
worse than it (model/promotion_gate.py), which fails the deployment before the endpoint
changes. A create, or an old job without a model, adds no channel: there is nothing to compare.
With shadow testing on, the previous job's model answered copies in the shadow variant, not the
callers: the stack then names the pinned production job (``ServingTrainingJobName``), whose
model is the one to beat, on a create too.

boto3 and contract/ (the channel's name) only: the Lambda asset root is lambda_src/, with
contract/ beside it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from functools import cache
from typing import Any

import boto3
from botocore.exceptions import ClientError

from contract.promotion import SERVING_CHANNEL

_logger = logging.getLogger(__name__)
_logger.setLevel(logging.INFO)

MAX_ATTEMPTS = 9
# The resource property naming the job whose model serves callers, given with shadow testing.
PINNED_SERVING_JOB = "ServingTrainingJobName"
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
    pinned = properties.get(PINNED_SERVING_JOB)
    if request_type == "Create":
        client = _sagemaker()

        def pinned_model() -> str | None:
            return serving_model_url(client, pinned, properties) if pinned else None

        return {"PhysicalResourceId": start_training(client, properties, pinned_model)}
    if request_type == "Update":
        old_base = event["OldResourceProperties"]["TrainingJobName"]
        if properties["TrainingJobName"] == old_base:
            # Same code, data, hyperparameters and image: the trained model still stands.
            return {"PhysicalResourceId": event["PhysicalResourceId"]}
        client = _sagemaker()
        serving_job = pinned or event["PhysicalResourceId"]

        def serving() -> str | None:
            if not (pinned or serving_job.startswith(old_base)):
                return None  # the previous create failed before a job existed: none serves
            return serving_model_url(client, serving_job, properties)

        # A new physical id makes CloudFormation delete the old one after the update, which
        # only stops that job if it is still running: its artifacts stay in S3.
        return {"PhysicalResourceId": start_training(client, properties, serving)}
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


def start_training(
    client: Any,
    properties: dict[str, Any],
    serving: Callable[[], str | None] = lambda: None,
) -> str:
    """Create the job (or adopt a running or completed one); return its name.

    ``serving`` gives the S3 URL of the model serving now, asked only when a job is created
    (an adopted job already ran its gate, or had none).
    """
    base = properties["TrainingJobName"]
    request = json.loads(properties["TrainingJobRequest"])
    for name in candidate_names(base):
        existing = describe(client, name)
        if existing is None:
            client.create_training_job(**job_request(name, request, serving()))
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


def job_request(
    name: str, request: dict[str, Any], serving_model: str | None = None
) -> dict[str, Any]:
    """The CreateTrainingJob arguments: the template, named, with per-job checkpoints, and
    the serving model's artifact as the ``serving`` channel when there is one."""
    arguments = json.loads(json.dumps(request))
    arguments["TrainingJobName"] = name
    checkpoints = arguments.get("CheckpointConfig")
    if checkpoints:
        # Checkpoints belong to one job: a retrained model must not resume an older one.
        checkpoints["S3Uri"] = f"{checkpoints['S3Uri'].rstrip('/')}/{name}"
    if serving_model:
        arguments["InputDataConfig"].append(serving_channel(serving_model))
    return arguments


def serving_channel(model_url: str) -> dict[str, Any]:
    """The input channel that downloads one model.tar.gz (its exact key as the prefix)."""
    return {
        "ChannelName": SERVING_CHANNEL,
        "DataSource": {
            "S3DataSource": {
                "S3DataType": "S3Prefix",
                "S3Uri": model_url,
                "S3DataDistributionType": "FullyReplicated",
            }
        },
        "InputMode": "File",
    }


def serving_model_url(client: Any, job_name: str, properties: dict[str, Any]) -> str | None:
    """The S3 URL of the model the serving job left, if it completed; else None."""
    job = describe(client, job_name)
    if job is None or job["TrainingJobStatus"] != "Completed":
        return None
    url = job.get("ModelArtifacts", {}).get("S3ModelArtifacts") or None
    output = json.loads(properties["TrainingJobRequest"])["OutputDataConfig"]["S3OutputPath"]
    if url and not url.startswith(output):
        # The training role may read artifacts under this stack's output path only (say the
        # artifact bucket was replaced): no comparison rather than a job that cannot start.
        _logger.warning("serving model %s is outside %s: no promotion gate", url, output)
        return None
    _logger.info("serving model of %s: %s", job_name, url)
    return url


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
