"""Every exported name exists and is documented (httpx tests/test_exported_members.py)."""

import importlib
import inspect

import pytest

PUBLIC = [
    "etl_express",
    "etl_express.sources",
    "etl_express.transformers",
    "etl_express.anonymizers",
    "etl_express.sinks",
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


def test_py_typed_marker_ships():
    import etl_express

    assert inspect.getfile(etl_express).rsplit("/", 1)[0] + "/py.typed"
    from importlib.resources import files

    assert files("etl_express").joinpath("py.typed").is_file()
