"""The SageMaker model, endpoint configuration and endpoint, with blue/green model updates.

A new ``ModelDataUrl`` replaces the model, which replaces the endpoint configuration, which
updates the endpoint in place (its name is stable): SageMaker brings up the new fleet, shifts
all traffic to it, and watches the rollback alarms for the baking period before it retires
the old fleet — rolling back by itself if one fires. Canary and linear shifting size their
steps in instances and rolling updates exclude serverless endpoints, so all-at-once with a
baking period is the policy that behaves the same in both endpoint modes. With shadow testing
on (stacks/shadow.py), a pinned model serves the production variant and the trained one a
shadow variant beside it.
"""

from __future__ import annotations

from pathlib import Path

from aws_cdk import Aws, Duration, Stack
from aws_cdk import aws_applicationautoscaling as autoscaling
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from contract import limits, serving_workers
from contract.api import ENDPOINT_VARIANT, SHADOW_VARIANT
from contract.capture import JSON_CONTENT_TYPES
from stacks.capture import grant_capture_writes
from stacks.config import (
    CaptureSettings,
    EndpointMode,
    EndpointSettings,
    PyTorchImages,
    ShadowSettings,
)
from stacks.images import ContainerImage, processor, pytorch_image
from stacks.instance_type_guard import InstanceTypeGuard
from stacks.permissions import sagemaker_execution_role
from stacks.shadow import ServedModel, served_models
from stacks.shared_buckets import BucketExport
from stacks.training import OUTPUT_PREFIX

INFERENCE_PROGRAM = "inference.py"
# model.tar.gz carries code/inference.py; these are the variables the SageMaker Python SDK
# sets for such a model, which the PyTorch serving container reads.
MODEL_CODE_DIRECTORY = "/opt/ml/model/code"
_MAX_DEPLOYMENT_SECONDS = 3600


def endpoint_metric(
    endpoint_name: str,
    metric_name: str,
    statistic: str,
    namespace: str = "AWS/SageMaker",
    variant: str = ENDPOINT_VARIANT,
) -> cloudwatch.Metric:
    return cloudwatch.Metric(
        namespace=namespace,
        metric_name=metric_name,
        dimensions_map={"EndpointName": endpoint_name, "VariantName": variant},
        statistic=statistic,
        period=Duration.minutes(1),
    )


