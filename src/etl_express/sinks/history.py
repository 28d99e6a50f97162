"""History for ``PostgresSink(table, history=True)``: every version of a row (SCD type 2).

Each row version carries ``_etl_valid_from`` and ``_etl_valid_to`` (the load transaction's
time on the store's clock; ``_etl_valid_to`` is NULL for the current version). A batch is
staged, then, in the pipeline's transaction:

1. the current versions whose content differs from the staged row (or that the batch marks
   deleted, ``_etl_deleted_at``) are closed (``_etl_valid_to = now()``);
2. the staged rows that have no current version left (new keys, changed keys, keys coming
   back) are inserted as the current version (``_etl_valid_from = now()``);
3. an unchanged row only refreshes its ``_etl_row_hash``: it creates no new version.

Content means the columns the source delivered, not lineage (``_etl_*``), so a replayed batch
or a re-read unchanged row never adds a version. Uniqueness: one version per key and
``_etl_valid_from``, and at most one current version per key (a partial unique index).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg import sql

from ..errors import ETLConfigError, SinkError
from ..format import DELETED_AT, ROW_HASH, VALID_FROM, VALID_TO
from ..store import tables
from ..store.tables import TableName


def _index_name(table: str, what: str) -> str:
    return f"_etl_{what}_" + hashlib.blake2b(table.encode(), digest_size=6).hexdigest()


def create_columns(names: Sequence[str]) -> list[sql.Composable]:
    """The history columns a new table needs besides the batch's ``names`` (its key
    constraints come from :func:`prepare`)."""
    columns = {
        VALID_FROM: sql.SQL("{} timestamp with time zone NOT NULL DEFAULT now()"),
        VALID_TO: sql.SQL("{} timestamp with time zone"),
        DELETED_AT: sql.SQL("{} timestamp with time zone"),
    }
    return [d.format(sql.Identifier(n)) for n, d in columns.items() if n not in names]


def prepare(
    cur: psycopg.Cursor[Any],
    ident: sql.Composable,
    table: str,
    existing: dict[str, str],
    primary_key: Sequence[str],
) -> None:
    """Check an existing table keeps history; create the version indexes (idempotent)."""
    if existing and VALID_FROM not in existing:
        raise SinkError(
            f"{table} exists without history columns ({VALID_FROM}, {VALID_TO})",
            where={"table": table},
            hint="load history into a new table, or drop PostgresSink(history=True)",
        )
    if not primary_key:
        raise SinkError(
            f"history=True needs the source's primary key to tell versions of a row apart ({table})",
            where={"table": table},
            hint="declare primary_key= on the source",
        )
    keys = [sql.Identifier(c) for c in primary_key]
    cur.execute(
        sql.SQL("CREATE UNIQUE INDEX IF NOT EXISTS {} ON {} ({})").format(
            sql.Identifier(_index_name(table, "versions")),
            ident,
            sql.SQL(", ").join([*keys, sql.Identifier(VALID_FROM)]),
        )
    )
    cur.execute(
        sql.SQL("CREATE UNIQUE INDEX IF NOT EXISTS {} ON {} ({}) WHERE {} IS NULL").format(
            sql.Identifier(_index_name(table, "current")),
            ident,
            sql.SQL(", ").join(keys),
            sql.Identifier(VALID_TO),
        )
    )


def write(
    cur: psycopg.Cursor[Any],
    ident: sql.Composable,
    stage_name: str,
    names: Sequence[str],
    primary_key: Sequence[str],
    copy: Any,
) -> None:
    """Stage the batch (``copy(cur, stage, cols)`` sends it) and apply it as versions."""
    stage = sql.Identifier(stage_name)
    cols = sql.SQL(", ").join(map(sql.Identifier, names))
    cur.execute(
        sql.SQL(
            "CREATE TEMP TABLE IF NOT EXISTS {} ON COMMIT DROP AS SELECT {} FROM {} WITH NO DATA"
        ).format(stage, cols, ident)
    )
    copy(cur, stage, cols)
    match = sql.SQL(" AND ").join(
        sql.SQL("t.{} = s.{}").format(sql.Identifier(k), sql.Identifier(k)) for k in primary_key
    )
    current = sql.SQL("t.{} IS NULL").format(sql.Identifier(VALID_TO))
    content = [n for n in names if not n.startswith("_etl_") and n not in primary_key]
    changed = (
        sql.SQL("({}) IS DISTINCT FROM ({})").format(
            sql.SQL(", ").join(sql.SQL("t.{}::text").format(sql.Identifier(n)) for n in content),
            sql.SQL(", ").join(sql.SQL("s.{}::text").format(sql.Identifier(n)) for n in content),
        )
        if content
        else sql.SQL("false")
    )
    marked = DELETED_AT in names
    closes = (
        changed + sql.SQL(" OR s.{} IS NOT NULL").format(sql.Identifier(DELETED_AT))
        if marked
        else changed
    )
    sets = sql.SQL("{} = now()").format(sql.Identifier(VALID_TO))
    if marked:
        sets += sql.SQL(", {} = s.{}").format(
            sql.Identifier(DELETED_AT), sql.Identifier(DELETED_AT)
        )
    cur.execute(
        sql.SQL("UPDATE {} AS t SET ").format(ident)
        + sets
        + sql.SQL(" FROM {} AS s WHERE ").format(stage)
        + match
        + sql.SQL(" AND ")
        + current
        + sql.SQL(" AND (")
        + closes
        + sql.SQL(")")
    )
    if ROW_HASH in names:
        cur.execute(
            sql.SQL("UPDATE {} AS t SET {} = s.{} FROM {} AS s WHERE ").format(
                ident, sql.Identifier(ROW_HASH), sql.Identifier(ROW_HASH), stage
            )
            + match
            + sql.SQL(" AND ")
            + current
            + sql.SQL(" AND t.{} IS DISTINCT FROM s.{}").format(
                sql.Identifier(ROW_HASH), sql.Identifier(ROW_HASH)
            )
        )
    alive = (
        sql.SQL(" AND s.{} IS NULL").format(sql.Identifier(DELETED_AT)) if marked else sql.SQL("")
    )
    cur.execute(
        sql.SQL(
            "INSERT INTO {} ({}, {}, {}) SELECT {}, now(), NULL FROM {} AS s "
            "WHERE NOT EXISTS (SELECT 1 FROM {} AS t WHERE "
        ).format(
            ident,
            cols,
            sql.Identifier(VALID_FROM),
            sql.Identifier(VALID_TO),
            sql.SQL(", ").join(sql.SQL("s.{}").format(sql.Identifier(n)) for n in names),
            stage,
            ident,
        )
        + match
        + sql.SQL(" AND ")
        + current
        + sql.SQL(")")
        + alive
    )
    cur.execute(sql.SQL("DROP TABLE {}").format(stage))


def as_of_moment(as_of: Any) -> dt.datetime:
    """``as_of`` (a datetime or an ISO 8601 string) as an aware datetime; naive means UTC."""
    if isinstance(as_of, str):
        try:
            moment = dt.datetime.fromisoformat(as_of.strip().replace("Z", "+00:00"))
        except ValueError:
            raise ETLConfigError(
                f"as_of={as_of!r} is not an ISO 8601 date or time",
                hint='e.g. as_of="2024-05-01T12:00:00+03:00" or a datetime',
            ) from None
    elif isinstance(as_of, dt.datetime):
        moment = as_of
    elif isinstance(as_of, dt.date):
        moment = dt.datetime.combine(as_of, dt.time())
    else:
        raise ETLConfigError(
            f"as_of must be a datetime or an ISO 8601 string, got {type(as_of).__name__}"
        )
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.timezone.utc)


def as_of_query(
    pgconn: psycopg.Connection[Any],
    schema: str,
    name: str,
    items: Sequence[tuple[str, sql.Composable]],
    as_of: Any,
) -> tuple[list[tuple[str, sql.Composable]], sql.Composable, dt.datetime]:
    """The select list (``items``: ``(column, expression)`` as read now) and ``WHERE``
    clause (``$1``: the moment) that read the history table
    exactly as :func:`etl_express.read` returned it at ``as_of``: every version loaded by then
    (current and closed ones, as a read then gave them), with the columns a later load
    changed in place — ``_etl_valid_to`` when a version closes, ``_etl_deleted_at`` when a
    delete marks it — as they stood: a version closed or deleted after ``as_of`` is open and
    live in it. Versions loaded later are not in it; a hard delete erases a key's versions
    from every moment."""
    moment = as_of_moment(as_of)
    have = list(tables.columns(pgconn, TableName(schema, name)))  # in table order
    if not have:
        raise ETLConfigError(f"table {schema}.{name} does not exist", hint="check the table name")
    if VALID_FROM not in have or VALID_TO not in have:
        raise ETLConfigError(
            f"{schema}.{name} keeps no history, so it cannot be read as of {moment.isoformat()}",
            where={"table": f"{schema}.{name}"},
            hint="load it with PostgresSink(table, history=True)",
        )
    selected: list[tuple[str, sql.Composable]] = []
    for column, expression in items:
        ident = sql.Identifier(column)
        if column in (VALID_TO, DELETED_AT):  # set in place by a later load: as it stood
            expression = sql.SQL("CASE WHEN {} <= $1 THEN {} END AS {}").format(ident, ident, ident)
        selected.append((column, expression))
    clause = sql.SQL(" WHERE {} <= $1").format(sql.Identifier(VALID_FROM))
    return selected, clause, moment


__all__ = ["as_of_moment", "as_of_query", "create_columns", "prepare", "write"]
