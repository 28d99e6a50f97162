"""What PostgreSQL's catalog says about a table in the store's database — a sink's target:
whether it exists, its columns and their types, its unique keys.

The one module that reads ``pg_catalog`` for them: the sinks,
quality checks, quarantine replay, history reads and the status records ask here. It reads
on the caller's connection (a SQLAlchemy ``Connection`` or a psycopg connection or cursor),
inside the caller's transaction, so a table created earlier in it is seen.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple, TypeAlias

from sqlalchemy.engine import Connection

from .database import psycopg_connection

if TYPE_CHECKING:  # psycopg loads when a table is first read (sinks import this module)
    import psycopg
    from psycopg import sql

    #: a SQLAlchemy connection, or a psycopg connection or cursor
    Reader: TypeAlias = Connection | psycopg.Connection[Any] | psycopg.Cursor[Any]


class TableName(NamedTuple):
    """A table in the store's database: ``TableName("crm", "customers")`` is
    ``crm.customers``."""

    schema: str
    name: str

    def __str__(self) -> str:
        return f"{self.schema}.{self.name}"

    @property
    def ident(self) -> sql.Composed:
        """The quoted name for SQL: ``"crm"."customers"``."""
        from psycopg import sql

        return sql.SQL("{}.{}").format(sql.Identifier(self.schema), sql.Identifier(self.name))


@dataclass(frozen=True)
class Column:
    """A column as ``information_schema.columns`` describes it: ``data_type`` is its type's
    SQL name (``bigint``, ``numeric``, ``timestamp with time zone``, ``ARRAY``,
    ``USER-DEFINED``...), ``udt_name`` the underlying type (``int8``, ``_text``, ``citext``);
    ``precision`` and ``scale`` are set for numeric types, ``length`` for ``char(n)`` and
    ``varchar(n)``; ``formatted`` is the full type as PostgreSQL writes it (``character(10)``,
    ``numeric(12,2)``, ``integer[]``)."""

    name: str
    data_type: str
    udt_name: str
    precision: int | None = None
    scale: int | None = None
    length: int | None = None
    formatted: str | None = None


def _fetch(conn: Reader, query: str | sql.Composed, params: tuple[Any, ...]) -> list[Any]:
    import psycopg

    raw = psycopg_connection(conn) if isinstance(conn, Connection) else conn
    if isinstance(raw, psycopg.Cursor):
        return list(raw.execute(query, params).fetchall())
    with raw.cursor() as cur:
        return list(cur.execute(query, params).fetchall())


#: ``information_schema.columns``' fields for one table, computed as that view computes them
#: (PostgreSQL 15's definition: the same data_type, udt_name, precision, scale, length and
#: visibility) but from ``pg_catalog`` by the table's oid: planning the view costs several
#: times more, and a run asks this for every table it writes
_COLUMNS = """
SELECT a.attname::text,
  CASE WHEN t.typtype = 'd' THEN
    CASE WHEN bt.typelem <> 0 AND bt.typlen = -1 THEN 'ARRAY'
         WHEN nbt.nspname = 'pg_catalog' THEN format_type(t.typbasetype, NULL)
         ELSE 'USER-DEFINED' END
  ELSE
    CASE WHEN t.typelem <> 0 AND t.typlen = -1 THEN 'ARRAY'
         WHEN nt.nspname = 'pg_catalog' THEN format_type(a.atttypid, NULL)
         ELSE 'USER-DEFINED' END
  END,
  coalesce(bt.typname, t.typname)::text,
  information_schema._pg_numeric_precision(information_schema._pg_truetypid(a, t),
                                           information_schema._pg_truetypmod(a, t)),
  information_schema._pg_numeric_scale(information_schema._pg_truetypid(a, t),
                                       information_schema._pg_truetypmod(a, t)),
  information_schema._pg_char_max_length(information_schema._pg_truetypid(a, t),
                                         information_schema._pg_truetypmod(a, t)),
  format_type(a.atttypid, a.atttypmod)
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_type t ON t.oid = a.atttypid
JOIN pg_namespace nt ON nt.oid = t.typnamespace
LEFT JOIN (pg_type bt JOIN pg_namespace nbt ON nbt.oid = bt.typnamespace)
  ON t.typtype = 'd' AND t.typbasetype = bt.oid
