"""A table PostgresSink creates is loaded without its primary key index, which is built
once after the load: the rows and the key end up as an upsert load leaves them, a batch that
could conflict gets the key first, and a load that stops early is completed by the next run."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pytest

from etl_express import Batch, Pipeline, Source, SourceError
from etl_express.retry import RetryPolicy
from etl_express.sinks import PostgresSink
from etl_express.store.database import engine_for
from tests.conftest import pg_exec


def batch(ids: range, tag: str) -> pa.RecordBatch:
    return pa.RecordBatch.from_pydict(
        {
            "id": pa.array(list(ids), pa.int64()),
            "name": [f"{tag}{i}" for i in ids],
            "_etl_run_id": ["r"] * len(ids),
            "_etl_source": ["s"] * len(ids),
        }
    )


def primary_keys(url: str, table: str) -> int:
    return pg_exec(
        url, f"SELECT count(*) FROM pg_index WHERE indrelid = '{table}'::regclass AND indisprimary"
    )[0][0]


def write(url: str, sink: PostgresSink, data: pa.RecordBatch) -> None:
    with engine_for(url).begin() as conn:
        sink.prepare(conn, data.schema, ["id"])
        sink.write(conn, data, ["id"])


def test_the_key_index_is_built_after_the_load(pg_url: str, schema: str) -> None:
    table = f"{schema}.customers"
    sink = PostgresSink(table=table)
    write(pg_url, sink, batch(range(1, 11), "a"))
    write(pg_url, sink, batch(range(11, 21), "a"))
    assert primary_keys(pg_url, table) == 0  # rows arrive without index maintenance
    with engine_for(pg_url).begin() as conn:
        sink.finish_load(conn, ["id"])
    assert primary_keys(pg_url, table) == 1
    assert pg_exec(pg_url, f"SELECT count(*), count(DISTINCT id) FROM {table}") == [(20, 20)]
    write(pg_url, sink, batch(range(15, 25), "b"))  # later batches upsert against the key
    got = dict(pg_exec(pg_url, f"SELECT id, name FROM {table}"))
    assert len(got) == 24 and got[14] == "a14" and got[15] == "b15"


def test_a_batch_that_could_conflict_gets_the_key_first(pg_url: str, schema: str) -> None:
    table = f"{schema}.customers"
    sink = PostgresSink(table=table)
    write(pg_url, sink, batch(range(1, 11), "a"))
    write(pg_url, sink, batch(range(5, 16), "b"))  # starts below the highest key written
    assert primary_keys(pg_url, table) == 1
    got = dict(pg_exec(pg_url, f"SELECT id, name FROM {table}"))
    assert sorted(got) == list(range(1, 16))
    assert got[4] == "a4" and got[5] == "b5" and got[15] == "b15"


class Failing(Source):
    """Ten-row batches of ids 1..50; the first read fails after ``fail_after`` batches."""

    def __init__(self, fail_after: int | None):
        self.fail_after = fail_after
        self.name, self.primary_key = "customers", ["id"]

    def read(self, position: Any = None, partition: Any = None) -> Iterator[Batch]:
        start = position or 0
        for count, i in enumerate(range(start, 50, 10)):
            if self.fail_after is not None and count == self.fail_after:
                self.fail_after = None
                raise ConnectionError("source went away")
            yield Batch([{"id": j, "name": f"n{j}"} for j in range(i + 1, i + 11)], position=i + 10)


def stopped_after_two_batches(pipeline_name: str, table: str) -> Failing:
    """Run a first load into ``table`` that fails after committing two batches (no retry);
    the source, ready to be read again by the next run."""
    source = Failing(fail_after=2)
    with pytest.raises(SourceError):
        Pipeline(
            pipeline_name,
            source,
            sink=PostgresSink(table=table),
            progress=False,
            retry=RetryPolicy(attempts=0),
        ).run()
    return source


def test_a_load_that_stops_early_is_completed_by_the_next_run(
    pg_url: str, schema: str, pipeline_name: str
) -> None:
    table = f"{schema}.customers"
    source = stopped_after_two_batches(pipeline_name, table)
    assert primary_keys(pg_url, table) == 0  # two committed batches, the key not yet built
    result = Pipeline(pipeline_name, source, sink=PostgresSink(table=table), progress=False).run()
    assert result.rows_written == 30
    assert primary_keys(pg_url, table) == 1
    assert pg_exec(pg_url, f"SELECT count(*), count(DISTINCT id) FROM {table}") == [(50, 50)]


def test_a_run_leaves_its_new_table_with_the_key(
    pg_url: str, schema: str, pipeline_name: str
) -> None:
    table = f"{schema}.customers"
    sink = PostgresSink(table=table)
    Pipeline(pipeline_name, Failing(fail_after=None), sink=sink, progress=False).run()
    assert sink._batches["direct"] == 5
    assert primary_keys(pg_url, table) == 1


def test_a_retry_after_a_rollback_still_builds_the_key(pg_url: str, schema: str) -> None:
    table = f"{schema}.customers"
    sink = PostgresSink(table=table)
    write(pg_url, sink, batch(range(1, 11), "a"))
    sink.rollback()  # what the pipeline does before retrying a transient failure
    with engine_for(pg_url).begin() as conn:
        sink.finish_load(conn, ["id"])
    assert primary_keys(pg_url, table) == 1


def finish(url: str, sink: PostgresSink) -> None:
    with engine_for(url).begin() as conn:
        sink.finish_load(conn, ["id"])


def test_a_new_table_is_counted_by_its_copy_command_tags(pg_url: str, schema: str) -> None:
    """The rows PostgreSQL reported for the direct COPYs into a table the sink created are
    the table's count once the sink built its key; a repeated key counts once, as stored."""
    table = f"{schema}.customers"
    sink = PostgresSink(table=table)
    write(pg_url, sink, batch(range(1, 11), "a"))
    assert sink.copied_rows() is None  # still loading: the key is not built yet
    twice = batch(range(11, 16), "a")
    write(pg_url, sink, pa.concat_batches([twice, twice]))  # the last row of each key stays
    finish(pg_url, sink)
    assert sink.copied_rows() == 15 == pg_exec(pg_url, f"SELECT count(*) FROM {table}")[0][0]
    sink.close()  # the next run of the same sink counts its table again
    assert sink.copied_rows() is None


