"""Shared fixtures: a tiny generated aclImdb corpus, as a directory, a .tar.gz and prepared data.

The session-scoped fixtures are built once and shared: tests must treat them as
read-only (copy them, or build their own with `imdb_fixture`, to change anything).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from imdb_fixture import FixtureReview, generate_reviews, write_archive, write_directory

from sentiment.prepare import PrepareOptions, prepare

# Debian's Chromium, never a browser Playwright downloads; the flags keep it off the
# network and quiet in a sandboxed CI.
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """A headless Chromium for one test module's browser tests."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


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
