"""Findings 4 and 5 of issue 14: unconstrained numeric has one exact representation whatever
order its values arrive in, on both PostgreSQL reader paths, and a target column is only ever
widened losslessly."""

from __future__ import annotations

import decimal
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pytest

from etl_express import Batch, Pipeline, SinkError, Source
from etl_express.sinks import PostgresSink
from etl_express.sources import SQLSource
from etl_express.sources.sql import pgbinary
from tests.conftest import pg_exec

FIRST = ["1.5", "2.25"]
LATER = ["0.12345678901", "NaN", "Infinity", "-Infinity", "1e40", "0.0000001", "-3"]


def column_type(url: str, table: str, column: str) -> str:
    schema, name = table.split(".")
    ((t,),) = pg_exec(
        url,
        "SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
        "WHERE attrelid = to_regclass(%s) AND attname = %s",
        (f"{schema}.{name}", column),
    )
    return t


@pytest.mark.parametrize("fast_path", [True, False], ids=["binary", "sqlalchemy"])
@pytest.mark.parametrize("order", ["small-first", "large-first"])
def test_unconstrained_numeric_lands_exactly_in_either_order(
    pg_url: str, schema: str, pipeline_name: str, fast_path: bool, order: str
) -> None:
    first, later = (FIRST, LATER) if order == "small-first" else (LATER[::-1], FIRST)
    src = f"{schema}.src"
    pg_exec(pg_url, f"CREATE TABLE {src} (id int PRIMARY KEY, v numeric, ts int NOT NULL)")

    def insert(values: list[str], start: int, ts: int) -> None:
        for i, v in enumerate(values, start=start):
            pg_exec(pg_url, f"INSERT INTO {src} VALUES (%s, %s::numeric, %s)", (i, v, ts))

    def run() -> Any:
        source = SQLSource(
            pg_url, src, primary_key="id", cursor="ts", batch_size=2, fast_path=fast_path
        )
        return Pipeline(
            pipeline_name, source, sink=PostgresSink(f"{schema}.dst"), progress=False
        ).run()

    insert(first, 1, 1)
    assert run().rows_written == len(first)
    insert(later, 100, 2)
    result = run()
    assert (result.status, result.rows_written, result.rows_quarantined) == (
        "succeeded",
        len(later),
        0,
    )
    want = pg_exec(pg_url, f"SELECT id, v::text FROM {src} ORDER BY id")
    assert pg_exec(pg_url, f"SELECT id, v::text FROM {schema}.dst ORDER BY id") == want
    assert column_type(pg_url, f"{schema}.dst", "v") == "numeric"  # as declared, exact


@pytest.mark.parametrize("fast_path", [True, False], ids=["binary", "sqlalchemy"])
def test_nan_in_a_constrained_numeric_is_quarantined_naming_the_column(
    pg_url: str, schema: str, pipeline_name: str, fast_path: bool
) -> None:
    src = f"{schema}.src"
    pg_exec(pg_url, f"CREATE TABLE {src} (id int PRIMARY KEY, amount numeric(10,2))")
    pg_exec(pg_url, f"INSERT INTO {src} VALUES (1, 1.50), (2, 'NaN'), (3, -7.25)")
    source = SQLSource(pg_url, src, primary_key="id", fast_path=fast_path)
    result = Pipeline(
        pipeline_name, source, sink=PostgresSink(f"{schema}.dst"), progress=False, max_error_rate=1
    ).run()
    assert (result.rows_written, result.rows_quarantined) == (2, 1)
    ((reason,),) = pg_exec(
        pg_url, "SELECT reason FROM etl_express.quarantine WHERE pipeline = %s", [pipeline_name]
    )
    assert "'amount'" in reason and "NaN" in reason
    assert pg_exec(pg_url, f"SELECT id, amount::text FROM {schema}.dst ORDER BY id") == [
        (1, "1.50"),
        (3, "-7.25"),
    ]
    assert column_type(pg_url, f"{schema}.dst", "amount") == "numeric(10,2)"


class Batches(Source):
    def __init__(self, batches: list[pa.RecordBatch]):
        self.batches, self.name, self.primary_key = batches, "batches", ["id"]

    def read(self, position: Any = None, partition: Any = None) -> Iterator[Batch]:
        for i, b in enumerate(self.batches[position or 0 :], start=position or 0):
            yield Batch(b, position=i + 1)


def load(url: str, name: str, table: str, *batches: pa.RecordBatch) -> Any:
    return Pipeline(name, Batches(list(batches)), sink=PostgresSink(table), progress=False).run()


BIG = decimal.Decimal("12345678901234567.1234567891")


def test_a_decimal_column_later_seen_as_float_is_refused_not_rounded(
    pg_url: str, schema: str, pipeline_name: str
) -> None:
    table = f"{schema}.t"
    first = pa.record_batch({"id": [1], "v": pa.array([BIG], pa.decimal128(38, 10))})
    later = pa.record_batch({"id": [2], "v": pa.array([1.5], pa.float64())})
    load(pg_url, pipeline_name, table, first)
    with pytest.raises(SinkError, match=r"'v'.*cannot hold exactly"):
        load(pg_url, pipeline_name + "b", table, later)
    assert column_type(pg_url, table, "v") == "numeric(38,10)"
    assert pg_exec(pg_url, f"SELECT v FROM {table}") == [(BIG,)]


