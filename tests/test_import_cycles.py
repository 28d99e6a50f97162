"""Imports flow one way: a walk over every module's imports (module-level, function-level
and TYPE_CHECKING ones alike) finds no cycle among the package's modules."""

from __future__ import annotations

import ast
from pathlib import Path

import etl_express

PACKAGE = Path(etl_express.__file__).resolve().parent


def module_name(path: Path) -> str:
    parts = ["etl_express", *path.relative_to(PACKAGE).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def resolve(current: str, is_package: bool, level: int, target: str | None) -> str:
    if level == 0:
        return target or ""
    base = current.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join([*base, target] if target else base)


def import_graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = resolve(name, is_package, node.level, node.module)
                targets = [base, *(f"{base}.{a.name}" for a in node.names)]
            for t in targets:
                # importing a.b.c runs the packages a and a.b first: each is an edge too
                while t:
                    if t in modules and t != name and not name.startswith(t + "."):
                        graph[name].add(t)
                    t = t.rpartition(".")[0]
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_the_walk_sees_imports():
    graph = import_graph()
    assert "etl_express._engine.run" in graph["etl_express.pipeline"]
    assert "etl_express.store.ledger" in graph["etl_express._engine.run"]


def test_the_walk_counts_function_level_imports_and_parent_packages():
    graph = import_graph()
    # pipeline.Pipeline.__init__ imports PostgresSink inside the function
    assert "etl_express.sinks.postgres" in graph["etl_express.pipeline"]
    assert "etl_express.sinks" in graph["etl_express.pipeline"]


def test_the_walk_finds_a_planted_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_no_import_cycle_among_the_package_modules():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_engine_never_imports_the_pipeline():
    graph = import_graph()
    engine = [m for m in graph if m.startswith("etl_express._engine")]
    assert engine
    for m in engine:
        assert "etl_express.pipeline" not in graph[m], m
