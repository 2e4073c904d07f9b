"""Shadow testing in the stacks: its settings, the shadow variant, and what follows the pin.

cdk-nag runs on every synthesis here (cdk_stacks.synthesized), shadow on included; cfn-lint
lints the shadow templates too (tests/test_cfn_lint.py).
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Match, Template
from cdk_stacks import (
    PROJECT_CONTEXT,
    context_with,
    granted_actions,
    joined,
    only,
    resources,
    synthesized,
)

from stacks.config import ConfigError, ShadowSettings, load_config
from stacks.shadow import model_artifact_key

PIN = "imdb-sentiment-0123456789abcdef"
SHADOW = context_with(shadowDeployment=True, productionTrainingJob=PIN)
ARTIFACT_BUCKET = {"Fn::ImportValue": "imdb-sentiment-artifact-bucket-name"}
PINNED_URL = {
    "Fn::Join": ["", ["s3://", ARTIFACT_BUCKET, f"/training-jobs/{PIN}/output/model.tar.gz"]]
}


@pytest.fixture(scope="module")
def shadowed() -> Template:
    return synthesized(SHADOW).template("model")


def trained_job() -> str:
    """The job name this app trains under (the same for every setting here)."""
    return synthesized().stacks.model.training.job_name


def config(**settings: Any) -> Any:
    context = {**PROJECT_CONTEXT, **{f"sentiment:{key}": value for key, value in settings.items()}}
    return load_config(context, Path("/project"))


def test_shadow_testing_is_off_by_default_with_no_pin() -> None:
    assert config().shadow == ShadowSettings(enabled=False, production_training_job=None)


def test_the_settings_parse_from_the_command_line() -> None:
    shadow = config(shadowDeployment="true", productionTrainingJob=f"{PIN}-2").shadow

    assert shadow == ShadowSettings(enabled=True, production_training_job=f"{PIN}-2")


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (
            {"shadowDeployment": True, "productionTrainingJob": PIN, "endpointMode": "serverless"},
            "shadowDeployment=true needs a real-time endpoint: SageMaker's serverless endpoints "
            "support neither shadow variants nor more than one production variant",
        ),
        ({"shadowDeployment": True}, "shadowDeployment=true needs sentiment:productionTrainingJob"),
        (
            {"shadowDeployment": True, "productionTrainingJob": ""},
            "needs sentiment:productionTrainingJob",
        ),
        ({"productionTrainingJob": PIN}, "productionTrainingJob is read only with"),
        (
            {"shadowDeployment": True, "productionTrainingJob": "other-app-0123456789abcdef"},
            "productionTrainingJob='other-app-0123456789abcdef': expected one of this app's "
            "training jobs",
        ),
        (
            {"shadowDeployment": True, "productionTrainingJob": f"s3://bucket/{PIN}"},
            "expected one of this app's training jobs",
        ),
        ({"shadowDeployment": "yes"}, "shadowDeployment.*true or false"),
    ],
)
def test_unsupported_combinations_are_refused_at_synth(settings: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace("[", r"\[")):
        config(**settings)


def test_with_shadow_on_the_trained_model_answers_a_copy_beside_the_pinned_one(
    shadowed: Template,
) -> None:
    template = shadowed.to_json()
    models = resources(template, "AWS::SageMaker::Model")
    training = next(iter(resources(template, "Custom::SageMakerTrainingJob")))
    by_url = {
        joined(model["Properties"]["PrimaryContainer"]["ModelDataUrl"]): logical_id
        for logical_id, model in models.items()
    }
    pinned = by_url[joined(PINNED_URL)]
    trained = by_url[joined({"Fn::GetAtt": [training, "ModelDataUrl"]})]

    shadowed.has_resource_properties(
        "AWS::SageMaker::EndpointConfig",
        {
            "ProductionVariants": [
                {
                    "VariantName": "AllTraffic",
                    "ModelName": {"Fn::GetAtt": [pinned, "ModelName"]},
                    "InstanceType": "ml.m5.large",
                    "InitialInstanceCount": 1,
                    "InitialVariantWeight": 1,
                }
            ],
            "ShadowProductionVariants": [
                {
                    "VariantName": "Shadow",
                    "ModelName": {"Fn::GetAtt": [trained, "ModelName"]},
                    "InstanceType": "ml.m5.large",
                    "InitialInstanceCount": 1,
                    "InitialVariantWeight": 1,
                }
            ],
            # One capture for both variants: SageMaker keys each one's files by its name.
            "DataCaptureConfig": Match.object_like({"EnableCapture": True}),
        },
    )
    for model in models.values():
        assert model["Properties"]["EnableNetworkIsolation"] is True


def test_with_shadow_off_there_is_one_model_and_no_shadow_variant() -> None:
    template = synthesized().template("model")

    template.resource_count_is("AWS::SageMaker::Model", 1)
    template.has_resource_properties(
        "AWS::SageMaker::EndpointConfig", {"ShadowProductionVariants": Match.absent()}
    )


@pytest.mark.parametrize("retry", ["", "-2"])
def test_pinning_the_trained_job_promotes_it_alone(retry: str) -> None:
    job = trained_job()
    app = synthesized(context_with(shadowDeployment=True, productionTrainingJob=f"{job}{retry}"))
    template = app.template("model")
    training = next(iter(resources(template.to_json(), "Custom::SageMakerTrainingJob")))

    template.resource_count_is("AWS::SageMaker::Model", 1)
    template.has_resource_properties(
        "AWS::SageMaker::Model",
        {
            "PrimaryContainer": Match.object_like(
                {"ModelDataUrl": {"Fn::GetAtt": [training, "ModelDataUrl"]}}
            )
        },
    )
    template.has_resource_properties(
        "AWS::SageMaker::EndpointConfig", {"ShadowProductionVariants": Match.absent()}
    )
    template.has_output(
        "ProductionTrainingJobName", {"Value": {"Fn::GetAtt": [training, "TrainingJobName"]}}
    )
    assert "ShadowTrainingJobName" not in template.to_json()["Outputs"]


def test_the_promotion_gate_measures_the_new_model_against_the_pinned_one(
    shadowed: Template,
) -> None:
    shadowed.has_resource_properties(
        "Custom::SageMakerTrainingJob", {"ServingTrainingJobName": PIN}
    )
    # Shadow off, or the pin on the trained job itself: the previous job's model serves.
    promoted = context_with(shadowDeployment=True, productionTrainingJob=trained_job())
    for context in ((), promoted):
        template = synthesized(context).template("model")
        (training,) = template.find_resources("Custom::SageMakerTrainingJob").values()
        assert "ServingTrainingJobName" not in training["Properties"]


def test_the_outputs_name_the_pin_and_the_job_to_pin_for_promotion(shadowed: Template) -> None:
    training = next(iter(resources(shadowed.to_json(), "Custom::SageMakerTrainingJob")))

    shadowed.has_output("ProductionTrainingJobName", {"Value": PIN})
    shadowed.has_output(
        "ShadowTrainingJobName", {"Value": {"Fn::GetAtt": [training, "TrainingJobName"]}}
    )
    shadowed.has_output("TrainingJobName", {"Value": {"Fn::GetAtt": [training, "TrainingJobName"]}})


def test_the_update_stays_blue_green_and_keeps_the_production_fleet(shadowed: Template) -> None:
    template = shadowed.to_json()
    endpoint = only(template, "AWS::SageMaker::Endpoint")
    rollback = [
        alarm["AlarmName"]["Ref"]
        for alarm in endpoint["DeploymentConfig"]["AutoRollbackConfiguration"]["Alarms"]
    ]
    alarms = resources(template, "AWS::CloudWatch::Alarm")
    variant_of = {
        logical_id: next(
            d["Value"] for d in alarm["Properties"]["Dimensions"] if d["Name"] == "VariantName"
        )
        for logical_id, alarm in alarms.items()
    }

    assert endpoint["RetainAllVariantProperties"] is True
    assert endpoint["ExcludeRetainedVariantProperties"] == [
        {"VariantPropertyType": "DataCaptureConfig"}
    ]
    assert endpoint["DeploymentConfig"]["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"] == {
        "Type": "ALL_AT_ONCE"
    }
    # The production variant's alarms roll an update back; the shadow's only alert.
    assert sorted(variant_of[alarm] for alarm in rollback) == ["AllTraffic"] * 3
    assert sorted(variant_of.values()) == ["AllTraffic"] * 3 + ["Shadow"] * 3
    shadowed.has_resource_properties(
        "AWS::ApplicationAutoScaling::ScalableTarget",
        {"ResourceId": "endpoint/imdb-sentiment/variant/AllTraffic"},
    )
    shadowed.resource_count_is("AWS::ApplicationAutoScaling::ScalableTarget", 1)


def test_the_endpoint_role_reads_both_models_and_writes_both_variants_capture() -> None:
    app = synthesized(SHADOW)
    granted = granted_actions(app.stacks.model.endpoint.role)
    readable = granted["s3:GetObject"].split("/", 1)[1]
    writable = granted["s3:PutObject"].split("/", 1)[1]

    for job in (PIN, trained_job()):
        assert fnmatchcase(model_artifact_key(job), readable), job
    # SageMaker writes each variant's records under <destination>/<endpoint>/<variant>/.
    for variant in ("AllTraffic", "Shadow"):
        assert fnmatchcase(f"capture/imdb-sentiment/{variant}/2026/12/02/16/x.jsonl", writable)


def test_the_smoke_test_and_the_drift_report_follow_the_production_model() -> None:
    app = synthesized(SHADOW)
    model, web = app.template("model"), app.template("web")

    model.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Handler": "smoke_check.handler.handler",
            "Environment": {
                "Variables": Match.object_like(
                    {"MODEL_DATA_URL": PINNED_URL, "TRAINING_JOB_NAME": PIN}
                )
            },
        },
    )
    web.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Handler": "drift.handler.handler",
            "Environment": {"Variables": Match.object_like({"MODEL_DATA_URL": PINNED_URL})},
        },
    )


def test_the_dashboard_shows_the_shadow_beside_production() -> None:
    web = synthesized(SHADOW).template("web").to_json()
    body = joined(only(web, "AWS::CloudWatch::Dashboard")["DashboardBody"])

    assert "Shadow vs production: model latency (microseconds)" in body
    assert '"VariantName","Shadow"' in body
    assert "Shadow vs production" not in joined(
        only(synthesized().template("web").to_json(), "AWS::CloudWatch::Dashboard")["DashboardBody"]
    )
