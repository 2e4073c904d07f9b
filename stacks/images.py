"""The AWS PyTorch Deep Learning Container images, for whichever region the stack deploys to.

The stacks are environment-agnostic, so the region is only known at deploy time. aws-cdk-lib's
region_info knows the ECR account that hosts the Deep Learning Containers in each region
(``FactName.DLC_REPOSITORY_ACCOUNT``); ``Stack.regional_fact`` turns that into a CloudFormation
mapping looked up with the deploy-time region. The framework version and tag scheme come from
the DLC release notes, pinned in the config — so no SageMaker SDK (and its large install) is
needed to synthesize. A region missing from the mapping fails the deployment at that lookup.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Aws, Stack
from aws_cdk.region_info import FactName
from constructs import Construct

from stacks.config import PyTorchImages

_GPU_FAMILIES = ("ml.p", "ml.g")


def processor(instance_type: str) -> str:
    """The image flavour an instance type runs: 'gpu' on the P and G families, else 'cpu'."""
    return "gpu" if instance_type.startswith(_GPU_FAMILIES) else "cpu"


@dataclass(frozen=True)
class ContainerImage:
    """One DLC image: ``<account>.dkr.ecr.<region>.<suffix>/<repository>:<tag>``."""

    repository: str
    tag: str

    @property
    def name(self) -> str:
        """Region-independent identity of the image (what the training fingerprint hashes)."""
        return f"{self.repository}:{self.tag}"

    def uri(self, scope: Construct) -> str:
        return f"{_registry_account(scope)}.dkr.ecr.{Aws.REGION}.{Aws.URL_SUFFIX}/{self.name}"

    def repository_arn(self, scope: Construct) -> str:
        return Stack.of(scope).format_arn(
            service="ecr",
            account=_registry_account(scope),
            resource="repository",
            resource_name=self.repository,
        )


def pytorch_image(purpose: str, images: PyTorchImages, flavour: str) -> ContainerImage:
    """The PyTorch image for ``purpose`` ("training" or "inference"), "cpu" or "gpu"."""
    return ContainerImage(
        f"pytorch-{purpose}", f"{images.framework_version}-{flavour}-{images.python_version}"
    )


def _registry_account(scope: Construct) -> str:
    return Stack.of(scope).regional_fact(FactName.DLC_REPOSITORY_ACCOUNT)
