"""A model's own code, imported from its code/ directory without disturbing anyone else's.

A model artifact carries the code that serves it (code/inference.py and its siblings, which
import each other by bare name, as the serving container imports them). Whoever loads two
artifacts side by side (the endpoint emulator during a hot swap, the promotion gate in the
training job, which holds the new model and the serving one) or an artifact beside the
checkout's model/ must keep their same-named modules apart. Standard library only, so the
training job, which carries contract/ (packaging.training_source_members), can use it.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

# Where an extracted artifact keeps its code, and the module the serving container imports
# from there (SAGEMAKER_PROGRAM).
CODE_DIR = "code"
HANDLER_MODULE = "inference"


def import_isolated(directory: Path, name: str) -> ModuleType:
    """Import module `name` from `directory` by its bare name, leaving sys.modules as it was.

    Every module the directory holds is imported afresh from it, never reused from an
    earlier import of the same name (the checkout's model/, another artifact), and taken
    out of sys.modules again afterwards: the imported modules keep their references to
    each other, so two artifacts and the checkout can be loaded side by side. Not
    thread-safe: it changes sys.path while it runs.
    """
    directory = directory.resolve()
    if not (directory / f"{name}.py").is_file():
        raise FileNotFoundError(f"no {name}.py in {directory}")
    own_names = {path.stem for path in directory.glob("*.py")}
    shadowed = {module: sys.modules.pop(module) for module in own_names if module in sys.modules}
    sys.path.insert(0, str(directory))
    importlib.invalidate_caches()
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(directory))
        for module in own_names:
            sys.modules.pop(module, None)
        sys.modules.update(shadowed)
