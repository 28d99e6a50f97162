"""Split a SQL table into key ranges of about equal row counts.

Boundaries are quantiles of the partition column, not ``min + i * (max - min) / n``, so
skewed keys (a few dense ranges, big gaps) still give balanced partitions:

* PostgreSQL: ``percentile_disc(ARRAY[1/n, 2/n, ...]) WITHIN GROUP (ORDER BY column)`` —
  over all rows, or over a ``TABLESAMPLE SYSTEM ... REPEATABLE`` sample of about
  ``SAMPLE_ROWS`` rows when the planner estimates more than ``SAMPLE_ABOVE`` rows;
* any other database: ``NTILE(n) OVER (ORDER BY column)`` and the first value of each tile.

A spec is ``{"column": c, "lo": v, "hi": w}`` (``lo`` inclusive, ``hi`` exclusive, values
encoded with :func:`~etl_express.sources.sql.positions.encode_value`); the first range has
no ``lo`` and the last no ``hi``, so rows added later still belong to exactly one
partition. Partitioning on the cursor column gives time windows.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from ...errors import ETLConfigError
from ..base import Partition
from .positions import encode_value
from .query import PlannedSource

#: above this many (estimated) rows the quantiles come from a sample
SAMPLE_ABOVE = 2_000_000
SAMPLE_ROWS = 500_000


def key_ranges(source: PlannedSource, n: int, column: str | None = None) -> list[Partition]:
    """``n`` key ranges (fewer when the column has fewer distinct values) of ``source``."""
    if n < 1:
        raise ETLConfigError(
            f"the number of partitions must be >= 1, got {n}", where={"table": source.table}
        )
    if n == 1:
        return [{}]
    column = column or source.key_columns[0]
    engine = source.engine()
    src = source.selectable(engine)
    if column not in src.c:
        raise ETLConfigError(
            f"partition column {column!r} does not exist in {source.table or 'the query'}",
            hint="partition on the primary key (default) or the cursor column",
        )
    col = src.c[column]
    with engine.connect() as conn:
        nulls = conn.execute(
            sa.select(sa.func.count()).select_from(src).where(col.is_(None))
        ).scalar_one()
        if nulls:
            raise ETLConfigError(
                f"partition column {column!r} has {nulls} NULL values: those rows would belong to no partition",
                where={"table": source.table or "query"},
                hint="partition on the primary key, or on a NOT NULL column",
            )
        if engine.dialect.name == "postgresql":
            bounds = _postgres_quantiles(conn, source, src, column, n)
        else:
            bounds = _ntile_bounds(conn, src, col, n)
    edges: list[Any] = []
    for b in bounds:
        if b is not None and (not edges or b > edges[-1]):
            edges.append(b)
    if not edges:
        return [{}]
    specs: list[Partition] = []
    lo: Any = None
    for b in [*edges, None]:
        specs.append(
            {
                "column": column,
                "lo": None if lo is None else encode_value(lo),
                "hi": None if b is None else encode_value(b),
            }
        )
        lo = b
    return specs


def _estimated_rows(conn: sa.Connection, table: str | None) -> float:
    if table is None:
        return 0.0
    est = conn.execute(
        sa.text("SELECT reltuples FROM pg_class WHERE oid = to_regclass(:t)"), {"t": table}
    ).scalar()
    return float(est or 0)


def _postgres_quantiles(
    conn: sa.Connection, source: PlannedSource, src: sa.FromClause, column: str, n: int
) -> list[Any]:
    # just above i/n, so each boundary is the first value of the next range (n equal ranges
    # when the row count divides evenly)
    fractions = [i / n + 1e-12 for i in range(1, n)]
    rows = _estimated_rows(conn, source.table)
    quoted = conn.dialect.identifier_preparer.quote(column)
    if source.table is not None:
        schema, _, name = source.table.rpartition(".")
        prep = conn.dialect.identifier_preparer
        table_sql = (prep.quote(schema) + "." if schema else "") + prep.quote(name)
        if rows > SAMPLE_ABOVE:
            pct = min(100.0, 100.0 * SAMPLE_ROWS / rows)
            table_sql += f" TABLESAMPLE SYSTEM ({pct:.6f}) REPEATABLE (42)"
    else:
        compiled = sa.select(src).compile(
            dialect=conn.dialect, compile_kwargs={"literal_binds": True}
        )
        table_sql = f"({compiled}) AS q"
    value = conn.execute(
        sa.text(
            f"SELECT percentile_disc(CAST(:f AS double precision[])) WITHIN GROUP (ORDER BY {quoted}) "
            f"FROM {table_sql}"
        ),
        {"f": fractions},
    ).scalar()
    return list(value or [])


def _ntile_bounds(
    conn: sa.Connection, src: sa.FromClause, col: sa.ColumnElement[Any], n: int
) -> list[Any]:
    tiles = (
        sa.select(col.label("v"), sa.func.ntile(n).over(order_by=col).label("tile"))
        .select_from(src)
        .subquery()
    )
    q = sa.select(sa.func.min(tiles.c.v)).group_by(tiles.c.tile).order_by(tiles.c.tile)
    return [r[0] for r in conn.execute(q).all()][1:]


__all__ = ["SAMPLE_ABOVE", "SAMPLE_ROWS", "key_ranges"]
