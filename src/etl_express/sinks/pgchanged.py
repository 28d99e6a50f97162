"""Which rows of an upsert batch would change the target; the others need no write.

A replayed batch (a run started again from an older checkpoint, a source that sends rows
again) mostly holds rows the target already has, unchanged. Upserting them costs PostgreSQL
an index probe, a row lock, a new row version, an index entry and their WAL for every row:
several times the cost of loading the row in the first place. Here, when the batch is keyed
by one integer column and its keys rise strictly within a dense range, the target's rows in
that range are read back with one index range scan, as PostgreSQL's binary COPY output of
the columns the batch writes, and compared with the batch's own binary COPY payload field by
field in compiled code (``_native.copy_changed``). Binary COPY fields of one column type
are byte for byte equal exactly when the values are identical (``1.0`` and ``1.00``,
``0.0`` and ``-0.0`` differ), so a row found equal is skipped and only new and changed rows
are upserted.

The lineage values that change with every run, ``_etl_run_id`` and ``_etl_loaded_at``, are
not compared: a row that did not change keeps the lineage of the run that last changed it.
A soft-deleted row (``_etl_deleted_at`` set) counts as changed, so its return clears the mark.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
from psycopg import sql

from .. import _speedups
from .._arrays import integer_values
from ..format import DELETED_AT, LOADED_AT, RUN_ID

#: lineage values that differ on every run: not what makes a row changed
RUN_LINEAGE = frozenset((RUN_ID, LOADED_AT))
#: the read-back scans the key range: at most this many times the batch's rows
MAX_RANGE_FACTOR = 4


def integer_keys(
    batch: pa.RecordBatch, primary_key: Sequence[str], *, dense: bool = True
) -> np.ndarray | None:
    """The batch's keys when it is keyed by one integer column without NULLs, in strictly
    rising order (and, ``dense``, over a range at most :data:`MAX_RANGE_FACTOR` times its row
    count); else ``None``."""
    if len(primary_key) != 1 or batch.num_rows == 0:
        return None
    key = batch.column(primary_key[0])
    if not pa.types.is_integer(key.type) or pa.types.is_uint64(key.type) or key.null_count:
        return None  # (uint64 values may not fit the int64 the comparison orders by)
    if not keys_rising(batch, primary_key):
        return None
    values = integer_values(key).astype(np.int64, copy=False)
    span = int(values[-1]) - int(values[0]) + 1
    return values if not dense or span <= MAX_RANGE_FACTOR * len(values) else None


def keys_rising(batch: pa.RecordBatch, primary_key: Sequence[str]) -> bool:
    """Whether the batch's key columns are integers without NULLs whose rows rise strictly
    in key order (lexicographic over the key's columns): then no key repeats. One vectorised
    pass per key column, no hashing."""
    if not primary_key:
        return False
    columns = [batch.column(name) for name in primary_key]
    if any(not pa.types.is_integer(c.type) or c.null_count for c in columns):
        return False
    rising = np.zeros(max(batch.num_rows - 1, 0), dtype=bool)  # decided: greater
    tied = np.ones_like(rising)  # equal in every column so far
    for column in columns:
        values = integer_values(column)  # not to_numpy: it imports pandas
        before, after = values[:-1], values[1:]
        rising |= tied & (after > before)
        tied &= after == before
    return bool(rising.all())


def any_in_range(cur: Any, target: sql.Composable, key: str, keys: np.ndarray) -> bool:
    """Whether the target holds a row with a key between the batch's first and last (one
    index probe)."""
    row = cur.execute(
        sql.SQL("SELECT EXISTS (SELECT 1 FROM {} WHERE {} BETWEEN %s AND %s)").format(
            target, sql.Identifier(key)
        ),
        (int(keys[0]), int(keys[-1])),
    ).fetchone()
    return bool(row and row[0])


def changed_rows(
    cur: Any,
    target: sql.Composable,
    names: Sequence[str],
    target_columns: Mapping[str, str],
    key: str,
    keys: np.ndarray,
    payload: bytes,
) -> np.ndarray | None:
    """A boolean mask of the rows of ``payload`` (the batch's binary COPY stream of the
    columns ``names``, in payload order, into a target of ``target_columns``: name -> type)
    that are new or differ from the target's, or ``None`` when they cannot be compared here
    (no compiled extension, an unexpected stream): then write them all."""
    columns = {n: target_columns.get(n, "") for n in names}
    soft_deletes = DELETED_AT in target_columns and DELETED_AT not in names
    native = _speedups.native
    if native is None:
        return None
    compared = [n for n in names if n not in RUN_LINEAGE]
    where = sql.SQL("{} BETWEEN {} AND {}").format(
        sql.Identifier(key), sql.Literal(int(keys[0])), sql.Literal(int(keys[-1]))
    )
    if soft_deletes:  # a soft-deleted row is written again: its return clears the mark
        where = where + sql.SQL(" AND {} IS NULL").format(sql.Identifier(DELETED_AT))
    query = sql.SQL(
        "COPY (SELECT {} FROM {} WHERE {} ORDER BY {}) TO STDOUT (FORMAT binary)"
    ).format(sql.SQL(", ").join(map(sql.Identifier, compared)), target, where, sql.Identifier(key))
    existing = read_copy(cur, query)
    # b"n": a numeric, compared without the zero digits the payload may carry
    compare = b"".join(
        b"\x00" if n in RUN_LINEAGE else b"n" if t == "numeric" else b"\x01"
        for n, t in columns.items()
    )
    try:
        flags = native.copy_changed(payload, existing, compare, names.index(key))
    except ValueError:
        return None
    if len(flags) != len(keys):
        return None
    return np.frombuffer(flags, dtype=np.bool_)


def read_copy(cur: Any, query: sql.Composable) -> bytes:
    """The whole output of a ``COPY ... TO STDOUT`` on the cursor's connection: drained from
    libpq by the compiled ``copy_drain`` (GIL released) where it can be, else through
    psycopg (a Python call a row)."""
    import psycopg

    from ..sources.sql.pgbinary import libpq_functions

    native, functions = _speedups.native, libpq_functions()
    conn = cur.connection
    if native is None or functions is None:
        with cur.copy(query) as copy:
            return b"".join(bytes(chunk) for chunk in copy)
    get, free = functions
    pgconn = conn.pgconn
    with conn.lock:
        result = pgconn.exec_(query.as_bytes(conn))
        if result.status != psycopg.pq.ExecStatus.COPY_OUT:
            raise psycopg.errors.error_from_result(result, encoding=conn.info.encoding)
        chunks, state = [], 0
        while state == 0:
            data, state = native.copy_drain(pgconn.pgconn_ptr, get, free, 1 << 30, 64 << 20)
            chunks.append(data)
        failed = state == -2
        while (result := pgconn.get_result()) is not None:
            if result.status != psycopg.pq.ExecStatus.COMMAND_OK:
                raise psycopg.errors.error_from_result(result, encoding=conn.info.encoding)
        if failed:
            raise psycopg.OperationalError(
                "reading the target's rows failed: "
                + pgconn.error_message.decode(errors="replace").strip()
            )
    return b"".join(chunks)


__all__ = [
    "RUN_LINEAGE",
    "any_in_range",
    "changed_rows",
    "integer_keys",
    "keys_rising",
    "read_copy",
]
