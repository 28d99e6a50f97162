"""Rows of a SQL read whose values have no exact form in the common format.

Every reader hands its Arrow batch to :func:`typed` (cast to the declared types; ``NaN`` or
``Infinity`` in a ``numeric(p, s)`` found by row) and then to :func:`positioned`, which
quarantines the rows holding such a value — and the dates and timestamps the reader flagged
(see :mod:`.datetimes`) — with a reason naming the column, and positions the batch after its
last row read. A value in an ordering column stops the read instead: no checkpoint could say
where it stands.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ...errors import SourceError
from ...format import Batch, Rejected, canonicalize, normalize_name, to_records
from ...format_types import with_declared_type
from .datetimes import quarantine_flagged, without_rows
from .positions import encode_value

#: row -> (column, value as text, reason) for each value without an exact form
Problems = dict[int, list[tuple[str, str, str]]]
_SPECIAL_NUMERICS = ("NaN", "Infinity", "-Infinity")  # a pa.array at import would load pandas


def typed(
    batch: pa.RecordBatch,
    types: dict[str, pa.DataType],
    label: str,
    declared: dict[str, str] | None = None,
) -> tuple[pa.RecordBatch, Problems]:
    """The batch cast to the columns' declared types, and the values that have no exact
    form in them (``NaN`` or ``Infinity`` in a ``numeric(p, s)``, a ``TINYINT(1)`` other
    than 0 or 1) by row: set to null here, their rows are quarantined by
    :func:`positioned`. Any other value that does not convert stops the read, naming the
    column — a column never changes type silently. Each column carries its ``declared``
    PostgreSQL type as field metadata (see :data:`etl_express.format_types.DECLARED_TYPE`)."""
    declared = declared or {}
    batch = canonicalize(_bytea_as_hex(batch, declared))
    problems: Problems = {}
    arrays = []
    fields = []
    for f, col in zip(batch.schema, batch.columns):
        want = types.get(f.name)
        if want is not None and want != f.type:
            col = _cast(col, f.name, want, problems, label)
        arrays.append(col)
        fields.append(with_declared_type(pa.field(f.name, want or f.type), declared.get(f.name)))
    return pa.RecordBatch.from_arrays(arrays, schema=pa.schema(fields)), problems


def _bytea_as_hex(batch: pa.RecordBatch, declared: dict[str, str]) -> pa.RecordBatch:
    """Bytes of columns declared ``bytea`` (MariaDB/MySQL's BLOB and BINARY types) as
    PostgreSQL's ``\\x`` hex text, the form a PostgreSQL ``bytea`` arrives in; other binary
    columns become base64 text in :func:`canonicalize`."""
    fields = batch.schema
    hexed = [
        i
        for i, f in enumerate(fields)
        if pa.types.is_binary(f.type) and declared.get(normalize_name(f.name)) == "bytea"
    ]
    if not hexed:
        return batch
    columns = list(batch.columns)
    for i in hexed:
        columns[i] = pa.array(
            [None if v is None else "\\x" + v.hex() for v in columns[i].to_pylist()],
            pa.string(),
        )
    return pa.RecordBatch.from_arrays(
        columns,
        schema=pa.schema(
            [pa.field(f.name, pa.string()) if i in hexed else f for i, f in enumerate(fields)]
        ),
    )


def _cast(col: pa.Array, name: str, want: pa.DataType, problems: Problems, label: str) -> pa.Array:
    if pa.types.is_boolean(want) and pa.types.is_integer(col.type):
        return _booleans(col, name, problems)
    try:
        return pc.cast(col, want)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    if pa.types.is_decimal(want) and pa.types.is_string(col.type):
        hit = pc.fill_null(pc.is_in(col, pa.array(_SPECIAL_NUMERICS)), False)
        for row in np.flatnonzero(hit.to_numpy(zero_copy_only=False)).tolist():
            value = col[row].as_py()
            reason = (
                f"column {name!r}: {value} has no value in decimal({want.precision},"
                f"{want.scale}); map it in the source query, e.g. NULLIF({name}, '{value}')"
            )
            problems.setdefault(row, []).append((name, value, reason))
        try:
            return pc.cast(pc.if_else(hit, pa.scalar(None, col.type), col), want)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
    raise SourceError(
        f"column {name!r} of {label}: a {col.type} value does not convert exactly to {want}",
        where={"table": label, "column": name},
        hint=f"cast the column in a query= (e.g. CAST({name} AS text)) to read it as text",
    )


def _booleans(col: pa.Array, name: str, problems: Problems) -> pa.Array:
    """Integers of a boolean column (MariaDB's ``TINYINT(1)``): 0 and 1 as false and true;
    any other value (the type holds -128..127) quarantines its row, never a silent true."""
    # NULL stays NULL (is_in says False for it, so it is excluded explicitly)
    other = pc.and_(pc.is_valid(col), pc.invert(pc.is_in(col, pa.array([0, 1], col.type))))
    for row in np.flatnonzero(other.to_numpy(zero_copy_only=False)).tolist():
        reason = (
            f"column {name!r}: a BOOLEAN (TINYINT(1)) holding a value other than 0 or 1; read "
            f"it as a number in a query=, e.g. CAST({name} AS SIGNED)"
        )
        problems.setdefault(row, []).append((name, str(col[row].as_py()), reason))
    return pc.cast(pc.if_else(other, pa.scalar(None, col.type), col), pa.bool_())


def position_of(batch: pa.RecordBatch, ordering: Sequence[str]) -> dict[str, Any]:
    """The checkpoint after ``batch``: its last row's ordering values, encoded."""
    last = batch.num_rows - 1
    return {"key": [encode_value(batch.column(c)[last].as_py()) for c in ordering]}


def positioned(
    typed: pa.RecordBatch,
    problems: Problems,
    ordering: Sequence[str],
    label: str,
    flagged: np.ndarray | None = None,
    kinds: bytes = b"",
) -> Batch:
    """A Batch positioned after its last row read, its rows quarantined where a value has
    no exact form: ``problems`` from :func:`typed`, ``flagged`` dates and timestamps from
    the reader (see :mod:`.datetimes`)."""
    batch = Batch(typed, position=position_of(typed, ordering))
    for found in problems.values():
        for name, value, _ in found:
            if name in ordering:
                raise SourceError(
                    f"the ordering column {name!r} holds {value}",
                    where={"table": label, "column": name},
                    hint="order by another column, or map it in a query=",
                )
    if flagged is not None:
        gone = np.unique(flagged[:, 0])
        batch = quarantine_flagged(batch, flagged, kinds, list(ordering))
        # the rows left have moved up past the flagged ones before them
        problems = {
            row - int(np.searchsorted(gone, row)): found
            for row, found in problems.items()
            if row not in set(gone.tolist())
        }
    batch = quarantine_rows(batch, problems) if problems else batch
    _no_null_ordering(batch, ordering, label)
    return batch


def _no_null_ordering(batch: Batch, ordering: Sequence[str], label: str) -> None:
    data = batch.data
    assert isinstance(data, pa.RecordBatch)
    for name in ordering:
        if data.column(name).null_count:
            # (NULL, key) > (x, y) is unknown in SQL: a checkpoint at such a row, or before
            # one, would skip rows, and one holding NULL would make every later read empty
            raise SourceError(
                f"the ordering column {name!r} of {label} holds NULL: no checkpoint could say "
                "where such a row stands (the rows after it would never be read)",
                where={"table": label, "column": name},
                hint=f"declare {name} NOT NULL, or order by a column without NULLs "
                f"(a query= that maps it, e.g. COALESCE({name}, ...))",
            )


def quarantine_rows(batch: Batch, problems: Problems) -> Batch:
    """``batch`` without the rows in ``problems``, which go to quarantine with their values
    written as text and reasons naming the columns; the position stays the last row read."""
    data = batch.data
    assert isinstance(data, pa.RecordBatch)
    bad = sorted(problems)
    rejected = []
    for row, record in zip(bad, to_records(data.take(pa.array(bad)))):
        record.update({name: value for name, value, _ in problems[row]})
        reason = "; ".join(why for _, _, why in problems[row])
        rejected.append(Rejected(row, record, reason, batch.position))
    return without_rows(batch, bad, rejected)


__all__ = ["Problems", "position_of", "positioned", "quarantine_rows", "typed"]
