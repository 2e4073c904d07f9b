"""The training job's hyperparameters: one schema for train.py, `cdk synth` and `sentiment train`.

model/train.py builds its argument parser from HYPERPARAMETERS (this package travels in
the training source tarball: contract.packaging.training_source_members); the CDK app
checks cdk.json's ``sentiment:hyperparameters`` against it before anything is deployed;
`sentiment train` reads the same cdk.json setting through cdk_json_hyperparameters, so a
checkout trains the same model locally and in AWS. SageMaker passes every value as a
string (``--name value``): each is checked here as train.py will read it.
"""

from __future__ import annotations

import argparse
import difflib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from contract.promotion import DEFAULT_TOLERANCE

# cdk.json's context key that holds them.
CDK_CONTEXT_KEY = "sentiment:hyperparameters"


class HyperparameterError(ValueError):
    """A hyperparameter that train.py would refuse; the message names it."""


def _boolean(text: str) -> bool:
    if text.lower() in ("true", "1", "yes"):
        return True
    if text.lower() in ("false", "0", "no"):
        return False
    raise ValueError("expected true or false")


_PARSERS = {bool: _boolean, int: int, float: float}


@dataclass(frozen=True)
class Hyperparameter:
    name: str
    kind: type  # bool, int or float
    default: bool | int | float
    help: str
    minimum: float | None = None
    # Exclusive bounds: a rate that must be positive, a fraction such as dropout.
    above: float | None = None
    below: float | None = None

    def parse(self, text: str) -> bool | int | float:
        """The value train.py reads from `--name text`, or HyperparameterError naming it."""
        try:
            value = _PARSERS[self.kind](text)
        except ValueError:
            raise HyperparameterError(
                f"hyperparameter {self.name!r}: expected {self.kind.__name__}, got {text!r}"
            ) from None
        if self.minimum is not None and value < self.minimum:
            raise HyperparameterError(
                f"hyperparameter {self.name!r}: must be at least {self.minimum:g}, got {text}"
            )
        if self.above is not None and value <= self.above:
            raise HyperparameterError(
                f"hyperparameter {self.name!r}: must be above {self.above:g}, got {text}"
            )
        if self.below is not None and value >= self.below:
            raise HyperparameterError(
                f"hyperparameter {self.name!r}: must be below {self.below:g}, got {text}"
            )
        return value


HYPERPARAMETERS = (
    Hyperparameter("epochs", int, 3, "most LSTM epochs (early stopping may end sooner)", 1),
    Hyperparameter("batch-size", int, 256, "reviews per LSTM training batch", 1),
    Hyperparameter("learning-rate", float, 3e-3, "the LSTM's peak learning rate", above=0),
    Hyperparameter("embedding-dim", int, 128, "word embedding size", 1),
    Hyperparameter("hidden-dim", int, 128, "LSTM hidden units per direction", 1),
    Hyperparameter("layers", int, 1, "stacked LSTM layers", 1),
    Hyperparameter("bidirectional", bool, True, "read each review both ways"),
    Hyperparameter("dropout", float, 0.4, "dropout probability", 0, below=1),
    Hyperparameter(
        "bigram-min-reviews",
        int,
        2,
        "keep the bigrams found in at least this many training reviews (0: no bigrams)",
        0,
    ),
    Hyperparameter(
        "negation-flips",
        bool,
        True,
        "the n-gram branch also reads a negated word as its plain word, sign turned",
    ),
    Hyperparameter(
        "negation-flip-window",
        int,
        2,
        "the word that flips is the strongest of each negation scope's first this many",
        1,
    ),
    Hyperparameter("ngram-c", float, 0.2, "n-gram branch inverse L2 strength (C)", above=0),
    Hyperparameter("word2vec-epochs", int, 10, "0 starts from random embeddings", 0),
    Hyperparameter(
        "crops-per-review",
        int,
        1,
        "short windows cut from each review to train and calibrate on (0: none)",
        0,
    ),
    Hyperparameter("crop-max-words", int, 30, "longest window, in words the model reads", 1),
    Hyperparameter("patience", int, 1, "epochs without a better validation loss", 0),
    Hyperparameter("seed", int, 13, "seed of every random choice"),
    Hyperparameter("threads", int, 0, "CPU threads; 0 uses every core", 0),
    # The promotion gate (contract/promotion.py), which runs only when the job has a serving
    # model to compare with (its "serving" channel).
    Hyperparameter(
        "promotion-tolerance",
        float,
        DEFAULT_TOLERANCE,
        "how much lower than the serving model's a figure may be (a share, 0.01: one point)",
        0,
        below=1,
    ),
    Hyperparameter(
        "force-promotion",
        bool,
        False,
        "finish even when the promotion gate refuses the new model (promotion.json says so)",
    ),
)
BY_NAME = {hyperparameter.name: hyperparameter for hyperparameter in HYPERPARAMETERS}
# The gate's settings change what the job accepts, not the model it trains: the CDK app sets
# them from their own context keys (sentiment:promotionTolerance, sentiment:forcePromotion)
# and leaves them out of the job name's hash, so forcing a refused model through starts one
# retry job and turning the flag off again retrains nothing (stacks/training.py).
GATE_HYPERPARAMETERS = {
    "promotion-tolerance": "promotionTolerance",
    "force-promotion": "forcePromotion",
}


