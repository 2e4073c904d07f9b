"""`sentiment prepare`: raw IMDB reviews → the training job's input channels.

Output directory (each split directory is one SageMaker channel):

    train/        ids.npy lengths.npy labels.npy vocabulary.json
    validation/   ids.npy lengths.npy labels.npy   (seeded, stratified, from the training reviews)
    test/         ids.npy lengths.npy labels.npy
    unlabeled/    ids.npy lengths.npy              (train/unsup, when the source has it)
    manifest.json

With feedback from the page (``feedback``: feedback_intake.py), the reviews visitors labeled
join the training split, never validation or test, and the manifest says what joined and what
stayed out. The vocabulary comes from the training split alone. The whole directory is written
beside its final place and moved there at the end, so an interrupted run leaves the
previous output (or nothing) under the final name, and the same input always gives
byte-identical files.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from dataset import EncodedSplit, write_split
from preprocess import VOCABULARY_FILE, PreprocessingSettings, Tokenizer, Vocabulary
from tqdm import tqdm

from contract.feedback import DEFAULT_FEEDBACK_PER_SOURCE
from contract.files import MANIFEST_FILE
from contract.packaging import file_sha256
from sentiment import __version__, feedback_intake, imdb_source
from sentiment.imdb_source import UNLABELED_DIR, ReviewFile, review_files

# Reviews per task sent to a worker: large enough to amortize the inter-process
# traffic, small enough to keep the progress bar moving. Part of the checksum scheme.
_CHUNK = 500


@dataclass(frozen=True)
class PrepareOptions:
    vocabulary_size: int = 30_000
    validation_fraction: float = 0.1
    seed: int = 13
    include_unlabeled: bool = True
    workers: int = os.cpu_count() or 1
    settings: PreprocessingSettings = field(default_factory=PreprocessingSettings)

    def __post_init__(self) -> None:
        if not 0 < self.validation_fraction < 1:
            raise ValueError(
                f"validation fraction must be between 0 and 1, got {self.validation_fraction}"
            )
        if self.workers < 1:
            raise ValueError(f"workers must be at least 1, got {self.workers}")


@dataclass
class _Corpus:
    """Token lists (joined by spaces, cheap to pass between processes) and labels."""

    tokens: list[str]
    labels: list[int] | None


@dataclass(frozen=True)
class FeedbackInput:
    """Where feedback records are (a directory or s3://bucket/prefix), and how many one source
    may add."""

    source: str
    per_source: int = DEFAULT_FEEDBACK_PER_SOURCE


_worker_tokenizer: Tokenizer | None = None
_worker_keys = False


def _start_worker(settings: PreprocessingSettings, keys: bool) -> None:
    global _worker_tokenizer, _worker_keys
    _worker_tokenizer = Tokenizer(settings)
    _worker_keys = keys


def _tokenize_chunk(chunk: Sequence[ReviewFile]) -> tuple[list[str], bytes, list[str]]:
    """Tokens of each review, a digest of the chunk's file names and bytes, and (when feedback
    is to be checked against them) each review's text key."""
    assert _worker_tokenizer is not None, "worker not initialised"
    digest = hashlib.sha256()
    joined, keys = [], []
    for review in chunk:
        raw = review.path.read_bytes()
        digest.update(review.relative.encode() + b"\0" + raw + b"\0")
        text = raw.decode("utf-8", errors="replace")
        joined.append(" ".join(_worker_tokenizer(text)))
        if _worker_keys:
            keys.append(feedback_intake.text_key(text))
    return joined, digest.digest(), keys