def test_any_other_write_forgets_the_copy_count(pg_url: str, schema: str) -> None:
    """An upsert, a rolled-back batch, or a key another writer built: the table is counted."""
    upserted = PostgresSink(table=f"{schema}.upserted")
    write(pg_url, upserted, batch(range(1, 11), "a"))
    write(pg_url, upserted, batch(range(5, 16), "b"))  # below the highest key: upserted
    finish(pg_url, upserted)
    assert upserted.copied_rows() is None

    rolled_back = PostgresSink(table=f"{schema}.rolled_back")
    write(pg_url, rolled_back, batch(range(1, 11), "a"))
    rolled_back.rollback()
    finish(pg_url, rolled_back)
    assert rolled_back.copied_rows() is None

    shared = f"{schema}.shared"
    other_writer = PostgresSink(table=shared)
    write(pg_url, other_writer, batch(range(1, 11), "a"))
    # another writer keys the table before it writes (as PostgresSink does), then writes
    pg_exec(pg_url, f"ALTER TABLE {shared} ADD PRIMARY KEY (id)")
    pg_exec(
        pg_url,
        f"INSERT INTO {shared} (id, name, _etl_run_id, _etl_source) VALUES (99, 'x', 'r', 's')",
    )
    finish(pg_url, other_writer)
    assert other_writer.copied_rows() is None


def test_a_retried_first_load_is_counted_in_the_table(
    pg_url: str, schema: str, pipeline_name: str
) -> None:
    """A batch retried after a transient failure: the run counts the table, not its COPYs."""
    sink = PostgresSink(table=f"{schema}.customers")
    pipeline = Pipeline(pipeline_name, Failing(fail_after=2), sink=sink, progress=False)
    result = pipeline.run()
    count = next(c for c in result.checks if c.name == "target_count")
    assert result.retries == 1 and result.rows_written == 50
    assert count.status == "passed" and count.details["counted_by"] == "table scan"
    other = PostgresSink(table=f"{schema}.other")
    unbroken = Pipeline(pipeline_name + "_b", Failing(None), sink=other, progress=False).run()
    again = next(c for c in unbroken.checks if c.name == "target_count")
    assert again.status == "passed" and again.details["target_rows"] == 50
    assert again.details["counted_by"] == "COPY row counts (a table this run created)"
