"""How fast `sentiment prepare` turns the full IMDB set into the training dataset.

    .venv/bin/python bench/prepare_speed.py [SOURCE] [--cache-dir DIR]

SOURCE is the archive or an extracted aclImdb directory (default: $IMDB_SOURCE, else
../shared/data/aclImdb.tar.gz beside the repository). Extraction into the cache comes
first and is not timed. Then `sentiment prepare` runs as its own process, as a user
runs it, end to end: once on the 50,000 labeled reviews (--no-unlabeled) and once on
all 100,000, while the resident memory of its whole process tree is sampled.

Two checks ride along: strip_html's fast path must give the words BeautifulSoup gives
on every review of the set it takes (fast_path_mismatches must be 0), and the seed
project's review_to_words is timed on 300 reviews for comparison.

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
from bs4 import BeautifulSoup
from preprocess import strip_html

from contract.layout import PROJECT_ROOT
from sentiment import imdb_source

# The seed's function is kept with the tests, which check our output against it.
sys.path.insert(0, str(PROJECT_ROOT / "tests"))
from seed_preprocessing import review_to_words

DEFAULT_ARCHIVE = PROJECT_ROOT.parent / "shared" / "data" / "aclImdb.tar.gz"
SEED_SAMPLE = 300
_WORD = re.compile(r"[a-z0-9]+")
_OTHER_MARKUP = re.compile(r"<[A-Za-z/!?]|&[#A-Za-z]")  # what sends strip_html to BeautifulSoup
_MIB = 1 << 20


def peak_tree_rss(process: subprocess.Popen, interval: float = 0.02) -> int:
    """Highest summed RSS of `process` and its descendants, sampled until it exits.

    Forked workers share pages with their parent, which each process's RSS counts
    again: the sum is an upper bound on the memory actually used.
    """
    root = psutil.Process(process.pid)
    peak = 0
    while process.poll() is None:
        total = 0
        try:
            for member in [root, *root.children(recursive=True)]:
                total += member.memory_info().rss
        except psutil.NoSuchProcess:  # a worker ended between listing and reading it
            pass
        peak = max(peak, total)
        time.sleep(interval)
    return peak


def time_prepare(root: Path, work: Path, *options: str) -> dict:
    """Run `sentiment prepare` on an extracted directory; its wall time and peak memory."""
    output = work / "prepared"
    command = [sys.executable, "-m", "sentiment.cli", "prepare", "--source", str(root)]
    command += ["--output", str(output), "--cache-dir", str(work / "cache"), *options]
    cpu_before = _children_cpu_seconds()
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak: list[int] = []
    sampler = threading.Thread(target=lambda: peak.append(peak_tree_rss(process)))
    sampler.start()
    _, stderr = process.communicate()
    seconds = time.perf_counter() - started
    sampler.join()
    if process.returncode != 0:
        raise RuntimeError(f"sentiment prepare failed ({process.returncode}):\n{stderr}")
    splits = json.loads((output / "manifest.json").read_text(encoding="utf-8"))["splits"]
    reviews = sum(split["reviews"] for split in splits.values())
    return {
        "reviews": reviews,
        "seconds": round(seconds, 2),
        "reviews_per_second": round(reviews / seconds),
        "peak_rss_mb": round(peak[0] / _MIB),
        # CPU time of the whole process tree: what the run costs whatever else is running.
        "cpu_seconds": round(_children_cpu_seconds() - cpu_before, 2),
    }


def _children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _all_review_files(root: Path) -> list[imdb_source.ReviewFile]:
    folders = [*imdb_source.LABELED_DIRS, imdb_source.UNLABELED_DIR]
    return [review for folder in folders for review in imdb_source.review_files(root, folder)]


def _read(path: Path) -> str:
    return path.read_bytes().decode("utf-8", errors="replace")


def strip_html_check(files: list[imdb_source.ReviewFile]) -> dict:
    """strip_html's words against BeautifulSoup(review).get_text(" ")'s, on every review.

    On the fast path (no markup once line breaks are spaces) they must never differ.
    Elsewhere they differ on purpose where html.parser would keep a "<br />" as text.
    """
    fast_path, mismatches, differing = 0, [], []
    for review in files:
        text = _read(review.path)
        ours = _WORD.findall(strip_html(text).lower())
        soup = _WORD.findall(BeautifulSoup(text, "html.parser").get_text(" ").lower())
        on_fast_path = _OTHER_MARKUP.search(text.replace("<br />", " ")) is None
        fast_path += on_fast_path
        if ours != soup:
            (mismatches if on_fast_path else differing).append(review.relative)
    return {
        "reviews": len(files),
        "fast_path_reviews": fast_path,
        "fast_path_mismatches": len(mismatches),
        "fast_path_mismatched_files": mismatches[:10],
        "other_reviews_differing": len(differing),
        "other_differing_files": differing[:10],
    }


def seed_speed(files: list[imdb_source.ReviewFile]) -> dict:
    """The seed's review_to_words on an evenly spread sample of the labeled reviews."""
    step = max(1, len(files) // SEED_SAMPLE)
    sample = [_read(review.path) for review in files[::step][:SEED_SAMPLE]]
    started = time.perf_counter()
    for text in sample:
        review_to_words(text)
    seconds = time.perf_counter() - started
    return {
        "reviews": len(sample),
        "seconds": round(seconds, 2),
        "reviews_per_second": round(len(sample) / seconds, 1),
    }


def machine() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    models = re.findall(r"model name\s*:\s*(.+)", cpuinfo.read_text()) if cpuinfo.exists() else []
    cpu = models[0].strip() if models else platform.processor() or "unknown CPU"
    return (
        f"{cpu} ({platform.machine()}), {psutil.virtual_memory().total / (1 << 30):.0f} GiB, "
        f"{platform.system()} {platform.release()}, Python {platform.python_version()}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "source",
        nargs="?",
        default=os.environ.get(imdb_source.SOURCE_ENV) or str(DEFAULT_ARCHIVE),
        help="the IMDB archive or an extracted aclImdb directory",
    )
    parser.add_argument("--cache-dir", type=Path, default=imdb_source.default_cache_dir())
    args = parser.parse_args()

    root = imdb_source.resolve(args.source, args.cache_dir)  # not timed
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="prepare-speed-") as work:
        labeled = time_prepare(root, Path(work), "--no-unlabeled")
        everything = time_prepare(root, Path(work), "--unlabeled")
    files = _all_review_files(root)
    labeled_files = [f for f in files if not f.relative.startswith(imdb_source.UNLABELED_DIR)]
    report = {
        "reviews": labeled["reviews"],
        "seconds": labeled["seconds"],
        "reviews_per_second": labeled["reviews_per_second"],
        "peak_rss_mb": labeled["peak_rss_mb"],
        "cpu_seconds": labeled["cpu_seconds"],
        "with_unlabeled": everything,
        "cores": os.cpu_count(),
        "machine": machine(),
        "load_average_before": [round(load, 2) for load in load_before],
        "strip_html_against_beautifulsoup": strip_html_check(files),
        "seed_review_to_words": seed_speed(labeled_files),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
