"""The pipeline of the served-Airflow test, imported by the DAG as ``"served_pipeline:build"``
from the DAGs folder (Airflow puts that folder on ``sys.path``; ``.airflowignore`` keeps the
DAG processor from parsing this module as a DAG file).

A SQL table copied into the store, with one extra transformer: ``Rendezvous`` makes each
partition wait (at its first batch) until every partition has reached that point, so the
run only completes when the executor really runs the partitions at the same time, and it
logs one WARNING line, so the task log shows a level other than INFO.
"""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

import pyarrow as pa
from loguru import logger

import etl_express as etl
from etl_express.airflow import airflow_secret
from etl_express.sinks import PostgresSink
from etl_express.sources import SQLSource

PARTITIONS = 3


class Rendezvous(etl.Transformer):
    """Wait until ``parties`` processes have each passed a first batch (files in ``folder``)."""

    def __init__(self, folder: str, parties: int, timeout: float = 120.0):
        self.folder, self.parties, self.timeout = Path(folder), parties, timeout
        self.arrived = False

    def transform(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        if not self.arrived:
            self.arrived = True
            (self.folder / uuid.uuid4().hex).touch()
            deadline = time.monotonic() + self.timeout
            while len(list(self.folder.iterdir())) < self.parties:
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"only {len(list(self.folder.iterdir()))} of {self.parties} partitions "
                        f"ran at the same time within {self.timeout:.0f} s"
                    )
                time.sleep(0.05)
            logger.warning("rendezvous: {} partitions running together", self.parties)
        return batch


def build(name: str | None = None) -> etl.Pipeline:
    return etl.Pipeline(
        name=name or os.environ["SERVED_PIPELINE"],
        source=SQLSource(
            url=airflow_secret("SERVED_SOURCE_DB"),  # the Airflow connection served_source_db
            table=os.environ["SERVED_SOURCE_TABLE"],
            primary_key="id",
            cursor="updated_at",
            batch_size=100,
        ),
        transformers=[Rendezvous(os.environ["SERVED_RENDEZVOUS"], PARTITIONS)],
        sink=PostgresSink(table=os.environ["SERVED_TARGET_TABLE"]),
        progress=False,
    )


def build_daily() -> etl.Pipeline:
    return build(os.environ["SERVED_PIPELINE"] + "_daily")
