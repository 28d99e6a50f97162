"""A batch's rows as a PostgreSQL source's binary COPY sent them, for a sink that would
encode the same values again.

Logic: the PostgreSQL source reads ``COPY ... TO STDOUT (FORMAT binary)`` and decodes each
batch into Arrow (``sources/sql/pgbinary.py``); ``PostgresSink`` encodes Arrow back into
binary COPY (``sinks/pgcopy.py``): for a plain copy of a table, 18 ms of CPU per 50,000 rows
of the benchmark table spent to rebuild values the source had already sent in that form.
The source keeps each batch's row bytes beside it (:class:`SourceRows`, in ``Batch.meta``
under :data:`SOURCE_ROWS`) with the PostgreSQL type of each column and the identity of the
Arrow buffers it decoded them into; the batch loop offers them to the sink while it commits
that batch (:func:`offer`). The sink sends them instead of encoding only when
:func:`rows_for` finds every column of what it writes to be exactly those buffers, in the
same order (Arrow buffers are immutable: no transformer or anonymizer changed a value, no row
was dropped or reordered), and every target column of the source column's type (so the
target's receive function is the counterpart of the source's send function — PostgreSQL's
own binary dump and restore). Anything else — a changed column, a quarantined row, a column
read as text, another type at the target — encodes as before.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

import pyarrow as pa

#: the key of a batch's :class:`SourceRows` in ``Batch.meta``
SOURCE_ROWS = "etl_express.source_rows"

#: PostgreSQL type OIDs whose binary form a target column of the same type (as the catalog's
#: ``data_type`` names it) receives unchanged
DATA_TYPES = {
    16: "boolean",
    17: "bytea",
    20: "bigint",
    21: "smallint",
    23: "integer",
    25: "text",
    700: "real",
    701: "double precision",
    1042: "character",
    1043: "character varying",
    1082: "date",
    1114: "timestamp without time zone",
    1184: "timestamp with time zone",
    1700: "numeric",
    2950: "uuid",
    3802: "jsonb",
}

Signature = tuple[tuple[object, ...], ...]


@dataclass(frozen=True)
class SourceRows:
    """A batch's rows as the source sent them: the binary COPY tuples (no header, no
    trailer), the catalog type of each column (``None``: not one :data:`DATA_TYPES` knows),
    and the identity of the Arrow columns decoded from them (:func:`signature`)."""

    rows: memoryview
    types: tuple[str | None, ...]
    columns: Signature

    def describes(self, batch: pa.RecordBatch) -> bool:
        """Whether ``batch``'s columns are still exactly the ones decoded from these rows."""
        return signature(batch.columns) == self.columns


def signature(columns: Sequence[pa.Array]) -> Signature:
    """Per column: its type, its buffers' addresses, its offset and its length."""
    return tuple(
        (
            str(col.type),
            *(b.address if b is not None else 0 for b in col.buffers()),
            col.offset,
            len(col),
        )
        for col in columns
    )


def source_rows(rows: memoryview, oids: Sequence[int], batch: pa.RecordBatch) -> SourceRows:
    return SourceRows(rows, tuple(DATA_TYPES.get(o) for o in oids), signature(batch.columns))


_offered: ContextVar[SourceRows | None] = ContextVar("etl_express_source_rows", default=None)


@contextmanager
def offer(rows: SourceRows | None) -> Iterator[None]:
    """Offer the source's bytes of the batch being committed to the sink that writes it."""
    token = _offered.set(rows)
    try:
        yield
    finally:
        _offered.reset(token)


def rows_for(batch: pa.RecordBatch, target_types: Sequence[str]) -> memoryview | None:
    """The offered source bytes when they are exactly ``batch``'s rows, every column of
    ``target_types`` (the target columns' catalog types, in ``batch``'s order) the source
    column's type; else ``None`` (encode the batch)."""
    offered = _offered.get()
    if offered is None or len(offered.types) != batch.num_columns:
        return None
    if any(s is None or s != t for s, t in zip(offered.types, target_types)):
        return None
    return offered.rows if offered.describes(batch) else None


__all__ = ["DATA_TYPES", "SOURCE_ROWS", "SourceRows", "offer", "rows_for", "signature"]
