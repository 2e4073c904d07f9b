"""The public prediction API: API Gateway ``POST /predict`` → Lambda → SageMaker endpoint, and
``POST /feedback`` → Lambda → the feedback records in S3.

The API and the web page need each other's origin (CORS here, the CSP and config.json there).
CloudFormation has no cycle — the page's headers need only the REST API's id, and only the
route and its CORS preflight need the page's domain — so the stack builds the bare API first
(``PublicApi``), then the website, then the route (``PredictionRoute``).
"""

from __future__ import annotations

from pathlib import Path

from aws_cdk import Aws, Duration
from aws_cdk import aws_apigateway as apigateway
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from contract import limits
from contract.api import (
    FEEDBACK_ROUTE,
    FUNCTION_TIMEOUT_SECONDS,
    PREFLIGHT_ALLOWED_HEADERS,
    PREFLIGHT_ALLOWED_METHODS,
    PREFLIGHT_MAX_AGE_SECONDS,
    ROUTE,
)
from contract.feedback import FEEDBACK_PREFIX
from stacks.capture import grant_capture_writes
from stacks.compliance import acknowledge
from stacks.config import ApiSettings, CaptureSettings, FeedbackSettings
from stacks.functions import PythonFunction
from stacks.log_groups import log_group
from stacks.prediction_records import PredictionRecords
from stacks.shared_buckets import BucketExport

STAGE_NAME = "v1"
# A table read and an S3 write, each with botocore's few short retries.
FEEDBACK_FUNCTION_TIMEOUT_SECONDS = 15


class PublicApi(Construct):
    """A regional REST API with a throttled, access-logged stage."""

    def __init__(
        self, scope: Construct, construct_id: str, *, settings: ApiSettings, log_retention_days: int
    ) -> None:
        super().__init__(scope, construct_id)
        access_logs = log_group(self, "AccessLogs", log_retention_days)
        self.rest_api = apigateway.RestApi(
            self,
            "RestApi",
            description="IMDB sentiment predictions",
            endpoint_types=[apigateway.EndpointType.REGIONAL],
            cloud_watch_role=settings.create_cloudwatch_role,
            deploy_options=apigateway.StageOptions(
                stage_name=STAGE_NAME,
                throttling_rate_limit=settings.rate_limit,
                throttling_burst_limit=settings.burst_limit,
                access_log_destination=apigateway.LogGroupLogDestination(access_logs),
                access_log_format=apigateway.AccessLogFormat.json_with_standard_fields(
                    caller=False,
                    http_method=True,
                    ip=True,
                    protocol=True,
                    request_time=True,
                    resource_path=True,
                    response_length=True,
                    status=True,
                    user=False,
                ),
                # Errors only, and never bodies: reviews stay out of the logs.
                logging_level=apigateway.MethodLoggingLevel.ERROR,
                data_trace_enabled=False,
                metrics_enabled=True,
            ),
        )
        self.origin = (
            f"https://{self.rest_api.rest_api_id}.execute-api.{Aws.REGION}.{Aws.URL_SUFFIX}"
        )
        self.predict_url = self.rest_api.url_for_path(f"/{ROUTE}")
        self.feedback_url = self.rest_api.url_for_path(f"/{FEEDBACK_ROUTE}")
        acknowledge(
            self.rest_api,
            "AwsSolutions-APIG3",
            "No WAF: a public, unauthenticated demo page; stage throttling bounds the load "
            "and the cost, and WAF would cost more than the rest of the path at idle.",
        )
        acknowledge(
            self.rest_api.deployment_stage,
            "AwsSolutions-APIG3",
            "No WAF on the stage: see the REST API; stage throttling bounds the load.",
        )
        if settings.create_cloudwatch_role:
            acknowledge(
                self.rest_api.node.find_child("CloudWatchRole"),
                "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
                "AmazonAPIGatewayPushToCloudWatchLogs]",
                "API Gateway's account-wide logging role uses the AWS-managed policy made "
                "for exactly this purpose.",
            )


def post_route(
    api: PublicApi, route: str, function: lambda_.IFunction, allowed_origin: str
) -> apigateway.Method:
    """``POST /<route>`` into ``function``, with the CORS preflight for the page's origin."""
    resource = api.rest_api.root.add_resource(
        route,
        default_cors_preflight_options=apigateway.CorsOptions(
            allow_origins=[allowed_origin],
            allow_methods=list(PREFLIGHT_ALLOWED_METHODS),
            allow_headers=list(PREFLIGHT_ALLOWED_HEADERS),
            max_age=Duration.seconds(PREFLIGHT_MAX_AGE_SECONDS),
        ),
    )
    method = resource.add_method("POST", apigateway.LambdaIntegration(function, proxy=True))
    public = (
        "Public sentiment page: anyone may score a review and say whether the verdict was "
        "right, so there is no authorizer; stage throttling limits abuse."
    )
    for construct in (method, resource.node.find_child("OPTIONS")):
        acknowledge(construct, "AwsSolutions-APIG4", public)
        acknowledge(construct, "AwsSolutions-COG4", public)
    return method


