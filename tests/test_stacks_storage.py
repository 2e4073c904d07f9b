"""The storage stack: three private, encrypted, TLS-only buckets and the dataset upload."""

from __future__ import annotations

from typing import Any

import pytest
from cdk_stacks import context_with, only, resources, synthesized


@pytest.fixture(scope="module")
def storage() -> dict[str, Any]:
    return synthesized().template("storage").to_json()


def test_every_bucket_is_encrypted_private_and_retained(storage: dict[str, Any]) -> None:
    buckets = resources(storage, "AWS::S3::Bucket")

    assert len(buckets) == 3
    for bucket in buckets.values():
        properties = bucket["Properties"]
        assert properties["BucketEncryption"]["ServerSideEncryptionConfiguration"][0][
            "ServerSideEncryptionByDefault"
        ] == {"SSEAlgorithm": "AES256"}
        assert properties["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }
        # Deleting the stack leaves data and models in place.
        assert bucket["DeletionPolicy"] == bucket["UpdateReplacePolicy"] == "Retain"


def test_every_bucket_refuses_plain_http(storage: dict[str, Any]) -> None:
    policies = resources(storage, "AWS::S3::BucketPolicy")

    assert len(policies) == 3
    for policy in policies.values():
        assert {
            "Action": "s3:*",
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            "Effect": "Deny",
            "Principal": {"AWS": "*"},
        }.items() <= policy["Properties"]["PolicyDocument"]["Statement"][0].items()


def test_data_and_artifacts_are_versioned_and_access_logged(storage: dict[str, Any]) -> None:
    logged = [
        bucket["Properties"]
        for bucket in resources(storage, "AWS::S3::Bucket").values()
        if "LoggingConfiguration" in bucket["Properties"]
    ]

    assert len(logged) == 2
    for properties in logged:
        assert properties["VersioningConfiguration"] == {"Status": "Enabled"}
        assert properties["LoggingConfiguration"]["DestinationBucketName"]["Ref"].startswith(
            "BucketsAccessLogs"
        )


def test_prepared_data_is_uploaded_under_its_content_hash(storage: dict[str, Any]) -> None:
    app = synthesized()
    upload = only(storage, "Custom::CDKBucketDeployment")

    assert upload["DestinationBucketKeyPrefix"] == app.stacks.storage.upload.data.key_prefix
    assert upload["DestinationBucketKeyPrefix"].startswith("prepared/")
    # The uploaded copy outlives the stack, like the bucket.
    assert upload["RetainOnDelete"] is True


def test_buckets_are_exported_under_stable_names(storage: dict[str, Any]) -> None:
    exported = {
        output["Export"]["Name"] for output in storage["Outputs"].values() if "Export" in output
    }

    assert {
        "imdb-sentiment-data-bucket-name",
        "imdb-sentiment-data-bucket-arn",
        "imdb-sentiment-artifact-bucket-name",
        "imdb-sentiment-artifact-bucket-arn",
        "imdb-sentiment-access-log-bucket-name",
        "imdb-sentiment-access-log-bucket-arn",
    } <= exported


def test_destroy_policy_deletes_buckets_only_when_asked() -> None:
    storage = synthesized(context_with(removalPolicy="destroy")).template("storage").to_json()

    for bucket in resources(storage, "AWS::S3::Bucket").values():
        assert bucket["DeletionPolicy"] == "Delete"
    assert len(resources(storage, "Custom::S3AutoDeleteObjects")) == 3
