"""A small in-memory source of dicts for pipeline tests."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import pyarrow as pa

from etl_express import Batch, Source


class ListSource(Source):
    """Yields ``rows`` (dicts) in batches, resumable by index."""

    def __init__(
        self,
        rows: list[dict[str, Any]],
        *,
        schema: pa.Schema | None = None,
        batch_size: int = 10,
        pii: Sequence[str] = (),
        name: str = "list",
    ):
        self.rows = rows
        self._schema = schema
        self.batch_size = batch_size
        self.pii = list(pii)
        self.name = name
        self.primary_key = ["id"]

    def read(self, position: Any = None, partition: Any = None) -> Iterator[Batch]:
        start = position or 0
        for i in range(start, len(self.rows), self.batch_size):
            chunk = self.rows[i : i + self.batch_size]
            yield Batch(chunk, position=i + len(chunk))

    def schema(self) -> pa.Schema | None:
        return self._schema
