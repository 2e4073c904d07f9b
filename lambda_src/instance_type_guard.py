"""CloudFormation custom resource: refuses an instance-type change SageMaker would refuse.

SageMaker's UpdateEndpoint fails when the new configuration changes the instance type of a
variant registered with Application Auto Scaling. The endpoint depends on this resource
(stacks/instance_type_guard.py), so CloudFormation runs its update first: an update that
changes ``InstanceType`` while the deployed stack has ``Autoscaling`` on fails here, naming the
way through, and the stack rolls back before the endpoint is touched. Turning autoscaling off
in the same deployment does not help: CloudFormation deletes the scalable target only in its
cleanup, after the endpoint's update, hence the separate deployments.

Resource properties (set by stacks/instance_type_guard.py):
    InstanceType  the real-time endpoint's instance type
    Autoscaling   whether its variant is registered for autoscaling (CloudFormation hands
                  booleans over as "true"/"false")

The physical resource id is the instance type the guard last let through. A changed type is
then a new id, which CloudFormation rolls back by deleting it. A refused update keeps the old
id, and CloudFormation's rollback sends another update, back to that type, which passes.

Standard library only; no AWS calls.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

_logger = logging.getLogger(__name__)
_logger.setLevel(logging.INFO)


class InstanceTypeChangeRefused(RuntimeError):
    """The update would fail in SageMaker; the message is what CloudFormation shows."""


def _autoscaling(properties: Mapping[str, Any]) -> bool:
    return str(properties.get("Autoscaling", "false")).lower() == "true"


def refusal(
    old: Mapping[str, Any], new: Mapping[str, Any], deployed_type: str | None
) -> str | None:
    """Why the update from ``old`` to ``new`` properties is refused, or None.

    ``deployed_type`` is the physical id: an update back to it is a rollback of a refused one.
    """
    old_type, new_type = old.get("InstanceType"), new.get("InstanceType")
    if not _autoscaling(old) or old_type == new_type or new_type == deployed_type:
        return None
    return (
        f"endpointInstanceType changes from {old_type} to {new_type} while autoscaling is "
        "registered, which SageMaker refuses (UpdateEndpoint): deploy with "
        f"-c sentiment:endpointAutoscaling=false first (keeping {old_type}), then with the "
        "new type, then turn autoscaling back on"
    )


def on_event(event: dict[str, Any], context: object = None) -> dict[str, Any]:
    request_type = event["RequestType"]
    properties = event["ResourceProperties"]
    physical_id = event.get("PhysicalResourceId")
    _logger.info("%s %s -> %s", request_type, physical_id or "(new)", properties)
    if request_type == "Delete":
        return {"PhysicalResourceId": physical_id}
    if request_type == "Update":
        reason = refusal(event["OldResourceProperties"], properties, physical_id)
        if reason:
            raise InstanceTypeChangeRefused(reason)
    return {"PhysicalResourceId": properties["InstanceType"]}
