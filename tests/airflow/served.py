"""A real Airflow 3 deployment for the tests: api-server, scheduler and dag-processor with
the LocalExecutor, its metadata in a fresh database on the test PostgreSQL server.

Every component runs in its own process group, on free ports of 127.0.0.1, with
``AIRFLOW_HOME`` and ``HOME`` in a temporary folder; :meth:`ServedAirflow.stop` ends the
groups and drops the metadata database, whatever state they are in.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
import psutil
from sqlalchemy.engine import make_url

from tests.conftest import pg_exec

T = TypeVar("T")

#: seconds the components get to stop after SIGTERM before their groups are killed
STOP_GRACE = 5.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServedAirflow:
    """Airflow's components over ``dags`` (a folder), reachable through :meth:`api`."""

    def __init__(self, root: Path, pg_url: str, env: dict[str, str]):
        self.root, self.pg_url = root, pg_url
        self.home = root / "home"  # the user's home for every component and task
        self.airflow_home = root / "airflow"
        self.dags = root / "dags"
        for folder in (self.home, self.airflow_home, self.dags):
            folder.mkdir(parents=True, exist_ok=True)
        self.database = "airflow_" + uuid.uuid4().hex[:10]
        metadata = make_url(pg_url).set(drivername="postgresql+psycopg", database=self.database)
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        base = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("AIRFLOW", "XDG_", "ETL_EXPRESS_"))
        }
        self.env = {
            **base,
            "HOME": str(self.home),
            "AIRFLOW_HOME": str(self.airflow_home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata.render_as_string(False),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": metadata.render_as_string(False),
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.base_url}/execution/",
            "AIRFLOW__API_AUTH__JWT_SECRET": uuid.uuid4().hex,
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            # parse the DAGs folder at once and often, schedule without idling
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "2",
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "5",
            "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
            "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.5",
            **env,
        }
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self._token: str | None = None

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        pg_exec(self.pg_url, f"CREATE DATABASE {self.database}")
        self.airflow("db", "migrate", timeout=300)
        self.spawn("api-server", "api-server")
        self.spawn("scheduler", "scheduler", "--skip-serve-logs")
        self.spawn("dag-processor", "dag-processor")

    def airflow(self, *args: str, timeout: float) -> None:
        out = self.root / f"{args[0]}.out"
        with out.open("ab") as sink:
            proc = subprocess.run(
                [sys.executable, "-m", "airflow", *args],
                env=self.env,
                stdout=sink,
                stderr=subprocess.STDOUT,
                timeout=timeout,
                check=False,
                start_new_session=True,
            )
        if proc.returncode != 0:
            raise AssertionError(f"airflow {' '.join(args)} failed:\n{self.tail(out)}")

    def spawn(self, name: str, *args: str) -> None:
        with (self.root / f"{name}.out").open("ab") as sink:
            self.processes[name] = subprocess.Popen(
                [sys.executable, "-m", "airflow", *args],
                env=self.env,
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a group of its own: stop() ends its children too
            )

    def stop(self) -> list[int]:
        """End every component and every process they started (task processes run in
        process groups of their own), drop the metadata database; returns the ids of
        processes still alive afterwards (none, unless one could not be killed)."""
        try:
            tree = []
            for proc in self.processes.values():
                try:
                    leader = psutil.Process(proc.pid)
                    tree += [leader, *leader.children(recursive=True)]
                except psutil.NoSuchProcess:
                    pass
                if proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGTERM)
            _, alive = psutil.wait_procs(tree, timeout=STOP_GRACE)
            for survivor in alive:
                try:
                    survivor.kill()
                except psutil.NoSuchProcess:
                    pass
            for proc in self.processes.values():
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait()
            _, alive = psutil.wait_procs(alive, timeout=5)
            return [survivor.pid for survivor in alive]
        finally:
            pg_exec(self.pg_url, f"DROP DATABASE IF EXISTS {self.database} WITH (FORCE)")

    def check_running(self) -> None:
        for name, proc in self.processes.items():
            if proc.poll() is not None:
                raise AssertionError(
                    f"airflow {name} exited with {proc.returncode}:\n"
                    + self.tail(self.root / f"{name}.out")
                )

    @staticmethod
    def tail(path: Path, chars: int = 4000) -> str:
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""

    def outputs(self) -> str:
        return "\n".join(
            f"--- {name} ---\n{self.tail(self.root / f'{name}.out', 2500)}"
            for name in self.processes
        )

    # -- the REST API ---------------------------------------------------------------------

    def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        if self._token is None:
            response = httpx.get(f"{self.base_url}/auth/token", timeout=10)
            response.raise_for_status()
            self._token = response.json()["access_token"]
        return httpx.request(
            method,
            f"{self.base_url}/api/v2{path}",
            headers={"Authorization": f"Bearer {self._token}"},
            timeout=30,
            **kwargs,
        )

    def wait_for(self, what: str, probe: Callable[[], T | None], timeout: float) -> T:
        """Call ``probe`` until it returns something other than ``None`` (connection errors
        count as ``None``) while the components run; fail naming ``what`` after ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            self.check_running()
            try:
                found = probe()
            except httpx.TransportError:
                found = None
            if found is not None:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"{what}: not within {timeout:.0f} s\n{self.outputs()}")
            time.sleep(0.5)
