"""What a SQL database says about its tables before anything is read.

* :func:`read_catalog`: every table of a schema — columns with their SQL types and the
  PostgreSQL type each is declared as, primary keys, row estimates — in one query per kind
  of catalog fact (not one per table), so a database of hundreds of tables is discovered in
  a handful of round trips;
* :func:`reflect_table` / :func:`query_columns`: one table or a query, when no catalog was read;
* :func:`arrow_type`: the common format's type for a SQL type; the ``declared`` types, the
  PostgreSQL type a target column gets (``character(10)`` stays ``character(10)``, MariaDB's
  ``TINYINT(1)`` becomes ``boolean``), carried as Arrow field metadata
  (:data:`etl_express.format_types.DECLARED_TYPE`).
"""

from __future__ import annotations

import re
import sys
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from ...errors import SourceError
from ...format import TIMESTAMP, normalize_name


def reflect_table(engine: Engine, table: str, *, where: str = "") -> sa.Table:
    """``table`` (``name`` or ``schema.name``) as the source reads it: its columns with
    their SQL types (built as a catalog read's :meth:`TableInfo.selectable`); a missing
    table is a :class:`SourceError` naming it (``where``: the database, masked, for the
    message).

    One catalog query, where SQLAlchemy's full reflection (``autoload_with``) runs eight —
    primary key, foreign keys, indexes, unique and check constraints, comments — that
    reading a table never uses: it came before every run's first batch (about 0.1 s of a
    load's start, measured)."""
    schema, _, name = table.rpartition(".")
    try:
        with warnings.catch_warnings(), engine.connect() as conn:
            # types SQLAlchemy does not model (point, xml, ...): read as text, see
            # query.postgres_text_columns
            warnings.filterwarnings("ignore", "Did not recognize type", category=sa.exc.SAWarning)
            columns = sa.inspect(conn).get_columns(name, schema=schema or None)
    except sa.exc.NoSuchTableError:
        raise SourceError(
            f"table {table!r} does not exist" + (f" in {where}" if where else ""),
            hint="check the table name and schema, and that the user may read it",
        ) from None
    found = tuple(ColumnInfo(c["name"], c["type"], None, c["nullable"]) for c in columns)
    return TableInfo(schema or None, name, found).selectable()


def query_columns(engine: Engine, query: str) -> sa.Subquery:
    """A ``SELECT`` as a selectable with its result's column names (types unknown)."""
    with engine.connect() as conn:
        names = list(conn.execute(sa.text(f"SELECT * FROM ({query}) AS q WHERE 1 = 0")).keys())
    return sa.text(query).columns(*[sa.column(n) for n in names]).subquery("q")


def arrow_type(t: sa.types.TypeEngine, dialect: str = "") -> pa.DataType | None:
    """The common format's type for a column of SQL type ``t`` (``None``: known only from
    the values or the driver's description)."""
    if isinstance(t, sa.Boolean) or _mysql_boolean(t):
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


def loaded_mysql() -> ModuleType | None:
    """SQLAlchemy's MySQL dialect if something loaded it, else ``None``. A column has one of
    its types only once a MySQL engine or reflection loaded it, so asking whether a type is
    a MySQL one does not import it (about 10 ms of a PostgreSQL run)."""
    return sys.modules.get("sqlalchemy.dialects.mysql")


def _mysql_boolean(t: sa.types.TypeEngine) -> bool:
    """MariaDB/MySQL's ``BOOLEAN`` is ``TINYINT(1)``: a boolean in the common format (a value
    other than 0 or 1 quarantines its row, see :mod:`.quarantine`)."""
    mysql = loaded_mysql()
    return (
        mysql is not None
        and isinstance(t, mysql.TINYINT)
        and getattr(t, "display_width", None) == 1
    )


# -- declared PostgreSQL types --------------------------------------------------------------

#: PostgreSQL types whose text does not mean the same in another database: money (its text
#: follows lc_monetary), the reg* object references (names resolved in the source's catalog),
#: access lists (role names), and the planner's internal types
_NOT_CARRIED = (
    "'money', 'aclitem', 'pg_node_tree', 'pg_ndistinct', 'pg_dependencies', 'pg_mcv_list', "
    "'pg_brin_bloom_summary', 'pg_brin_minmax_multi_summary'"
)

