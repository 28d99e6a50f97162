"""The DAGs of the served-Airflow test: ``pipeline_dag`` over a factory in the DAGs folder."""

from __future__ import annotations

from served_pipeline import PARTITIONS

from etl_express.airflow import pipeline_dag

dag = pipeline_dag(
    "served_pipeline:build",
    dag_id="etl_served",
    schedule=None,  # runs only when triggered: unpausing creates no run
    partitions=PARTITIONS,
    retries=0,
)

# unpausing a daily DAG starts the run of the latest complete day at once (docs/airflow.md)
daily = pipeline_dag(
    "served_pipeline:build_daily", dag_id="etl_served_daily", schedule="@daily", retries=0
)