def _chunks(items: Sequence[ReviewFile]) -> Iterator[Sequence[ReviewFile]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def _tokenize_all(
    files: Sequence[ReviewFile], settings: PreprocessingSettings, workers: int, keys: bool = False
) -> tuple[list[str], str, list[str]]:
    """Tokenize every file on all cores; returns the tokens, the source checksum and (with
    ``keys``) the text keys."""
    tokens: list[str] = []
    text_keys: list[str] = []
    digest = hashlib.sha256()
    chunks = list(_chunks(files))
    progress = tqdm(total=len(files), unit="review", desc="Preprocessing", disable=None)
    if workers == 1:
        _start_worker(settings, keys)
        results = map(_tokenize_chunk, chunks)
        pool = None
    else:
        pool = multiprocessing.get_context("fork").Pool(
            workers, initializer=_start_worker, initargs=(settings, keys)
        )
        results = pool.imap(_tokenize_chunk, chunks)
    try:
        for chunk_tokens, chunk_digest, chunk_keys in results:
            tokens.extend(chunk_tokens)
            text_keys.extend(chunk_keys)
            digest.update(chunk_digest)
            progress.update(len(chunk_tokens))
    finally:
        progress.close()
        if pool is not None:
            pool.terminate()
    return tokens, digest.hexdigest(), text_keys


def stratified_split(
    labels: Sequence[int], fraction: float, seed: int
) -> tuple[list[int], list[int]]:
    """Indices (kept, held out): `fraction` of each label held out, chosen by `seed`."""
    rng = np.random.default_rng(seed)
    labels_array = np.asarray(labels)
    held_out: list[int] = []
    for label in sorted(set(labels)):
        members = np.flatnonzero(labels_array == label)
        count = round(len(members) * fraction)
        held_out.extend(rng.permutation(members)[:count].tolist())
    held = set(held_out)
    return [i for i in range(len(labels)) if i not in held], sorted(held)


def _encode(corpus: _Corpus, indices: Sequence[int] | None, vocabulary: Vocabulary) -> EncodedSplit:
    chosen = range(len(corpus.tokens)) if indices is None else indices
    reviews = [vocabulary.ids(corpus.tokens[i].split()) for i in chosen]
    labels = None if corpus.labels is None else [corpus.labels[i] for i in chosen]
    return EncodedSplit.from_reviews(reviews, labels)


def _split_summary(split: EncodedSplit, max_length: int) -> dict:
    summary = {
        "reviews": len(split),
        "tokens": int(split.lengths.sum()),
        "truncated_reviews": int((split.lengths >= max_length).sum()),
    }
    if split.labels is not None:
        summary["positive"] = int((split.labels == 1).sum())
        summary["negative"] = int((split.labels == 0).sum())
    return summary


def labeled_files(root: Path, split: str) -> tuple[list[ReviewFile], list[int]]:
    """A labeled split's review files, positive ones first, and their labels (1, 0)."""
    positive = review_files(root, f"{split}/pos")
    negative = review_files(root, f"{split}/neg")
    return positive + negative, [1] * len(positive) + [0] * len(negative)


def prepare(
    root: Path,
    output: Path,
    options: PrepareOptions = PrepareOptions(),
    source: str = "",
    feedback: FeedbackInput | None = None,
) -> dict:
    """Build the dataset from an extracted aclImdb directory; returns the manifest.

    `source` is where `root` came from (imdb_source.recorded): the manifest keeps it, so
    that `sentiment evaluate` reads the raw reviews from the same place. Default: `root`.
    `feedback`: add the page's feedback to the training split (module docstring).
    """
    output = output.resolve()
    _check_replaceable(output)
    settings = options.settings
    train_files, train_labels = labeled_files(root, "train")
    test_files, test_labels = labeled_files(root, "test")
    unlabeled_files = (
        review_files(root, UNLABELED_DIR)
        if options.include_unlabeled and (root / UNLABELED_DIR).is_dir()
        else []
    )
    # Read first: a wrong source fails before minutes of tokenizing.
    stored = None if feedback is None else list(feedback_intake.read_source(feedback.source))
    labeled = train_files + test_files
    all_tokens, source_digest, text_keys = _tokenize_all(
        labeled + unlabeled_files, settings, options.workers, keys=feedback is not None
    )
    n_train, n_test = len(train_files), len(test_files)
    train = _Corpus(all_tokens[:n_train], train_labels)
    test = _Corpus(all_tokens[n_train : n_train + n_test], test_labels)
    kept, held_out = stratified_split(train_labels, options.validation_fraction, options.seed)
    intake = None
    if feedback is not None and stored is not None:
        intake = _take_feedback(feedback, stored, text_keys, kept, held_out, n_train, n_test)
        tokenizer = Tokenizer(settings)
        train.tokens.extend(" ".join(tokenizer(review.review)) for review in intake.joined)
        train.labels.extend(review.label for review in intake.joined)
        kept = kept + list(range(n_train, n_train + len(intake.joined)))

    vocabulary = Vocabulary.build(
        (train.tokens[i].split() for i in kept), options.vocabulary_size, settings
    )
    splits = {
        "train": _encode(train, kept, vocabulary),
        "validation": _encode(train, held_out, vocabulary),
        "test": _encode(test, None, vocabulary),
    }
    if unlabeled_files:
        splits["unlabeled"] = _encode(
            _Corpus(all_tokens[n_train + n_test :], None), None, vocabulary
        )

    output.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output.name}.", dir=output.parent))
    try:
        for name, split in splits.items():
            write_split(split, staging / name)
        vocabulary.save(staging / "train" / VOCABULARY_FILE)
        source = source or imdb_source.recorded(str(root))
        manifest = _manifest(staging, splits, vocabulary, options, source, source_digest)
        if intake is not None:
            manifest["feedback"] = intake.summary()
        (staging / MANIFEST_FILE).write_text(
            json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8"
        )
        _swap_into_place(staging, output)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return manifest


