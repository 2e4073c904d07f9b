"""The drift report in AWS: a Lambda on an EventBridge schedule over the captured traffic,
its figures as CloudWatch metrics, and an alarm per threshold.

A scheduled Lambda is the lightest service that does it: each run reads a week of short
reviews (kilobytes to megabytes) and takes seconds. SageMaker Model Monitor's prebuilt
container profiles tabular features with Deequ and cannot run the model's own tokenizer, and
a Processing job would start an instance per run (minutes, and an image that has the
tokenizer's packages). The function runs the same code as `sentiment monitor`
(contract/drift.py), reads the deployed model.tar.gz for the tokenizer and the baseline, and
its asset carries the tokenizer's pure-Python packages (contract.packaging.
tokenizer_package_members), so synthesis stays offline and Docker-free.
"""

from __future__ import annotations

import json
from pathlib import Path

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from constructs import Construct

from contract.capture import CAPTURE_PREFIX
from contract.drift import METRIC_NAMES, METRIC_NAMESPACE, RETAKEN_BASELINE_KEY, THRESHOLDED
from contract.feedback import FEEDBACK_PREFIX
from stacks.compliance import acknowledge
from stacks.config import DriftSettings
from stacks.functions import PythonFunction
from stacks.shared_buckets import BucketExport
from stacks.training import OUTPUT_PREFIX

DRIFT_PREFIX = RETAKEN_BASELINE_KEY.partition("/")[0]
# What the function reads under the artifact bucket, and why.
_READS = {
    f"{OUTPUT_PREFIX}*": "Reads the deployed model.tar.gz (its tokenizer and drift baseline), "
    "whose key the training job chooses at run time.",
    f"{CAPTURE_PREFIX}/*": "Reads captured-traffic records, whose keys carry the hour and an id.",
    f"{FEEDBACK_PREFIX}/*": "Reads feedback records, one object per prediction id.",
    f"{DRIFT_PREFIX}/*": "Reads a baseline re-taken from page traffic, when one was uploaded.",
}


