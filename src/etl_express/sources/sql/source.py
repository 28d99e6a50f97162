"""``SQLSource``: any database SQLAlchemy can reach, read-only and incremental."""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator, Sequence
from typing import Any, cast

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa
from loguru import logger
from sqlalchemy.engine import Connection, Engine

from ..._validate import name_list
from ...errors import ETLConfigError, SourceError, safe_pg_message
from ...format import TIMESTAMP, Batch, Rejected, canonicalize, normalize_name, to_records
from ...retry import diagnose
from ...secrets import SecretLike, reveal
from ...store.database import engine_for, libpq_url, mask_url
from ..base import Partition, Source
from .datetimes import driver_problems, flag_adbc, guard_driver_dates, quarantine_flagged
from .positions import decode_value, encode_value

_IDENT = re.compile(r"^[A-Za-z_][\w$]*(\.[A-Za-z_][\w$]*)?$")
_ADBC_CHUNK_BYTES = 4 << 20  # ADBC hands over ~4 MB record batches; re-cut to batch_size


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
    ):
        if (table is None) == (query is None):
            raise ETLConfigError(
                "SQLSource needs exactly one of table= or query=",
                hint='SQLSource(url, table="customers", primary_key="id")',
            )
        if table is not None and not _IDENT.match(table):
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
        self._types: dict[str, pa.DataType] = {}
        self._text_elsewhere: set[str] = set()
        #: set by a pipeline with ``deletes=``: each row is read with its keyed hash
        #: (``_etl_row_hash``, see :mod:`.checksums`)
        self.row_hash_key: str | None = None
        #: the columns the row hash covers (``None``: every selected one); the pipeline sets
        #: those the target receives in clear (:mod:`etl_express.anonymizers.rowhash`)
        self.row_hash_columns: list[str] | None = None

    def __repr__(self) -> str:
        return f"SQLSource(table={self.table!r}, url={self._masked()!r}, cursor={self.cursor!r})"

    @property
    def read_ahead(self) -> bool:
        """Whether the pipeline may read this source in a background thread: not for
        SQLite, whose in-memory databases live in one connection of one thread."""
        from sqlalchemy.engine import make_url

        try:
            return make_url(str(reveal(self.url))).get_backend_name() != "sqlite"
        except Exception:  # an unparsable URL fails later, with a proper message
            return True

    def _masked(self) -> str:
        from ...secrets import SecretRef

        return (
            repr(self.url) if isinstance(self.url, SecretRef) else mask_url(str(reveal(self.url)))
        )

    # -- query building -----------------------------------------------------------------

    def _engine(self) -> Engine:
        url = reveal(self.url)
        if not url:
            raise ETLConfigError("SQLSource url is empty", hint="pass url= or etl.secret('...')")
        return engine_for(url)

    def _selectable(self, engine: Engine) -> sa.FromClause:
        if self.query is not None:
            with engine.connect() as conn:
                names = list(
                    conn.execute(sa.text(f"SELECT * FROM ({self.query}) AS q WHERE 1 = 0")).keys()
                )
            return sa.text(self.query).columns(*[sa.column(n) for n in names]).subquery("q")
        schema, _, name = self.table.rpartition(".")  # type: ignore[union-attr]
        try:
            with warnings.catch_warnings():
                # types SQLAlchemy does not model (point, xml, ...): read as text, see
                # _exact_text
                warnings.filterwarnings(
                    "ignore", "Did not recognize type", category=sa.exc.SAWarning
                )
                return sa.Table(name, sa.MetaData(), schema=schema or None, autoload_with=engine)
        except sa.exc.NoSuchTableError:
            raise SourceError(
                f"table {self.table!r} does not exist in {self._masked()}",
                hint="check the table name and schema, and that the user may read it",
            ) from None

    def discover_schema(self) -> pa.Schema | None:
        """The selected columns by reflection (or the query's result columns), before reading."""
        engine = self._engine()
        src = self._selectable(engine)
        types = self._declared_types(src, engine.dialect.name)
        names = list(self.columns) if self.columns else list(src.columns.keys())
        fields = []
        for n in names:
            name = normalize_name(n)
            fields.append(pa.field(name, types.get(name, pa.string())))
        return pa.schema(fields)

    def _declared_types(self, src: sa.FromClause, engine_name: str = "") -> dict[str, pa.DataType]:
        """Canonical Arrow types from the columns' SQL types (stable across batches, a batch
        of NULLs included)."""
        types: dict[str, pa.DataType] = {}
        for col in src.columns:
            t = col.type
            if isinstance(t, sa.Boolean):
                at: pa.DataType | None = pa.bool_()
            elif isinstance(t, sa.BigInteger) and getattr(t, "unsigned", False):
                at = pa.decimal128(20, 0)
            elif isinstance(t, sa.Integer):
                at = pa.int64()
            elif isinstance(t, sa.Float):
                at = pa.float64()
            elif isinstance(t, sa.Numeric):
                at = exact_numeric_type(t)
            elif isinstance(t, sa.DateTime):
                at = TIMESTAMP
            elif isinstance(t, sa.Date):
                at = pa.date32()
            elif isinstance(t, (sa.String, sa.Enum, sa.Uuid, sa.JSON, sa.Time, sa.Interval)):
                at = pa.string()  # the last three are selected as text (see _as_text)
            elif isinstance(t, (sa.LargeBinary, sa.BINARY, sa.VARBINARY)):
                at = pa.string()  # base64 text (format.canonicalize)
            elif type(t).__name__ in ("BIT", "YEAR") and engine_name == "mysql":
                at = pa.int64()
            else:
                at = None
            if at is not None:
                types[normalize_name(col.name)] = at
        return types

    def _typed(
        self, batch: pa.RecordBatch, types: dict[str, pa.DataType]
    ) -> tuple[pa.RecordBatch, Problems]:
        """The batch cast to the columns' declared types, and the values that have no exact
        form in them (``NaN`` or ``Infinity`` in a ``numeric(p, s)``) by row: set to null
        here, their rows are quarantined by :meth:`_batch`. Any other value that does not
        convert stops the read, naming the column — a column never changes type silently."""
        batch = canonicalize(batch)
        problems: Problems = {}
        arrays = []
        fields = []
        for f, col in zip(batch.schema, batch.columns):
            want = types.get(f.name)
            if want is not None and want != f.type:
                col = self._cast(col, f.name, want, problems)
            arrays.append(col)
            fields.append(pa.field(f.name, want or f.type))
        return pa.RecordBatch.from_arrays(arrays, schema=pa.schema(fields)), problems

    def _cast(self, col: pa.Array, name: str, want: pa.DataType, problems: Problems) -> pa.Array:
        try:
            return pc.cast(col, want)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
        if pa.types.is_decimal(want) and pa.types.is_string(col.type):
            hit = pc.fill_null(pc.is_in(col, pa.array(_SPECIAL_NUMERICS)), False)
            for row in np.flatnonzero(hit.to_numpy(zero_copy_only=False)).tolist():
                value = col[row].as_py()
                reason = (
                    f"column {name!r}: {value} has no value in decimal({want.precision},"
                    f"{want.scale}); map it in the source query, e.g. NULLIF({name}, '{value}')"
                )
                problems.setdefault(row, []).append((name, value, reason))
            try:
                return pc.cast(pc.if_else(hit, pa.scalar(None, col.type), col), want)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                pass
        raise SourceError(
            f"column {name!r} of {self.table or 'the query'}: a {col.type} value does not "
            f"convert exactly to {want}",
            where={"table": self.table or "query", "column": name},
            hint=f"cast the column in a query= (e.g. CAST({name} AS text)) to read it as text",
        )

    def _batch(
        self,
        typed: pa.RecordBatch,
        problems: Problems,
        flagged: np.ndarray | None = None,
        kinds: bytes = b"",
    ) -> Batch:
        """A Batch positioned after its last row read, its rows quarantined where a value has
        no exact form: ``problems`` from :meth:`_typed`, ``flagged`` dates and timestamps from
        the reader (see :mod:`.datetimes`)."""
        batch = Batch(typed, position=self._position(typed))
        ordering = self._ordering_names()
        for found in problems.values():
            for name, value, _ in found:
                if name in ordering:
                    raise SourceError(
                        f"the ordering column {name!r} holds {value}",
                        where={"table": self.table or "query", "column": name},
                        hint="order by another column, or map it in a query=",
                    )
        if flagged is not None:
            gone = np.unique(flagged[:, 0])
            batch = quarantine_flagged(batch, flagged, kinds, ordering)
            # the rows left have moved up past the flagged ones before them
            problems = {
                row - int(np.searchsorted(gone, row)): found
                for row, found in problems.items()
                if row not in set(gone.tolist())
            }
        return _quarantine_rows(batch, problems) if problems else batch

    def _order_columns(self) -> list[str]:
        return ([self.cursor] if self.cursor else []) + self.key_columns

    def _ordering_names(self) -> list[str]:
        """The ordering columns as they are named in the batches (snake_case)."""
        return [normalize_name(c) for c in self._order_columns()]

    def _statement(self, engine: Engine, position: Any, partition: Partition | None) -> sa.Select:
        src = self._selectable(engine)
        self._types = self._declared_types(src, engine.dialect.name)
        cols = src.c
        names = set(cols.keys())
        for col in self._order_columns():
            if col not in names:
                kind = "cursor" if col == self.cursor else "primary key"
                raise ETLConfigError(
                    f"{kind} column {col!r} does not exist in {self.table or 'the query'}",
                    where={"columns": ", ".join(sorted(names)[:30])},
                    hint=f"pass an existing column as {'cursor' if kind == 'cursor' else 'primary_key'}=",
                )
        selected: list[sa.ColumnElement[Any]] = (
            [cols[c] for c in self.columns] if self.columns else list(cols)
        )
        if self.row_hash_key is not None:
            from .checksums import hashed, row_hash_column

            covered = hashed(self, selected)
            selected.append(row_hash_column(engine.dialect.name, covered, self.row_hash_key))
        order = [cols[c] for c in self._order_columns()]
        stmt = sa.select(*selected).order_by(*order)
        if position is not None:
            values = [decode_value(v) for v in position["key"]]
            stmt = stmt.where(
                sa.tuple_(*order) > sa.tuple_(*[_bound(v, c) for v, c in zip(values, order)])
            )
        if partition:
            lo, hi = partition.get("lo"), partition.get("hi")
            bound = cols[partition.get("column", self.key_columns[0])]
            if lo is not None:
                stmt = stmt.where(bound >= decode_value(lo))
            if hi is not None:
                stmt = stmt.where(bound < decode_value(hi))
        if engine.dialect.name == "postgresql":
            stmt = self._exact_text(engine, stmt)
        return stmt

    def _exact_text(self, engine: Engine, stmt: sa.Select) -> sa.Select:
        """Select every PostgreSQL column whose type the common format has no exact native
        form for (money, arrays of any dimension, ranges, geometric types, time, timetz,
        interval, bit strings, xml, tsvector, network types, enums, composites, bytea, ...)
        as its PostgreSQL text (``col::text``): it lands as text whose ``::text`` is the
        source's, on every reader path. The types kept are those the binary reader decodes
        (:data:`.pgbinary.KINDS`)."""
        from .pgbinary import _ARROW, KINDS

        with engine.connect() as conn:
            result = conn.execute(stmt.limit(0))
            # DB-API descriptions: (name, type OID, size, size, precision, scale, null_ok)
            described = [
                (d[0], cast(int, d[1]), d[4], d[5]) for d in result.cursor.description or []
            ]
            result.close()
        keep = set(self._order_columns())
        numerics = set()
        as_text_too: set[str] = set()
        for column, oid, precision, scale in described:  # reflection misses domains, queries
            name, kind = normalize_name(column), KINDS.get(oid)
            if kind == b"n" and name not in self._types:
                self._types[name] = exact_numeric_type(sa.Numeric(precision, scale))
            elif kind is not None and kind != b"n":
                self._types.setdefault(name, _ARROW.get(kind, pa.string()))
            if kind == b"n" and column not in keep:
                numerics.add(column)  # its exact text, cast to decimal128 where declared so
            elif (kind in (b"u", b"j") or oid == _JSON) and column not in keep:
                as_text_too.add(column)  # drivers hand these over as bytes or parsed objects
        # ordering columns too: ORDER BY stays on the column itself, and a position holding
        # the text binds back cast to the column's type (see _bound)
        as_text = {column for column, oid, _, _ in described if oid not in KINDS}
        # the binary reader decodes these exactly itself; ADBC and the DB-API driver read them
        # as text (see _cast_text)
        self._text_elsewhere = numerics | as_text_too
        # real: its shortest text read as double precision, the same on every path (1.1, not
        # 1.100000023841858), and converting back to real gives the stored value again
        reals = {c for c, oid, _, _ in described if oid == _FLOAT4 and c not in keep}
        if not as_text and not reals:
            return stmt
        columns = []
        for col in stmt.selected_columns:
            if col.name in as_text:
                self._types[normalize_name(col.name)] = pa.string()
                col = sa.cast(col, sa.Text).label(col.name)
            elif col.name in reals:
                col = sa.cast(sa.cast(col, sa.Text), sa.Double()).label(col.name)
            columns.append(col)
        return stmt.with_only_columns(*columns)

    def _cast_text(self, stmt: sa.Select) -> sa.Select:
        """``stmt`` with the columns :meth:`_exact_text` left to the binary reader (numeric,
        uuid, json) selected as text, for ADBC and the DB-API driver."""
        names = self._text_elsewhere
        if not names:
            return stmt
        return stmt.with_only_columns(
            *[
                sa.cast(c, sa.Text).label(c.name) if c.name in names else c
                for c in stmt.selected_columns
            ]
        )

    def partitions(self, n: int | None = None, *, column: str | None = None) -> list[Partition]:
        """``n`` key ranges with about equal row counts (quantiles, so skewed keys balance too);
        ``column`` defaults to the primary key; the cursor column gives time windows."""
        from .partitioning import key_ranges

        return key_ranges(self, n or 1, column=column)

    # -- reading ------------------------------------------------------------------------

    def read(self, position: Any = None, partition: Partition | None = None) -> Iterator[Batch]:
        try:
            engine = self._engine()
            stmt = self._statement(engine, position, partition)
        except (ETLConfigError, SourceError):
            raise
        except Exception as exc:  # a driver error: what it means and its fix (retry.diagnose)
            found = diagnose(exc)
            if found is None and not isinstance(exc, sa.exc.SQLAlchemyError):
                raise
            cause = getattr(exc, "orig", None) or exc  # no SQL text, no value, no DETAIL
            raise SourceError(
                f"cannot read {self.table or 'query'} from {self._masked()}: "
                + (f"{found.what}: " if found else "")
                + safe_pg_message(cause),
                where={"table": self.table or "query"},
                hint=found.hint
                if found
                else "check the URL, that the database is reachable and the credentials",
            ) from None
        if self.fast_path and engine.dialect.name == "postgresql":
            yield from self._read_postgres(engine, stmt, position, partition)
        else:
            stmt = self._cast_text(_as_text(stmt, set(self._order_columns())))
            yield from self._read_sqlalchemy(engine, stmt)

    def _position(self, batch: pa.RecordBatch) -> dict[str, Any]:
        last = batch.num_rows - 1
        key = [encode_value(batch.column(c)[last].as_py()) for c in self._order_columns()]
        return {"key": key}

    def _read_sqlalchemy(self, engine: Engine, stmt: sa.Select) -> Iterator[Batch]:
        try:
            yield from self._rows_sqlalchemy(engine, stmt)
        except sa.exc.DataError:
            # the driver could not turn a value into Python (e.g. PostgreSQL's infinite or
            # year-10000 dates); its message quotes the value, so it is not passed on
            raise SourceError(
                f"a value of {self.table or 'the query'} has no Python form (the driver "
                "refused it, e.g. an infinite date or one past year 9999)",
                where={"table": self.table or "query"},
                hint="map the value in a query= (e.g. NULLIF or LEAST); on PostgreSQL such "
                "dates and timestamps are quarantined naming the column",
            ) from None

    def _rows_sqlalchemy(self, engine: Engine, stmt: sa.Select) -> Iterator[Batch]:
        with engine.connect() as conn:
            conn = _read_only(conn)
            postgres = conn.dialect.name == "postgresql"
            if postgres:
                # out-of-range dates quarantine their rows as on the other paths; their text
                # is written in UTC like there (a session setting: the source is not changed)
                guard_driver_dates(conn.connection.dbapi_connection)
                conn.exec_driver_sql("SET TimeZone = 'UTC'")
            result = conn.execution_options(stream_results=True, yield_per=self.batch_size).execute(
                stmt
            )
            names = list(result.keys())
            try:
                for rows in result.partitions(self.batch_size):
                    columns = [list(c) for c in zip(*rows)]
                    found: Problems = {}
                    ordering = self._ordering_names()
                    if postgres:
                        for name, values in zip(names, columns):
                            for row, problem in driver_problems(
                                normalize_name(name), values, ordering
                            ).items():
                                found.setdefault(row, []).append(problem)
                    arrays = [self._column(name, c) for name, c in zip(names, columns)]
                    batch = pa.RecordBatch.from_arrays(arrays, names=names)
                    typed, problems = self._typed(batch, self._types)
                    for row, more in found.items():
                        problems.setdefault(row, []).extend(more)
                    yield self._batch(typed, problems)
            finally:
                result.close()  # its server-side cursor, also when a value stops the read

    def _column(self, name: str, values: list[Any]) -> pa.Array:
        """One column of driver values as Arrow; values Arrow cannot take stop the read
        naming the column (never a raw conversion error)."""
        try:
            return pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OverflowError):
            kinds = sorted({type(v).__name__ for v in values if v is not None})
            raise SourceError(
                f"column {name!r} of {self.table or 'the query'}: its {'/'.join(kinds)} values "
                "have no exact form in the common format",
                where={"table": self.table or "query", "column": name},
                hint=f"cast it in a query= (e.g. CAST({name} AS CHAR) or AS text)",
            ) from None

    def _read_postgres(
        self, engine: Engine, stmt: sa.Select, position: Any, partition: Partition | None
    ) -> Iterator[Batch]:
        """Binary COPY decoded by the compiled extension (:mod:`.pgbinary`) when it can take
        every column and value; else, or from the first value it cannot take, ADBC."""
        from . import pgbinary

        reader = pgbinary.open_reader(
            self._libpq_url(engine), _render(stmt)
        )  # None: not here, or not these types
        if reader is not None:
            try:
                for rows, flagged in reader.batches(self.batch_size, ramp=True):
                    batch = self._batch(*self._typed(rows, self._types), flagged, reader.kinds)
                    yield batch
                    position = batch.position
                return
            except pgbinary.Unsupported as exc:
                logger.info(
                    "reading {} through ADBC from here on: {}", self.table or "the query", exc
                )
                stmt = self._statement(engine, position, partition)
            finally:
                reader.close()
        yield from self._read_adbc(engine, stmt)

    @staticmethod
    def _libpq_url(engine: Engine) -> str:
        return libpq_url(str(engine.url.render_as_string(hide_password=False)))

    def _read_adbc(self, engine: Engine, stmt: sa.Select) -> Iterator[Batch]:
        """Stream the rows through ADBC (binary COPY decoded to Arrow in C++).

        ``numeric`` columns are selected as text: PostgreSQL's text form is cheaper for ADBC
        to take in than its binary numeric (decoded into strings digit by digit), and
        :meth:`_typed` casts the text to ``decimal128`` in one vectorized step; ``uuid``
        columns too, as their usual 8-4-4-4-12 text. Positions are
        taken from the typed batch, so they bind back with their SQL types.
        """
        import adbc_driver_postgresql.dbapi as adbc

        stmt = self._cast_text(_as_text(stmt, set(self._order_columns())))
        with adbc.connect(self._libpq_url(engine)) as conn, conn.cursor() as cur:
            cur.execute("SET default_transaction_read_only = on")
            cur.execute("SET standard_conforming_strings = on")  # see _render
            cur.adbc_statement.set_options(
                **{"adbc.postgresql.batch_size_hint_bytes": str(_ADBC_CHUNK_BYTES)}
            )
            cur.execute(_render(stmt))
            reader = cur.fetch_record_batch()
            pending: list[pa.RecordBatch] = []
            pending_rows = 0
            for chunk in reader:
                pending.append(chunk)
                pending_rows += chunk.num_rows
                while pending_rows >= self.batch_size:
                    table = pa.Table.from_batches(pending)
                    rest = table.slice(self.batch_size)
                    pending = rest.to_batches() if rest.num_rows else []
                    pending_rows = rest.num_rows
                    yield self._adbc_batch(table.slice(0, self.batch_size))
            if pending_rows:
                yield self._adbc_batch(pa.Table.from_batches(pending))

    def _adbc_batch(self, rows: pa.Table) -> Batch:
        """A typed batch from ADBC's rows, its dates and timestamps out of the common format
        quarantined as on the binary reader's path (see :mod:`.datetimes`)."""
        typed, problems = self._typed(rows.combine_chunks().to_batches()[0], self._types)
        data, flagged, kinds = flag_adbc(typed)  # before the position reads the last row
        return self._batch(data, problems, flagged, kinds)


