"""The drift report in the synthesized web stack: the schedule, the function and its grants,
the metrics' alarms and the dashboard (stacks/drift_monitor.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Match
from cdk_stacks import context_with, joined, resources, synthesized

from contract.drift import METRIC_NAMESPACE, Thresholds

HANDLER = "drift.handler.handler"
TUNED = context_with(driftScheduleHours=6, driftWindowHours=48, driftLengthPsi=0.4)


@pytest.fixture(scope="module")
def web() -> dict[str, Any]:
    return synthesized().template("web").to_json()


def drift_function(template: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    (found,) = [
        (logical_id, function["Properties"])
        for logical_id, function in resources(template, "AWS::Lambda::Function").items()
        if function["Properties"].get("Handler") == HANDLER
    ]
    return found


def role_statements(template: dict[str, Any], role: str) -> list[dict[str, Any]]:
    return [
        statement
        for policy in resources(template, "AWS::IAM::Policy").values()
        if {"Ref": role} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


def drift_alarms(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        alarm["Properties"]["MetricName"]: alarm["Properties"]
        for alarm in resources(template, "AWS::CloudWatch::Alarm").values()
        if alarm["Properties"].get("Namespace") == METRIC_NAMESPACE
    }


def test_an_eventbridge_schedule_runs_the_drift_function_daily() -> None:
    template = synthesized().template("web")
    logical_id, _ = drift_function(template.to_json())

    template.has_resource_properties(
        "AWS::Events::Rule",
        {
            "ScheduleExpression": "rate(1 day)",
            "State": "ENABLED",
            "Targets": [
                Match.object_like(
                    {"Arn": {"Fn::GetAtt": [logical_id, "Arn"]}, "RetryPolicy": Match.any_value()}
                )
            ],
        },
    )
    template.has_resource_properties(
        "AWS::Lambda::Permission",
        {
            "Action": "lambda:InvokeFunction",
            "Principal": "events.amazonaws.com",
            "FunctionName": {"Fn::GetAtt": [logical_id, "Arn"]},
        },
    )


def test_the_function_reads_the_deployed_model_and_the_capture_prefix(web: dict[str, Any]) -> None:
    _, function = drift_function(web)
    variables = function["Environment"]["Variables"]

    # The training job's ModelDataUrl, from the model stack.
    assert "ModelDataUrl" in json.dumps(variables["MODEL_DATA_URL"])
    assert joined(variables["CAPTURE_URL"]).endswith(">/capture")
    assert joined(variables["FEEDBACK_URL"]).endswith(">/feedback")
    assert joined(variables["BASELINE_URL"]).endswith(">/drift/baseline.json")
    assert variables["WINDOW_HOURS"] == "168"
    assert variables["METRIC_NAMESPACE"] == METRIC_NAMESPACE
    assert Thresholds.from_json(json.loads(variables["THRESHOLDS"])) == Thresholds()
    assert function["Timeout"] == 300 and function["Runtime"] == "python3.12"


def test_its_role_reads_four_prefixes_lists_three_and_publishes_one_namespace(
    web: dict[str, Any],
) -> None:
    _, function = drift_function(web)
    statements = role_statements(web, function["Role"]["Fn::GetAtt"][0])
    by_action = {
        statement["Action"]
        if isinstance(statement["Action"], str)
        else tuple(statement["Action"]): statement
        for statement in statements
    }

    assert set(by_action) == {
        ("logs:CreateLogStream", "logs:PutLogEvents"),
        "s3:GetObject",
        "s3:ListBucket",
        "cloudwatch:PutMetricData",
    }
    read = sorted(joined(resource) for resource in by_action["s3:GetObject"]["Resource"])
    assert [path.rpartition(">")[2] for path in read] == [
        "/capture/*",
        "/drift/*",
        "/feedback/*",
        "/training-jobs/*",
    ]
    assert all("artifact-bucket-arn" in path for path in read)
    assert by_action["s3:ListBucket"]["Condition"] == {
        "StringLike": {"s3:prefix": ["capture/*", "feedback/*", "drift/*"]}
    }
    assert by_action["cloudwatch:PutMetricData"]["Condition"] == {
        "StringEquals": {"cloudwatch:namespace": METRIC_NAMESPACE}
    }


def test_each_threshold_has_its_alarm_and_a_failed_run_has_one_too(web: dict[str, Any]) -> None:
    alarms = drift_alarms(web)
    defaults = Thresholds()

    assert {
        name: (alarm["Threshold"], alarm["ComparisonOperator"]) for name, alarm in alarms.items()
    } == {
        "LengthPSI": (defaults.length_psi, "GreaterThanThreshold"),
        "ScorePSI": (defaults.score_psi, "GreaterThanThreshold"),
        "OOVRateIncrease": (defaults.oov_rate_increase, "GreaterThanThreshold"),
        "LowConfidenceIncrease": (defaults.low_confidence_increase, "GreaterThanThreshold"),
        "FeedbackAccuracy": (defaults.feedback_accuracy, "LessThanThreshold"),
    }
    for alarm in alarms.values():
        assert alarm["Period"] == 24 * 3600 and alarm["TreatMissingData"] == "notBreaching"
        assert [dimension["Name"] for dimension in alarm["Dimensions"]] == ["EndpointName"]
    logical_id, _ = drift_function(web)
    failures = [
        alarm["Properties"]
        for alarm in resources(web, "AWS::CloudWatch::Alarm").values()
        if alarm["Properties"].get("MetricName") == "Errors"
        and alarm["Properties"]["Dimensions"][0]["Value"] == {"Ref": logical_id}
    ]
    assert len(failures) == 1


def test_the_dashboard_shows_the_drift_figures_and_alarms(web: dict[str, Any]) -> None:
    (dashboard,) = resources(web, "AWS::CloudWatch::Dashboard").values()
    body = joined(dashboard["Properties"]["DashboardBody"])

    assert METRIC_NAMESPACE in body
    for metric in ("LengthPSI", "ScorePSI", "OOVRateIncrease", "FeedbackAccuracy", "Reviews"):
        assert f'"{metric}"' in body
    assert "Drift: PSI of length and score" in body
    alarm_ids = [
        logical_id
        for logical_id in resources(web, "AWS::CloudWatch::Alarm")
        if logical_id.startswith("Drift")
    ]
    assert len(alarm_ids) == 6 and all(logical_id in body for logical_id in alarm_ids)


def test_cdk_json_tunes_the_schedule_window_and_thresholds() -> None:
    web = synthesized(TUNED).template("web").to_json()
    _, function = drift_function(web)

    (rule,) = resources(web, "AWS::Events::Rule").values()
    assert rule["Properties"]["ScheduleExpression"] == "rate(6 hours)"
    assert function["Environment"]["Variables"]["WINDOW_HOURS"] == "48"
    thresholds = json.loads(function["Environment"]["Variables"]["THRESHOLDS"])
    assert thresholds["length_psi"] == 0.4
    alarm = drift_alarms(web)["LengthPSI"]
    assert (alarm["Threshold"], alarm["Period"]) == (0.4, 6 * 3600)


def test_with_nothing_captured_there_is_no_drift_report() -> None:
    web = synthesized(context_with(capturePercent=0)).template("web").to_json()

    assert not [
        function
        for function in resources(web, "AWS::Lambda::Function").values()
        if function["Properties"].get("Handler") == HANDLER
    ]
    assert drift_alarms(web) == {}
