"""Micro-benchmarks of the common-format conversions and the COPY encoders.

Run with ``pytest benchmarks/test_bench_format.py`` (pytest-benchmark); they are not part
of the test suite (``tests/``) and assert nothing about time.
"""

from __future__ import annotations

import datetime as dt
import decimal
import random

import pyarrow as pa
import pytest

from etl_express.format import add_lineage, canonicalize, records_to_batch, to_records
from etl_express.sinks.pgcopy import binary_payload, csv_payload

ROWS = 10_000
UTC = dt.timezone.utc
PG_TYPES = [
    "bigint",
    "text",
    "text",
    "text",
    "date",
    "text",
    "numeric",
    "timestamp with time zone",
    "timestamp with time zone",
    "boolean",
    "text",
]


def _records(n: int = ROWS) -> list[dict]:
    rnd = random.Random(7)
    start = dt.datetime(2020, 1, 1, tzinfo=UTC)
    return [
        {
            "id": i,
            "full_name": f"Иванов Иван {i}",
            "email": f"client.{i}@mail.ru",
            "phone": f"+79{rnd.randrange(10**9):09d}",
            "birth_date": dt.date(1950, 1, 1) + dt.timedelta(days=i % 20000),
            "city": "Москва",
            "balance": decimal.Decimal(f"{rnd.randrange(10**8)}.{i % 100:02d}"),
            "created_at": start + dt.timedelta(seconds=61 * i),
            "updated_at": start + dt.timedelta(seconds=67 * i),
            "is_active": i % 7 != 0,
            "notes": None if i % 3 else f"Перезвонить на +7 999 {i:07d}",
        }
        for i in range(n)
    ]


@pytest.fixture(scope="module")
def records() -> list[dict]:
    return _records()


@pytest.fixture(scope="module")
def batch(records: list[dict]) -> pa.RecordBatch:
    converted, rejected = records_to_batch(records)
    assert not rejected
    return converted


def test_records_to_batch(benchmark, records: list[dict]) -> None:
    converted, _ = benchmark(records_to_batch, records)
    assert converted.num_rows == ROWS


def test_to_records(benchmark, batch: pa.RecordBatch) -> None:
    assert len(benchmark(to_records, batch)) == ROWS


def test_canonicalize_adbc_shaped_batch(benchmark, batch: pa.RecordBatch) -> None:
    # what ADBC hands over: CamelCase-free names, int32 ids, naive timestamps, numeric as text
    raw = batch.set_column(0, "ID", batch.column(0).cast(pa.int32()))
    raw = raw.set_column(6, "balance", raw.column(6).cast(pa.string()))
    raw = raw.set_column(7, "created_at", raw.column(7).cast(pa.timestamp("us")))
    assert benchmark(canonicalize, raw).schema.field("id").type == pa.int64()


def test_add_lineage(benchmark, batch: pa.RecordBatch) -> None:
    now = dt.datetime.now(UTC)
    assert (
        benchmark(add_lineage, batch, "run", "customers", now).num_columns == batch.num_columns + 3
    )


def test_copy_binary_payload(benchmark, batch: pa.RecordBatch) -> None:
    chunks = benchmark(binary_payload, batch, PG_TYPES)
    assert chunks is not None


def test_copy_csv_payload(benchmark, batch: pa.RecordBatch) -> None:
    assert len(benchmark(csv_payload, batch)) > 0


def test_copy_decode(benchmark, batch: pa.RecordBatch) -> None:
    """The PostgreSQL reader's decoder on the binary COPY rows of the batch (what
    ``SQLSource`` does with the stream ``COPY ... TO STDOUT (FORMAT binary)`` sends)."""
    from etl_express._speedups import native

    if native is None:
        pytest.skip("etl_express._native was not built")
    chunks = binary_payload(batch, PG_TYPES)
    assert chunks is not None
    data = b"".join(bytes(c) for c in chunks)
    kinds = b"qsssDsnTTbs"
    end, rows, finished, _, _ = benchmark(native.copy_decode, data, 19, kinds, ROWS + 1)
    assert (end, rows, finished) == (len(data), ROWS, True)