_FLOAT4 = 700  # PostgreSQL's OID of real
_JSON = 114


def _bound(value: Any, column: Any) -> Any:
    """A position value to compare with ``column``: text (the position of a column read as
    text, see ``_exact_text``) takes the column's own type, so ``money``, enums and the
    like compare with their own operators."""
    t = column.type
    if isinstance(value, str) and (
        isinstance(t, sa.Enum) or not isinstance(t, (sa.String, sa.types.NullType))
    ):
        return sa.cast(sa.literal(value, sa.Text), column.type)
    return sa.literal(value)


#: row -> (column, value as text, reason) for each value without an exact form
Problems = dict[int, list[tuple[str, str, str]]]
_SPECIAL_NUMERICS = ("NaN", "Infinity", "-Infinity")  # a pa.array at import would load pandas


def exact_numeric_type(t: sa.Numeric) -> pa.DataType:
    """``numeric(p, s)`` with p <= 38 is ``decimal128(p, s)``; unconstrained ``numeric`` (any
    scale, NaN, ±Infinity) and wider ones are their exact text (PostgreSQL's ``::text``),
    one representation whatever values a batch holds."""
    precision = getattr(t, "precision", None)
    if precision is None or precision > 38:
        return pa.string()
    return pa.decimal128(precision, getattr(t, "scale", None) or 0)


