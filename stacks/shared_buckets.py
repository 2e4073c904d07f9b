"""Buckets shared across stacks through CloudFormation exports with stable names.

The storage stack exports each bucket's name and ARN under ``<prefix>-<role>-bucket-...``;
the other stacks import them. Stable export names keep the templates readable and make the
cdk-nag finding ids of policies on those buckets predictable, so each finding can be
acknowledged exactly (an auto-generated export name changes with construct paths).
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import CfnOutput, Fn, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct

from stacks.compliance import acknowledge


@dataclass(frozen=True)
class BucketExport:
    export_name: str

    @property
    def _name_export(self) -> str:
        return f"{self.export_name}-name"

    @property
    def _arn_export(self) -> str:
        return f"{self.export_name}-arn"

    def publish(self, stack: Stack, construct_id: str, bucket: s3.IBucket) -> None:
        CfnOutput(
            stack, f"{construct_id}Name", value=bucket.bucket_name, export_name=self._name_export
        )
        CfnOutput(
            stack, f"{construct_id}Arn", value=bucket.bucket_arn, export_name=self._arn_export
        )

    def bucket(self, scope: Construct, construct_id: str) -> s3.IBucket:
        return s3.Bucket.from_bucket_attributes(
            scope,
            construct_id,
            bucket_name=Fn.import_value(self._name_export),
            bucket_arn=Fn.import_value(self._arn_export),
        )

    def grant_objects(
        self,
        scope: Construct,
        construct_id: str,
        role: iam.Role,
        actions: list[str],
        key_pattern: str,
        reason: str,
    ) -> s3.IBucket:
        """``actions`` for ``role`` on this bucket's keys matching ``key_pattern``, the
        wildcard's cdk-nag finding acknowledged with ``reason``; the imported bucket."""
        bucket = self.bucket(scope, construct_id)
        role.add_to_principal_policy(
            iam.PolicyStatement(actions=actions, resources=[bucket.arn_for_objects(key_pattern)])
        )
        acknowledge(role, self.objects_finding(key_pattern), reason)
        return bucket

    def objects_finding(self, key_pattern: str) -> str:
        """The cdk-nag finding id of a wildcard over this bucket's keys matching a pattern."""
        return f"AwsSolutions-IAM5[Resource::{self._arn_export}/{key_pattern}]"


@dataclass(frozen=True)
class SharedBuckets:
    data: BucketExport
    artifacts: BucketExport
    access_logs: BucketExport

    @classmethod
    def for_prefix(cls, name_prefix: str) -> SharedBuckets:
        return cls(
            data=BucketExport(f"{name_prefix}-data-bucket"),
            artifacts=BucketExport(f"{name_prefix}-artifact-bucket"),
            access_logs=BucketExport(f"{name_prefix}-access-log-bucket"),
        )
