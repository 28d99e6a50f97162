"""Real Airflow ``dag.test()`` runs against the test PostgreSQL.

The three DAGs run one after the other in a single Airflow subprocess (starting Airflow's
in-process execution API costs seconds); each test then checks one DAG's outcome.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import pg_exec

HERE = Path(__file__).parent
EXAMPLES = HERE.parents[1] / "examples"
SOURCE_ROWS = 250


@pytest.fixture(scope="module")
def runs(
    airflow, dag_file, pg_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    """Run the example DAG, the partitioned DAG (one partition failing once) and the
    hand-written operator DAG; yield their outcomes and the names they used."""
    schema = "t_" + uuid.uuid4().hex[:10]
    pg_exec(pg_url, f"CREATE SCHEMA {schema}")
    pg_exec(
        pg_url,
        f"CREATE TABLE {schema}.orders (id int PRIMARY KEY, amount numeric(10,2), "
        f"status text, updated_at timestamptz NOT NULL)",
    )
    pg_exec(
        pg_url,
        f"INSERT INTO {schema}.orders SELECT g, g * 1.5, CASE WHEN g % 3 = 0 THEN 'paid' ELSE 'new' END, "
        f"timestamptz '2024-01-01' + g * interval '1 minute' FROM generate_series(1, {SOURCE_ROWS}) g",
    )
    names = {
        "schema": schema,
        "marker": tmp_path_factory.mktemp("marker") / "failed-once",
        **{
            k: f"{k}_{uuid.uuid4().hex[:8]}"
            for k in ("example", "partitioned", "operator", "replication")
        },
    }
    # a source schema for the replication DAG: a big table (two partitions) and a small one
    pg_exec(pg_url, f"CREATE SCHEMA {schema}_src")
    pg_exec(pg_url, f"CREATE TABLE {schema}_src.big (id int PRIMARY KEY, code char(4))")
    pg_exec(
        pg_url,
        f"INSERT INTO {schema}_src.big SELECT g, 'b' || g % 10 FROM generate_series(1, 100) g",
    )
    pg_exec(pg_url, f"CREATE TABLE {schema}_src.small (id int PRIMARY KEY, name text)")
    pg_exec(pg_url, f"INSERT INTO {schema}_src.small VALUES (1, 'one'), (2, 'two')")
    replication = dag_file(HERE / "dags" / "replication_dag.py")
    example = dag_file(EXAMPLES / "airflow_dag.py")
    partitioned = dag_file(HERE / "dags" / "partitioned_dag.py")
    found = airflow(
        "test",
        f"{example}::example_orders_daily",
        f"{partitioned}::etl_test_partitioned",
        f"{partitioned}::etl_test_operator",
        f"{replication}::etl_test_replication",
        env={
            "ETL_TEST_REPLICATION": names["replication"],
            "ETL_TEST_REPLICATION_SOURCE": f"{schema}_src",
            "ETL_TEST_REPLICATION_TARGET": f"{schema}_copy",
            "AIRFLOW_CONN_EXAMPLE_SOURCE_DB": pg_url,  # the source credential comes as an Airflow connection
            "EXAMPLE_SOURCE_TABLE": f"{schema}.orders",
            "EXAMPLE_TARGET_TABLE": f"{schema}.orders_loaded",
            "EXAMPLE_PIPELINE": names["example"],
            "ETL_TEST_PIPELINE": names["partitioned"],
            "ETL_TEST_TARGET": f"{schema}.numbers",
            "ETL_TEST_FAIL_ONCE": str(names["marker"]),
            "ETL_TEST_OPERATOR_PIPELINE": names["operator"],
            "ETL_TEST_OPERATOR_TARGET": f"{schema}.numbers_by_operator",
        },
    )
    yield {**found, "names": names}
    for name in (schema, f"{schema}_src", f"{schema}_copy"):
        pg_exec(pg_url, f"DROP SCHEMA IF EXISTS {name} CASCADE")


def tasks(run: dict[str, Any], task_id: str) -> list[dict[str, Any]]:
    return [t for t in run["tasks"] if t["task_id"] == task_id]


def test_example_dag_loads_the_source_table(runs: dict[str, Any], pg_url: str) -> None:
    run, schema = runs["example_orders_daily"], runs["names"]["schema"]
    assert run["state"] == "success", runs["log"][-5000:]
    partitions = tasks(run, "run_partition")
    assert partitions and all(t["state"] == "success" for t in partitions)
    assert {t["task_id"] for t in run["tasks"] if t["state"] == "success"} == {
        "plan_partitions",
        "run_partition",
        "quality_gate",
        "purge_logs",
    }
    rows = pg_exec(
        pg_url,
        f"SELECT count(*), count(DISTINCT id), sum(amount), min(_etl_source) "
        f"FROM {schema}.orders_loaded",
    )
    assert rows[0][:2] == (SOURCE_ROWS, SOURCE_ROWS)
    assert float(rows[0][2]) == pytest.approx(1.5 * SOURCE_ROWS * (SOURCE_ROWS + 1) / 2)
    assert rows[0][3] == "orders"
    statuses = pg_exec(
        pg_url,
        "SELECT status, count(*) FROM etl_express.runs WHERE pipeline = %s GROUP BY status",
        (runs["names"]["example"],),
    )
    assert dict(statuses) == {"succeeded": len(partitions)}


def test_partitions_run_as_mapped_tasks_and_a_failed_one_resumes(
    runs: dict[str, Any], pg_url: str
) -> None:
    run, schema = runs["etl_test_partitioned"], runs["names"]["schema"]
    assert run["state"] == "success", runs["log"][-5000:]
    assert runs["names"]["marker"].exists()  # the failure did happen
    partitions = tasks(run, "run_partition")
    assert [t["map_index"] for t in partitions] == [0, 1, 2]
    assert all(t["state"] == "success" for t in partitions)
    assert [t["try_number"] for t in partitions] == [
        1,
        2,
        1,
    ]  # only the failed partition was retried
    assert [json.loads(t["rendered_map_index"]) for t in partitions] == [
        {"hi": 10, "lo": 0},
        {"hi": 20, "lo": 10},
        {"hi": 30, "lo": 20},
    ]
    assert tasks(run, "quality_gate")[0]["state"] == "success"

    assert pg_exec(
        pg_url, f"SELECT count(*), count(DISTINCT id), min(id), max(id) FROM {schema}.numbers"
    ) == [(30, 30, 0, 29)]
    history = pg_exec(
        pg_url,
        "SELECT partition, status, rows_read, rows_written FROM etl_express.runs "
        "WHERE pipeline = %s ORDER BY partition, started_at",
        (runs["names"]["partitioned"],),
    )
    retried = [
        (status, read, written)
        for part, status, read, written in history
        if json.loads(part) == {"lo": 10, "hi": 20}
    ]
    # the first try committed one 4-row batch and failed; the retry read only the remaining 6 rows
    assert retried == [("failed", 4, 4), ("succeeded", 6, 6)]
    assert sorted(status for _, status, _, _ in history) == [
        "failed",
        "succeeded",
        "succeeded",
        "succeeded",
    ]


def test_a_replication_maps_its_tables_and_the_partitions_of_the_big_one(
    runs: dict[str, Any], pg_url: str
) -> None:
    run, schema = runs["etl_test_replication"], runs["names"]["schema"]
    assert run["state"] == "success", runs["log"][-5000:]
    assert tasks(run, "plan_tables")[0]["state"] == "success"
    units = tasks(run, "run_table")
    assert all(t["state"] == "success" for t in units)
    labels = sorted(t["rendered_map_index"] for t in units)
    assert len(labels) == 3 and labels[-1] == "small"
    assert all(label.startswith("big [") for label in labels[:2])
    assert tasks(run, "quality_gate")[0]["state"] == "success"
    assert pg_exec(pg_url, f"SELECT count(*), count(DISTINCT id) FROM {schema}_copy.big") == [
        (100, 100)
    ]
    assert pg_exec(pg_url, f"SELECT name FROM {schema}_copy.small ORDER BY id") == [
        ("one",),
        ("two",),
    ]
    declared = pg_exec(
        pg_url,
        "SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
        "WHERE attrelid = to_regclass(%s) AND attname = 'code'",
        (f"{schema}_copy.big",),
    )
    assert declared == [("character(4)",)]
    pipelines = pg_exec(
        pg_url,
        "SELECT DISTINCT pipeline FROM etl_express.runs WHERE pipeline LIKE %s ORDER BY 1",
        (runs["names"]["replication"] + ".%",),
    )
    assert [p for (p,) in pipelines] == [
        f"{runs['names']['replication']}.big",
        f"{runs['names']['replication']}.small",
    ]


def test_operator_in_a_hand_written_dag_runs_every_partition(
    runs: dict[str, Any], pg_url: str
) -> None:
    run, schema = runs["etl_test_operator"], runs["names"]["schema"]
    assert run["state"] == "success", runs["log"][-5000:]
    assert [(t["map_index"], t["state"]) for t in tasks(run, "load")] == [
        (0, "success"),
        (1, "success"),
        (2, "success"),
    ]
    assert pg_exec(pg_url, f"SELECT count(DISTINCT id) FROM {schema}.numbers_by_operator") == [
        (30,)
    ]


def test_examples_folder_imports_cleanly_and_schedules_daily(airflow) -> None:
    found = airflow("dagbag", str(EXAMPLES))
    assert found["import_errors"] == {}
    dag = found["dags"]["example_orders_daily"]
    assert dag["schedule"] == "@daily"
    assert dag["tasks"] == ["plan_partitions", "purge_logs", "quality_gate", "run_partition"]
    assert dag["retries"]["run_partition"] == 3
