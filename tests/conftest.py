"""Shared fixtures: a tiny generated aclImdb corpus, as a directory, a .tar.gz and prepared data.

The session-scoped fixtures are built once and shared: tests must treat them as
read-only (copy them, or build their own with `imdb_fixture`, to change anything).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from imdb_fixture import FixtureReview, generate_reviews, write_archive, write_directory

from sentiment.prepare import PrepareOptions, prepare


@pytest.fixture(scope="session")
def imdb_reviews() -> list[FixtureReview]:
    """The reviews of the tiny corpus: PER_CLASS per labeled folder and UNLABELED in train/unsup."""
    return generate_reviews()


@pytest.fixture(scope="session")
def imdb_dir(tmp_path_factory: pytest.TempPathFactory, imdb_reviews: list[FixtureReview]) -> Path:
    """The tiny corpus as an extracted `aclImdb` directory."""
    return write_directory(imdb_reviews, tmp_path_factory.mktemp("imdb-dir"))


@pytest.fixture(scope="session")
def imdb_tarball(tmp_path_factory: pytest.TempPathFactory, imdb_dir: Path) -> Path:
    """The tiny corpus as a .tar.gz holding `aclImdb/`, like the official archive."""
    return write_archive(imdb_dir, tmp_path_factory.mktemp("imdb-tarball") / "aclImdb_v1.tar.gz")


@pytest.fixture(scope="session")
def prepared_imdb(tmp_path_factory: pytest.TempPathFactory, imdb_dir: Path) -> Path:
    """`sentiment prepare`'s output for the tiny corpus (default settings, one process)."""
    output = tmp_path_factory.mktemp("imdb-prepared") / "prepared"
    prepare(imdb_dir, output, PrepareOptions(workers=1))
    return output
