"""cdk-nag (3.x) findings: registration and narrow, reasoned acknowledgements.

cdk-nag 3 runs as a CDK policy-validation plugin: registered on the App, it checks every
synthesized template and fails synthesis on an unacknowledged error. Each acknowledgement
names one finding (a rule, or a rule and one of its finding ids) on one construct, with the
reason it does not apply — next to the resource it is about.
"""

from __future__ import annotations

from aws_cdk import Acknowledgment, App, CfnElement, DefaultStackSynthesizer, Stack, Validations
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_deployment as s3_deployment
from cdk_nag import AwsSolutionsChecks
from constructs import IConstruct

DEFAULT_QUALIFIER = DefaultStackSynthesizer.DEFAULT_QUALIFIER


def apply_aws_solutions_checks(app: App) -> None:
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))


def acknowledge(construct: IConstruct, finding: str, reason: str) -> None:
    """Accept one cdk-nag finding (e.g. "AwsSolutions-IAM5[Action::s3:*]") on a construct."""
    Validations.of(construct).acknowledge(Acknowledgment(id=finding, reason=reason))


def arn_reference(resource: CfnElement) -> str:
    """How cdk-nag writes a same-stack resource's ARN in finding ids: ``<LogicalId.Arn>``."""
    return f"<{Stack.of(resource).get_logical_id(resource)}.Arn>"


_BASIC_EXECUTION_ROLE = (
    "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
    "AWSLambdaBasicExecutionRole]"
)


def acknowledge_cdk_provider_function(function_scope: IConstruct, library_part: str) -> None:
    """The managed-policy and runtime findings of a function aws-cdk-lib creates itself."""
    acknowledge(
        function_scope,
        _BASIC_EXECUTION_ROLE,
        f"{library_part} gives its function the AWS-managed basic execution policy; "
        "it only writes that function's logs.",
    )


def acknowledge_bucket_deployment(
    deployment: s3_deployment.BucketDeployment, destination: s3.Bucket, *, invalidates: bool
) -> None:
    """Acknowledge the findings on aws-cdk-lib's BucketDeployment function, one by one.

    The function and its role belong to the library (one per stack and memory size); its
    policy is aws-cdk-lib's grant for copying the asset into the destination bucket.
    """
    handler = deployment.handler_role.node.scope
    stack = Stack.of(deployment)
    assets_bucket = (
        DefaultStackSynthesizer.DEFAULT_FILE_ASSETS_BUCKET_NAME.replace(
            "${Qualifier}", stack.synthesizer.bootstrap_qualifier or DEFAULT_QUALIFIER
        )
        .replace("${AWS::AccountId}", "<AWS::AccountId>")
        .replace("${AWS::Region}", "<AWS::Region>")
    )
    grant = (
        "aws-cdk-lib's BucketDeployment grant: reads the staged asset and syncs (copies, "
        "overwrites, prunes) the destination bucket's objects."
    )
    findings = [
        "AwsSolutions-IAM5[Action::s3:GetObject*]",
        "AwsSolutions-IAM5[Action::s3:GetBucket*]",
        "AwsSolutions-IAM5[Action::s3:List*]",
        "AwsSolutions-IAM5[Action::s3:DeleteObject*]",
        "AwsSolutions-IAM5[Action::s3:Abort*]",
        f"AwsSolutions-IAM5[Resource::{arn_reference(destination.node.default_child)}/*]",
        f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::{assets_bucket}/*]",
    ]
    for finding in findings:
        acknowledge(handler, finding, grant)
    if invalidates:
        acknowledge(
            handler,
            "AwsSolutions-IAM5[Resource::*]",
            "aws-cdk-lib's BucketDeployment invalidates the CloudFront cache with "
            "cloudfront:CreateInvalidation and GetInvalidation, granted on all distributions.",
        )
    acknowledge_cdk_provider_function(handler, "BucketDeployment")
    acknowledge(
        handler,
        "AwsSolutions-L1",
        "aws-cdk-lib pins the runtime of BucketDeployment's function (it bundles the AWS CLI).",
    )
