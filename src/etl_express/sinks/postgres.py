"""``PostgresSink``: the primary store.

Each batch is bulk-loaded without per-row Python: it is serialized once in PostgreSQL's
binary COPY format (or CSV, see :mod:`.pgcopy`) and loaded with ``COPY ... FROM STDIN`` —
straight into the target when none of its keys exist yet, else into a temporary staging
table followed by one ``INSERT ... SELECT ... ON CONFLICT (primary key) DO UPDATE``.
All of it runs in the pipeline's transaction, together with the checkpoint, so readers of
the target never see half a batch and a replayed batch never duplicates rows.

This module decides which way each batch is written; the statements of each way are in
:mod:`.pgwrite`, the target table's names, types, creation and growth in :mod:`.pgschema`,
the COPY encoding in :mod:`.pgcopy`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import numpy as np
import psycopg
import pyarrow as pa
from psycopg import sql
from sqlalchemy.engine import Connection

from ..errors import ETLConfigError, SinkError, safe_pg_message
from ..format import RUN_ID
from ..secrets import SecretLike
from ..store.database import psycopg_connection
from ..store.tables import TableName
from . import history, pglineage
from .base import Sink
from .pgchanged import any_in_range, changed_rows, integer_keys
from .pgcopy import CopyPayload, copy_payload
from .pgschema import (
    add_primary_key,
    align,
    check_identifier,
    identifier,
    pg_column_type,
    pg_type,
    prepare_table,
    split_table,
)
from .pgwrite import DirectCopy, column_list, copy_rows, dedupe_last, upsert_staged


class PostgresSink(Sink):
    """Upserts batches into a PostgreSQL table, creating and growing it as needed.

    ``table`` is ``"schema.table"`` (schema defaults to ``public``). ``url`` names the
    database (a string or ``etl.secret(...)``); ``None`` means ``ETL_EXPRESS_DATABASE_URL``
    or the embedded server. Pipeline state lives in the same database, so each batch and its
    checkpoint commit in one transaction.

    The target table is created from the first batch's schema, with the source's primary
    key; a column the source grows later is added (columns are never dropped); a column
    whose type widens losslessly (integer to bigint, varchar to text, integer to numeric,
    numeric(p,s) to unconstrained numeric, integer to double precision while every stored
    value is exact in it) is widened; nothing is ever widened by rounding (a decimal never
    goes into double precision);
    an incompatible change stops the run before anything is written, naming the column.
    Without a primary key, rows are appended (exactly-once still holds: rows and
    checkpoint commit together).

    Logic: each batch is serialized once, in PostgreSQL's binary COPY format built from
    the Arrow buffers (CSV from Arrow's C++ writer for types binary cannot carry), and
    loaded with ``COPY ... FROM STDIN``, with no per-row Python. With a primary key the sink first tries
    the COPY straight into the target inside a savepoint (``direct_copy``): when none of
    the batch's keys exist yet — an initial load, an append-only source — that is exactly
    the result of an upsert, in one pass. If a key already exists the savepoint is rolled
    back and the batch goes through a temporary staging table and one
    ``INSERT ... ON CONFLICT (key) DO UPDATE``. Either way rows and checkpoint commit in the
    same transaction, so a replay never duplicates.

    Args:
        table: ``"schema.table"`` or ``"table"`` (schema ``public``).
        url: the database (string or ``etl.secret(...)``); ``None``: the default store.
        write_mode: ``"upsert"`` (on the source's primary key) or ``"append"``.
        direct_copy: try the one-pass COPY into the target before staging + upsert.
        synchronous_commit: ``False`` (default) runs each batch's transaction with
            ``synchronous_commit = off``: a batch's commit does not wait for the WAL flush.
            The run's own records after the batches (the key build, the checks, the run's
            end) do wait, and PostgreSQL flushes its log in order, so everything the run
            committed is on disk once ``Pipeline.run()`` has returned. A *server* crash
            during the run may lose the last few committed batches — rows and checkpoint
            together, so the next run reads them again and exactly-once still holds.
            ``True``: every batch waits, for something outside the pipeline that acts on
            each committed checkpoint while the run goes on.
        ddl_lock_timeout: seconds a schema change (a new or widened column) waits for the
            locks of readers of the target before it gives up; the pipeline then retries it
            with backoff. While it waits, new readers queue behind it, so a short timeout
            keeps readers answering; ``None`` waits as long as it takes.
        history: keep every version of a row (SCD type 2, see :mod:`.history`) with
            ``_etl_valid_from`` / ``_etl_valid_to``; ``etl.read(table, as_of=...)`` then
            returns the table as it stood at any moment.
    """

    def __init__(
        self,
        table: str | None = None,
        url: SecretLike | None = None,
        *,
        write_mode: str = "upsert",
        direct_copy: bool = True,
        synchronous_commit: bool = False,
        ddl_lock_timeout: float | None = 0.5,
        history: bool = False,
        schema: str | None = None,
    ):
        self._options: dict[str, Any] = {
            "url": url,
            "write_mode": write_mode,
            "direct_copy": direct_copy,
            "synchronous_commit": synchronous_commit,
            "ddl_lock_timeout": ddl_lock_timeout,
            "history": history,
        }
        if (table is None) == (schema is None):
            raise ETLConfigError(
                "PostgresSink needs table= (a pipeline's target) or schema= (a replication's, "
                "one table per source table), not both",
                hint='PostgresSink(table="crm.customers") or PostgresSink(schema="crm")',
            )
        if table is None:  # a replication's sink: each table's is made by for_table
            assert schema is not None
            check_identifier(schema, what="schema name")
            table = f"{schema}.*"
        self.schema_name, self.table_name = split_table(table)
        self.table = f"{self.schema_name}.{self.table_name}"
        self.url = url
        self.state_url = url
        if write_mode not in ("upsert", "append"):
            raise ETLConfigError(f"write_mode {write_mode!r} is not 'upsert' or 'append'")
        self.write_mode = write_mode
        if history and write_mode != "upsert":
            raise ETLConfigError(
                "history=True keeps versions per primary key: it needs write_mode='upsert'",
                hint="PostgresSink(table, history=True)",
            )
        self.history = history
        self.direct_copy = direct_copy
        self.synchronous_commit = synchronous_commit
        if ddl_lock_timeout is not None and ddl_lock_timeout <= 0:
            raise ETLConfigError(f"ddl_lock_timeout must be positive, got {ddl_lock_timeout}")
        self.ddl_lock_timeout = ddl_lock_timeout
        self._direct = DirectCopy()  # the direct COPY's spacing after a miss
        # how batches were loaded ("unchanged": compared with the target, nothing to write)
        self._batches = {"direct": 0, "staged": 0, "appended": 0, "unchanged": 0}
        #: batches sent as the source's own binary COPY bytes (etl_express._copybytes)
        self.source_bytes_batches = 0
        self._unchanged_rows = 0  # rows of upserted batches the target already held as they are
        self._columns: dict[str, str] | None = None
        self._prepared_for: pa.Schema | None = None
        # a table this sink created gets its primary key index after its first load
        # (bulk loading without it, see _upsert); until then, the highest key written
        self._key_deferred = False
        self._key_first = False  # create the table with its key (a small table: for_table)
        self._fresh = False  # this sink created the table in this run (no earlier rows)
        # the key columns (sorted) a unique index enforces on the target, as this sink
        # created or built it in this run (None: not known, ask the catalog)
        self._key_known: list[str] | None = None
        self._unguarded = False  # write_unguarded: the direct COPY without its savepoint
        self._key_pending = False  # this sink created the table keyless: finish_load checks
        self._max_key: int | None = None
        # the rows PostgreSQL reported for this sink's COPYs into a table it created in this
        # run (their command tags); None once anything else may have changed the table
        self._copied_rows: int | None = None
        # a table created keyless in this run without its lineage columns (see .pglineage):
        # the first batch records the run's values, which the direct COPYs then leave out
        self._lineage = pglineage.FirstLoad()
        self._stage = (
            "_etl_stage_" + hashlib.blake2b(self.table.encode(), digest_size=6).hexdigest()
        )

    def __repr__(self) -> str:
        if self.table_name == "*":
            return f"PostgresSink(schema={self.schema_name!r})"
        return f"PostgresSink(table={self.table!r})"

    def target_table(self) -> TableName:
        return TableName(self.schema_name, self.table_name)

    def for_table(self, name: str, *, small: bool = False) -> PostgresSink:
        """The sink of one table of this sink's schema, with the same options (how a
        ``Replication`` writes each source table into a target table of the same name).

        ``small``: the table is expected to fit in one batch; a target created for it gets
        its primary key in its ``CREATE TABLE`` rather than built after the load, which
        only pays off over many rows (it costs a transaction of its own)."""
        sink = PostgresSink(f"{self.schema_name}.{name}", **self._options)
        sink._key_first = small
        return sink

    @property
    def _ident(self) -> sql.Composed:
        return identifier(self.schema_name, self.table_name)

    def prepare(self, conn: Connection, schema: pa.Schema, primary_key: Sequence[str]) -> None:
        if self._prepared_for is not None and self._prepared_for.equals(schema):
            return
        if self.table_name == "*":
            raise ETLConfigError(
                f"PostgresSink(schema={self.schema_name!r}) names no table: it is a "
                "replication's sink",
                hint="give a pipeline PostgresSink(table=...), or use it in etl.Replication",
            )
        deferrable = (
            self.direct_copy
            and not self._key_first
            and len(primary_key) == 1
            and primary_key[0] in schema.names
            and pa.types.is_integer(schema.field(primary_key[0]).type)
        )
        prepared = prepare_table(
            conn,
            self.schema_name,
            self.table_name,
            schema,
            primary_key,
            key_constraint=self.write_mode == "upsert",
            keep_history=self.history,
            ddl_lock_timeout=self.ddl_lock_timeout,
            defer_key=deferrable,
            keep_deferring=deferrable and self._key_deferred,
        )
        if prepared.created:
            self._max_key = None
            self._key_pending = prepared.key_deferred
            self._copied_rows = 0 if prepared.key_deferred else None
            self._lineage.start(prepared.lineage_deferred)
            self._fresh = True
            keyed = bool(primary_key) and self.write_mode == "upsert" and not self.history
            if keyed and not prepared.key_deferred:
                self._key_known = sorted(primary_key)
        elif RUN_ID in prepared.columns:  # added by this prepare, or by another writer
            self._lineage.forget()
        self._key_deferred = prepared.key_deferred
        self._columns = prepared.columns
        self._prepared_for = schema

    def finish_load(self, conn: Connection, primary_key: Sequence[str]) -> None:
        """After the last batch of a run: give a table this sink created and loaded without
        its primary key index (see :meth:`_upsert`) that index, in one build."""
        if not (self._key_deferred or self._key_pending):
            return
        raw: psycopg.Connection[Any] = conn.connection.driver_connection  # type: ignore[assignment]
        with raw.cursor() as cur:
            # the lineage columns, with the values the load left out (also after a rollback
            # that made this sink forget it left them out: the table's comment remembers)
            self._add_lineage_columns(cur, recorded=True)
            built = add_primary_key(cur, self.target_table(), primary_key, self.ddl_lock_timeout)
            if built and self._copied_rows is not None:
                self._copied_rows = self._counted_by_the_build(cur, self._copied_rows)
        if not built:  # another writer gave the table its key: it may have written rows too
            self._copied_rows = None
        self._key_known = sorted(primary_key)  # built now, or found built
        # _key_pending stays until close(): if this transaction fails, the retry checks again
        self._key_deferred = False

    def _counted_by_the_build(self, cur: psycopg.Cursor[Any], copied: int) -> int | None:
        """``copied`` (the rows this sink's COPYs reported) when the key build just done,
        in this transaction, counted the same live rows in the table; else ``None``.

        Another session may have deleted or inserted rows while the table was loaded
        (nothing locks it against that): the COPY tags would then say rows are there that
        are not. The index build reads every row anyway and stores their number in
        ``pg_class.reltuples`` (a ``real``: exact up to 2^24; above that the table is
        counted by the check, as when the count is not known)."""
        if copied >= 2**24:
            return None
        cur.execute(
            sql.SQL("SELECT reltuples FROM pg_class WHERE oid = {}::regclass").format(
                sql.Literal(self._ident.as_string(cur))
            )
        )
        row = cur.fetchone()
        return copied if row is not None and row[0] == copied else None

    def complete_unfinished(self, conn: Connection, primary_key: Sequence[str]) -> None:
        """Complete a table a first load killed before its end left (no key, lineage
        columns pending), for a run that wrote nothing after a run that did not succeed:
        it may have found nothing left to read, and the table must not stay unfinished
        until new rows arrive. One catalog read when the table is complete."""
        if self._prepared_for is not None or not (
            self.table_name != "*"
            and self.write_mode == "upsert"
            and not self.history
            and self.direct_copy
            and bool(primary_key)
        ):
            return
        with psycopg_connection(conn).cursor() as cur:
            if pglineage.unfinished(cur, self._ident, list(primary_key)):
                pglineage.materialize(cur, self._ident, lock_timeout=self.ddl_lock_timeout)
                add_primary_key(cur, self.target_table(), primary_key, self.ddl_lock_timeout)

    def copied_rows(self) -> int | None:
        """The rows of the target table as PostgreSQL counted them while this run loaded it,
        when that is all the table holds; else ``None`` (count them in the table).

        Known for a table this sink created in this run, loaded only by its own direct COPYs
        (the sum of their ``COPY n`` command tags) and given its primary key by this sink's
        :meth:`finish_load`: no row was there before the run, every write was a plain
        insert, and no other etl-express writer wrote to it (one would have built the key
        first). Any other write, a rolled-back batch, or ``close()`` forgets the count.
        """
        return None if self._key_deferred else self._copied_rows

    def known_target(self) -> tuple[dict[str, str] | None, list[str] | None]:
        """What this sink established about its target in this run, for the end-of-run
        checks to use without asking the catalog again: the target's columns (name ->
        data type) of a table it created in this run, and the key columns (sorted) that a
        unique index it created or built in this run enforces; ``None`` for what it does
        not know."""
        return (self._columns if self._fresh else None), self._key_known

    def close(self) -> None:
        self._key_pending = False
        self._copied_rows = None
        self._fresh = False
        self._key_known = None

    def rollback(self) -> None:
        # DDL done in a rolled-back transaction is gone: prepare again next time; a deferred
        # key is added then (what the rolled-back batch wrote is no longer known)
        self._columns = None
        self._prepared_for = None
        self._key_deferred = False
        self._copied_rows = None
        self._lineage.forget()  # prepare() looks again
        self._fresh = False
        self._key_known = None

    def write_unguarded(
        self, conn: Connection, batch: pa.RecordBatch, primary_key: Sequence[str]
    ) -> int | None:
        """:meth:`write` without the savepoint around the direct COPY, for a caller that
        redoes the whole transaction with savepoints when it fails (a savepoint and its
        release are two round trips per batch); only into a table this sink created in
        this run, which no row of an earlier run is in. ``None``: not such a table,
        nothing written (write as usual)."""
        fresh = self._fresh and self.direct_copy and self.write_mode == "upsert"
        if not fresh or self.history or self._prepared_for is None:
            return None
        self._unguarded = True
        try:
            return self.write(conn, batch, primary_key)
        finally:
            self._unguarded = False

    def write(self, conn: Connection, batch: pa.RecordBatch, primary_key: Sequence[str]) -> int:
        if batch.num_rows == 0:
            return 0
        self.prepare(conn, batch.schema, primary_key)
        assert self._columns is not None
        batch = align(batch, self._columns, self.table)
        upsert = bool(primary_key) and self.write_mode == "upsert"
        accepted = batch.num_rows
        if upsert:
            batch = dedupe_last(batch, primary_key)
        payload = copy_payload(batch, [self._columns.get(n, "") for n in batch.schema.names])
        cols = column_list(batch)
        raw = psycopg_connection(conn)
        try:
            with raw.cursor() as cur:
                if not self.synchronous_commit:
                    cur.execute("SET LOCAL synchronous_commit = off")
                if not upsert:
                    self._copied_rows = None
                    copy_rows(cur, self._ident, cols, payload)
                    self._batches["appended"] += 1
                elif self.history:
                    self._copied_rows = None
                    history.write(
                        cur,
                        self._ident,
                        self._stage,
                        batch.schema.names,
                        primary_key,
                        lambda cur, stage, cols: copy_rows(cur, stage, cols, payload),
                    )
                    self._batches["staged"] += 1
                else:
                    self._batches[self._upsert(cur, batch, cols, payload, primary_key)] += 1
        except psycopg.Error as exc:
            diag = getattr(exc, "diag", None)
            raise SinkError(
                f"writing {batch.num_rows} rows to {self.table} failed: {safe_pg_message(exc)}",
                where={
                    "table": self.table,
                    "column": getattr(diag, "column_name", None),
                    "constraint": getattr(diag, "constraint_name", None),
                },
                hint="check the target table's constraints and the data types of the source",
            ) from None
        return accepted

    def _upsert(
        self,
        cur: psycopg.Cursor[Any],
        batch: pa.RecordBatch,
        cols: sql.Composable,
        payload: CopyPayload,
        primary_key: Sequence[str],
    ) -> str:
        """Write an upsert batch the cheapest way that gives the upsert's result; returns
        how (a key of ``_batches``).

        A batch keyed by one integer column, in rising key order over a dense range, is
        checked against the target first (:mod:`.pgchanged`): with no row in its key range
        it is COPied straight in; otherwise only its new and changed rows are upserted.
        Any other batch tries the direct COPY blindly (see :meth:`_copy_direct`).
        """
        if self._key_deferred:
            # no index on the key yet: a batch whose keys all lie above every key written so
            # far cannot conflict, and is COPied in without maintaining an index row by row
            rising = integer_keys(batch, primary_key, dense=False)
            above = rising is not None and (self._max_key is None or rising[0] > self._max_key)
            copied = None
            if above:
                direct = (cols, payload)
                if self._lineage.left_out(cur, self._ident, batch):
                    assert self._columns is not None  # the lineage: added at the end
                    slim_cols, slim_payload, as_sent = pglineage.slim_copy(batch, self._columns)
                    self.source_bytes_batches += as_sent
                    direct = (slim_cols, slim_payload)
                else:
                    self._add_lineage_columns(cur)
                copied = self._copy_direct(cur, *direct, blind=False)
            if copied is not None:
                assert rising is not None
                self._max_key = int(rising[-1])
                if self._copied_rows is not None:
                    self._copied_rows += copied
                return "direct"
            self._add_lineage_columns(cur)
            add_primary_key(cur, self.target_table(), primary_key, self.ddl_lock_timeout)
            self._key_deferred = False
        self._copied_rows = None  # counted only while the table has no key (no upsert yet)
        keys = integer_keys(batch, primary_key) if self.direct_copy else None
        if self._fresh and keys is not None:
            # a table created in this run holds no row of an earlier one: COPY without
            # asking first; a key another writer put there meanwhile fails the COPY, which
            # the savepoint undoes, and the batch is upserted below
            if self._copy_direct(cur, cols, payload, blind=False) is not None:
                return "direct"
        elif keys is None:
            if self._copy_direct(cur, cols, payload, blind=True) is not None:
                return "direct"
        elif not any_in_range(cur, self._ident, primary_key[0], keys):
            if self._copy_direct(cur, cols, payload, blind=False) is not None:
                return "direct"
        elif payload.format == "binary":
            assert self._columns is not None
            names = batch.schema.names
            changed = changed_rows(
                cur, self._ident, names, self._columns, primary_key[0], keys, b"".join(payload)
            )
            if changed is not None:
                writing = int(np.count_nonzero(changed))
                self._unchanged_rows += batch.num_rows - writing
                if writing == 0:
                    return "unchanged"
                if writing < batch.num_rows:
                    batch = batch.filter(pa.array(changed))
                    payload = copy_payload(batch, [self._columns.get(n, "") for n in names])
        upsert_staged(
            cur,
            self._ident,
            self._stage,
            batch.schema.names,
            cols,
            payload,
            primary_key,
            self._columns or {},
        )
        return "staged"

    def _add_lineage_columns(self, cur: psycopg.Cursor[Any], *, recorded: bool = False) -> None:
        """Before a write that carries the lineage columns (see
        :meth:`.pglineage.FirstLoad.add_columns`); the column list follows."""
        added = self._lineage.add_columns(
            cur, self._ident, recorded=recorded, lock_timeout=self.ddl_lock_timeout
        )
        if added and self._columns is not None:
            self._columns = {**self._columns, **pglineage.LINEAGE_TYPES}

    def _copy_direct(
        self, cur: psycopg.Cursor[Any], cols: sql.Composable, payload: CopyPayload, *, blind: bool
    ) -> int | None:
        """COPY straight into the target (:class:`.pgwrite.DirectCopy`: inside a savepoint,
        ``blind`` attempts spaced out after a miss): the rows PostgreSQL copied, or ``None``
        when a key exists (or the direct COPY is off or being spaced out)."""
        if not self.direct_copy:
            return None
        return self._direct.copy(
            cur, self._ident, cols, payload, blind=blind, guarded=not self._unguarded
        )


__all__ = [
    "PostgresSink",
    "check_identifier",
    "dedupe_last",
    "pg_column_type",
    "pg_type",
    "safe_pg_message",
    "split_table",
]
