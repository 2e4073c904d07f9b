"""The model stack: the training custom resource, the SageMaker model and the endpoint."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from aws_cdk.assertions import Match
from cdk_stacks import (
    context_with,
    granted_actions,
    joined,
    only,
    resources,
    role_statements,
    synthesized,
    training_request,
)

from contract import limits

SERVERLESS = context_with(endpointMode="serverless", removalPolicy="destroy")


@pytest.fixture(scope="module")
def model() -> dict[str, Any]:
    return synthesized().template("model").to_json()


@pytest.fixture(scope="module")
def serverless() -> dict[str, Any]:
    return synthesized(SERVERLESS).template("model").to_json()


def test_training_job_is_named_after_code_data_hyperparameters_and_image(
    model: dict[str, Any],
) -> None:
    app = synthesized()
    properties = only(model, "Custom::SageMakerTrainingJob")

    assert properties["TrainingJobName"] == app.stacks.model.training.job_name
    assert re.fullmatch(r"imdb-sentiment-[0-9a-f]{16}", properties["TrainingJobName"])


def test_training_request_runs_train_py_from_the_source_tarball(model: dict[str, Any]) -> None:
    request = training_request(model)
    hyperparameters = request["HyperParameters"]

    assert hyperparameters["sagemaker_program"] == "train.py"
    assert hyperparameters["sagemaker_submit_directory"].startswith("<")  # the asset's S3 URL
    assert "AWS::Region" in hyperparameters["sagemaker_region"]
    assert request["AlgorithmSpecification"]["TrainingImage"].endswith(
        "/pytorch-training:2.6.0-cpu-py312"
    )
    assert "'DlcAccounts'" in request["AlgorithmSpecification"]["TrainingImage"]


def test_the_images_account_is_looked_up_in_every_region_that_has_them(
    model: dict[str, Any],
) -> None:
    accounts = model["Mappings"]["DlcAccounts"]
    rule = model["Rules"]["SupportedRegion"]["Assertions"][0]

    # The regions the issue found missing from aws-cdk-lib's fact table, and GovCloud.
    for region in (
        "il-central-1",
        "ca-west-1",
        "af-south-1",
        "ap-northeast-3",
        "mx-central-1",
        "ap-southeast-5",
        "ap-southeast-7",
        "us-gov-west-1",
        "us-gov-east-1",
    ):
        assert re.fullmatch(r"\d{12}", accounts[region]["account"]), region
    assert not any(region.startswith("cn-") for region in accounts)
    assert rule["Assert"] == {"Fn::Contains": [sorted(accounts), {"Ref": "AWS::Region"}]}
    assert "il-central-1" in rule["AssertDescription"]


def test_a_stack_pinned_to_a_region_without_the_images_is_refused_at_synth() -> None:
    from aws_cdk import App, Environment, Stack

    from stacks.config import PyTorchImages
    from stacks.images import UnsupportedRegion, pytorch_image

    stack = Stack(App(), "Pinned", env=Environment(region="cn-north-1"))
    with pytest.raises(UnsupportedRegion, match="no AWS PyTorch images in cn-north-1"):
        pytorch_image("training", PyTorchImages(), "cpu").uri(stack)


def test_training_request_reads_every_channel_and_writes_the_artifact_bucket(
    model: dict[str, Any],
) -> None:
    request = training_request(model)
    prefix = synthesized().stacks.storage.upload.data.key_prefix

    channels = {channel["ChannelName"]: channel for channel in request["InputDataConfig"]}
    assert set(channels) == {"train", "validation", "test", "unlabeled"}
    for name, channel in channels.items():
        source = channel["DataSource"]["S3DataSource"]
        assert source["S3DataType"] == "S3Prefix"
        assert source["S3DataDistributionType"] == "FullyReplicated"
        assert source["S3Uri"].endswith(f"/{prefix}{name}/")
        assert "imdb-sentiment-data-bucket-name" in source["S3Uri"]
    assert request["OutputDataConfig"]["S3OutputPath"].endswith("/training-jobs/")
    assert request["CheckpointConfig"]["LocalPath"] == "/opt/ml/checkpoints"
    assert "artifact-bucket" in request["CheckpointConfig"]["S3Uri"]


def test_training_request_has_metrics_and_a_stopping_condition(model: dict[str, Any]) -> None:
    request = training_request(model)
    with open("model/metric_definitions.json") as definitions:
        expected = json.load(definitions)

    assert request["AlgorithmSpecification"]["MetricDefinitions"] == expected
    assert request["StoppingCondition"] == {"MaxRuntimeInSeconds": 50 * 60}
    assert request["EnableManagedSpotTraining"] is False
    assert request["ResourceConfig"] == {
        "InstanceType": "ml.m5.xlarge",
        "InstanceCount": 1,
        "VolumeSizeInGB": 30,
    }


def test_spot_training_waits_for_capacity_within_the_deployment() -> None:
    settings = context_with(
        trainingUseSpot=True, trainingMaxRuntimeMinutes=30, trainingMaxWaitMinutes=45
    )
    request = training_request(synthesized(settings).template("model").to_json())

    assert request["EnableManagedSpotTraining"] is True
    assert request["StoppingCondition"] == {
        "MaxRuntimeInSeconds": 30 * 60,
        "MaxWaitTimeInSeconds": 45 * 60,
    }


def test_provider_polls_within_the_one_hour_ceiling(model: dict[str, Any]) -> None:
    machine = only(model, "AWS::StepFunctions::StateMachine")
    definition = joined(machine["DefinitionString"])

    retry = re.search(r'"IntervalSeconds":(\d+),"MaxAttempts":(\d+)', definition)
    assert retry is not None
    interval, attempts = map(int, retry.groups())
    assert interval == 60
    assert interval * attempts == 60 * 60
    assert machine["LoggingConfiguration"]["Level"] == "ALL"


def test_handlers_are_python_312_from_lambda_src(model: dict[str, Any]) -> None:
    handlers = {
        function["Properties"]["Handler"]: function["Properties"]
        for function in resources(model, "AWS::Lambda::Function").values()
        if function["Properties"]["Handler"].startswith("training_job.")
    }

    assert set(handlers) == {"training_job.on_event", "training_job.is_complete"}
    assert {properties["Runtime"] for properties in handlers.values()} == {"python3.12"}


def test_model_serves_model_data_from_the_training_job(model: dict[str, Any]) -> None:
    container = only(model, "AWS::SageMaker::Model")["PrimaryContainer"]
    training_id = next(iter(resources(model, "Custom::SageMakerTrainingJob")))

    assert container["ModelDataUrl"] == {"Fn::GetAtt": [training_id, "ModelDataUrl"]}
    assert joined(container["Image"]).endswith("/pytorch-inference:2.6.0-cpu-py312")
    assert container["Environment"]["SAGEMAKER_PROGRAM"] == "inference.py"
    assert container["Environment"]["SAGEMAKER_SUBMIT_DIRECTORY"] == "/opt/ml/model/code"
    assert container["Environment"]["SAGEMAKER_REGION"] == {"Ref": "AWS::Region"}
    assert container["Environment"]["MAX_REVIEW_CHARS"] == str(limits.MAX_REVIEW_CHARS)
    # A model-server worker per vCPU, each on one torch thread (contract/serving_workers.py).
    assert container["Environment"]["OMP_NUM_THREADS"] == "1"


def test_realtime_endpoint_config_and_autoscaling(model: dict[str, Any]) -> None:
    (variant,) = only(model, "AWS::SageMaker::EndpointConfig")["ProductionVariants"]
    target = only(model, "AWS::ApplicationAutoScaling::ScalableTarget")
    policy = only(model, "AWS::ApplicationAutoScaling::ScalingPolicy")

    assert variant["InstanceType"] == "ml.m5.large"
    assert variant["InitialInstanceCount"] == 1
    assert "ServerlessConfig" not in variant
    assert target["ResourceId"] == "endpoint/imdb-sentiment/variant/AllTraffic"
    assert target["ScalableDimension"] == "sagemaker:variant:DesiredInstanceCount"
    assert (target["MinCapacity"], target["MaxCapacity"]) == (1, 2)
    tracking = policy["TargetTrackingScalingPolicyConfiguration"]
    assert tracking["PredefinedMetricSpecification"]["PredefinedMetricType"] == (
        "SageMakerVariantInvocationsPerInstance"
    )
    assert tracking["TargetValue"] == 300


def test_serverless_endpoint_config_has_no_instances_to_scale(
    serverless: dict[str, Any],
) -> None:
    (variant,) = only(serverless, "AWS::SageMaker::EndpointConfig")["ProductionVariants"]

    assert variant["ServerlessConfig"] == {"MemorySizeInMB": 2048, "MaxConcurrency": 5}
    assert "InstanceType" not in variant
    assert not resources(serverless, "AWS::ApplicationAutoScaling::ScalableTarget")


@pytest.mark.parametrize("mode", ["realtime", "serverless"])
def test_endpoint_has_a_stable_name_and_blue_green_rollback(
    mode: str, model: dict[str, Any], serverless: dict[str, Any]
) -> None:
    template = model if mode == "realtime" else serverless
    endpoint = only(template, "AWS::SageMaker::Endpoint")
    alarms = resources(template, "AWS::CloudWatch::Alarm")
    deployment = endpoint["DeploymentConfig"]

    assert endpoint["EndpointName"] == "imdb-sentiment"
    assert deployment["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"] == {
        "Type": "ALL_AT_ONCE"
    }
    assert deployment["BlueGreenUpdatePolicy"]["TerminationWaitInSeconds"] == 600
    rollback = [alarm["AlarmName"] for alarm in deployment["AutoRollbackConfiguration"]["Alarms"]]
    assert rollback == [{"Ref": logical_id} for logical_id in alarms]
    metrics = {alarm["Properties"]["MetricName"] for alarm in alarms.values()}
    assert metrics == {"Invocation5XXErrors", "Invocation4XXErrors", "ModelLatency"}


def test_an_update_keeps_the_autoscaled_fleet_but_applies_a_capture_change(
    model: dict[str, Any], serverless: dict[str, Any]
) -> None:
    endpoint = only(model, "AWS::SageMaker::Endpoint")

    assert endpoint["RetainAllVariantProperties"] is True
    assert endpoint["ExcludeRetainedVariantProperties"] == [
        {"VariantPropertyType": "DataCaptureConfig"}
    ]
    # A serverless variant has no instance count to keep.
    assert "RetainAllVariantProperties" not in only(serverless, "AWS::SageMaker::Endpoint")


def test_autoscaling_can_be_off_for_the_deployment_that_changes_the_instance_type() -> None:
    template = synthesized(
        context_with(endpointAutoscaling=False, endpointInstanceType="ml.c5.large")
    ).template("model")

    template.resource_count_is("AWS::ApplicationAutoScaling::ScalableTarget", 0)
    template.resource_count_is("AWS::ApplicationAutoScaling::ScalingPolicy", 0)


def test_the_realtime_model_runs_without_a_network_and_the_serverless_one_may(
    model: dict[str, Any], serverless: dict[str, Any]
) -> None:
    assert only(model, "AWS::SageMaker::Model")["EnableNetworkIsolation"] is True
    # Serverless endpoints do not support network isolation.
    assert "EnableNetworkIsolation" not in only(serverless, "AWS::SageMaker::Model")


def test_the_training_waiters_logs_are_vended_logs(model: dict[str, Any]) -> None:
    machine = only(model, "AWS::StepFunctions::StateMachine")
    (destination,) = machine["LoggingConfiguration"]["Destinations"]
    group_id = destination["CloudWatchLogsLogGroup"]["LogGroupArn"]["Fn::GetAtt"][0]

    assert model["Resources"][group_id]["Properties"]["LogGroupName"] == (
        "/aws/vendedlogs/states/imdb-sentiment-training-waiter"
    )


def test_a_new_model_means_a_new_endpoint_config(model: dict[str, Any]) -> None:
    # No fixed names: a changed model or config is a replacement, i.e. a new resource that
    # the endpoint moves to blue/green.
    assert "ModelName" not in only(model, "AWS::SageMaker::Model")
    assert "EndpointConfigName" not in only(model, "AWS::SageMaker::EndpointConfig")


def smoke_trigger(template: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The smoke-test trigger and its function's properties."""
    (trigger,) = resources(template, "Custom::Trigger").values()
    function = next(
        function["Properties"]
        for function in resources(template, "AWS::Lambda::Function").values()
        if function["Properties"].get("Handler") == "smoke_check.handler.handler"
    )
    return trigger, function


