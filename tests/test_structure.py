"""The package keeps the shape conformance/__init__.py describes: layers that import only downwards and never in a
circle, one error root, type hints on every public function, and a type checker that agrees with them."""

from __future__ import annotations

import ast
import importlib
import importlib.util
import re
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

import pytest

from conformance.contract.problems import ConformanceProblem
from conformance.paths import PACKAGE
from conformance.text import last_lines, one_line

ROOT = PACKAGE.parent
#: Modules every layer may import: small shared pieces (and the package itself).
BOTTOM = ("conformance", "conformance._fs", "conformance.text", "conformance.paths")
#: Modules that sit with a front end although the module map does not list them.
BESIDE = {"conformance.__main__": "conformance.cli"}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@lru_cache(maxsize=None)
def _sources() -> dict[str, Path]:
    """``{module name: file}`` for every module of the package (the kit's data folder is not the package)."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        if "kitdata" in path.relative_to(PACKAGE).parts:
            continue
        found[_module_name(path)] = path
    return found


@lru_cache(maxsize=None)
def _tree(module: str) -> ast.Module:
    path = _sources()[module]
    return ast.parse(path.read_text(encoding="utf-8"), str(path))


def _is_suite_test(module: str) -> bool:
    return module.startswith("conformance.suite.test_")


# ----------------------------------------------------------------------------------------------- error root


def _problem_classes() -> list[tuple[str, str]]:
    """``(module, class name)`` for every class named ``*Problem`` defined anywhere in the package."""
    return [(module, node.name) for module in _sources() for node in ast.walk(_tree(module))
            if isinstance(node, ast.ClassDef) and node.name.endswith("Problem")]


def test_the_package_has_its_problem_classes():
    names = {name for _, name in _problem_classes()}
    assert {"ModelProblem", "ManifestProblem", "ArchiveProblem", "DataProblem", "JSONProblem", "JobProblem",
            "StagingProblem", "CandidateProblem", "UsageProblem"} <= names


@pytest.mark.parametrize("module, name", _problem_classes(), ids=lambda v: v)
def test_every_problem_class_is_a_conformance_problem(module, name):
    cls = getattr(importlib.import_module(module), name)
    assert issubclass(cls, ConformanceProblem), f"{module}.{name} must subclass ConformanceProblem"
    assert issubclass(cls, ValueError)  # so that `except ValueError` keeps catching it


# --------------------------------------------------------------------------------------- shared small pieces


def test_one_line_collapses_whitespace_and_cuts_long_lines():
    assert one_line(ValueError("bad\n  thing\there")) == "bad thing here"
    assert one_line(KeyError()) == "KeyError"  # an exception without a message gives its type
    assert one_line("") == ""
    assert one_line("x" * 200) == "x" * 200
    assert one_line("x" * 201) == "x" * 197 + "..."
    assert one_line("x" * 500, limit=None) == "x" * 500


def test_last_lines_quotes_the_end_of_an_output():
    assert last_lines("first\n\n  second  \n\n") == "second"
    assert last_lines("", default="no message") == "no message"
    assert last_lines("a\nb\nc\nd", 3) == "b | c | d"
    assert last_lines(" \n", 3, default="(nothing)") == "(nothing)"


# ------------------------------------------------------------------------------------------------ type hints


def _public_functions(tree: ast.Module) -> list[tuple[ast.FunctionDef | ast.AsyncFunctionDef, bool]]:
    """``(function, is_method)`` for the module's public functions and the public methods of its public
    classes (nested functions are not public)."""
    found: list[tuple[ast.FunctionDef | ast.AsyncFunctionDef, bool]] = []
    functions = (ast.FunctionDef, ast.AsyncFunctionDef)
    for node in tree.body:
        if isinstance(node, functions) and not node.name.startswith("_"):
            found.append((node, False))
        elif isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
            found += [(item, True) for item in node.body
                      if isinstance(item, functions) and not item.name.startswith("_")]
    return found


def _missing_annotations(function: ast.FunctionDef | ast.AsyncFunctionDef, is_method: bool) -> list[str]:
    arguments = function.args
    positional = arguments.posonlyargs + arguments.args
    static = any(isinstance(d, ast.Name) and d.id == "staticmethod" for d in function.decorator_list)
    if is_method and not static and positional:
        positional = positional[1:]  # self or cls
    every = positional + arguments.kwonlyargs + [a for a in (arguments.vararg, arguments.kwarg) if a is not None]
    missing = [a.arg for a in every if a.annotation is None]
    if function.returns is None:
        missing.append("return")
    return missing


def test_every_public_function_has_type_hints():
    unannotated = []
    for module, path in _sources().items():
        if _is_suite_test(module) or module.endswith(("_pb2", "_pb2_grpc")):  # (generated gRPC stubs)
            continue
        for function, is_method in _public_functions(_tree(module)):
            missing = _missing_annotations(function, is_method)
            if missing:
                where = f"{path.relative_to(ROOT)}:{function.lineno}"
                unannotated.append(f"{where} {function.name}: {', '.join(missing)}")
    assert not unannotated, "public functions without type hints:\n" + "\n".join(unannotated)


def test_the_type_checker_finds_no_error():
    if importlib.util.find_spec("mypy") is None:
        pytest.skip("mypy is not installed (pip install -e '.[dev]')")
    if not (ROOT / "pyproject.toml").is_file():
        pytest.skip("not a checkout: the mypy settings live in pyproject.toml")
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", "pyproject.toml", "--cache-dir", "/dev/null",
         "--no-error-summary", "--no-pretty"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    errors = [line for line in done.stdout.splitlines() if ": error:" in line]
    assert done.returncode == 0 and not errors, "mypy:\n" + (done.stdout + done.stderr).strip()


# --------------------------------------------------------------------------------------------------- layers


@lru_cache(maxsize=None)
def _layers() -> dict[str, int]:
    """``{module or subpackage: rank}`` from the module map in conformance/__init__.py: one rank per line of the
    map, in order (modules named on the same line share a rank); the shared bottom pieces rank 0."""
    doc = ast.get_docstring(_tree("conformance")) or ""
    ranks = {name: 0 for name in BOTTOM}
    rank = 0
    for line in doc.splitlines():
        names = re.findall(r":mod:`(conformance\.[\w.]+)`", line) if line.startswith("- ") else []
        if names:
            rank += 1
            ranks.update((name, rank) for name in names)
    for module, beside in BESIDE.items():
        ranks[module] = ranks[beside]
    return ranks


def _rank(module: str) -> int:
    """The rank of ``module``: its own, else its nearest enclosing package's."""
    ranks = _layers()
    name = module
    while name not in ranks:
        if "." not in name:
            raise AssertionError(f"{module} is in no layer of the module map (conformance/__init__.py)")
        name = name.rsplit(".", 1)[0]
    return ranks[name]


