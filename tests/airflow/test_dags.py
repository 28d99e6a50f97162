"""Real Airflow ``dag.test()`` runs against the test PostgreSQL."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from tests.conftest import pg_exec

HERE = Path(__file__).parent
EXAMPLES = HERE.parents[1] / "examples"


def by_task(found: dict, task_id: str) -> list[dict]:
    return [t for t in found["tasks"] if t["task_id"] == task_id]


def test_example_dag_loads_the_source_table(airflow, dag_file, pg_url: str, schema: str) -> None:
    pg_exec(pg_url, f"CREATE TABLE {schema}.orders (id int PRIMARY KEY, amount numeric(10,2), "
                    f"status text, updated_at timestamptz NOT NULL)")
    pg_exec(pg_url, f"INSERT INTO {schema}.orders SELECT g, g * 1.5, CASE WHEN g % 3 = 0 THEN 'paid' ELSE 'new' END, "
                    f"timestamptz '2024-01-01' + g * interval '1 minute' FROM generate_series(1, 250) g")
    pipeline = "example_" + uuid.uuid4().hex[:8]
    found = airflow("test", str(dag_file(EXAMPLES / "airflow_dag.py")), "example_orders_daily", env={
        "AIRFLOW_CONN_EXAMPLE_SOURCE_DB": pg_url,  # the source credential comes as an Airflow connection
        "EXAMPLE_SOURCE_TABLE": f"{schema}.orders",
        "EXAMPLE_TARGET_TABLE": f"{schema}.orders_loaded",
        "EXAMPLE_PIPELINE": pipeline,
    })
    assert found["state"] == "success", found["log"][-5000:]
    runs = by_task(found, "run_partition")
    assert runs and all(t["state"] == "success" for t in runs)
    assert {t["task_id"] for t in found["tasks"] if t["state"] == "success"} == {
        "plan_partitions", "run_partition", "quality_gate", "purge_logs"}
    rows = pg_exec(pg_url, f"SELECT count(*), count(DISTINCT id), sum(amount), min(_etl_source) FROM {schema}.orders_loaded")
    assert rows[0][:2] == (250, 250) and float(rows[0][2]) == pytest.approx(1.5 * 250 * 251 / 2)
    assert rows[0][3] == "orders"
    statuses = pg_exec(pg_url, "SELECT status, count(*) FROM etl_express.runs WHERE pipeline = %s GROUP BY status",
                       (pipeline,))
    assert dict(statuses) == {"succeeded": len(runs)}


def test_partitions_run_as_mapped_tasks_and_a_failed_one_resumes(airflow, dag_file, pg_url: str, schema: str,
                                                                  tmp_path: Path) -> None:
    pipeline = "partitioned_" + uuid.uuid4().hex[:8]
    marker = tmp_path / "failed-once"
    found = airflow("test", str(dag_file(HERE / "dags" / "partitioned_dag.py")),
                    "etl_test_partitioned", env={
                        "ETL_TEST_PIPELINE": pipeline, "ETL_TEST_TARGET": f"{schema}.numbers",
                        "ETL_TEST_FAIL_ONCE": str(marker)})
    assert found["state"] == "success", found["log"][-5000:]
    assert marker.exists()  # the failure did happen
    runs = by_task(found, "run_partition")
    assert [t["map_index"] for t in runs] == [0, 1, 2]
    assert all(t["state"] == "success" for t in runs)
    assert [t["try_number"] for t in runs] == [1, 2, 1]  # only the failed partition was retried
    assert [json.loads(t["rendered_map_index"]) for t in runs] == [
        {"hi": 10, "lo": 0}, {"hi": 20, "lo": 10}, {"hi": 30, "lo": 20}]
    assert by_task(found, "quality_gate")[0]["state"] == "success"

    assert pg_exec(pg_url, f"SELECT count(*), count(DISTINCT id), min(id), max(id) FROM {schema}.numbers") == [(30, 30, 0, 29)]
    history = pg_exec(pg_url, "SELECT partition, status, rows_read, rows_written FROM etl_express.runs "
                              "WHERE pipeline = %s ORDER BY partition, started_at", (pipeline,))
    failed_partition = [(status, read, written) for part, status, read, written in history
                        if json.loads(part) == {"lo": 10, "hi": 20}]
    # first try committed one 4-row batch and failed; the retry read only the remaining 6 rows
    assert failed_partition == [("failed", 4, 4), ("succeeded", 6, 6)]
    assert sorted(status for _, status, _, _ in history) == ["failed", "succeeded", "succeeded", "succeeded"]


def test_examples_folder_imports_cleanly_and_schedules_daily(airflow) -> None:
    found = airflow("dagbag", str(EXAMPLES))
    assert found["import_errors"] == {}
    dag = found["dags"]["example_orders_daily"]
    assert dag["schedule"] == "@daily"
    assert dag["tasks"] == ["plan_partitions", "purge_logs", "quality_gate", "run_partition"]
    assert dag["retries"]["run_partition"] == 3
