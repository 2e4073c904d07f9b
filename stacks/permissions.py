"""What a SageMaker container's execution role needs whatever it runs: pull its image,
write its logs and publish its metrics — each scoped as narrowly as the service allows."""

from __future__ import annotations

from aws_cdk import ArnFormat, Stack
from aws_cdk import aws_iam as iam
from constructs import Construct

from stacks.compliance import acknowledge
from stacks.images import ContainerImage


class ContainerPermissions(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        role: iam.Role,
        image: ContainerImage,
        log_group_name: str,
        log_stream_prefix: str,
        metric_namespace: str,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        log_group_arn = stack.format_arn(
            service="logs",
            resource="log-group",
            resource_name=log_group_name,
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        self.policy = iam.Policy(
            self,
            "Policy",
            roles=[role],
            statements=[
                iam.PolicyStatement(
                    actions=[
                        "ecr:BatchCheckLayerAvailability",
                        "ecr:BatchGetImage",
                        "ecr:GetDownloadUrlForLayer",
                    ],
                    resources=[image.repository_arn(self)],
                ),
                # ECR issues registry tokens account-wide: this action has no resource to scope.
                iam.PolicyStatement(actions=["ecr:GetAuthorizationToken"], resources=["*"]),
                iam.PolicyStatement(
                    actions=["logs:CreateLogGroup", "logs:DescribeLogStreams"],
                    resources=[log_group_arn],
                ),
                iam.PolicyStatement(
                    actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                    resources=[f"{log_group_arn}:log-stream:{log_stream_prefix}*"],
                ),
                # CloudWatch metrics have no ARNs: the namespace condition is the scope.
                iam.PolicyStatement(
                    actions=["cloudwatch:PutMetricData"],
                    resources=["*"],
                    conditions={"StringEquals": {"cloudwatch:namespace": metric_namespace}},
                ),
            ],
        )
        acknowledge(
            self.policy,
            "AwsSolutions-IAM5[Resource::*]",
            "ecr:GetAuthorizationToken has no resource to scope, and cloudwatch:PutMetricData "
            "is scoped by its namespace condition instead (metrics have no ARNs).",
        )
        acknowledge(
            self.policy,
            "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:logs:<AWS::Region>:"
            f"<AWS::AccountId>:log-group:{log_group_name}:log-stream:{log_stream_prefix}*]",
            "SageMaker names the log streams at run time (job or instance ids).",
        )


def sagemaker_execution_role(
    scope: Construct,
    *,
    description: str,
    image: ContainerImage,
    log_group_name: str,
    log_stream_prefix: str,
    metric_namespace: str,
) -> iam.Role:
    """`scope`'s ExecutionRole for SageMaker, with its ContainerPermissions."""
    role = iam.Role(
        scope,
        "ExecutionRole",
        assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
        description=description,
    )
    ContainerPermissions(
        scope,
        "ContainerPermissions",
        role=role,
        image=image,
        log_group_name=log_group_name,
        log_stream_prefix=log_stream_prefix,
        metric_namespace=metric_namespace,
    )
    return role
