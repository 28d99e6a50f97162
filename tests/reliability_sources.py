"""Small sources and sinks shared by the reliability, quality and partition tests.

They live in an importable module (not inside a test) so that worker processes started
with ``spawn`` can unpickle them.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator, Sequence
from typing import Any

import psycopg
import pyarrow as pa

from etl_express import Anonymizer, Batch, Source, Transformer
from etl_express.sources.base import Partition


class ListSource(Source):
    """Rows from a list of dicts, resumable by index; ``schema`` declares column types."""

    def __init__(
        self,
        rows: Sequence[dict[str, Any]],
        *,
        batch_size: int = 1000,
        name: str = "list",
        schema: pa.Schema | None = None,
        primary_key: Sequence[str] = ("id",),
    ):
        self.rows = list(rows)
        self.batch_size = batch_size
        self.name = name
        self.primary_key = list(primary_key)
        self._schema = schema

    def schema(self) -> pa.Schema | None:
        return self._schema

    def read(self, position: Any = None, partition: Partition | None = None) -> Iterator[Batch]:
        start = position or 0
        for i in range(start, len(self.rows), self.batch_size):
            chunk = self.rows[i : i + self.batch_size]
            yield Batch(chunk, position=i + len(chunk))


class HashEmail(Anonymizer):
    """A stand-in anonymizer for tests: replaces ``email`` by a keyed hash."""

    columns = ("email",)

    def anonymize(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        i = batch.schema.get_field_index("email")
        if i < 0:
            return batch
        values = [
            None
            if v is None
            else "h_" + hashlib.blake2b(v.encode(), key=b"k" * 32, digest_size=8).hexdigest()
            for v in batch.column(i).to_pylist()
        ]
        return batch.set_column(i, "email", pa.array(values, pa.string()))


CUSTOMER_SCHEMA = pa.schema(
    [("id", pa.int64()), ("name", pa.string()), ("email", pa.string()), ("amount", pa.int64())]
)


def customers(n: int, start: int = 0) -> list[dict[str, Any]]:
    return [
        {"id": i, "name": f"name {i}", "email": f"person{i}@example.com", "amount": i % 1000}
        for i in range(start, start + n)
    ]


class SlowDown(Transformer):
    """Sleeps ``seconds`` per batch (so a test can interrupt a run half-way)."""

    def __init__(self, seconds: float):
        self.seconds = seconds

    def transform(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        time.sleep(self.seconds)
        return batch


def make_source_table(url: str, table: str, n: int) -> None:
    """A customers table with skewed keys: half the rows dense, half spread over 10^9."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            f"CREATE TABLE {table} (id bigint PRIMARY KEY, name text, email text, amount numeric(10,2), "
            f"created_at timestamptz, active boolean)"
        )
        conn.execute(
            f"INSERT INTO {table} SELECT CASE WHEN g <= %(half)s THEN g ELSE g * 20000 END, 'name ' || g, "
            f"'p' || g || '@example.com', (g %% 1000) / 7.0, "
            f"timestamptz '2024-01-01 00:00:00+00' + g * interval '1 minute', g %% 3 = 0 "
            f"FROM generate_series(1, %(n)s) g",
            {"n": n, "half": n // 2},
        )
        conn.execute(f"ANALYZE {table}")


def content_hash(url: str, table: str) -> tuple[int, str]:
    """Row count and an md5 over every row's content, lineage columns excluded."""
    with psycopg.connect(url) as conn:
        row = conn.execute(
            f"SELECT count(*), md5(string_agg(md5(row(id, name, email, amount, created_at, active)::text), '' "
            f"ORDER BY id)) FROM {table}"
        ).fetchone()
    assert row is not None
    return int(row[0]), str(row[1])
