"""One hyperparameter schema (contract/hyperparameters.py) for train.py, synthesis and
`sentiment train`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from contract import hyperparameters
from contract.hyperparameters import HyperparameterError, checked
from contract.layout import MODEL_SOURCE_DIR, PROJECT_ROOT
from sentiment import cli, training_run
from sentiment.model_loader import import_isolated


@pytest.fixture(scope="module")
def train():
    return import_isolated(MODEL_SOURCE_DIR, "train")


def test_train_py_reads_every_hyperparameter_with_the_schema_default(train) -> None:
    args = vars(train.parse_args([]))
    expected = {h.name.replace("-", "_"): h.default for h in hyperparameters.HYPERPARAMETERS}
    assert {name: args[name] for name in expected} == expected
    assert set(args) - set(expected) == {"checkpoint_dir", "failure_file"}


def test_values_are_passed_as_sagemaker_passes_them_and_checked() -> None:
    values = {"epochs": 2, "bidirectional": False, "dropout": "0.5", "learning-rate": 1e-3}
    assert checked(values) == {
        "bidirectional": "false",
        "dropout": "0.5",
        "epochs": "2",
        "learning-rate": "0.001",
    }
    assert hyperparameters.as_arguments({"epochs": "2", "dropout": "0.5"}) == [
        "--dropout",
        "0.5",
        "--epochs",
        "2",
    ]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"epoch": 2}, "unknown hyperparameter 'epoch'; did you mean 'epochs'"),
        ({"zzz": 1}, "unknown hyperparameter 'zzz'; known: epochs, batch-size"),
        ({"epochs": "two"}, "'epochs': expected int, got 'two'"),
        ({"epochs": 0}, "'epochs': must be at least 1"),
        ({"learning-rate": 0}, "'learning-rate': must be above 0"),
        ({"bidirectional": "maybe"}, "'bidirectional': expected bool"),
        ({"seed": None}, "'seed': a value is a string, a number or a boolean"),
    ],
)
def test_bad_values_are_refused_with_the_hyperparameter_named(values: dict, message: str) -> None:
    with pytest.raises(HyperparameterError, match=message):
        checked(values)


def test_an_argument_error_lands_in_the_failure_file(train, tmp_path: Path) -> None:
    failure = tmp_path / "output" / "failure"
    with pytest.raises(SystemExit) as exit_:
        train.main(["--epochs", "two", "--failure-file", str(failure)])
    assert exit_.value.code == 1
    assert "'epochs': expected int, got 'two'" in failure.read_text()

    train_unknown = ["--epocs", "2", f"--failure-file={failure}"]
    with pytest.raises(SystemExit):
        train.main(train_unknown)
    assert "unrecognized arguments: --epocs 2" in failure.read_text()


def test_sentiment_train_trains_with_cdk_json_hyperparameters_first(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    passed = []

    def train(
        _data: Path,
        model_dir: Path,
        given: list[str],
        _checkpoints: Path,
        serving_model: Path | None = None,
    ) -> Path:
        passed.append(given)
        return model_dir

    monkeypatch.setattr(training_run, "train", train)
    cdk_json = tmp_path / "cdk.json"
    cdk_json.write_text(json.dumps({"context": {"sentiment:hyperparameters": {"epochs": 4}}}))

    assert cli.main(["train", "--cdk-json", str(cdk_json), "--epochs", "2"]) == 0
    assert cli.main(["train", "--no-cdk-json", "--seed", "7"]) == 0
    cdk_json.write_text(json.dumps({"context": {"sentiment:hyperparameters": {"epoch": 4}}}))
    assert cli.main(["train", "--cdk-json", str(cdk_json)]) == 2

    # train.py reads the last of a repeated option: the command line wins over cdk.json.
    assert passed == [["--epochs", "4", "--epochs", "2"], ["--seed", "7"]]


def test_the_project_cdk_json_hyperparameters_are_valid() -> None:
    hyperparameters.cdk_json_hyperparameters(PROJECT_ROOT / "cdk.json")


@pytest.mark.parametrize(
    ("name", "key"),
    [("promotion-tolerance", "promotionTolerance"), ("force-promotion", "forcePromotion")],
)
def test_the_gates_settings_have_their_own_context_keys(name: str, key: str) -> None:
    # Among the model's hyperparameters they would feed the job name's hash: retrain for nothing.
    with pytest.raises(
        HyperparameterError, match=f"'{name}' has its own context key, sentiment:{key}"
    ):
        hyperparameters.from_context({name: "true" if "force" in name else "0.02"})
    assert hyperparameters.gate_hyperparameters(0.02, True) == {
        "force-promotion": "true",
        "promotion-tolerance": "0.02",
    }


def test_sentiment_train_gives_the_serving_model_to_the_job(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    given = []

    def train(
        _data: Path,
        model_dir: Path,
        passed: list[str],
        _checkpoints: Path,
        serving_model: Path | None = None,
    ) -> Path:
        given.append((passed, serving_model))
        return model_dir

    monkeypatch.setattr(training_run, "train", train)
    serving = tmp_path / "serving.tar.gz"

    arguments = ["train", "--no-cdk-json", "--serving-model", str(serving)]
    assert cli.main([*arguments, "--force-promotion", "true"]) == 0
    assert cli.main(["train", "--no-cdk-json"]) == 0

    assert given == [(["--force-promotion", "true"], serving), ([], None)]
