"""The statement one read of a SQL source runs, and how each of its columns is typed.

A :class:`ReadPlan` is built by ``SQLSource.plan``: the keyset ``SELECT`` (ordered by cursor
and key, past the last position, inside a partition), the common format's type of each
column, and which columns each reader selects as text. The reader modules
(:mod:`.pgbinary`, :mod:`.adbc_reader`, :mod:`.rows_reader`) run it; the checksum and
partitioning helpers narrow it with :meth:`ReadPlan.where`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from typing import Any, Protocol, cast

import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ...errors import ETLConfigError
from ...format import Batch, normalize_name
from ..base import Partition
from .discovery import exact_numeric_type, loaded_mysql, postgres_declared
from .positions import decode_value

_FLOAT4 = 700  # PostgreSQL's OID of real
_FLOAT8 = 701
_TEXT = 25
_JSON = 114


@dataclasses.dataclass(frozen=True)
class ReadPlan:
    """One read: ``statement`` and what the readers need to type and position its rows.

    ``types`` maps common-format column names to their declared Arrow types; ``order``
    are the ordering columns as the database names them (cursor first, then the key);
    ``text_elsewhere`` the columns the binary reader decodes itself but ADBC and the DB-API
    driver read as text; ``label`` names the table (or ``"query"``) in messages;
    ``declared`` the PostgreSQL type each column is declared as (carried to the target as
    field metadata; ``None``: not known yet, PostgreSQL is asked when the plan is described);
    ``oids`` the PostgreSQL type of each column ``statement`` selects, as the description
    of the plan found them (``None``: not described), so the binary reader need not ask."""

    statement: sa.Select
    types: dict[str, pa.DataType]
    order: tuple[str, ...]
    label: str
    text_elsewhere: frozenset[str] = frozenset()
    declared: dict[str, str] | None = None
    oids: tuple[int, ...] | None = None

    @property
    def ordering(self) -> list[str]:
        """The ordering columns as the batches name them (snake_case)."""
        return [normalize_name(c) for c in self.order]

    def where(self, *conditions: sa.ColumnElement[bool]) -> ReadPlan:
        return dataclasses.replace(self, statement=self.statement.where(*conditions))

    def table(self) -> sa.FromClause:
        """The table (or query) the statement reads from."""
        return self.statement.get_final_froms()[0]

    def for_drivers(self) -> sa.Select:
        """The statement as ADBC and the DB-API driver run it (see :func:`as_text`)."""
        return cast_text(as_text(self.statement, set(self.order)), self.text_elsewhere)


class PlannedSource(Protocol):
    """What the helpers around a SQL source (checksums, partitioning) use of it:
    ``SQLSource`` satisfies it."""

    table: str | None
    key_columns: list[str]
    columns: list[str] | None
    batch_size: int

    @property
    def label(self) -> str: ...

    def engine(self) -> Engine: ...

    def selectable(self, engine: Engine) -> sa.FromClause: ...

    def plan(
        self, engine: Engine, position: Any = None, partition: Partition | None = None
    ) -> ReadPlan: ...

    def read_plan(self, engine: Engine, plan: ReadPlan) -> Iterator[Batch]: ...


def keyset_select(
    src: sa.FromClause,
    *,
    columns: Sequence[str] | None,
    key: Sequence[str],
    cursor: str | None,
    label: str,
    position: Any = None,
    partition: Partition | None = None,
    extra: Sequence[sa.ColumnElement[Any]] = (),
) -> sa.Select:
    """``SELECT columns FROM src ORDER BY cursor, key``, past ``position`` and inside
    ``partition``.

    ``position`` is a checkpoint (``{"key": [encoded values]}``): rows with a greater
    ``(cursor, key)`` tuple; ``partition`` a range (``{"column", "lo", "hi"}``) of a column,
    by default the key's first."""
    order = ([cursor] if cursor else []) + list(key)
    cols = src.c
    names = set(cols.keys())
    for col in order:
        if col not in names:
            kind = "cursor" if col == cursor else "primary key"
            raise ETLConfigError(
                f"{kind} column {col!r} does not exist in {label}",
                where={"columns": ", ".join(sorted(names)[:30])},
                hint=f"pass an existing column as {'cursor' if kind == 'cursor' else 'primary_key'}=",
            )
    selected: list[sa.ColumnElement[Any]] = [cols[c] for c in columns] if columns else list(cols)
    ordered = [cols[c] for c in order]
    stmt = sa.select(*selected, *extra).order_by(*ordered)
    if position is not None:
        values = [decode_value(v) for v in position["key"]]
        stmt = stmt.where(
            sa.tuple_(*ordered) > sa.tuple_(*[bound(v, c) for v, c in zip(values, ordered)])
        )
    if partition:
        lo, hi = partition.get("lo"), partition.get("hi")
        column = cols[partition.get("column", key[0])]
        if lo is not None:
            stmt = stmt.where(column >= decode_value(lo))
        if hi is not None:
            stmt = stmt.where(column < decode_value(hi))
    return stmt


