"""Shadow testing in AWS: which trained model each variant of the endpoint serves.

With ``sentiment:shadowDeployment`` on, the endpoint configuration carries two variants:
the production variant (``AllTraffic``) serves the model of the pinned training job
(``sentiment:productionTrainingJob``) and answers every caller; the shadow variant
(``Shadow``, ``ShadowProductionVariants``) serves the model this deployment trained, with
the same instance type and initial count, and SageMaker sends it a copy of each request.
Its answers are never returned: data capture records them under
``capture/<endpoint>/Shadow/`` (the capture key carries the variant name), and CloudWatch
reports its metrics under its own ``VariantName``. `sentiment compare` pairs the two.

SageMaker hosts at most one shadow variant, beside exactly one production variant
(CreateEndpointConfig's ShadowProductionVariants), and not on serverless endpoints, which
support neither shadow variants nor several production variants: stacks/config.py refuses
that combination at synthesis. The production variant keeps its name, as blue/green updates
require, so an update that adds, changes or drops the shadow goes through the same
blue/green deployment, rollback alarms (the production variant's only: a failing shadow
alerts but never rolls production back) and retained instance count as any other.

Promotion is one settings change: pin the shadow's job (the ``ShadowTrainingJobName``
output). A pin on the job this deployment trains serves that model in production alone, as
with shadow testing off, so the next retraining lands in the shadow again by itself.
"""

from __future__ import annotations

from dataclasses import dataclass

from constructs import Construct

from stacks.config import ShadowSettings
from stacks.shared_buckets import BucketExport
from stacks.training import MODEL_ARTIFACT_SUFFIX, OUTPUT_PREFIX


@dataclass(frozen=True)
class ServedModel:
    """A trained model a variant serves: the job that trained it, as known at synthesis (its
    name is what makes a new model a new smoke-test run), and its model.tar.gz."""

    job_name: str
    model_data_url: str


def model_artifact_key(job_name: str) -> str:
    """Where a training job of this app leaves its model in the artifact bucket."""
    return f"{OUTPUT_PREFIX}{job_name}{MODEL_ARTIFACT_SUFFIX}"


def served_models(
    scope: Construct,
    construct_id: str,
    *,
    trained: ServedModel,
    shadow: ShadowSettings,
    artifacts: BucketExport,
) -> tuple[ServedModel, ServedModel | None]:
    """(production, shadow): the trained model serves production alone unless shadow testing
    pins another job, whose model then serves production and the trained one the shadow."""
    if not shadow.shadows(trained.job_name) or shadow.production_training_job is None:
        return trained, None
    pinned = shadow.production_training_job
    bucket = artifacts.bucket(scope, construct_id)
    return ServedModel(pinned, bucket.s3_url_for_object(model_artifact_key(pinned))), trained
