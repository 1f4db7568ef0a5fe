"""The layers of the bovw package, read from its imports with ast (nothing of bovw is run
but one subprocess): no import cycle, no module importing another's private name, image/
and the Predictor free of Spark, nothing importing the CLI, the report not importing the
experiments, every module small and with its public surface declared."""

from __future__ import annotations

import ast
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "bovw"
MAX_LINES = 400
SPARK = ("pyspark", "py4j")


def module_name(path: Path) -> str:
    parts = ("bovw", *path.relative_to(PACKAGE).with_suffix("").parts)
    return ".".join(parts).removesuffix(".__init__")


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


@dataclass(frozen=True)
class Import:
    """One import statement's target: a bovw module (or, for anything else, the top-level
    package name), the name taken from it (None for `import x`), and whether it runs when
    the importing module is imported (module level, outside `if TYPE_CHECKING`)."""

    target: str
    name: str | None
    on_import: bool
    runtime: bool


def _is_type_checking(node: ast.If) -> bool:
    return "TYPE_CHECKING" in ast.unparse(node.test)


def imports_of(source: str, module: str, is_package: bool = False) -> list[Import]:
    """The imports in `source`, the text of `module`, resolved to bovw modules."""
    package = module if is_package else module.rpartition(".")[0]
    found: list[Import] = []

    def resolve(base: str, name: str | None) -> str:
        if name is not None and f"{base}.{name}" in MODULES:
            return f"{base}.{name}"
        return base if base in MODULES else base.split(".")[0]

    def visit(node: ast.AST, on_import: bool, runtime: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import):
                found.extend(Import(resolve(alias.name, None), None, on_import, runtime)
                             for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    parents = package.split(".")[:len(package.split(".")) - child.level + 1]
                    base = ".".join([*parents, *([base] if base else [])])
                found.extend(Import(resolve(base, alias.name), alias.name, on_import, runtime)
                             for alias in child.names)
            elif isinstance(child, ast.If) and _is_type_checking(child):
                visit(child, on_import, False)
            elif isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                visit(child, False, runtime)
            else:
                visit(child, on_import, runtime)

    visit(ast.parse(source), True, True)
    return found


IMPORTS = {name: imports_of(path.read_text(encoding="utf-8"), name, path.name == "__init__.py")
           for name, path in MODULES.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one node, or with a self-loop."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in graph.get(node, ()):
            if other not in index:
                connect(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1 or node in graph.get(node, ()):
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return found


def private_imports(imports: dict[str, list[Import]]) -> list[str]:
    """`module <- other.name` for every private name one module takes from another."""
    return [f"{module} <- {item.target}.{item.name}" for module, found in imports.items()
            for item in found
            if item.name and item.name.startswith("_") and not item.name.startswith("__")
            and item.target in MODULES and item.target != module]


def spark_chains(start: str, imports: dict[str, list[Import]]) -> list[list[str]]:
    """The import chains from `start` that reach pyspark or py4j when it runs.

    A module's own imports count wherever they are (a function's import runs when it is
    called); the package __init__ modules Python runs first count by their module-level
    imports only (what a lazy __getattr__ would import is not loaded)."""
    chains: list[list[str]] = []
    seen: set[tuple[str, bool]] = set()

    def walk(module: str, whole: bool, chain: list[str]) -> None:
        if (module, whole) in seen:
            return
        seen.add((module, whole))
        parent = module.rpartition(".")[0]
        if parent in MODULES:
            walk(parent, False, [*chain, f"{parent} (package)"])
        for item in imports.get(module, ()):
            if not item.runtime or not (whole or item.on_import):
                continue
            if item.target in SPARK:
                chains.append([*chain, item.target])
            elif item.target in MODULES:
                walk(item.target, True, [*chain, item.target])

    walk(start, True, [start])
    return chains


# ---------------------------------------------------------------- the checks work

def test_a_cycle_is_found():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"a"}}) == [["a"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_a_private_import_is_found_and_a_relative_import_resolved():
    found = imports_of("from bovw.cli.command import _session, build_parser\n"
                       "def f():\n    from . import common\n", "bovw.cli.run")
    assert private_imports({"bovw.cli.run": found}) == ["bovw.cli.run <- bovw.cli.command._session"]
    assert Import("bovw.cli.common", "common", False, True) in found


def test_a_spark_import_inside_a_function_is_found():
    imports = {"bovw.image.colour": imports_of(
        "def f():\n    from pyspark.sql import functions as F\n", "bovw.image.colour"),
        "bovw.image": []}
    assert spark_chains("bovw.image.colour", imports) == [["bovw.image.colour", "pyspark"]]
    typed = {"bovw.image.colour": imports_of(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import pyspark\n",
        "bovw.image.colour")}
    assert spark_chains("bovw.image.colour", typed) == []


# ---------------------------------------------------------------- the rules

def test_no_import_cycle():
    graph = {module: {item.target for item in found if item.target in MODULES} - {module}
             for module, found in IMPORTS.items()}
    assert cycles(graph) == []


def test_no_module_imports_another_modules_private_name():
    assert private_imports(IMPORTS) == []


@pytest.mark.parametrize("module", [name for name in MODULES if name.startswith("bovw.image")]
                         + ["bovw.predict.predictor"])
def test_image_and_the_predictor_import_no_spark(module):
    assert spark_chains(module, IMPORTS) == []


def test_the_predictor_loads_no_spark_when_it_predicts():
    code = """
import sys
import numpy as np
import bovw
from bovw.config import HistogramSettings, OrbSettings
from bovw.image.synthetic import encode_jpeg, render_fruit
from bovw.predict.model_file import ExportedModel, model_to_bytes

model = ExportedModel(
    classes=("Banana", "Orange"), centers=np.arange(3 * 32, dtype=np.float32).reshape(3, 32),
    idf=np.ones(3), pc=np.eye(3), coefficients=np.array([[1.0, 0, 0], [0, 1.0, 0]]),
    intercepts=np.zeros(2), orb=OrbSettings(), histograms=HistogramSettings(pyramid_levels=1),
    training_size=(100, 100))
predictor = bovw.Predictor.from_bytes(model_to_bytes(model))
photo = encode_jpeg(render_fruit("Banana", np.random.default_rng(0)))
assert predictor.predict(photo).label in model.classes
print(sorted(m for m in sys.modules if m.split(".")[0] in ("pyspark", "py4j")))
"""
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                               cwd=ROOT, check=True)
    assert completed.stdout.strip() == "[]"


@pytest.mark.parametrize("package", sorted(name for name, path in MODULES.items()
                                           if path.name == "__init__.py"))
def test_every_public_name_of_a_package_resolves_in_a_fresh_interpreter(package):
    # `from bovw.experiments import compare` (a name of its __all__, imported on first use)
    # ended in a RecursionError: the package's __getattr__ imported it with that very form.
    # Each package in a new interpreter, before anything else has imported its modules.
    code = f"""
import importlib
package = importlib.import_module({package!r})
for name in package.__all__:
    value = getattr(package, name)
    exec(f"from {package} import {{name}} as again")
    assert again is value, name
print(len(package.__all__))
"""
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                               cwd=ROOT)
    assert completed.returncode == 0, completed.stderr.strip().splitlines()[-1:]