#: the PostgreSQL type a column of type oid ``t.oid``/typmod ``m`` is declared as in a target,
#: NULL when the target cannot hold it as it is: types outside pg_catalog (enums,
#: composites; a domain counts as its base type) and :data:`_NOT_CARRIED`
_PG_DECLARED = f"""
CASE WHEN b.typnamespace = 'pg_catalog'::regnamespace
      AND coalesce(e.typnamespace = 'pg_catalog'::regnamespace, true)
      AND coalesce(e.typname, b.typname) NOT IN ({_NOT_CARRIED})
      AND coalesce(e.typname, b.typname) NOT LIKE 'reg%'
      AND b.typtype <> 'p'
     THEN format_type(b.oid, CASE WHEN t.typtype = 'd' THEN t.typtypmod ELSE {{mod}} END)
END"""
_PG_TYPE_JOINS = """
JOIN pg_type b ON b.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END
LEFT JOIN pg_type e ON e.oid = b.typelem AND b.typcategory = 'A'"""


def postgres_declared(
    conn: Connection, described: Sequence[tuple[str, int, int]]
) -> dict[str, str]:
    """The declared PostgreSQL types of a result's columns, ``(name, type oid, typmod)`` as
    its description gives them, by common-format name (columns without one are left out)."""
    if not described:
        return {}
    rows = conn.execute(
        sa.text(
            "SELECT d.n, "
            + _PG_DECLARED.format(mod="d.m")
            + " FROM unnest(CAST(:names AS text[]), "
            "CAST(:oids AS oid[]), CAST(:mods AS int[])) AS d(n, o, m) "
            "JOIN pg_type t ON t.oid = d.o" + _PG_TYPE_JOINS
        ),
        {
            "names": [n for n, _, _ in described],
            "oids": [o for _, o, _ in described],
            "mods": [m for _, _, m in described],
        },
    ).all()
    return {normalize_name(n): pg for n, pg in rows if pg}


def mysql_declared(t: sa.types.TypeEngine) -> str | None:
    """The closest PostgreSQL type with the same comparison semantics for a MariaDB/MySQL
    column type (``None``: the common format's own mapping)."""
    from sqlalchemy.dialects import mysql

    unsigned = bool(getattr(t, "unsigned", False))
    if _mysql_boolean(t):
        return "boolean"
    if isinstance(t, (mysql.TINYINT, mysql.YEAR)):
        return "smallint"
    if isinstance(t, mysql.SMALLINT):
        return "integer" if unsigned else "smallint"
    if isinstance(t, mysql.MEDIUMINT):
        return "integer"
    if isinstance(t, mysql.BIGINT):
        return "numeric(20,0)" if unsigned else "bigint"
    if isinstance(t, mysql.INTEGER):
        return "bigint" if unsigned else "integer"
    if isinstance(t, mysql.FLOAT):
        return "real"
    if isinstance(t, mysql.DOUBLE):
        return "double precision"
    if isinstance(t, (mysql.DECIMAL, mysql.NUMERIC)) and t.precision is not None:
        return f"numeric({t.precision},{t.scale or 0})"
    if isinstance(t, mysql.DATETIME):
        return f"timestamp({t.fsp or 0}) without time zone"
    if isinstance(t, mysql.TIMESTAMP):
        return f"timestamp({t.fsp or 0}) with time zone"
    if isinstance(t, sa.Date) and not isinstance(t, sa.DateTime):
        return "date"
    if isinstance(t, (mysql.ENUM, mysql.SET)):
        return None
    if isinstance(t, (mysql.NCHAR, mysql.CHAR)) and t.length:
        return f"character({t.length})"
    if isinstance(t, (mysql.NVARCHAR, mysql.VARCHAR)) and t.length:
        return f"character varying({t.length})"
    if isinstance(t, (mysql.TINYTEXT, mysql.TEXT, mysql.MEDIUMTEXT, mysql.LONGTEXT)):
        return "text"
    if isinstance(t, sa.Uuid):
        return "uuid"
    if isinstance(t, mysql.TIME):
        # a duration (-838:59:59 to 838:59:59), not a time of day: ordered and compared
        # as one, where a text copy put '-01:00:00' after '00:30:00' and '100:00:00' before
        # '23:00:00'
        return "interval"
    if isinstance(t, (sa.LargeBinary, sa.BINARY, sa.VARBINARY)):
        # bytes, compared and measured (length) as bytes; the values travel as bytea's
        # ``\x`` hex text (quarantine.typed)
        return "bytea"
    return None


