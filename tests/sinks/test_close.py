"""``Sink.close()`` is called exactly once per run: after a run that succeeds (before it counts
as succeeded), after one that fails, and after a quarantine replay."""

from __future__ import annotations

import pyarrow as pa
import pytest

import etl_express as etl
from etl_express.sinks import PostgresSink


class Rows(etl.Source):
    name, primary_key = "rows", ["id"]

    def __init__(self, fail_at: int | None = None):
        self.fail_at = fail_at

    def read(self, position=None, partition=None):
        start = position or 0
        for lo in range(start, 30, 10):
            if lo == self.fail_at:
                raise etl.SourceError("the source went away")
            yield etl.Batch([{"id": i} for i in range(lo, lo + 10)], position=lo + 10)


class CountingSink(PostgresSink):
    def __init__(self, table: str, fail_close: bool = False):
        super().__init__(table)
        self.closed = 0
        self.fail_close = fail_close

    def close(self) -> None:
        self.closed += 1
        if self.fail_close:
            raise OSError("flush failed")


def test_close_once_per_successful_run(pg_url: str, schema: str, pipeline_name: str) -> None:
    sink = CountingSink(f"{schema}.rows")
    pipeline = etl.Pipeline(pipeline_name, Rows(), sink=sink, progress=False)
    assert pipeline.run().rows_written == 30 and sink.closed == 1
    assert pipeline.run().rows_read == 0 and sink.closed == 2  # the next run: once more


def test_close_once_after_a_failed_run(pg_url: str, schema: str, pipeline_name: str) -> None:
    sink = CountingSink(f"{schema}.rows")
    pipeline = etl.Pipeline(pipeline_name, Rows(fail_at=10), sink=sink, progress=False)
    with pytest.raises(etl.SourceError, match="went away"):
        pipeline.run()
    assert sink.closed == 1


def test_a_failing_close_fails_the_run(pg_url: str, schema: str, pipeline_name: str) -> None:
    sink = CountingSink(f"{schema}.rows", fail_close=True)
    pipeline = etl.Pipeline(pipeline_name, Rows(), sink=sink, progress=False)
    with pytest.raises(Exception, match=r"flush failed|OSError") as info:
        pipeline.run()
    assert sink.closed == 1
    assert info.value.result.status == "failed"  # type: ignore[attr-defined]


def test_close_once_after_a_replay(pg_url: str, schema: str, pipeline_name: str) -> None:
    class Strict(CountingSink):
        def prepare(self, conn, schema_: pa.Schema, primary_key) -> None:
            super().prepare(conn, schema_, primary_key)
            conn.exec_driver_sql(
                f"ALTER TABLE {schema}.rows DROP CONSTRAINT IF EXISTS small, "
                f"ADD CONSTRAINT small CHECK (id < 25) NOT VALID"
            )

    sink = Strict(f"{schema}.rows")
    pipeline = etl.Pipeline(pipeline_name, Rows(), sink=sink, max_error_rate=0.5, progress=False)
    assert pipeline.run().rows_quarantined == 5 and sink.closed == 1
    pipeline.replay_quarantine()
    assert sink.closed == 2