class PredictionRoute(Construct):
    """``POST /predict`` through the prediction Lambda, callable from the site origin only."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        api: PublicApi,
        endpoint_name: str,
        endpoint_arn: str,
        allowed_origin: str,
        log_retention_days: int,
        code_dir: Path,
        artifacts: BucketExport,
        capture: CaptureSettings | None = None,
        records: PredictionRecords | None = None,
    ) -> None:
        """``capture``: record the traffic here, for an endpoint that cannot (serverless);
        ``records``: keep each prediction there, for the feedback that may name it."""
        super().__init__(scope, construct_id)
        self.handler = PythonFunction(
            self,
            "Handler",
            handler="prediction.handler.handler",
            code_dir=code_dir,
            description="Scores a movie review with the SageMaker endpoint",
            log_retention_days=log_retention_days,
            timeout=Duration.seconds(FUNCTION_TIMEOUT_SECONDS),
            environment={
                "ENDPOINT_NAME": endpoint_name,
                "ALLOWED_ORIGIN": allowed_origin,
                **limits.runtime_environment(),
            },
        )
        self.handler.role.add_to_policy(
            iam.PolicyStatement(actions=["sagemaker:InvokeEndpoint"], resources=[endpoint_arn])
        )
        self.function = self.handler.function
        if capture is not None:
            destination = grant_capture_writes(self, self.handler.role, artifacts)
            self.function.add_environment("CAPTURE_DESTINATION", destination)
            self.function.add_environment("CAPTURE_PERCENT", str(capture.percent))
        if records is not None:
            records.grant_keeping(self.handler.role)
            for name, value in records.environment().items():
                self.function.add_environment(name, value)
        self.method = post_route(api, ROUTE, self.function, allowed_origin)

        # API Gateway's own errors (throttling, oversized requests) must be readable by the
        # page too, so they carry the same CORS header as the Lambda's answers.
        for response_type in (
            apigateway.ResponseType.DEFAULT_4_XX,
            apigateway.ResponseType.DEFAULT_5_XX,
        ):
            api.rest_api.add_gateway_response(
                f"Cors{response_type.response_type}",
                type=response_type,
                response_headers={
                    "Access-Control-Allow-Origin": f"'{allowed_origin}'",
                    "Vary": "'Origin'",
                },
            )
        acknowledge(
            api.rest_api,
            "AwsSolutions-APIG2",
            "The Lambdas validate each request (content type, size, shape) and answer with "
            "the documented error shape; an API Gateway validator cannot accept both of "
            "/predict's body types and would answer differently.",
        )


class FeedbackRoute(Construct):
    """``POST /feedback`` through the feedback Lambda: a visitor's label for a verdict,
    joined to the server's record of it and kept under the artifact bucket's feedback/."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        api: PublicApi,
        allowed_origin: str,
        log_retention_days: int,
        code_dir: Path,
        artifacts: BucketExport,
        records: PredictionRecords,
        settings: FeedbackSettings,
    ) -> None:
        super().__init__(scope, construct_id)
        self.handler = PythonFunction(
            self,
            "Handler",
            handler="prediction.feedback.handler",
            code_dir=code_dir,
            description="Keeps a visitor's feedback on a verdict for the next training run",
            log_retention_days=log_retention_days,
            timeout=Duration.seconds(FEEDBACK_FUNCTION_TIMEOUT_SECONDS),
            environment={
                "ALLOWED_ORIGIN": allowed_origin,
                "FEEDBACK_PER_SOURCE_PER_DAY": str(settings.per_source_per_day),
                **records.environment(),
            },
        )
        records.grant_feedback(self.handler.role)
        bucket = artifacts.grant_objects(
            self,
            "FeedbackBucket",
            self.handler.role,
            # Delete: a visitor takes feedback back.
            ["s3:PutObject", "s3:DeleteObject"],
            f"{FEEDBACK_PREFIX}/*",
            "Writes and deletes feedback records, one object per prediction id.",
        )
        self.function = self.handler.function
        self.function.add_environment(
            "FEEDBACK_DESTINATION", bucket.s3_url_for_object(FEEDBACK_PREFIX)
        )
        self.method = post_route(api, FEEDBACK_ROUTE, self.function, allowed_origin)
