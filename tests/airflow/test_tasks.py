"""The task functions and building blocks of ``etl_express.airflow`` (the calls run in an
Airflow-importing subprocess, see ``dagrun.py``)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

from etl_express.logs import shutdown_logging
from etl_express.store.runlog import flush_all
from tests.conftest import pg_exec

HERE = Path(__file__).parent


def call(
    airflow, *calls: tuple[str, list[Any]], env: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    """Run ``(module:function, args)`` calls in one Airflow subprocess."""
    return airflow("call", json.dumps(calls), env=env)["results"]


def test_quality_gate_fails_on_a_failed_check_recorded_for_the_dag_run(
    airflow, pg_url: str, schema: str, monkeypatch
) -> None:
    pipeline = "gate_" + uuid.uuid4().hex[:8]
    env = {"ETL_TEST_PIPELINE": pipeline, "ETL_TEST_TARGET": f"{schema}.numbers"}
    ref = "numbers_pipeline:build"
    monkeypatch.syspath_prepend(str(HERE / "dags"))
    from numbers_pipeline import build  # no Airflow needed to run the pipeline itself

    shutdown_logging()  # as a script that never configured logging (another test may have)

    result = build(pipeline, env["ETL_TEST_TARGET"]).run(partition={"lo": 0, "hi": 10}).to_dict()
    assert result["status"] == "succeeded" and result["rows_written"] == 10
    assert flush_all()  # the run's own log lines are written by a background writer

    pg_exec(
        pg_url,
        "INSERT INTO etl_express.quality_checks (run_id, pipeline, partition, name, status, policy, "
        "details, created_at) VALUES (%s, %s, '{}', 'row_count_drop', 'failed', 'fail', '{}', now())",
        (result["run_id"], pipeline),
    )
    for age in ("40 days", "29 days"):
        pg_exec(
            pg_url,
            "INSERT INTO etl_express.logs (ts, level, pipeline, message) "
            f"VALUES (now() - interval '{age}', 'INFO', %s, %s)",
            (pipeline, age),
        )
    unfinished = {**result, "status": "failed", "run_id": str(uuid.uuid4())}
    failed, not_run, purged = call(
        airflow,
        ("etl_express.airflow:quality_gate", [ref, [result]]),
        ("etl_express.airflow:quality_gate", [ref, [unfinished]]),
        ("etl_express.airflow:purge_logs", [ref]),
        env=env,
    )
    assert failed["error"] == "QualityError"
    assert "check row_count_drop failed" in failed["message"] and pipeline in failed["message"]
    assert (
        "status failed" in not_run["message"]
        and "not recorded in etl_express.runs" in not_run["message"]
    )
    assert purged["result"] == 1
    kept = [
        row[0]
        for row in pg_exec(
            pg_url, "SELECT message FROM etl_express.logs WHERE pipeline = %s", (pipeline,)
        )
    ]
    # the old line is purged; the recent one and the run's own lines (stored without
    # configure_logging) stay
    assert "40 days" not in kept and "29 days" in kept and "run started" in kept


def test_bad_pipeline_references_and_partitions_are_clear_errors(airflow) -> None:
    cases = [
        ("etl_express.airflow:load_pipeline", ["numbers_pipeline.build"], "not of the form"),
        ("etl_express.airflow:load_pipeline", ["no_such_module_xyz:build"], "cannot import module"),
        ("etl_express.airflow:load_pipeline", ["numbers_pipeline:nope"], "has no attribute 'nope'"),
        (
            "etl_express.airflow:load_pipeline",
            ["numbers_pipeline:NumbersSource"],
            "returned NumbersSource, not a Pipeline",
        ),
        (
            "etl_express.airflow:plan_partitions",
            ["numbers_pipeline:build_not_json", 2],
            "not JSON-serializable",
        ),
        ("etl_express.airflow:pipeline_dag", ["numbers_pipeline:build"], "needs dag_id="),
    ]
    found = call(
        airflow,
        *[(function, args) for function, args, _ in cases],
        env={"ETL_TEST_PIPELINE": "x", "ETL_TEST_TARGET": "x.y"},
    )
    for (function, args, expected), outcome in zip(cases, found):
        assert outcome.get("error") == "ETLConfigError", (function, args, outcome)
        assert expected in outcome["message"], (function, args, outcome["message"])


def test_airflow_secret_reads_a_connection_then_falls_back_to_the_environment(airflow) -> None:
    (outcome,) = call(
        airflow,
        ("tests.airflow.secret_probe:reveal", []),
        env={
            "AIRFLOW_CONN_PROBE_DB": "postgresql://probe:s3cret@db.example:5432/crm",  # pragma: allowlist secret
            "ETL_EXPRESS_PROBE_KEY": "from-env",
        },
    )
    uri, key, shown, missing = outcome["result"]
    assert uri.startswith("postgres") and uri.endswith("probe:s3cret@db.example:5432/crm")
    assert key == "from-env"
    assert "s3cret" not in shown + missing
    assert (
        "Airflow connection probe_other" in missing and "env ETL_EXPRESS_PROBE_MISSING" in missing
    )
