"""PostgresSink's fast paths (direct COPY, binary payloads, relaxed commits) give exactly
the rows of the plain staging + upsert path, and never duplicate on replays."""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pyarrow as pa
import pytest

from etl_express import Batch, Pipeline, Source, SourceError
from etl_express.retry import RetryPolicy
from etl_express.sinks import PostgresSink
from etl_express.store.database import engine_for
from tests.conftest import pg_exec

UTC = dt.timezone.utc


#: the synthetic dates of the fixture rows (this file tests the sink, not the detector)
NOT_PII = {"born": "synthetic dates of the sink tests"}


def customers(n: int, version: int = 0) -> list[dict[str, Any]]:
    return [
        {
            "id": i,
            "name": f"Клиент {i} v{version}",
            "balance": decimal.Decimal(f"{1000 + i}.{version:02d}"),
            "seen": dt.datetime(2024, 1, 1, tzinfo=UTC) + dt.timedelta(minutes=i + version),
            "born": dt.date(1980, 1, 1) + dt.timedelta(days=i),
            "active": i % 2 == 0,
            "note": None if i % 5 == 0 else f"v{version}",
        }
        for i in range(1, n + 1)
    ]


class ListSource(Source):
    """Rows in memory, resumable by index; ``fail_after`` batches on the first read only."""

    def __init__(
        self, rows: list[dict[str, Any]], batch_size: int = 10, fail_after: int | None = None
    ):
        self.rows, self.batch_size, self.fail_after = rows, batch_size, fail_after
        self.name, self.primary_key = "customers", ["id"]

    def read(self, position: Any = None, partition: Any = None) -> Iterator[Batch]:
        start = position or 0
        for count, i in enumerate(range(start, len(self.rows), self.batch_size)):
            if self.fail_after is not None and count == self.fail_after:
                self.fail_after = None
                raise ConnectionError("source went away")
            chunk = self.rows[i : i + self.batch_size]
            yield Batch(chunk, position=i + len(chunk))


def table_rows(url: str, table: str) -> list[tuple]:
    return pg_exec(
        url, f"SELECT id, name, balance, seen, born, active, note FROM {table} ORDER BY id"
    )


def run(url: str, name: str, table: str, source: Source, **sink_options: Any) -> PostgresSink:
    sink = PostgresSink(table=table, **sink_options)
    Pipeline(name, source, sink=sink, progress=False, not_pii=NOT_PII).run()
    return sink


def test_direct_copy_gives_the_same_table_as_staging(
    pg_url: str, schema: str, pipeline_name: str
) -> None:
    rows = customers(35)
    fast = run(pg_url, pipeline_name + "_f", f"{schema}.fast", ListSource(rows))
    slow = run(pg_url, pipeline_name + "_s", f"{schema}.slow", ListSource(rows), direct_copy=False)
    assert fast._batches == {"direct": 4, "staged": 0, "appended": 0, "unchanged": 0}
    assert slow._batches == {"direct": 0, "staged": 4, "appended": 0, "unchanged": 0}
    assert table_rows(pg_url, f"{schema}.fast") == table_rows(pg_url, f"{schema}.slow")
    assert len(table_rows(pg_url, f"{schema}.fast")) == 35


def test_rerun_upserts_instead_of_duplicating(pg_url: str, schema: str, pipeline_name: str) -> None:
    table = f"{schema}.customers"
    run(pg_url, pipeline_name, table, ListSource(customers(30)))
    sink = PostgresSink(table=table)
    Pipeline(
        pipeline_name,
        ListSource(customers(30, version=7)),
        sink=sink,
        progress=False,
        not_pii=NOT_PII,
    ).run(reset=True)
    got = table_rows(pg_url, table)
    assert len(got) == 30
    assert {r[1] for r in got} == {f"Клиент {i} v7" for i in range(1, 31)}
    assert sink._batches["staged"] == 3  # every direct attempt hit existing keys
    assert sink._batches["direct"] == 0


def test_a_batch_with_one_existing_key_is_upserted(
    pg_url: str, schema: str, pipeline_name: str
) -> None:
    table = f"{schema}.customers"
    run(pg_url, pipeline_name, table, ListSource(customers(5)))
    mixed = customers(10, version=3)[4:]  # ids 5..10: id 5 exists, the rest are new
    sink = PostgresSink(table=table)
    Pipeline(
        pipeline_name + "_2", ListSource(mixed), sink=sink, progress=False, not_pii=NOT_PII
    ).run()
    got = {r[0]: r for r in table_rows(pg_url, table)}
    assert sorted(got) == list(range(1, 11))
    assert got[5][1] == "Клиент 5 v3" and got[4][1] == "Клиент 4 v0"
    assert sink._batches == {"direct": 0, "staged": 1, "appended": 0, "unchanged": 0}


