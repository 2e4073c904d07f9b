"""The project's Python Lambda functions: one code asset (lambda_src/ with contract/), explicit
log groups."""

from __future__ import annotations

from pathlib import Path

from aws_cdk import Duration
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import custom_resources as cr
from constructs import Construct

from stacks.compliance import acknowledge, acknowledge_cdk_provider_function, arn_reference
from stacks.log_groups import log_group

# Python 3.12 is the runtime the handlers are written and tested for; their only dependency
# (boto3) comes with the runtime.
RUNTIME = lambda_.Runtime.PYTHON_3_12
# The functions a custom-resource Provider creates, as many as its handlers need.
_FRAMEWORK_FUNCTIONS = ("framework-onEvent", "framework-isComplete", "framework-onTimeout")


class PythonFunction(Construct):
    """A handler in ``code_dir`` (contract.packaging.build_lambda_asset) with its own role and a
    log group with a set retention.

    The role carries only what the caller grants plus writing to this function's log group,
    instead of the AWS-managed basic-execution policy that may write to any log group.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        handler: str,
        code_dir: Path,
        description: str,
        log_retention_days: int,
        timeout: Duration,
        memory_mb: int = 256,
        environment: dict[str, str] | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.log_group = log_group(self, "Logs", log_retention_days)
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"Runs {handler}",
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[self.log_group.log_group_arn],
            )
        )
        self.function = lambda_.Function(
            self,
            "Function",
            runtime=RUNTIME,
            architecture=lambda_.Architecture.ARM_64,
            code=lambda_.Code.from_asset(str(code_dir)),
            handler=handler,
            description=description,
            timeout=timeout,
            memory_size=memory_mb,
            environment=environment,
            role=self.role,
            log_group=self.log_group,
            logging_format=lambda_.LoggingFormat.JSON,
        )
        acknowledge(
            self.function,
            "AwsSolutions-L1",
            "Python 3.12 is the runtime the handlers are written and tested for; move "
            "RUNTIME forward together with the tests.",
        )


def acknowledge_provider_framework(provider: cr.Provider, handlers: list[lambda_.Function]) -> None:
    """The Provider framework's own functions are aws-cdk-lib's code, and it invokes the
    ``handlers`` (and its own functions) in any version."""
    framework = [
        child
        for name in _FRAMEWORK_FUNCTIONS
        if (child := provider.node.try_find_child(name)) is not None
    ]
    for function in framework:
        acknowledge_cdk_provider_function(function, "The custom-resource Provider framework")
    for function in [*handlers, *framework[1:]]:
        acknowledge(
            provider,
            f"AwsSolutions-IAM5[Resource::{arn_reference(function.node.default_child)}:*]",
            "The Provider framework invokes its handler functions and any of their versions.",
        )
