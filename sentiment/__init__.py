"""Command line and local runner for the IMDB sentiment app."""

from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
MODEL_SOURCE_DIR = PROJECT_ROOT / "model"

try:
    __version__ = version("imdb-sentiment")
except PackageNotFoundError:  # running from a checkout without installing it
    __version__ = "0.0.0"
