"""What a SQL database says about its tables before anything is read: the columns of a
table or a query (by reflection), and the common format's type for each declared SQL type."""

from __future__ import annotations

import warnings

import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ...errors import SourceError
from ...format import TIMESTAMP, normalize_name


def reflect_table(engine: Engine, table: str, *, where: str = "") -> sa.Table:
    """``table`` (``name`` or ``schema.name``) as SQLAlchemy reflects it; a missing table is a
    :class:`SourceError` naming it (``where``: the database, masked, for the message)."""
    schema, _, name = table.rpartition(".")
    try:
        with warnings.catch_warnings():
            # types SQLAlchemy does not model (point, xml, ...): read as text, see
            # query.postgres_text_columns
            warnings.filterwarnings("ignore", "Did not recognize type", category=sa.exc.SAWarning)
            return sa.Table(name, sa.MetaData(), schema=schema or None, autoload_with=engine)
    except sa.exc.NoSuchTableError:
        raise SourceError(
            f"table {table!r} does not exist" + (f" in {where}" if where else ""),
            hint="check the table name and schema, and that the user may read it",
        ) from None


def query_columns(engine: Engine, query: str) -> sa.Subquery:
    """A ``SELECT`` as a selectable with its result's column names (types unknown)."""
    with engine.connect() as conn:
        names = list(conn.execute(sa.text(f"SELECT * FROM ({query}) AS q WHERE 1 = 0")).keys())
    return sa.text(query).columns(*[sa.column(n) for n in names]).subquery("q")


def arrow_type(t: sa.types.TypeEngine, dialect: str = "") -> pa.DataType | None:
    """The common format's type for a column of SQL type ``t`` (``None``: known only from
    the values or the driver's description)."""
    if isinstance(t, sa.Boolean):
        return pa.bool_()
    if isinstance(t, sa.BigInteger) and getattr(t, "unsigned", False):
        return pa.decimal128(20, 0)
    if isinstance(t, sa.Integer):
        return pa.int64()
    if isinstance(t, sa.Float):
        return pa.float64()
    if isinstance(t, sa.Numeric):
        return exact_numeric_type(t)
    if isinstance(t, sa.DateTime):
        return TIMESTAMP
    if isinstance(t, sa.Date):
        return pa.date32()
    if isinstance(t, (sa.String, sa.Enum, sa.Uuid, sa.JSON, sa.Time, sa.Interval)):
        return pa.string()  # the last three are selected as text (query.as_text)
    if isinstance(t, (sa.LargeBinary, sa.BINARY, sa.VARBINARY)):
        return pa.string()  # base64 text (format.canonicalize)
    if type(t).__name__ in ("BIT", "YEAR") and dialect == "mysql":
        return pa.int64()
    return None


def arrow_types(src: sa.FromClause, dialect: str = "") -> dict[str, pa.DataType]:
    """Canonical Arrow types from the columns' SQL types, by common-format name (stable
    across batches, a batch of NULLs included)."""
    types: dict[str, pa.DataType] = {}
    for col in src.columns:
        at = arrow_type(col.type, dialect)
        if at is not None:
            types[normalize_name(col.name)] = at
    return types


def exact_numeric_type(t: sa.Numeric) -> pa.DataType:
    """``numeric(p, s)`` with p <= 38 is ``decimal128(p, s)``; unconstrained ``numeric`` (any
    scale, NaN, ±Infinity) and wider ones are their exact text (PostgreSQL's ``::text``),
    one representation whatever values a batch holds."""
    precision = getattr(t, "precision", None)
    if precision is None or precision > 38:
        return pa.string()
    return pa.decimal128(precision, getattr(t, "scale", None) or 0)


__all__ = ["arrow_type", "arrow_types", "exact_numeric_type", "query_columns", "reflect_table"]
