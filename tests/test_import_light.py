"""``import etl_express`` stays light: the heavy modules load when first used, not at import
(Airflow imports DAG files every few seconds). Timings are in benchmarks/import_time.py; this
checks what gets imported, in a fresh interpreter each time."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import etl_express

HEAVY = (
    "pandas",
    "sqlalchemy.dialects",
    "adbc_driver_manager",
    "adbc_driver_postgresql",
    "httpx",
    "etl_express._native",
)


def run_fresh(code: str) -> str:
    """``code`` run in a fresh interpreter, which must succeed: what it printed."""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def imported_after(code: str) -> set[str]:
    out = run_fresh(f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))")
    return set(json.loads(out.splitlines()[-1]))


def heavy_in(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if any(m == h or m.startswith(h + ".") for h in HEAVY))


@pytest.mark.parametrize(
    "code",
    [
        "import etl_express",
        "import etl_express as etl; etl.__version__; etl.secret('ANY_NAME')",
        "import etl_express.cli",
    ],
)
def test_importing_the_package_loads_no_heavy_module(code: str) -> None:
    assert heavy_in(imported_after(code)) == []


def test_cli_help_loads_no_heavy_module() -> None:
    code = (
        "import atexit, json, sys\n"
        "atexit.register(lambda: print(json.dumps(sorted(sys.modules))))\n"
        "sys.argv = ['etl-express', '--help']\n"
        "from etl_express.cli import main\n"
        "main()\n"
    )
    out = run_fresh(code)
    assert "Usage:" in out
    assert heavy_in(set(json.loads(out.splitlines()[-1]))) == []


def test_building_a_sql_pipeline_loads_no_pandas_httpx_or_extension() -> None:
    modules = imported_after(
        "import etl_express as etl\n"
        "from etl_express.sources import SQLSource\n"
        "from etl_express.sinks import PostgresSink\n"
        "etl.Pipeline('p', SQLSource(url='postgresql://u@h/db', table='t', primary_key='id'),"
        " sink=PostgresSink('s.t'))\n"
    )
    assert [m for m in heavy_in(modules) if not m.startswith("sqlalchemy")] == []


def test_lazy_names_are_the_real_objects() -> None:
    from etl_express import pipeline, sources
    from etl_express.sources.sql import SQLSource

    assert etl_express.Pipeline is pipeline.Pipeline
    assert sources.SQLSource is SQLSource
    assert etl_express.sources is sources  # a subpackage through the parent's attribute
    for name in etl_express.__all__:  # no submodule import shadows an exported name
        assert not isinstance(getattr(etl_express, name), type(sys)), name
    assert set(etl_express.__all__) <= set(dir(etl_express))
    with pytest.raises(AttributeError, match="has no attribute 'Pipline'"):
        etl_express.Pipline  # noqa: B018


@pytest.mark.parametrize("collector", ["on", "off"])
def test_a_lazy_import_pauses_the_collector_and_restores_it(collector: str) -> None:
    # the collector is off while the sinks import, and as the caller had it afterwards
    code = (
        "import gc, importlib, json, etl_express\n"
        + ("gc.disable()\n" if collector == "off" else "")
        + "seen = []\n"
        "real = importlib.import_module\n"
        "def watch(name, package=None):\n"
        "    seen.append(gc.isenabled())\n"
        "    return real(name, package)\n"
        "importlib.import_module = watch\n"
        "etl_express.sinks.PostgresSink\n"
        "print(json.dumps([seen, gc.isenabled()]))"
    )
    seen, after = json.loads(run_fresh(code).splitlines()[-1])
    assert seen and not any(seen)  # every lazy import ran with the collector paused
    assert after is (collector == "on")


def test_a_child_forked_during_a_lazy_import_collects_again() -> None:
    # another thread is inside a lazy import (held there) when the process forks: the child,
    # which has only the forking thread, gets its collector back and imports lazily itself
    code = (
        "import gc, importlib, os, threading, etl_express\n"
        "entered, release = threading.Event(), threading.Event()\n"
        "real = importlib.import_module\n"
        "def held(name, package=None):\n"
        "    entered.set(); release.wait()\n"
        "    return real(name, package)\n"
        "importlib.import_module = held\n"
        "t = threading.Thread(target=lambda: etl_express.sinks.JSONLSink); t.start()\n"
        "entered.wait()\n"
        "assert not gc.isenabled()\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    importlib.import_module = real\n"
        "    ok = gc.isenabled() and etl_express.sources.Source is not None and gc.isenabled()\n"
        "    os._exit(0 if ok else 3)\n"
        "_, status = os.waitpid(pid, 0)\n"
        "release.set(); t.join()\n"
        "print(os.waitstatus_to_exitcode(status), gc.isenabled())"
    )
    assert run_fresh(code).split() == ["0", "True"]