def bound(value: Any, column: Any) -> Any:
    """A position value to compare with ``column``: text (the position of a column read as
    text, see :func:`postgres_text_columns`) takes the column's own type, so ``money``,
    enums and the like compare with their own operators."""
    t = column.type
    if isinstance(value, str) and (
        isinstance(t, sa.Enum) or not isinstance(t, (sa.String, sa.types.NullType))
    ):
        return sa.cast(sa.literal(value, sa.Text), column.type)
    return sa.literal(value)


def postgres_text_columns(engine: Engine, plan: ReadPlan) -> ReadPlan:
    """``plan`` with every PostgreSQL column whose type the common format has no exact native
    form for (money, arrays of any dimension, ranges, geometric types, time, timetz,
    interval, bit strings, xml, tsvector, network types, enums, composites, bytea, ...)
    selected as its PostgreSQL text (``col::text``): it lands as text whose ``::text`` is the
    source's, on every reader path. The types kept are those the binary reader decodes
    (:data:`.pgbinary.KINDS`)."""
    from .pgbinary import _ARROW, KINDS

    stmt = plan.statement
    types = dict(plan.types)
    declared = plan.declared
    # outside a transaction: the description of no rows, one round trip (no BEGIN/ROLLBACK)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        result = conn.execute(stmt.limit(0))
        # DB-API descriptions: (name, type OID, size, size, precision, scale, null_ok)
        described = [(d[0], cast(int, d[1]), d[4], d[5]) for d in result.cursor.description or []]
        pgresult = getattr(result.cursor, "pgresult", None)  # psycopg 3: the typmods
        result.close()
        if declared is None:
            mods = [pgresult.fmod(i) if pgresult else -1 for i in range(len(described))]
            declared = postgres_declared(
                conn, [(c, oid, m) for (c, oid, _, _), m in zip(described, mods)]
            )
    keep = set(plan.order)
    numerics = set()
    as_text_too: set[str] = set()
    for column, oid, precision, scale in described:  # reflection misses domains, queries
        name, kind = normalize_name(column), KINDS.get(oid)
        if kind == b"n" and name not in types:
            types[name] = exact_numeric_type(sa.Numeric(precision, scale))
        elif kind is not None and kind != b"n":
            types.setdefault(name, _ARROW.get(kind, pa.string()))
        if kind == b"n" and column not in keep:
            numerics.add(column)  # its exact text, cast to decimal128 where declared so
        elif (kind in (b"u", b"j") or oid == _JSON) and column not in keep:
            as_text_too.add(column)  # drivers hand these over as bytes or parsed objects
    # ordering columns too: ORDER BY stays on the column itself, and a position holding
    # the text binds back cast to the column's type (see bound)
    as_text = {column for column, oid, _, _ in described if oid not in KINDS}
    # real: its shortest text read as double precision, the same on every path (1.1, not
    # 1.100000023841858), and converting back to real gives the stored value again
    reals = {c for c, oid, _, _ in described if oid == _FLOAT4 and c not in keep}
    # the binary reader decodes these exactly itself; ADBC and the DB-API driver read them
    # as text (see cast_text)
    # the types of the columns as finally selected: the ones cast below become text or
    # double precision
    oids = tuple(
        _TEXT if column in as_text else _FLOAT8 if column in reals else oid
        for column, oid, _, _ in described
    )
    plan = dataclasses.replace(
        plan,
        types=types,
        text_elsewhere=frozenset(numerics | as_text_too),
        declared=declared,
        oids=oids if len(oids) == len(stmt.selected_columns) else None,
    )
    if not as_text and not reals:
        return plan
    columns = []
    for col in stmt.selected_columns:
        if col.name in as_text:
            types[normalize_name(col.name)] = pa.string()
            col = sa.cast(col, sa.Text).label(col.name)
        elif col.name in reals:
            col = sa.cast(sa.cast(col, sa.Text), sa.Double()).label(col.name)
        columns.append(col)
    return dataclasses.replace(plan, statement=stmt.with_only_columns(*columns))


