"""The prepared split format: write, read back, refuse what is corrupt or pickled; short crops."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from dataset import EncodedSplit, concatenate, read_split, short_crops, write_split

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


def test_short_crops_are_windows_of_their_reviews_with_their_labels():
    split = EncodedSplit.from_reviews(
        [[2, 3, 4, 5, 6, 7], [], [8, 9], list(range(10, 40))], [1, 0, 0, 1]
    )
    crops = short_crops(split, per_review=5, max_words=4, rng=np.random.default_rng(3))
    # The empty review gives none; every other gives five.
    assert len(crops) == 15
    sources = [0] * 5 + [2] * 5 + [3] * 5
    for index, source in enumerate(sources):
        window = crops.review(index).tolist()
        review = split.review(source).tolist()
        assert 1 <= len(window) <= 4
        assert any(review[i : i + len(window)] == window for i in range(len(review)))
        assert crops.labels[index] == split.labels[source]
    assert crops.review(5).tolist() in ([8], [9], [8, 9])


def test_short_crops_are_reproducible_and_vary_with_the_seed():
    split = EncodedSplit.from_reviews([list(range(2, 60)) for _ in range(20)], [1, 0] * 10)

    def ids(seed: int) -> list[int]:
        return short_crops(split, 2, 30, np.random.default_rng(seed)).ids.tolist()

    assert ids(1) == ids(1)
    assert ids(1) != ids(2)


def test_concatenated_splits_keep_every_review_in_order():
    first = EncodedSplit.from_reviews([[2, 3], [4]], [1, 0])
    second = EncodedSplit.from_reviews([[5, 6, 7]], [1])
    both = concatenate([first, second])
    assert [both.review(i).tolist() for i in range(3)] == [[2, 3], [4], [5, 6, 7]]
    assert both.labels.tolist() == [1, 0, 1]
    unlabeled = EncodedSplit.from_reviews([[8]], None)
    assert concatenate([first, unlabeled]).labels is None
