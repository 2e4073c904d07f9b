"""No code path that deserializes untrusted bytes into objects, found by reading the syntax tree.

A model artifact, a checkpoint or a dataset archive is data someone else may have written, so
the project's code must never unpickle (pickle and its relatives execute code while loading),
must load tensors only with ``torch.load(..., weights_only=True)`` and arrays only without
``allow_pickle``, and must extract archives only through ``contract.packaging.extract_tarball``,
whose filter refuses absolute paths, ``..``, links and devices (tests/test_safe_extraction.py
feeds it malicious archives). The scan parses the source with ``ast`` and resolves import
aliases, so comments, strings, line breaks or ``import torch as t`` can neither hide a call nor
fake a safe one.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

from contract.layout import PROJECT_ROOT

SCANNED = ("contract", "model", "lambda_src", "sentiment", "stacks", "bench")
# Modules whose loading is unpickling (shelve and joblib are pickle underneath).
PICKLING_MODULES = frozenset(
    {"pickle", "_pickle", "cPickle", "dill", "cloudpickle", "shelve", "joblib"}
)
TORCH_LOADS = frozenset({"torch.load", "torch.serialization.load"})
NUMPY_LOADS = frozenset({"numpy.load"})
DYNAMIC_IMPORTS = frozenset({"__import__", "importlib.import_module"})
EXTRACTING_METHODS = frozenset({"extract", "extractall"})
EXTRACTING_FUNCTIONS = frozenset({"shutil.unpack_archive"})
# The one place allowed to extract: (file, function, the filter it must pass).
SAFE_EXTRACTION = ("contract/packaging.py", "extract_tarball", "_plain_member")


@dataclass(frozen=True)
class Finding:
    path: str
    line: int
    problem: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.problem}"


class _Scanner(ast.NodeVisitor):
    def __init__(self, path: str) -> None:
        self.path = path
        self.aliases: dict[str, str] = {}
        self.functions: list[str] = []
        self.findings: list[Finding] = []
        self.calls: list[str] = []

    def flag(self, node: ast.AST, problem: str) -> None:
        self.findings.append(Finding(self.path, node.lineno, problem))

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if alias.asname:
                self.aliases[alias.asname] = alias.name
            else:
                root = alias.name.split(".")[0]
                self.aliases[root] = root
            if alias.name.split(".")[0] in PICKLING_MODULES:
                self.flag(node, f"imports {alias.name}")

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = node.module or ""
        for alias in node.names:
            self.aliases[alias.asname or alias.name] = f"{module}.{alias.name}"
            if module.split(".")[0] in PICKLING_MODULES or alias.name in PICKLING_MODULES:
                self.flag(node, f"imports {alias.name} from {module or '.'}")

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self.functions.append(node.name)
        self.generic_visit(node)
        self.functions.pop()

    visit_AsyncFunctionDef = visit_FunctionDef

    def qualified(self, node: ast.expr) -> str | None:
        """The dotted name an expression refers to, through the module's import aliases."""
        if isinstance(node, ast.Name):
            return self.aliases.get(node.id, node.id)
        if isinstance(node, ast.Attribute):
            base = self.qualified(node.value)
            return None if base is None else f"{base}.{node.attr}"
        return None

    def visit_Call(self, node: ast.Call) -> None:
        name = self.qualified(node.func)
        self.calls.append(name or "")
        keywords = {keyword.arg: keyword.value for keyword in node.keywords}
        if None in keywords and name in TORCH_LOADS | NUMPY_LOADS:
            self.flag(node, f"{name}(**...) hides its safety settings")
        elif name in TORCH_LOADS and not _is_constant(keywords.get("weights_only"), True):
            self.flag(node, f"{name} without weights_only=True")
        elif name in NUMPY_LOADS and not _is_constant(keywords.get("allow_pickle", False), False):
            self.flag(node, f"{name} with allow_pickle")
        elif name in DYNAMIC_IMPORTS and node.args and _imports_pickling(node.args[0]):
            self.flag(node, f"{name} of {node.args[0].value}")
        elif name in EXTRACTING_FUNCTIONS:
            self.flag(node, f"{name} extracts without the safe filter")
        elif isinstance(node.func, ast.Attribute) and node.func.attr in EXTRACTING_METHODS:
            self.check_extraction(node, keywords.get("filter"))
        self.generic_visit(node)

    def check_extraction(self, node: ast.Call, member_filter: ast.expr | None) -> None:
        path, function, safe_filter = SAFE_EXTRACTION
        where = (self.path, self.functions[-1] if self.functions else None)
        if where != (path, function):
            self.flag(node, f".{node.func.attr}() outside {path}:{function}")
        elif not (isinstance(member_filter, ast.Name) and member_filter.id == safe_filter):
            self.flag(node, f".{node.func.attr}() without filter={safe_filter}")


def _is_constant(node: ast.expr | bool | None, value: bool) -> bool:
    if isinstance(node, bool):  # the default of an omitted keyword
        return node is value
    return isinstance(node, ast.Constant) and node.value is value


