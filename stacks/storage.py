"""S3 buckets for the data, the model artifacts and the access logs; the data upload."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from aws_cdk import Duration, RemovalPolicy, Size
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_deployment as s3_deployment
from constructs import Construct

from contract.capture import CAPTURE_PREFIX
from contract.feedback import FEEDBACK_PREFIX
from contract.files import MANIFEST_FILE, OPTIONAL_CHANNELS, REQUIRED_CHANNELS
from stacks.compliance import acknowledge, acknowledge_bucket_deployment

# The channels train.py reads; "unlabeled" is optional (word-vector pre-training).


class PreparedDataMissing(FileNotFoundError):
    """The prepared dataset directory is absent or incomplete."""


@dataclass(frozen=True)
class PreparedData:
    """A prepared dataset directory and the content hash that names its S3 prefix."""

    directory: Path
    sha256: str

    @property
    def channels(self) -> tuple[str, ...]:
        optional = tuple(name for name in OPTIONAL_CHANNELS if (self.directory / name).is_dir())
        return REQUIRED_CHANNELS + optional

    @property
    def key_prefix(self) -> str:
        # A new dataset lands beside the old one: a running job never sees files change.
        return f"prepared/{self.sha256[:16]}/"


def check_prepared_data(directory: Path) -> None:
    missing = [name for name in REQUIRED_CHANNELS if not (directory / name).is_dir()]
    if not (directory / MANIFEST_FILE).is_file():
        missing.append(MANIFEST_FILE)
    if missing:
        raise PreparedDataMissing(
            f"{directory} is not a prepared dataset (missing: {', '.join(missing)}); "
            "run `sentiment prepare` first, or point the context key "
            "sentiment:preparedDataDir at one"
        )


def _removal_policy(retain: bool) -> RemovalPolicy:
    return RemovalPolicy.RETAIN if retain else RemovalPolicy.DESTROY


def secure_bucket(
    scope: Construct,
    construct_id: str,
    *,
    retain: bool,
    access_logs: s3.IBucket | None,
    versioned: bool,
) -> s3.Bucket:
    """A private, encrypted, TLS-only bucket whose access is logged to ``access_logs``.

    Without ``access_logs`` the caller acknowledges the missing log with its reason.
    """
    return s3.Bucket(
        scope,
        construct_id,
        encryption=s3.BucketEncryption.S3_MANAGED,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
        enforce_ssl=True,
        versioned=versioned,
        server_access_logs_bucket=access_logs,
        server_access_logs_prefix=f"s3/{construct_id}/" if access_logs else None,
        removal_policy=_removal_policy(retain),
        auto_delete_objects=not retain,
        lifecycle_rules=[
            s3.LifecycleRule(
                abort_incomplete_multipart_upload_after=Duration.days(7),
                noncurrent_version_expiration=Duration.days(90) if versioned else None,
            )
        ],
    )


class Storage(Construct):
    """The data, model-artifact and access-log buckets.

    With the default removal policy (retain), deleting the stacks leaves all three buckets
    and everything in them: trained models and data are never deleted as a side effect.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        retain: bool,
        capture_retention_days: int,
        feedback_retention_days: int,
    ) -> None:
        super().__init__(scope, construct_id)
        self.access_logs = s3.Bucket(
            self,
            "AccessLogs",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            # CloudFront's standard logs are delivered with an ACL grant: ACLs must be on.
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_PREFERRED,
            enforce_ssl=True,
            removal_policy=_removal_policy(retain),
            auto_delete_objects=not retain,
            lifecycle_rules=[s3.LifecycleRule(expiration=Duration.days(365))],
        )
        acknowledge(
            self.access_logs,
            "AwsSolutions-S1",
            "This is the access-log bucket; logging its own access would log the logging.",
        )
        self.data = secure_bucket(
            self, "Data", retain=retain, access_logs=self.access_logs, versioned=True
        )
        self.artifacts = secure_bucket(
            self, "ModelArtifacts", retain=retain, access_logs=self.access_logs, versioned=True
        )
        # Captured traffic holds what visitors typed: kept only as long as configured, and
        # in a versioned bucket its old versions go the same day.
        self.artifacts.add_lifecycle_rule(
            id="ExpireCapturedTraffic",
            prefix=f"{CAPTURE_PREFIX}/",
            expiration=Duration.days(capture_retention_days),
            noncurrent_version_expiration=Duration.days(1),
        )
        # Feedback holds a visitor's review too; a record taken back (deleted) leaves a
        # noncurrent version, gone the next day.
        self.artifacts.add_lifecycle_rule(
            id="ExpireFeedback",
            prefix=f"{FEEDBACK_PREFIX}/",
            expiration=Duration.days(feedback_retention_days),
            noncurrent_version_expiration=Duration.days(1),
        )


class PreparedDataUpload(Construct):
    """Uploads the prepared dataset directory under its content-hash prefix at deploy time."""

    def __init__(
        self, scope: Construct, construct_id: str, *, bucket: s3.Bucket, data: PreparedData
    ) -> None:
        super().__init__(scope, construct_id)
        self.deployment = s3_deployment.BucketDeployment(
            self,
            "Upload",
            sources=[s3_deployment.Source.asset(str(data.directory))],
            destination_bucket=bucket,
            destination_key_prefix=data.key_prefix,
            # The dataset is unpacked in the upload function's /tmp before the sync.
            memory_limit=1024,
            ephemeral_storage_size=Size.gibibytes(4),
            retain_on_delete=True,
        )
        acknowledge_bucket_deployment(self.deployment, bucket, invalidates=False)
        self.data = data
