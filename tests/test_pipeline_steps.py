"""The steps of two batches at once (``_engine.steps``): same rows, same order, same errors."""

from __future__ import annotations

import os
import secrets

import pyarrow as pa
import pytest

import etl_express as etl
from etl_express import Batch, Source, SourceError
from etl_express._engine.steps import steps_pool
from etl_express.anonymizers import KAnonymity, Pseudonymize, Redact, ScrubPII
from etl_express.retry import RetryPolicy
from etl_express.sinks import PostgresSink
from etl_express.transformers import Rename

from .conftest import pg_exec

os.environ.setdefault("ETL_EXPRESS_STEPS_TEST_KEY", secrets.token_urlsafe(48))
KEY = etl.secret("STEPS_TEST_KEY")
ROWS = [
    {
        "id": i,
        "email": f"user{i}@mail.ru",
        "name": f"Name {i}",
        "notes": f"call +7 916 123-45-{i:02d}",
    }
    for i in range(1, 23)
]


class ListSource(Source):
    """Arrow batches from memory, resumable by index; ``fail_at`` raises on that batch."""

    def __init__(self, rows, batch_size=4, fail_at=None):
        self.rows, self.batch_size, self.fail_at = rows, batch_size, fail_at
        self.name, self.primary_key, self.pii = "people", ["id"], ["email", "name"]

    def read(self, position=None, partition=None):
        for n, i in enumerate(range(position or 0, len(self.rows), self.batch_size)):
            if n == self.fail_at:
                raise ValueError("the source broke")
            chunk = self.rows[i : i + self.batch_size]
            yield Batch(pa.RecordBatch.from_pylist(chunk), position=i + len(chunk))


def anonymizers():
    return [Pseudonymize(["email"], key=KEY), Redact(["name"]), ScrubPII(["notes"])]


def test_anonymized_batches_land_as_one_after_the_other(pg_url, schema, pipeline_name):
    pipeline = etl.Pipeline(
        pipeline_name,
        ListSource(ROWS),
        anonymizers=anonymizers(),
        sink=PostgresSink(f"{schema}.people"),
    )
    pool = steps_pool(pipeline)
    assert pool is not None  # the case under test: two batches' steps at once
    pool.shutdown()
    result = pipeline.run()
    assert (result.status, result.rows_written, result.batches) == ("succeeded", 22, 6)
    expected = pa.RecordBatch.from_pylist(ROWS)
    for step in anonymizers():
        expected = step.anonymize(expected)
    got = pg_exec(pg_url, f"SELECT id, email, name, notes FROM {schema}.people ORDER BY id")
    assert got == [tuple(r.values()) for r in expected.to_pylist()]
    assert all("916" not in notes for *_, notes in got)
    position = pg_exec(
        pg_url, "SELECT position FROM etl_express.checkpoints WHERE pipeline = %s", (pipeline_name,)
    )
    assert position == [(22,)]


def test_a_failing_batch_stops_after_every_batch_before_it(pg_url, schema, pipeline_name):
    """The batches read before the failure are committed, as when one runs after the other."""
    pipeline = etl.Pipeline(
        pipeline_name,
        ListSource(ROWS, fail_at=3),
        anonymizers=anonymizers(),
        sink=PostgresSink(f"{schema}.people"),
        retry=RetryPolicy(attempts=0),
    )
    with pytest.raises(SourceError, match="reading people failed: ValueError"):
        pipeline.run()
    assert pg_exec(pg_url, f"SELECT count(*) FROM {schema}.people") == [(12,)]
    position = pg_exec(
        pg_url, "SELECT position FROM etl_express.checkpoints WHERE pipeline = %s", (pipeline_name,)
    )
    assert position == [(12,)]


def test_steps_that_may_keep_state_run_one_batch_at_a_time():
    source = ListSource(ROWS)
    sink = PostgresSink("public.unused")
    cases = {
        "a transformer": {"transformers": [Rename({"notes": "remarks"})], "anonymizers": []},
        "a counting anonymizer": {"anonymizers": [KAnonymity(["name"], k=2)]},
        "no anonymizer": {"anonymizers": []},
    }
    for what, steps in cases.items():
        pipeline = etl.Pipeline("steps_" + what.replace(" ", "_"), source, sink=sink, **steps)
        assert steps_pool(pipeline) is None, what