class DriftMonitor(Construct):
    """The scheduled function, its grants, and its alarms (``alarms``, ``metrics``)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: DriftSettings,
        endpoint_name: str,
        model_data_url: str,
        artifacts: BucketExport,
        code_dir: Path,
        log_retention_days: int,
    ) -> None:
        super().__init__(scope, construct_id)
        self.thresholds = settings.thresholds
        bucket = artifacts.bucket(self, "ArtifactBucket")
        self.function = PythonFunction(
            self,
            "Function",
            handler="drift.handler.handler",
            code_dir=code_dir,
            description="Compares captured traffic with the model's drift baseline",
            log_retention_days=log_retention_days,
            # A week of page traffic reads in seconds; the artifact's download dominates.
            timeout=Duration.minutes(5),
            memory_mb=1024,
            environment={
                "MODEL_DATA_URL": model_data_url,
                "CAPTURE_URL": bucket.s3_url_for_object(CAPTURE_PREFIX),
                "FEEDBACK_URL": bucket.s3_url_for_object(FEEDBACK_PREFIX),
                "BASELINE_URL": bucket.s3_url_for_object(RETAKEN_BASELINE_KEY),
                "ENDPOINT_NAME": endpoint_name,
                "WINDOW_HOURS": str(settings.window_hours),
                "METRIC_NAMESPACE": METRIC_NAMESPACE,
                "THRESHOLDS": json.dumps(settings.thresholds.to_json(), sort_keys=True),
            },
        )
        self._grant(self.function.role, artifacts, bucket.bucket_arn)
        period = Duration.hours(settings.schedule_hours)
        events.Rule(
            self,
            "Schedule",
            description="Runs the drift report over the captured traffic",
            schedule=events.Schedule.rate(period),
            targets=[targets.LambdaFunction(self.function.function, retry_attempts=2)],
        )
        self.metrics = {
            name: cloudwatch.Metric(
                namespace=METRIC_NAMESPACE,
                metric_name=metric,
                dimensions_map={"EndpointName": endpoint_name},
                statistic="Maximum",
                period=period,
            )
            for name, metric in METRIC_NAMES.items()
        }
        self.alarms = [self._threshold_alarm(name, settings) for name in THRESHOLDED]
        self.alarms.append(self._accuracy_alarm(settings))
        self.alarms.append(
            self.function.function.metric_errors(statistic="Sum", period=period).create_alarm(
                self,
                "Failures",
                alarm_description="The drift report failed to run",
                threshold=1,
                evaluation_periods=1,
                comparison_operator=(
                    cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD
                ),
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            )
        )

    def widgets(self) -> list[cloudwatch.IWidget]:
        """The dashboard's drift row: each figure beside its threshold."""
        limits = self.thresholds

        def line(name: str, value: float) -> cloudwatch.HorizontalAnnotation:
            return cloudwatch.HorizontalAnnotation(value=value, label=f"{name} threshold")

        return [
            cloudwatch.GraphWidget(
                title="Drift: PSI of length and score",
                left=[self.metrics["length_psi"], self.metrics["score_psi"]],
                left_annotations=[line("PSI", max(limits.length_psi, limits.score_psi))],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="Drift: unknown words and low confidence (increase on the baseline)",
                left=[
                    self.metrics["oov_rate_increase"],
                    self.metrics["low_confidence_increase"],
                ],
                left_annotations=[
                    line("unknown words", limits.oov_rate_increase),
                    line("low confidence", limits.low_confidence_increase),
                ],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="Drift: reviews read, feedback and its accuracy",
                left=[self.metrics["reviews"], self.metrics["feedback_received"]],
                right=[self.metrics["feedback_accuracy"].with_(statistic="Minimum")],
                right_annotations=[line("accuracy", limits.feedback_accuracy)],
                width=8,
            ),
        ]

    def _grant(self, role: iam.Role, artifacts: BucketExport, bucket_arn: str) -> None:
        for index, (pattern, reason) in enumerate(_READS.items()):
            artifacts.grant_objects(self, f"Reads{index}", role, ["s3:GetObject"], pattern, reason)
        # Listing, by prefix only: the capture hours, the feedback, the re-taken baseline.
        prefixes = [f"{CAPTURE_PREFIX}/*", f"{FEEDBACK_PREFIX}/*", f"{DRIFT_PREFIX}/*"]
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["s3:ListBucket"],
                resources=[bucket_arn],
                conditions={"StringLike": {"s3:prefix": prefixes}},
            )
        )
        # CloudWatch metrics have no ARNs: the namespace condition is the scope.
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringEquals": {"cloudwatch:namespace": METRIC_NAMESPACE}},
            )
        )
        acknowledge(
            role,
            "AwsSolutions-IAM5[Resource::*]",
            "cloudwatch:PutMetricData is scoped by its namespace condition (metrics have no ARNs).",
        )

    def _threshold_alarm(self, name: str, settings: DriftSettings) -> cloudwatch.Alarm:
        return self.metrics[name].create_alarm(
            self,
            METRIC_NAMES[name],
            alarm_description=f"Drift: {name.replace('_', ' ')} above its threshold",
            threshold=getattr(settings.thresholds, name),
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )

    def _accuracy_alarm(self, settings: DriftSettings) -> cloudwatch.Alarm:
        # Published only once enough feedback is in (lambda_src/drift/metrics.py).
        return (
            self.metrics["feedback_accuracy"]
            .with_(statistic="Minimum")
            .create_alarm(
                self,
                METRIC_NAMES["feedback_accuracy"],
                alarm_description="Drift: accuracy on the page's feedback below its threshold",
                threshold=settings.thresholds.feedback_accuracy,
                evaluation_periods=1,
                comparison_operator=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            )
        )
