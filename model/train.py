"""SageMaker training entry point (script mode): train the sentiment network.

SageMaker's PyTorch training container runs this file from the extracted source
tarball with hyperparameters as `--name value` arguments and paths in SM_* variables;
`sentiment train` runs it the same way on a laptop. This file reads the arguments and the
job's paths and writes the model directory; trainer.py takes the steps:

1. word2vec embeddings from the training and unlabeled reviews (network.py explains
   the two branches),
2. the n-gram branch: naive-Bayes ratios from the whole reviews, then its weights,
   fitted on the reviews and short crops of them (dataset.short_crops),
3. the LSTM branch on the whole reviews, epoch by epoch, with a cosine learning-rate
   schedule, early stopping on validation loss, and a checkpoint after every epoch,
4. the fusion weights, fitted on the validation reviews and their crops: the fusion
   also calibrates the score, by length,
5. the test split's evaluation, and the model directory SageMaker tars into
   model.tar.gz: weights, settings, vocabulary, the inference code, the drift
   baseline (drift_baseline.py) and the smoke test (smoke_test.py),
6. with a "serving" channel (the model serving now), the promotion gate
   (promotion_gate.py): a new model worse than it fails the job, unless forced.

Every metric line is `key=value` pairs (see metric_definitions.json). A rerun with the
same checkpoint directory resumes where the last one stopped, which is what makes
managed spot training safe. On failure the reason goes to SageMaker's failure file.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import torch
from drift_baseline import write_baseline
from network import CONFIG_FILE, WEIGHTS_FILE
from preprocess import VOCABULARY_FILE
from promotion_gate import apply_gate, serving_channel
from smoke_test import write_smoke_test
from trainer import Paths, Trainer

from contract.files import TRAINING_REPORT_FILE
from contract.hyperparameters import argument_parser
from contract.packaging import serving_code_files, write_vendored_packages


def _job_root(environ: Mapping[str, str]) -> Path:
    """/opt/ml in a training job (the toolkit's SAGEMAKER_BASE_DIR moves it), else artifacts/."""
    if "SM_TRAINING_ENV" not in environ:
        return Path("artifacts")
    return Path(environ.get("SAGEMAKER_BASE_DIR", "/opt/ml"))


def failure_file_from_environment(environ: Mapping[str, str]) -> Path:
    """Where SageMaker reads a failed job's reason (its FailureReason)."""
    return Path(environ.get("SM_OUTPUT_DIR", _job_root(environ) / "output")) / "failure"


def paths_from_environment(environ: Mapping[str, str]) -> Paths:
    """SageMaker's paths inside a training job; paths under the working directory elsewhere."""
    in_sagemaker = "SM_TRAINING_ENV" in environ
    root = _job_root(environ)

    def channel(name: str) -> Path | None:
        configured = environ.get(f"SM_CHANNEL_{name.upper()}")
        if configured:
            return Path(configured)
        return None if in_sagemaker else Path("data/prepared") / name

    train, validation = channel("train"), channel("validation")
    if train is None or validation is None:
        raise FileNotFoundError("the train and validation channels are required")
    return Paths(
        model_dir=Path(environ.get("SM_MODEL_DIR", root / "model")),
        train=train,
        validation=validation,
        test=channel("test"),
        unlabeled=channel("unlabeled"),
        output_dir=Path(environ.get("SM_OUTPUT_DATA_DIR", root / "output" / "data")),
        checkpoint_dir=root / "checkpoints",
    )


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The hyperparameters (contract/hyperparameters.py, their one schema) and two paths."""
    parser = argument_parser(__doc__.splitlines()[0], parents=[_paths_parser()])
    parser.add_argument("--checkpoint-dir", type=Path, help="default: /opt/ml/checkpoints")
    return parser.parse_args(argv)


def _paths_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--failure-file", type=Path, help="default: /opt/ml/output/failure")
    return parser


def write_model_dir(trainer: Trainer, model_dir: Path) -> None:
    """The self-describing model directory: weights, settings, vocabulary, code/, the drift
    baseline from the validation reviews (drift_baseline.py) and the smoke test the
    deployment proves the live endpoint with (smoke_test.py)."""
    model_dir.mkdir(parents=True, exist_ok=True)
    state = {name: value.cpu() for name, value in trainer.network.state_dict().items()}
    torch.save(state, model_dir / WEIGHTS_FILE)
    (model_dir / CONFIG_FILE).write_text(json.dumps(trainer.config.to_json(), indent=2) + "\n")
    trainer.vocabulary.save(model_dir / VOCABULARY_FILE)
    code = model_dir / "code"
    code.mkdir(exist_ok=True)
    source = Path(__file__).resolve().parent
    for name in serving_code_files(source):
        shutil.copyfile(source / name, code / name)
    # No requirements.txt: the container installs nothing (network isolation can be on).
    write_vendored_packages(code)
    write_baseline(model_dir, trainer.network, trainer.vocabulary, trainer.validation)
    write_smoke_test(model_dir)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # Read first, so that an error in any other argument lands in the failure file too.
    failure_file = _paths_parser().parse_known_args(argv)[
        0
    ].failure_file or failure_file_from_environment(os.environ)
    started = time.perf_counter()
    try:
        args = parse_args(argv)
        paths = paths_from_environment(os.environ)
        torch.set_num_threads(args.threads or os.cpu_count() or 1)
        trainer = Trainer(args, paths)
        results = trainer.run()
        results["training_seconds"] = round(time.perf_counter() - started, 1)
        write_model_dir(trainer, paths.model_dir)
        paths.output_dir.mkdir(parents=True, exist_ok=True)
        (paths.output_dir / TRAINING_REPORT_FILE).write_text(json.dumps(results, indent=2) + "\n")
        serving = serving_channel(os.environ)
        if serving is not None:
            apply_gate(
                paths.model_dir,
                serving,
                paths.output_dir,
                tolerance=args.promotion_tolerance,
                force=args.force_promotion,
            )
    except Exception as error:
        reason = f"{type(error).__name__}: {error}".replace("\n", " ")[:1000]
        try:
            failure_file.parent.mkdir(parents=True, exist_ok=True)
            failure_file.write_text(reason + "\n")
        except OSError:
            pass  # the reason still reaches the log below
        print(f"Training failed: {reason}", file=sys.stderr, flush=True)
        raise SystemExit(1) from error
    print(f"Training finished in {results['training_seconds']} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