class EndpointAlarms(Construct):
    """Invocation errors and model latency: they page people and they roll deployments back.

    4XX errors count too: the prediction Lambda validates every request before it reaches the
    endpoint, so a 4XX there means a new model rejects what the old one accepted. The same
    alarms watch a shadow variant (``variant``), where they only alert.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: EndpointSettings,
        variant: str = ENDPOINT_VARIANT,
    ) -> None:
        super().__init__(scope, construct_id)
        errors = {
            "ServerErrors": "Invocation5XXErrors",
            "ClientErrors": "Invocation4XXErrors",
        }
        where = settings.name if variant == ENDPOINT_VARIANT else f"{settings.name}, {variant}"

        def metric(name: str, statistic: str) -> cloudwatch.Metric:
            return endpoint_metric(settings.name, name, statistic, variant=variant)

        self.alarms: list[cloudwatch.Alarm] = [
            metric(name, "Sum").create_alarm(
                self,
                alarm_id,
                alarm_description=f"{name} on endpoint {where} two minutes running",
                threshold=1,
                evaluation_periods=2,
                datapoints_to_alarm=2,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            )
            for alarm_id, name in errors.items()
        ]
        self.alarms.append(
            # ModelLatency is reported in microseconds.
            metric("ModelLatency", "Average").create_alarm(
                self,
                "Latency",
                alarm_description=(
                    f"Average model latency on endpoint {where} above "
                    f"{settings.latency_alarm_ms} ms for three minutes"
                ),
                threshold=settings.latency_alarm_ms * 1000,
                evaluation_periods=3,
                datapoints_to_alarm=3,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            )
        )


def production_variant(
    settings: EndpointSettings, model: sagemaker.CfnModel, variant: str = ENDPOINT_VARIANT
) -> sagemaker.CfnEndpointConfig.ProductionVariantProperty:
    """The endpoint's production variant, or its shadow (``variant``): instances when
    real-time, a memory size when serverless (which hosts no shadow)."""
    if settings.mode is EndpointMode.REALTIME:
        return sagemaker.CfnEndpointConfig.ProductionVariantProperty(
            variant_name=variant,
            model_name=model.attr_model_name,
            instance_type=settings.instance_type,
            initial_instance_count=settings.min_instances,
            initial_variant_weight=1,
        )
    return sagemaker.CfnEndpointConfig.ProductionVariantProperty(
        variant_name=ENDPOINT_VARIANT,
        model_name=model.attr_model_name,
        serverless_config=sagemaker.CfnEndpointConfig.ServerlessConfigProperty(
            memory_size_in_mb=settings.serverless_memory_mb,
            max_concurrency=settings.serverless_max_concurrency,
        ),
    )


def data_capture(
    destination: str, percent: int
) -> sagemaker.CfnEndpointConfig.DataCaptureConfigProperty:
    """Requests and answers recorded by SageMaker, JSON kept as text (contract/capture.py)."""
    return sagemaker.CfnEndpointConfig.DataCaptureConfigProperty(
        enable_capture=True,
        initial_sampling_percentage=percent,
        destination_s3_uri=destination,
        capture_options=[
            sagemaker.CfnEndpointConfig.CaptureOptionProperty(capture_mode=mode)
            for mode in ("Input", "Output")
        ],
        capture_content_type_header=sagemaker.CfnEndpointConfig.CaptureContentTypeHeaderProperty(
            json_content_types=list(JSON_CONTENT_TYPES)
        ),
    )


class SentimentEndpoint(Construct):
    """Serves the ``trained`` model with the PyTorch inference container, or, with shadow
    testing on, a pinned one in production and the trained one as the shadow."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: EndpointSettings,
        images: PyTorchImages,
        artifacts: BucketExport,
        trained: ServedModel,
        capture: CaptureSettings,
        shadow: ShadowSettings,
        lambda_code_dir: Path,
        log_retention_days: int,
    ) -> None:
        super().__init__(scope, construct_id)
        realtime = settings.mode is EndpointMode.REALTIME
        # Serverless endpoints cannot capture: the prediction Lambda records their traffic.
        self.captures_traffic = realtime and capture.enabled
        image = pytorch_image(
            "inference", images, processor(settings.instance_type) if realtime else "cpu"
        )
        self.alarms = EndpointAlarms(self, "Alarms", settings=settings).alarms
        self.production, self.shadow = served_models(
            self, "PinnedModelBucket", trained=trained, shadow=shadow, artifacts=artifacts
        )
        self.shadow_variant = SHADOW_VARIANT if self.shadow else None
        # Not rollback alarms: a shadow's errors never reach a caller.
        self.shadow_alarms = (
            EndpointAlarms(self, "ShadowAlarms", settings=settings, variant=SHADOW_VARIANT).alarms
            if self.shadow
            else []
        )

        self.role = self._execution_role(settings, image, artifacts)
        model = self._model("Model", image, self.production.model_data_url, realtime)
        shadow_model = (
            self._model("ShadowModel", image, self.shadow.model_data_url, realtime)
            if self.shadow
            else None
        )
        # No explicit name: a changed configuration is a replacement, i.e. a new one.
        self.endpoint_config = sagemaker.CfnEndpointConfig(
            self,
            "Config",
            production_variants=[production_variant(settings, model)],
            shadow_production_variants=(
                [production_variant(settings, shadow_model, SHADOW_VARIANT)]
                if shadow_model
                else None
            ),
            data_capture_config=(
                data_capture(grant_capture_writes(self, self.role, artifacts), capture.percent)
                if self.captures_traffic
                else None
            ),
        )
        self.endpoint = sagemaker.CfnEndpoint(
            self,
            "Endpoint",
            endpoint_name=settings.name,
            endpoint_config_name=self.endpoint_config.attr_endpoint_config_name,
            deployment_config=self._blue_green_deployment(settings),
            # A new configuration would reset the fleet to its initial instance count, under
            # whatever load autoscaling had grown it for: keep the count (and weight) across
            # updates, but not the data capture, so a change to capture still applies.
            retain_all_variant_properties=True if realtime else None,
            exclude_retained_variant_properties=(
                [
                    sagemaker.CfnEndpoint.VariantPropertyProperty(
                        variant_property_type="DataCaptureConfig"
                    )
                ]
                if realtime
                else None
            ),
        )
        if realtime:
            # Runs before UpdateEndpoint: refuses a type change SageMaker would refuse.
            self.instance_type_guard = InstanceTypeGuard(
                self,
                "InstanceTypeGuard",
                settings=settings,
                code_dir=lambda_code_dir,
                log_retention_days=log_retention_days,
            )
            self.endpoint.node.add_dependency(self.instance_type_guard.resource)
        self.endpoint_name = settings.name
        self.endpoint_arn = Stack.of(self).format_arn(
            service="sagemaker", resource="endpoint", resource_name=settings.name
        )
        if realtime and settings.autoscaling:
            self._scale_on_invocations(settings)

    def _execution_role(
        self, settings: EndpointSettings, image: ContainerImage, artifacts: BucketExport
    ) -> iam.Role:
        role = sagemaker_execution_role(
            self,
            description="Runs the sentiment model's SageMaker endpoint",
            image=image,
            log_group_name=f"/aws/sagemaker/Endpoints/{settings.name}",
            log_stream_prefix="",
            metric_namespace="/aws/sagemaker/Endpoints",
        )
        artifacts.grant_objects(
            self,
            "ArtifactBucket",
            role,
            ["s3:GetObject"],
            f"{OUTPUT_PREFIX}*",
            "Reads the trained model.tar.gz, whose key the training job chooses at run time "
            "(with shadow testing, also the pinned job's).",
        )
        # SageMaker reads the rollback alarms' state with the endpoint's role.
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["cloudwatch:DescribeAlarms"],
                resources=[alarm.alarm_arn for alarm in self.alarms],
            )
        )
        return role

    def _model(
        self, construct_id: str, image: ContainerImage, model_data_url: str, realtime: bool
    ) -> sagemaker.CfnModel:
        model = sagemaker.CfnModel(
            self,
            construct_id,
            execution_role_arn=self.role.role_arn,
            # The artifact carries everything it imports (code/vendor/), so the container
            # needs no network; serverless endpoints do not support network isolation.
            enable_network_isolation=True if realtime else None,
            primary_container=sagemaker.CfnModel.ContainerDefinitionProperty(
                image=image.uri(self),
                model_data_url=model_data_url,
                environment={
                    "SAGEMAKER_PROGRAM": INFERENCE_PROGRAM,
                    "SAGEMAKER_SUBMIT_DIRECTORY": MODEL_CODE_DIRECTORY,
                    "SAGEMAKER_CONTAINER_LOG_LEVEL": "20",
                    "SAGEMAKER_REGION": Aws.REGION,
                    **limits.runtime_environment(),
                    **serving_workers.worker_environment(),
                },
            ),
        )
        model.node.add_dependency(self.role)
        return model

    def _blue_green_deployment(
        self, settings: EndpointSettings
    ) -> sagemaker.CfnEndpoint.DeploymentConfigProperty:
        """All traffic to the new fleet at once, rolled back if an alarm fires while the old
        one waits (the bake time)."""
        bake_seconds = settings.bake_minutes * 60
        return sagemaker.CfnEndpoint.DeploymentConfigProperty(
            blue_green_update_policy=sagemaker.CfnEndpoint.BlueGreenUpdatePolicyProperty(
                traffic_routing_configuration=sagemaker.CfnEndpoint.TrafficRoutingConfigProperty(
                    type="ALL_AT_ONCE"
                ),
                termination_wait_in_seconds=bake_seconds,
                maximum_execution_timeout_in_seconds=_MAX_DEPLOYMENT_SECONDS + bake_seconds,
            ),
            auto_rollback_configuration=sagemaker.CfnEndpoint.AutoRollbackConfigProperty(
                alarms=[
                    sagemaker.CfnEndpoint.AlarmProperty(alarm_name=alarm.alarm_name)
                    for alarm in self.alarms
                ]
            ),
        )

    def _scale_on_invocations(self, settings: EndpointSettings) -> None:
        # Application Auto Scaling creates its service-linked role for SageMaker on first use
        # when the template names it; the role is AWS-managed and scoped by the service.
        service_linked_role = iam.Role.from_role_arn(
            self,
            "ScalingRole",
            Stack.of(self).format_arn(
                service="iam",
                region="",
                resource="role",
                resource_name=(
                    "aws-service-role/sagemaker.application-autoscaling.amazonaws.com/"
                    "AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint"
                ),
            ),
            mutable=False,
        )
        target = autoscaling.ScalableTarget(
            self,
            "Scaling",
            service_namespace=autoscaling.ServiceNamespace.SAGEMAKER,
            resource_id=f"endpoint/{settings.name}/variant/{ENDPOINT_VARIANT}",
            scalable_dimension="sagemaker:variant:DesiredInstanceCount",
            min_capacity=settings.min_instances,
            max_capacity=settings.max_instances,
            role=service_linked_role,
        )
        target.node.add_dependency(self.endpoint)
        target.scale_to_track_metric(
            "InvocationsPerInstance",
            target_value=settings.invocations_per_instance,
            predefined_metric=autoscaling.PredefinedMetric.SAGEMAKER_VARIANT_INVOCATIONS_PER_INSTANCE,
            scale_out_cooldown=Duration.minutes(1),
            scale_in_cooldown=Duration.minutes(5),
        )
