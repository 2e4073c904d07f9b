"""The three stacks of the app and how they are put together.

- storage: the data, model-artifact and access-log buckets, and the dataset upload. Retained
  on deletion by default, so it outlives everything else.
- model: the training job, the SageMaker model and the endpoint (with its rollback alarms).
- web: the prediction API, the web page and the serving-path monitoring.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from aws_cdk import App, CfnOutput, Stack
from constructs import Construct

from contract.packaging import (
    build_lambda_asset,
    build_training_source,
    tokenizer_package_members,
)
from stacks.config import SentimentConfig
from stacks.drift_monitor import DriftMonitor
from stacks.fingerprint import directory_sha256
from stacks.monitoring import ServingMonitoring
from stacks.prediction_api import FeedbackRoute, PredictionRoute, PublicApi
from stacks.prediction_records import PredictionRecords
from stacks.serving import SentimentEndpoint
from stacks.shadow import ServedModel
from stacks.shared_buckets import SharedBuckets
from stacks.smoke_test import DeploymentSmokeTest
from stacks.storage import PreparedData, PreparedDataUpload, Storage, check_prepared_data
from stacks.training import TrainingJob, load_metric_definitions
from stacks.website import Website


@dataclass(frozen=True)
class AppInputs:
    """What the stacks are built from, besides the configuration."""

    prepared_data: PreparedData
    source_tarball: Path
    frontend_dir: Path
    metric_definitions: list[dict[str, str]]
    lambda_code_dir: Path
    # The same, with the packages the drift function needs to run the model's tokenizer.
    drift_code_dir: Path


class FrontendMissing(FileNotFoundError):
    """The web page's files are not where the app expects them."""


def gather_inputs(
    config: SentimentConfig, *, model_source_dir: Path, frontend_dir: Path, build_dir: Path
) -> AppInputs:
    """Check the inputs on disk, package the training code and hash the data."""
    check_prepared_data(config.prepared_data_dir)
    if not (frontend_dir / "index.html").is_file():
        raise FrontendMissing(f"{frontend_dir / 'index.html'} is missing")
    return AppInputs(
        prepared_data=PreparedData(
            directory=config.prepared_data_dir,
            sha256=directory_sha256(config.prepared_data_dir),
        ),
        source_tarball=build_training_source(build_dir / "sourcedir.tar.gz", model_source_dir),
        frontend_dir=frontend_dir,
        metric_definitions=load_metric_definitions(model_source_dir / "metric_definitions.json"),
        lambda_code_dir=build_lambda_asset(build_dir / "lambda"),
        drift_code_dir=build_lambda_asset(build_dir / "lambda-drift", tokenizer_package_members()),
    )


class StorageStack(Stack):
    def __init__(
        self, scope: Construct, construct_id: str, *, config: SentimentConfig, data: PreparedData
    ) -> None:
        super().__init__(
            scope,
            construct_id,
            stack_name=f"{config.name_prefix}-storage",
            description="IMDB sentiment: data, model-artifact and access-log buckets",
        )
        self.storage = Storage(
            self,
            "Buckets",
            retain=config.retains_storage,
            capture_retention_days=config.capture.retention_days,
            feedback_retention_days=config.feedback.retention_days,
        )
        self.upload = PreparedDataUpload(self, "PreparedData", bucket=self.storage.data, data=data)
        shared = SharedBuckets.for_prefix(config.name_prefix)
        shared.data.publish(self, "DataBucket", self.storage.data)
        shared.artifacts.publish(self, "ModelArtifactBucket", self.storage.artifacts)
        shared.access_logs.publish(self, "AccessLogBucket", self.storage.access_logs)
        CfnOutput(
            self,
            "PreparedDataUri",
            value=self.storage.data.s3_url_for_object(data.key_prefix),
        )


class ModelStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: SentimentConfig,
        storage: StorageStack,
        inputs: AppInputs,
    ) -> None:
        super().__init__(
            scope,
            construct_id,
            stack_name=f"{config.name_prefix}-model",
            description="IMDB sentiment: SageMaker training job, model and endpoint",
        )
        buckets = SharedBuckets.for_prefix(config.name_prefix)
        self.training = TrainingJob(
            self,
            "Training",
            config=config,
            buckets=buckets,
            data=inputs.prepared_data,
            source_tarball=inputs.source_tarball,
            metric_definitions=inputs.metric_definitions,
            lambda_code_dir=inputs.lambda_code_dir,
        )
        self.endpoint = SentimentEndpoint(
            self,
            "Serving",
            settings=config.endpoint,
            images=config.images,
            artifacts=buckets.artifacts,
            trained=ServedModel(self.training.job_name, self.training.model_data_url),
            capture=config.capture,
            shadow=config.shadow,
            lambda_code_dir=inputs.lambda_code_dir,
            log_retention_days=config.log_retention_days,
        )
        # What callers are answered by: with shadow testing on, the pinned job's model.
        production = self.endpoint.production
        self.smoke_test = DeploymentSmokeTest(
            self,
            "SmokeTest",
            endpoint=self.endpoint,
            model_data_url=production.model_data_url,
            training_job_name=production.job_name,
            artifacts=buckets.artifacts,
            code_dir=inputs.lambda_code_dir,
            log_retention_days=config.log_retention_days,
        )
        # The buckets are imported by export name, and the data must be in S3 before the
        # job reads it.
        self.add_stack_dependency(storage)
        trained_job = self.training.resource.get_att_string("TrainingJobName")
        CfnOutput(self, "TrainingJobName", value=trained_job)
        CfnOutput(self, "ModelDataUrl", value=self.training.model_data_url)
        # Shadow testing pins the first and promotes by pinning the second (README).
        CfnOutput(
            self,
            "ProductionTrainingJobName",
            value=production.job_name if self.endpoint.shadow else trained_job,
            description="The training job whose model answers callers",
        )
        if self.endpoint.shadow:
            CfnOutput(
                self,
                "ShadowTrainingJobName",
                value=trained_job,
                description="The training job whose model answers a copy of each request, "
                "unseen; pin it as sentiment:productionTrainingJob to promote it",
            )
        CfnOutput(self, "EndpointName", value=self.endpoint.endpoint.attr_endpoint_name)


class WebStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: SentimentConfig,
        storage: StorageStack,
        model: ModelStack,
        inputs: AppInputs,
    ) -> None:
        super().__init__(
            scope,
            construct_id,
            stack_name=f"{config.name_prefix}-web",
            description="IMDB sentiment: prediction API, web page and monitoring",
        )
        # API first, then the page (it needs the API's origin and URL), then the route (it
        # needs the page's origin): see stacks/prediction_api.py.
        self.api = PublicApi(
            self, "Api", settings=config.api, log_retention_days=config.log_retention_days
        )
        self.website = Website(
            self,
            "Website",
            frontend_dir=inputs.frontend_dir,
            api_origin=self.api.origin,
            api_url=self.api.predict_url,
            access_logs=SharedBuckets.for_prefix(config.name_prefix).access_logs.bucket(
                self, "AccessLogBucket"
            ),
            capture_retention_days=(
                config.capture.retention_days if config.capture.enabled else None
            ),
            feedback_url=self.api.feedback_url if config.feedback.enabled else None,
            feedback_retention_days=config.feedback.retention_days,
        )
        # Feedback names a prediction the server keeps, for as long as its captured record.
        self.records = (
            PredictionRecords(self, "Predictions", retention_days=config.capture.retention_days)
            if config.feedback.enabled
            else None
        )
        artifacts = SharedBuckets.for_prefix(config.name_prefix).artifacts
        endpoint = model.endpoint
        self.route = PredictionRoute(
            self,
            "Predict",
            api=self.api,
            endpoint_name=endpoint.endpoint_name,
            endpoint_arn=endpoint.endpoint_arn,
            allowed_origin=self.website.origin,
            log_retention_days=config.log_retention_days,
            code_dir=inputs.lambda_code_dir,
            # The endpoint records its own traffic when it can; else the Lambda does.
            capture=(
                config.capture if config.capture.enabled and not endpoint.captures_traffic else None
            ),
            artifacts=artifacts,
            records=self.records,
        )
        if self.records is not None:
            self.feedback = FeedbackRoute(
                self,
                "Feedback",
                api=self.api,
                allowed_origin=self.website.origin,
                log_retention_days=config.log_retention_days,
                code_dir=inputs.lambda_code_dir,
                artifacts=artifacts,
                records=self.records,
                settings=config.feedback,
            )
        # Nothing to watch when nothing is captured.
        self.drift = (
            DriftMonitor(
                self,
                "Drift",
                settings=config.drift,
                endpoint_name=endpoint.endpoint_name,
                # The model whose answers callers get, and whose traffic the report reads.
                model_data_url=endpoint.production.model_data_url,
                artifacts=SharedBuckets.for_prefix(config.name_prefix).artifacts,
                code_dir=inputs.drift_code_dir,
                log_retention_days=config.log_retention_days,
            )
            if config.capture.enabled
            else None
        )
        self.monitoring = ServingMonitoring(
            self,
            "Monitoring",
            rest_api=self.api.rest_api,
            function=self.route.function,
            endpoint_name=endpoint.endpoint_name,
            endpoint_alarms=endpoint.alarms,
            drift=self.drift,
            shadow_variant=endpoint.shadow_variant,
            shadow_alarms=endpoint.shadow_alarms,
        )
        # The page goes live once the endpoint behind it is in service.
        self.add_stack_dependency(storage)
        self.add_stack_dependency(model)
        CfnOutput(self, "ApiUrl", value=self.api.predict_url, description="POST /predict")
        CfnOutput(self, "SiteUrl", value=self.website.origin, description="The web page")


@dataclass(frozen=True)
class SentimentStacks:
    storage: StorageStack
    model: ModelStack
    web: WebStack


def build_stacks(app: App, config: SentimentConfig, inputs: AppInputs) -> SentimentStacks:
    storage = StorageStack(app, "Storage", config=config, data=inputs.prepared_data)
    model = ModelStack(app, "Model", config=config, storage=storage, inputs=inputs)
    web = WebStack(app, "Web", config=config, storage=storage, model=model, inputs=inputs)
    return SentimentStacks(storage=storage, model=model, web=web)