def cast_text(stmt: sa.Select, names: frozenset[str] | set[str]) -> sa.Select:
    """``stmt`` with the columns ``names`` (left to the binary reader by
    :func:`postgres_text_columns`: numeric, uuid, json) selected as text."""
    if not names:
        return stmt
    return stmt.with_only_columns(
        *[
            sa.cast(c, sa.Text).label(c.name) if c.name in names else c
            for c in stmt.selected_columns
        ]
    )


def as_text(stmt: sa.Select, keep: set[str]) -> sa.Select:
    """Select exact ``numeric`` columns (not the ordering ones) and the types ADBC or the
    DB-API driver hand over in a form the common format cannot hold — ``uuid`` and
    ``inet``/``cidr``/``macaddr`` as raw bytes, ``interval`` as month-day-nanosecond, JSON
    parsed into Python objects — as their text in the database, same names."""
    from sqlalchemy.dialects import postgresql

    text_types: tuple[type, ...] = (
        sa.Uuid,
        sa.JSON,  # its text as the database holds it (key order, spacing), not re-serialized
        sa.Time,  # MySQL's TIME spans -838:59:59 .. 838:59:59, more than a time of day
        sa.Interval,
        postgresql.INTERVAL,
        postgresql.INET,
        postgresql.CIDR,
        postgresql.MACADDR,
    )
    mysql = loaded_mysql()
    if mysql is not None:
        text_types += (mysql.SET,)  # a Python set otherwise, in no stable order
    columns: list[sa.ColumnElement[Any]] = []
    changed = False
    for col in stmt.selected_columns:
        t = getattr(col, "type", None)
        numeric = isinstance(t, sa.Numeric) and not isinstance(t, sa.Float) and col.name not in keep
        # MySQL's BIGINT UNSIGNED goes past int64: its text, cast to decimal128(20, 0)
        unsigned = isinstance(t, sa.BigInteger) and getattr(t, "unsigned", False)
        if (numeric or unsigned or isinstance(t, text_types)) and col.name not in keep:
            columns.append(sa.cast(col, sa.Text).label(col.name))
            changed = True
        elif isinstance(t, sa.Float) and getattr(t, "asdecimal", False):
            # MySQL's DOUBLE comes as Decimal by default; its value is a float
            columns.append(sa.type_coerce(col, sa.Double()).label(col.name))
            changed = True
        else:
            columns.append(col)
    return stmt.with_only_columns(*columns) if changed else stmt


def render(stmt: sa.Select) -> str:
    """The statement as PostgreSQL text with its values inline ("named" paramstyle: no
    %-escaping, the drivers take the text verbatim). COPY takes no bound parameters, so the
    keyset values are literals, quoted for ``standard_conforming_strings = on`` — which the
    binary reader and the ADBC path set on their connections before running it: with it off
    a backslash in a key would end the literal early."""
    from sqlalchemy.dialects import postgresql

    dialect = postgresql.dialect(paramstyle="named")
    return str(stmt.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))


__all__ = [
    "PlannedSource",
    "ReadPlan",
    "as_text",
    "bound",
    "cast_text",
    "keyset_select",
    "postgres_text_columns",
    "render",
]
