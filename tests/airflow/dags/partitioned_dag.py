"""A test DAG: a source with three partitions, one of which fails once mid-way.

The source yields 4-row batches of ``{"id", "value"}`` for ids ``[lo, hi)``; its position
is the next id to read. With ``ETL_TEST_FAIL_ONCE`` set to a file path, partition
``lo=10`` raises after its first batch unless that file exists (and creates it), so the
first try commits 4 rows and the retry must resume at id 14.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

from airflow.sdk import DAG, task

import etl_express as etl
from etl_express.airflow import PipelineOperator, pipeline_dag, plan_partitions
from etl_express.sinks import PostgresSink


class NumbersSource(etl.Source):
    name = "numbers"
    primary_key = ["id"]

    def partitions(self, n=None):
        return [{"lo": 0, "hi": 10}, {"lo": 10, "hi": 20}, {"lo": 20, "hi": 30}]

    def read(self, position=None, partition=None):
        lo, hi = partition["lo"], partition["hi"]
        marker = os.environ.get("ETL_TEST_FAIL_ONCE")
        start = lo if position is None else position
        for i in range(start, hi, 4):
            if marker and lo == 10 and i > lo and not Path(marker).exists():
                Path(marker).write_text("failed once")
                raise ConnectionError("the source went away")
            rows = [{"id": j, "value": f"v{j}"} for j in range(i, min(i + 4, hi))]
            yield etl.Batch(rows, position=i + len(rows))


def build() -> etl.Pipeline:
    return etl.Pipeline(name=os.environ["ETL_TEST_PIPELINE"], source=NumbersSource(),
                        sink=PostgresSink(table=os.environ["ETL_TEST_TARGET"]), progress=False)


dag = pipeline_dag(build, dag_id="etl_test_partitioned", partitions=3, retries=2,
                   retry_delay=timedelta(seconds=1))


class NotJSONSource(NumbersSource):
    def partitions(self, n=None):
        return [{"lo": 0, "hi": 10, "day": object()}]


def build_not_json() -> etl.Pipeline:
    return etl.Pipeline(name="not_json", source=NotJSONSource(), sink=PostgresSink(table="x.y"))


# A hand-written DAG for teams that write their own: PipelineOperator mapped over partitions,
# the pipeline passed as a dotted "module:factory" path (this file is importable by its stem).
with DAG("etl_test_operator", schedule="@daily", start_date=datetime(2024, 1, 1, tzinfo=timezone.utc),
         catchup=False, default_args={"retries": 1, "retry_delay": timedelta(seconds=1)}) as custom_dag:

    @task
    def plan() -> list[dict]:
        return plan_partitions("partitioned_dag:build", 3)

    PipelineOperator.partial(task_id="load", pipeline="partitioned_dag:build").expand(partition=plan())
