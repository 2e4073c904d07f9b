"""The AWS PyTorch Deep Learning Container images, for whichever region the stack deploys to.

The stacks are environment-agnostic, so the region is only known at deploy time: the ECR
account that hosts the images in each region goes into a CloudFormation mapping looked up with
the deploy-time region, and a template rule refuses any other region before a resource is
created, saying why. The framework version and tag scheme come from the DLC release notes,
pinned in the config — so no SageMaker SDK (and its large install) is needed to synthesize.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Aws, CfnMapping, CfnRule, CfnRuleAssertion, Fn, Stack, Token
from constructs import Construct

from stacks.config import PyTorchImages

_GPU_FAMILIES = ("ml.p", "ml.g")

# Where AWS publishes the PyTorch 2.6.0 training and inference images (the same account for
# both), as the SageMaker Python SDK lists them (sagemaker-core's image_uri_config/pytorch.json,
# August 2026). Not the China regions: the web stack's CloudFront distribution with origin
# access control and its response-headers policy cannot be deployed there.
DLC_ACCOUNTS = {
    "af-south-1": "626614931356",
    "ap-east-1": "871362719292",
    "ap-east-2": "975050140332",
    "ap-northeast-1": "763104351884",
    "ap-northeast-2": "763104351884",
    "ap-northeast-3": "364406365360",
    "ap-south-1": "763104351884",
    "ap-south-2": "772153158452",
    "ap-southeast-1": "763104351884",
    "ap-southeast-2": "763104351884",
    "ap-southeast-3": "907027046896",
    "ap-southeast-4": "457447274322",
    "ap-southeast-5": "550225433462",
    "ap-southeast-6": "633930458069",
    "ap-southeast-7": "590183813437",
    "ca-central-1": "763104351884",
    "ca-west-1": "204538143572",
    "eu-central-1": "763104351884",
    "eu-central-2": "380420809688",
    "eu-north-1": "763104351884",
    "eu-south-1": "692866216735",
    "eu-south-2": "503227376785",
    "eu-west-1": "763104351884",
    "eu-west-2": "763104351884",
    "eu-west-3": "763104351884",
    "il-central-1": "780543022126",
    "me-central-1": "914824155844",
    "me-south-1": "217643126080",
    "mx-central-1": "637423239942",
    "sa-east-1": "763104351884",
    "us-east-1": "763104351884",
    "us-east-2": "763104351884",
    "us-gov-east-1": "446045086412",
    "us-gov-west-1": "442386744353",
    "us-west-1": "763104351884",
    "us-west-2": "763104351884",
}


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


class UnsupportedRegion(ValueError):
    """The stack is pinned to a region where AWS publishes no PyTorch images."""


def _registry_account(scope: Construct) -> str:
    stack = Stack.of(scope)
    mapping = stack.node.try_find_child("DlcAccounts")
    if mapping is None:
        if not Token.is_unresolved(stack.region) and stack.region not in DLC_ACCOUNTS:
            raise UnsupportedRegion(
                f"no AWS PyTorch images in {stack.region}; deploy to one of "
                f"{', '.join(DLC_ACCOUNTS)}"
            )
        mapping = CfnMapping(
            stack,
            "DlcAccounts",
            mapping={region: {"account": account} for region, account in DLC_ACCOUNTS.items()},
        )
        CfnRule(
            stack,
            "SupportedRegion",
            assertions=[
                CfnRuleAssertion(
                    assert_=Fn.condition_contains(list(DLC_ACCOUNTS), Aws.REGION),
                    assert_description=(
                        "AWS publishes the PyTorch Deep Learning Container images this app "
                        "trains and serves with in these regions only: " + ", ".join(DLC_ACCOUNTS)
                    ),
                )
            ],
        )
    assert isinstance(mapping, CfnMapping)
    return mapping.find_in_map(Aws.REGION, "account")