def test_a_crashed_run_resumes_without_duplicates(
    pg_url: str, schema: str, pipeline_name: str
) -> None:
    table = f"{schema}.customers"
    rows = customers(47)
    source = ListSource(rows, batch_size=10, fail_after=2)
    with pytest.raises(SourceError, match="ConnectionError"):
        Pipeline(
            pipeline_name,
            source,
            sink=PostgresSink(table=table),
            progress=False,
            retry=RetryPolicy(attempts=0),
            not_pii=NOT_PII,
        ).run()
    assert len(table_rows(pg_url, table)) == 20
    sink = run(pg_url, pipeline_name, table, source)
    assert sink._batches["direct"] == 3  # the remaining keys are all new: no staging needed
    expected = run(
        pg_url, pipeline_name + "_ref", f"{schema}.reference", ListSource(rows), direct_copy=False
    )
    assert expected._batches["staged"] == 5
    assert table_rows(pg_url, table) == table_rows(pg_url, f"{schema}.reference")


def test_relaxed_commit_is_local_to_the_batch(pg_url: str, schema: str, pipeline_name: str) -> None:
    sink = PostgresSink(table=f"{schema}.customers", synchronous_commit=False)
    batch = pa.RecordBatch.from_pylist(customers(3))
    engine = engine_for(pg_url)
    with engine.connect() as conn:
        with conn.begin():
            assert sink.write(conn, batch, ["id"]) == 3
            assert conn.exec_driver_sql("SHOW synchronous_commit").scalar() == "off"
        assert conn.exec_driver_sql("SHOW synchronous_commit").scalar() == "on"
    assert len(table_rows(pg_url, f"{schema}.customers")) == 3


def test_csv_fallback_reads_timestamps_as_utc_and_restores_the_time_zone(
    pg_url: str, schema: str
) -> None:
    # decimal128(38, 10) has no binary encoder: the batch goes as CSV with naive UTC timestamps
    seen = dt.datetime(2024, 3, 1, 12, 30, tzinfo=UTC)
    batch = pa.RecordBatch.from_pydict(
        {
            "id": pa.array([1], pa.int64()),
            "amount": pa.array([decimal.Decimal("1.5")], pa.decimal128(38, 10)),
            "seen": pa.array([seen], pa.timestamp("us", "UTC")),
        }
    )
    sink = PostgresSink(table=f"{schema}.wide")
    with engine_for(pg_url).connect() as conn, conn.begin():
        conn.exec_driver_sql("SET LOCAL TimeZone = 'Asia/Vladivostok'")
        sink.write(conn, batch, ["id"])
        assert conn.exec_driver_sql("SHOW TimeZone").scalar() == "Asia/Vladivostok"
    with psycopg.connect(pg_url) as conn:
        assert conn.execute(f"SELECT seen, amount FROM {schema}.wide").fetchone() == (
            seen,
            decimal.Decimal("1.5"),
        )


@pytest.mark.parametrize("wait", [False, True])
def test_batches_commit_without_waiting_and_the_run_ends_with_a_commit_that_waits(
    pg_url: str, schema: str, pipeline_name: str, monkeypatch: pytest.MonkeyPatch, wait: bool
) -> None:
    # each transaction of the run, as it commits: does it wait for the WAL flush?
    from etl_express.store.checkpoints import CheckpointStore

    seen: list[str] = []
    transaction = CheckpointStore.transaction

    def watched(self: CheckpointStore) -> Iterator[Any]:
        with transaction(self) as conn:
            yield conn
            seen.append(conn.exec_driver_sql("SHOW synchronous_commit").scalar())

    monkeypatch.setattr(CheckpointStore, "transaction", contextmanager(watched))
    options = {"synchronous_commit": True} if wait else {}  # the default: False
    sink = run(pg_url, pipeline_name, f"{schema}.sync", ListSource(customers(35)), **options)
    assert sink.synchronous_commit is wait
    assert len(table_rows(pg_url, f"{schema}.sync")) == 35
    batches = 4
    assert seen.count("off") == (0 if wait else batches)
    # the records after the batches (key, checks, the run's end) wait: the log is flushed in
    # order, so every batch committed before them is on disk when run() returns
    assert seen[-1] == "on"
