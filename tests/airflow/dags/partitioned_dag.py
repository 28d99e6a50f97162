"""Test DAGs over ``numbers.build`` (three partitions, one failing once when asked):
``etl_test_partitioned`` made by ``pipeline_dag``, and ``etl_test_operator`` written by hand
with ``PipelineOperator`` the way teams that write their own DAGs would."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from airflow.sdk import DAG, task
from numbers_pipeline import build

from etl_express.airflow import PipelineOperator, pipeline_dag, plan_partitions

dag = pipeline_dag(
    build, dag_id="etl_test_partitioned", partitions=3, retries=2, retry_delay=timedelta(seconds=1)
)

# the pipeline passed as a dotted "module:factory" path, rebuilt inside each task
with DAG(
    "etl_test_operator",
    schedule="@daily",
    start_date=datetime(2024, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    default_args={"retries": 1, "retry_delay": timedelta(seconds=1)},
) as custom_dag:

    @task
    def plan() -> list[dict]:
        return plan_partitions("numbers_pipeline:build_operator", 3)

    PipelineOperator.partial(task_id="load", pipeline="numbers_pipeline:build_operator").expand(
        partition=plan()
    )
