"""Airflow runs in subprocesses (see ``dagrun.py``) with a throw-away ``AIRFLOW_HOME``
whose metadata database is reset once per test session."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).parent
ROOT = HERE.parents[1]

#: warnings are errors, as in the main test process, except this one that Airflow's
#: in-process execution API triggers through starlette's test client
WARNING_FLAGS = [
    "-W",
    "error",
    "-W",
    "ignore:Using `httpx` with `starlette.testclient` is deprecated",
]

AirflowRunner = Callable[..., dict[str, Any]]


@pytest.fixture(scope="session")
def airflow_home(tmp_path_factory: pytest.TempPathFactory, pg_url: str) -> Path:
    home = tmp_path_factory.mktemp("airflow_home")
    (home / "dags").mkdir()
    return home


@pytest.fixture(scope="session")
def airflow(airflow_home: Path, pg_url: str) -> AirflowRunner:
    """``airflow(command, *args, env={...})`` runs ``dagrun.py`` and returns its JSON."""

    def run(command: str, *args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
        out = airflow_home / f"out-{os.getpid()}.json"
        full_env = {
            **os.environ,
            "AIRFLOW_HOME": str(airflow_home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(airflow_home / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__UNIT_TEST_MODE": "True",
            "ETL_EXPRESS_DATABASE_URL": pg_url,
            "PYTHONPATH": os.pathsep.join(
                [str(HERE / "dags"), str(ROOT), os.environ.get("PYTHONPATH", "")]
            ),
            **(env or {}),
        }
        proc = subprocess.run(
            [sys.executable, *WARNING_FLAGS, str(HERE / "dagrun.py"), command, *args, str(out)],
            env=full_env,
            capture_output=True,
            text=True,
            timeout=240,
        )
        if proc.returncode != 0:
            raise AssertionError(
                f"dagrun.py {command} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-6000:]}"
            )
        found = json.loads(out.read_text())
        found["log"] = proc.stdout + proc.stderr
        return found

    run("reset")
    return run


@pytest.fixture(scope="session")
def dag_file(airflow_home: Path) -> Callable[[Path], Path]:
    """Put a DAG file into the Airflow DAGs folder (``dag.test()`` needs it there)."""

    def install(path: Path) -> Path:
        target = airflow_home / "dags" / path.name
        shutil.copy(path, target)
        return target

    return install
