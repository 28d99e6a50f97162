"""Replayed batches: PostgresSink writes only the rows that change the target.

The rows of a replayed batch are compared with the target's, field by field in PostgreSQL's
binary COPY format; the result must be the table an upsert of every row gives (the staging
path is the reference), while unchanged rows are not rewritten and keep their lineage."""

from __future__ import annotations

import decimal
import struct
from collections.abc import Iterator
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from etl_express import Batch, Pipeline, Source
from etl_express._speedups import native
from etl_express.sinks import PostgresSink
from etl_express.sinks.pgchanged import integer_keys
from tests.conftest import pg_exec


def rows(n: int, changed: frozenset[int] = frozenset()) -> list[dict[str, Any]]:
    """``n`` customers; the ids in ``changed`` differ in one field each (chosen by id)."""
    out = []
    for i in range(1, n + 1):
        row = {
            "id": i,
            "name": f"Клиент {i}",
            "balance": decimal.Decimal(f"{1000 + i}.50"),
            "score": 0.0,
            "note": None if i % 4 == 0 else f"note {i}",
        }
        if i in changed:
            kind = i % 4
            if kind == 0:
                row["note"] = "now set"  # NULL -> value
            elif kind == 1:
                row["score"] = -0.0  # equal to 0.0 for `=`, a different value all the same
            elif kind == 2:
                row["note"] = None  # value -> NULL
            else:
                row["name"] = row["name"] + "!"
        out.append(row)
    return out


class ListSource(Source):
    def __init__(self, data: list[dict[str, Any]], batch_size: int = 10):
        self.data, self.batch_size = data, batch_size
        self.name, self.primary_key = "customers", ["id"]

    def read(self, position: Any = None, partition: Any = None) -> Iterator[Batch]:
        start = position or 0
        for i in range(start, len(self.data), self.batch_size):
            chunk = self.data[i : i + self.batch_size]
            yield Batch(chunk, position=i + len(chunk))


def load(name: str, table: str, data: list[dict[str, Any]], **options: Any) -> PostgresSink:
    sink = PostgresSink(table=table, **options)
    Pipeline(name, ListSource(data), sink=sink, progress=False).run(reset=True)
    return sink


def content(url: str, table: str) -> list[tuple]:
    return pg_exec(url, f"SELECT id, name, balance, score::text, note FROM {table} ORDER BY id")


def test_an_identical_replay_writes_nothing_and_keeps_the_lineage(
    pg_url: str, schema: str, pipeline_name: str
) -> None:
    table = f"{schema}.customers"
    load(pipeline_name, table, rows(30))
    first = pg_exec(pg_url, f"SELECT DISTINCT _etl_run_id, _etl_loaded_at FROM {table}")
    before = content(pg_url, table)
    sink = load(pipeline_name, table, rows(30))
    if native is not None:  # without it the upsert's own comparison skips the rows
        assert sink._batches == {"direct": 0, "staged": 0, "appended": 0, "unchanged": 3}
        assert sink._unchanged_rows == 30
    assert content(pg_url, table) == before
    assert pg_exec(pg_url, f"SELECT DISTINCT _etl_run_id, _etl_loaded_at FROM {table}") == first


def test_a_replay_with_changes_gives_the_table_of_a_full_upsert(
    pg_url: str, schema: str, pipeline_name: str
) -> None:
    changed = frozenset({3, 4, 5, 6, 17, 18, 25})  # every kind of change, in every batch
    load(pipeline_name, f"{schema}.fast", rows(30))
    sink = load(pipeline_name, f"{schema}.fast", rows(30, changed))
    load(pipeline_name + "_ref", f"{schema}.ref", rows(30))
    load(pipeline_name + "_ref", f"{schema}.ref", rows(30, changed), direct_copy=False)
    assert content(pg_url, f"{schema}.fast") == content(pg_url, f"{schema}.ref")
    assert sink._batches["staged"] == 3
    if native is not None:
        assert sink._unchanged_rows == 30 - len(changed)
    scores = dict(pg_exec(pg_url, f"SELECT id, score::text FROM {schema}.fast WHERE id IN (5, 6)"))
    assert scores == {5: "-0", 6: "0"}
    # only the changed rows carry the second run's id
    runs = pg_exec(
        pg_url,
        f"SELECT id FROM {schema}.fast WHERE _etl_run_id <> (SELECT min(_etl_run_id) "
        f"FROM {schema}.fast WHERE id = 1) ORDER BY id",
    )
    assert {r[0] for r in runs} == set(changed)


