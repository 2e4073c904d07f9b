"""A model directory laid out by the training job's own code, with weights set by hand.

Training takes seconds even on the tiny corpus; the inference handlers' tests need an
artifact, not a trained one. This one knows a handful of words: praise scores positive,
scorn negative (through the n-gram branch alone), so a prediction shows that the
review went through the real preprocessing and vocabulary. Also: the hyperparameters of
the tests' tiny training runs.
"""

from __future__ import annotations

import random
from pathlib import Path
from types import SimpleNamespace

import torch
from preprocess import PreprocessingSettings, Tokenizer, Vocabulary

from contract.layout import MODEL_SOURCE_DIR
from sentiment.model_loader import import_isolated

POSITIVE_WORDS = ("wonderful", "brilliant", "superb")
NEGATIVE_WORDS = ("awful", "terrible", "boring")
NEUTRAL_WORDS = ("film", "plot", "actor", "music", "story")
# Training hyperparameters small enough for a test on the generated corpus.
# What a training job leaves in SM_MODEL_DIR, which SageMaker tars into model.tar.gz, besides
# the packages in VENDORED.
VENDORED = "code/vendor/"
MODEL_DIR_LAYOUT = [
    "code/explanation.py",
    "code/inference.py",
    "code/network.py",
    "code/preprocess.py",
    "code/vendored_packages.py",
    "drift_baseline.json",
    "model.pt",
    "model_config.json",
    "smoke_test.json",
    "vocabulary.json",
]


def layout(model_dir: Path) -> list[str]:
    """The model directory's files outside VENDORED, sorted, as MODEL_DIR_LAYOUT lists them;
    VENDORED must hold packages."""
    files = sorted(p.relative_to(model_dir).as_posix() for p in model_dir.rglob("*") if p.is_file())
    assert any(name.startswith(f"{VENDORED}bs4/") for name in files), "no vendored packages"
    return [name for name in files if not name.startswith(VENDORED)]


TINY_HYPERPARAMETERS = (
    *("--embedding-dim", "8", "--hidden-dim", "8", "--bigram-min-reviews", "2"),
    *("--word2vec-epochs", "1", "--epochs", "3", "--patience", "3"),
    *("--threads", "1"),
)


def sample_reviews(count: int, seed: int) -> list[tuple[str, int]]:
    """Short reviews in the artifact's words, seeded: (text, label), half of each label.

    The artifact's validation split is drawn from here, so its drift baseline is this
    distribution; traffic drawn with another seed is traffic that has not drifted.
    """
    rng = random.Random(seed)
    reviews = []
    for index in range(count):
        label = index % 2
        opinion = POSITIVE_WORDS if label else NEGATIVE_WORDS
        words = [rng.choice(opinion) for _ in range(rng.randint(1, 3))]
        words += [rng.choice(NEUTRAL_WORDS) for _ in range(rng.randint(0, 4))]
        rng.shuffle(words)
        reviews.append((f"The {' and the '.join(words)}.", label))
    return reviews


def write_model_dir(directory: Path) -> Path:
    """Write model.pt, model_config.json, vocabulary.json, code/, the drift baseline (from 200
    sample_reviews) and the smoke test into `directory`."""
    train = import_isolated(MODEL_SOURCE_DIR, "train")
    modules = import_isolated(MODEL_SOURCE_DIR, "network")
    dataset = import_isolated(MODEL_SOURCE_DIR, "dataset")
    settings = PreprocessingSettings()
    tokenizer = Tokenizer(settings)
    stems = {word: tokenizer(word)[0] for word in POSITIVE_WORDS + NEGATIVE_WORDS + NEUTRAL_WORDS}
    vocabulary = Vocabulary(list(stems.values()), settings)
    config = modules.NetworkConfig(vocabulary_size=len(vocabulary), embedding_dim=4, hidden_dim=3)
    torch.manual_seed(0)
    network = modules.SentimentNetwork(config).eval()
    with torch.no_grad():
        # The n-gram branch alone decides: +2 per word of praise, -2 per word of scorn.
        network.fusion.weight.zero_()
        network.fusion.weight[0, 1] = 1.0
        for word in POSITIVE_WORDS + NEGATIVE_WORDS:
            word_id = vocabulary.ids([stems[word]])[0]
            network.ngram_ratios[word_id] = 1.0 if word in POSITIVE_WORDS else -1.0
            network.ngram_weights.weight[word_id] = 2.0
    validation = sample_reviews(200, seed=1)
    split = dataset.EncodedSplit.from_reviews(
        [vocabulary.ids(tokenizer(text)) for text, _ in validation],
        [label for _, label in validation],
    )
    trainer = SimpleNamespace(
        network=network, config=config, vocabulary=vocabulary, validation=split
    )
    train.write_model_dir(trainer, directory)
    return directory
