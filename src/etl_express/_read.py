"""``etl.read``: stream a loaded table back as JSON-like records."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import pyarrow as pa
from psycopg import sql

from .format import to_records
from .retry import as_etl_error
from .secrets import SecretLike
from .sinks.postgres import split_table
from .store import tables
from .store.database import libpq_url, mask_url, resolve_url
from .store.tables import TableName


@contextmanager
def _reading(table: str, dsn: str) -> Iterator[None]:
    """Driver errors as an ETLError naming the table and database, with the fix."""
    try:
        yield
    except Exception as exc:
        raise as_etl_error(
            exc,
            what=f"reading {table} failed",
            where={"table": table, "database": mask_url(dsn)},
        ) from None


#: the column types ADBC hands over as values of the common format's JSON-like records; any
#: other (uuid, inet, interval, ranges, arrays of those...) is read as its PostgreSQL text
_NATIVE = frozenset(
    (
        "bool", "int2", "int4", "int8", "float4", "float8", "numeric", "text", "varchar",
        "bpchar", "name", "date", "timestamp", "timestamptz", "json", "jsonb", "bytea",
    )
)  # fmt: skip


def readable_columns(
    pgconn: Any, schema: str, name: str, columns: Sequence[str] | None
) -> list[tuple[str, sql.Composable]]:
    """``(column, select expression)`` for each column read (``columns``, else the table's):
    the column itself, or its ``::text`` where ADBC would hand over something that is not a
    JSON-like value (a target column keeps its source's declared type: ``uuid``, ``inet``,
    ``interval``...). Empty when the table does not exist (the read then names the problem)."""
    found = tables.columns(pgconn, TableName(schema, name))
    if not found:
        return []
    out: list[tuple[str, sql.Composable]] = []
    for column in columns or found:
        ident = sql.Identifier(column)
        described = found.get(column)
        # an array's udt_name is its element's with a leading underscore
        kind = None if described is None else described.udt_name.removeprefix("_")
        if kind is not None and kind not in _NATIVE:
            out.append((column, sql.SQL("{}::text AS {}").format(ident, ident)))
        else:
            out.append((column, ident))
    return out


def _select(
    table: str,
    columns: Sequence[str] | None,
    limit: int | None,
    order_by: Sequence[str] | None,
    dsn: str,
    as_of: Any = None,
) -> tuple[str, tuple[Any, ...]]:
    """The query text and its parameters (``as_of``: the versions live at that moment;
    ``order_by=None``: the primary key's order)."""
    import psycopg

    schema, name = split_table(table)
    where: sql.Composable = sql.SQL("")
    params: tuple[Any, ...] = ()
    with psycopg.connect(dsn) as pgconn:  # render identifiers safely for this server
        items = readable_columns(pgconn, schema, name, columns)
        if as_of is not None:
            from .sinks.history import as_of_query

            items, where, moment = as_of_query(pgconn, schema, name, items, as_of)
            params = (moment,)
        cols = sql.SQL(", ").join(expr for _, expr in items) if items else sql.SQL("*")
        query = (
            sql.SQL("SELECT {} FROM {}.{}").format(
                cols, sql.Identifier(schema), sql.Identifier(name)
            )
            + where
        )
        if order_by is None:
            order_by = tables.primary_key(pgconn, TableName(schema, name))
        if order_by:
            query += sql.SQL(" ORDER BY ") + sql.SQL(", ").join(map(sql.Identifier, order_by))
        if limit is not None:
            query += sql.SQL(" LIMIT {}").format(sql.Literal(int(limit)))
        return query.as_string(pgconn), params


@contextmanager
def _executed(
    table: str,
    url: SecretLike | None,
    columns: Sequence[str] | None,
    limit: int | None,
    order_by: Sequence[str] | None,
    as_of: Any,
) -> Iterator[Any]:
    """An ADBC cursor on the store that has run the read of ``table`` (driver errors as an
    ETLError naming the table and database)."""
    import adbc_driver_postgresql.dbapi as adbc

    dsn = libpq_url(resolve_url(url))
    with _reading(table, dsn):
        text, params = _select(table, columns, limit, order_by, dsn, as_of)
        with adbc.connect(dsn) as conn, conn.cursor() as cur:
            cur.execute(text, parameters=params or None)
            yield cur


def read_batches(
    table: str,
    *,
    url: SecretLike | None = None,
    columns: Sequence[str] | None = None,
    limit: int | None = None,
    order_by: Sequence[str] | None = None,
    as_of: Any = None,
) -> Iterator[pa.RecordBatch]:
    """Stream ``table`` from the PostgreSQL store as Arrow record batches, in primary-key
    order unless ``order_by=`` says otherwise (see :func:`read`)."""
    with _executed(table, url, columns, limit, order_by, as_of) as cur:
        yield from cur.fetch_record_batch()


def read_arrow(
    table: str,
    *,
    url: SecretLike | None = None,
    columns: Sequence[str] | None = None,
    limit: int | None = None,
    order_by: Sequence[str] | None = None,
    as_of: Any = None,
) -> pa.Table:
    """``table`` from the store as one Arrow table (its schema even when it is empty), in
    primary-key order unless ``order_by=`` says otherwise (see :func:`read`)."""
    with _executed(table, url, columns, limit, order_by, as_of) as cur:
        return cur.fetch_arrow_table()


def read_pandas(
    table: str,
    *,
    url: SecretLike | None = None,
    columns: Sequence[str] | None = None,
    limit: int | None = None,
    order_by: Sequence[str] | None = None,
    as_of: Any = None,
) -> Any:
    """``table`` from the store as a pandas ``DataFrame`` (needs pandas installed)."""
    try:
        import pandas  # noqa: F401
    except ImportError:
        from .errors import ETLConfigError

        raise ETLConfigError(
            "read_pandas needs pandas", hint="pip install pandas (or use read_arrow)"
        ) from None
    return read_arrow(
        table, url=url, columns=columns, limit=limit, order_by=order_by, as_of=as_of
    ).to_pandas()


def read(
    table: str,
    *,
    url: SecretLike | None = None,
    columns: Sequence[str] | None = None,
    limit: int | None = None,
    order_by: Sequence[str] | None = None,
    as_of: Any = None,
) -> Iterator[dict[str, Any]]:
    """Stream ``table`` (``"schema.table"``) from the store as JSON-like dicts.

    Values are str, int, float, bool, None, list or dict — timestamps as ISO 8601 strings,
    decimals as strings — so ``json.dumps`` works on every record. ``url`` defaults to
    ``ETL_EXPRESS_DATABASE_URL`` or the embedded server. ``as_of`` (a datetime or an ISO 8601
    string; naive means UTC) returns a table loaded with ``PostgresSink(table, history=True)``
    exactly as ``read`` returned it at that moment: its versions loaded by then, with
    ``_etl_valid_to`` and ``_etl_deleted_at`` as they stood (the current versions are those
    with ``_etl_valid_to`` NULL; a later change or delete is not visible in it).

    Rows come in the order of the table's primary key (so ``limit=`` takes the first keys and
    two reads agree); ``order_by=["col", ...]`` sorts by other columns instead, and
    ``order_by=[]`` asks for no order at all (the fastest, in whatever order PostgreSQL
    returns). A table without a primary key has no default order.
    """
    for batch in read_batches(
        table, url=url, columns=columns, limit=limit, order_by=order_by, as_of=as_of
    ):
        yield from to_records(batch)


__all__ = ["read", "read_arrow", "read_batches", "read_pandas"]
