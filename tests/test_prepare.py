"""`sentiment prepare` end to end on the tiny generated aclImdb corpus."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import pytest
from dataset import read_split
from imdb_fixture import (
    LABELED_FOLDERS,
    PER_CLASS,
    UNLABELED,
    UNLABELED_FOLDER,
    FixtureReview,
    generate_reviews,
    write_archive,
    write_directory,
)
from preprocess import (
    NEGATION_OPENERS,
    OOV_ID,
    SENTIMENT_STRUCTURE_WORDS,
    VOCABULARY_FILE,
    Tokenizer,
    Vocabulary,
)

import sentiment
import sentiment.prepare
from contract.packaging import file_sha256
from sentiment.cli import main

VALIDATION_PER_CLASS = round(PER_CLASS * 0.1)  # the default validation fraction
SPLIT_FILES = {
    "train": ["ids.npy", "labels.npy", "lengths.npy", VOCABULARY_FILE],
    "validation": ["ids.npy", "labels.npy", "lengths.npy"],
    "test": ["ids.npy", "labels.npy", "lengths.npy"],
    "unlabeled": ["ids.npy", "lengths.npy"],
}


def run_prepare(source: Path | str, output: Path, cache: Path, *options: str) -> int:
    paths = ["--source", str(source), "--output", str(output), "--cache-dir", str(cache)]
    return main(["prepare", *paths, *options])


def tree_bytes(root: Path) -> dict[str, bytes]:
    """Every file below `root` by relative path: equal trees are byte-identical outputs."""
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def hidden_leftovers(*directories: Path) -> list[Path]:
    """Temporary files and directories (dot names) anywhere below the given directories."""
    return [
        path for directory in directories if directory.exists() for path in directory.rglob(".*")
    ]


def manifest(output: Path) -> dict:
    return json.loads((output / "manifest.json").read_text(encoding="utf-8"))


# --- The output ----------------------------------------------------------------------------


def test_directory_and_tarball_give_byte_identical_output(
    imdb_dir: Path, imdb_tarball: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    assert run_prepare(imdb_dir, tmp_path / "from-dir", tmp_path / "cache") == 0
    assert run_prepare(imdb_tarball, tmp_path / "from-tarball", tmp_path / "cache") == 0
    assert "Prepared" in capsys.readouterr().out

    from_dir = tree_bytes(tmp_path / "from-dir")
    from_tarball = tree_bytes(tmp_path / "from-tarball")
    assert sorted(from_dir) == ["manifest.json"] + [
        f"{split}/{name}" for split, names in sorted(SPLIT_FILES.items()) for name in names
    ]
    # The manifests differ only in where the reviews came from, which each records.
    manifests = [json.loads(tree.pop("manifest.json")) for tree in (from_dir, from_tarball)]
    assert [manifest.pop("source") for manifest in manifests] == [
        str(imdb_dir.resolve()),
        str(imdb_tarball.resolve()),
    ]
    assert manifests[0] == manifests[1]
    assert from_dir == from_tarball


def test_manifest_describes_the_dataset(prepared_imdb: Path):
    data = manifest(prepared_imdb)
    assert data["splits"] == {
        "train": {
            "reviews": 2 * (PER_CLASS - VALIDATION_PER_CLASS),
            "positive": PER_CLASS - VALIDATION_PER_CLASS,
            "negative": PER_CLASS - VALIDATION_PER_CLASS,
            "tokens": data["splits"]["train"]["tokens"],
            "truncated_reviews": 0,
        },
        "validation": {
            "reviews": 2 * VALIDATION_PER_CLASS,
            "positive": VALIDATION_PER_CLASS,
            "negative": VALIDATION_PER_CLASS,
            "tokens": data["splits"]["validation"]["tokens"],
            "truncated_reviews": 0,
        },
        "test": {
            "reviews": 2 * PER_CLASS,
            "positive": PER_CLASS,
            "negative": PER_CLASS,
            "tokens": data["splits"]["test"]["tokens"],
            "truncated_reviews": 0,
        },
        "unlabeled": {
            "reviews": UNLABELED,
            "tokens": data["splits"]["unlabeled"]["tokens"],
            "truncated_reviews": 0,
        },
    }
    for name, summary in data["splits"].items():
        assert summary["tokens"] == int(read_split(prepared_imdb / name).lengths.sum()) > 0
    vocabulary = Vocabulary.load(prepared_imdb / "train" / VOCABULARY_FILE)
    assert data["vocabulary_size"] == len(vocabulary) == len(vocabulary.words) + 2
    assert data["preprocessing"] == {
        "keep_negations": True,
        "kept_stopwords": list(SENTIMENT_STRUCTURE_WORDS),
        "negation_scope": True,
        "negation_openers": list(NEGATION_OPENERS),
        "contrast_max_words": 40,
        "max_length": 500,
        "stemmer": "nltk-porter",
        "stopword_count": 179,
    }
    assert data["project_version"] == sentiment.__version__
    assert (data["seed"], data["validation_fraction"]) == (13, 0.1)
    assert len(data["source_reviews_sha256"]) == 64
    assert data["files"] == {
        path: file_sha256(prepared_imdb / path)
        for path in tree_bytes(prepared_imdb)
        if path != "manifest.json"
    }


def test_source_checksum_follows_the_reviews(
    imdb_reviews: list[FixtureReview], prepared_imdb: Path, tmp_path: Path
):
    changed = [
        FixtureReview(r.folder, r.review_id, r.rating, r.text + " Changed.") if i == 0 else r
        for i, r in enumerate(imdb_reviews)
    ]
    source = write_directory(changed, tmp_path / "changed")
    assert run_prepare(source, tmp_path / "out", tmp_path / "cache", "--workers", "1") == 0
    assert (
        manifest(tmp_path / "out")["source_reviews_sha256"]
        != manifest(prepared_imdb)["source_reviews_sha256"]
    )


def _encoded(reviews: list[FixtureReview], vocabulary: Vocabulary) -> list[tuple[tuple, int]]:
    tokenize = Tokenizer(vocabulary.settings)
    return [(tuple(vocabulary.ids(tokenize(r.text))), r.label) for r in reviews]


def _split_reviews(directory: Path) -> list[tuple[tuple, int | None]]:
    split = read_split(directory)
    labels = [None] * len(split) if split.labels is None else split.labels.tolist()
    return [(tuple(split.review(i).tolist()), labels[i]) for i in range(len(split))]


def test_splits_hold_each_review_encoded_once(
    imdb_reviews: list[FixtureReview], prepared_imdb: Path
):
    vocabulary = Vocabulary.load(prepared_imdb / "train" / VOCABULARY_FILE)
    in_folders = {
        folder: [r for r in imdb_reviews if r.folder == folder]
        for folder in (*LABELED_FOLDERS, UNLABELED_FOLDER)
    }
    # Test and unlabeled reviews keep the archive's order: positive then negative, by id.
    assert _split_reviews(prepared_imdb / "test") == _encoded(
        in_folders["test/pos"] + in_folders["test/neg"], vocabulary
    )
    assert _split_reviews(prepared_imdb / "unlabeled") == [
        (ids, None) for ids, _ in _encoded(in_folders[UNLABELED_FOLDER], vocabulary)
    ]
    # Training reviews are shared out between train and validation, each exactly once.
    shared = _split_reviews(prepared_imdb / "train") + _split_reviews(prepared_imdb / "validation")
    assert Counter(shared) == Counter(
        _encoded(in_folders["train/pos"] + in_folders["train/neg"], vocabulary)
    )


def _with_markers(reviews: list[FixtureReview]) -> list[FixtureReview]:
    """Each review signed with a word of its own, e.g. "mtrp007" (Porter leaves it alone)."""
    code = {"train/pos": "trp", "train/neg": "trn", "test/pos": "tep", "test/neg": "ten"}
    return [
        FixtureReview(
            r.folder,
            r.review_id,
            r.rating,
            f"{r.text}<br /><br />Reviewer m{code.get(r.folder, 'uns')}{r.review_id:03d}",
        )
        for r in reviews
    ]


def test_vocabulary_comes_from_the_training_split_only(tmp_path: Path):
    source = write_directory(_with_markers(generate_reviews()), tmp_path / "marked")
    output = tmp_path / "out"
    assert run_prepare(source, output, tmp_path / "cache", "--workers", "1") == 0

    vocabulary = Vocabulary.load(output / "train" / VOCABULARY_FILE)
    markers = {word for word in vocabulary.words if word.startswith("m") and word[-3:].isdigit()}
    assert markers, "the training reviews' markers should be in the vocabulary"
    assert {word[1:4] for word in markers} == {"trp", "trn"}  # no test or unlabeled word
    # One marker per review of the train split, none from the validation split.
    splits = manifest(output)["splits"]
    assert len(markers) == splits["train"]["reviews"]
    assert 2 * PER_CLASS - len(markers) == splits["validation"]["reviews"] > 0
    validation = read_split(output / "validation")
    assert all(OOV_ID in validation.review(i) for i in range(len(validation)))


def test_validation_split_is_stratified_and_follows_the_seed(imdb_dir: Path, tmp_path: Path):
    cache = tmp_path / "cache"
    for name, seed in (("a", "1"), ("b", "1"), ("c", "2")):
        options = (
            "--workers",
            "1",
            "--no-unlabeled",
            "--seed",
            seed,
            "--validation-fraction",
            "0.25",
        )
        assert run_prepare(imdb_dir, tmp_path / name, cache, *options) == 0
    splits = manifest(tmp_path / "a")["splits"]
    held_out = round(PER_CLASS * 0.25)
    assert (splits["validation"]["positive"], splits["validation"]["negative"]) == (held_out,) * 2
    assert (splits["train"]["positive"], splits["train"]["negative"]) == (PER_CLASS - held_out,) * 2
    assert tree_bytes(tmp_path / "a") == tree_bytes(tmp_path / "b")
    assert _split_reviews(tmp_path / "a" / "validation") != _split_reviews(
        tmp_path / "c" / "validation"
    )


def test_unlabeled_reviews_never_reach_the_labeled_splits(
    prepared_imdb: Path, imdb_dir: Path, tmp_path: Path
):
    output = tmp_path / "labeled-only"
    assert (
        run_prepare(imdb_dir, output, tmp_path / "cache", "--no-unlabeled", "--workers", "1") == 0
    )
    assert not (output / "unlabeled").exists()
    assert "unlabeled" not in manifest(output)["splits"]
    assert not (prepared_imdb / "unlabeled" / "labels.npy").exists()
    # The labeled splits (and vocabulary) are the same bytes with or without unlabeled reviews.
    with_unlabeled, without = tree_bytes(prepared_imdb), tree_bytes(output)
    for path, content in without.items():
        if path != "manifest.json":
            assert with_unlabeled[path] == content, path


def test_same_input_gives_the_same_bytes_whatever_the_worker_count(imdb_dir: Path, tmp_path: Path):
    cache = tmp_path / "cache"
    assert run_prepare(imdb_dir, tmp_path / "one", cache, "--workers", "1") == 0
    assert run_prepare(imdb_dir, tmp_path / "two", cache, "--workers", "2") == 0
    assert run_prepare(imdb_dir, tmp_path / "again", cache, "--workers", "2") == 0
    assert tree_bytes(tmp_path / "one") == tree_bytes(tmp_path / "two")
    assert tree_bytes(tmp_path / "two") == tree_bytes(tmp_path / "again")


def test_settings_reach_the_output(imdb_dir: Path, tmp_path: Path):
    output = tmp_path / "out"
    options = ("--vocab-size", "20", "--max-length", "8", "--no-keep-negations", "--workers", "1")
    assert run_prepare(imdb_dir, output, tmp_path / "cache", *options) == 0
    data = manifest(output)
    assert data["vocabulary_size"] == 22
    assert data["preprocessing"]["max_length"] == 8
    assert data["preprocessing"]["keep_negations"] is False
    train = read_split(output / "train")
    assert train.lengths.max() == 8
    assert data["splits"]["train"]["truncated_reviews"] == int((train.lengths == 8).sum()) > 0
    assert train.ids.max() <= 21  # 20 words after padding and out-of-vocabulary


def test_rerun_replaces_the_previous_output(imdb_dir: Path, tmp_path: Path):
    output = tmp_path / "data" / "out"
    assert (
        run_prepare(imdb_dir, output, tmp_path / "cache", "--vocab-size", "10", "--workers", "1")
        == 0
    )
    (output / "train" / "stale.txt").write_text("from an older run")
    assert run_prepare(imdb_dir, output, tmp_path / "cache", "--workers", "1") == 0
    assert run_prepare(imdb_dir, tmp_path / "fresh", tmp_path / "cache", "--workers", "1") == 0
    assert tree_bytes(output) == tree_bytes(tmp_path / "fresh")
    assert [path.name for path in output.parent.iterdir()] == ["out"]


def test_an_existing_directory_that_is_not_a_dataset_is_left_alone(
    imdb_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    # As with `--output .` or `--output ~`: replacing it would delete the user's files.
    precious = tmp_path / "home"
    precious.mkdir()
    (precious / "thesis.tex").write_text("years of work")
    assert run_prepare(imdb_dir, precious, tmp_path / "cache", "--workers", "1") == 2
    assert "is not a prepared dataset" in capsys.readouterr().err
    assert tree_bytes(precious) == {"thesis.tex": b"years of work"}
    assert sorted(path.name for path in tmp_path.iterdir()) == ["home"]


def test_an_empty_output_directory_is_used(imdb_dir: Path, tmp_path: Path):
    (tmp_path / "out").mkdir()
    assert run_prepare(imdb_dir, tmp_path / "out", tmp_path / "cache", "--workers", "1") == 0
    assert (tmp_path / "out" / "manifest.json").is_file()


# --- Interruptions -------------------------------------------------------------------------


def _fail_on_second_split(monkeypatch: pytest.MonkeyPatch) -> None:
    real_write_split = sentiment.prepare.write_split
    calls = []

    def write_split(split, directory):
        calls.append(directory)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        real_write_split(split, directory)

    monkeypatch.setattr(sentiment.prepare, "write_split", write_split)


def test_failure_mid_write_keeps_the_previous_output(
    imdb_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    output, cache = tmp_path / "data" / "out", tmp_path / "cache"
    assert run_prepare(imdb_dir, output, cache, "--workers", "1") == 0
    previous = tree_bytes(output)

    with monkeypatch.context() as patch:
        _fail_on_second_split(patch)
        with pytest.raises(OSError, match="No space left"):
            run_prepare(imdb_dir, output, cache, "--workers", "1", "--seed", "7")
    assert tree_bytes(output) == previous
    assert [path.name for path in output.parent.iterdir()] == ["out"]

    assert run_prepare(imdb_dir, output, cache, "--workers", "1", "--seed", "7") == 0
    assert (
        run_prepare(imdb_dir, tmp_path / "uninterrupted", cache, "--workers", "1", "--seed", "7")
        == 0
    )
    assert tree_bytes(output) == tree_bytes(tmp_path / "uninterrupted") != previous


def test_failure_mid_write_of_a_first_run_leaves_no_output(
    imdb_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    _fail_on_second_split(monkeypatch)
    with pytest.raises(OSError):
        run_prepare(imdb_dir, tmp_path / "data" / "out", tmp_path / "cache", "--workers", "1")
    assert list((tmp_path / "data").iterdir()) == []


# A process killed outright (SIGKILL: no cleanup runs) at three points of the write.
_KILLED_RUN = textwrap.dedent(
    """
    import os, pathlib, signal, sys
    import sentiment.prepare
    from sentiment.cli import main

    point = sys.argv[1]
    counts = {"write_split": 0, "replace": 0}
    real_write_split, real_replace = sentiment.prepare.write_split, pathlib.Path.replace

    def write_split(split, directory):
        counts["write_split"] += 1
        if point == "second split" and counts["write_split"] == 2:
            os.kill(os.getpid(), signal.SIGKILL)
        real_write_split(split, directory)

    def replace(self, target):
        counts["replace"] += 1
        if point == "between renames" and counts["replace"] == 2:
            os.kill(os.getpid(), signal.SIGKILL)
        result = real_replace(self, target)
        if point == "after renames" and counts["replace"] == 2:
            os.kill(os.getpid(), signal.SIGKILL)
        return result

    sentiment.prepare.write_split = write_split
    pathlib.Path.replace = replace
    sys.exit(main(sys.argv[2:]))
    """
)


@pytest.mark.parametrize("point", ["second split", "between renames", "after renames"])
def test_killed_run_never_shows_a_partial_dataset_and_a_rerun_recovers(
    point: str, imdb_dir: Path, tmp_path: Path
):
    output, cache = tmp_path / "out", tmp_path / "cache"
    old_args = ["--workers", "1", "--seed", "1"]
    new_args = ["--workers", "1", "--seed", "2"]
    assert run_prepare(imdb_dir, tmp_path / "expected", cache, *new_args) == 0
    expected = tree_bytes(tmp_path / "expected")
    assert run_prepare(imdb_dir, output, cache, *old_args) == 0
    previous = tree_bytes(output)

    argv = [
        "prepare",
        "--source",
        str(imdb_dir),
        "--output",
        str(output),
        "--cache-dir",
        str(cache),
    ]
    killed = subprocess.run(
        [sys.executable, "-c", _KILLED_RUN, point, *argv, *new_args],
        capture_output=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()
    if output.exists():
        assert tree_bytes(output) in (previous, expected)
    else:
        assert point == "between renames"

    assert run_prepare(imdb_dir, output, cache, *new_args) == 0
    assert tree_bytes(output) == expected
    assert not (tmp_path / ".out.old").exists()


# --- Bad sources ---------------------------------------------------------------------------


def _without(source_dir: Path, folder: str, parent: Path) -> Path:
    copy = shutil.copytree(source_dir, parent / "aclImdb")
    shutil.rmtree(copy / folder)
    return copy


def _bad_source(kind: str, imdb_dir: Path, imdb_tarball: Path, where: Path) -> Path:
    where.mkdir()
    if kind == "missing path":
        return where / "aclImdb_v1.tar.gz"
    if kind == "truncated archive":
        data = imdb_tarball.read_bytes()
        (where / "cut.tar.gz").write_bytes(data[: len(data) // 2])
        return where / "cut.tar.gz"
    if kind == "archive cut to one byte":
        (where / "cut.tar.gz").write_bytes(imdb_tarball.read_bytes()[:1])
        return where / "cut.tar.gz"
    if kind == "empty file":
        (where / "empty.tar.gz").write_bytes(b"")
        return where / "empty.tar.gz"
    if kind == "not an archive":
        (where / "reviews.tar.gz").write_text("I loved this movie!\n")
        return where / "reviews.tar.gz"
    if kind == "plain tar, not gzipped":
        shutil.make_archive(str(where / "plain"), "tar", imdb_dir.parent, "aclImdb")
        return where / "plain.tar"
    if kind == "archive without aclImdb/":
        return write_archive(imdb_dir, where / "other.tar.gz", arcname="reviews")
    if kind == "archive missing test/neg":
        return write_archive(_without(imdb_dir, "test/neg", where), where / "partial.tar.gz")
    if kind == "directory missing test/neg":
        return _without(imdb_dir, "test/neg", where)
    if kind == "folder without review files":
        copy = _without(imdb_dir, "train/pos", where)
        (copy / "train" / "pos").mkdir()
        (copy / "train" / "pos" / "notes.txt").write_text("not a review file name")
        return copy
    raise AssertionError(kind)


BAD_SOURCES = {
    "missing path": r"IMDB source not found: .*aclImdb_v1\.tar\.gz",
    "truncated archive": r"cut\.tar\.gz is not a complete \.tar\.gz archive",
    "archive cut to one byte": r"cut\.tar\.gz is not a complete \.tar\.gz archive",
    "empty file": r"empty\.tar\.gz is not a complete \.tar\.gz archive",
    "not an archive": r"reviews\.tar\.gz is not a complete \.tar\.gz archive",
    "plain tar, not gzipped": r"plain\.tar is not a complete \.tar\.gz archive",
    "archive without aclImdb/": r"aclImdb",
    "archive missing test/neg": r"missing test/neg/",
    "directory missing test/neg": r"aclImdb is not laid out like aclImdb: missing test/neg/",
    "folder without review files": r"train/pos holds no review files named <id>_<rating>\.txt",
}


UNREADABLE = {
    "truncated archive",
    "archive cut to one byte",
    "empty file",
    "not an archive",
    "plain tar, not gzipped",
}


@pytest.mark.parametrize("kind", BAD_SOURCES)
def test_bad_source_is_a_clear_error_that_leaves_nothing_behind(
    kind: str,
    imdb_dir: Path,
    imdb_tarball: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
):
    source = _bad_source(kind, imdb_dir, imdb_tarball, tmp_path / "source")
    output, cache = tmp_path / "data" / "prepared", tmp_path / "cache"
    assert run_prepare(source, output, cache) == 2
    message = capsys.readouterr().err
    assert message.startswith("sentiment prepare: error: ")
    assert len(message.strip().splitlines()) == 1  # a message, not a traceback
    assert re.search(BAD_SOURCES[kind], message), message
    assert not output.exists()
    assert hidden_leftovers(tmp_path / "data", cache) == []
    if kind in UNREADABLE:
        assert list(cache.glob("extracted/*")) == []


@pytest.mark.parametrize("cut", [1, 4, 8, 20, 100, 1000, 4000])
def test_archive_cut_anywhere_is_refused(
    cut: int, imdb_tarball: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    # The last bytes are gzip's CRC and length, after the tar end-of-archive block: a cut
    # there loses no review, but the file is still not the archive that was published.
    data = imdb_tarball.read_bytes()
    (tmp_path / "cut.tar.gz").write_bytes(data[:-cut])
    assert run_prepare(tmp_path / "cut.tar.gz", tmp_path / "out", tmp_path / "cache") == 2
    assert "is not a complete .tar.gz archive" in capsys.readouterr().err
    assert list((tmp_path / "cache").rglob("*")) in ([], [tmp_path / "cache" / "extracted"])


def test_the_contrast_rule_is_set_from_the_command_line_and_recorded(
    imdb_dir: Path, tmp_path: Path
) -> None:
    output = tmp_path / "out"
    options = ("--contrast-max-words", "0", "--no-unlabeled", "--workers", "1")
    assert run_prepare(imdb_dir, output, tmp_path / "cache", *options) == 0

    manifest = json.loads((output / "manifest.json").read_text())
    assert manifest["preprocessing"]["contrast_max_words"] == 0
    vocabulary = Vocabulary.load(output / "train" / VOCABULARY_FILE)
    assert vocabulary.settings.contrast_max_words == 0
