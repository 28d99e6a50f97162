"""The target table of ``PostgresSink``: its name, its column types, creating and growing it.

A table is created from the first batch's schema with the source's primary key; later
batches may add columns (never dropped) and widen a column where every value it can hold
stays exact (integer to bigint, varchar to text, integer to numeric, numeric(p,s) to
unconstrained numeric, integer to double precision while every stored value is exact in
it); any other type change stops the run before anything is written, naming the column.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
import pyarrow as pa
import pyarrow.compute as pc
from psycopg import sql
from sqlalchemy.engine import Connection

from ..errors import ETLConfigError, SinkError
from ..format import LINEAGE_COLUMNS, MAX_IDENTIFIER_BYTES, RUN_ID, is_json_field
from ..format_types import declared_type
from ..store import tables
from ..store.database import psycopg_connection
from ..store.tables import TableName
from . import history, pglineage
from .pgtypes import declared_widening
from .pgwrite import lock_timeout


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
    """The column type for a canonical field: the PostgreSQL type it was declared with at
    the source (``character(10)``, ``integer``...), ``jsonb`` for JSON text of nested
    values, else the canonical type's."""
    declared = declared_type(field)
    if declared is not None:
        return declared
    return "jsonb" if is_json_field(field) else pg_type(field.type)


# existing column type -> arrow types that load into it unchanged (every value exactly:
# no decimal or float into an integer, no decimal into double precision)
COMPATIBLE = {
    "text": lambda t: True,
    "character varying": lambda t: True,
    "character": pa.types.is_string,
    "smallint": pa.types.is_integer,
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


def check_columns(schema: pa.Schema, table: str) -> None:
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


def identifier(schema_name: str, table_name: str) -> sql.Composed:
    """``"schema"."table"`` quoted for a statement."""
    return sql.SQL("{}.{}").format(sql.Identifier(schema_name), sql.Identifier(table_name))


def _exact_in_double(cur: psycopg.Cursor[Any], ident: sql.Composable, column: str) -> bool:
    """Whether every value of a bigint column is exact in double precision (a widening
    to double precision is refused otherwise)."""
    row = cur.execute(
        sql.SQL("SELECT coalesce(max(abs({})), 0) <= {} FROM {}").format(
            sql.Identifier(column), sql.Literal(EXACT_DOUBLE_INT), ident
        )
    ).fetchone()
    return bool(row and row[0])


@dataclass
class Prepared:
    """What :func:`prepare_table` left: the table's columns (name -> data type), whether it
    created the table, whether the key still lacks its unique index (a table created
    with ``defer_key``), and whether it was created without the lineage columns, which the
    load adds at its end (:mod:`.pglineage`)."""

    columns: dict[str, str]
    created: bool = False
    key_deferred: bool = False
    lineage_deferred: bool = False


def prepare_table(
    conn: Connection,
    schema_name: str,
    table_name: str,
    schema: pa.Schema,
    primary_key: Sequence[str],
    *,
    key_constraint: bool,
    keep_history: bool,
    ddl_lock_timeout: float | None,
    defer_key: bool = False,
    keep_deferring: bool = False,
) -> Prepared:
    """Create the table for ``schema``, or add and widen its columns.

    Runs in the caller's transaction under an advisory lock on the table's name, so two
    writers never race on the DDL. ``key_constraint`` makes ``primary_key`` the table's
    PRIMARY KEY (upserts need it); ``keep_history`` adds the version columns and indexes
    of :mod:`.history`. A schema change waits at most ``ddl_lock_timeout`` seconds for the
    locks of readers (``None``: as long as it takes).

    ``defer_key``: a table created now gets its key columns (NOT NULL) but not yet the
    PRIMARY KEY, which a bulk load adds at its end (:func:`add_primary_key`). An existing
    table of etl-express's (it has the lineage columns) whose key has no unique index, as
    such a load leaves it when it stops early, gets its PRIMARY KEY here before anything
    else is written, unless ``keep_deferring`` (the load that created it goes on).
    """
    table = f"{schema_name}.{table_name}"
    ident = identifier(schema_name, table_name)
    check_columns(schema, table)
    raw = psycopg_connection(conn)
    target = TableName(schema_name, table_name)
    # the DDL lock, then the columns as they are once it is held: one round trip
    found = _statements(raw, [_ddl_lock_statement(target), tables.columns_query(target)])
    existing = {name: c.data_type for name, c in found.items()}
    keyed = bool(primary_key) and key_constraint and not keep_history
    deferred = lineage_deferred = False
    reread = keep_history  # the history's indexes and columns: read them back
    with raw.cursor() as cur:
        if not existing:
            deferred = keyed and defer_key
            lineage_deferred = deferred and pglineage.deferrable(schema)
            columns = schema
            if lineage_deferred:
                columns = pa.schema([f for f in schema if f.name not in LINEAGE_COLUMNS])
            create = _create(
                ident, table, columns, primary_key, keyed and not deferred, keep_history
            )
            # the schema, the table and its columns as created: one round trip
            schema_ddl = sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(
                sql.Identifier(schema_name)
            )
            statements = [schema_ddl, create]
            if lineage_deferred:  # marked, should the load stop before its first batch
                statements.append(pglineage.created_pending(ident))
            found = _statements(raw, [*statements, tables.columns_query(target)])
        else:
            typmods = {
                n: (c.precision, c.scale) for n, c in found.items() if c.data_type == "numeric"
            }
            formatted = {n: c.formatted or c.data_type for n, c in found.items()}
            # a first load may have left them out: then they come with its rows' values
            lacking = any(n in schema.names and n not in existing for n in LINEAGE_COLUMNS)
            if lacking and pglineage.materialize(cur, ident, lock_timeout=ddl_lock_timeout):
                existing.update(pglineage.LINEAGE_TYPES)
                reread = True
            changes = _changes(cur, ident, table, schema, existing, typmods, formatted)
            if changes:
                with lock_timeout(cur, ddl_lock_timeout):
                    alter = sql.SQL("ALTER TABLE {} ").format(ident)
                    cur.execute(alter + sql.SQL(", ").join(changes))
                reread = True
            if keyed and RUN_ID in existing and not has_unique_key(cur, target, primary_key):
                if keep_deferring:
                    deferred = True
                else:
                    add_primary_key(cur, target, primary_key, ddl_lock_timeout)
        if keep_history:
            history.prepare(cur, ident, table, existing, primary_key)
    types = (
        tables.column_types(conn, target)
        if reread
        else {name: c.data_type for name, c in found.items()}
    )
    return Prepared(types, not existing, deferred, lineage_deferred)


def _statements(
    raw: psycopg.Connection[Any], statements: Sequence[sql.Composed]
) -> dict[str, tables.Column]:
    """Run ``statements`` (no parameters) in order as one simple query, one round trip
    (cheaper in the client than psycopg's pipeline mode, measured); the last is
    :func:`~etl_express.store.tables.columns_query`: its columns."""
    with raw.cursor() as cur:
        cur.execute(sql.SQL("; ").join(statements))
        while cur.nextset():
            pass
        return tables.columns_from(cur.fetchall())


def has_unique_key(cur: psycopg.Cursor[Any], table: TableName, key: Sequence[str]) -> bool:
    """Whether a unique index (or the primary key) covers exactly the ``key`` columns, so
    that ``ON CONFLICT (key)`` finds it."""
    return sorted(key) in tables.unique_keys(cur, table)


def add_primary_key(
    cur: psycopg.Cursor[Any],
    target: TableName,
    key: Sequence[str],
    ddl_lock_timeout: float | None,
) -> bool:
    """Give ``target`` its PRIMARY KEY on ``key`` (one index build over the rows already
    there), unless a unique index on ``key`` is there already; ``True`` when it built it.

    Under the table's DDL lock, so that the writers of several partitions finishing the same
    first load at once build it once: the one that waited sees the other's key and stops.
    """
    _ddl_lock(cur, target)
    if has_unique_key(cur, target, key):
        return False
    ident = identifier(target.schema, target.name)
    key_clause = sql.SQL("ADD PRIMARY KEY ({})").format(
        sql.SQL(", ").join(map(sql.Identifier, key))
    )
    # lineage defaults an earlier version's first load left (see .pglineage) end with it
    clauses = [key_clause, *pglineage.drop_defaults_sql(cur, ident)]
    cur.execute("SET LOCAL maintenance_work_mem = '256MB'")  # sorts a few million keys in memory
    with lock_timeout(cur, ddl_lock_timeout):
        cur.execute(sql.SQL("ALTER TABLE {} ").format(ident) + sql.SQL(", ").join(clauses))
    cur.execute("SET LOCAL maintenance_work_mem TO DEFAULT")
    return True


def _ddl_lock(cur: psycopg.Cursor[Any], target: TableName) -> None:
    """The transaction's lock on the DDL of ``target`` (held until it ends)."""
    cur.execute(_ddl_lock_statement(target))


def _ddl_lock_statement(target: TableName) -> sql.Composed:
    return sql.SQL("SELECT pg_advisory_xact_lock(hashtext({}))").format(
        sql.Literal(f"etl_express.ddl:{target.schema}.{target.name}")
    )


def _create(
    ident: sql.Composable,
    table: str,
    schema: pa.Schema,
    primary_key: Sequence[str],
    key_constraint: bool,
    keep_history: bool,
) -> sql.Composed:
    """The CREATE TABLE statement of the table for ``schema``."""
    missing_pk = [c for c in primary_key if c not in schema.names]
    if missing_pk:
        raise ETLConfigError(
            f"primary key column(s) {missing_pk} are not in the data for {table}",
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
    if keep_history:
        cols.extend(history.create_columns(schema.names))
    elif primary_key and key_constraint:
        cols.append(
            sql.SQL("PRIMARY KEY ({})").format(sql.SQL(", ").join(map(sql.Identifier, primary_key)))
        )
    return sql.SQL("CREATE TABLE IF NOT EXISTS {} ({})").format(ident, sql.SQL(", ").join(cols))


def _changes(
    cur: psycopg.Cursor[Any],
    ident: sql.Composable,
    table: str,
    schema: pa.Schema,
    existing: dict[str, str],
    typmods: dict[str, tuple[int | None, int | None]],
    formatted: dict[str, str],
) -> list[sql.Composable]:
    """The ALTER TABLE clauses that let ``existing`` take ``schema`` exactly; raises
    :class:`SinkError` naming every column it cannot."""
    problems = []
    changes: list[sql.Composable] = []
    for f in schema:
        have = existing.get(f.name)
        if have is None:
            changes.append(
                sql.SQL("ADD COLUMN IF NOT EXISTS {} {}").format(
                    sql.Identifier(f.name), sql.SQL(pg_column_type(f))
                )
            )
            continue
        declared = declared_type(f)
        if declared is not None and f.name in formatted:
            if formatted[f.name] == declared:
                continue  # the column the source declares
            grown = declared_widening(formatted[f.name], declared)
            if grown is not None:
                changes.append(
                    sql.SQL("ALTER COLUMN {} TYPE {}").format(
                        sql.Identifier(f.name), sql.SQL(grown)
                    )
                )
                continue
            if COMPATIBLE.get(have, lambda t: False)(f.type):
                continue  # e.g. a text column keeps taking a character(n) one
        wider = _widening(have, f.type)
        if have == "numeric" and pa.types.is_decimal(f.type):
            if not _fits(typmods.get(f.name, (None, None)), f.type):
                wider = "numeric"  # drop the typmod: lossless, values unchanged
        elif (
            have == "bigint"
            and pa.types.is_floating(f.type)
            and _exact_in_double(cur, ident, f.name)
        ):
            wider = "double precision"
        if wider is not None:
            changes.append(
                sql.SQL("ALTER COLUMN {} TYPE {}").format(sql.Identifier(f.name), sql.SQL(wider))
            )
        elif not COMPATIBLE.get(have, lambda t: False)(f.type):
            problems.append(
                f"column {f.name!r} is {have} in {table} but the source now "
                f"sends {f.type}, which it cannot hold exactly"
            )
    if problems:
        raise SinkError(
            "incompatible schema change: " + "; ".join(problems),
            where={"table": table},
            hint="cast the column in a transformer (e.g. Cast) or migrate the target table by hand",
        )
    return changes


def align(batch: pa.RecordBatch, columns: dict[str, str], table: str) -> pa.RecordBatch:
    """The batch as the target's ``columns`` store it: a column the target keeps as text
    (after a widening) is cast to string; integers beyond 2**53 for a double precision
    column are refused (they would be rounded)."""
    arrays = []
    changed = False
    for f, col in zip(batch.schema, batch.columns):
        if (
            columns.get(f.name) == "double precision"
            and pa.types.is_integer(f.type)
            and not _exact_ints(col)
        ):
            raise SinkError(
                f"column {f.name!r} is double precision in {table} and the batch "
                f"holds integers beyond 2**53, which it would round",
                where={"table": table, "column": f.name},
                hint="migrate the column to numeric (ALTER TABLE ... TYPE numeric) or cast "
                "the source column",
            )
        if columns.get(f.name) in ("text", "jsonb", "json") and not pa.types.is_string(f.type):
            arrays.append(pc.cast(col, pa.string()))
            changed = True
        else:
            arrays.append(col)
    if not changed:
        return batch
    return pa.RecordBatch.from_arrays(arrays, names=batch.schema.names)


def _exact_ints(col: pa.Array) -> bool:
    bounds = pc.min_max(col).as_py()
    low, high = bounds["min"], bounds["max"]
    return low is None or (low >= -EXACT_DOUBLE_INT and high <= EXACT_DOUBLE_INT)


__all__ = [
    "COMPATIBLE",
    "EXACT_DOUBLE_INT",
    "Prepared",
    "add_primary_key",
    "align",
    "check_columns",
    "check_identifier",
    "has_unique_key",
    "identifier",
    "pg_column_type",
    "pg_type",
    "prepare_table",
    "split_table",
]
