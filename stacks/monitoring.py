"""Alarms on the serving path and one dashboard that follows a request through it (and, with
the drift report, whether the traffic still looks like what the model learned from; with
shadow testing, how the shadow variant fares beside production)."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Duration
from aws_cdk import aws_apigateway as apigateway
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from stacks.drift_monitor import DriftMonitor
from stacks.serving import endpoint_metric

_FIVE_MINUTES = Duration.minutes(5)


def _any_in_five_minutes(
    scope: Construct, construct_id: str, metric: cloudwatch.Metric, description: str
) -> cloudwatch.Alarm:
    return metric.with_(statistic="Sum", period=_FIVE_MINUTES).create_alarm(
        scope,
        construct_id,
        alarm_description=description,
        threshold=1,
        evaluation_periods=1,
        comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
    )


class ServingMonitoring(Construct):
    """Lambda errors and throttles, API 5xx; a dashboard of page → API → Lambda → endpoint."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        rest_api: apigateway.RestApi,
        function: lambda_.IFunction,
        endpoint_name: str,
        endpoint_alarms: Sequence[cloudwatch.IAlarm],
        drift: DriftMonitor | None = None,
        shadow_variant: str | None = None,
        shadow_alarms: Sequence[cloudwatch.IAlarm] = (),
    ) -> None:
        super().__init__(scope, construct_id)
        self.alarms = [
            _any_in_five_minutes(
                self, "LambdaErrors", function.metric_errors(), "The prediction Lambda failed"
            ),
            _any_in_five_minutes(
                self,
                "LambdaThrottles",
                function.metric_throttles(),
                "The prediction Lambda was throttled",
            ),
            _any_in_five_minutes(
                self,
                "ApiServerErrors",
                rest_api.metric_server_error(),
                "The prediction API answered 5xx",
            ),
        ]
        dashboard = cloudwatch.Dashboard(self, "Dashboard", default_interval=Duration.hours(3))
        dashboard.add_widgets(
            cloudwatch.AlarmStatusWidget(
                title="Alarms",
                alarms=[
                    *self.alarms,
                    *endpoint_alarms,
                    *shadow_alarms,
                    *(drift.alarms if drift else []),
                ],
                width=24,
                height=3,
            )
        )
        dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="API requests and errors",
                left=[
                    rest_api.metric_count(statistic="Sum"),
                    rest_api.metric_client_error(statistic="Sum"),
                    rest_api.metric_server_error(statistic="Sum"),
                ],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="API latency (ms)",
                left=[
                    rest_api.metric_latency(statistic="p50"),
                    rest_api.metric_latency(statistic="p99"),
                ],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="Lambda",
                left=[
                    function.metric_invocations(statistic="Sum"),
                    function.metric_errors(statistic="Sum"),
                    function.metric_throttles(statistic="Sum"),
                ],
                right=[function.metric_duration(statistic="p99")],
                width=8,
            ),
        )
        dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Endpoint invocations and errors",
                left=[
                    endpoint_metric(endpoint_name, "Invocations", "Sum"),
                    endpoint_metric(endpoint_name, "Invocation4XXErrors", "Sum"),
                    endpoint_metric(endpoint_name, "Invocation5XXErrors", "Sum"),
                ],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="Endpoint latency (microseconds)",
                left=[
                    endpoint_metric(endpoint_name, "ModelLatency", "p50"),
                    endpoint_metric(endpoint_name, "ModelLatency", "p99"),
                    endpoint_metric(endpoint_name, "OverheadLatency", "p99"),
                ],
                width=12,
            ),
        )
        if shadow_variant is not None:
            dashboard.add_widgets(*_shadow_widgets(endpoint_name, shadow_variant))
        if drift is not None:
            dashboard.add_widgets(*drift.widgets())


def _shadow_widgets(endpoint_name: str, shadow_variant: str) -> list[cloudwatch.GraphWidget]:
    """Production and shadow side by side: the same requests, answered by two models."""

    def both(metric: str, statistic: str) -> list[cloudwatch.Metric]:
        production = endpoint_metric(endpoint_name, metric, statistic)
        shadow = endpoint_metric(endpoint_name, metric, statistic, variant=shadow_variant)
        return [
            production.with_(label=f"production {metric} {statistic}"),
            shadow.with_(label=f"shadow {metric} {statistic}"),
        ]

    return [
        cloudwatch.GraphWidget(
            title="Shadow vs production: invocations and errors",
            left=[*both("Invocations", "Sum"), *both("Invocation5XXErrors", "Sum")],
            right=both("Invocation4XXErrors", "Sum"),
            width=12,
        ),
        cloudwatch.GraphWidget(
            title="Shadow vs production: model latency (microseconds)",
            left=[*both("ModelLatency", "p50"), *both("ModelLatency", "p99")],
            width=12,
        ),
    ]