def _quarantine_rows(batch: Batch, problems: Problems) -> Batch:
    """``batch`` without the rows in ``problems``, which go to quarantine with their values
    written as text and reasons naming the columns; the position stays the last row read."""
    data = batch.data
    assert isinstance(data, pa.RecordBatch)
    bad = sorted(problems)
    rejected = []
    for row, record in zip(bad, to_records(data.take(pa.array(bad)))):
        record.update({name: value for name, value, _ in problems[row]})
        reason = "; ".join(why for _, _, why in problems[row])
        rejected.append(Rejected(row, record, reason, batch.position))
    keep = np.ones(data.num_rows, dtype=bool)
    keep[bad] = False
    return Batch(
        data.filter(pa.array(keep)),
        position=batch.position,
        meta=batch.meta,
        rejected=[*batch.rejected, *rejected],
    )


def _render(stmt: sa.Select) -> str:
    """The statement as PostgreSQL text with its values inline ("named" paramstyle: no
    %-escaping, the drivers take the text verbatim). COPY takes no bound parameters, so the
    keyset values are literals, quoted for ``standard_conforming_strings = on`` — which the
    binary reader and the ADBC path set on their connections before running it: with it off
    a backslash in a key would end the literal early."""
    from sqlalchemy.dialects import postgresql

    dialect = postgresql.dialect(paramstyle="named")
    return str(stmt.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))


