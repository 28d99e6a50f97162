"""The statements of one batch's write into PostgreSQL: the COPY, the direct COPY (straight
into the target under a savepoint, blind attempts spaced out after a miss), the staging upsert,
and the in-batch dedupe that makes a batch's keys unique first.

:class:`~.postgres.PostgresSink` decides which way a batch goes (straight in, only its changed
rows, or staged); this module holds how each way is spoken to the server. A staged upsert
COPies the batch into a temporary table and merges it with one ``INSERT ... SELECT ... ON
CONFLICT (key) DO UPDATE`` that leaves an unchanged row (and its lineage) as it is.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
import pyarrow as pa
import pyarrow.compute as pc
from psycopg import sql
from psycopg.copy import QueuedLibpqWriter

from ..format import DELETED_AT
from .pgchanged import RUN_LINEAGE, keys_rising
from .pgcopy import CopyPayload


def dedupe_last(batch: pa.RecordBatch, primary_key: Sequence[str]) -> pa.RecordBatch:
    """Keep the last row of each primary key (a batch may carry one key twice)."""
    if not primary_key or batch.num_rows < 2 or keys_rising(batch, primary_key):
        return batch  # keyset order (a source read by its key): unique without hashing
    table = pa.Table.from_batches([batch])
    if (
        len(primary_key) == 1
        and pc.count_distinct(table.column(primary_key[0]), mode="all").as_py() == batch.num_rows
    ):
        return batch
    idx = pa.array(range(batch.num_rows), type=pa.int64())
    grouped = (
        table.append_column("__row", idx)
        .group_by(list(primary_key), use_threads=False)
        .aggregate([("__row", "max")])
    )
    if grouped.num_rows == batch.num_rows:
        return batch
    last = grouped.column("__row_max").combine_chunks()
    return batch.take(pc.take(last, pc.sort_indices(last)))


def upsert_staged(
    cur: psycopg.Cursor[Any],
    target: sql.Composable,
    stage_name: str,
    names: Sequence[str],
    cols: sql.Composable,
    payload: CopyPayload,
    primary_key: Sequence[str],
    columns: Mapping[str, str],
) -> None:
    """COPY into a temporary staging table, then one INSERT ... ON CONFLICT DO UPDATE into
    ``target`` (whose columns are ``columns``: a soft-deleted row that comes back is undeleted)."""
    stage = sql.Identifier(stage_name)
    # only the columns written, without the target's constraints: a NOT NULL column with a
    # default that someone else added to the target is filled by its default on insert and
    # kept on update; LIKE would copy its NOT NULL to the stage and refuse every row
    cur.execute(
        sql.SQL(
            "CREATE TEMP TABLE IF NOT EXISTS {} ON COMMIT DROP AS SELECT {} FROM {} WITH NO DATA"
        ).format(stage, cols, target)
    )
    copy_rows(cur, stage, cols, payload)
    non_key = [n for n in names if n not in primary_key]
    sets = [
        sql.SQL("{} = EXCLUDED.{}").format(sql.Identifier(n), sql.Identifier(n)) for n in non_key
    ]
    undeletes = DELETED_AT in columns and DELETED_AT not in names
    if undeletes:
        sets.append(sql.SQL("{} = NULL").format(sql.Identifier(DELETED_AT)))  # it is back
    action = sql.SQL("DO UPDATE SET ") + sql.SQL(", ").join(sets) if sets else sql.SQL("DO NOTHING")
    compared = [n for n in non_key if n not in RUN_LINEAGE]
    if sets and compared:  # an unchanged row is not rewritten (and keeps its lineage)
        action += sql.SQL(" WHERE record_image_ne(ROW({}), ROW({}))").format(
            sql.SQL(", ").join(sql.SQL("t.{}").format(sql.Identifier(n)) for n in compared),
            sql.SQL(", ").join(sql.SQL("EXCLUDED.{}").format(sql.Identifier(n)) for n in compared),
        )
        if undeletes:
            action += sql.SQL(" OR t.{} IS NOT NULL").format(sql.Identifier(DELETED_AT))
    cur.execute(
        sql.SQL("INSERT INTO {} AS t ({}) SELECT {} FROM {} ON CONFLICT ({}) ").format(
            target, cols, cols, stage, sql.SQL(", ").join(map(sql.Identifier, primary_key))
        )
        + action
    )
    cur.execute(sql.SQL("DROP TABLE {}").format(stage))


def copy_rows(
    cur: psycopg.Cursor[Any], target: sql.Composable, cols: sql.Composable, payload: CopyPayload
) -> int:
    """Send the payload; a writer thread pushes it to the socket while the next slice
    encodes. Returns the rows PostgreSQL copied (its ``COPY n`` command tag). A CSV payload
    with naive UTC timestamps is read with the session's TimeZone at UTC, restored after."""
    statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT {})").format(
        target, cols, sql.SQL(payload.format)
    )
    with (
        utc_session(cur, payload.naive_utc),
        cur.copy(statement, writer=QueuedLibpqWriter(cur)) as copy,
    ):
        for chunk in payload:
            copy.write(chunk)
    return cur.rowcount


