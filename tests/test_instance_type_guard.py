"""The instance-type guard's handler (lambda_src/instance_type_guard.py): an update that changes
the endpoint's instance type while autoscaling is registered fails before the endpoint changes;
everything else, and the rollback of a refused update, passes."""

from __future__ import annotations

from typing import Any

import pytest

from lambda_src.instance_type_guard import InstanceTypeChangeRefused, on_event

OLD, NEW = "ml.m5.large", "ml.c5.large"


def properties(instance_type: str, autoscaling: bool) -> dict[str, Any]:
    # CloudFormation hands a custom resource's booleans over as strings.
    return {
        "ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:guard",
        "InstanceType": instance_type,
        "Autoscaling": str(autoscaling).lower(),
    }


def update(
    old: dict[str, Any], new: dict[str, Any], physical_id: str | None = None
) -> dict[str, Any]:
    return {
        "RequestType": "Update",
        "PhysicalResourceId": physical_id or old["InstanceType"],
        "OldResourceProperties": old,
        "ResourceProperties": new,
    }


@pytest.mark.parametrize("autoscaling", [True, False])
def test_create_passes_and_names_the_instance_type(autoscaling: bool) -> None:
    event = {"RequestType": "Create", "ResourceProperties": properties(NEW, autoscaling)}

    assert on_event(event) == {"PhysicalResourceId": NEW}


def test_delete_passes_and_keeps_the_physical_id() -> None:
    event = {
        "RequestType": "Delete",
        "PhysicalResourceId": OLD,
        "ResourceProperties": properties(OLD, True),
    }

    assert on_event(event) == {"PhysicalResourceId": OLD}


@pytest.mark.parametrize("new_autoscaling", [True, False])
def test_a_type_change_while_autoscaling_is_registered_is_refused(new_autoscaling: bool) -> None:
    # Turning autoscaling off in the same deployment does not help: CloudFormation deletes the
    # scalable target in its cleanup, after UpdateEndpoint.
    with pytest.raises(InstanceTypeChangeRefused) as refused:
        on_event(update(properties(OLD, True), properties(NEW, new_autoscaling)))

    assert str(refused.value) == (
        f"endpointInstanceType changes from {OLD} to {NEW} while autoscaling is registered, "
        "which SageMaker refuses (UpdateEndpoint): deploy with "
        f"-c sentiment:endpointAutoscaling=false first (keeping {OLD}), then with the new "
        "type, then turn autoscaling back on"
    )


@pytest.mark.parametrize(
    ("old", "new", "physical_id"),
    [
        # The documented way through, one deployment at a time.
        ((OLD, True), (OLD, False), OLD),
        ((OLD, False), (NEW, False), NEW),
        ((NEW, False), (NEW, True), NEW),
        # Autoscaling registered only by this deployment: the endpoint updates first.
        ((OLD, False), (NEW, True), OLD),
        # Same type, autoscaling on either side.
        ((OLD, True), (OLD, True), OLD),
        ((OLD, False), (OLD, True), OLD),
        # CloudFormation's rollback of a refused update: back to the type the guard last let
        # through (its physical id), which the endpoint still has.
        ((NEW, True), (OLD, True), OLD),
    ],
)
def test_every_other_update_passes_and_names_the_new_type(
    old: tuple[str, bool], new: tuple[str, bool], physical_id: str
) -> None:
    event = update(properties(*old), properties(*new), physical_id)

    assert on_event(event) == {"PhysicalResourceId": new[0]}


def test_a_template_boolean_is_read_as_well_as_its_string() -> None:
    old = {**properties(OLD, True), "Autoscaling": True}

    with pytest.raises(InstanceTypeChangeRefused):
        on_event(update(old, {**properties(NEW, True), "Autoscaling": True}))
