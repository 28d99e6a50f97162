"""A replication as a DAG: ``etl_test_replication`` maps the tables of the source schema
(and the two partitions of its big table) across task instances."""

from __future__ import annotations

import os
from datetime import timedelta

import etl_express as etl
from etl_express.airflow import replication_dag
from etl_express.sinks import PostgresSink
from etl_express.sources import SQLDatabase


def build() -> etl.Replication:
    return etl.Replication(
        os.environ["ETL_TEST_REPLICATION"],
        SQLDatabase(etl.secret("DATABASE_URL"), schema=os.environ["ETL_TEST_REPLICATION_SOURCE"]),
        sink=PostgresSink(schema=os.environ["ETL_TEST_REPLICATION_TARGET"]),
        partitions={"big": 2},
    )


dag = replication_dag(
    build, dag_id="etl_test_replication", retries=1, retry_delay=timedelta(seconds=1)
)
