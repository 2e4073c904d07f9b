"""Least privilege and cdk-nag over every synthesized template, in both endpoint modes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_s3 as s3
from cdk_stacks import context_with, resources, synthesized

from contract.drift import METRIC_NAMESPACE
from stacks.compliance import apply_aws_solutions_checks

# The only actions granted on every resource, and why no narrower resource exists.
UNSCOPABLE = {
    "ecr:GetAuthorizationToken": "registry tokens are account-wide",
    "cloudwatch:PutMetricData": "metrics have no ARNs; a namespace condition scopes it",
    # Step Functions log delivery (the Provider framework's waiter) uses vended-log APIs.
    "logs:CreateLogDelivery": "vended-log delivery has no resource",
    "logs:DeleteLogDelivery": "vended-log delivery has no resource",
    "logs:GetLogDelivery": "vended-log delivery has no resource",
    "logs:ListLogDeliveries": "vended-log delivery has no resource",
    "logs:UpdateLogDelivery": "vended-log delivery has no resource",
    "logs:DescribeLogGroups": "lists log groups to find the destination",
    "logs:DescribeResourcePolicies": "resource policies are account-wide",
    "logs:PutResourcePolicy": "resource policies are account-wide",
    "logs:CreateLogStream": "granted with the log delivery actions by Step Functions",
    "logs:PutLogEvents": "granted with the log delivery actions by Step Functions",
    # aws-cdk-lib's BucketDeployment invalidates the page's cache after an upload.
    "cloudfront:CreateInvalidation": "granted by aws-cdk-lib on all distributions",
    "cloudfront:GetInvalidation": "granted by aws-cdk-lib on all distributions",
}
APPS = {
    "realtime": (),
    "serverless": context_with(endpointMode="serverless", removalPolicy="destroy"),
    "shadow": context_with(
        shadowDeployment=True, productionTrainingJob="imdb-sentiment-0123456789abcdef"
    ),
}


def identity_statements(template: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for policy in resources(template, "AWS::IAM::Policy").values():
        yield from policy["Properties"]["PolicyDocument"]["Statement"]
    for role in resources(template, "AWS::IAM::Role").values():
        for policy in role["Properties"].get("Policies", []):
            yield from policy["PolicyDocument"]["Statement"]


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


@pytest.fixture(scope="module", params=list(APPS))
def statements(request: pytest.FixtureRequest) -> list[dict[str, Any]]:
    templates = synthesized(APPS[request.param]).templates()
    return [
        statement
        for template in templates.values()
        for statement in identity_statements(template)
        if statement["Effect"] == "Allow"
    ]


def test_no_statement_allows_every_action(statements: list[dict[str, Any]]) -> None:
    actions = {action for statement in statements for action in as_list(statement["Action"])}

    assert actions
    assert not [action for action in actions if action == "*" or action.endswith(":*")]


def test_every_resource_wildcard_is_one_the_service_cannot_scope(
    statements: list[dict[str, Any]],
) -> None:
    unscoped = {
        action
        for statement in statements
        if "*" in as_list(statement["Resource"])
        for action in as_list(statement["Action"])
    }

    assert unscoped <= set(UNSCOPABLE), unscoped - set(UNSCOPABLE)


def test_metrics_are_only_published_to_sagemakers_namespaces_and_the_drift_reports(
    statements: list[dict[str, Any]],
) -> None:
    publishing = [s for s in statements if "cloudwatch:PutMetricData" in as_list(s["Action"])]

    assert {s["Condition"]["StringEquals"]["cloudwatch:namespace"] for s in publishing} == {
        "/aws/sagemaker/TrainingJobs",
        "/aws/sagemaker/Endpoints",
        METRIC_NAMESPACE,
    }


def test_training_role_is_passed_to_sagemaker_only() -> None:
    templates = synthesized().templates()
    (pass_role,) = [
        s for s in identity_statements(templates["model"]) if s["Action"] == "iam:PassRole"
    ]

    assert pass_role["Condition"] == {
        "StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}
    }
    assert pass_role["Resource"]["Fn::GetAtt"][0].startswith("TrainingExecutionRole")


@pytest.mark.parametrize("mode", list(APPS))
def test_cdk_nag_passes_with_every_acknowledgement_reasoned(mode: str) -> None:
    app = synthesized(APPS[mode])
    # synthesized() ran app.synth() with AwsSolutionsChecks: it raises on any finding left.
    assert app.workdir.joinpath("cdk.out", "manifest.json").is_file()


def test_cdk_nag_is_active_and_fails_an_unacknowledged_finding(tmp_path) -> None:
    app = App(outdir=str(tmp_path))
    apply_aws_solutions_checks(app)
    s3.Bucket(Stack(app, "Careless"), "Unlogged")

    with pytest.raises(Exception, match="AwsSolutions-S1"):
        app.synth()
