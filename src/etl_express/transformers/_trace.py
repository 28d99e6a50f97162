"""Which columns a user's expression reads: it is run once on an empty batch that records
every column it is asked for.

``Derive("domain", lambda b: pc.utf8_lower(b["email"]))`` reads ``email``: the lineage of
``domain`` is ``("email",)``. An expression that looks at the batch as a whole (its
``schema``, ``columns``, ``to_pydict()``...) or passes it to a function that needs a real
``RecordBatch`` cannot be traced this way; the caller then takes the result as computed
from every column (fail closed).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pyarrow as pa


class Untraceable(Exception):
    """The expression could not be traced; ``seen`` holds the columns it read before."""

    def __init__(self, why: str, seen: tuple[str, ...]):
        super().__init__(why)
        self.seen = seen


class _RecordingBatch:
    """Stands in for the batch: hands out the empty batch's columns, noting each name."""

    def __init__(self, batch: pa.RecordBatch):
        self._batch = batch
        self._seen: list[str] = []
        self._whole = False

    def _column(self, key: Any) -> pa.Array:
        names = self._batch.schema.names
        if isinstance(key, int) and not isinstance(key, bool):
            if not -len(names) <= key < len(names):
                raise IndexError(key)
            key = names[key]
        if not isinstance(key, str):
            raise TypeError(f"column key {type(key).__name__}")
        if key not in self._seen:
            self._seen.append(key)
        i = self._batch.schema.get_field_index(key)
        # a column the batch lacks (its schema is not known yet): an empty text column
        return self._batch.column(i) if i >= 0 else pa.array([], pa.string())

    def __getitem__(self, key: Any) -> pa.Array:
        return self._column(key)

    def column(self, key: Any) -> pa.Array:
        return self._column(key)

    @property
    def num_rows(self) -> int:
        return self._batch.num_rows

    def __len__(self) -> int:
        return self._batch.num_rows

    def __getattr__(self, name: str) -> Any:
        # anything else looks at the batch as a whole: every column may be read
        self._whole = True
        return getattr(self._batch, name)


def references(
    expression: Callable[[Any], Any], schema: pa.Schema
) -> tuple[tuple[str, ...], pa.DataType | None]:
    """The columns ``expression`` reads (in the order it reads them) and the type of its
    result, from one call on an empty batch of ``schema``. Raises :class:`Untraceable`
    when the expression reads the batch as a whole or fails on it."""
    recorder = _RecordingBatch(pa.RecordBatch.from_pylist([], schema=schema))
    try:
        values = expression(recorder)
    except Exception as exc:
        raise Untraceable(type(exc).__name__, tuple(recorder._seen)) from None
    if recorder._whole:
        raise Untraceable("the expression reads the whole batch", tuple(recorder._seen))
    kind = getattr(values, "type", None)
    return tuple(recorder._seen), kind if isinstance(kind, pa.DataType) else None


__all__ = ["Untraceable", "references"]
