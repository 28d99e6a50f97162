"""SQLSource's PostgreSQL fast paths (the compiled binary COPY reader, and ADBC with numerics
as text) read exact values and resume at the right row, also when the ordering key itself is
numeric."""

from __future__ import annotations

import decimal

import pyarrow as pa
import pytest

from etl_express import Pipeline
from etl_express.sinks import PostgresSink
from etl_express.sources import SQLSource
from etl_express.sources.sql import pgbinary
from tests.conftest import pg_exec
from tests.sources.sql.test_pgbinary import require_binary_reader


@pytest.fixture(autouse=True, params=["binary", "adbc"])
def reader(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each test once through each PostgreSQL reader."""
    if request.param == "adbc":
        monkeypatch.setattr(pgbinary, "available", lambda: False)
    else:
        require_binary_reader()
    return str(request.param)


def make_table(url: str, schema: str, rows: int = 25) -> str:
    table = f"{schema}.accounts"
    pg_exec(
        url,
        f"CREATE TABLE {table} (code numeric(10,3) PRIMARY KEY, owner text, "
        "balance numeric(12,2), rate numeric, opened timestamptz)",
    )
    pg_exec(
        url,
        f"INSERT INTO {table} SELECT g / 8.0, 'owner ' || g, (g * 1234.5)::numeric(12,2) * "
        "(CASE WHEN g %% 2 = 0 THEN -1 ELSE 1 END), g / 7.0, "
        "timestamptz '2024-01-01 00:00+00' + g * interval '1 hour' FROM generate_series(1, %s) g",
        (rows,),
    )
    return table


def test_numeric_columns_arrive_as_exact_decimals(pg_url: str, schema: str) -> None:
    table = make_table(pg_url, schema)
    source = SQLSource(pg_url, table=table, primary_key="code", batch_size=10)
    batches = list(source.read())
    assert [b.num_rows for b in batches] == [10, 10, 5]
    data = pa.Table.from_batches([b.data for b in batches])
    assert data.schema.field("balance").type == pa.decimal128(12, 2)
    assert data.schema.field("code").type == pa.decimal128(10, 3)
    expected = pg_exec(pg_url, f"SELECT code, balance, rate::text FROM {table} ORDER BY code")
    assert data.column("code").to_pylist() == [r[0] for r in expected]
    assert data.column("balance").to_pylist() == [r[1] for r in expected]
    # an unconstrained numeric too precise for decimal128(38, 10) stays exact text
    assert [str(v) for v in data.column("rate").to_pylist()] == [r[2] for r in expected]


def test_resume_after_a_numeric_key(pg_url: str, schema: str) -> None:
    table = make_table(pg_url, schema)
    source = SQLSource(pg_url, table=table, primary_key="code", batch_size=10)
    first = next(iter(source.read()))
    assert first.position == {"key": [{"$decimal": "1.250"}]}
    rest = list(source.read(first.position))
    codes = [c for b in rest for c in b.data.column("code").to_pylist()]
    assert codes[0] == decimal.Decimal("1.375") and len(codes) == 15


def test_postgres_to_postgres_copies_every_value(
    pg_url: str, schema: str, pipeline_name: str
) -> None:
    table = make_table(pg_url, schema, rows=103)
    pipeline = Pipeline(
        pipeline_name,
        SQLSource(pg_url, table=table, primary_key="code", batch_size=20),
        sink=PostgresSink(table=f"{schema}.copy"),
        progress=False,
    )
    result = pipeline.run()
    assert result.rows_written == 103
    cols = "code, owner, balance, rate::text, opened"  # rate: text, too precise for decimal128
    assert pg_exec(pg_url, f"SELECT {cols} FROM {schema}.copy ORDER BY code") == pg_exec(
        pg_url, f"SELECT {cols} FROM {table} ORDER BY code"
    )


def test_sqlite_sources_are_read_on_the_calling_thread() -> None:
    assert SQLSource("sqlite://", table="t", primary_key="id").read_ahead is False
    assert SQLSource("postgresql://u@h/db", table="t", primary_key="id").read_ahead is True
