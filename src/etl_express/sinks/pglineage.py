"""A first load's lineage values kept out of its rows: the columns are added after the load.

Logic: every row a run writes carries the same three lineage values (the run's id, the
source's name and the run's start, see :func:`etl_express.format.add_lineage`): 65 bytes a
row of the 1,000,000-row benchmark table's 300, which the client encodes and sends, and the
target parses, stores, logs and reads back, for values that never change within the run.
While a :class:`PostgresSink` bulk-loads a table it created in this run (keyless until the
end, COPied straight in), the table has no lineage columns yet: the first batch records the
run's values in the table's comment (:func:`defer`, in the batch's own transaction, so no
row without lineage columns is ever committed without them), and each batch whose lineage
equals them is COPied without the three columns, while they are still absent (another
writer of the table, a partition of the same load, may have added them: checked under the
COPY's lock, :func:`absent`). The statement that gives the table its primary key at the end
of the load (holding the table's exclusive lock anyway) adds the columns with those values
as their DEFAULTs (:func:`materialize`): PostgreSQL keeps such a value once, in the
catalog, for every row already there (no rewrite, no byte per row), and the defaults are
dropped again right after, so a later row never inherits them. Every row then reads exactly
the lineage of the run that wrote it. Whoever writes a row with its lineage first — a batch
of other lineage, another writer, the next run after a load that stopped early — adds the
columns the same way before it writes. Readers of a table during its first load see it
without the lineage columns (and without its key); both appear with the last batch.
Measured on the benchmark table: the target's COPY 1.71 → 1.37 s of CPU, the heap 15%
smaller.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from typing import Any

import psycopg
import pyarrow as pa
import pyarrow.compute as pc
from psycopg import sql

from .._arrays import integer_values
from .._copybytes import rows_for
from ..format import LINEAGE_COLUMNS, LOADED_AT, RUN_ID, SOURCE, TIMESTAMP
from .pgcopy import CopyPayload, copy_payload, source_payload
from .pgwrite import column_list
from .pgwrite import lock_timeout as waiting_at_most

#: the lineage columns' values of a run, as Arrow scalars taken from its first batch
LineageValues = dict[str, pa.Scalar]
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)


def constant_lineage(batch: pa.RecordBatch) -> LineageValues | None:
    """The batch's lineage values when each lineage column holds one value in every row;
    else ``None``."""
    if batch.num_rows == 0 or not deferrable(batch.schema):
        return None
    values = {n: batch.column(n)[0] for n in LINEAGE_COLUMNS}
    return values if matches(batch, values) else None


def matches(batch: pa.RecordBatch, values: LineageValues) -> bool:
    """Whether every row of ``batch`` holds exactly ``values`` in the lineage columns."""
    for name, value in values.items():
        if name not in batch.schema.names:
            return False
        col = batch.column(name)
        if col.null_count or not col.type.equals(value.type):
            return False
        if not pc.all(pc.equal(col, value)).as_py():
            return False
    return True


def without_lineage(batch: pa.RecordBatch) -> pa.RecordBatch:
    keep = [i for i, n in enumerate(batch.schema.names) if n not in LINEAGE_COLUMNS]
    return pa.RecordBatch.from_arrays(
        [batch.column(i) for i in keep], schema=pa.schema([batch.schema.field(i) for i in keep])
    )


def slim_copy(
    batch: pa.RecordBatch, columns: Mapping[str, str]
) -> tuple[sql.Composed, CopyPayload, bool]:
    """``batch`` without its lineage columns, as a COPY's column list and payload into a
    table of ``columns`` (name -> type): the rows as the source sent them when nothing
    changed them (:mod:`etl_express._copybytes`; then ``True``), else encoded."""
    slim = without_lineage(batch)
    pg_types = [columns.get(n, "") for n in slim.schema.names]
    sent = rows_for(slim, pg_types)
    payload = copy_payload(slim, pg_types) if sent is None else source_payload(sent)
    return column_list(slim), payload, sent is not None


#: the types the lineage columns are created with (``add_lineage``'s Arrow types)
LINEAGE_TYPES = {RUN_ID: "text", SOURCE: "text", LOADED_AT: "timestamp with time zone"}
#: how a table's comment says which lineage its rows without lineage columns hold
_MARK = "etl_express pending lineage "


def deferrable(schema: pa.Schema) -> bool:
    """Whether a batch of ``schema`` can leave its lineage columns to :func:`materialize`:
    it has the three, of the types :func:`~etl_express.format.add_lineage` gives them."""
    if any(n not in schema.names for n in LINEAGE_COLUMNS):
        return False
    types = [schema.field(n).type for n in LINEAGE_COLUMNS]
    return pa.types.is_string(types[0]) and pa.types.is_string(types[1]) and types[2] == TIMESTAMP


def defer(cur: psycopg.Cursor[Any], target: sql.Composable, values: LineageValues) -> None:
    """Record ``values`` as the lineage of the rows written without lineage columns (in the
    transaction of the first such rows)."""
    text = json.dumps({n: _text(n, v) for n, v in values.items()})
    cur.execute(sql.SQL("COMMENT ON TABLE {} IS {}").format(target, sql.Literal(_MARK + text)))


def created_pending(target: sql.Composable) -> sql.Composed:
    """The statement marking a table created without its lineage columns, with its
    ``CREATE TABLE``: nothing recorded yet (``{}``; the first batch records its values,
    :func:`defer`). A load killed before its first batch committed leaves the table marked,
    so the next run knows it for a first load's and completes it (:func:`materialize` adds
    the columns, empty, and the key is built) rather than taking it for a table of its own.
    """
    return sql.SQL("COMMENT ON TABLE {} IS {}").format(target, sql.Literal(_MARK + "{}"))


def unfinished(cur: psycopg.Cursor[Any], target: sql.Composable, key: list[str]) -> bool:
    """Whether ``target`` exists and a first load of etl-express left it unfinished: its
    lineage columns pending (:func:`defer`, :func:`created_pending`), or the lineage columns
    there but no unique index on ``key``. A catalog read without locks, for a run that wrote
    nothing to complete what a killed run left (:meth:`PostgresSink.finish_load`)."""
    name = sql.Literal(target.as_string(cur))
    cur.execute(
        sql.SQL(
            "SELECT obj_description(to_regclass({0}), 'pg_class'), EXISTS ({1}), "
            "EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = to_regclass({0}) "
            "AND i.indisunique AND i.indpred IS NULL AND (SELECT array_agg(a.attname::text "
            "ORDER BY a.attname) FROM pg_attribute a WHERE a.attrelid = i.indrelid "
            "AND a.attnum = ANY(i.indkey)) = {2}), to_regclass({0}) IS NOT NULL"
        ).format(
            name,
            sql.SQL(
                "SELECT 1 FROM pg_attribute a WHERE a.attrelid = to_regclass({}) "
                "AND a.attname = {} AND a.attnum > 0 AND NOT a.attisdropped"
            ).format(name, sql.Literal(RUN_ID)),
            sql.Literal(sorted(key)),
        )
    )
    row = cur.fetchone()
    if row is None or not row[3]:
        return False
    comment, lineage, keyed = row[0] or "", row[1], row[2]
    return (not lineage and comment.startswith(_MARK)) or (lineage and not keyed)


def absent(cur: psycopg.Cursor[Any], target: sql.Composable) -> bool:
    """Whether the table still has none of the lineage columns, checked under the lock the
    COPY takes anyway: another writer of the table (a partition of the same load) may have
    added them; from here to the commit it cannot."""
    # one round trip for both (a statement without parameters may hold several): this runs
    # before every batch's COPY, while the target waits for it
    cur.execute(
        sql.SQL("LOCK TABLE {} IN ROW EXCLUSIVE MODE; ").format(target)
        + _PRESENT.format(sql.Literal(target.as_string(cur)), sql.Literal(list(LINEAGE_COLUMNS)))
    )
    cur.nextset()
    return not cur.fetchall()


def pending(cur: psycopg.Cursor[Any], target: sql.Composable) -> dict[str, Any] | None:
    """The lineage recorded by :func:`defer` for a table that has no lineage column yet;
    ``None``: nothing pending. Read once no writer is in the middle of a batch (the lock
    waits for the one whose first batch records it, and keeps the next from starting until
    the caller's transaction ends): what it says holds until then."""
    cur.execute(sql.SQL("LOCK TABLE {} IN SHARE ROW EXCLUSIVE MODE").format(target))
    cur.execute(
        sql.SQL("SELECT obj_description({0}::regclass, 'pg_class'), EXISTS ({1})").format(
            sql.Literal(target.as_string(cur)),
            _PRESENT.format(sql.Literal(target.as_string(cur)), sql.Literal(list(LINEAGE_COLUMNS))),
        )
    )
    row = cur.fetchone()
    if row is None or row[1] or not (row[0] or "").startswith(_MARK):
        return None
    values: dict[str, Any] = json.loads(row[0][len(_MARK) :])
    return values


def add_columns(values: dict[str, Any] | None) -> list[sql.Composable]:
    """``ALTER TABLE`` clauses adding the lineage columns, with ``values`` (from
    :func:`pending`) as their defaults: every row already there reads them (PostgreSQL keeps
    a constant default of a new column once, in the catalog: no rewrite). ``None``: no
    default (no row lacks its lineage)."""
    return [
        sql.SQL("ADD COLUMN IF NOT EXISTS {} {}").format(
            sql.Identifier(n), sql.SQL(LINEAGE_TYPES[n])
        )
        + (sql.SQL(" DEFAULT {}").format(sql.Literal(values[n])) if values else sql.SQL(""))
        for n in LINEAGE_COLUMNS
    ]


def settle(cur: psycopg.Cursor[Any], target: sql.Composable) -> None:
    """After :func:`add_columns`: drop the defaults (a later row never inherits them) and
    the comment (nothing is pending any more); the rows already there keep their values."""
    cur.execute(
        sql.SQL("ALTER TABLE {} ").format(target)
        + sql.SQL(", ").join(
            sql.SQL("ALTER COLUMN {} DROP DEFAULT").format(sql.Identifier(n))
            for n in LINEAGE_COLUMNS
        )
        + sql.SQL("; COMMENT ON TABLE {} IS NULL").format(target)
    )


def materialize(
    cur: psycopg.Cursor[Any],
    target: sql.Composable,
    *,
    or_empty: bool = False,
    lock_timeout: float | None = None,
) -> bool:
    """Add the lineage columns a first load left out, holding the lineage it recorded, to a
    table that has them pending; ``True`` when it did (the caller's column list changed).
    ``or_empty``: add them (if absent) even when nothing is pending, with no value for
    any row (none lacks its lineage: only a batch that :func:`defer` recorded leaves it out).
    ``lock_timeout``: how long the ``ALTER TABLE`` waits for readers' locks, in seconds
    (``None``: as long as it takes), as the sink's other schema changes."""
    values = pending(cur, target)
    if values is None and not or_empty:
        return False
    with waiting_at_most(cur, lock_timeout):
        alter = sql.SQL("ALTER TABLE {} ").format(target)
        cur.execute(alter + sql.SQL(", ").join(add_columns(values)))
        if values is not None:
            settle(cur, target)
    return True


class FirstLoad:
    """What a :class:`PostgresSink` knows of the lineage of a table it created without the
    lineage columns: whether they are still to come (``pending``) and the values its first
    batch recorded for the rows written without them (``values``; ``None``: none yet)."""

    def __init__(self) -> None:
        self.pending = False
        self.values: LineageValues | None = None

    def start(self, pending: bool) -> None:
        """A table created now, without the lineage columns when ``pending``."""
        self.pending, self.values = pending, None

    def forget(self) -> None:
        """The columns are there (or this sink no longer knows: its next prepare looks)."""
        self.pending, self.values = False, None

    def left_out(
        self, cur: psycopg.Cursor[Any], target: sql.Composable, batch: pa.RecordBatch
    ) -> bool:
        """Whether ``batch`` goes without its lineage columns: they are still to come and
        still absent, and the batch's lineage is the one the first batch recorded (which
        this batch records, being the first, in its own transaction)."""
        if not self.pending:
            return False
        if self.values is None:
            values = constant_lineage(batch)
            if values is None or not absent(cur, target):
                return False
            defer(cur, target, values)
            self.values = values
            return True
        return matches(batch, self.values) and absent(cur, target)

    def add_columns(
        self,
        cur: psycopg.Cursor[Any],
        target: sql.Composable,
        *,
        recorded: bool = False,
        lock_timeout: float | None = None,
    ) -> bool:
        """Before a write that carries the lineage columns: add them, holding the recorded
        values in the rows written without them; ``True`` when the table's columns changed.
        ``recorded``: also when this sink knows of none, if the table records some (a
        rollback made the sink forget)."""
        if not self.pending and not recorded:
            return False
        if not materialize(cur, target, or_empty=self.pending, lock_timeout=lock_timeout):
            return False
        self.forget()
        return True


#: those of a table's (``{}``) lineage columns (``{}``) that exist
_PRESENT = sql.SQL(
    "SELECT a.attname FROM pg_attribute a WHERE a.attrelid = {}::regclass"
    " AND a.attname = ANY({}) AND a.attnum > 0 AND NOT a.attisdropped"
)


#: the names of those of a table's (``{}``) columns (``{}``) that have a default
_DEFAULTED = sql.SQL(
    "SELECT a.attname FROM pg_attrdef d JOIN pg_attribute a"
    " ON a.attrelid = d.adrelid AND a.attnum = d.adnum"
    " WHERE d.adrelid = {}::regclass AND a.attname = ANY({})"
)


def drop_defaults_sql(cur: psycopg.Cursor[Any], target: sql.Composable) -> list[sql.Composable]:
    """``ALTER TABLE`` clauses dropping the lineage columns' defaults, for those that have one
    (none: an empty list): a first load of etl-express 0.x before session 32 kept the run's
    lineage as defaults until the key build, and one that stopped early left them."""
    cur.execute(
        _DEFAULTED.format(sql.Literal(target.as_string(cur)), sql.Literal(list(LINEAGE_COLUMNS)))
    )
    return [
        sql.SQL("ALTER COLUMN {} DROP DEFAULT").format(sql.Identifier(name))
        for (name,) in cur.fetchall()
    ]


def _text(name: str, value: pa.Scalar) -> str:
    if name == LOADED_AT:  # microseconds since the epoch, UTC (constant_lineage checked the type)
        micros = int(integer_values(pa.repeat(value, 1).view(pa.int64()))[0])
        return (_EPOCH + dt.timedelta(microseconds=micros)).isoformat()
    return str(value.as_py())
