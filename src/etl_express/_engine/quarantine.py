"""Quarantine: keep the bad rows out, let the rest of the batch land.

A record goes to ``etl_express.quarantine`` when it cannot be converted to the common
format (stage ``convert``), when a source rejects it itself (stage ``source``), or when the
target refuses it (stage ``sink``: NOT NULL, CHECK, a unique key other than the primary
key, a value too long...). For the sink stage the batch is written under a savepoint; when
the write fails on a row-level error (SQLSTATE class 22 or 23) the savepoint is rolled back
and the batch is bisected, each half under its own savepoint, until the bad rows are
isolated — O(bad x log n) writes, all in the batch's transaction, so the good rows, the
quarantined ones and the checkpoint commit together.

Stored records are anonymized (the sink stage stores the already anonymized row; a record
rejected by the source, the conversion or a transformer is anonymized by lineage under the
names it had at that step: :meth:`etl_express._privacy.PrivacyPlan.protect_record`) and
reasons never contain values (:func:`etl_express._privacy.safe_db_message`).

:func:`~etl_express._engine.replay.replay` re-submits quarantined records once their cause
is fixed (for example a constraint on the target was relaxed, or a transformer now casts the
column).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
from sqlalchemy.engine import Connection

from ..errors import ETLError, SinkError, safe_pg_message
from ..format import LINEAGE_COLUMNS, to_records
from ..retry import sqlstate
from ..sinks.base import Sink

#: a batch with more rows refused by the target than this fails instead of being bisected
BISECT_LIMIT = 1000


def is_row_error(exc: BaseException) -> bool:
    """Did the target refuse some row's data (rather than fail as a whole)?"""
    state = sqlstate(exc)
    if state is not None:
        return state[:2] in ("22", "23")
    return getattr(exc, "row_error", False) is True


_STAGE_RELATION = re.compile(r'relation "_etl_stage_\w+"')


def row_reason(exc: BaseException, table: str | None = None) -> str:
    """Why the target refused a row, without any value from the row (``table`` replaces
    the name of the sink's staging table in PostgreSQL's message)."""
    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        diag = getattr(e, "diag", None)  # a psycopg error's diagnostics
        if diag is not None:
            reason = safe_pg_message(e)
            constraint = getattr(diag, "constraint_name", None)
            if constraint and constraint not in reason:
                reason += f" [constraint {constraint}]"
            if table:
                reason = _STAGE_RELATION.sub(f'relation "{table}"', reason)
            return reason
        e = e.__cause__ or e.__context__
    if isinstance(exc, ETLError):
        return exc.what
    return type(exc).__name__


@dataclass
class SinkOutcome:
    """What a batch write did: rows written and the rows refused, as (index, reason)."""

    written: int = 0
    refused: list[tuple[int, str]] = field(default_factory=list)


def write_isolating(
    conn: Connection,
    sink: Sink,
    batch: pa.RecordBatch,
    primary_key: Sequence[str],
    *,
    guarded: bool = True,
) -> SinkOutcome:
    """Write ``batch``, isolating rows the target refuses by bisection under savepoints.

    ``guarded=False``: first without any savepoint where the sink allows it
    (``write_unguarded``: a PostgreSQL table it created in this run); a refused row then
    fails the whole transaction, and the caller redoes it guarded."""
    outcome = SinkOutcome()
    table = getattr(sink, "table", None)
    if batch.num_rows == 0:
        return outcome
    # DDL (create, add column, widen) happens outside the savepoints, so it survives them
    sink.prepare(conn, batch.schema, primary_key)
    unguarded = None if guarded else getattr(sink, "write_unguarded", None)
    if unguarded is not None:
        written = unguarded(conn, batch, primary_key)
        if written is not None:
            outcome.written = written
            return outcome

    # an explicit stack, not a recursive closure: a closure that calls itself is a reference
    # cycle, which would keep every batch alive until the cyclic garbage collector runs
    pending = [(0, batch.num_rows)]
    while pending:
        lo, hi = pending.pop()
        try:
            with conn.begin_nested():
                outcome.written += sink.write(conn, batch.slice(lo, hi - lo), primary_key)
            continue
        except Exception as exc:
            if not is_row_error(exc):
                raise
            if hi - lo == 1:
                outcome.refused.append(
                    (lo, row_reason(exc, table if isinstance(table, str) else None))
                )
                if len(outcome.refused) > BISECT_LIMIT:
                    raise SinkError(
                        f"more than {BISECT_LIMIT} rows of one batch were refused by the target, "
                        f"e.g.: {outcome.refused[0][1]}",
                        hint="fix the target's constraints or the data (a transformer) and run again",
                    ) from None
                continue
        mid = (lo + hi) // 2
        pending += [(mid, hi), (lo, mid)]  # the lower half first, as before
    outcome.refused.sort()
    return outcome


def refused_records(
    batch: pa.RecordBatch, refused: Sequence[tuple[int, str]]
) -> list[tuple[dict[str, Any], str]]:
    """The refused rows as JSON-like records without lineage columns, with their reasons."""
    keep = [i for i, n in enumerate(batch.schema.names) if n not in LINEAGE_COLUMNS]
    out = []
    for index, reason in refused:
        row = batch.slice(index, 1).select(keep)
        out.append((to_records(row)[0], reason))
    return out


def drop_rows(batch: pa.RecordBatch, indices: Sequence[int]) -> pa.RecordBatch:
    if not indices:
        return batch
    bad = set(indices)
    return batch.take(pa.array([i for i in range(batch.num_rows) if i not in bad], type=pa.int64()))


__all__ = [
    "BISECT_LIMIT",
    "SinkOutcome",
    "drop_rows",
    "is_row_error",
    "refused_records",
    "row_reason",
    "write_isolating",
]