def _imports_pickling(node: ast.expr) -> bool:
    return (
        isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and node.value.split(".")[0] in PICKLING_MODULES
    )


def scan(source: str, path: str) -> _Scanner:
    scanner = _Scanner(path)
    scanner.visit(ast.parse(source, filename=path))
    return scanner


def findings(source: str, path: str = "model/example.py") -> list[str]:
    return [finding.problem for finding in scan(source, path).findings]


def project_sources() -> list[Path]:
    return sorted(path for folder in SCANNED for path in (PROJECT_ROOT / folder).rglob("*.py"))


# --- the project ------------------------------------------------------------------------------


def test_the_project_never_unpickles_and_extracts_only_through_the_safe_filter() -> None:
    sources = project_sources()
    scanners = [
        scan(path.read_text(encoding="utf-8"), path.relative_to(PROJECT_ROOT).as_posix())
        for path in sources
    ]

    assert [str(finding) for scanner in scanners for finding in scanner.findings] == []
    # The scan saw the code it guards, so it cannot pass by reading nothing.
    scanned = {scanner.path for scanner in scanners}
    assert {"model/inference.py", "model/train.py", SAFE_EXTRACTION[0]} <= scanned
    calls = [call for scanner in scanners for call in scanner.calls]
    assert calls.count("torch.load") >= 2
    assert "numpy.load" in calls
    assert "tar.extractall" in calls


# --- the scan itself ----------------------------------------------------------------------------

UNSAFE = {
    "import pickle": ("import pickle\n", "imports pickle"),
    "import pickle under another name": ("import pickle as serializer\n", "imports pickle"),
    "from pickle": ("from pickle import loads\n", "imports loads from pickle"),
    "joblib": ("import joblib\n", "imports joblib"),
    "pickle imported by name": (
        "import importlib\nimportlib.import_module('pickle')\n",
        "importlib.import_module of pickle",
    ),
    "torch.load with the default": ("import torch\ntorch.load(path)\n", "torch.load without"),
    "torch.load with weights_only=False": (
        "import torch\ntorch.load(path, weights_only=False)\n",
        "torch.load without",
    ),
    "torch.load spread over lines, the flag in a comment": (
        "import torch\ntorch . load (\n    path,  # weights_only=True\n)\n",
        "torch.load without",
    ),
    "torch.load under another name": (
        "import torch as t\nt.load(path, weights_only=flag)\n",
        "torch.load without",
    ),
    "torch.load imported alone": (
        "from torch import load as restore\nrestore(path)\n",
        "torch.load without",
    ),
    "torch.load with settings spread in": (
        "import torch\ntorch.load(path, **options)\n",
        "torch.load(**...) hides its safety settings",
    ),
    "np.load allowing pickles": (
        "import numpy as np\nnp.load(path, allow_pickle=True)\n",
        "numpy.load with allow_pickle",
    ),
    "extractall anywhere": ("archive.extractall(destination)\n", ".extractall() outside"),
    "extract of one member": ("archive.extract(member, destination)\n", ".extract() outside"),
    "shutil.unpack_archive": (
        "import shutil\nshutil.unpack_archive(path, destination)\n",
        "shutil.unpack_archive extracts",
    ),
}


@pytest.mark.parametrize(("source", "problem"), UNSAFE.values(), ids=UNSAFE)
def test_the_scan_flags_unsafe_code(source: str, problem: str) -> None:
    [found] = findings(source)

    assert found.startswith(problem)


SAFE = {
    "torch.load of weights only": (
        "import torch\ntorch.load(path, map_location='cpu', weights_only=True)\n"
    ),
    "np.load without pickles": (
        "import numpy as np\nnp.load(path)\nnp.load(path, allow_pickle=False)\n"
    ),
    "a string that mentions pickle": "text = 'import pickle; torch.load(path)'\n",
    "a member read, not extracted": "archive.extractfile(name).read()\n",
    "json.load": "import json\njson.load(handle)\n",
}


@pytest.mark.parametrize("source", SAFE.values(), ids=SAFE)
def test_the_scan_passes_safe_code(source: str) -> None:
    assert findings(source) == []


def test_extraction_is_allowed_only_in_the_safe_function_with_its_filter() -> None:
    path, function, safe_filter = SAFE_EXTRACTION
    safe = f"def {function}(tar, to):\n    tar.extractall(to, filter={safe_filter})\n"
    unfiltered = f"def {function}(tar, to):\n    tar.extractall(to)\n"
    elsewhere = f"def unpack(tar, to):\n    tar.extractall(to, filter={safe_filter})\n"

    assert findings(safe, path) == []
    assert findings(unfiltered, path) == [f".extractall() without filter={safe_filter}"]
    assert findings(safe, "sentiment/other.py") == [f".extractall() outside {path}:{function}"]
    assert findings(elsewhere, path) == [f".extractall() outside {path}:{function}"]
