"""Small sources and sinks shared by the reliability, quality and partition tests.

They live in an importable module (not inside a test) so that worker processes started
with ``spawn`` can unpickle them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from typing import Any

import pyarrow as pa

from etl_express import Anonymizer, Batch, Source
from etl_express.sources.base import Partition


class ListSource(Source):
    """Rows from a list of dicts, resumable by index; ``schema`` declares column types."""

    def __init__(self, rows: Sequence[dict[str, Any]], *, batch_size: int = 1000, name: str = "list",
                 schema: pa.Schema | None = None, primary_key: Sequence[str] = ("id",)):
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
        values = [None if v is None else "h_" + hashlib.blake2b(v.encode(), key=b"k" * 32, digest_size=8).hexdigest()
                  for v in batch.column(i).to_pylist()]
        return batch.set_column(i, "email", pa.array(values, pa.string()))


CUSTOMER_SCHEMA = pa.schema([("id", pa.int64()), ("name", pa.string()), ("email", pa.string()),
                             ("amount", pa.int64())])


def customers(n: int, start: int = 0) -> list[dict[str, Any]]:
    return [{"id": i, "name": f"name {i}", "email": f"person{i}@example.com", "amount": i % 1000}
            for i in range(start, start + n)]
