"""The typed configuration (stacks/config.py), the training fingerprint and the images."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from contract.layout import PROJECT_ROOT
from stacks.config import (
    LOG_RETENTION_DAYS,
    ConfigError,
    EndpointMode,
    StoragePolicy,
    load_config,
)
from stacks.fingerprint import directory_sha256, training_fingerprint, training_job_name
from stacks.images import processor, pytorch_image
from stacks.log_groups import _RETENTION

ROOT = Path("/project")
CDK_JSON = Path(__file__).resolve().parent.parent / "cdk.json"


def test_defaults_are_the_documented_ones() -> None:
    config = load_config({}, ROOT)

    assert config.name_prefix == "imdb-sentiment"
    assert config.prepared_data_dir == ROOT / "data/prepared"
    assert config.storage_policy is StoragePolicy.RETAIN
    assert config.retains_storage
    assert config.endpoint.name == "imdb-sentiment"
    assert config.endpoint.mode is EndpointMode.REALTIME
    assert config.training.hyperparameters == {}
    assert config.training.wait_timeout_minutes == 60
    assert (config.training.promotion_tolerance, config.training.force_promotion) == (0.01, False)
    assert (config.images.framework_version, config.images.python_version) == ("2.6.0", "py312")


def test_cdk_json_context_is_valid_and_restates_the_defaults() -> None:
    context = json.loads(CDK_JSON.read_text())["context"]

    assert load_config(context, ROOT) == load_config({}, ROOT)


def test_command_line_strings_are_parsed() -> None:
    config = load_config(
        {
            "sentiment:endpointMode": "serverless",
            "sentiment:serverlessMemoryMb": "3072",
            "sentiment:trainingUseSpot": "true",
            "sentiment:trainingMaxRuntimeMinutes": "40",
            "sentiment:trainingMaxWaitMinutes": "50",
            "sentiment:apiRateLimit": "2.5",
            "sentiment:hyperparameters": '{"epochs": 3, "learning-rate": "0.001"}',
            "sentiment:preparedDataDir": "/data/elsewhere",
            "sentiment:promotionTolerance": "0.02",
            "sentiment:forcePromotion": "true",
        },
        ROOT,
    )

    assert config.endpoint.mode is EndpointMode.SERVERLESS
    assert config.endpoint.serverless_memory_mb == 3072
    assert config.training.use_spot is True
    assert config.api.rate_limit == 2.5
    assert dict(config.training.hyperparameters) == {"epochs": "3", "learning-rate": "0.001"}
    assert config.prepared_data_dir == Path("/data/elsewhere")
    assert config.training.gate_hyperparameters == {
        "promotion-tolerance": "0.02",
        "force-promotion": "true",
    }


def test_endpoint_name_follows_the_prefix_unless_set() -> None:
    assert load_config({"sentiment:namePrefix": "dev-sentiment"}, ROOT).endpoint.name == (
        "dev-sentiment"
    )
    assert load_config({"sentiment:endpointName": "reviews"}, ROOT).endpoint.name == "reviews"


@pytest.mark.parametrize(
    ("context", "message"),
    [
        ({"sentiment:endpointMode": "batch"}, "endpointMode"),
        ({"sentiment:namePrefix": "Imdb"}, "namePrefix"),
        ({"sentiment:namePrefix": "a" * 41}, "at most 40"),
        ({"sentiment:endpointName": "bad_name"}, "endpointName"),
        ({"sentiment:trainingInstanceType": "m5.large"}, "trainingInstanceType"),
        ({"sentiment:trainingUseSpot": "yes"}, "true or false"),
        ({"sentiment:endpointMinInstances": 0}, "from 1 to 100"),
        ({"sentiment:endpointMinInstances": 3}, "below"),
        ({"sentiment:serverlessMemoryMb": 1500}, "1024"),
        ({"sentiment:logRetentionDays": 10}, "days"),
        ({"sentiment:removalPolicy": "snapshot"}, "removalPolicy"),
        ({"sentiment:trainingWaitMinutes": 90}, "from 5 to 60"),
        ({"sentiment:trainingMaxRuntimeMinutes": 61}, "waits only 60"),
        # Start, image pull and upload come on top of the run time.
        ({"sentiment:trainingMaxRuntimeMinutes": 51}, "plus about 10 to start and upload"),
        (
            {"sentiment:trainingUseSpot": True, "sentiment:trainingMaxWaitMinutes": 30},
            "at least",
        ),
        (
            {"sentiment:trainingUseSpot": True, "sentiment:trainingMaxWaitMinutes": 120},
            "outside the deployment",
        ),
        ({"sentiment:hyperparameters": {"sagemaker_program": "x.py"}}, "unknown hyperparameter"),
        ({"sentiment:hyperparameters": {"epocs": 2}}, "'epocs'; did you mean 'epochs'"),
        ({"sentiment:hyperparameters": {"epochs": [1]}}, "'epochs': a value is a string"),
        ({"sentiment:hyperparameters": {"dropout": "lots"}}, "'dropout': expected float"),
        ({"sentiment:hyperparameters": {"dropout": 1}}, "'dropout': must be below 1"),
        ({"sentiment:hyperparameters": "[1, 2]"}, "object"),
        ({"sentiment:apiBurstLimit": True}, "integer"),
        ({"sentiment:capturePercent": 101}, "capturePercent.*from 0 to 100"),
        ({"sentiment:capturePercent": 12.5}, "capturePercent.*integer"),
        ({"sentiment:captureRetentionDays": 0}, "captureRetentionDays.*from 1 to 3650"),
        ({"sentiment:feedbackPerSourcePerDay": -1}, "feedbackPerSourcePerDay.*from 0 to"),
        ({"sentiment:feedbackRetentionDays": 0}, "feedbackRetentionDays.*from 1 to 3650"),
        ({"sentiment:endpointModes": "serverless"}, "unknown context keys"),
        ({"sentiment:promotionTolerance": 1}, "promotionTolerance.*must be below 1"),
        ({"sentiment:promotionTolerance": -0.1}, "promotionTolerance.*at least 0"),
        ({"sentiment:promotionTolerance": True}, "promotionTolerance.*number"),
        ({"sentiment:forcePromotion": "yes"}, "forcePromotion.*true or false"),
        (
            {"sentiment:hyperparameters": {"force-promotion": True}},
            "own context key, sentiment:forcePromotion",
        ),
    ],
)
def test_bad_values_are_rejected_with_the_key_named(context: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(context, ROOT)


def test_config_is_immutable() -> None:
    config = load_config({"sentiment:hyperparameters": {"epochs": 2}}, ROOT)

    with pytest.raises(AttributeError):
        config.name_prefix = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        config.training.hyperparameters["epochs"] = "3"  # type: ignore[index]


def test_every_accepted_log_retention_has_a_cloudwatch_value() -> None:
    assert set(LOG_RETENTION_DAYS) == set(_RETENTION)


FINGERPRINT_INPUTS = {
    "code_sha256": "c" * 64,
    "data_sha256": "d" * 64,
    "hyperparameters": {"epochs": "3"},
    "image": "pytorch-training:2.6.0-cpu-py312",
}


@pytest.mark.parametrize(
    "change",
    [
        {"code_sha256": "e" * 64},
        {"data_sha256": "e" * 64},
        {"hyperparameters": {"epochs": "4"}},
        {"hyperparameters": {}},
        {"image": "pytorch-training:2.6.0-gpu-py312"},
    ],
)
def test_fingerprint_changes_with_each_training_input(change: dict) -> None:
    assert training_fingerprint(**FINGERPRINT_INPUTS) != training_fingerprint(
        **{**FINGERPRINT_INPUTS, **change}
    )


def test_fingerprint_ignores_hyperparameter_order() -> None:
    first = {**FINGERPRINT_INPUTS, "hyperparameters": {"a": "1", "b": "2"}}
    second = {**FINGERPRINT_INPUTS, "hyperparameters": {"b": "2", "a": "1"}}

    assert training_fingerprint(**first) == training_fingerprint(**second)


def test_job_names_fit_sagemaker() -> None:
    name = training_job_name("a" * 40, training_fingerprint(**FINGERPRINT_INPUTS))

    assert len(name) <= 63 - len("-9")
    assert name.replace("-", "").isalnum()


def test_directory_hash_follows_content_and_paths_but_not_caches(tmp_path: Path) -> None:
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "a.bin").write_bytes(b"1")
    original = directory_sha256(tmp_path)

    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "__pycache__" / "x.pyc").write_bytes(b"cache")
    assert directory_sha256(tmp_path) == original

    (tmp_path / "train" / "a.bin").write_bytes(b"2")
    changed_content = directory_sha256(tmp_path)
    (tmp_path / "train" / "a.bin").rename(tmp_path / "train" / "b.bin")
    assert len({original, changed_content, directory_sha256(tmp_path)}) == 3


def test_images_follow_the_pinned_release_and_the_instance_family() -> None:
    images = load_config({}, ROOT).images

    assert processor("ml.m5.xlarge") == "cpu"
    assert processor("ml.g5.xlarge") == "gpu"
    assert pytorch_image("inference", images, "cpu").name == "pytorch-inference:2.6.0-cpu-py312"


def test_cdk_json_shows_the_loaders_defaults_and_nothing_else() -> None:
    # Each default is stated once, in the settings classes; cdk.json lists the same values so
    # that a reader sees every setting there, and this holds the two together.
    context = json.loads((PROJECT_ROOT / "cdk.json").read_text())["context"]
    assert load_config(context, ROOT) == load_config({}, ROOT)
