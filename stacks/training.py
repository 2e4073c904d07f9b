"""The SageMaker training job, run as a CloudFormation custom resource.

The job's name is a hash of code, data, hyperparameters and image (stacks/fingerprint.py):
the custom resource sees a new name exactly when one of those changed, and only then trains.
The promotion gate's two hyperparameters stay out of the hash: they decide whether a model is
accepted, not what is trained. On a retraining, the custom resource hands the job the serving
model's artifact (lambda_src/training_job.py), which the training role may read.
The handlers live in lambda_src/training_job.py; the CDK Provider framework polls
``is_complete`` until the job ends, for at most one hour (its ceiling, and CloudFormation's
custom-resource timeout). The module holds the request, the construct and its Provider,
each short; together they are over the project's usual 300 lines.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aws_cdk import Aws, CustomResource, Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import custom_resources as cr
from constructs import Construct

from contract.packaging import file_sha256
from stacks.compliance import acknowledge
from stacks.config import SentimentConfig, TrainingSettings
from stacks.fingerprint import training_fingerprint, training_job_name
from stacks.functions import PythonFunction, acknowledge_provider_framework
from stacks.images import processor, pytorch_image
from stacks.log_groups import log_group, vended_log_group
from stacks.permissions import sagemaker_execution_role
from stacks.shared_buckets import SharedBuckets
from stacks.storage import PreparedData

OUTPUT_PREFIX = "training-jobs/"
# Where SageMaker puts a job's model: <output path><job name>/output/model.tar.gz.
MODEL_ARTIFACT_SUFFIX = "/output/model.tar.gz"
CHECKPOINT_PREFIX = "checkpoints/"
CHECKPOINT_LOCAL_PATH = "/opt/ml/checkpoints"
ENTRY_POINT = "train.py"


def load_metric_definitions(path: Path) -> list[dict[str, str]]:
    """SageMaker MetricDefinitions, kept beside the training script that prints them."""
    definitions = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(definitions, list) or not all(
        isinstance(item, dict) and set(item) == {"Name", "Regex"} for item in definitions
    ):
        raise ValueError(f"{path}: expected a list of {{'Name': ..., 'Regex': ...}} objects")
    return definitions


def training_request(
    settings: TrainingSettings,
    *,
    image_uri: str,
    role_arn: str,
    source_url: str,
    channels: dict[str, str],
    artifacts_url: Callable[[str], str],
    metric_definitions: list[dict[str, str]],
) -> dict[str, Any]:
    """The CreateTrainingJob request: `channels` maps each input channel to its S3 prefix,
    `artifacts_url` a key prefix in the artifact bucket to its S3 URL."""
    return {
        "AlgorithmSpecification": {
            "TrainingImage": image_uri,
            "TrainingInputMode": "File",
            "MetricDefinitions": metric_definitions,
        },
        "RoleArn": role_arn,
        "HyperParameters": {
            "sagemaker_program": ENTRY_POINT,
            "sagemaker_submit_directory": source_url,
            "sagemaker_region": Aws.REGION,
            **settings.hyperparameters,
            **settings.gate_hyperparameters,
        },
        "InputDataConfig": [
            {
                "ChannelName": channel,
                "DataSource": {
                    "S3DataSource": {
                        "S3DataType": "S3Prefix",
                        "S3Uri": url,
                        "S3DataDistributionType": "FullyReplicated",
                    }
                },
            }
            for channel, url in channels.items()
        ],
        "OutputDataConfig": {"S3OutputPath": artifacts_url(OUTPUT_PREFIX)},
        "ResourceConfig": {
            "InstanceType": settings.instance_type,
            "InstanceCount": 1,
            "VolumeSizeInGB": settings.volume_size_gb,
        },
        "StoppingCondition": {
            "MaxRuntimeInSeconds": settings.max_runtime_minutes * 60,
            **(
                {"MaxWaitTimeInSeconds": settings.max_wait_minutes * 60}
                if settings.use_spot
                else {}
            ),
        },
        "EnableManagedSpotTraining": settings.use_spot,
        # The handler appends the job name: each job resumes only its own checkpoints.
        "CheckpointConfig": {
            "S3Uri": artifacts_url(CHECKPOINT_PREFIX),
            "LocalPath": CHECKPOINT_LOCAL_PATH,
        },
    }


class TrainingJob(Construct):
    """Trains the model from ``model/`` on the prepared data; exposes ``model_data_url``."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: SentimentConfig,
        buckets: SharedBuckets,
        data: PreparedData,
        source_tarball: Path,
        metric_definitions: list[dict[str, str]],
        lambda_code_dir: Path,
    ) -> None:
        super().__init__(scope, construct_id)
        settings = config.training
        image = pytorch_image("training", config.images, processor(settings.instance_type))
        source = s3_assets.Asset(self, "SourceDir", path=str(source_tarball))
        fingerprint = training_fingerprint(
            code_sha256=file_sha256(source_tarball),
            data_sha256=data.sha256,
            hyperparameters=settings.hyperparameters,
            image=image.name,
        )
        self.job_name = training_job_name(config.name_prefix, fingerprint)

        self.role = sagemaker_execution_role(
            self,
            description="Runs the sentiment model's SageMaker training jobs",
            image=image,
            log_group_name="/aws/sagemaker/TrainingJobs",
            log_stream_prefix=f"{config.name_prefix}-",
            metric_namespace="/aws/sagemaker/TrainingJobs",
        )
        data_bucket = buckets.data.bucket(self, "DataBucket")
        artifacts_bucket = buckets.artifacts.bucket(self, "ArtifactBucket")
        serving_models = f"{OUTPUT_PREFIX}{config.name_prefix}-*{MODEL_ARTIFACT_SUFFIX}"
        self._grant_data_access(data_bucket, data, artifacts_bucket, source, serving_models)
        object_access = "Objects under one key prefix: their names are only known at run time."
        for finding in (
            buckets.data.objects_finding(f"{data.key_prefix}*"),
            buckets.artifacts.objects_finding(f"{CHECKPOINT_PREFIX}*"),
            buckets.artifacts.objects_finding(f"{OUTPUT_PREFIX}*"),
        ):
            acknowledge(self.role, finding, object_access)
        acknowledge(
            self.role,
            buckets.artifacts.objects_finding(serving_models),
            "The promotion gate reads the serving model, the model.tar.gz of an earlier job "
            "of this app; which job is known only when the deployment runs.",
        )

        request = training_request(
            settings,
            image_uri=image.uri(self),
            role_arn=self.role.role_arn,
            source_url=source.s3_object_url,
            channels={
                channel: data_bucket.s3_url_for_object(f"{data.key_prefix}{channel}/")
                for channel in data.channels
            },
            artifacts_url=artifacts_bucket.s3_url_for_object,
            metric_definitions=metric_definitions,
        )
        provider = self._provider(config, lambda_code_dir)
        self.resource = CustomResource(
            self,
            "Resource",
            service_token=provider.service_token,
            resource_type="Custom::SageMakerTrainingJob",
            properties={
                "TrainingJobName": self.job_name,
                "TrainingJobRequest": Stack.of(self).to_json_string(request),
                # With shadow testing, the model to beat is the pinned production one, not
                # the previous job's (the shadow's): lambda_src/training_job.py.
                **(
                    {"ServingTrainingJobName": config.shadow.production_training_job}
                    if config.shadow.shadows(self.job_name)
                    else {}
                ),
            },
            # Deleting the resource stops a running job; the artifacts always stay.
            removal_policy=RemovalPolicy.DESTROY,
        )
        # The job starts only once its role can read the data and write the artifacts.
        self.resource.node.add_dependency(self.role)
        self.model_data_url = self.resource.get_att_string("ModelDataUrl")

    def _grant_data_access(
        self,
        data_bucket: s3.IBucket,
        data: PreparedData,
        artifacts_bucket: s3.IBucket,
        source: s3_assets.Asset,
        serving_models: str,
    ) -> None:
        statements = [
            iam.PolicyStatement(
                actions=["s3:GetObject"],
                resources=[
                    data_bucket.arn_for_objects(f"{data.key_prefix}*"),
                    artifacts_bucket.arn_for_objects(f"{CHECKPOINT_PREFIX}*"),
                    f"arn:{Aws.PARTITION}:s3:::{source.s3_bucket_name}/{source.s3_object_key}",
                ],
            ),
            iam.PolicyStatement(
                actions=["s3:ListBucket"],
                resources=[data_bucket.bucket_arn],
                conditions={"StringLike": {"s3:prefix": [f"{data.key_prefix}*"]}},
            ),
            iam.PolicyStatement(
                actions=["s3:ListBucket"],
                resources=[artifacts_bucket.bucket_arn],
                conditions={"StringLike": {"s3:prefix": [f"{CHECKPOINT_PREFIX}*"]}},
            ),
            # The promotion gate's "serving" channel: SageMaker lists the channel's prefix
            # (the artifact's exact key) and downloads it. Model artifacts only, read only.
            iam.PolicyStatement(
                actions=["s3:GetObject"],
                resources=[artifacts_bucket.arn_for_objects(serving_models)],
            ),
            iam.PolicyStatement(
                actions=["s3:ListBucket"],
                resources=[artifacts_bucket.bucket_arn],
                conditions={"StringLike": {"s3:prefix": [serving_models]}},
            ),
            iam.PolicyStatement(
                actions=["s3:PutObject", "s3:AbortMultipartUpload"],
                resources=[
                    artifacts_bucket.arn_for_objects(f"{OUTPUT_PREFIX}*"),
                    artifacts_bucket.arn_for_objects(f"{CHECKPOINT_PREFIX}*"),
                ],
            ),
        ]
        for statement in statements:
            self.role.add_to_principal_policy(statement)

    def _provider(self, config: SentimentConfig, code_dir: Path) -> cr.Provider:
        settings = config.training
        common = {
            "code_dir": code_dir,
            "log_retention_days": config.log_retention_days,
            "timeout": Duration.minutes(1),
        }
        on_event = PythonFunction(
            self,
            "OnEvent",
            handler="training_job.on_event",
            description="Starts, adopts or stops the SageMaker training job",
            **common,
        )
        is_complete = PythonFunction(
            self,
            "IsComplete",
            handler="training_job.is_complete",
            description="Reports whether the SageMaker training job has finished",
            **common,
        )
        jobs = Stack.of(self).format_arn(
            service="sagemaker", resource="training-job", resource_name=f"{config.name_prefix}-*"
        )
        jobs_finding = (
            "arn:<AWS::Partition>:sagemaker:<AWS::Region>:<AWS::AccountId>:"
            f"training-job/{config.name_prefix}-*"
        )
        on_event.role.add_to_policy(
            iam.PolicyStatement(
                actions=[
                    "sagemaker:CreateTrainingJob",
                    "sagemaker:DescribeTrainingJob",
                    "sagemaker:StopTrainingJob",
                ],
                resources=[jobs],
            )
        )
        on_event.role.add_to_policy(
            iam.PolicyStatement(
                actions=["iam:PassRole"],
                resources=[self.role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
            )
        )
        is_complete.role.add_to_policy(
            iam.PolicyStatement(actions=["sagemaker:DescribeTrainingJob"], resources=[jobs])
        )
        framework_logs = log_group(self, "ProviderLogs", config.log_retention_days)
        provider = cr.Provider(
            self,
            "Provider",
            on_event_handler=on_event.function,
            is_complete_handler=is_complete.function,
            query_interval=Duration.seconds(settings.poll_interval_seconds),
            total_timeout=Duration.minutes(settings.wait_timeout_minutes),
            log_group=framework_logs,
            disable_waiter_state_machine_logging=False,
            waiter_state_machine_log_options=cr.LogOptions(
                destination=vended_log_group(
                    self,
                    "WaiterLogs",
                    config.log_retention_days,
                    f"states/{config.name_prefix}-training-waiter",
                ),
                level=sfn.LogLevel.ALL,
                include_execution_data=False,
            ),
        )
        acknowledge(
            on_event.role,
            f"AwsSolutions-IAM5[Resource::{jobs_finding}]",
            "Job names are content hashes known at deploy time; the name prefix scopes the "
            "policy to this app's training jobs.",
        )
        acknowledge(
            is_complete.role,
            f"AwsSolutions-IAM5[Resource::{jobs_finding}]",
            "Polls this app's training jobs, whose names share the prefix.",
        )
        self._acknowledge_framework(provider, [on_event.function, is_complete.function])
        return provider

    @staticmethod
    def _acknowledge_framework(provider: cr.Provider, handlers: list[lambda_.Function]) -> None:
        """The Provider framework's own functions and waiter are aws-cdk-lib's code."""
        acknowledge_provider_framework(provider, handlers)
        acknowledge(
            provider,
            "AwsSolutions-IAM5[Resource::*]",
            "The waiter's log delivery uses CloudWatch Logs' vended-log actions "
            "(logs:CreateLogDelivery and related), which take no resource.",
        )
        acknowledge(
            provider,
            "AwsSolutions-SF2",
            "The Provider framework's waiter state machine has no tracing option; its "
            "executions are logged in full to the provider's log group.",
        )