WHERE a.attrelid = to_regclass(%s) AND a.attnum > 0 AND NOT a.attisdropped
  AND c.relkind IN ('r', 'v', 'f', 'p') AND NOT pg_is_other_temp_schema(c.relnamespace)
  AND (pg_has_role(c.relowner, 'USAGE')
       OR has_column_privilege(c.oid, a.attnum, 'SELECT, INSERT, UPDATE, REFERENCES'))
ORDER BY a.attnum
"""


#: the :func:`column_types` of the table the parameter ``%(table)s`` names (its
#: :func:`regclass` text) as one jsonb object, NULL for no such table: for a statement that
#: stores them without reading them into Python first
COLUMN_TYPES_JSON = (
    "SELECT jsonb_object_agg(c.name, c.data_type) FROM ("
    + _COLUMNS.replace("%s", "%(table)s")
    + ") AS c(name, data_type, udt_name, num_precision, num_scale, char_length, formatted)"
)


def columns(conn: Reader, table: TableName) -> dict[str, Column]:
    """The table's columns in their order (empty: no such table, or none visible)."""
    return columns_from(_fetch(conn, _COLUMNS, (regclass(table),)))


def columns_query(table: TableName) -> sql.Composed:
    """The :func:`columns` query of ``table`` with its name inlined (no parameter), for a
    caller that sends it along with other statements (pipelined, or as one simple query);
    read its rows with :func:`columns_from`."""
    from psycopg import sql

    return sql.SQL(_COLUMNS.replace("%s", "{}")).format(sql.Literal(regclass(table)))


def columns_from(rows: list[Any]) -> dict[str, Column]:
    """:func:`columns` from the rows of :func:`columns_query`."""
    return {r[0]: Column(*r) for r in rows}


def column_types(conn: Reader, table: TableName) -> dict[str, str]:
    """Column name -> ``data_type``, in order (empty: no such table)."""
    return {name: c.data_type for name, c in columns(conn, table).items()}


def exists(conn: Reader, table: TableName) -> bool:
    """The table (or view) exists."""
    from psycopg import sql

    query = sql.SQL("SELECT to_regclass({}) IS NOT NULL").format(sql.Literal(regclass(table)))
    return bool(_fetch(conn, query, ())[0][0])


def unique_keys(conn: Reader, table: TableName) -> list[list[str]]:
    """The column sets of the table's unique indexes without a predicate (the primary key
    among them), each sorted by name."""
    rows = _fetch(
        conn,
        "SELECT array_agg(a.attname::text ORDER BY a.attname) FROM pg_index i "
        "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) "
        "WHERE i.indrelid = to_regclass(%s) AND i.indisunique AND i.indpred IS NULL "
        "GROUP BY i.indexrelid",
        (regclass(table),),
    )
    return [list(r[0]) for r in rows]


def primary_key(conn: Reader, table: TableName) -> list[str]:
    """The table's primary key columns in key order (empty: none, or no such table)."""
    rows = _fetch(
        conn,
        "SELECT a.attname::text FROM pg_index i "
        "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey) "
        "WHERE i.indrelid = to_regclass(%s) AND i.indisprimary "
        "ORDER BY array_position(i.indkey::int2[], a.attnum)",
        (regclass(table),),
    )
    return [r[0] for r in rows]


def count_rows(conn: Reader, table: TableName, *, source: str | None, current: bool) -> int:
    """The table's rows: those of ``source`` (its ``_etl_source``) only when given, the
    current versions only (``_etl_valid_to IS NULL``, a history table) with ``current``.
    Plain SQL: nothing built or compiled per table."""
    from psycopg import sql

    conditions: list[sql.Composable] = []
    params: tuple[Any, ...] = ()
    if source is not None:
        conditions.append(sql.SQL("_etl_source = %s"))
        params = (source,)
    if current:
        conditions.append(sql.SQL("_etl_valid_to IS NULL"))
    query = sql.SQL("SELECT count(*) FROM {}").format(table.ident)
    if conditions:
        query += sql.SQL(" WHERE ") + sql.SQL(" AND ").join(conditions)
    return int(_fetch(conn, query, params)[0][0])


def regclass(table: TableName) -> str:
    """``"schema"."table"`` quoted for ``to_regclass`` (embedded quotes doubled)."""
    return ".".join('"' + part.replace('"', '""') + '"' for part in table)


__all__ = [
    "COLUMN_TYPES_JSON",
    "Column",
    "TableName",
    "column_types",
    "columns",
    "columns_from",
    "columns_query",
    "count_rows",
    "exists",
    "primary_key",
    "regclass",
    "unique_keys",
]
