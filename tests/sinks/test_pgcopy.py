"""The binary and CSV COPY encodings load exactly the values of the Arrow batch."""

from __future__ import annotations

import datetime as dt
import decimal

import psycopg
import pyarrow as pa
import pytest
from psycopg import sql

from etl_express.sinks.pgcopy import binary_payload, copy_payload, csv_payload, encode_column

UTC = dt.timezone.utc
COLUMNS = {
    "id": ("bigint", pa.array([1, 2, 3, -(2**63), 2**63 - 1], pa.int64())),
    "small": ("integer", pa.array([0, None, -5, 2**31 - 1, -(2**31)], pa.int64())),
    "name": (
        "text",
        pa.array(["Анна", "", None, 'quote " and , comma', "line\nbreak\\"], pa.string()),
    ),
    "score": ("double precision", pa.array([1.5, None, -0.0, 1e300, float("inf")], pa.float64())),
    "amount": (
        "numeric",
        pa.array(
            [
                decimal.Decimal("73.49"),
                decimal.Decimal("-0.01"),
                None,
                decimal.Decimal("9999999999.99"),
                decimal.Decimal("0.00"),
            ],
            pa.decimal128(12, 2),
        ),
    ),
    "count_n": ("numeric", pa.array([0, -1, None, 2**62, -(2**62)], pa.int64())),
    "odd_scale": (
        "numeric",
        pa.array(
            [
                decimal.Decimal("1.23456"),
                decimal.Decimal("-123.00001"),
                None,
                decimal.Decimal("0.00001"),
                decimal.Decimal("99999.99999"),
            ],
            pa.decimal128(10, 5),
        ),
    ),
    "whole": (
        "numeric",
        pa.array(
            [
                decimal.Decimal(12345),
                decimal.Decimal(-10000),
                decimal.Decimal(1),
                None,
                decimal.Decimal(0),
            ],
            pa.decimal128(9, 0),
        ),
    ),
    "born": (
        "date",
        pa.array(
            [
                dt.date(1950, 2, 7),
                dt.date(2000, 1, 1),
                None,
                dt.date(1, 1, 1),
                dt.date(9999, 12, 31),
            ],
            pa.date32(),
        ),
    ),
    "seen": (
        "timestamp with time zone",
        pa.array(
            [
                dt.datetime(2020, 1, 1, 0, 1, 1, 5, tzinfo=UTC),
                None,
                dt.datetime(1969, 12, 31, 23, 59, 59, tzinfo=UTC),
                dt.datetime(2000, 1, 1, tzinfo=UTC),
                dt.datetime(2999, 6, 30, 12, tzinfo=UTC),
            ],
            pa.timestamp("us", "UTC"),
        ),
    ),
    "local": (
        "timestamp without time zone",
        pa.array(
            [
                dt.datetime(2020, 1, 1, 3, 4, 5),
                None,
                dt.datetime(1900, 1, 1),
                dt.datetime(2000, 1, 1),
                dt.datetime(2040, 1, 1, 0, 0, 0, 999999),
            ],
            pa.timestamp("us"),
        ),
    ),
    "flag": ("boolean", pa.array([True, False, None, True, False])),
    "doc": ("jsonb", pa.array(['{"a": 1}', None, "[1, 2]", '"текст"', "null"], pa.string())),
}


