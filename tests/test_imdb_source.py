"""Downloading the archive: a local HTTP server on 127.0.0.1 stands in for Stanford's."""

from __future__ import annotations

import http.server
import json
import re
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from sentiment.cli import main
from sentiment.imdb_source import default_cache_dir, default_source, review_files

ARCHIVE_NAME = "aclImdb_v1.tar.gz"


@dataclass
class ArchiveServer:
    """Serves the fixture archive at /<name>/aclImdb_v1.tar.gz, behaving as `behaviours` says.

    Behaviours: "full", "short" (fewer bytes than Content-Length), "chunked-cut" (the
    connection closes mid-chunk), "no-length-cut" (half the bytes, no Content-Length),
    "missing" (404). A name not in `behaviours` is its own behaviour.
    """

    payload: bytes
    base_url: str = ""
    behaviours: dict[str, str] = field(default_factory=dict)
    requests: Counter[str] = field(default_factory=Counter)

    def url(self, name: str) -> str:
        return f"{self.base_url}/{name}/{ARCHIVE_NAME}"


def _handler(server: ArchiveServer) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            name = self.path.split("/")[1]
            server.requests[name] += 1
            behaviour = server.behaviours.get(name, name)
            payload = server.payload
            if behaviour == "missing":
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/gzip")
            if behaviour == "chunked-cut":
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                half = payload[: len(payload) // 2]
                self.wfile.write(f"{len(payload):x}\r\n".encode() + half)
            elif behaviour == "no-length-cut":
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(payload[: len(payload) // 2])
            else:
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload if behaviour == "full" else payload[: len(payload) // 2])
            self.close_connection = True

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


@pytest.fixture
def archive_server(imdb_tarball: Path) -> Iterator[ArchiveServer]:
    server = ArchiveServer(imdb_tarball.read_bytes())
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(server))
    server.base_url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def _prepare(source: str | Path, tmp_path: Path, output: str = "out") -> int:
    paths = ["--source", str(source), "--output", str(tmp_path / output)]
    return main(["prepare", *paths, "--cache-dir", str(tmp_path / "cache"), "--workers", "1"])


def test_url_is_downloaded_once_and_reused(
    archive_server: ArchiveServer, tmp_path: Path, imdb_dir: Path
):
    url = archive_server.url("full")
    assert _prepare(url, tmp_path, "first") == 0
    assert _prepare(url, tmp_path, "second") == 0
    assert archive_server.requests["full"] == 1
    cached = tmp_path / "cache" / ARCHIVE_NAME
    assert cached.read_bytes() == archive_server.payload
    assert (tmp_path / "first" / "manifest.json").read_bytes() == (
        tmp_path / "second" / "manifest.json"
    ).read_bytes()
    assert not list((tmp_path / "cache").glob(".*"))
    # The same reviews as the local directory gives; each manifest records its own source.
    assert _prepare(imdb_dir, tmp_path, "local") == 0
    local, downloaded = (
        json.loads((tmp_path / name / "manifest.json").read_text()) for name in ("local", "first")
    )
    assert (local.pop("source"), downloaded.pop("source")) == (str(imdb_dir.resolve()), url)
    assert local == downloaded


@pytest.mark.parametrize(
    ("behaviour", "message"),
    [
        ("short", r"stopped at \d+ of \d+ bytes"),
        ("chunked-cut", r"could not download"),
        ("missing", r"could not download .*404"),
    ],
)
def test_failed_download_is_a_clear_error_and_leaves_no_file(
    behaviour: str,
    message: str,
    archive_server: ArchiveServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
):
    archive_server.behaviours["flaky"] = behaviour
    url = archive_server.url("flaky")
    assert _prepare(url, tmp_path) == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("sentiment prepare: error: ")
    assert re.search(message, error), error
    assert url in error
    assert list((tmp_path / "cache").rglob("*")) == []
    assert not (tmp_path / "out").exists()
    # Once the server behaves, the next run downloads afresh and succeeds.
    archive_server.behaviours["flaky"] = "full"
    assert _prepare(url, tmp_path) == 0
    assert archive_server.requests["flaky"] == 2


def test_truncated_download_without_length_does_not_poison_the_cache(
    archive_server: ArchiveServer, tmp_path: Path
):
    archive_server.behaviours["flaky"] = "no-length-cut"
    url = archive_server.url("flaky")
    assert _prepare(url, tmp_path) == 2
    assert not (tmp_path / "cache" / ARCHIVE_NAME).exists()
    assert list((tmp_path / "cache").rglob(".*")) == []
    archive_server.behaviours["flaky"] = "full"
    assert _prepare(url, tmp_path) == 0
    assert archive_server.requests["flaky"] == 2


def test_defaults_come_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.delenv("IMDB_SOURCE", raising=False)
    monkeypatch.delenv("SENTIMENT_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_source() == "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz"
    assert default_cache_dir() == tmp_path / "xdg" / "imdb-sentiment"
    monkeypatch.setenv("IMDB_SOURCE", "/data/aclImdb_v1.tar.gz")
    monkeypatch.setenv("SENTIMENT_CACHE_DIR", str(tmp_path / "cache"))
    assert default_source() == "/data/aclImdb_v1.tar.gz"
    assert default_cache_dir() == tmp_path / "cache"


def test_review_files_are_ordered_by_id_and_ignore_other_files(tmp_path: Path):
    folder = tmp_path / "train" / "pos"
    folder.mkdir(parents=True)
    for name in ("10_9.txt", "2_7.txt", "1_10.txt", "notes.txt", "3_8.txt.orig", "x_1.txt"):
        (folder / name).write_text("review")
    files = review_files(tmp_path, "train/pos")
    assert [f.relative for f in files] == [
        "train/pos/1_10.txt",
        "train/pos/2_7.txt",
        "train/pos/10_9.txt",
    ]
    assert [f.review_id for f in files] == [1, 2, 10]
