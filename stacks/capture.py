"""Captured traffic in AWS: who writes the records (contract/capture.py) and where.

A real-time endpoint records its own traffic (its DataCaptureConfig); a serverless one cannot,
so the prediction Lambda records it. Either writer gets this one grant: PutObject under the
artifact bucket's ``capture/`` prefix, whose lifecycle rule (stacks/storage.py) deletes the
records after the configured days. The bucket is private, TLS-only and encrypted at rest.
"""

from __future__ import annotations

from aws_cdk import aws_iam as iam
from constructs import Construct

from contract.capture import CAPTURE_PREFIX
from stacks.shared_buckets import BucketExport


def grant_capture_writes(scope: Construct, role: iam.Role, artifacts: BucketExport) -> str:
    """Let ``role`` write capture records; the destination's S3 URL."""
    bucket = artifacts.grant_objects(
        scope,
        "CaptureBucket",
        role,
        ["s3:PutObject"],
        f"{CAPTURE_PREFIX}/*",
        "Writes captured-traffic records, whose keys carry the hour and a random id.",
    )
    return bucket.s3_url_for_object(CAPTURE_PREFIX)
