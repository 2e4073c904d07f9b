"""The layers import only downward (contract/__init__.py): read from every module's AST.

- contract: the standard library only;
- model/ runs in SageMaker's containers and lambda_src/ in Lambda: neither imports another
  layer of the project but the contract, and only where it travels with them: model/'s
  training entry point reads the hyperparameter schema from the source tarball, the
  prediction Lambda the capture format from its asset (contract.packaging);
- stacks (the CDK app, with app.py) and sentiment (the local stack) never import each other.
  The local stack runs model/'s preprocessing and lambda_src/'s handler in process; the CDK
  app only ships them as assets.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest
from cdk_stacks import synthesized

from contract.layout import PROJECT_ROOT
from stacks.functions import PythonFunction

PROJECT_PACKAGES = {"contract", "sentiment", "stacks", "lambda_src"}
MODEL_MODULES = {path.stem for path in (PROJECT_ROOT / "model").glob("*.py")}
# What each layer may import from the project, beside third-party packages.
ALLOWED = {
    "contract": {"contract"},
    "stacks": {"contract", "stacks"},
    "app.py": {"contract", "stacks"},
    "sentiment": {"contract", "sentiment", "lambda_src", *MODEL_MODULES},
    "model": {"contract", *MODEL_MODULES},
    # Lambda runs lambda_src/ as its root, with contract/ beside it (packaging.
    # lambda_asset_members); its own modules reach each other by relative imports.
    "lambda_src": {"contract"},
}


def imported_roots(path: Path) -> set[str]:
    """The top-level names of every module `path` imports, at any depth of its code."""
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def layer_files(layer: str) -> list[Path]:
    if layer.endswith(".py"):
        return [PROJECT_ROOT / layer]
    return sorted((PROJECT_ROOT / layer).rglob("*.py"))


def project_imports(path: Path) -> set[str]:
    return imported_roots(path) & (PROJECT_PACKAGES | MODEL_MODULES)


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_layer_imports_only_downward(layer: str) -> None:
    wrong = {
        str(path.relative_to(PROJECT_ROOT)): sorted(project_imports(path) - ALLOWED[layer])
        for path in layer_files(layer)
    }
    assert {path: names for path, names in wrong.items() if names} == {}


def test_contract_needs_only_the_standard_library() -> None:
    third_party = {
        str(path.relative_to(PROJECT_ROOT)): sorted(
            imported_roots(path) - set(sys.stdlib_module_names) - {"__future__", "contract"}
        )
        for path in layer_files("contract")
    }
    assert {path: names for path, names in third_party.items() if names} == {}


def test_the_scan_sees_every_kind_of_import(tmp_path: Path) -> None:
    module = tmp_path / "module.py"
    module.write_text(
        "import os.path\nfrom stacks.config import x\n"
        "def f():\n    import sentiment.cli\n    from . import sibling\n"
    )
    assert imported_roots(module) == {"os", "stacks", "sentiment"}
    assert project_imports(module) == {"stacks", "sentiment"}


def test_every_lambda_handler_imports_from_its_asset_alone() -> None:
    """Each function's Handler, imported as Lambda imports it: the asset root first on the path.

    boto3 comes with the runtime; nothing of the checkout (an editable install puts it on the
    path) may be needed: every project module must come from the asset.
    """
    app = synthesized()
    handlers = {
        construct.function.node.default_child.handler
        for construct in app.app.node.find_all()
        if isinstance(construct, PythonFunction)
    }
    probe = """
import importlib, sys
asset, project, handlers = sys.argv[1], sys.argv[2], sys.argv[3:]
sys.path = [asset] + [p for p in sys.path if p.rstrip("/") not in (project, "")]
for handler in handlers:
    module, _, function = handler.rpartition(".")
    loaded = importlib.import_module(module)
    assert loaded.__file__.startswith(asset), loaded.__file__
    assert callable(getattr(loaded, function)), handler
checkout = sorted(
    name for name, module in sys.modules.items()
    if (getattr(module, "__file__", None) or "").startswith(project + "/")
    and "/site-packages/" not in module.__file__
)
assert not checkout, checkout
print(len(handlers))
"""
    done = subprocess.run(
        [
            sys.executable,
            "-I",
            "-c",
            probe,
            str(app.workdir / "build" / "lambda"),
            str(PROJECT_ROOT),
            *sorted(handlers),
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd="/",
    )

    assert done.returncode == 0, done.stderr
    assert int(done.stdout) == len(handlers) >= 3