def test_a_soft_deleted_row_that_returns_is_written(
    pg_url: str, schema: str, pipeline_name: str
) -> None:
    table = f"{schema}.customers"
    load(pipeline_name, table, rows(20))
    pg_exec(pg_url, f"ALTER TABLE {table} ADD COLUMN _etl_deleted_at timestamptz")
    pg_exec(pg_url, f"UPDATE {table} SET _etl_deleted_at = now() WHERE id IN (2, 15)")
    sink = load(pipeline_name, table, rows(20))
    assert pg_exec(pg_url, f"SELECT count(*) FROM {table} WHERE _etl_deleted_at IS NOT NULL") == [
        (0,)
    ]
    assert sink._unchanged_rows == (18 if native is not None else 0)


def test_keys_out_of_order_or_spread_out_are_not_compared() -> None:
    def batch(ids: list[int]) -> pa.RecordBatch:
        return pa.RecordBatch.from_pydict({"id": pa.array(ids, pa.int64())})

    assert integer_keys(batch([1, 2, 5]), ["id"]) is not None
    assert integer_keys(batch([2, 1, 5]), ["id"]) is None  # not rising
    assert integer_keys(batch([1, 2, 100]), ["id"]) is None  # a range 33 times the rows
    assert integer_keys(batch([1, 2, 3]), ["id", "other"]) is None
    names = pa.RecordBatch.from_pydict({"id": pa.array(["a", "b"])})
    assert integer_keys(names, ["id"]) is None


# -- the compiled comparison ----------------------------------------------------------------


def _stream(table: list[list[bytes | None]]) -> bytes:
    out = b"PGCOPY\n\xff\r\n\x00" + b"\x00" * 8
    for fields in table:
        out += struct.pack(">h", len(fields))
        for f in fields:
            out += struct.pack(">i", -1) if f is None else struct.pack(">i", len(f)) + f
    return out + b"\xff\xff"


def _key(i: int) -> bytes:
    return struct.pack(">q", i)


def _numeric(ndigits: int, weight: int, sign: int, dscale: int, *digits: int) -> bytes:
    return struct.pack(">hhHh", ndigits, weight, sign, dscale) + struct.pack(
        f">{len(digits)}H", *digits
    )


@pytest.mark.skipif(native is None, reason="the compiled extension is not built")
def test_copy_changed_compares_fields_and_normalizes_numerics() -> None:
    assert native is not None
    payload = _stream(
        [
            [_key(1), b"a", b"run"],
            [_key(2), b"b", b"run"],
            [_key(3), None, b"run"],
            [_key(4), b"d", b"run"],
            [_key(7), b"g", b"run"],
        ]
    )
    existing = _stream([[_key(1), b"a"], [_key(2), b"B"], [_key(3), None], [_key(5), b"e"]])
    flags = native.copy_changed(payload, existing, b"\x01\x01\x00", 0)
    assert list(flags) == [0, 1, 0, 1, 1]  # same, changed, same NULL, missing, missing
    # 73.49 with the leading zero digits a fixed-width encoding carries, and as PostgreSQL sends it
    padded, sent = _numeric(4, 2, 0, 2, 0, 0, 73, 4900), _numeric(2, 0, 0, 2, 73, 4900)
    other_scale = _numeric(2, 0, 0, 3, 73, 4900)  # 73.490: another value for numeric
    pay = _stream([[_key(1), padded], [_key(2), padded]])
    old = _stream([[_key(1), sent], [_key(2), other_scale]])
    assert list(native.copy_changed(pay, old, b"\x01n", 0)) == [0, 1]
    zero_padded, zero = _numeric(3, 1, 0, 0, 0, 0, 0), _numeric(0, 0, 0, 0)
    pay = _stream([[_key(1), zero_padded]])
    assert list(native.copy_changed(pay, _stream([[_key(1), zero]]), b"\x01n", 0)) == [0]


@pytest.mark.skipif(native is None, reason="the compiled extension is not built")
@pytest.mark.parametrize(
    ("payload", "existing"),
    [
        (_stream([[_key(2)], [_key(1)]]), _stream([])),  # keys not rising
        (_stream([[None]]), _stream([])),  # NULL key
        (_stream([[b"abc"]]), _stream([])),  # not an integer
        (_stream([[_key(1)]])[:-5], _stream([])),  # cut inside a row
        (b"not a copy stream at all", _stream([])),
        (_stream([[_key(1)], [_key(4)]]), _stream([[_key(3)], [_key(2)]])),  # target unordered
    ],
)
def test_copy_changed_refuses_what_it_cannot_compare(payload: bytes, existing: bytes) -> None:
    assert native is not None
    with pytest.raises(ValueError):
        native.copy_changed(payload, existing, b"\x01", 0)


def test_integer_keys_are_the_batch_keys() -> None:
    keys = integer_keys(pa.RecordBatch.from_pydict({"id": pa.array([3, 4, 6], pa.int32())}), ["id"])
    assert keys is not None and keys.dtype == np.int64 and keys.tolist() == [3, 4, 6]
