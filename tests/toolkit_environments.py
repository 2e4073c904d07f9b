"""Virtual environments for AWS's own SageMaker toolkits, kept apart from the project's .venv.

The toolkits pip-install the model's requirements.txt into the interpreter that runs them
(and sagemaker-training compiles a C extension when installed), so each runs from an
environment of its own under build/, made once and kept (seconds with the packages cached).
A .pth file lets it see the project's installed packages, torch among them, so pip finds
torch 2.13.0 already there and installs no other build.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

from contract.layout import PROJECT_ROOT

INSTALL_TIMEOUT = 600


def toolkit_environment(name: str, *requirements: str) -> Path:
    """The bin/ folder of build/<name>/, a venv with ``requirements`` installed."""
    root = PROJECT_ROOT / "build" / name
    marker = root / (".installed-" + "-".join(sorted(requirements)).replace("/", "_"))
    if not marker.exists():
        shutil.rmtree(root, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(root)], check=True)
        site = next((root / "lib").glob("python3*/site-packages"))
        (site / "project-packages.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
        subprocess.run(
            [root / "bin" / "python", "-m", "pip", "install", "--quiet", *requirements],
            check=True,
            timeout=INSTALL_TIMEOUT,
        )
        marker.touch()
    return root / "bin"
