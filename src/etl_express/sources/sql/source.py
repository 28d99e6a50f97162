"""``SQLSource``: any database SQLAlchemy can reach, read-only and incremental."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import Any

import pyarrow as pa
import sqlalchemy as sa
from loguru import logger
from sqlalchemy.engine import Engine

from ..._copybytes import SOURCE_ROWS, source_rows
from ..._privacy import safe_text
from ..._validate import name_list
from ...errors import ETLConfigError, SourceError, safe_pg_message
from ...format import Batch, normalize_name
from ...format_types import with_declared_type
from ...retry import diagnose
from ...secrets import SecretLike, reveal
from ...store.database import engine_for, libpq_url, mask_url
from ..base import Partition, Source
from .adbc_reader import read_adbc
from .discovery import TableInfo, arrow_types, declared_types, query_columns, reflect_table
from .quarantine import positioned, typed
from .query import ReadPlan, keyset_select, postgres_text_columns, render
from .rows_reader import read_rows

_IDENT = re.compile(r"^[A-Za-z_][\w$]*(\.[A-Za-z_][\w$]*)?$")


class SQLSource(Source):
    """Reads a table or a query from any SQLAlchemy-supported database.

    Logic: rows are read in keyset order — by ``(cursor, primary key)`` when a ``cursor``
    column is given, else by the primary key — in one streaming query per run, cut into
    batches of ``batch_size`` rows. After each batch the position is the last row's key, so
    a resumed run continues with ``WHERE (cursor, pk) > (last cursor, last pk)``: rows with
    equal cursor values are never skipped and never read twice. With a ``cursor`` the source
    is incremental: the next run reads only rows whose cursor moved past the checkpoint.
    Memory is bounded by the batch size (server-side cursors). The connection is read-only
    where the database supports it; nothing is ever written to the source. On PostgreSQL
    the rows come through binary COPY straight into Arrow (a compiled decoder, or ADBC for
    column types it does not take), without per-row Python; a row holding a date or timestamp
    the common format cannot carry (PostgreSQL's infinity, a year past 9999 or before 1) is
    quarantined with a reason naming the column.

    Args:
        url: SQLAlchemy URL (string or ``etl.secret(...)``), e.g. ``postgresql://...``,
            ``mysql+pymysql://...``, ``sqlite:///file.db``.
        table: table name (``schema.table`` allowed); or give ``query`` instead.
        query: a SELECT whose result is read as if it were a table.
        primary_key: column name(s) identifying a row; required for keyset reads.
        cursor: a monotonically growing column (``updated_at``, a sequence) for incremental
            loads.
        batch_size: rows per batch.
        name: the ``_etl_source`` lineage value (default: table name or ``"query"``).
        pii: columns holding personal data (each must be covered by an anonymizer).
        fast_path: on PostgreSQL, read through binary COPY (compiled decoder or ADBC);
            ``False`` reads rows through the DB-API driver.
        definition: the table as a catalog read described it (``SQLDatabase`` passes it,
            so a replication reads the catalog once instead of reflecting each table).

    Each column carries the PostgreSQL type it is declared as (``character(10)``,
    ``integer``, ``numeric(15,2)``...; from MariaDB/MySQL the closest one, ``TINYINT(1)`` as
    ``boolean``) as Arrow field metadata, so a PostgreSQL sink creates the same column.
    """

    def __init__(
        self,
        url: SecretLike,
        table: str | None = None,
        *,
        query: str | None = None,
        primary_key: str | Sequence[str] | None = None,
        cursor: str | None = None,
        columns: Sequence[str] | None = None,
        batch_size: int = 50_000,
        name: str | None = None,
        pii: Sequence[str] = (),
        fast_path: bool = True,
        definition: TableInfo | None = None,
    ):
        if (table is None) == (query is None):
            raise ETLConfigError(
                "SQLSource needs exactly one of table= or query=",
                hint='SQLSource(url, table="customers", primary_key="id")',
            )
        if table is not None and definition is None and not _IDENT.match(table):
            raise ETLConfigError(
                f"table {table!r} is not a plain identifier or schema.table",
                hint="use query= for anything more complex",
            )
        if batch_size < 1:
            raise ETLConfigError(f"batch_size must be >= 1, got {batch_size}")
        pk = name_list(primary_key, "primary_key", "SQLSource")
        if not pk:
            raise ETLConfigError(
                "SQLSource needs primary_key= (keyset reads and upserts rely on it)",
                where={"table": table or "query"},
                hint='pass primary_key="id" or a list of columns',
            )
        self.url = url
        self.table = table
        self.query = query
        self.key_columns = pk
        self.primary_key = [normalize_name(c) for c in pk]
        self.cursor = cursor
        self.columns = name_list(columns, "columns", "SQLSource", single=False) or None
        self.batch_size = batch_size
        self.name = name or (table.split(".")[-1] if table else "query")
        self.pii = [normalize_name(c) for c in name_list(pii, "pii", "SQLSource")]
        self.incremental = cursor is not None
        self.fast_path = fast_path
        self.definition = definition
        #: set by a pipeline with ``deletes=``: each row is read with its keyed hash
        #: (``_etl_row_hash``, see :mod:`.checksums`)
        self.row_hash_key: str | None = None
        #: the columns the row hash covers (``None``: every selected one); the pipeline sets
        #: those the target receives in clear (:mod:`etl_express.anonymizers.rowhash`)
        self.row_hash_columns: list[str] | None = None

    def __repr__(self) -> str:
        return f"SQLSource(table={self.table!r}, url={self.masked_url()!r}, cursor={self.cursor!r})"

    @property
    def read_ahead(self) -> bool:
        """Whether the pipeline may read this source in a background thread: not for
        SQLite, whose in-memory databases live in one connection of one thread."""
        from sqlalchemy.engine import make_url

        try:
            return make_url(str(reveal(self.url))).get_backend_name() != "sqlite"
        except Exception:  # an unparsable URL fails later, with a proper message
            return True

    @property
    def label(self) -> str:
        """The table (or ``"query"``) as messages name it."""
        return self.table or "query"

    def masked_url(self) -> str:
        """The database URL for messages: a secret's name, or the URL without its password."""
        from ...secrets import SecretRef

        return (
            repr(self.url) if isinstance(self.url, SecretRef) else mask_url(str(reveal(self.url)))
        )

    # -- query building -----------------------------------------------------------------

    def engine(self) -> Engine:
        """The SQLAlchemy engine of the source database (shared per URL in a process)."""
        url = reveal(self.url)
        if not url:
            raise ETLConfigError("SQLSource url is empty", hint="pass url= or etl.secret('...')")
        return engine_for(url)

    def selectable(self, engine: Engine) -> sa.FromClause:
        """The table, reflected (or the query, with its result's column names)."""
        if self.query is not None:
            return query_columns(engine, self.query)
        if self.definition is not None:
            return self.definition.selectable()
        assert self.table is not None
        return reflect_table(engine, self.table, where=self.masked_url())

    def discover_schema(self) -> pa.Schema | None:
        """The selected columns by reflection (or the query's result columns), before reading."""
        engine = self.engine()
        src = self.selectable(engine)
        types = arrow_types(src, engine.dialect.name)
        names = list(self.columns) if self.columns else list(src.columns.keys())
        fields = []
        for n in names:
            name = normalize_name(n)
            fields.append(pa.field(name, types.get(name, pa.string())))
        return pa.schema(fields)

    def order_columns(self) -> list[str]:
        """The columns rows are read in order of: the cursor, then the primary key."""
        return ([self.cursor] if self.cursor else []) + self.key_columns

    def plan(
        self, engine: Engine, position: Any = None, partition: Partition | None = None
    ) -> ReadPlan:
        """The read from ``position`` (a checkpoint) in ``partition``: its statement and
        column types (see :mod:`.query`)."""
        src = self.selectable(engine)
        extra = []
        if self.row_hash_key is not None:
            from .checksums import hashed, row_hash_column

            selected = [src.c[c] for c in self.columns] if self.columns else list(src.c)
            extra.append(
                row_hash_column(engine.dialect.name, hashed(self, selected), self.row_hash_key)
            )
        stmt = keyset_select(
            src,
            columns=self.columns,
            key=self.key_columns,
            cursor=self.cursor,
            label=self.label,
            position=position,
            partition=partition,
            extra=extra,
        )
        dialect = engine.dialect.name
        if self.definition is not None:
            declared: dict[str, str] | None = self.definition.declared()
        else:  # PostgreSQL's are asked for when the plan is described
            declared = None if dialect == "postgresql" else declared_types(src, dialect)
        plan = ReadPlan(
            stmt,
            arrow_types(src, dialect),
            tuple(self.order_columns()),
            self.label,
            declared=declared,
        )
        if engine.dialect.name == "postgresql":
            plan = postgres_text_columns(engine, plan)
        return plan

    def partitions(self, n: int | None = None, *, column: str | None = None) -> list[Partition]:
        """``n`` key ranges with about equal row counts (quantiles, so skewed keys balance too);
        ``column`` defaults to the primary key; the cursor column gives time windows."""
        from .partitioning import key_ranges

        return key_ranges(self, n or 1, column=column)

    # -- reading ------------------------------------------------------------------------

    def read(self, position: Any = None, partition: Partition | None = None) -> Iterator[Batch]:
        try:
            engine = self.engine()
            plan = self.plan(engine, position, partition)
        except (ETLConfigError, SourceError):
            raise
        except Exception as exc:  # a driver error: what it means and its fix (retry.diagnose)
            found = diagnose(exc)
            if found is None and not isinstance(exc, sa.exc.SQLAlchemyError):
                raise
            cause = getattr(exc, "orig", None) or exc  # no SQL text, no value, no DETAIL
            raise SourceError(
                f"cannot read {self.label} from {self.masked_url()}: "
                + (f"{found.what}: " if found else "")
                + safe_pg_message(cause),
                where={"table": self.label},
                hint=found.hint
                if found
                else "check the URL, that the database is reachable and the credentials",
            ) from None
        if position is not None and self.cursor:
            self._refuse_null_cursor(engine, plan)
        if self.fast_path and engine.dialect.name == "postgresql":
            yield from self._read_postgres(engine, plan, position, partition)
        else:
            yield from read_rows(engine, plan, self.batch_size)

    def _refuse_null_cursor(self, engine: Engine, plan: ReadPlan) -> None:
        """A read past a checkpoint never sees a row whose cursor is NULL (``(NULL, key) >
        (x, y)`` is unknown in SQL): such a row is refused here rather than skipped for good.
        A read from the start meets it in its batch (:func:`.quarantine.positioned`)."""
        assert self.cursor is not None
        src = plan.statement.get_final_froms()[0]
        if getattr(src.c[self.cursor], "nullable", True) is False:
            return  # declared NOT NULL: nothing to ask
        quoted = engine.dialect.identifier_preparer.quote(self.cursor)
        # the predicate as text: a column of a type SQLAlchemy knows no operators for
        # (money, an enum) compares without a warning
        probe = sa.select(sa.literal(1)).select_from(src).where(sa.text(f"{quoted} IS NULL"))
        with engine.connect() as conn:
            found = conn.execute(probe.limit(1)).first()
        if found is not None:
            raise SourceError(
                f"the cursor column {self.cursor!r} of {self.label} holds NULL: a read past "
                "a checkpoint never sees such a row",
                where={"table": self.label, "column": self.cursor},
                hint=f"declare {self.cursor} NOT NULL, or read by a cursor without NULLs "
                f"(a query= that maps it, e.g. COALESCE({self.cursor}, ...))",
            )

    def empty_batch(self, partition: Partition | None = None) -> pa.RecordBatch:
        """No rows, the columns a read gives with their types and declared PostgreSQL types:
        what a sink creates its target from when the table holds no row."""
        engine = self.engine()
        plan = self.plan(engine, None, partition)
        declared = plan.declared or {}
        fields = []
        for column in plan.statement.selected_columns:
            name = normalize_name(column.name)
            fields.append(
                with_declared_type(
                    pa.field(name, plan.types.get(name) or pa.string()), declared.get(name)
                )
            )
        schema = pa.schema(fields)
        return pa.RecordBatch.from_arrays([pa.array([], f.type) for f in schema], schema=schema)

    def read_plan(self, engine: Engine, plan: ReadPlan) -> Iterator[Batch]:
        """The rows of ``plan`` (a :meth:`plan`, narrowed: re-reads by key) through ADBC on
        PostgreSQL (unless ``fast_path=False``), else the DB-API driver."""
        if self.fast_path and engine.dialect.name == "postgresql":
            return read_adbc(libpq_engine_url(engine), plan, self.batch_size)
        return read_rows(engine, plan, self.batch_size)

    def _read_postgres(
        self, engine: Engine, plan: ReadPlan, position: Any, partition: Partition | None
    ) -> Iterator[Batch]:
        """Binary COPY decoded by the compiled extension (:mod:`.pgbinary`) when it can take
        every column and value; else, or from the first value it cannot take, ADBC."""
        from . import pgbinary

        url = libpq_engine_url(engine)
        described = (
            None
            if plan.oids is None
            else list(zip([c.name for c in plan.statement.selected_columns], plan.oids))
        )
        # None: not these types
        reader = pgbinary.open_reader(url, render(plan.statement), described, plan.types)
        if reader is not None:
            try:
                for rows, flagged in reader.batches(self.batch_size, ramp=True):
                    data, problems = typed(rows, plan.types, self.label, plan.declared)
                    batch = positioned(
                        data, problems, plan.ordering, self.label, flagged, reader.kinds
                    )
                    if plan.oids is not None and flagged is None and not problems:
                        # every row as read: a sink may send these bytes instead of encoding
                        rows_bytes = source_rows(reader.rows_bytes, plan.oids, data)
                        batch.meta[SOURCE_ROWS] = rows_bytes
                    yield batch
                    position = batch.position
                return
            except pgbinary.Unsupported as exc:
                logger.info(
                    "reading {} through ADBC from here on: {}", self.label, safe_text(str(exc))
                )
                plan = self.plan(engine, position, partition)
            finally:
                reader.close()
        yield from read_adbc(url, plan, self.batch_size)


def libpq_engine_url(engine: Engine) -> str:
    """The engine's URL as psycopg and ADBC take it (password included: never printed)."""
    return libpq_url(str(engine.url.render_as_string(hide_password=False)))


__all__ = ["SQLSource", "libpq_engine_url"]
