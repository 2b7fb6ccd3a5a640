"""The server package imports cleanly: every module alone, and no import circle anywhere.

A circle can hide behind an import written inside a function (it then never fails at import
time), so besides importing each module alone in a fresh interpreter, the package's own
imports, at any depth in a module, are read from the source and must form no cycle.
"""

import ast
import pkgutil
import subprocess
import sys
from pathlib import Path

import echolab_server
import pytest

SERVER = Path(echolab_server.__file__).resolve().parents[1]
MODULES = sorted(
    info.name for info in pkgutil.walk_packages(echolab_server.__path__, prefix="echolab_server.")
)


def test_the_walk_finds_the_core_and_every_variant() -> None:
    assert {"echolab_server.server", "echolab_server.cli", "echolab_server.variants.poll"} <= set(
        MODULES
    )


@pytest.mark.parametrize("module", MODULES)
def test_imports_alone_in_a_fresh_interpreter(module: str) -> None:
    run = subprocess.run(
        [sys.executable, "-c", f"import importlib; importlib.import_module({module!r})"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr


def _source(module: str) -> Path:
    path = SERVER.joinpath(*module.split("."))
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


def _imported(module: str) -> set[str]:
    """The package's modules that ``module`` imports, wherever in the file the import is."""
    package = module if _source(module).name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(_source(module).read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            # "from . import x" and "from .variants import poll" name modules too
            names = [base] + [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:  # importing a.b.c imports the packages a.b and a first
            parts = name.split(".")
            found.update(".".join(parts[:end]) for end in range(2, len(parts) + 1))
    return {name for name in found if name in MODULES and name != module}


def test_no_import_circle() -> None:
    graph = {module: _imported(module) for module in MODULES}
    assert graph["echolab_server.__main__"], "the import reader finds nothing: it is broken"
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> None:
        if module in path:
            cycle = " -> ".join([*path[path.index(module) :], module])
            pytest.fail(f"import circle: {cycle}")
        if module in done:
            return
        for imported in sorted(graph[module]):
            visit(imported, [*path, module])
        done.add(module)

    for module in MODULES:
        visit(module, [])
