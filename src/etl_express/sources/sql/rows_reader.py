"""Reading a :class:`~.query.ReadPlan` through SQLAlchemy and the database's DB-API driver:
any database, rows cut into batches of driver values turned into Arrow column by column."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from ...errors import SourceError
from ...format import Batch, normalize_name
from .datetimes import driver_problems, guard_driver_dates
from .quarantine import Problems, positioned, typed
from .query import ReadPlan


def read_rows(engine: Engine, plan: ReadPlan, batch_size: int) -> Iterator[Batch]:
    """The plan's rows in batches of ``batch_size``; a value the driver cannot turn into
    Python stops the read with a message that does not quote it."""
    try:
        yield from _rows(engine, plan, batch_size)
    except sa.exc.DataError:
        # the driver could not turn a value into Python (e.g. PostgreSQL's infinite or
        # year-10000 dates); its message quotes the value, so it is not passed on
        raise SourceError(
            f"a value of {plan.label} has no Python form (the driver refused it, e.g. an "
            "infinite date or one past year 9999)",
            where={"table": plan.label},
            hint="map the value in a query= (e.g. NULLIF or LEAST); on PostgreSQL such "
            "dates and timestamps are quarantined naming the column",
        ) from None


def read_only(conn: Connection) -> Connection:
    """``conn`` in read-only transactions where the database supports it."""
    if conn.dialect.name == "postgresql":
        return conn.execution_options(postgresql_readonly=True)
    return conn


def _rows(engine: Engine, plan: ReadPlan, batch_size: int) -> Iterator[Batch]:
    ordering = plan.ordering
    with engine.connect() as conn:
        conn = read_only(conn)
        postgres = conn.dialect.name == "postgresql"
        if postgres:
            # out-of-range dates quarantine their rows as on the other paths; their text
            # is written in UTC like there (a session setting: the source is not changed)
            guard_driver_dates(conn.connection.dbapi_connection)
            conn.exec_driver_sql("SET TimeZone = 'UTC'")
        result = conn.execution_options(stream_results=True, yield_per=batch_size).execute(
            plan.for_drivers()
        )
        names = list(result.keys())
        try:
            for rows in result.partitions(batch_size):
                columns = [list(c) for c in zip(*rows)]
                found: Problems = {}
                if postgres:
                    for name, values in zip(names, columns):
                        for row, problem in driver_problems(
                            normalize_name(name), values, ordering
                        ).items():
                            found.setdefault(row, []).append(problem)
                else:
                    for name, values in zip(names, columns):
                        _no_such_dates(plan, name, values, found)
                arrays = [_column(plan.label, name, c) for name, c in zip(names, columns)]
                batch = pa.RecordBatch.from_arrays(arrays, names=names)
                data, problems = typed(batch, plan.types, plan.label, plan.declared)
                for row, more in found.items():
                    problems.setdefault(row, []).extend(more)
                yield positioned(data, problems, ordering, plan.label)
        finally:
            result.close()  # its server-side cursor, also when a value stops the read


def _no_such_dates(plan: ReadPlan, name: str, values: list[Any], found: Problems) -> None:
    """MariaDB/MySQL's zero and invalid dates (``'0000-00-00'``, ``'2024-02-30'`` stored
    under a lenient ``sql_mode``), which the driver returns as text in a date or datetime
    column: no date holds them, so their rows are quarantined naming the column (the value
    set to NULL here), as PostgreSQL's infinite dates are."""
    column = normalize_name(name)
    want = plan.types.get(column)
    if want is None or not (pa.types.is_date(want) or pa.types.is_timestamp(want)):
        return
    for row, value in enumerate(values):
        if isinstance(value, str):
            # the reason names the column, never the value (it may be a partial birth date)
            zero = "0000-00-00" if pa.types.is_date(want) else "0000-00-00 00:00:00"
            reason = (
                f"column {column!r}: a zero or invalid MariaDB/MySQL date: no value in the "
                f"common format; map it in a SQLSource query=, e.g. NULLIF({name}, '{zero}')"
            )
            found.setdefault(row, []).append((column, value, reason))
            values[row] = None


def _column(label: str, name: str, values: list[Any]) -> pa.Array:
    """One column of driver values as Arrow; values Arrow cannot take stop the read
    naming the column (never a raw conversion error)."""
    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OverflowError):
        kinds = sorted({type(v).__name__ for v in values if v is not None})
        raise SourceError(
            f"column {name!r} of {label}: its {'/'.join(kinds)} values have no exact form "
            "in the common format",
            where={"table": label, "column": name},
            hint=f"cast it in a query= (e.g. CAST({name} AS CHAR) or AS text)",
        ) from None


__all__ = ["read_only", "read_rows"]