def declared_types(src: sa.FromClause, dialect: str) -> dict[str, str]:
    """The declared PostgreSQL types of a reflected table's columns, where SQLAlchemy's types
    tell them (MariaDB/MySQL; PostgreSQL's come from its catalog)."""
    if dialect != "mysql":
        return {}
    out = {}
    for col in src.columns:
        pg = mysql_declared(col.type)
        if pg is not None:
            out[normalize_name(col.name)] = pg
    return out


# -- the catalog ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ColumnInfo:
    """A column as the catalog declares it."""

    name: str  #: as the database spells it
    type: sa.types.TypeEngine
    declared: str | None = None  #: the PostgreSQL type a target column gets (None: by value)
    nullable: bool = True
    #: the type as the source spells it (``citext``, ``enum('a','b')``), where the catalog
    #: read gives it; ``collation`` a MariaDB/MySQL text column's (``utf8mb4_general_ci``)
    source_type: str | None = field(default=None, compare=False)
    collation: str | None = field(default=None, compare=False)


@dataclass(frozen=True)
class TableInfo:
    """A table as the catalog declares it: columns, primary key, estimated rows."""

    schema: str | None
    name: str
    columns: tuple[ColumnInfo, ...]
    primary_key: tuple[str, ...] = ()
    rows: int | None = None  #: the planner's estimate (``None``: not known)
    _table: list[sa.Table] = field(default_factory=list, repr=False, compare=False)

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}" if self.schema else self.name

    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def declared(self) -> dict[str, str]:
        """Declared PostgreSQL types by common-format column name."""
        return {normalize_name(c.name): c.declared for c in self.columns if c.declared}

    def selectable(self) -> sa.Table:
        """The table for SQLAlchemy, built from the catalog (no reflection round trip)."""
        if not self._table:
            self._table.append(
                sa.Table(
                    self.name,
                    sa.MetaData(),
                    *[sa.Column(c.name, c.type, nullable=c.nullable) for c in self.columns],
                    schema=self.schema,
                )
            )
        return self._table[0]


