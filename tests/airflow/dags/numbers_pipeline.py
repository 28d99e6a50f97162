"""Test pipelines without Airflow: a source with three partitions, one of which can fail once.

``NumbersSource`` yields 4-row batches of ``{"id", "value"}`` for ids ``[lo, hi)``; its
position is the next id to read. With ``ETL_TEST_FAIL_ONCE`` set to a file path, partition
``lo=10`` raises after its first batch unless that file exists (and creates it), so the first
try commits 4 rows and a retry must resume at id 14.
"""

from __future__ import annotations

import os
from pathlib import Path

import etl_express as etl
from etl_express.sinks import PostgresSink


class NumbersSource(etl.Source):
    name = "numbers"
    primary_key = ("id",)

    def partitions(self, n=None):
        return [{"lo": 0, "hi": 10}, {"lo": 10, "hi": 20}, {"lo": 20, "hi": 30}]

    def read(self, position=None, partition=None):
        lo, hi = partition["lo"], partition["hi"]
        marker = os.environ.get("ETL_TEST_FAIL_ONCE")
        start = lo if position is None else position
        for i in range(start, hi, 4):
            if marker and lo == 10 and i > lo and not Path(marker).exists():
                Path(marker).write_text("failed once")
                raise RuntimeError(
                    "the source crashed"
                )  # not transient: the in-run retry does not absorb it
            rows = [{"id": j, "value": f"v{j}"} for j in range(i, min(i + 4, hi))]
            yield etl.Batch(rows, position=i + len(rows))


class NotJSONSource(NumbersSource):
    def partitions(self, n=None):
        return [{"lo": 0, "hi": 10, "day": object()}]


def build(pipeline: str | None = None, target: str | None = None) -> etl.Pipeline:
    return etl.Pipeline(
        name=pipeline or os.environ["ETL_TEST_PIPELINE"],
        source=NumbersSource(),
        sink=PostgresSink(table=target or os.environ["ETL_TEST_TARGET"]),
        progress=False,
    )


def build_not_json() -> etl.Pipeline:
    return etl.Pipeline(name="not_json", source=NotJSONSource(), sink=PostgresSink(table="x.y"))


def build_operator() -> etl.Pipeline:
    """The same pipeline under the names the hand-written DAG's test gives it."""
    return build(os.environ["ETL_TEST_OPERATOR_PIPELINE"], os.environ["ETL_TEST_OPERATOR_TARGET"])
