"""The predictions that feedback may name, and each visitor's daily feedback allowance.

One DynamoDB table (lambda_src/prediction/records.py reads and writes it): on-demand, encrypted,
its items deleted by TTL after the capture's retention days. The prediction function may only
put ``prediction#`` items; the feedback function may only read those and count ``quota#``
ones (IAM's dynamodb:LeadingKeys condition).
"""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from constructs import Construct

from contract.feedback import PREDICTION_KEY_PREFIX, QUOTA_KEY_PREFIX


class PredictionRecords(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, retention_days: int) -> None:
        super().__init__(scope, construct_id)
        self.retention_days = retention_days
        self.table = dynamodb.Table(
            self,
            "Table",
            partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            time_to_live_attribute="expires_at",
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            # Short-lived records of the serving path; feedback itself is kept in S3.
            removal_policy=RemovalPolicy.DESTROY,
        )

    def environment(self) -> dict[str, str]:
        """What the functions that use the table are told about it."""
        return {
            "PREDICTION_TABLE": self.table.table_name,
            "PREDICTION_RETENTION_DAYS": str(self.retention_days),
        }

    def _grant(self, role: iam.IRole, actions: list[str], key_prefix: str) -> None:
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=actions,
                resources=[self.table.table_arn],
                conditions={
                    "ForAllValues:StringLike": {"dynamodb:LeadingKeys": [f"{key_prefix}*"]}
                },
            )
        )

    def grant_keeping(self, role: iam.IRole) -> None:
        """The prediction function: put a prediction's record."""
        self._grant(role, ["dynamodb:PutItem"], PREDICTION_KEY_PREFIX)

    def grant_feedback(self, role: iam.IRole) -> None:
        """The feedback function: read a prediction's record, count a visitor's feedback."""
        self._grant(role, ["dynamodb:GetItem"], PREDICTION_KEY_PREFIX)
        self._grant(role, ["dynamodb:UpdateItem"], QUOTA_KEY_PREFIX)
