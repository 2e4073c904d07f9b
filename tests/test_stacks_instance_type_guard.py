"""The model stack's instance-type guard (stacks/instance_type_guard.py): a custom resource the
real-time endpoint depends on, so its update runs, and can fail, before UpdateEndpoint."""

from __future__ import annotations

import pytest
from aws_cdk.assertions import Template
from cdk_stacks import context_with, granted_actions, resources, synthesized

GUARD = "Custom::EndpointInstanceTypeGuard"
HANDLER = "instance_type_guard.on_event"


@pytest.fixture(scope="module")
def model() -> Template:
    return synthesized().template("model")


def test_the_guard_carries_the_instance_type_and_autoscaling(model: Template) -> None:
    model.resource_count_is(GUARD, 1)
    model.has_resource_properties(GUARD, {"InstanceType": "ml.m5.large", "Autoscaling": True})
    changed = synthesized(
        context_with(endpointAutoscaling=False, endpointInstanceType="ml.c5.large")
    ).template("model")
    changed.has_resource_properties(GUARD, {"InstanceType": "ml.c5.large", "Autoscaling": False})


def test_the_endpoint_waits_for_the_guard(model: Template) -> None:
    template = model.to_json()
    (guard,) = resources(template, GUARD)
    (endpoint,) = resources(template, "AWS::SageMaker::Endpoint").values()

    assert guard in endpoint["DependsOn"]


def test_a_serverless_endpoint_has_no_guard() -> None:
    serverless = synthesized(context_with(endpointMode="serverless", removalPolicy="destroy"))
    template = serverless.template("model")

    template.resource_count_is(GUARD, 0)
    handlers = {
        function["Properties"].get("Handler")
        for function in resources(template.to_json(), "AWS::Lambda::Function").values()
    }
    assert HANDLER not in handlers


def test_the_guard_writes_only_its_own_logs(model: Template) -> None:
    app = synthesized()
    guard = app.stacks.model.endpoint.instance_type_guard
    template = model.to_json()
    function = template["Resources"][
        app.stacks.model.get_logical_id(guard.handler.function.node.default_child)
    ]["Properties"]
    log_group = function["LoggingConfig"]["LogGroup"]["Ref"]

    assert function["Handler"] == HANDLER
    assert function["Runtime"] == "python3.12"
    assert granted_actions(guard.handler.role) == {
        "logs:CreateLogStream+logs:PutLogEvents": f'<{{"Fn::GetAtt": ["{log_group}", "Arn"]}}>'
    }
    retention = template["Resources"][log_group]["Properties"]["RetentionInDays"]
    assert retention == app.config.log_retention_days
