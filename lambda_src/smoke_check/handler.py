"""After the endpoint is created or updated, ask it the model's own smoke test.

A CDK trigger runs this once per model (stacks/smoke_test.py): the model artifact's URL is in
the function's environment, so a new model is a new function version, which runs the trigger
again. It streams the deployed model.tar.gz, keeps only smoke_test.json (contract/smoke.py),
asks the endpoint each of its reviews and raises if any answer errors or differs from what the
model answered at training. The exception fails the deployment, and CloudFormation's rollback
moves the endpoint back to the configuration that served before.

Environment:
    ENDPOINT_NAME   the endpoint to ask
    MODEL_DATA_URL  s3://bucket/key of the model.tar.gz it now serves
    TRAINING_JOB_NAME  the job that trained it: logged, and what makes a new model a new
                    function version
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from contract.drift_sources import parse_s3_url
from contract.packaging import streamed_members
from contract.smoke import SMOKE_FILE, failures, parse_smoke_test

JSON = "application/json"
# Far above what a smoke test holds; model.pt passes through the stream unread.
MAX_SMOKE_BYTES = 1 << 20


class SmokeTestFailed(RuntimeError):
    """The live endpoint does not answer as the model did at training."""


def smoke_cases(s3: Any, model_data_url: str) -> list[dict[str, Any]]:
    bucket, key = parse_s3_url(model_data_url)
    members = streamed_members(
        s3.get_object(Bucket=bucket, Key=key)["Body"], {SMOKE_FILE}, MAX_SMOKE_BYTES
    )
    if SMOKE_FILE not in members:
        raise SmokeTestFailed(
            f"{model_data_url} carries no {SMOKE_FILE}: train it with this version of model/"
        )
    return parse_smoke_test(members[SMOKE_FILE])


def asker(runtime: Any, endpoint_name: str) -> Any:
    def ask(body: bytes) -> tuple[int, bytes]:
        try:
            answer = runtime.invoke_endpoint(
                EndpointName=endpoint_name, ContentType=JSON, Accept=JSON, Body=body
            )
        except ClientError as error:
            response = error.response
            # ModelError carries the container's own status; other errors the runtime's.
            status = response.get("OriginalStatusCode") or response.get("ResponseMetadata", {}).get(
                "HTTPStatusCode", 500
            )
            message = response.get("Error", {}).get("Message", "")
            return int(status), f"{response.get('Error', {}).get('Code')}: {message}".encode()
        return 200, answer["Body"].read()

    return ask


def check(s3: Any, runtime: Any, endpoint_name: str, model_data_url: str) -> int:
    """The number of smoke-test cases the endpoint answered as at training; raises
    SmokeTestFailed, naming each difference, if any answer differs."""
    cases = smoke_cases(s3, model_data_url)
    found = failures(cases, asker(runtime, endpoint_name))
    if found:
        raise SmokeTestFailed(
            f"endpoint {endpoint_name} fails the smoke test of {model_data_url}: "
            f"{len(found)} of {len(cases)} answers differ from training's: " + "; ".join(found)
        )
    return len(cases)


def handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    endpoint_name = os.environ["ENDPOINT_NAME"]
    model_data_url = os.environ["MODEL_DATA_URL"]
    runtime = boto3.client(
        "sagemaker-runtime",
        # A scaled-in or cold endpoint may take a while; throttling retries in standard mode.
        config=Config(read_timeout=60, retries={"total_max_attempts": 4, "mode": "standard"}),
    )
    proven = check(boto3.client("s3"), runtime, endpoint_name, model_data_url)
    print(
        json.dumps(
            {
                "endpoint": endpoint_name,
                "training_job": os.environ.get("TRAINING_JOB_NAME"),
                "model": model_data_url,
                "proven": proven,
            }
        )
    )
    return {"proven": proven}
