"""Where the project's parts live in a checkout."""

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# The SageMaker source directory: train.py, inference.py and the modules they import.
MODEL_SOURCE_DIR = PROJECT_ROOT / "model"