def test_each_new_model_is_asked_its_smoke_test_once_the_endpoint_serves_it(
    model: dict[str, Any],
) -> None:
    trigger, function = smoke_trigger(model)
    endpoint = next(iter(resources(model, "AWS::SageMaker::Endpoint")))
    version = trigger["Properties"]["HandlerArn"]["Ref"]
    retrained = synthesized(context_with(hyperparameters={"epochs": 3})).template("model")
    retrained_trigger, retrained_function = smoke_trigger(retrained.to_json())

    assert endpoint in trigger["DependsOn"]
    assert model["Resources"][version]["Type"] == "AWS::Lambda::Version"
    variables = function["Environment"]["Variables"]
    assert variables["ENDPOINT_NAME"] == "imdb-sentiment"
    assert "ModelDataUrl" in joined(variables["MODEL_DATA_URL"])
    assert variables["TRAINING_JOB_NAME"] == synthesized().stacks.model.training.job_name
    # A new model is a new function version: the trigger runs again.
    assert (
        retrained_function["Environment"]["Variables"]["TRAINING_JOB_NAME"]
        != (variables["TRAINING_JOB_NAME"])
    )
    assert retrained_trigger["Properties"]["HandlerArn"]["Ref"] != version


def test_the_smoke_check_may_ask_the_endpoint_and_read_model_artifacts_only(
    model: dict[str, Any],
) -> None:
    granted = granted_actions(synthesized().stacks.model.smoke_test.handler.role)

    assert set(granted) == {
        "sagemaker:InvokeEndpoint",
        "s3:GetObject",
        "logs:CreateLogStream+logs:PutLogEvents",
    }
    assert granted["sagemaker:InvokeEndpoint"].endswith(":endpoint/imdb-sentiment")
    assert granted["s3:GetObject"].endswith("/training-jobs/*")


