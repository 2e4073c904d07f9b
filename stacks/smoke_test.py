"""The deployment proves a new model by asking the live endpoint, not only its health check.

In the real serving container a model that fails to load keeps /ping healthy and answers 500
to every request, and the blue/green rollback alarms only fire if traffic arrives while the
new fleet bakes. So once the endpoint is created or updated, a CDK trigger invokes
lambda_src/smoke_check/. The training job's name, a hash of code, data, hyperparameters and
image known at synthesis, is in the function's environment: a new model is a new function
version, which runs the trigger again (the model's URL alone, known only at deploy time, would
not change the version). The function asks the endpoint the model's own smoke
test and fails, and with it the deployment, if any answer errors or differs from training's;
CloudFormation then rolls the endpoint back to the configuration that served before.
"""

from __future__ import annotations

from pathlib import Path

from aws_cdk import Duration, triggers
from aws_cdk import aws_iam as iam
from constructs import Construct

from stacks.functions import PythonFunction
from stacks.serving import SentimentEndpoint
from stacks.shared_buckets import BucketExport
from stacks.training import OUTPUT_PREFIX


class DeploymentSmokeTest(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        endpoint: SentimentEndpoint,
        model_data_url: str,
        training_job_name: str,
        artifacts: BucketExport,
        code_dir: Path,
        log_retention_days: int,
    ) -> None:
        super().__init__(scope, construct_id)
        self.handler = PythonFunction(
            self,
            "Handler",
            handler="smoke_check.handler.handler",
            code_dir=code_dir,
            description="Asks the endpoint the new model's smoke test after each deployment",
            log_retention_days=log_retention_days,
            timeout=Duration.minutes(5),
            environment={
                "ENDPOINT_NAME": endpoint.endpoint_name,
                "MODEL_DATA_URL": model_data_url,
                "TRAINING_JOB_NAME": training_job_name,
            },
        )
        self.handler.role.add_to_policy(
            iam.PolicyStatement(
                actions=["sagemaker:InvokeEndpoint"], resources=[endpoint.endpoint_arn]
            )
        )
        artifacts.grant_objects(
            self,
            "ArtifactBucket",
            self.handler.role,
            ["s3:GetObject"],
            f"{OUTPUT_PREFIX}*",
            "Reads the deployed model.tar.gz (its smoke test), whose key the training job "
            "chooses at run time.",
        )
        self.trigger = triggers.Trigger(
            self,
            "AfterEndpointUpdate",
            handler=self.handler.function,
            execute_after=[endpoint.endpoint],
            execute_on_handler_change=True,
            timeout=Duration.minutes(5),
        )
