"""Read-only checksum queries a :class:`SQLSource` answers for delete reconciliation.

Everything here is a ``SELECT`` with bound parameters: the source database hashes its own rows
(PostgreSQL: ``md5`` over ``ROW(...)::text``; MariaDB/MySQL: ``MD5`` over a length-prefixed
``CONCAT_WS``), sums the hashes per key range and sends back only those sums, or, for a narrow
range, the keys with their hashes. The row hash is keyed: the pipeline's row-hash key is
prepended to the row text, so a reader of the target, who sees the stored hashes but not the
key, cannot test guesses against them; the key comes from the secret store only, and the
hash covers only the columns the target receives in clear (see docs/anonymization.md).

The incremental read selects the same hash as the ``_etl_row_hash`` column, so the target
stores, for each row, the hash of exactly the source version it holds.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ...errors import ETLConfigError
from ...format import ROW_HASH, Batch
from .query import PlannedSource
from .rows_reader import read_only

HASHING_DIALECTS = ("postgresql", "mysql", "mariadb")


def row_hash_column(
    dialect: str, columns: Sequence[sa.ColumnElement[Any]], key: str
) -> sa.ColumnElement[Any]:
    """A signed 64-bit keyed hash of the row made of ``columns``, labelled ``_etl_row_hash``."""
    secret = sa.literal(key, sa.Text)
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import BIT

        parts = [
            # a timestamptz prints in the session's TimeZone: hash its UTC wall time instead
            sa.func.timezone("UTC", c) if isinstance(c.type, sa.DateTime) and c.type.timezone else c
            for c in columns
        ]
        text: sa.ColumnElement[Any] = sa.cast(sa.func.row(*parts), sa.Text)
        hex16 = sa.func.substr(sa.func.md5(secret.concat(text)), 1, 16)
        bits = sa.cast(sa.literal_column("'x'", sa.Text).concat(hex16), BIT(64))
        return sa.cast(bits, sa.BigInteger).label(ROW_HASH)
    if dialect in ("mysql", "mariadb"):
        # length-prefixed values: ('a', NULL) and (NULL, 'a') hash differently
        fields = [
            sa.func.coalesce(sa.func.concat(sa.func.char_length(c), ":", c), "-") for c in columns
        ]
        row_text = sa.func.concat_ws(",", *fields)
        hex16 = sa.func.substring(sa.func.md5(sa.func.concat(secret, row_text)), 1, 16)
        signed = sa.func.conv(hex16, 16, -10)
        return sa.cast(signed, sa.BigInteger).label(ROW_HASH)  # CAST(... AS SIGNED)
    raise ETLConfigError(
        f"deletes= cannot hash rows inside a {dialect} database",
        hint="delete reconciliation with checksums needs a PostgreSQL or MariaDB/MySQL source",
    )


def hashed(source: Any, columns: Sequence[Any]) -> list[Any]:
    """The columns of ``columns`` the row hash covers (``source.row_hash_columns``, set by the
    pipeline to those the target receives in clear; ``None``: all)."""
    wanted = getattr(source, "row_hash_columns", None)
    return list(columns) if wanted is None else [c for c in columns if c.name in wanted]


class KeySelection(NamedTuple):
    """Keys in ``[lo, hi)``; with ``width``, only those in ``buckets``, bucket =
    ``(key - origin) // width``."""

    origin: int
    lo: int
    hi: int
    width: int | None = None
    buckets: Sequence[int] = ()


def integer_key(source: PlannedSource, engine: Engine) -> bool:
    """Whether the source's primary key is one integer column (range checksums apply)."""
    if len(source.key_columns) != 1:
        return False
    column = source.selectable(engine).c.get(source.key_columns[0])
    return column is not None and isinstance(column.type, sa.Integer)


