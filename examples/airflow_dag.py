"""A complete daily Airflow DAG: the ``orders`` table of a source database, loaded into the
etl-express store, one mapped task per partition.

Drop this file into your DAGs folder (with ``etl-express[airflow]`` installed on the
workers) and give it credentials — never in code:

* Airflow connection ``example_source_db``: the database to read (any SQLAlchemy URL,
  e.g. ``postgresql://reader:***@crm-db:5432/crm``); or env ``EXAMPLE_SOURCE_DB``;
* Airflow connection ``etl_express_store``: the PostgreSQL the data and the pipeline state
  go to; or env ``ETL_EXPRESS_DATABASE_URL``;
* optional env ``EXAMPLE_SOURCE_TABLE`` (default ``public.orders``),
  ``EXAMPLE_TARGET_TABLE`` (default ``analytics.orders``), ``EXAMPLE_PIPELINE``.

The pipeline is built by :func:`build_pipeline` inside each task, so parsing this file
connects to nothing and reads no secret.
"""

from __future__ import annotations

import os
from datetime import timedelta

import etl_express as etl
from etl_express.airflow import airflow_secret, pipeline_dag
from etl_express.sinks import PostgresSink
from etl_express.sources import SQLSource


def build_pipeline() -> etl.Pipeline:
    """The pipeline, rebuilt in every task from the environment and Airflow connections."""
    store = airflow_secret(
        "DATABASE_URL", conn_id="etl_express_store"
    )  # env ETL_EXPRESS_DATABASE_URL
    return etl.Pipeline(
        name=os.environ.get("EXAMPLE_PIPELINE", "example_orders"),
        source=SQLSource(
            url=airflow_secret("EXAMPLE_SOURCE_DB"),
            table=os.environ.get("EXAMPLE_SOURCE_TABLE", "public.orders"),
            primary_key="id",
            cursor="updated_at",  # daily runs read only what changed since yesterday
            batch_size=10_000,
        ),
        sink=PostgresSink(
            table=os.environ.get("EXAMPLE_TARGET_TABLE", "analytics.orders"), url=store
        ),
        progress=False,
    )


dag = pipeline_dag(
    build_pipeline,
    dag_id="example_orders_daily",
    schedule="@daily",
    partitions=4,  # four mapped tasks, each resuming from its own checkpoint
    retries=3,
    retry_delay=timedelta(minutes=1),
)