def test_the_experiments_public_names_are_the_functions():
    code = """
from bovw.experiments import compare, run_sweep
import bovw.experiments
print(compare.__module__, run_sweep.__module__, bovw.experiments.compare is compare)
"""
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                               cwd=ROOT, check=True)
    assert completed.stdout.split() == ["bovw.experiments.compare", "bovw.experiments.sweep",
                                        "True"]


def test_nothing_imports_the_cli():
    users = [f"{module} <- {item.target}" for module, found in IMPORTS.items()
             for item in found if (item.target == "bovw.cli"
                                   or item.target.startswith("bovw.cli."))
             and not (module == "bovw.cli" or module.startswith("bovw.cli."))]
    assert users == []


def test_the_report_does_not_import_the_experiments():
    users = [f"{module} <- {item.target}" for module, found in IMPORTS.items()
             if module.startswith("bovw.report") for item in found
             if item.target.startswith("bovw.experiments")]
    assert users == []


def test_no_module_imports_the_package_root():
    # The root exports the public surface (and the Predictor on first use): a module
    # importing it would close a cycle through it.
    users = [module for module, found in IMPORTS.items() for item in found
             if item.target == "bovw" and module != "bovw"]
    assert users == []


@pytest.mark.parametrize("module", sorted(MODULES))
def test_modules_are_small(module):
    lines = len(MODULES[module].read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{module} has {lines} lines"


@pytest.mark.parametrize("module", sorted(name for name in MODULES
                                          if not name.endswith("__main__")))
def test_every_module_declares_its_public_surface_with_docstrings(module):
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    assert ast.get_docstring(tree), f"{module} has no docstring"
    declared = [node for node in tree.body if isinstance(node, ast.Assign)
                and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets)]
    assert declared, f"{module} declares no __all__"
    public = set(ast.literal_eval(declared[0].value))
    undocumented = [node.name for node in tree.body
                    if isinstance(node, ast.FunctionDef | ast.ClassDef)
                    and node.name in public and not ast.get_docstring(node)]
    assert undocumented == []