def _load(url: str, schema: str, table: str, fmt: str, chunks: list) -> list[tuple]:
    ident = sql.Identifier(schema, table)
    cols = sql.SQL(", ").join(
        sql.SQL("{} {}").format(sql.Identifier(n), sql.SQL(t)) for n, (t, _) in COLUMNS.items()
    )
    with psycopg.connect(url, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute("SET TimeZone = 'UTC'")
        cur.execute(sql.SQL("CREATE TABLE {} ({})").format(ident, cols))
        with cur.copy(
            sql.SQL("COPY {} FROM STDIN (FORMAT {})").format(ident, sql.SQL(fmt))
        ) as copy:
            for chunk in chunks:
                copy.write(chunk)
        return cur.execute(sql.SQL("SELECT * FROM {} ORDER BY id").format(ident)).fetchall()


def test_binary_and_csv_load_the_same_values(pg_url: str, schema: str) -> None:
    batch = pa.RecordBatch.from_arrays([a for _, a in COLUMNS.values()], names=list(COLUMNS))
    types = [t for t, _ in COLUMNS.values()]
    payload = copy_payload(batch, types, slice_bytes=64)  # several slices
    assert payload.format == "binary"
    chunks = list(payload)
    assert len(chunks) > 3 and list(payload) == chunks  # a second pass replays the same bytes
    binary = _load(pg_url, schema, "b", "binary", chunks)
    text = _load(pg_url, schema, "c", "csv", [csv_payload(batch)])
    assert binary == text
    expected = sorted(zip(*[a.to_pylist() for _, a in COLUMNS.values()]), key=lambda r: r[0])
    for got, want in zip(binary, expected):
        for name, g, w in zip(COLUMNS, got, want):
            if name == "doc":
                continue  # jsonb comes back parsed
            if name == "local" and w is not None:
                w = w.replace(tzinfo=None)
            assert g == w, name


def test_sliced_batches_encode_only_their_rows(pg_url: str, schema: str) -> None:
    batch = pa.RecordBatch.from_arrays([a for _, a in COLUMNS.values()], names=list(COLUMNS)).slice(
        1, 3
    )
    chunks = binary_payload(batch, [t for t, _ in COLUMNS.values()])
    assert chunks is not None
    rows = _load(pg_url, schema, "s", "binary", chunks)
    assert sorted(r[0] for r in rows) == sorted(batch.column(0).to_pylist())
    assert {r[2] for r in rows} == set(batch.column(2).to_pylist())


@pytest.mark.parametrize(
    ("array", "pg_type"),
    [
        (pa.array([2**40], pa.int64()), "integer"),  # out of range: PostgreSQL names it
        (pa.array(["x"], pa.string()), "uuid"),  # no binary encoder
        (pa.array([1.5], pa.float64()), "numeric"),  # float into numeric
        (pa.array([decimal.Decimal(1)], pa.decimal128(38, 0)), "numeric"),  # too wide for int64
        (pa.array([dt.date(2020, 1, 1)], pa.date32()), "timestamp with time zone"),
    ],
)
def test_unsupported_columns_fall_back_to_csv(array: pa.Array, pg_type: str) -> None:
    assert encode_column(array, pg_type) is None
    batch = pa.RecordBatch.from_arrays([array], names=["c"])
    assert copy_payload(batch, [pg_type]).format == "csv"


def test_dedupe_last_keeps_the_last_row_of_each_key() -> None:
    from etl_express.sinks.pgchanged import keys_rising
    from etl_express.sinks.postgres import dedupe_last

    ordered = pa.record_batch({"id": [1, 2, 5, 9], "v": ["a", "b", "c", "d"]})
    assert dedupe_last(ordered, ["id"]) is ordered  # keyset order: nothing to do
    repeated = pa.record_batch({"id": [1, 2, 1, 3, 2], "v": ["a", "b", "c", "d", "e"]})
    assert dedupe_last(repeated, ["id"]).to_pylist() == [
        {"id": 1, "v": "c"},
        {"id": 3, "v": "d"},
        {"id": 2, "v": "e"},
    ]
    # not increasing but unique: kept as it is
    shuffled = pa.record_batch({"id": [3, 1, 2], "v": ["a", "b", "c"]})
    assert dedupe_last(shuffled, ["id"]).to_pylist() == shuffled.to_pylist()
    # equal neighbours are duplicates, not "increasing"
    twice = pa.record_batch({"id": [1, 1], "v": ["old", "new"]})
    assert dedupe_last(twice, ["id"]).to_pylist() == [{"id": 1, "v": "new"}]
    # a composite key in keyset order (order, line): unique without grouping
    lines = pa.record_batch({"o": [1, 1, 2, 3], "l": [1, 2, 1, 1], "v": ["a", "b", "c", "d"]})
    assert dedupe_last(lines, ["o", "l"]) is lines
    # the second column repeating under an equal first one is a duplicate key
    again = pa.record_batch({"o": [1, 1, 2], "l": [2, 2, 1], "v": ["old", "new", "c"]})
    assert dedupe_last(again, ["o", "l"]).to_pylist() == [
        {"o": 1, "l": 2, "v": "new"},
        {"o": 2, "l": 1, "v": "c"},
    ]
    # a lower second column under a rising first one still rises
    assert keys_rising(pa.record_batch({"o": [1, 2], "l": [9, 1]}), ["o", "l"])
    assert not keys_rising(pa.record_batch({"o": [2, 1], "l": [1, 9]}), ["o", "l"])
