"""Puts code/vendor/ on the import path where preprocess.py's packages are not installed.

The serving container installs nothing, so the real-time endpoint can run with network
isolation: the model carries BeautifulSoup and NLTK's Porter stemmer in code/vendor/, copied
from the environment it was trained in (contract/packaging.py, write_vendored_packages).
Appended, not prepended: an environment that has them (training, the local stack) keeps its
own, the same versions.
"""

import sys
from pathlib import Path

# contract.packaging.VENDOR_DIR; code/ travels without contract/ (a test holds them equal).
VENDOR = Path(__file__).resolve().parent / "vendor"
try:
    import bs4  # noqa: F401
    import nltk.stem.porter  # noqa: F401
except ImportError:
    sys.path.append(str(VENDOR))
