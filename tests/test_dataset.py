"""The prepared split format: write, read back, and refuse what is corrupt or pickled."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from dataset import EncodedSplit, read_split, write_split

REVIEWS = [[2, 3, 4], [], [5], [6, 7]]


def test_split_round_trips_through_files(tmp_path: Path):
    split = EncodedSplit.from_reviews(REVIEWS, [1, 0, 0, 1])
    write_split(split, tmp_path / "train")
    loaded = read_split(tmp_path / "train")
    assert len(loaded) == 4
    assert [loaded.review(i).tolist() for i in range(4)] == REVIEWS
    assert loaded.labels.tolist() == [1, 0, 0, 1]
    assert (loaded.ids.dtype, loaded.lengths.dtype, loaded.labels.dtype) == (
        np.int32,
        np.int32,
        np.int8,
    )
    assert sorted(path.name for path in (tmp_path / "train").iterdir()) == [
        "ids.npy",
        "labels.npy",
        "lengths.npy",
    ]


def test_unlabeled_split_has_no_labels_file(tmp_path: Path):
    write_split(EncodedSplit.from_reviews(REVIEWS, None), tmp_path / "unlabeled")
    assert not (tmp_path / "unlabeled" / "labels.npy").exists()
    assert read_split(tmp_path / "unlabeled").labels is None


def test_writing_the_same_split_gives_the_same_bytes(tmp_path: Path):
    for name in ("a", "b"):
        write_split(EncodedSplit.from_reviews(REVIEWS, [1, 0, 0, 1]), tmp_path / name)
    for file in ("ids.npy", "lengths.npy", "labels.npy"):
        assert (tmp_path / "a" / file).read_bytes() == (tmp_path / "b" / file).read_bytes()


def test_inconsistent_arrays_are_refused():
    with pytest.raises(ValueError, match="lengths add up to 3 ids, found 2"):
        EncodedSplit(np.array([1, 2], np.int32), np.array([3], np.int32), None)
    with pytest.raises(ValueError, match="2 labels for 1 reviews"):
        EncodedSplit(np.array([1], np.int32), np.array([1], np.int32), np.array([0, 1], np.int8))


def test_missing_directory_or_file_is_named(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="split directory not found"):
        read_split(tmp_path / "nowhere")
    write_split(EncodedSplit.from_reviews(REVIEWS, None), tmp_path / "test")
    (tmp_path / "test" / "lengths.npy").unlink()
    with pytest.raises(FileNotFoundError, match=r"dataset file missing: .*lengths\.npy"):
        read_split(tmp_path / "test")


def test_garbage_file_is_named(tmp_path: Path):
    write_split(EncodedSplit.from_reviews(REVIEWS, None), tmp_path / "test")
    (tmp_path / "test" / "ids.npy").write_bytes(b"not a numpy file")
    with pytest.raises(ValueError, match=r"dataset file unreadable: .*ids\.npy"):
        read_split(tmp_path / "test")


def test_pickled_arrays_are_never_loaded(tmp_path: Path):
    write_split(EncodedSplit.from_reviews(REVIEWS, None), tmp_path / "test")
    np.save(tmp_path / "test" / "ids.npy", np.array([object()], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match=r"ids\.npy"):
        read_split(tmp_path / "test")