def _take_feedback(
    feedback: FeedbackInput,
    stored: list[tuple[str, bytes]],
    text_keys: list[str],
    kept: list[int],
    held_out: list[int],
    n_train: int,
    n_test: int,
) -> feedback_intake.Intake:
    splits = {
        "train": {text_keys[i] for i in kept},
        "validation": {text_keys[i] for i in held_out},
        "test": set(text_keys[n_train : n_train + n_test]),
    }
    return feedback_intake.select(feedback.source, stored, splits, feedback.per_source)


def _manifest(
    directory: Path,
    splits: dict[str, EncodedSplit],
    vocabulary: Vocabulary,
    options: PrepareOptions,
    source: str,
    source_digest: str,
) -> dict:
    max_length = options.settings.max_length
    return {
        "project_version": __version__,
        "source": source,
        "source_reviews_sha256": source_digest,
        "preprocessing": {
            key: value for key, value in options.settings.to_json().items() if key != "stopwords"
        }
        | {"stopword_count": len(options.settings.stopwords)},
        "vocabulary_size": len(vocabulary),
        "validation_fraction": options.validation_fraction,
        "seed": options.seed,
        "splits": {name: _split_summary(split, max_length) for name, split in splits.items()},
        "files": {
            path.relative_to(directory).as_posix(): file_sha256(path)
            for path in sorted(directory.rglob("*"))
            if path.is_file()
        },
    }


def read_manifest(data_dir: Path) -> dict:
    """The manifest of a prepared dataset, or FileNotFoundError saying how to make one."""
    path = data_dir / MANIFEST_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"no prepared dataset in {data_dir} (run `sentiment prepare --output {data_dir}`)"
        )
    return json.loads(path.read_text(encoding="utf-8"))


def _check_replaceable(output: Path) -> None:
    """Refuse to replace anything but an earlier run's output or an empty directory."""
    if not output.exists() or (output / MANIFEST_FILE).is_file():
        return
    if output.is_dir() and not any(output.iterdir()):
        return
    raise ValueError(
        f"{output} exists and is not a prepared dataset (no {MANIFEST_FILE}); "
        "refusing to replace it: choose another --output or remove it"
    )


def _swap_into_place(staging: Path, output: Path) -> None:
    """Replace `output` with `staging` so that the final name never shows a partial dataset."""
    retired = output.with_name(f".{output.name}.old")
    if retired.exists():  # left by a run killed between the two renames below
        shutil.rmtree(retired)
    if not output.exists():
        staging.replace(output)
        return
    output.replace(retired)
    staging.replace(output)
    shutil.rmtree(retired)
