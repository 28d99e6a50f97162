"""Plugin discovery through entry points: the built-ins, and fake installed packages
(real ``*.dist-info`` folders on ``sys.path``) for the edge cases."""

from __future__ import annotations

import importlib
import json
import sys
import textwrap
from pathlib import Path

import pytest
import tomllib
from typer.testing import CliRunner

from etl_express import plugins
from etl_express.cli import _register, app
from etl_express.plugins import PluginError
from etl_express.sinks import PostgresSink
from etl_express.sources import SQLSource

ROOT = Path(__file__).resolve().parents[1]

GOOD_MODULE = '''
from etl_express import Batch, Source

class AcmeSource(Source):
    """A fake third-party source."""
    name = "acme"

    def read(self, position=None, partition=None):
        yield Batch([{"id": 1}], position=1)

NOT_A_SOURCE = 42
'''

BROKEN_MODULE = """
import etl_express_dependency_that_is_not_installed  # the package forgot a dependency
"""


def fake_package(
    root: Path, dist: str, module: str, code: str, entry_points: dict[str, dict[str, str]]
) -> None:
    """Install a package the way pip lays it out: a module and a ``.dist-info`` folder."""
    (root / f"{module}.py").write_text(textwrap.dedent(code))
    info = root / f"{dist.replace('-', '_')}-1.2.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.2.3\n")
    lines = []
    for group, items in entry_points.items():
        lines.append(f"[{group}]")
        lines += [f"{name} = {target}" for name, target in items.items()]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A throw-away site-packages folder with two fake plugin packages."""
    monkeypatch.syspath_prepend(str(tmp_path))
    fake_package(
        tmp_path,
        "etl-express-acme",
        "etl_express_acme",
        GOOD_MODULE,
        {
            "etl_express.sources": {
                "acme": "etl_express_acme:AcmeSource",
                "acme_wrong": "etl_express_acme:NOT_A_SOURCE",
            },
        },
    )
    fake_package(
        tmp_path,
        "etl-express-broken",
        "etl_express_broken",
        BROKEN_MODULE,
        {
            "etl_express.sources": {"broken": "etl_express_broken:BrokenSource"},
            "etl_express.sinks": {"broken_sink": "etl_express_broken:BrokenSink"},
        },
    )
    importlib.invalidate_caches()
    yield tmp_path
    for name in ("etl_express_acme", "etl_express_broken"):
        sys.modules.pop(name, None)


def test_built_in_plugins_are_found_by_name() -> None:
    assert "sql" in plugins.available("sources")
    assert "postgres" in plugins.available("sinks")
    assert plugins.load("sources", "sql") is SQLSource
    assert plugins.load("sinks", "postgres") is PostgresSink
    sink = plugins.create("sinks", "postgres", table="crm.customers")
    assert isinstance(sink, PostgresSink) and sink.table == "crm.customers"


def test_every_built_in_entry_point_in_pyproject_is_installed_and_loads() -> None:
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"]
    assert set(declared) == {group for group, _ in plugins.KINDS.values()}
    for kind, (group, base) in plugins.KINDS.items():
        assert declared[group], f"no built-in {kind} declared"
        for name, target in declared[group].items():
            installed = {ep.name: ep.value for ep in plugins.entry_points(kind)}
            assert installed.get(name) == target, (
                f"{group}:{name} is not installed (pip install -e . again)"
            )
            assert issubclass(plugins.load(kind, name), base)


def test_third_party_plugin_is_discovered_and_loaded(site: Path) -> None:
    assert {"acme", "broken", "sql"} <= set(plugins.available("sources"))
    cls = plugins.load("sources", "acme")
    assert cls.__name__ == "AcmeSource" and cls.__module__ == "etl_express_acme"
    assert [b.data for b in cls().read()] == [[{"id": 1}]]


def test_broken_plugin_is_reported_with_its_package_and_does_not_break_others(site: Path) -> None:
    with pytest.raises(PluginError) as err:
        plugins.load("sources", "broken")
    message = str(err.value)
    assert "'broken'" in message and "ModuleNotFoundError" in message
    assert "etl-express-broken 1.2.3" in message
    assert "etl_express_dependency_that_is_not_installed" in message

    # the good plugins of every package still load after the broken one failed
    assert plugins.load("sources", "acme").__name__ == "AcmeSource"
    assert plugins.load("sources", "sql") is SQLSource

    report = {(i.kind, i.name): i for i in plugins.inspect()}
    assert report["sources", "acme"].ok and report["sources", "acme"].package == "etl-express-acme"
    assert report["sources", "sql"].ok
    broken = report["sources", "broken"]
    assert (
        not broken.ok
        and broken.package == "etl-express-broken"
        and "ModuleNotFoundError" in broken.error
    )
    assert not report["sinks", "broken_sink"].ok


def test_plugin_that_is_not_the_right_class_is_refused(site: Path) -> None:
    with pytest.raises(PluginError, match="not a subclass of Source") as err:
        plugins.load("sources", "acme_wrong")
    assert "etl-express-acme" in str(err.value)


def test_unknown_name_lists_the_available_ones(site: Path) -> None:
    with pytest.raises(PluginError) as err:
        plugins.load("sources", "no_such_source")
    message = str(err.value)
    assert "no source plugin named 'no_such_source'" in message
    for name in ("acme", "broken", "sql"):
        assert name in message


def test_unknown_kind_is_a_clear_error() -> None:
    with pytest.raises(
        PluginError,
        match=r"unknown plugin kind 'source'.*sources, transformers, anonymizers, sinks",
    ):
        plugins.available("source")


def test_same_name_from_two_packages_is_refused_naming_both(site: Path) -> None:
    fake_package(
        site,
        "etl-express-other",
        "etl_express_other",
        GOOD_MODULE,
        {"etl_express.sources": {"acme": "etl_express_other:AcmeSource"}},
    )
    importlib.invalidate_caches()
    with pytest.raises(PluginError, match="more than one package") as err:
        plugins.load("sources", "acme")
    assert "etl-express-acme" in str(err.value) and "etl-express-other" in str(err.value)
    sys.modules.pop("etl_express_other", None)


def test_cli_lists_plugins_and_flags_the_broken_one(site: Path) -> None:
    _register()
    result = CliRunner().invoke(app, ["plugins", "sources", "--json"])
    rows = {r["name"]: r for r in map(json.loads, result.stdout.splitlines())}
    assert rows["acme"]["status"] == "ok" and rows["acme"]["package"] == "etl-express-acme"
    assert rows["sql"]["status"] == "ok"
    assert (
        rows["broken"]["status"] == "broken" and rows["broken"]["package"] == "etl-express-broken"
    )
    assert "broken_sink" not in rows  # only the kind asked for
    assert result.exit_code == 1
    assert "sources/broken from etl-express-broken" in result.stderr

    table = CliRunner().invoke(app, ["plugins"])
    assert "etl-express-acme" in table.stdout and "BROKEN" in table.stdout

    bad = CliRunner().invoke(app, ["plugins", "widgets"])
    assert bad.exit_code == 2 and "unknown plugin kind 'widgets'" in bad.stderr
