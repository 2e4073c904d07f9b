"""Deterministic tarballs (the training source, the model artifact) and the Lambda asset.

SageMaker's training container downloads `sagemaker_submit_directory` and extracts it
into /opt/ml/code; the serving container extracts `model.tar.gz` into /opt/ml/model.
Both are built here byte for byte reproducibly (sorted members, zeroed times and
owners), so the same inputs always hash the same: the CDK app names training jobs
after that hash.
"""

from __future__ import annotations

import ast
import fnmatch
import gzip
import hashlib
import importlib.metadata
import importlib.util
import os
import shutil
import tarfile
import tempfile
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

from contract.layout import LAMBDA_ASSET_EXCLUDES, LAMBDA_SOURCE_DIR, MODEL_SOURCE_DIR

_SKIPPED_PARTS = {"__pycache__", ".pytest_cache", ".ruff_cache"}
_SKIPPED_DIR_SUFFIXES = (".egg-info",)
_SKIPPED_SUFFIXES = {".pyc", ".pyo"}


def source_files(directory: Path) -> list[Path]:
    """The files below a directory, sorted, without caches."""
    files = [
        path
        for path in directory.rglob("*")
        if path.is_file()
        and not any(
            part in _SKIPPED_PARTS or part.endswith(_SKIPPED_DIR_SUFFIXES)
            for part in path.relative_to(directory).parts
        )
        and path.suffix not in _SKIPPED_SUFFIXES
    ]
    return sorted(files, key=lambda path: path.relative_to(directory).as_posix())


