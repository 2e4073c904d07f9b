"""Captured traffic in the synthesized stacks: who records it, where, for how long, with what grant.

A real-time endpoint records its own traffic (DataCaptureConfig); for a serverless endpoint,
which cannot, the prediction Lambda records it; sentiment:capturePercent 0 records nothing.
"""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk.assertions import Match
from cdk_stacks import context_with, joined, only, resources, synthesized

from contract.capture import CAPTURE_PREFIX

SERVERLESS = context_with(endpointMode="serverless", removalPolicy="destroy")
NO_CAPTURE = context_with(capturePercent=0)


def put_statements(template: dict[str, Any]) -> list[str]:
    """The resources of every s3:PutObject statement on captured traffic, rendered."""
    return [
        joined(statement["Resource"])
        for policy in resources(template, "AWS::IAM::Policy").values()
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        if statement["Action"] == "s3:PutObject"
        and joined(statement["Resource"]).endswith(f"/{CAPTURE_PREFIX}/*")
    ]


def prediction_function(template: dict[str, Any]) -> dict[str, Any]:
    return next(
        function["Properties"]
        for function in resources(template, "AWS::Lambda::Function").values()
        if function["Properties"].get("Handler") == "prediction.handler.handler"
    )


def test_a_realtime_endpoint_records_its_own_traffic_as_json() -> None:
    synthesized().template("model").has_resource_properties(
        "AWS::SageMaker::EndpointConfig",
        {
            "DataCaptureConfig": {
                "EnableCapture": True,
                "InitialSamplingPercentage": 100,
                "DestinationS3Uri": Match.any_value(),
                "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
                "CaptureContentTypeHeader": {"JsonContentTypes": ["application/json"]},
            }
        },
    )
    model = synthesized().template("model").to_json()
    config = only(model, "AWS::SageMaker::EndpointConfig")["DataCaptureConfig"]
    assert joined(config["DestinationS3Uri"]).startswith("s3://<")
    assert joined(config["DestinationS3Uri"]).endswith(f">/{CAPTURE_PREFIX}")
    # The endpoint's role alone may write there, and only there.
    (written,) = put_statements(model)
    assert "artifact-bucket-arn" in written
    assert put_statements(synthesized().template("web").to_json()) == []
    assert (
        "CAPTURE_DESTINATION"
        not in prediction_function(synthesized().template("web").to_json())["Environment"][
            "Variables"
        ]
    )


def test_for_a_serverless_endpoint_the_lambda_records_the_same_records() -> None:
    model = synthesized(SERVERLESS).template("model").to_json()
    web = synthesized(SERVERLESS).template("web").to_json()

    assert "DataCaptureConfig" not in only(model, "AWS::SageMaker::EndpointConfig")
    assert put_statements(model) == []
    variables = prediction_function(web)["Environment"]["Variables"]
    assert joined(variables["CAPTURE_DESTINATION"]).endswith(f">/{CAPTURE_PREFIX}")
    assert variables["CAPTURE_PERCENT"] == "100"
    (written,) = put_statements(web)
    assert "artifact-bucket-arn" in written


@pytest.mark.parametrize(
    "settings", [NO_CAPTURE, context_with(capturePercent=0, endpointMode="serverless")]
)
def test_a_share_of_zero_records_nothing_anywhere(settings: tuple) -> None:
    model = synthesized(settings).template("model").to_json()
    web = synthesized(settings).template("web").to_json()

    assert "DataCaptureConfig" not in only(model, "AWS::SageMaker::EndpointConfig")
    assert "CAPTURE_DESTINATION" not in prediction_function(web)["Environment"]["Variables"]
    assert put_statements(model) == put_statements(web) == []


def test_records_expire_after_the_configured_days() -> None:
    storage = synthesized(context_with(captureRetentionDays=7)).template("storage")

    storage.has_resource_properties(
        "AWS::S3::Bucket",
        {
            "LifecycleConfiguration": {
                "Rules": Match.array_with(
                    [
                        {
                            "Id": "ExpireCapturedTraffic",
                            "Prefix": f"{CAPTURE_PREFIX}/",
                            "ExpirationInDays": 7,
                            "NoncurrentVersionExpiration": {"NoncurrentDays": 1},
                            "Status": "Enabled",
                        }
                    ]
                )
            },
            "BucketEncryption": Match.any_value(),
            "PublicAccessBlockConfiguration": {
                "BlockPublicAcls": True,
                "BlockPublicPolicy": True,
                "IgnorePublicAcls": True,
                "RestrictPublicBuckets": True,
            },
        },
    )
