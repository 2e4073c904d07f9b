"""contract.packaging.serving_code_files: what model.tar.gz's code/ must hold."""

from __future__ import annotations

from pathlib import Path

from contract.layout import MODEL_SOURCE_DIR
from contract.packaging import serving_code_files


def test_the_entry_point_and_the_siblings_it_imports_at_any_depth(tmp_path: Path) -> None:
    (tmp_path / "inference.py").write_text("import json\nimport network\n")
    (tmp_path / "network.py").write_text("def f():\n    from words import split\n")
    (tmp_path / "words.py").write_text("import re\nfrom . import nothing\nimport network\n")
    (tmp_path / "train.py").write_text("import inference\n")  # imports it; not imported by it

    assert serving_code_files(tmp_path) == ["inference.py", "network.py", "words.py"]


def test_the_model_source_serves_with_five_modules() -> None:
    # vendored_packages puts code/vendor/ on the path where preprocess.py's packages are missing.
    assert serving_code_files(MODEL_SOURCE_DIR) == [
        "explanation.py",
        "inference.py",
        "network.py",
        "preprocess.py",
        "vendored_packages.py",
    ]