def write_tarball(members: Iterable[tuple[str, Path]], destination: Path) -> Path:
    """Write (archive name, file) pairs to a reproducible .tar.gz, atomically."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = destination.with_name(destination.name + ".partial")
    with (
        partial.open("wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as zipped,
        tarfile.open(fileobj=zipped, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for name, path in sorted(members):
            info = tarfile.TarInfo(name)
            info.size = path.stat().st_size
            info.mode = 0o755 if os.access(path, os.X_OK) else 0o644
            info.mtime = 0
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            with path.open("rb") as handle:
                tar.addfile(info, handle)
    partial.replace(destination)
    return destination


def build_tarball(directory: Path, destination: Path) -> Path:
    """Tar a directory's contents at the archive root.

    This is the layout of model.tar.gz (SageMaker tars SM_MODEL_DIR's contents so).
    """
    members = [(path.relative_to(directory).as_posix(), path) for path in source_files(directory)]
    return write_tarball(members, destination)


def contract_members() -> list[tuple[str, Path]]:
    """This package's files, as contract/ in an archive or asset that carries it."""
    package = Path(__file__).resolve().parent
    return [
        (f"{package.name}/{path.relative_to(package).as_posix()}", path)
        for path in source_files(package)
    ]


def training_source_members(model_dir: Path = MODEL_SOURCE_DIR) -> list[tuple[str, Path]]:
    """The training source tarball's files: model/ at the root, beside this package as
    contract/, whose hyperparameter schema train.py builds its parser from."""
    members = [(path.relative_to(model_dir).as_posix(), path) for path in source_files(model_dir)]
    return members + contract_members()


def build_training_source(destination: Path, model_dir: Path = MODEL_SOURCE_DIR) -> Path:
    """sourcedir.tar.gz, as SageMaker's training container extracts it into /opt/ml/code."""
    return write_tarball(training_source_members(model_dir), destination)


def lambda_asset_members() -> list[tuple[str, Path]]:
    """The Lambda functions' code: lambda_src/ at the root (what Lambda puts first on the
    import path), beside this package as contract/, whose capture format the prediction
    handler writes."""
    members = [
        (path.relative_to(LAMBDA_SOURCE_DIR).as_posix(), path)
        for path in source_files(LAMBDA_SOURCE_DIR)
        if not any(
            fnmatch.fnmatch(part, pattern)
            for part in path.relative_to(LAMBDA_SOURCE_DIR).parts
            for pattern in LAMBDA_ASSET_EXCLUDES
        )
    ]
    return members + contract_members()


def build_lambda_asset(destination: Path, extra: Iterable[tuple[str, Path]] = ()) -> Path:
    """The Lambda asset's directory (with ``extra`` members), made afresh (CDK hashes and zips
    what is in it)."""
    shutil.rmtree(destination, ignore_errors=True)
    for name, path in [*lambda_asset_members(), *extra]:
        target = destination / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
    return destination


# The model's preprocess.py imports BeautifulSoup and NLTK's Porter stemmer. Two places run it
# without them installed: the serving container, which would otherwise pip-install them at
# every start (so network isolation could not be on), and the drift Lambda. Both get them from
# the environment the model was trained in (its pinned versions): bs4, soupsieve and
# typing_extensions whole (pure Python), and of NLTK only the stemmer's two files, since
# NLTK's own __init__ imports its C-extension dependencies (regex), built for one machine.
# The serving code carries them in code/vendor/ (inference.py puts it on the path only where
# they are missing), the drift Lambda's asset in tokenizer_packages/
# (lambda_src/drift/tokenizer.py loads them).
VENDOR_DIR = "vendor"
TOKENIZER_PACKAGES_DIR = "tokenizer_packages"
_WHOLE_PACKAGES = {"bs4": "beautifulsoup4", "soupsieve": "soupsieve"}
_WHOLE_MODULES = {"typing_extensions": "typing_extensions"}
NLTK_STEMMER_FILES = ("stem/api.py", "stem/porter.py")
# What porter.py imports besides the stemmer's API, for its demo() alone, and the packages'
# own __init__ files: written in place of NLTK's, which would import all of NLTK.
NLTK_STAND_INS = {
    "nltk/__init__.py": '"""NLTK\'s Porter stemmer alone, carried with the model (its licence in '
    'licenses/nltk/)."""\n',
    "nltk/stem/__init__.py": "",
    "nltk/redos.py": "from re import sub  # porter.demo() only\n",
    "nltk/termsec.py": "safe_print = print  # porter.demo() only\n",
}


def preprocessing_package_members(prefix: str) -> list[tuple[str, Path]]:
    """The packages preprocess.py needs, with their licenses, under ``prefix``."""
    members = []
    for package in _WHOLE_PACKAGES:
        directory = Path(find_spec_origin(package)).parent
        members += [
            (f"{prefix}/{package}/{path.relative_to(directory).as_posix()}", path)
            for path in source_files(directory)
        ]
    for module in _WHOLE_MODULES:
        members.append((f"{prefix}/{module}.py", Path(find_spec_origin(module))))
    nltk = Path(find_spec_origin("nltk")).parent
    members += [(f"{prefix}/nltk/{file}", nltk / file) for file in NLTK_STEMMER_FILES]
    for distribution in [*_WHOLE_PACKAGES.values(), *_WHOLE_MODULES.values(), "nltk"]:
        for file in importlib.metadata.distribution(distribution).files or []:
            if "licenses/" in file.as_posix() or file.name in ("LICENSE", "LICENSE.txt"):
                name = f"{prefix}/licenses/{distribution}/{file.name}"
                members.append((name, Path(file.locate())))
    return members


def tokenizer_package_members() -> list[tuple[str, Path]]:
    """The packages an artifact's preprocess.py needs in the drift Lambda."""
    return preprocessing_package_members(TOKENIZER_PACKAGES_DIR)


def write_vendored_packages(code_dir: Path) -> Path:
    """code/vendor/: what preprocess.py imports, so the serving container installs nothing."""
    vendor = code_dir / VENDOR_DIR
    for name, path in preprocessing_package_members(VENDOR_DIR):
        target = code_dir / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
    for name, text in NLTK_STAND_INS.items():
        (vendor / name).write_text(text, encoding="utf-8")
    return vendor


def find_spec_origin(module: str) -> str:
    """Where an installed top-level module's file is, without importing it."""
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError(f"{module} is not installed; the model's code/ needs it")
    return spec.origin


def streamed_members(archive: BinaryIO, names: set[str], max_bytes: int) -> dict[str, bytes]:
    """The named regular files of a .tar.gz read as a stream, such as an S3 object's body,
    without storing the rest (``./`` prefixes ignored); a member over ``max_bytes`` is an
    error, not a read."""
    found = {}
    with tarfile.open(fileobj=archive, mode="r|gz") as tar:
        for member in tar:
            name = member.name.removeprefix("./")
            if name in names and member.isfile():
                if member.size > max_bytes:
                    raise ValueError(f"{name} in the archive is {member.size} bytes")
                extracted = tar.extractfile(member)
                assert extracted is not None  # a regular file
                found[name] = extracted.read()
    return found


def serving_code_files(source_dir: Path, entry_point: str = "inference.py") -> list[str]:
    """The entry point and every module beside it that it imports, at any depth: what
    model.tar.gz's code/ must hold for the serving container to import it alone."""
    siblings = {path.stem for path in source_dir.glob("*.py")}
    needed: set[str] = set()
    waiting = [Path(entry_point).stem]
    while waiting:
        name = waiting.pop()
        if name in needed:
            continue
        needed.add(name)
        for node in ast.walk(ast.parse((source_dir / f"{name}.py").read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                imported = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported = [node.module]
            else:
                continue
            waiting += [module for module in imported if module in siblings]
    return sorted(f"{name}.py" for name in needed)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class UnsafeArchiveError(ValueError):
    """An archive member that could write outside the destination or is not a plain file."""


def _plain_member(member: tarfile.TarInfo, destination: str) -> tarfile.TarInfo:
    """tarfile's `data` filter, and additionally no links or special files at all.

    The `data` filter already refuses `..`, devices and links that point outside; links
    inside are refused too, since nothing we read is ever a link, and so are absolute
    paths, which the filter would only make relative.
    """
    if not (member.isfile() or member.isdir()):
        raise UnsafeArchiveError(f"refusing archive member {member.name!r}: not a regular file")
    if member.name.startswith(("/", os.sep)):
        raise UnsafeArchiveError(f"refusing archive member {member.name!r}: absolute path")
    try:
        return tarfile.data_filter(member, destination)
    except tarfile.FilterError as error:
        raise UnsafeArchiveError(f"refusing archive member {member.name!r}: {error}") from None


def extract_tarball(archive: Path, destination: Path) -> Path:
    """Extract a .tar.gz into `destination` (which must not exist yet), all or nothing.

    Members are extracted into a sibling temporary directory that is renamed into place
    only when every member has been written, so an interrupted or refused extraction
    leaves nothing under the final name.
    """
    if destination.exists():
        raise FileExistsError(f"extraction target already exists: {destination}")
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=f".{destination.name}.", dir=destination.parent))
    try:
        with tarfile.open(archive, "r:gz") as tar:
            tar.extractall(partial, filter=_plain_member)
            # tarfile stops at the end-of-archive block; reading on to the end of the gzip
            # stream checks its CRC and length, so a cut-off archive is an error.
            while tar.fileobj.read(1 << 20):
                pass
        partial.replace(destination)
    except (tarfile.ReadError, EOFError, zlib.error, gzip.BadGzipFile) as error:
        raise ValueError(f"{archive} is not a complete .tar.gz archive ({error})") from None
    finally:
        if partial.exists():
            shutil.rmtree(partial)
    return destination
