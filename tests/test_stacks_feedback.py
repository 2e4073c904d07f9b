"""Feedback in the synthesized stacks: the route, the table of predictions it names, the
least-privilege grants, where records go and for how long, and turning it off."""

from __future__ import annotations

from typing import Any

from aws_cdk.assertions import Match
from cdk_stacks import (
    context_with,
    granted_actions,
    joined,
    resources,
    role_statements,
    synthesized,
)

from contract.feedback import FEEDBACK_PREFIX

NO_FEEDBACK = context_with(feedbackPerSourcePerDay=0)
FEEDBACK_HANDLER = "prediction.feedback.handler"


def test_the_predictions_table_is_on_demand_encrypted_and_expires_its_items() -> None:
    synthesized().template("web").has_resource_properties(
        "AWS::DynamoDB::Table",
        {
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
            "BillingMode": "PAY_PER_REQUEST",
            "TimeToLiveSpecification": {"AttributeName": "expires_at", "Enabled": True},
            "SSESpecification": {"SSEEnabled": True},
            "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
        },
    )


def test_post_feedback_runs_the_feedback_handler_with_its_settings() -> None:
    template = synthesized().template("web")
    template.has_resource_properties("AWS::ApiGateway::Resource", {"PathPart": "feedback"})
    template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Handler": FEEDBACK_HANDLER,
            "Runtime": "python3.12",
            "Environment": {
                "Variables": {
                    "ALLOWED_ORIGIN": Match.any_value(),
                    "FEEDBACK_PER_SOURCE_PER_DAY": "20",
                    "PREDICTION_TABLE": Match.any_value(),
                    "PREDICTION_RETENTION_DAYS": "30",
                    "FEEDBACK_DESTINATION": Match.any_value(),
                }
            },
        },
    )
    function = next(
        function["Properties"]
        for function in resources(template.to_json(), "AWS::Lambda::Function").values()
        if function["Properties"].get("Handler") == FEEDBACK_HANDLER
    )
    destination = joined(function["Environment"]["Variables"]["FEEDBACK_DESTINATION"])
    assert destination.startswith("s3://<") and destination.endswith(f">/{FEEDBACK_PREFIX}")


def test_each_function_may_touch_only_its_own_kind_of_item() -> None:
    web = synthesized().stacks.web
    template = synthesized().template("web").to_json()
    table = next(iter(resources(template, "AWS::DynamoDB::Table")))

    def table_grants(role: Any) -> dict[str, list[str]]:
        return {
            statement["Action"]: statement["Condition"]["ForAllValues:StringLike"][
                "dynamodb:LeadingKeys"
            ]
            for statement in role_statements(role)
            if str(statement["Action"]).startswith("dynamodb:")
            and statement["Resource"] == {"Fn::GetAtt": [table, "Arn"]}
        }

    assert table_grants(web.route.handler.role) == {"dynamodb:PutItem": ["prediction#*"]}
    assert table_grants(web.feedback.handler.role) == {
        "dynamodb:GetItem": ["prediction#*"],
        "dynamodb:UpdateItem": ["quota#*"],
    }


def test_the_feedback_function_writes_and_deletes_feedback_records_only() -> None:
    granted = granted_actions(synthesized().stacks.web.feedback.handler.role)

    resource = granted["s3:DeleteObject+s3:PutObject"]
    assert "artifact-bucket-arn" in resource and resource.endswith(f"/{FEEDBACK_PREFIX}/*")
    assert set(granted) == {
        "s3:DeleteObject+s3:PutObject",
        "dynamodb:GetItem",
        "dynamodb:UpdateItem",
        "logs:CreateLogStream+logs:PutLogEvents",
    }


def test_feedback_records_expire_after_the_configured_days() -> None:
    storage = synthesized(context_with(feedbackRetentionDays=90)).template("storage")
    storage.has_resource_properties(
        "AWS::S3::Bucket",
        {
            "LifecycleConfiguration": {
                "Rules": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Id": "ExpireFeedback",
                                "Prefix": f"{FEEDBACK_PREFIX}/",
                                "ExpirationInDays": 90,
                                "NoncurrentVersionExpiration": {"NoncurrentDays": 1},
                                "Status": "Enabled",
                            }
                        )
                    ]
                )
            }
        },
    )


def test_with_no_daily_allowance_there_is_no_feedback_route_table_or_grant() -> None:
    app = synthesized(NO_FEEDBACK)
    template = app.template("web")

    template.resource_count_is("AWS::DynamoDB::Table", 0)
    assert [
        route["Properties"]["PathPart"]
        for route in resources(template.to_json(), "AWS::ApiGateway::Resource").values()
    ] == ["predict"]
    assert not any(
        function["Properties"].get("Handler") == FEEDBACK_HANDLER
        for function in resources(template.to_json(), "AWS::Lambda::Function").values()
    )
    assert "PREDICTION_TABLE" not in str(template.to_json())