def _known(name: str) -> Hyperparameter:
    if name in BY_NAME:
        return BY_NAME[name]
    close = difflib.get_close_matches(name, BY_NAME, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else f"; known: {', '.join(BY_NAME)}"
    raise HyperparameterError(f"unknown hyperparameter {name!r}{hint}")


def checked(values: Mapping[str, object]) -> dict[str, str]:
    """`values` as SageMaker will pass them (strings), each checked as train.py reads it."""
    passed = {}
    for name, value in sorted(values.items()):
        hyperparameter = _known(name)
        if isinstance(value, bool):
            text = str(value).lower()
        elif isinstance(value, str | int | float):
            text = str(value)
        else:
            raise HyperparameterError(
                f"hyperparameter {name!r}: a value is a string, a number or a boolean"
            )
        hyperparameter.parse(text)
        passed[name] = text
    return passed


def gate_hyperparameters(tolerance: float, force: bool) -> dict[str, str]:
    """The promotion gate's settings as SageMaker passes them, checked."""
    return checked({"promotion-tolerance": tolerance, "force-promotion": force})


def as_arguments(values: Mapping[str, str]) -> list[str]:
    """`--name value` pairs, as SageMaker's training toolkit passes hyperparameters."""
    return [part for name, value in sorted(values.items()) for part in (f"--{name}", value)]


def from_context(value: object) -> dict[str, str]:
    """The CDK context value of CDK_CONTEXT_KEY (an object, or its JSON text as `cdk synth -c`
    passes it), checked."""
    values = json.loads(value) if isinstance(value, str) else value
    if not isinstance(values, dict):
        raise HyperparameterError("expected an object of hyperparameter names to values")
    gate = sorted(GATE_HYPERPARAMETERS.keys() & values.keys())
    if gate:
        raise HyperparameterError(
            f"hyperparameter {gate[0]!r} has its own context key, "
            f"sentiment:{GATE_HYPERPARAMETERS[gate[0]]} (the gate's settings retrain nothing)"
        )
    return checked(values)


def cdk_json_hyperparameters(cdk_json: Path) -> dict[str, str]:
    """The hyperparameters cdk.json gives the cloud training job, checked."""
    context = json.loads(cdk_json.read_text(encoding="utf-8")).get("context", {})
    return from_context(context.get(CDK_CONTEXT_KEY, {}))


class _Parser(argparse.ArgumentParser):
    # argparse prints and exits with status 2 on a bad argument; train.py must write the
    # reason to SageMaker's failure file first, so the error is raised instead.
    def error(self, message: str):  # type: ignore[override]
        raise HyperparameterError(message)


def _argument_type(hyperparameter: Hyperparameter):
    def parse(text: str) -> bool | int | float:
        try:
            return hyperparameter.parse(text)
        except HyperparameterError as error:  # argparse reports only this type's message
            raise argparse.ArgumentTypeError(str(error)) from None

    return parse


def argument_parser(
    description: str, parents: Sequence[argparse.ArgumentParser] = ()
) -> argparse.ArgumentParser:
    """train.py's parser: every hyperparameter as `--name`, parsed and checked as above."""
    parser = _Parser(description=description, parents=list(parents))
    for hyperparameter in HYPERPARAMETERS:
        parser.add_argument(
            f"--{hyperparameter.name}",
            type=_argument_type(hyperparameter),
            default=hyperparameter.default,
            help=f"{hyperparameter.help} (default {hyperparameter.default})",
        )
    return parser
