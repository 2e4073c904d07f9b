"""Where the IMDB reviews come from: the official archive's URL, a local .tar.gz, or a directory.

Whatever the source, the result is an extracted `aclImdb` directory whose layout has
been checked. Downloads and extractions land in a cache directory, atomically, and are
reused by later runs.
"""

from __future__ import annotations

import http.client
import os
import re
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from tqdm import tqdm

from contract.packaging import extract_tarball, file_sha256

OFFICIAL_URL = "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz"
SOURCE_ENV = "IMDB_SOURCE"
CACHE_ENV = "SENTIMENT_CACHE_DIR"

LABELED_DIRS = ("train/pos", "train/neg", "test/pos", "test/neg")
UNLABELED_DIR = "train/unsup"
_REVIEW_FILE = re.compile(r"^(\d+)_(\d+)\.txt$")


class SourceError(ValueError):
    """The review source is missing, incomplete or not laid out like the official archive."""


@dataclass(frozen=True)
class ReviewFile:
    path: Path
    relative: str  # e.g. "train/pos/10_9.txt": stable across machines, used for checksums
    review_id: int
    rating: int  # the reviewer's 1-10 stars; 0 in train/unsup


def default_source() -> str:
    return os.environ.get(SOURCE_ENV) or OFFICIAL_URL


def default_cache_dir() -> Path:
    configured = os.environ.get(CACHE_ENV)
    if configured:
        return Path(configured)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "imdb-sentiment"


def _is_url(source: str) -> bool:
    return urlparse(source).scheme in ("http", "https")


def recorded(source: str) -> str:
    """`source` as a manifest records it: a URL as it is, a local path made absolute, so
    that later commands read the very reviews `sentiment prepare` read."""
    return source if _is_url(source) else str(Path(source).expanduser().resolve())


def resolve(source: str, cache_dir: Path) -> Path:
    """The checked `aclImdb` directory for a URL, a .tar.gz path or a directory path."""
    if _is_url(source):
        archive = download(source, cache_dir)
        try:
            return _extracted(archive, cache_dir)
        except SourceError:
            # A download cut short without a Content-Length to tell: fetch afresh next time.
            archive.unlink(missing_ok=True)
            raise
    path = Path(source).expanduser()
    if not path.exists():
        raise SourceError(f"IMDB source not found: {path}")
    if path.is_dir():
        return check_layout(path / "aclImdb" if (path / "aclImdb").is_dir() else path)
    return _extracted(path, cache_dir)


def download(url: str, cache_dir: Path) -> Path:
    """Fetch `url` into the cache with a progress bar, unless an earlier run already did."""
    target = cache_dir / Path(urlparse(url).path).name
    if target.exists():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    handle, partial_name = tempfile.mkstemp(prefix=f".{target.name}.", dir=cache_dir)
    partial = Path(partial_name)
    try:
        with urllib.request.urlopen(url, timeout=60) as response, os.fdopen(handle, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(
                total=total, unit="B", unit_scale=True, desc=f"Downloading {target.name}"
            ) as bar:
                for block in iter(lambda: response.read(1 << 20), b""):
                    out.write(block)
                    bar.update(len(block))
        if total is not None and partial.stat().st_size != total:
            raise SourceError(
                f"download of {url} stopped at {partial.stat().st_size} of {total} bytes"
            )
        partial.replace(target)
    except (OSError, http.client.HTTPException) as error:
        raise SourceError(f"could not download {url}: {error}") from None
    finally:
        partial.unlink(missing_ok=True)
    return target


def _extracted(archive: Path, cache_dir: Path) -> Path:
    """The archive extracted into the cache, keyed by its checksum so a changed file re-extracts."""
    destination = cache_dir / "extracted" / file_sha256(archive)[:16]
    if not destination.exists():
        try:
            extract_tarball(archive, destination)
        except ValueError as error:
            raise SourceError(str(error)) from None
    return check_layout(destination / "aclImdb")


def check_layout(root: Path) -> Path:
    """Fail with the missing piece named unless `root` is laid out like the official archive."""
    if not root.is_dir():
        raise SourceError(f"not an aclImdb directory (expected {root} to exist)")
    for name in LABELED_DIRS:
        folder = root / name
        if not folder.is_dir():
            raise SourceError(f"{root} is not laid out like aclImdb: missing {name}/")
        if not any(_REVIEW_FILE.match(entry.name) for entry in os.scandir(folder)):
            raise SourceError(f"{folder} holds no review files named <id>_<rating>.txt")
    return root


def review_files(root: Path, folder: str) -> list[ReviewFile]:
    """The reviews of one folder, ordered by review id (file system order is arbitrary)."""
    files = []
    for entry in os.scandir(root / folder):
        match = _REVIEW_FILE.match(entry.name)
        if match:
            relative = f"{folder}/{entry.name}"
            files.append(ReviewFile(Path(entry.path), relative, int(match[1]), int(match[2])))
    return sorted(files, key=lambda review: review.review_id)