def _as_text(stmt: sa.Select, keep: set[str]) -> sa.Select:
    """Select exact ``numeric`` columns (not the ordering ones) and the types ADBC or the
    DB-API driver hand over in a form the common format cannot hold — ``uuid`` and
    ``inet``/``cidr``/``macaddr`` as raw bytes, ``interval`` as month-day-nanosecond, JSON
    parsed into Python objects — as their text in the database, same names."""
    from sqlalchemy.dialects import mysql, postgresql

    as_text = (
        sa.Uuid,
        sa.JSON,  # its text as the database holds it (key order, spacing), not re-serialized
        sa.Time,  # MySQL's TIME spans -838:59:59 .. 838:59:59, more than a time of day
        mysql.SET,  # a Python set otherwise, in no stable order
        sa.Interval,
        postgresql.INTERVAL,
        postgresql.INET,
        postgresql.CIDR,
        postgresql.MACADDR,
    )
    columns: list[sa.ColumnElement[Any]] = []
    changed = False
    for col in stmt.selected_columns:
        t = getattr(col, "type", None)
        numeric = isinstance(t, sa.Numeric) and not isinstance(t, sa.Float) and col.name not in keep
        # MySQL's BIGINT UNSIGNED goes past int64: its text, cast to decimal128(20, 0)
        unsigned = isinstance(t, sa.BigInteger) and getattr(t, "unsigned", False)
        if (numeric or unsigned or isinstance(t, as_text)) and col.name not in keep:
            columns.append(sa.cast(col, sa.Text).label(col.name))
            changed = True
        elif isinstance(t, sa.Float) and getattr(t, "asdecimal", False):
            # MySQL's DOUBLE comes as Decimal by default; its value is a float
            columns.append(sa.type_coerce(col, sa.Double()).label(col.name))
            changed = True
        else:
            columns.append(col)
    return stmt.with_only_columns(*columns) if changed else stmt


def _read_only(conn: Connection) -> Connection:
    if conn.dialect.name == "postgresql":
        return conn.execution_options(postgresql_readonly=True)
    return conn


__all__ = ["SQLSource"]