class SQLChecksums:
    """The source side of a reconciliation: range checksums, keys, re-reads (all read-only).

    Keys are the source's single integer primary key; ranges are half-open ``[lo, hi)``.
    """

    def __init__(self, source: PlannedSource, key: str, partition: dict[str, Any] | None):
        self.source = source
        self.key = key
        self.engine: Engine = source.engine()
        self.dialect = self.engine.dialect.name
        if self.dialect not in HASHING_DIALECTS:
            row_hash_column(self.dialect, [], key)  # raises the explanation
        self.src = source.selectable(self.engine)
        names = set(self.src.c.keys())
        if len(source.key_columns) != 1 or source.key_columns[0] not in names:
            raise ETLConfigError(
                f"deletes= needs a single-column primary key on {source.table or 'the query'}, "
                f"got {source.key_columns}",
                hint="reconcile on a single integer key column",
            )
        self.pk = self.src.c[source.key_columns[0]]
        if not isinstance(self.pk.type, sa.Integer):
            raise ETLConfigError(
                f"deletes= needs an integer primary key; {source.key_columns[0]!r} is "
                f"{self.pk.type}",
                where={"table": source.table or "query"},
                hint="reconcile on an integer key (or leave deletes=None)",
            )
        selected = [self.src.c[c] for c in source.columns] if source.columns else list(self.src.c)
        self.hash = row_hash_column(self.dialect, hashed(source, selected), key)
        self.partition = partition or {}

    def _in_partition(self, stmt: sa.Select) -> sa.Select:
        lo, hi = self.partition.get("lo"), self.partition.get("hi")
        if lo is not None:
            stmt = stmt.where(self.pk >= lo)
        if hi is not None:
            stmt = stmt.where(self.pk < hi)
        return stmt

    def _within(self, sel: KeySelection) -> sa.ColumnElement[bool]:
        cond = sa.and_(self.pk >= sel.lo, self.pk < sel.hi)
        if sel.width is not None:
            bucket = (self.pk - sa.literal(sel.origin)) // sa.literal(sel.width)
            cond = sa.and_(cond, bucket.in_(list(sel.buckets)))
        return cond

    def _rows(self, stmt: sa.Select) -> list[Any]:
        with self.engine.connect() as conn:
            return list(read_only(conn).execute(stmt).all())

    def bounds(self) -> tuple[int | None, int | None, int]:
        """Smallest and largest key and the row count (in the partition)."""
        stmt = self._in_partition(
            sa.select(sa.func.min(self.pk), sa.func.max(self.pk), sa.func.count())
        ).select_from(self.src)
        lo, hi, n = self._rows(stmt)[0]
        return (None if lo is None else int(lo)), (None if hi is None else int(hi)), int(n)

    def bucket_sums(self, sel: KeySelection, width: int) -> dict[int, tuple[int, int, int]]:
        """``{bucket: (rows, rows with a hash, sum of hashes)}``, bucket = (key - origin) // width."""
        bucket = ((self.pk - sa.literal(sel.origin)) // sa.literal(width)).label("b")
        stmt = (
            sa.select(bucket, sa.func.count(), sa.func.count(), sa.func.sum(self.hash))
            .select_from(self.src)
            .where(self._within(sel))
            .group_by(bucket)
        )
        return {int(b): (int(n), int(nh), int(s or 0)) for b, n, nh, s in self._rows(stmt)}

    def key_hashes(self, sel: KeySelection) -> dict[int, int | None]:
        """Every selected key with its row hash."""
        stmt = sa.select(self.pk, self.hash).select_from(self.src).where(self._within(sel))
        return {int(k): int(h) for k, h in self._rows(stmt)}

    def present(self, keys: Sequence[int]) -> set[int]:
        """Which of ``keys`` the source has (checked by equality before anything is deleted)."""
        found: set[int] = set()
        for i in range(0, len(keys), 1000):
            chunk = list(keys[i : i + 1000])
            stmt = sa.select(self.pk).select_from(self.src).where(self.pk.in_(chunk))
            found.update(int(r[0]) for r in self._rows(stmt))
        return found

    def read_keys(self, keys: Sequence[int]) -> Iterator[Batch]:
        """The current rows of ``keys`` with their row hash, typed as the incremental read types
        them; the batches carry no position (they do not move the checkpoint)."""
        source = self.source
        for i in range(0, len(keys), source.batch_size):
            chunk = list(keys[i : i + source.batch_size])
            plan = source.plan(self.engine)
            plan = plan.where(plan.table().c[self.pk.name].in_(chunk))
            for batch in source.read_plan(self.engine, plan):
                yield Batch(batch.data, position=None, meta=batch.meta, rejected=batch.rejected)


class SQLKeyListing:
    """The source's full key list, streamed (with each row's hash where the database can hash),
    and re-reads by key: for keys that are not a single integer, or a database that cannot
    hash (then only deletions are found)."""

    def __init__(self, source: PlannedSource, key: str | None):
        self.source = source
        self.engine: Engine = source.engine()
        self.src = source.selectable(self.engine)
        self.keys_cols = [self.src.c[c] for c in source.key_columns]
        self.hashed = key is not None
        if key is not None:
            selected = (
                [self.src.c[c] for c in source.columns] if source.columns else list(self.src.c)
            )
            self.hash: sa.ColumnElement[Any] | None = row_hash_column(
                self.engine.dialect.name, hashed(source, selected), key
            )
        else:
            self.hash = None

    def keys(self) -> Iterator[list[tuple[Any, ...]]]:
        cols = [*self.keys_cols, *([self.hash] if self.hash is not None else [])]
        stmt = sa.select(*cols).select_from(self.src)
        with self.engine.connect() as conn:
            result = (
                read_only(conn)
                .execution_options(stream_results=True, yield_per=50_000)
                .execute(stmt)
            )
            for rows in result.partitions(50_000):
                yield [tuple(r) for r in rows]

    def read_keys(self, keys: list[tuple[Any, ...]]) -> Iterator[Batch]:
        """The current rows of ``keys``, typed as the incremental read types them, without a
        position."""
        source = self.source
        for i in range(0, len(keys), 1000):
            chunk = keys[i : i + 1000]
            plan = source.plan(self.engine)
            table = plan.table()
            cols = [table.c[c.name] for c in self.keys_cols]
            if len(cols) == 1:
                plan = plan.where(cols[0].in_([k[0] for k in chunk]))
            else:
                plan = plan.where(sa.tuple_(*cols).in_(chunk))
            for batch in source.read_plan(self.engine, plan):
                yield Batch(batch.data, position=None, meta=batch.meta, rejected=batch.rejected)


__all__ = [
    "HASHING_DIALECTS",
    "SQLChecksums",
    "SQLKeyListing",
    "hashed",
    "integer_key",
    "row_hash_column",
]
