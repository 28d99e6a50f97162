"""Small sources and sinks shared by the reliability, quality and partition tests.

They live in an importable module (not inside a test) so that worker processes started
with ``spawn`` can unpickle them.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import pyarrow as pa

from etl_express import Batch, Source
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