def read_catalog(engine: Engine, schema: str | None = None) -> list[TableInfo]:
    """Every base table of ``schema`` (``None``: the connection's default) with its columns,
    primary key and row estimate, in name order; one query per kind of catalog fact."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Did not recognize type", category=sa.exc.SAWarning)
        with engine.connect() as conn:
            if engine.dialect.name == "postgresql":
                return _postgres_catalog(conn, schema)
            if engine.dialect.name == "mysql":
                return _mysql_catalog(conn, schema)
            return _generic_catalog(conn, schema)


def _postgres_catalog(conn: Connection, schema: str | None) -> list[TableInfo]:
    schema = schema or conn.execute(sa.text("SELECT current_schema()")).scalar_one()
    tables = conn.execute(
        sa.text(
            "SELECT c.relname, c.reltuples FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = :s AND c.relkind IN ('r', 'p') AND NOT c.relispartition "
            "ORDER BY c.relname"
        ),
        {"s": schema},
    ).all()
    if not tables:
        return []
    names = [t[0] for t in tables]
    inspector = sa.inspect(conn)
    columns = inspector.get_multi_columns(schema=schema, filter_names=names)
    keys = inspector.get_multi_pk_constraint(schema=schema, filter_names=names)
    declared = {
        (r[0], r[1]): (r[2], r[3])
        for r in conn.execute(
            sa.text(
                "SELECT c.relname, a.attname, "
                + _PG_DECLARED.format(mod="a.atttypmod")
                + ", format_type(a.atttypid, a.atttypmod) FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "JOIN pg_type t ON t.oid = a.atttypid"
                + _PG_TYPE_JOINS
                + " WHERE n.nspname = :s AND c.relkind IN ('r', 'p') AND a.attnum > 0 "
                "AND NOT a.attisdropped"
            ),
            {"s": schema},
        )
    }
    out = []
    for name, reltuples in tables:
        cols = columns.get((schema, name), [])
        out.append(
            TableInfo(
                schema,
                name,
                tuple(_pg_column(c, *declared.get((name, c["name"]), (None, None))) for c in cols),
                _key_of(keys, schema, name),
                int(reltuples) if reltuples is not None and reltuples >= 0 else None,
            )
        )
    return out


def _pg_column(c: Any, declared: str | None, source_type: str | None) -> ColumnInfo:
    return ColumnInfo(c["name"], c["type"], declared, c["nullable"], source_type=source_type)


def _key_of(keys: Any, schema: str | None, name: str) -> tuple[str, ...]:
    found = keys.get((schema, name)) or {}
    return tuple(found.get("constrained_columns") or ())


_ENUM_VALUES = re.compile(r"'((?:[^']|'')*)'")


def _mysql_catalog(conn: Connection, schema: str | None) -> list[TableInfo]:
    schema = schema or conn.execute(sa.text("SELECT DATABASE()")).scalar_one()
    tables = conn.execute(
        sa.text(
            "SELECT TABLE_NAME, TABLE_ROWS FROM information_schema.TABLES "
            "WHERE TABLE_SCHEMA = :s AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME"
        ),
        {"s": schema},
    ).all()
    columns: dict[str, list[ColumnInfo]] = {}
    for row in conn.execute(
        sa.text(
            "SELECT TABLE_NAME, COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, IS_NULLABLE, "
            "NUMERIC_PRECISION, NUMERIC_SCALE, CHARACTER_MAXIMUM_LENGTH, DATETIME_PRECISION, "
            "COLLATION_NAME "
            "FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = :s "
            "ORDER BY TABLE_NAME, ORDINAL_POSITION"
        ),
        {"s": schema},
    ):
        t = _mysql_type(conn, *row[2:4], *row[5:9])
        columns.setdefault(row[0], []).append(
            ColumnInfo(
                row[1], t, mysql_declared(t), row[4] == "YES", source_type=row[3], collation=row[9]
            )
        )
    keys: dict[str, list[str]] = {}
    for table, column in conn.execute(
        sa.text(
            "SELECT TABLE_NAME, COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE "
            "WHERE TABLE_SCHEMA = :s AND CONSTRAINT_NAME = 'PRIMARY' "
            "ORDER BY TABLE_NAME, ORDINAL_POSITION"
        ),
        {"s": schema},
    ):
        keys.setdefault(table, []).append(column)
    return [
        TableInfo(
            schema,
            name,
            tuple(columns.get(name, ())),
            tuple(keys.get(name, ())),
            None if rows is None else int(rows),
        )
        for name, rows in tables
    ]


def _mysql_type(
    conn: Connection,
    data_type: str,
    column_type: str,
    precision: int | None,
    scale: int | None,
    length: int | None,
    fsp: int | None,
) -> sa.types.TypeEngine:
    """The SQLAlchemy type MariaDB/MySQL reflection would give a column, from
    ``information_schema.COLUMNS``."""
    cls = conn.dialect.ischema_names.get(data_type.lower())  # type: ignore[attr-defined]
    if cls is None:
        return sa.types.NullType()
    kind = data_type.lower()
    unsigned = "unsigned" in column_type.lower()
    if kind in ("tinyint", "smallint", "mediumint", "int", "integer", "bigint"):
        width = re.match(r"\w+\((\d+)\)", column_type)
        return cls(display_width=int(width.group(1)) if width else None, unsigned=unsigned)
    if kind in ("decimal", "numeric", "fixed"):
        return cls(precision=precision, scale=scale, unsigned=unsigned)
    if kind in ("float", "double"):
        return cls(unsigned=unsigned)
    if kind in ("char", "varchar", "nchar", "nvarchar", "binary", "varbinary"):
        return cls(length=length)
    if kind in ("enum", "set"):
        inside = column_type[column_type.index("(") + 1 : column_type.rindex(")")]
        return cls(*[v.replace("''", "'") for v in _ENUM_VALUES.findall(inside)])
    if kind in ("datetime", "timestamp", "time"):
        return cls(fsp=fsp or None)
    if kind == "bit":
        return cls(precision or None)
    return cls()


def _generic_catalog(conn: Connection, schema: str | None) -> list[TableInfo]:
    inspector = sa.inspect(conn)
    names = sorted(inspector.get_table_names(schema=schema))
    columns = inspector.get_multi_columns(schema=schema, filter_names=names)
    keys = inspector.get_multi_pk_constraint(schema=schema, filter_names=names)
    return [
        TableInfo(
            schema,
            name,
            tuple(
                ColumnInfo(c["name"], c["type"], None, c["nullable"])
                for c in columns.get((schema, name), [])
            ),
            _key_of(keys, schema, name),
        )
        for name in names
    ]


__all__ = [
    "ColumnInfo",
    "TableInfo",
    "arrow_type",
    "arrow_types",
    "declared_types",
    "exact_numeric_type",
    "loaded_mysql",
    "mysql_declared",
    "postgres_declared",
    "query_columns",
    "read_catalog",
    "reflect_table",
]