SERVING_MODELS = "training-jobs/imdb-sentiment-*/output/model.tar.gz"


def test_the_training_role_may_read_the_serving_model_for_the_promotion_gate() -> None:
    template = synthesized().template("model")
    role = {"Ref": Match.string_like_regexp("^TrainingExecutionRole")}
    artifact_bucket = {"Fn::ImportValue": "imdb-sentiment-artifact-bucket-arn"}

    def has_statement(statement: dict) -> None:
        template.has_resource_properties(
            "AWS::IAM::Policy",
            {
                "Roles": [role],
                "PolicyDocument": {"Statement": Match.array_with([Match.object_like(statement)])},
            },
        )

    # The serving channel: SageMaker lists its prefix (the artifact's exact key) and reads it.
    has_statement(
        {
            "Action": "s3:GetObject",
            "Resource": Match.array_with(
                [{"Fn::Join": ["", [artifact_bucket, f"/{SERVING_MODELS}"]]}]
            ),
        }
    )
    has_statement(
        {
            "Action": "s3:ListBucket",
            "Resource": artifact_bucket,
            "Condition": {"StringLike": {"s3:prefix": [SERVING_MODELS]}},
        }
    )


def test_the_training_role_reads_model_artifacts_and_nothing_else_of_other_jobs() -> None:
    statements = role_statements(synthesized().stacks.model.training.role)
    read = [
        joined(resource)
        for statement in statements
        if "s3:GetObject" in statement["Action"]
        for resource in (
            statement["Resource"]
            if isinstance(statement["Resource"], list)
            else [statement["Resource"]]
        )
        if "training-jobs" in joined(resource)
    ]

    assert read == [
        f'<{{"Fn::ImportValue": "imdb-sentiment-artifact-bucket-arn"}}>/{SERVING_MODELS}'
    ]


def test_the_gates_settings_reach_train_py_but_not_the_job_name(model: dict[str, Any]) -> None:
    forced = synthesized(context_with(forcePromotion=True, promotionTolerance=0.02))
    forced_model = forced.template("model").to_json()

    default = training_request(model)["HyperParameters"]
    assert (default["promotion-tolerance"], default["force-promotion"]) == ("0.01", "false")
    hyperparameters = training_request(forced_model)["HyperParameters"]
    assert (hyperparameters["promotion-tolerance"], hyperparameters["force-promotion"]) == (
        "0.02",
        "true",
    )
    # They decide what is accepted, not what is trained: forcing retrains nothing by itself.
    assert forced.stacks.model.training.job_name == synthesized().stacks.model.training.job_name
