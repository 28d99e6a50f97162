"""The owner of ``etl_express.pipelines`` (what each pipeline declared: freshness,
personal-data columns, target) and ``etl_express.table_schemas`` (a target's columns each
time they change), so ``etl-express status`` and the dashboard judge a pipeline from the
store alone, without its code."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import Connection

from . import tables
from .database import psycopg_connection
from .schema import SCHEMA, now, pipelines, table_schemas


def declare(
    conn: Connection,
    pipeline: str,
    *,
    freshness_s: float | None,
    pii: Sequence[str],
    position_pii: bool,
    target: str | None,
) -> None:
    """Record (or replace) what ``pipeline`` declares."""
    declare_many(
        conn,
        [
            Declaration(
                pipeline,
                freshness_s=freshness_s,
                pii=pii,
                position_pii=position_pii,
                target=target,
            )
        ],
    )


@dataclass(frozen=True)
class Declaration:
    """What one pipeline declares (see :func:`declare`)."""

    pipeline: str
    freshness_s: float | None
    pii: Sequence[str]
    position_pii: bool
    target: str | None


def declare_many(conn: Connection, declared: Sequence[Declaration]) -> None:
    """Record (or replace) what each pipeline of ``declared`` declares, in one statement (a
    replication's tables: one multi-row upsert, not one per table)."""
    if not declared:
        return
    t = now()
    rows: dict[str, dict[str, Any]] = {}  # one row per pipeline: the last declaration wins
    for d in declared:
        rows[d.pipeline] = {
            "pipeline": d.pipeline,
            "freshness_s": d.freshness_s,
            "pii": list(d.pii),
            "position_pii": d.position_pii,
            "target": d.target,
            "declared_at": t,
        }
    stmt = insert(pipelines).values(list(rows.values()))
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[pipelines.c.pipeline],
            set_={
                name: stmt.excluded[name]
                for name in ("freshness_s", "pii", "position_pii", "target", "declared_at")
            },
        )
    )


def declarations(conn: Connection) -> dict[str, dict[str, Any]]:
    """Each pipeline's declaration (empty for a store written before there were any)."""
    if not sa.inspect(conn).has_table(pipelines.name, schema=SCHEMA):
        return {}
    return {r["pipeline"]: dict(r) for r in conn.execute(sa.select(pipelines)).mappings().all()}


def record_columns(
    conn: Connection, pipeline: str, target: str, columns: dict[str, str], run_id: str
) -> bool:
    """Store the target's ``columns`` (name -> type) unless they are what was stored last
    time; ``True`` when a row was added."""
    last = conn.execute(
        sa.select(table_schemas.c.columns)
        .where(table_schemas.c.pipeline == pipeline, table_schemas.c.target == target)
        .order_by(table_schemas.c.id.desc())
        .limit(1)
    ).scalar()
    if last == columns:
        return False
    conn.execute(
        sa.insert(table_schemas).values(
            pipeline=pipeline, target=target, columns=columns, run_id=run_id, recorded_at=now()
        )
    )
    return True


_RECORD_CATALOG_COLUMNS = f"""
INSERT INTO {SCHEMA}.table_schemas (pipeline, target, columns, run_id, recorded_at)
SELECT %(pipeline)s, %(target)s, c.columns, %(run_id)s, %(t)s
FROM ({tables.COLUMN_TYPES_JSON}) AS c(columns)
WHERE c.columns IS NOT NULL AND c.columns IS DISTINCT FROM (
    SELECT s.columns FROM {SCHEMA}.table_schemas s
    WHERE s.pipeline = %(pipeline)s AND s.target = %(target)s
    ORDER BY s.id DESC LIMIT 1)
"""


def record_catalog_columns(
    conn: Connection, pipeline: str, target: tables.TableName, run_id: str
) -> bool:
    """:func:`record_columns` with the columns the catalog gives ``target`` now, in one
    statement (read, compared and stored in the server); ``True`` when a row was added
    (nothing for a table that does not exist)."""
    with psycopg_connection(conn).cursor() as cur:
        cur.execute(
            _RECORD_CATALOG_COLUMNS,
            {
                "table": tables.regclass(target),
                "pipeline": pipeline,
                "target": str(target),
                "run_id": run_id,
                "t": now(),
            },
        )
        return cur.rowcount == 1


def forget(conn: Connection, pipeline: str) -> int:
    """Delete ``pipeline``'s declaration and recorded target columns; the rows removed."""
    declared = conn.execute(sa.delete(pipelines).where(pipelines.c.pipeline == pipeline))
    columns = conn.execute(sa.delete(table_schemas).where(table_schemas.c.pipeline == pipeline))
    return declared.rowcount + columns.rowcount


__all__ = [
    "Declaration",
    "declarations",
    "declare",
    "declare_many",
    "forget",
    "record_catalog_columns",
    "record_columns",
]
