"""Content hashes that decide when a new training job runs.

The job name is derived from what determines the trained model — the source tarball, the
prepared data, the hyperparameters and the container image — so changing any of them starts
a new job on the next deployment, and changing anything else (instance types, alarms, the
web page) does not.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path

from contract.packaging import file_sha256, source_files

FINGERPRINT_LENGTH = 16


def directory_sha256(directory: Path) -> str:
    """A hash of a directory tree's relative paths and file contents (caches excluded)."""
    digest = hashlib.sha256()
    for path in source_files(directory):
        digest.update(path.relative_to(directory).as_posix().encode())
        digest.update(b"\0")
        digest.update(file_sha256(path).encode())
        digest.update(b"\n")
    return digest.hexdigest()


def training_fingerprint(
    *, code_sha256: str, data_sha256: str, hyperparameters: Mapping[str, str], image: str
) -> str:
    """The hash of everything a training job's result depends on."""
    document = {
        "code": code_sha256,
        "data": data_sha256,
        "hyperparameters": dict(sorted(hyperparameters.items())),
        "image": image,
    }
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def training_job_name(name_prefix: str, fingerprint: str) -> str:
    """``<prefix>-<16 hex digits>``: within SageMaker's 63 characters and its alphabet."""
    return f"{name_prefix}-{fingerprint[:FINGERPRINT_LENGTH]}"
