"""``PostgresSink``: the primary store.

Each batch is bulk-loaded without per-row Python: it is serialized once in PostgreSQL's
binary COPY format (or CSV, see :mod:`.pgcopy`) and loaded with ``COPY ... FROM STDIN`` —
straight into the target when none of its keys exist yet, else into a temporary staging
table followed by one ``INSERT ... SELECT ... ON CONFLICT (primary key) DO UPDATE``.
All of it runs in the pipeline's transaction, together with the checkpoint, so readers of
the target never see half a batch and a replayed batch never duplicates rows.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa
from psycopg import sql
from psycopg.copy import QueuedLibpqWriter
from sqlalchemy.engine import Connection

from ..errors import ETLConfigError, SinkError, safe_pg_message
from ..format import DELETED_AT, MAX_IDENTIFIER_BYTES, is_json_field
from ..secrets import SecretLike
from ..store.tables import TableName
from . import history
from .base import Sink
from .pgcopy import CopyPayload, copy_payload


def pg_type(t: pa.DataType) -> str:
    """The PostgreSQL column type for a canonical Arrow type."""
    if pa.types.is_boolean(t):
        return "boolean"
    if pa.types.is_integer(t):
        return "bigint"
    if pa.types.is_floating(t):
        return "double precision"
    if pa.types.is_decimal(t):
        return f"numeric({t.precision},{t.scale})"
    if pa.types.is_timestamp(t):
        return "timestamp with time zone" if t.tz else "timestamp without time zone"
    if pa.types.is_date(t):
        return "date"
    return "text"


def pg_column_type(field: pa.Field) -> str:
    """The column type for a canonical field: ``jsonb`` for JSON text of nested values."""
    return "jsonb" if is_json_field(field) else pg_type(field.type)


# existing column type -> arrow types that load into it unchanged (every value exactly:
# no decimal or float into an integer, no decimal into double precision)
_COMPATIBLE = {
    "text": lambda t: True,
    "character varying": lambda t: True,
    "bigint": pa.types.is_integer,
    "integer": pa.types.is_integer,
    "numeric": lambda t: pa.types.is_integer(t) or pa.types.is_decimal(t),
    "double precision": lambda t: pa.types.is_integer(t) or pa.types.is_floating(t),
    "boolean": pa.types.is_boolean,
    "date": pa.types.is_date,
    "timestamp with time zone": pa.types.is_timestamp,
    "timestamp without time zone": pa.types.is_timestamp,
    "jsonb": pa.types.is_string,
    "json": pa.types.is_string,
}

#: integers up to 2**53 in magnitude are exact in double precision, larger ones are rounded
EXACT_DOUBLE_INT = 2**53


# widenings done in place, each lossless for every value the column can already hold:
# (existing type, new arrow type) -> new column type
def _widening(existing: str, t: pa.DataType) -> str | None:
    if existing in ("integer", "smallint") and pa.types.is_integer(t):
        return "bigint"
    if existing in ("integer", "smallint") and pa.types.is_floating(t):
        return "double precision"  # every int4 is exact in float8
    if existing in ("bigint", "integer", "smallint") and pa.types.is_decimal(t):
        return "numeric"
    if existing == "character varying":
        return "text"
    return None


def _fits(typmod: tuple[int | None, int | None], t: pa.DataType) -> bool:
    """Whether every value of decimal type ``t`` is stored unchanged in numeric(p, s)."""
    precision, scale = typmod
    if precision is None:
        return True  # unconstrained numeric holds any decimal exactly
    scale = scale or 0
    return t.scale <= scale and t.precision - t.scale <= precision - scale


def split_table(table: str) -> tuple[str, str]:
    """``"crm.customers"`` -> ``("crm", "customers")``; no schema means ``public``.

    Each part is taken literally (it is always quoted as an identifier, so ``crm."x"`` names
    a table whose name holds the quotes); a part that is empty, holds a NUL or is longer
    than PostgreSQL's 63 bytes, which PostgreSQL would cut silently, is refused here, before
    anything is written."""
    parts = table.split(".") if isinstance(table, str) else []
    if len(parts) == 1:
        parts = ["public", parts[0]]
    if len(parts) != 2 or not all(parts):
        raise ETLConfigError(
            f"table name {table!r} is not 'table' or 'schema.table'",
            hint="e.g. table='crm.customers'",
        )
    for part in parts:
        check_identifier(part, what=f"table name {table!r}")
    return parts[0], parts[1]


def check_identifier(name: str, *, what: str) -> None:
    """Refuse an identifier PostgreSQL would change: longer than 63 bytes, or holding NUL."""
    if "\x00" in name:
        raise ETLConfigError(f"{what} holds a NUL character", hint="choose another name")
    size = len(name.encode("utf-8"))
    if size > MAX_IDENTIFIER_BYTES:
        raise ETLConfigError(
            f"{what}: {name[:20]!r}... is {size} bytes in UTF-8, PostgreSQL keeps only "
            f"{MAX_IDENTIFIER_BYTES} and would cut it silently",
            hint=f"choose a name of at most {MAX_IDENTIFIER_BYTES} bytes (a Cyrillic letter "
            "takes 2)",
        )


def dedupe_last(batch: pa.RecordBatch, primary_key: Sequence[str]) -> pa.RecordBatch:
    """Keep the last row of each primary key (a batch may carry one key twice)."""
    if not primary_key or batch.num_rows < 2:
        return batch
    if len(primary_key) == 1:
        key = batch.column(primary_key[0])
        if pa.types.is_integer(key.type) and key.null_count == 0:
            values = key.to_numpy()
            if (values[1:] > values[:-1]).all():  # keyset order: unique without hashing
                return batch
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
        synchronous_commit: ``False`` runs each batch's transaction with
            ``synchronous_commit = off``: commits do not wait for the WAL flush, so a
            *server* crash may lose the last few committed batches — rows and checkpoint
            together, so the next run re-reads them and exactly-once still holds. Leave it
            ``True`` when something outside the pipeline acts on a committed checkpoint.
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
        table: str,
        url: SecretLike | None = None,
        *,
        write_mode: str = "upsert",
        direct_copy: bool = True,
        synchronous_commit: bool = True,
        ddl_lock_timeout: float | None = 0.5,
        history: bool = False,
    ):
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
        self._direct_backoff = 0
        self._direct_skip = 0
        self._batches = {"direct": 0, "staged": 0, "appended": 0}  # how batches were loaded
        self._columns: dict[str, str] | None = None
        self._prepared_for: pa.Schema | None = None
        self._stage = (
            "_etl_stage_" + hashlib.blake2b(self.table.encode(), digest_size=6).hexdigest()
        )

    def __repr__(self) -> str:
        return f"PostgresSink(table={self.table!r})"

    def target_table(self) -> TableName:
        return TableName(self.schema_name, self.table_name)

    @property
    def _ident(self) -> sql.Composed:
        return sql.SQL("{}.{}").format(
            sql.Identifier(self.schema_name), sql.Identifier(self.table_name)
        )

    def existing_columns(self, conn: Connection) -> dict[str, str]:
        rows = conn.execute(
            sa.text(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = :s AND table_name = :t ORDER BY ordinal_position"
            ),
            {"s": self.schema_name, "t": self.table_name},
        ).all()
        return {r[0]: r[1] for r in rows}

    def prepare(self, conn: Connection, schema: pa.Schema, primary_key: Sequence[str]) -> None:
        if self._prepared_for is not None and self._prepared_for.equals(schema):
            return
        _check_columns(schema, self.table)
        raw = conn.connection.driver_connection
        assert raw is not None
        with raw.cursor() as cur:
            cur.execute(
                sql.SQL("SELECT pg_advisory_xact_lock(hashtext({}))").format(
                    sql.Literal("etl_express.ddl:" + self.table)
                )
            )
            cur.execute(
                sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self.schema_name))
            )
        existing = self.existing_columns(conn)
        typmods = self._numeric_typmods(conn)
        with raw.cursor() as cur:
            if not existing:
                missing_pk = [c for c in primary_key if c not in schema.names]
                if missing_pk:
                    raise ETLConfigError(
                        f"primary key column(s) {missing_pk} are not in the data for {self.table}",
                        where={"columns": ", ".join(schema.names[:20])},
                        hint="fix primary_key on the source (names are normalized to snake_case)",
                    )
                cols: list[sql.Composable] = [
                    sql.SQL("{} {}{}").format(
                        sql.Identifier(f.name),
                        sql.SQL(pg_column_type(f)),
                        sql.SQL(" NOT NULL") if f.name in primary_key else sql.SQL(""),
                    )
                    for f in schema
                ]
                if self.history:
                    cols.extend(history.create_columns(schema.names))
                elif primary_key and self.write_mode == "upsert":
                    cols.append(
                        sql.SQL("PRIMARY KEY ({})").format(
                            sql.SQL(", ").join(map(sql.Identifier, primary_key))
                        )
                    )
                cur.execute(
                    sql.SQL("CREATE TABLE IF NOT EXISTS {} ({})").format(
                        self._ident, sql.SQL(", ").join(cols)
                    )
                )
            else:
                problems = []
                changes = []
                for f in schema:
                    have = existing.get(f.name)
                    if have is None:
                        changes.append(
                            sql.SQL("ADD COLUMN IF NOT EXISTS {} {}").format(
                                sql.Identifier(f.name), sql.SQL(pg_column_type(f))
                            )
                        )
                        continue
                    wider = _widening(have, f.type)
                    if have == "numeric" and pa.types.is_decimal(f.type):
                        if not _fits(typmods.get(f.name, (None, None)), f.type):
                            wider = "numeric"  # drop the typmod: lossless, values unchanged
                    elif (
                        have == "bigint"
                        and pa.types.is_floating(f.type)
                        and self._exact_in_double(cur, f.name)
                    ):
                        wider = "double precision"
                    if wider is not None:
                        changes.append(
                            sql.SQL("ALTER COLUMN {} TYPE {}").format(
                                sql.Identifier(f.name), sql.SQL(wider)
                            )
                        )
                    elif not _COMPATIBLE.get(have, lambda t: False)(f.type):
                        problems.append(
                            f"column {f.name!r} is {have} in {self.table} but the source now "
                            f"sends {f.type}, which it cannot hold exactly"
                        )
                if problems:
                    raise SinkError(
                        "incompatible schema change: " + "; ".join(problems),
                        where={"table": self.table},
                        hint="cast the column in a transformer (e.g. Cast) or migrate the target table by hand",
                    )
                if changes:
                    if self.ddl_lock_timeout is not None:  # never stall readers for long
                        cur.execute(
                            sql.SQL("SET LOCAL lock_timeout = {}").format(
                                sql.Literal(f"{int(self.ddl_lock_timeout * 1000)}ms")
                            )
                        )
                    cur.execute(
                        sql.SQL("ALTER TABLE {} ").format(self._ident) + sql.SQL(", ").join(changes)
                    )
                    cur.execute("SET LOCAL lock_timeout TO DEFAULT")
            if self.history:
                history.prepare(cur, self._ident, self.table, existing, primary_key)
        self._columns = self.existing_columns(conn)
        self._prepared_for = schema

    def _numeric_typmods(self, conn: Connection) -> dict[str, tuple[int | None, int | None]]:
        rows = conn.execute(
            sa.text(
                "SELECT column_name, numeric_precision, numeric_scale "
                "FROM information_schema.columns WHERE table_schema = :s AND table_name = :t "
                "AND data_type = 'numeric'"
            ),
            {"s": self.schema_name, "t": self.table_name},
        ).all()
        return {r[0]: (r[1], r[2]) for r in rows}

    def _exact_in_double(self, cur: psycopg.Cursor[Any], column: str) -> bool:
        """Whether every value of a bigint column is exact in double precision (a widening
        to double precision is refused otherwise)."""
        row = cur.execute(
            sql.SQL("SELECT coalesce(max(abs({})), 0) <= {} FROM {}").format(
                sql.Identifier(column), sql.Literal(EXACT_DOUBLE_INT), self._ident
            )
        ).fetchone()
        return bool(row and row[0])

    def rollback(self) -> None:
        # DDL done in a rolled-back transaction is gone: prepare again next time
        self._columns = None
        self._prepared_for = None

    def _align(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """Cast columns the target stores as text (after a widening) to string."""
        assert self._columns is not None
        arrays = []
        changed = False
        for f, col in zip(batch.schema, batch.columns):
            if (
                self._columns.get(f.name) == "double precision"
                and pa.types.is_integer(f.type)
                and not _exact_ints(col)
            ):
                raise SinkError(
                    f"column {f.name!r} is double precision in {self.table} and the batch "
                    f"holds integers beyond 2**53, which it would round",
                    where={"table": self.table, "column": f.name},
                    hint="migrate the column to numeric (ALTER TABLE ... TYPE numeric) or cast "
                    "the source column",
                )
            if self._columns.get(f.name) in ("text", "jsonb", "json") and not pa.types.is_string(
                f.type
            ):
                arrays.append(pc.cast(col, pa.string()))
                changed = True
            else:
                arrays.append(col)
        if not changed:
            return batch
        return pa.RecordBatch.from_arrays(arrays, names=batch.schema.names)

    def write(self, conn: Connection, batch: pa.RecordBatch, primary_key: Sequence[str]) -> int:
        if batch.num_rows == 0:
            return 0
        self.prepare(conn, batch.schema, primary_key)
        batch = self._align(batch)
        upsert = bool(primary_key) and self.write_mode == "upsert"
        accepted = batch.num_rows
        if upsert:
            batch = dedupe_last(batch, primary_key)
        assert self._columns is not None
        payload = copy_payload(batch, [self._columns.get(n, "") for n in batch.schema.names])
        cols = sql.SQL(", ").join(map(sql.Identifier, batch.schema.names))
        raw: psycopg.Connection[Any] = conn.connection.driver_connection  # type: ignore[assignment]
        try:
            with raw.cursor() as cur:
                if not self.synchronous_commit:
                    cur.execute("SET LOCAL synchronous_commit = off")
                with _utc_session(
                    cur, payload.format == "csv" and _has_zoned_timestamps(batch.schema)
                ):
                    if not upsert:
                        _copy(cur, self._ident, cols, payload)
                        self._batches["appended"] += 1
                    elif self.history:
                        history.write(
                            cur,
                            self._ident,
                            self._stage,
                            batch.schema.names,
                            primary_key,
                            lambda cur, stage, cols: _copy(cur, stage, cols, payload),
                        )
                        self._batches["staged"] += 1
                    elif self._copy_direct(cur, cols, payload):
                        self._batches["direct"] += 1
                    else:
                        self._copy_upsert(cur, batch.schema.names, cols, payload, primary_key)
                        self._batches["staged"] += 1
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

    def _copy_direct(
        self, cur: psycopg.Cursor[Any], cols: sql.Composable, payload: CopyPayload
    ) -> bool:
        """COPY straight into the target, inside a savepoint; ``False`` when a key exists.

        When no key of the batch is in the target yet (an initial load, an append-only
        source), a plain COPY gives exactly the rows an upsert would, in one pass instead of
        two. A unique violation rolls the savepoint back and the caller upserts instead;
        after such a miss the next attempts are spaced out (1, 2, 4 ... batches), so a
        source that mostly updates existing keys pays for a failed COPY only rarely.
        """
        if not self.direct_copy:
            return False
        if self._direct_skip > 0:
            self._direct_skip -= 1
            return False
        cur.execute("SAVEPOINT _etl_direct_copy")
        try:
            _copy(cur, self._ident, cols, payload)
        except psycopg.errors.UniqueViolation:
            cur.execute("ROLLBACK TO SAVEPOINT _etl_direct_copy")
            self._direct_backoff = min(max(2 * self._direct_backoff, 1), 1024)
            self._direct_skip = self._direct_backoff
            return False
        cur.execute("RELEASE SAVEPOINT _etl_direct_copy")
        self._direct_backoff = 0
        return True

    def _copy_upsert(
        self,
        cur: psycopg.Cursor[Any],
        names: Sequence[str],
        cols: sql.Composable,
        payload: CopyPayload,
        primary_key: Sequence[str],
    ) -> None:
        """COPY into a temporary staging table, then one INSERT ... ON CONFLICT DO UPDATE."""
        stage = sql.Identifier(self._stage)
        cur.execute(
            sql.SQL("CREATE TEMP TABLE IF NOT EXISTS {} (LIKE {}) ON COMMIT DROP").format(
                stage, self._ident
            )
        )
        _copy(cur, stage, cols, payload)
        non_key = [n for n in names if n not in primary_key]
        sets = [
            sql.SQL("{} = EXCLUDED.{}").format(sql.Identifier(n), sql.Identifier(n))
            for n in non_key
        ]
        if DELETED_AT in (self._columns or {}) and DELETED_AT not in names:
            sets.append(sql.SQL("{} = NULL").format(sql.Identifier(DELETED_AT)))  # it is back
        action = (
            sql.SQL("DO UPDATE SET ") + sql.SQL(", ").join(sets) if sets else sql.SQL("DO NOTHING")
        )
        cur.execute(
            sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {} ON CONFLICT ({}) ").format(
                self._ident, cols, cols, stage, sql.SQL(", ").join(map(sql.Identifier, primary_key))
            )
            + action
        )
        cur.execute(sql.SQL("DROP TABLE {}").format(stage))


def _exact_ints(col: pa.Array) -> bool:
    bounds = pc.min_max(col).as_py()
    low, high = bounds["min"], bounds["max"]
    return low is None or (low >= -EXACT_DOUBLE_INT and high <= EXACT_DOUBLE_INT)


def _check_columns(schema: pa.Schema, table: str) -> None:
    """Column names PostgreSQL would change or reject, refused before anything is written."""
    seen: set[str] = set()
    for name in schema.names:
        check_identifier(name, what=f"column of {table}")
        if name in seen:
            raise ETLConfigError(
                f"the batch for {table} has two columns named {name!r}",
                hint="rename one of them in a transformer",
            )
        seen.add(name)


def _copy(
    cur: psycopg.Cursor[Any], target: sql.Composable, cols: sql.Composable, payload: CopyPayload
) -> None:
    """Send the payload; a writer thread pushes it to the socket while the next slice encodes."""
    statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT {})").format(
        target, cols, sql.SQL(payload.format)
    )
    with cur.copy(statement, writer=QueuedLibpqWriter(cur)) as copy:
        for chunk in payload:
            copy.write(chunk)


def _has_zoned_timestamps(schema: pa.Schema) -> bool:
    return any(pa.types.is_timestamp(f.type) and f.type.tz is not None for f in schema)


@contextmanager
def _utc_session(cur: psycopg.Cursor[Any], needed: bool) -> Iterator[None]:
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
    "PostgresSink",
    "check_identifier",
    "dedupe_last",
    "pg_type",
    "split_table",
]
