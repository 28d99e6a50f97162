"""Every exported name exists and is documented (httpx tests/test_exported_members.py), and
in a package with lazy exports the three lists agree: ``__all__``, the lazy map
(``_EXPORTS``: name -> module) and the ``if TYPE_CHECKING:`` imports that type checkers see."""

import ast
import importlib
import inspect
from pathlib import Path

import pytest

PUBLIC = [
    "etl_express",
    "etl_express.sources",
    "etl_express.transformers",
    "etl_express.anonymizers",
    "etl_express.sinks",
    "etl_express.airflow",
    "etl_express.testing",
]


@pytest.mark.parametrize("module_name", PUBLIC)
def test_all_exports_exist_and_are_documented(module_name):
    module = importlib.import_module(module_name)
    assert module.__doc__, f"{module_name} has no module docstring"
    for name in module.__all__:
        assert hasattr(module, name), f"{module_name}.__all__ lists {name!r} which does not exist"
        member = getattr(module, name)
        if inspect.isclass(member) or inspect.isfunction(member):
            assert inspect.getdoc(member), f"{module_name}.{name} has no docstring"


def type_checking_imports(source: str) -> dict[str, str]:
    """Name -> relative module of each import under ``if TYPE_CHECKING:``."""
    found: dict[str, str] = {}
    for node in ast.parse(source).body:
        test = getattr(node, "test", None)
        if not (isinstance(node, ast.If) and isinstance(test, ast.Name)):
            continue
        if test.id != "TYPE_CHECKING":
            continue
        for stmt in node.body:
            if isinstance(stmt, ast.ImportFrom) and stmt.module is None:  # from . import sub
                found.update({a.asname or a.name: "." * stmt.level + a.name for a in stmt.names})
            elif isinstance(stmt, ast.ImportFrom):
                module = "." * stmt.level + stmt.module
                found.update({a.asname or a.name: module for a in stmt.names})
    return found


def export_lists(module_name: str) -> tuple[dict[str, str], dict[str, str], set[str], set[str]]:
    """The lazy map, the TYPE_CHECKING imports, ``__all__`` and the eagerly defined names."""
    module = importlib.import_module(module_name)
    lazy = dict(module._EXPORTS)
    typed = type_checking_imports(Path(module.__file__).read_text(encoding="utf-8"))
    return lazy, typed, set(module.__all__), set(vars(module))


#: internal packages with lazy exports: their three lists must agree too
INTERNAL = ["etl_express.store"]
LAZY = [m for m in [*PUBLIC, *INTERNAL] if hasattr(importlib.import_module(m), "_EXPORTS")]


def test_the_lazy_packages_are_found():
    assert {"etl_express", "etl_express.sources", "etl_express.sinks", *INTERNAL} <= set(LAZY)


@pytest.mark.parametrize("module_name", LAZY)
def test_all_the_lazy_map_and_the_type_checking_imports_agree(module_name):
    lazy, typed, exported, _ = export_lists(module_name)
    # every lazily exported name is imported for type checkers, from the same module (a
    # subpackage, ``sources`` -> ``.sources``, may be left to the import system)
    subpackages = {n for n, target in lazy.items() if target == "." + n and n not in typed}
    assert typed == {n: m for n, m in lazy.items() if n not in subpackages}
    # __all__ is those names, plus names the package defines itself (``__version__``)
    module = importlib.import_module(module_name)
    eager = {n for n in exported - set(typed) if n in vars(module) and n not in lazy}
    assert exported == set(typed) | eager, (
        f"{module_name}: __all__ and the lazy map differ by "
        f"{sorted(exported ^ (set(typed) | eager))}"
    )


def test_a_disagreement_is_found():
    source = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from .a import A\n"
        "    from .b import B as C\n"
    )
    assert type_checking_imports(source + "    from . import d\n") == {
        "A": ".a",
        "C": ".b",
        "d": ".d",
    }
    lazy = {"A": ".a", "C": ".c"}
    assert type_checking_imports(source) != lazy


def test_py_typed_marker_ships():
    import etl_express

    assert inspect.getfile(etl_express).rsplit("/", 1)[0] + "/py.typed"
    from importlib.resources import files

    assert files("etl_express").joinpath("py.typed").is_file()
