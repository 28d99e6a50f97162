"""The one reader of target-table metadata (store/tables.py): existence, columns and their
types, unique keys — on a SQLAlchemy connection, a psycopg connection or a cursor alike."""

from __future__ import annotations

import psycopg

from etl_express.store import tables
from etl_express.store.database import engine_for
from etl_express.store.tables import Column, TableName
from tests.conftest import pg_exec


def test_a_table_is_described_as_the_catalog_has_it(pg_url: str, schema: str) -> None:
    name = 'odd "name".x'  # quotes and a dot: quoted, never split
    pg_exec(
        pg_url,
        f'CREATE TABLE {schema}."odd ""name"".x" (id bigint PRIMARY KEY, code char(3), '
        "amount numeric(12, 2), tags text[], other integer, UNIQUE (code, other))",
    )
    table, missing = TableName(schema, name), TableName(schema, "nothing_here")
    with engine_for(pg_url).connect() as conn:
        found = tables.columns(conn, table)
        assert list(found) == ["id", "code", "amount", "tags", "other"]  # in table order
        assert found["amount"] == Column(
            "amount", "numeric", "numeric", 12, 2, None, "numeric(12,2)"
        )
        assert found["tags"].formatted == "text[]" and found["code"].formatted == "character(3)"
        assert found["code"].data_type == "character" and found["code"].length == 3
        assert (found["tags"].data_type, found["tags"].udt_name) == ("ARRAY", "_text")
        assert tables.column_types(conn, table)["id"] == "bigint"
        assert tables.exists(conn, table) and not tables.exists(conn, missing)
        assert tables.columns(conn, missing) == {}
        assert sorted(tables.unique_keys(conn, table)) == [["code", "other"], ["id"]]
        assert tables.primary_key(conn, table) == ["id"] and tables.primary_key(conn, missing) == []
    with psycopg.connect(pg_url) as raw:  # a psycopg connection, and one of its cursors
        assert tables.column_types(raw, table) == {
            "id": "bigint",
            "code": "character",
            "amount": "numeric",
            "tags": "ARRAY",
            "other": "integer",
        }
        with raw.cursor() as cur:
            assert tables.exists(cur, table)
    assert str(table) == f'{schema}.odd "name".x'


def test_a_sink_names_its_target_table() -> None:
    from etl_express.sinks import JSONLSink, PostgresSink

    assert PostgresSink("crm.customers").target_table() == TableName("crm", "customers")
    assert JSONLSink("exports/x").target_table() is None  # files: no table to read
