"""The store sits where docs/concepts.md and ``_engine/__init__.py`` draw it: below the
parts (sources, sinks, quality...) that ask it, above the ground floor (format, retry,
secrets, the privacy boundary, errors) that every layer imports. The walk is
``tests/test_import_cycles.py``'s (module-level, function-level and TYPE_CHECKING imports)."""

from __future__ import annotations

from tests.test_import_cycles import import_graph

#: what the drawing puts above the store (the store never imports them)
ABOVE = (
    "etl_express._engine",
    "etl_express.reconcile",
    "etl_express.pipeline",
    "etl_express.replication",
    "etl_express.sources",
    "etl_express.sinks",
    "etl_express.transformers",
    "etl_express.anonymizers",
    "etl_express.quality",
    "etl_express.logs",
    "etl_express._status",
    "etl_express.cli",
    "etl_express.ui",
    "etl_express.airflow",
)
#: the ground floor (never imports the store)
BELOW = (
    "etl_express.format",
    "etl_express.format_types",
    "etl_express._arrays",
    "etl_express.retry",
    "etl_express.secrets",
    "etl_express._privacy",
    "etl_express.errors",
)


def inside(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def test_the_store_imports_nothing_drawn_above_it() -> None:
    graph = import_graph()
    store = [m for m in graph if inside(m, ("etl_express.store",))]
    assert "etl_express.store.ledger" in store
    upward = {(m, t) for m in store for t in graph[m] if inside(t, ABOVE)}
    assert upward == set()


def test_the_ground_floor_never_imports_the_store() -> None:
    graph = import_graph()
    ground = [m for m in graph if inside(m, BELOW)]
    assert {"etl_express.format", "etl_express.retry", "etl_express.errors"} <= set(ground)
    upward = {(m, t) for m in ground for t in graph[m] if inside(t, ("etl_express.store",))}
    assert upward == set()


def test_the_parts_drawn_above_the_store_do_ask_it() -> None:
    """The drawing's arrows exist: sinks and quality read the target through store/tables.py."""
    graph = import_graph()
    askers = {m for m, targets in graph.items() if "etl_express.store.tables" in targets}
    assert {"etl_express.quality", "etl_express.sinks.postgres"} <= askers