class DirectCopy:
    """COPY a batch straight into the target, inside a savepoint, spacing out blind attempts.

    When no key of the batch is in the target yet (an initial load, an append-only
    source), a plain COPY gives exactly the rows an upsert would, in one pass instead of
    two. A unique violation (a key already there, or committed meanwhile by another
    writer) rolls the savepoint back and the caller upserts instead. ``blind`` attempts,
    made without knowing whether keys exist, are spaced out after such a miss (1, 2, 4
    ... batches), so a source that mostly updates existing keys pays for a failed COPY
    only rarely.
    """

    def __init__(self) -> None:
        self._backoff = 0
        self._skip = 0

    def copy(
        self,
        cur: psycopg.Cursor[Any],
        target: sql.Composable,
        cols: sql.Composable,
        payload: CopyPayload,
        *,
        blind: bool,
        guarded: bool = True,
    ) -> int | None:
        """The rows PostgreSQL copied, or ``None`` when a key exists (the savepoint rolled
        back) or a blind attempt is being spaced out. ``guarded=False``: no savepoint, a
        unique violation raises (for a caller that redoes the whole transaction with
        savepoints when it fails)."""
        if blind and self._skip > 0:
            self._skip -= 1
            return None
        if guarded:
            cur.execute("SAVEPOINT _etl_direct_copy")
        try:
            copied = copy_rows(cur, target, cols, payload)
        except psycopg.errors.UniqueViolation:
            if not guarded:  # the caller redoes the transaction under savepoints
                raise
            cur.execute("ROLLBACK TO SAVEPOINT _etl_direct_copy")
            if blind:
                self._backoff = min(max(2 * self._backoff, 1), 1024)
                self._skip = self._backoff
            return None
        if guarded:
            cur.execute("RELEASE SAVEPOINT _etl_direct_copy")
        if blind:
            self._backoff = 0
        return copied


def column_list(batch: pa.RecordBatch) -> sql.Composed:
    return sql.SQL(", ").join(map(sql.Identifier, batch.schema.names))


@contextmanager
def lock_timeout(cur: psycopg.Cursor[Any], seconds: float | None) -> Iterator[None]:
    """The schema changes inside wait at most ``seconds`` for other sessions' locks, readers'
    among them (a waiting ``ALTER TABLE`` stalls every reader queued behind it); ``None``:
    as long as it takes. Set for the rest of the transaction only while inside."""
    if seconds is None:
        yield
        return
    cur.execute(
        sql.SQL("SET LOCAL lock_timeout = {}").format(sql.Literal(f"{int(seconds * 1000)}ms"))
    )
    yield
    cur.execute("SET LOCAL lock_timeout TO DEFAULT")


@contextmanager
def utc_session(cur: psycopg.Cursor[Any], needed: bool) -> Iterator[None]:
    """Read the CSV payload's naive timestamps as UTC, then restore the session's TimeZone."""
    if not needed:
        yield
        return
    row = cur.execute(
        "SELECT current_setting('TimeZone'), set_config('TimeZone', 'UTC', true)"
    ).fetchone()
    yield
    cur.execute("SELECT set_config('TimeZone', %s, true)", (row[0],))  # type: ignore[index]


__all__ = [
    "DirectCopy",
    "column_list",
    "copy_rows",
    "dedupe_last",
    "lock_timeout",
    "upsert_staged",
    "utc_session",
]
