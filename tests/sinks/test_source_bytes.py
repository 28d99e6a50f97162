"""A first load sends a batch's rows as the PostgreSQL source's binary COPY sent them when
nothing changed them and every target column has the source column's type
(``etl_express._copybytes``): the target then holds exactly what encoding the batch would
have given it, value for value; a changed column, a quarantined row or another type at the
target encodes as before."""

from __future__ import annotations

from typing import Any

import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from etl_express import Pipeline
from etl_express._copybytes import offer, rows_for, source_rows
from etl_express.sinks import PostgresSink, pgcopy, pglineage
from etl_express.sources import SQLSource
from etl_express.transformers import Transformer
from tests.conftest import pg_exec
from tests.fidelity.test_type_matrix import check, rows_of, target_texts, target_types
from tests.fidelity.type_matrix import PG_SETUP, PG_TYPES
from tests.sources.sql.test_pgbinary import require_binary_reader

#: the matrix's types whose binary form goes through (``real`` is read as double precision
#: and ``bytea`` as text, so a batch with either is encoded: the matrix's own test has them)
SENT_AS_READ = (
    "smallint",
    "integer",
    "bigint",
    "double precision",
    "numeric(10,2)",
    "numeric(60,20)",
    "numeric",
    "money",
    "boolean",
    "text",
    "varchar(10)",
    "char(5)",
    "date",
    "timestamp",
    "timestamptz",
    "uuid",
    "jsonb",
    "{schema}.mood",
    "{schema}.email",
)
CASES = tuple(c for c in PG_TYPES if c.sql in SENT_AS_READ)


def make_source(url: str, schema: str, cases: tuple[Any, ...]) -> dict[str, list[Any]]:
    """``{schema}.src`` with one column per case; the source's texts of each column."""
    with psycopg.connect(url, autocommit=True) as conn:
        for ddl in PG_SETUP:
            conn.execute(ddl.format(schema=schema))
        columns = ", ".join(f"c{i} {c.sql.format(schema=schema)}" for i, c in enumerate(cases))
        conn.execute(f"CREATE TABLE {schema}.src (id int PRIMARY KEY, {columns})")
        # a few batches of 3 rows, NULLs among them, and a last one of 2 that the stream's
        # trailer follows in the same read
        for row in range(rows_of(cases) * 3 + 2):
            values = ", ".join(
                f"({c.values[row % len(c.values)]})::{c.sql.format(schema=schema)}"
                if (row + i) % 5
                else "NULL"
                for i, c in enumerate(cases)
            )
            conn.execute(f"INSERT INTO {schema}.src VALUES ({row}, {values})")
    return target_texts(url, f"{schema}.src", cases)


def load(
    url: str, schema: str, name: str, table: str, via: str = "table", **options: Any
) -> PostgresSink:
    sink = PostgresSink(f"{schema}.{table}")
    where = (
        {"table": f"{schema}.src"} if via == "table" else {"query": f"SELECT * FROM {schema}.src"}
    )
    source = SQLSource(url, **where, primary_key="id", batch_size=3)
    result = Pipeline(name + table, source, sink=sink, progress=False, **options).run()
    assert result.status == "succeeded"
    sink.batches = result.batches  # type: ignore[attr-defined]
    return sink


@pytest.mark.parametrize("via", ["table", "query"])
def test_unchanged_rows_are_sent_as_read_and_land_exactly(
    pg_url: str, schema: str, pipeline_name: str, monkeypatch: pytest.MonkeyPatch, via: str
) -> None:
    require_binary_reader()
    want = make_source(pg_url, schema, CASES)
    rollbacks: list[PostgresSink] = []
    rollback = PostgresSink.rollback
    monkeypatch.setattr(
        PostgresSink, "rollback", lambda self: (rollbacks.append(self), rollback(self))[1]
    )
    statements: list[str] = []
    execute = psycopg.Cursor.execute
    monkeypatch.setattr(
        psycopg.Cursor,
        "execute",
        lambda self, query, *a, **k: (statements.append(str(query)), execute(self, query, *a, **k))[
            1
        ],
    )
    encoded_batches: list[int] = []
    encoders = pgcopy._binary_encoders
    monkeypatch.setattr(
        pgcopy,
        "_binary_encoders",
        lambda batch, types: (encoded_batches.append(batch.num_rows), encoders(batch, types))[1],
    )
    sent = load(pg_url, schema, pipeline_name, "sent", via)
    assert encoded_batches == []  # no batch sent as read set up an encoder it did not use
    # every batch, the last one (which ends at the stream's trailer) too, went as read: none
    # was refused by the server and done again
    assert sent.source_bytes_batches == sent.batches >= 3  # type: ignore[attr-defined]
    assert rollbacks == []
    # binary rows need no session setting: no TimeZone round trips around their COPY
    assert not [q for q in statements if "TimeZone" in q]
    monkeypatch.undo()
    got = target_texts(pg_url, f"{schema}.sent", CASES)
    assert check(CASES, want, got, target_types(pg_url, f"{schema}.sent")) == []
    # the same load encoding every batch lands the same values
    monkeypatch.setattr(pglineage, "rows_for", lambda batch, types: None)
    encoded = load(pg_url, schema, pipeline_name, "encoded", via)
    assert encoded.source_bytes_batches == 0
    assert target_texts(pg_url, f"{schema}.encoded", CASES) == got
    assert pg_exec(pg_url, f"SELECT count(DISTINCT _etl_run_id) FROM {schema}.sent") == [(1,)]


TEXT = "c" + str(next(i for i, c in enumerate(CASES) if c.sql == "text"))


class Upper(Transformer):
    """Upper-cases the ``text`` column."""

    def transform(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        i = batch.schema.get_field_index(TEXT)
        return batch.set_column(i, TEXT, pc.utf8_upper(batch.column(i)))


def test_a_changed_column_is_encoded(pg_url: str, schema: str, pipeline_name: str) -> None:
    require_binary_reader()
    make_source(pg_url, schema, CASES)
    sink = load(
        pg_url, schema, pipeline_name, "upper", transformers=[Upper()], not_pii={TEXT: "test"}
    )
    assert sink.source_bytes_batches == 0
    got = pg_exec(pg_url, f"SELECT {TEXT} FROM {schema}.upper WHERE {TEXT} IS NOT NULL")
    assert got and all(v == v.upper() for (v,) in got)


def test_rows_for_takes_only_the_same_buffers_and_types() -> None:
    batch = pa.RecordBatch.from_pydict({"id": pa.array([1, 2], pa.int64()), "t": ["a", "b"]})
    offered = source_rows(memoryview(b"rows"), [20, 25], batch)
    with offer(offered):
        assert rows_for(batch, ["bigint", "text"]) == memoryview(b"rows")
        assert rows_for(batch, ["bigint", "character varying"]) is None  # another type
        assert rows_for(batch.slice(1), ["bigint", "text"]) is None  # rows dropped
        copy = pa.RecordBatch.from_pydict({"id": pa.array([1, 2], pa.int64()), "t": ["a", "b"]})
        assert rows_for(copy, ["bigint", "text"]) is None  # equal values, other buffers
        swapped = pa.RecordBatch.from_arrays([batch.column(1), batch.column(0)], names=["t", "id"])
        assert rows_for(swapped, ["text", "bigint"]) is None  # reordered
    assert rows_for(batch, ["bigint", "text"]) is None  # nothing offered outside a commit
    unknown = source_rows(memoryview(b"rows"), [20, 600], batch)  # 600: point
    with offer(unknown):
        assert rows_for(batch, ["bigint", "point"]) is None