def test_a_decimal_into_a_double_precision_column_is_refused(
    pg_url: str, schema: str, pipeline_name: str
) -> None:
    table = f"{schema}.t"
    load(pg_url, pipeline_name, table, pa.record_batch({"id": [1], "v": [0.5]}))
    later = pa.record_batch({"id": [2], "v": pa.array([BIG], pa.decimal128(38, 10))})
    with pytest.raises(SinkError, match="'v'"):
        load(pg_url, pipeline_name + "b", table, later)
    assert pg_exec(pg_url, f"SELECT id FROM {table}") == [(1,)]


def test_a_wider_decimal_drops_the_typmod_instead_of_rounding(
    pg_url: str, schema: str, pipeline_name: str
) -> None:
    table = f"{schema}.t"
    load(
        pg_url,
        pipeline_name,
        table,
        pa.record_batch(
            {"id": [1], "v": pa.array([decimal.Decimal("1.25")], pa.decimal128(10, 2))}
        ),
        pa.record_batch({"id": [2], "v": pa.array([BIG], pa.decimal128(38, 10))}),
    )
    assert column_type(pg_url, table, "v") == "numeric"
    assert pg_exec(pg_url, f"SELECT id, v::text FROM {table} ORDER BY id") == [
        (1, "1.25"),
        (2, str(BIG)),
    ]


def test_bigint_widens_to_double_only_when_every_stored_value_is_exact(
    pg_url: str, schema: str, pipeline_name: str
) -> None:
    small, big = f"{schema}.small", f"{schema}.big"
    floats = pa.record_batch({"id": [9], "v": [0.5]})
    load(pg_url, pipeline_name, small, pa.record_batch({"id": [1], "v": [2**53]}), floats)
    assert column_type(pg_url, small, "v") == "double precision"
    assert pg_exec(pg_url, f"SELECT v FROM {small} ORDER BY id") == [(2.0**53,), (0.5,)]
    load(pg_url, pipeline_name + "b", big, pa.record_batch({"id": [1], "v": [2**53 + 1]}))
    with pytest.raises(SinkError, match="'v'"):
        load(pg_url, pipeline_name + "c", big, floats)
    assert pg_exec(pg_url, f"SELECT v FROM {big}") == [(2**53 + 1,)]
    # and integers beyond 2**53 never go into a double precision column
    with pytest.raises(SinkError, match=r"'v'.*2\*\*53"):
        load(pg_url, pipeline_name + "d", small, pa.record_batch({"id": [5], "v": [2**60]}))


@pytest.mark.parametrize("reader", ["binary", "adbc"])
def test_nan_and_infinite_dates_in_one_batch_quarantine_the_right_rows(
    pg_url: str, schema: str, pipeline_name: str, reader: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if reader == "adbc":
        monkeypatch.setattr(pgbinary, "available", lambda: False)
    src = f"{schema}.src"
    pg_exec(pg_url, f"CREATE TABLE {src} (id int PRIMARY KEY, amount numeric(10,2), d date)")
    pg_exec(
        pg_url,
        f"INSERT INTO {src} VALUES (1, 1.5, '2024-01-01'), (2, 1, 'infinity'), "
        "(3, 'NaN', '2024-01-03'), (4, 'NaN', '-infinity'), (5, 2, '2024-01-05')",
    )
    source = SQLSource(pg_url, src, primary_key="id")
    result = Pipeline(
        pipeline_name, source, sink=PostgresSink(f"{schema}.dst"), progress=False, max_error_rate=1
    ).run()
    assert (result.rows_written, result.rows_quarantined) == (2, 3)
    assert pg_exec(pg_url, f"SELECT id, amount::text, d::text FROM {schema}.dst ORDER BY id") == [
        (1, "1.50", "2024-01-01"),
        (5, "2.00", "2024-01-05"),
    ]
    reasons = pg_exec(
        pg_url,
        "SELECT record->>'id', reason FROM etl_express.quarantine WHERE pipeline = %s ORDER BY 1",
        [pipeline_name],
    )
    assert [r[0] for r in reasons] == ["2", "3", "4"]
    assert "'d'" in reasons[0][1] and "'amount'" in reasons[1][1] and "'d'" in reasons[2][1]


def test_a_date_the_driver_refuses_is_quarantined_without_the_value(
    pg_url: str, schema: str, pipeline_name: str
) -> None:
    # psycopg has no Python value for it; the SQLAlchemy path quarantines the row as the
    # binary and ADBC readers do, naming the column and never the value
    src = f"{schema}.src"
    pg_exec(pg_url, f"CREATE TABLE {src} (id int PRIMARY KEY, d date)")
    pg_exec(pg_url, f"INSERT INTO {src} VALUES (1, 'infinity'), (2, '2024-05-01')")
    source = SQLSource(pg_url, src, primary_key="id", fast_path=False)
    result = Pipeline(
        pipeline_name,
        source,
        sink=PostgresSink(f"{schema}.dst"),
        progress=False,
        max_error_rate=0.5,
    ).run()
    assert (result.rows_written, result.rows_quarantined) == (1, 1)
    assert pg_exec(pg_url, f"SELECT id, d::text FROM {schema}.dst") == [(2, "2024-05-01")]
    [(record, reason)] = pg_exec(
        pg_url,
        "SELECT record, reason FROM etl_express.quarantine WHERE pipeline = %s",
        (pipeline_name,),
    )
    assert record["d"] == "infinity" and reason.startswith("column 'd': ")
    assert "NULLIF(d, 'infinity')" in reason
