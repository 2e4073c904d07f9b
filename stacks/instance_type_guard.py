"""Refuses, at deploy time and before the endpoint changes, an instance-type change that
SageMaker would refuse because the variant is registered for autoscaling (issue #15).

Synthesis cannot know the deployed type; CloudFormation can: a custom resource carries the
instance type and whether autoscaling is on, and its update sees the previous values. The
handler (lambda_src/instance_type_guard.py) fails the update that changes the type while the
deployed stack autoscales, naming the way through; the endpoint depends on the resource, so
the stack rolls back before UpdateEndpoint runs. Real-time endpoints only: serverless ones
have no instance type.
"""

from __future__ import annotations

from pathlib import Path

from aws_cdk import CustomResource, Duration
from aws_cdk import custom_resources as cr
from constructs import Construct

from stacks.config import EndpointSettings
from stacks.functions import PythonFunction, acknowledge_provider_framework
from stacks.log_groups import log_group


class InstanceTypeGuard(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: EndpointSettings,
        code_dir: Path,
        log_retention_days: int,
    ) -> None:
        super().__init__(scope, construct_id)
        # Its role writes only its own logs: the handler makes no AWS calls.
        self.handler = on_event = PythonFunction(
            self,
            "OnEvent",
            handler="instance_type_guard.on_event",
            code_dir=code_dir,
            description="Refuses an endpoint instance-type change while autoscaling is registered",
            log_retention_days=log_retention_days,
            timeout=Duration.seconds(30),
            memory_mb=128,
        )
        provider = cr.Provider(
            self,
            "Provider",
            on_event_handler=on_event.function,
            log_group=log_group(self, "ProviderLogs", log_retention_days),
        )
        acknowledge_provider_framework(provider, [on_event.function])
        self.resource = CustomResource(
            self,
            "Resource",
            service_token=provider.service_token,
            resource_type="Custom::EndpointInstanceTypeGuard",
            properties={
                "InstanceType": settings.instance_type,
                "Autoscaling": settings.autoscaling,
            },
        )
