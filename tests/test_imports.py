"""The vistok package has no import cycles, lazy (function-level) imports included.

Every ``import`` / ``from … import`` in every module, wherever it sits, is an edge; importing ``P.sub`` from outside
package ``P`` also runs ``P/__init__``, so it is an edge to ``P`` as well. The graph must be acyclic.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "vistok"


def _modules() -> dict[str, Path]:
    modules = {}
    for file in PACKAGE.rglob("*.py"):
        parts = file.relative_to(PACKAGE.parent).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = file
    return modules


def _imported(module: str, file: Path, node: ast.AST, modules: dict[str, Path]) -> set[str]:
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names if alias.name in modules}
    assert isinstance(node, ast.ImportFrom)
    if node.level:
        package = module.split(".") if file.name == "__init__.py" else module.split(".")[:-1]
        base = ".".join(package[: len(package) - node.level + 1] + ([node.module] if node.module else []))
    else:
        base = node.module or ""
    submodules = {f"{base}.{alias.name}" for alias in node.names} & set(modules)
    # `from P import sub` imports the submodule; `from P import name` needs P itself
    return submodules if len(submodules) == len(node.names) else ({base} & set(modules)) | submodules


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    graph = {}
    for module, file in modules.items():
        deps = set()
        for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                deps |= _imported(module, file, node, modules)
        for dep in list(deps):  # importing P.sub from outside P runs P/__init__ first (the root is always loaded)
            parts = dep.split(".")
            for i in range(2, len(parts)):
                parent = ".".join(parts[:i])
                if parent in modules and not (module == parent or module.startswith(parent + ".")):
                    deps.add(parent)
        graph[module] = deps - {module}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as a list of modules (first == last), or ``None``."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == 1:
                return path[path.index(dep) :] + [dep]
            if dep not in state and (cycle := visit(dep)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_checker_finds_a_lazy_cycle():
    graph = {"vistok.a": {"vistok.b"}, "vistok.b": {"vistok.c"}, "vistok.c": {"vistok.a"}, "vistok.d": set()}
    assert find_cycle(graph) == ["vistok.a", "vistok.b", "vistok.c", "vistok.a"]
    assert find_cycle({"vistok.a": {"vistok.b"}, "vistok.b": set()}) is None


def test_core_modules_import_what_the_layering_says():
    graph = import_graph()
    # the model card renderer and diffusers interop sit below the model class: they never import it
    for module in ("vistok.cards", "vistok.diffusers_interop", "vistok.configuration", "vistok.registry"):
        assert "vistok.modeling" not in graph[module], module
    assert "vistok.configuration" not in graph["vistok.registry"]


def test_vistok_has_no_import_cycles():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " → ".join(cycle)