def _imports(module: str) -> set[str]:
    """The package's modules that ``module`` imports anywhere in its source (in functions too)."""
    known = _sources()
    package = module if _sources()[module].name == "__init__.py" else module.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(_tree(module)):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            # `from package import module` imports the module; `from module import name` the module
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:  # `import conformance.v2.documents as x`: the module itself
                target = target.rsplit(".", 1)[0] if "." in target else ""
            if target and target != module:
                found.add(target)
    return found


def test_every_module_is_in_a_layer():
    assert _layers()  # the module map is there
    for module in _sources():
        _rank(module)


def test_no_module_imports_from_a_layer_above_its_own():
    upward = [f"{module} (layer {_rank(module)}) imports {target} (layer {_rank(target)})"
              for module in _sources() for target in sorted(_imports(module)) if _rank(target) > _rank(module)]
    assert not upward, "imports against the layering of conformance/__init__.py:\n" + "\n".join(upward)


def test_no_import_cycle():
    graph = {module: _imports(module) for module in _sources()}
    cycles = [component for component in _strongly_connected(graph) if len(component) > 1]
    assert not cycles, "import cycles:\n" + "\n".join(" <-> ".join(sorted(c)) for c in cycles)


def _strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components, without recursion."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, edges = work[-1]
            for target in edges:
                if target not in index:
                    index[target] = low[target] = len(index)
                    stack.append(target)
                    on_stack.add(target)
                    work.append((target, iter(sorted(graph.get(target, ())))))
                    break
                if target in on_stack:
                    low[node] = min(low[node], index[target])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    components.append(component)
    return components


def test_the_cycle_finder_finds_a_cycle():
    found = _strongly_connected({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}})
    assert sorted(sorted(c) for c in found if len(c) > 1) == [["a", "b", "c"]]
