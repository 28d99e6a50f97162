"""``pipeline_dag`` under a real Airflow 3 deployment, as an operator runs it: api-server,
scheduler and dag-processor with the LocalExecutor, metadata in PostgreSQL, the run
triggered through the REST API. Checks what ``dag.test()`` cannot see: the partitions run
in parallel task processes, the library's log lines reach Airflow's task log at their own
level, and no task writes a log file outside the configured log folder."""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import pg_exec

from .served import ServedAirflow

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

HERE = Path(__file__).parent
DAG_ID = "etl_served"
DAILY_DAG_ID = "etl_served_daily"
SOURCE_ROWS = 3000
#: bound on one DAG run, from the trigger to its end
RUN_TIMEOUT = 300


@pytest.fixture(scope="module")
def served(pg_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Start Airflow, trigger one run of ``etl_served`` (3 partitions), stop Airflow; yield
    what the run left: its state, task instances, task log lines and the folders."""
    schema = "served_" + uuid.uuid4().hex[:8]
    pg_exec(pg_url, f"CREATE SCHEMA {schema}")
    pg_exec(
        pg_url,
        f"CREATE TABLE {schema}.orders (id int PRIMARY KEY, amount numeric(10,2), "
        f"status text, updated_at timestamptz NOT NULL)",
    )
    pg_exec(
        pg_url,
        f"INSERT INTO {schema}.orders SELECT g, g * 1.5, CASE WHEN g % 3 = 0 THEN 'paid' "
        f"ELSE 'new' END, timestamptz '2024-01-01' + g * interval '1 minute' "
        f"FROM generate_series(1, {SOURCE_ROWS}) g",
    )
    root = tmp_path_factory.mktemp("served")
    (root / "rendezvous").mkdir()
    log_dir = root / "etl-logs"
    airflow = ServedAirflow(
        root,
        pg_url,
        {
            "AIRFLOW_CONN_SERVED_SOURCE_DB": pg_url,
            "ETL_EXPRESS_DATABASE_URL": pg_url,
            "ETL_EXPRESS_LOG_DIR": str(log_dir),
            "SERVED_PIPELINE": schema,
            "SERVED_SOURCE_TABLE": f"{schema}.orders",
            "SERVED_TARGET_TABLE": f"{schema}.orders_loaded",
            "SERVED_RENDEZVOUS": str(root / "rendezvous"),
        },
    )
    for name in ("served_dag.py", "served_pipeline.py", ".airflowignore"):
        shutil.copy(HERE / "served_dags" / name, airflow.dags / name)
    started = time.monotonic()
    try:
        airflow.start()
        for dag_id in (DAG_ID, DAILY_DAG_ID):
            airflow.wait_for(
                f"the DAG {dag_id} parsed by the dag-processor",
                lambda dag_id=dag_id: (
                    airflow.api("GET", f"/dags/{dag_id}").status_code == 200 or None
                ),
                timeout=180,
            )
        ready = time.monotonic()
        airflow.api("PATCH", f"/dags/{DAG_ID}", json={"is_paused": False}).raise_for_status()
        response = airflow.api("POST", f"/dags/{DAG_ID}/dagRuns", json={"logical_date": None})
        response.raise_for_status()
        run_id = response.json()["dag_run_id"]
        run = airflow.wait_for(
            "the DAG run finished",
            lambda: (
                found
                if (found := airflow.api("GET", f"/dags/{DAG_ID}/dagRuns/{run_id}").json())["state"]
                in ("success", "failed")
                else None
            ),
            timeout=RUN_TIMEOUT,
        )
        finished = time.monotonic()
        instances = airflow.api("GET", f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances").json()[
            "task_instances"
        ]
        import_errors = airflow.api("GET", "/importErrors").json()
        # unpausing the daily DAG makes the scheduler start a run at once
        unpaused = dt.datetime.now(dt.timezone.utc)
        airflow.api("PATCH", f"/dags/{DAILY_DAG_ID}", json={"is_paused": False}).raise_for_status()
        daily_runs = airflow.wait_for(
            "a run of the unpaused daily DAG",
            lambda: airflow.api("GET", f"/dags/{DAILY_DAG_ID}/dagRuns").json()["dag_runs"] or None,
            timeout=60,
        )
        outputs = airflow.outputs()
    finally:
        stopping = time.monotonic()
        leftover = airflow.stop()
    task_logs = {
        str(path.relative_to(airflow.airflow_home / "logs")): [
            json.loads(line) for line in path.read_text().splitlines() if line.startswith("{")
        ]
        for path in sorted((airflow.airflow_home / "logs" / f"dag_id={DAG_ID}").rglob("*.log"))
    }
    print(
        f"served Airflow: ready in {ready - started:.0f} s, DAG run in {finished - ready:.0f} s, "
        f"stopped in {time.monotonic() - stopping:.0f} s, {time.monotonic() - started:.0f} s in all"
    )
    yield {
        "run": run,
        "instances": instances,
        "import_errors": import_errors,
        "task_logs": task_logs,
        "outputs": outputs,
        "schema": schema,
        "log_dir": log_dir,
        "home": airflow.home,
        "leftover": leftover,
        "scheduler_lines": [
            line
            for line in (root / "scheduler.out").read_text(errors="replace").splitlines()
            if schema in line
        ],
        "daily_runs": daily_runs,
        "unpaused": unpaused,
        "database": airflow.database,
    }
    pg_exec(pg_url, f"DROP SCHEMA {schema} CASCADE")


def partitions(served: dict[str, Any]) -> list[dict[str, Any]]:
    return [t for t in served["instances"] if t["task_id"] == "run_partition"]


def test_the_triggered_run_succeeds(served: dict[str, Any]) -> None:
    states = {(t["task_id"], t["map_index"]): t["state"] for t in served["instances"]}
    assert served["run"]["state"] == "success", (states, served["outputs"])
    assert served["import_errors"]["total_entries"] == 0  # served_pipeline.py is ignored
    assert states == {
        ("plan_partitions", -1): "success",
        ("run_partition", 0): "success",
        ("run_partition", 1): "success",
        ("run_partition", 2): "success",
        ("quality_gate", -1): "success",
        ("purge_logs", -1): "success",
    }


def test_partitions_run_at_the_same_time(served: dict[str, Any]) -> None:
    spans = [
        (dt.datetime.fromisoformat(t["start_date"]), dt.datetime.fromisoformat(t["end_date"]))
        for t in partitions(served)
    ]
    assert len(spans) == 3
    assert max(start for start, _ in spans) < min(end for _, end in spans), spans


def test_target_equals_source(served: dict[str, Any], pg_url: str) -> None:
    schema = served["schema"]
    columns = "id, amount, status, updated_at"
    source = pg_exec(pg_url, f"SELECT {columns} FROM {schema}.orders ORDER BY id")
    target = pg_exec(pg_url, f"SELECT {columns} FROM {schema}.orders_loaded ORDER BY id")
    assert len(source) == SOURCE_ROWS and target == source


def _partition_lines(served: dict[str, Any]) -> list[dict[str, Any]]:
    lines = [
        line
        for name, entries in served["task_logs"].items()
        if "task_id=run_partition" in name
        for line in entries
    ]
    assert lines, list(served["task_logs"])
    return lines


def test_task_logs_carry_library_lines_at_their_level(served: dict[str, Any]) -> None:
    lines = _partition_lines(served)
    ours = [line for line in lines if line.get("logger") == "airflow.task"]
    levels: dict[str, set[str]] = {}
    for line in ours:
        text = str(line["event"]).split(" | ", 1)[-1].split(":")[0]
        levels.setdefault(text, set()).add(line["level"])
    assert levels["run started"] == {"info"}, ours
    assert levels["run succeeded"] == {"info"}, ours
    assert levels["rendezvous"] == {"warning"}, ours
    # each partition's lines carry its pipeline and run, and point at the library's code
    started = [line for line in ours if str(line["event"]).endswith("| run started")]
    assert len(started) == 3
    assert all(str(line["event"]).startswith(served["schema"] + " [") for line in started)
    assert all(line.get("filename") not in (None, "logs.py") for line in started), started
    # nothing arrived through stderr, which Airflow records as errors
    stderr = [line for line in lines if line.get("logger") == "task.stderr"]
    assert stderr == [], stderr[:5]
    # a successful run has no ERROR line in any of its task logs
    errors = [
        (name, line)
        for name, entries in served["task_logs"].items()
        for line in entries
        if line.get("level") in ("error", "critical")
    ]
    assert errors == [], errors[:5]


def test_the_scheduler_log_shows_library_lines_at_their_level(served: dict[str, Any]) -> None:
    """The LocalExecutor's task supervisors log in the scheduler's output too."""
    lines = served["scheduler_lines"]
    assert len([line for line in lines if re.search(r"\[info\s*\] .*\| run started", line)]) == 3
    assert [line for line in lines if "[error" in line] == []


def test_no_log_file_outside_the_configured_folder(served: dict[str, Any]) -> None:
    files = list(served["log_dir"].glob("etl-express_*.jsonl"))
    assert len(files) == 1
    records = [json.loads(line)["record"] for line in files[0].read_text().splitlines()]
    started = [
        r
        for r in records
        if r["message"] == "run started" and r["extra"]["pipeline"] == served["schema"]
    ]
    assert len(started) == 3
    # the components' and tasks' HOME holds no file of etl-express
    written = [p for p in served["home"].rglob("*") if p.is_file()]
    assert not [p for p in written if "etl-express" in str(p) or "etl_express" in str(p)], written


def test_nothing_is_left_running(served: dict[str, Any], pg_url: str) -> None:
    assert served["leftover"] == []
    databases = pg_exec(
        pg_url, "SELECT 1 FROM pg_database WHERE datname = %s", (served["database"],)
    )
    assert databases == []


def test_unpausing_a_daily_dag_starts_the_latest_midnight_at_once(served: dict[str, Any]) -> None:
    """What docs/airflow.md warns of: no waiting for the next midnight. (Airflow 3's cron
    schedules are trigger timetables: a run is a point in time, its logical date.)"""
    (run,) = served["daily_runs"]
    logical = dt.datetime.fromisoformat(run["logical_date"])
    assert run["run_type"] == "scheduled"
    assert logical.time() == dt.time(0) and logical.utcoffset() == dt.timedelta(0)
    assert logical <= served["unpaused"] < logical + dt.timedelta(days=1)
