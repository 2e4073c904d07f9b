"""Where the project's parts live in a checkout."""

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# The SageMaker source directory: train.py, inference.py and the modules they import.
MODEL_SOURCE_DIR = PROJECT_ROOT / "model"
# The Lambda functions' code asset: its root is what Lambda puts first on the import path.
LAMBDA_SOURCE_DIR = PROJECT_ROOT / "lambda_src"
# What the asset leaves out of that folder (patterns on any path component).
LAMBDA_ASSET_EXCLUDES = ("__pycache__", "*.pyc", ".pytest_cache", "tests", "openapi.json")
