"""The deployed model's way of reading a review, and its baseline, from its model.tar.gz.

The artifact is self-describing: code/preprocess.py, vocabulary.json and drift_baseline.json
are what the endpoint serves with, so the drift figures count tokens exactly as the model
reads them, with no copy of the preprocessing that could fall out of step. The archive is
streamed from S3 and only those three members are kept (model.pt passes through unread).
preprocess.py imports BeautifulSoup and NLTK's Porter stemmer, which the asset carries
(contract.packaging.tokenizer_package_members: NLTK's own __init__ would import its
C-extension dependencies, so only the stemmer's files travel, and the two NLTK modules that
porter.py names for its demo() alone get stand-ins here).
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
import tempfile
import types
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from contract.drift import BASELINE_FILE, check_baseline, review_words
from contract.drift_sources import parse_s3_url
from contract.packaging import TOKENIZER_PACKAGES_DIR, streamed_members

PREPROCESS_MEMBER = "code/preprocess.py"
VOCABULARY_MEMBER = "vocabulary.json"
# Far above what these files hold (a vocabulary of 30,000 words is under 1 MB).
MAX_MEMBER_BYTES = 64 << 20
# The asset's root, where Lambda puts lambda_src/'s contents (and the tokenizer's packages).
ASSET_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class ModelReading:
    words: Callable[[str], tuple[list[str], list[str]]]
    baseline: dict[str, Any] | None


def _stemmer_only_nltk(packages: Path) -> None:
    """Let ``from nltk.stem.porter import PorterStemmer`` load the two carried files alone."""
    if "nltk" in sys.modules or not (packages / "nltk").is_dir():
        return  # a full NLTK is importable (tests, a developer's machine)
    for name in ("nltk", "nltk.stem"):
        module = types.ModuleType(name)
        module.__path__ = [str(packages.joinpath(*name.split(".")))]
        sys.modules[name] = module
    # porter.py imports these for its demo() only; the real redos needs regex, a C extension.
    stand_ins = {"redos": {"sub": re.sub}, "termsec": {"safe_print": print}}
    for name, attributes in stand_ins.items():
        module = types.ModuleType(f"nltk.{name}")
        module.__dict__.update(attributes)
        sys.modules[module.__name__] = module
        setattr(sys.modules["nltk"], name, module)


def load_preprocess(source: bytes, asset_root: Path = ASSET_ROOT) -> types.ModuleType:
    """The artifact's preprocess.py as a module, its packages from the asset."""
    packages = asset_root / TOKENIZER_PACKAGES_DIR
    if packages.is_dir() and str(packages) not in sys.path:
        sys.path.append(str(packages))
    _stemmer_only_nltk(packages)
    directory = Path(tempfile.mkdtemp(prefix="model-code-"))
    path = directory / "preprocess.py"
    path.write_bytes(source)
    spec = importlib.util.spec_from_file_location("artifact_preprocess", path)
    module = importlib.util.module_from_spec(spec)
    # dataclasses look their module up by name while the class is made.
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        sys.modules.pop(spec.name, None)
    return module


def read_model(s3: Any, model_data_url: str) -> ModelReading:
    """The deployed artifact's review reader and its baseline (None if it has none)."""
    bucket, key = parse_s3_url(model_data_url)
    body = s3.get_object(Bucket=bucket, Key=key)["Body"]
    wanted = {PREPROCESS_MEMBER, VOCABULARY_MEMBER, BASELINE_FILE}
    members = streamed_members(body, wanted, MAX_MEMBER_BYTES)
    missing = {PREPROCESS_MEMBER, VOCABULARY_MEMBER} - set(members)
    if missing:
        raise ValueError(f"{model_data_url} has no {', '.join(sorted(missing))}")
    words = review_words(
        load_preprocess(members[PREPROCESS_MEMBER]), json.loads(members[VOCABULARY_MEMBER])
    )
    baseline = None
    if BASELINE_FILE in members:
        baseline = check_baseline(json.loads(members[BASELINE_FILE]), model_data_url)
    return ModelReading(words, baseline)
