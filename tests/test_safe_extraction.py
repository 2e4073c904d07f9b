"""extract_tarball refuses malicious archives whole: nothing of them is ever extracted."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from contract.packaging import UnsafeArchiveError, extract_tarball
from sentiment.cli import main


def _member(name: str, **attributes: object) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    for key, value in attributes.items():
        setattr(info, key, value)
    return info


def _write(archive: Path, members: list[tuple[tarfile.TarInfo, bytes]]) -> Path:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", format=tarfile.PAX_FORMAT) as tar:
        for info, content in members:
            info.size = len(content) if info.isfile() else 0
            tar.addfile(info, io.BytesIO(content) if info.isfile() else None)
    archive.write_bytes(buffer.getvalue())
    return archive


# Each builds the one bad member, given where an escape would land.
MALICIOUS: dict[str, Callable[[Path], tarfile.TarInfo]] = {
    "absolute path": lambda outside: _member(str(outside / "evil.txt")),
    "parent directory": lambda outside: _member("../evil.txt"),
    "parent directory deep inside": lambda outside: _member("aclImdb/train/../../../evil.txt"),
    "symlink outside": lambda outside: _member(
        "aclImdb/passwd", type=tarfile.SYMTYPE, linkname="/etc/passwd"
    ),
    "symlink inside": lambda outside: _member(
        "aclImdb/link", type=tarfile.SYMTYPE, linkname="README"
    ),
    "hard link": lambda outside: _member(
        "aclImdb/hard", type=tarfile.LNKTYPE, linkname="aclImdb/README"
    ),
    "character device": lambda outside: _member(
        "aclImdb/tty", type=tarfile.CHRTYPE, devmajor=5, devminor=0
    ),
    "block device": lambda outside: _member("aclImdb/sda", type=tarfile.BLKTYPE, devmajor=8),
    "fifo": lambda outside: _member("aclImdb/pipe", type=tarfile.FIFOTYPE),
}


def _malicious_archive(kind: str, tmp_path: Path) -> Path:
    outside = tmp_path / "outside"
    outside.mkdir(exist_ok=True)
    bad = MALICIOUS[kind](outside)
    harmless = [(_member("aclImdb/README"), b"harmless file before the attack\n")]
    return _write(tmp_path / "evil.tar.gz", [*harmless, (bad, b"pwned\n")])


@pytest.mark.parametrize("kind", MALICIOUS)
def test_malicious_member_is_refused_and_nothing_is_extracted(kind: str, tmp_path: Path):
    archive = _malicious_archive(kind, tmp_path)
    destination = tmp_path / "cache" / "extracted" / "abc"
    with pytest.raises(UnsafeArchiveError, match="refusing archive member"):
        extract_tarball(archive, destination)
    assert not destination.exists()
    assert list(destination.parent.iterdir()) == []  # no temporary directory left either
    assert list((tmp_path / "outside").iterdir()) == []
    assert not (tmp_path / "cache" / "evil.txt").exists()
    assert not (tmp_path / "evil.txt").exists()


@pytest.mark.parametrize("kind", ["absolute path", "parent directory", "symlink outside"])
def test_malicious_source_archive_is_a_clear_cli_error(
    kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    archive = _malicious_archive(kind, tmp_path)
    cache, output = tmp_path / "cache", tmp_path / "out"
    argv = ["prepare", "--source", str(archive), "--output", str(output), "--cache-dir", str(cache)]
    assert main(argv) == 2
    assert "refusing archive member" in capsys.readouterr().err
    assert not output.exists()
    assert list(cache.rglob("*")) in ([], [cache / "extracted"])


def test_plain_archive_is_extracted_without_special_permissions(tmp_path: Path):
    archive = _write(
        tmp_path / "good.tar.gz",
        [
            (_member("aclImdb", type=tarfile.DIRTYPE, mode=0o755), b""),
            (_member("aclImdb/README", mode=0o4755), b"hello\n"),
        ],
    )
    destination = extract_tarball(archive, tmp_path / "extracted")
    readme = destination / "aclImdb" / "README"
    assert readme.read_bytes() == b"hello\n"
    assert not readme.stat().st_mode & 0o7000  # setuid and friends are dropped
    assert sorted(path.name for path in tmp_path.iterdir()) == ["extracted", "good.tar.gz"]


def test_extraction_never_overwrites_an_existing_destination(tmp_path: Path):
    archive = _write(tmp_path / "good.tar.gz", [(_member("aclImdb/README"), b"new\n")])
    destination = tmp_path / "extracted"
    destination.mkdir()
    (destination / "keep.txt").write_text("old")
    with pytest.raises(FileExistsError):
        extract_tarball(archive, destination)
    assert (destination / "keep.txt").read_text() == "old"
