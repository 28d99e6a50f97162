"""``etl.read`` gives rows in primary-key order unless told otherwise, on a real PostgreSQL
table whose physical order is not its key order (updated rows move to the end of the heap)."""

from __future__ import annotations

import etl_express as etl
from tests.conftest import pg_exec


def _table(pg_url: str, schema: str) -> str:
    table = f"{schema}.orders"
    pg_exec(
        pg_url,
        f"CREATE TABLE {table} (region text, id int, amount int, PRIMARY KEY (region, id))",
    )
    rows = [("south", i, 100 - i) for i in range(1, 6)] + [("north", i, i) for i in range(1, 6)]
    for row in rows:
        pg_exec(pg_url, f"INSERT INTO {table} VALUES (%s, %s, %s)", row)
    pg_exec(pg_url, f"UPDATE {table} SET amount = amount + 1 WHERE id <= 2")  # move them
    return table


def keys(records: list[dict]) -> list[tuple[str, int]]:
    return [(r["region"], r["id"]) for r in records]


def test_read_is_in_primary_key_order_by_default(pg_url: str, schema: str) -> None:
    table = _table(pg_url, schema)
    physical = [tuple(r) for r in pg_exec(pg_url, f"SELECT region, id FROM {table}")]
    expected = sorted(physical)
    assert physical != expected  # the heap order is not the key order

    assert keys(list(etl.read(table))) == expected
    assert keys(list(etl.read(table, limit=3))) == expected[:3]
    arrow = etl.read_arrow(table)
    assert list(zip(arrow["region"].to_pylist(), arrow["id"].to_pylist())) == expected
    batches = list(etl.read_batches(table, columns=["id", "region"]))
    streamed = [pair for b in batches for pair in zip(b["region"].to_pylist(), b["id"].to_pylist())]
    assert streamed == expected


def test_order_by_chooses_another_order_or_none(pg_url: str, schema: str) -> None:
    table = _table(pg_url, schema)
    by_amount = [r["amount"] for r in etl.read(table, order_by=["amount"])]
    assert by_amount == sorted(by_amount)
    unordered = keys(list(etl.read(table, order_by=[])))
    assert sorted(unordered) == sorted(keys(list(etl.read(table))))  # every row, any order


def test_a_table_without_a_primary_key_is_read_whole(pg_url: str, schema: str) -> None:
    pg_exec(pg_url, f"CREATE TABLE {schema}.events AS SELECT g AS n FROM generate_series(1, 5) g")
    assert sorted(r["n"] for r in etl.read(f"{schema}.events")) == [1, 2, 3, 4, 5]
