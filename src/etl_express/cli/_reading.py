"""The store as the commands that only read it see it: one read-only psycopg connection.

``etl-express runs``, ``logs show|tail`` and ``quarantine list`` answer in a fraction of a
second because they load neither SQLAlchemy, nor pyarrow, nor the engine: they open one
connection (:func:`etl_express.store.database.connect`), check the store's layout version
with one query and run plain SQL over the state tables (reads are free; each table's writes
stay with its owner in :mod:`etl_express.store`). Nothing here creates a store: a database
without one reads as an empty store. A store at an older layout version is migrated first,
once, by the full store (:func:`etl_express.store.checkpoints.open_store`), as any command
that touches it would. ``tests/cli/test_light.py`` checks that the heavy modules stay out.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from ..store.database import SCHEMA, SCHEMA_VERSION, connect, mask_url, resolve_url, store_version

if TYPE_CHECKING:
    import psycopg
    from psycopg.rows import DictRow

#: the state tables these commands read (a store without one of them is migrated first)
READ_TABLES = ("runs", "logs", "quarantine", "checkpoints", "pipelines")

#: every pipeline the store has a trace of, the most recently run first (as
#: :func:`etl_express._forget.known_pipelines` lists them)
KNOWN_PIPELINES = f"""
    SELECT n.pipeline FROM (
        SELECT pipeline FROM {SCHEMA}.runs UNION SELECT pipeline FROM {SCHEMA}.checkpoints
        UNION SELECT pipeline FROM {SCHEMA}.quarantine UNION SELECT pipeline FROM {SCHEMA}.pipelines
    ) n LEFT JOIN (
        SELECT pipeline, max(started_at) AS at FROM {SCHEMA}.runs GROUP BY pipeline
    ) last ON last.pipeline = n.pipeline
    ORDER BY last.at DESC NULLS LAST, n.pipeline
"""

#: whether the store has a trace of one pipeline (each table's index leads with it)
IS_KNOWN = f"""
    SELECT EXISTS (SELECT FROM {SCHEMA}.runs WHERE pipeline = %(p)s)
        OR EXISTS (SELECT FROM {SCHEMA}.checkpoints WHERE pipeline = %(p)s)
        OR EXISTS (SELECT FROM {SCHEMA}.quarantine WHERE pipeline = %(p)s)
        OR EXISTS (SELECT FROM {SCHEMA}.pipelines WHERE pipeline = %(p)s) AS known
"""


class StoreReader:
    """Plain SQL over one store's state tables, on one connection (``None``: the database
    holds no store, and every query answers nothing)."""

    def __init__(self, url: str, conn: psycopg.Connection[DictRow] | None):
        self.url = url
        self.conn = conn

    def rows(self, sql: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        if self.conn is None:
            return []
        return self.conn.execute(sql, params).fetchall()

    def value(self, sql: str, params: dict[str, Any] | None = None) -> Any:
        """The first column of the first row (``None``: no row)."""
        rows = self.rows(sql, params)
        return next(iter(rows[0].values())) if rows else None

    def known_pipelines(self) -> list[str]:
        return [r["pipeline"] for r in self.rows(KNOWN_PIPELINES)]

    def check_known(self, name: str) -> str:
        """``name`` when the store knows it, else the error naming the known ones."""
        if self.value(IS_KNOWN, {"p": name}):
            return name
        from .._forget import unknown_pipeline

        raise unknown_pipeline(name, self.known_pipelines(), mask_url(self.url))


def _connect(url: str) -> psycopg.Connection[DictRow]:
    """A read-only connection; a transient failure is tried twice more (as a run's first
    contact with the store is), any failure ends as the error a run would give."""
    try:
        return connect(url, read_only=True)
    except Exception as first:
        from ..retry import RetryPolicy, as_etl_error, is_transient

        try:
            if not is_transient(first):
                raise
            return RetryPolicy(attempts=2, backoff=0.5).call(lambda: connect(url, read_only=True))
        except Exception as exc:
            raise as_etl_error(
                exc, what="the state database cannot be used", where={"database": mask_url(url)}
            ) from None


@contextmanager
def read_store(url: str | None) -> Iterator[StoreReader]:
    """The store at ``url`` (``None``: ``ETL_EXPRESS_DATABASE_URL``, else the embedded
    server) to read, on one connection closed on exit."""
    url = resolve_url(url)
    with _connect(url) as conn:
        version = store_version(conn, READ_TABLES)
        if version is not None and version < SCHEMA_VERSION:
            from ..store.checkpoints import open_store

            open_store(url)  # created by an older library: migrated, once, before reading
        yield StoreReader(url, conn if version is not None else None)


@contextmanager
def reading(ref: str | None, url: str | None) -> Iterator[tuple[str | None, StoreReader]]:
    """The pipeline that ``ref`` names (``None``: every pipeline) and its store to read.

    ``ref`` is a name or the pipeline's code (see :mod:`._pipelines`); the code's own store
    is read unless ``url`` names another one. A name the store does not know is an error."""
    from ._pipelines import is_code_reference, load_pipeline

    name = ref
    if ref is not None and is_code_reference(ref):
        pipeline = load_pipeline(ref)
        name = pipeline.name
        url = url if url is not None else pipeline.store.url
    with read_store(url) as store:
        yield (store.check_known(name) if name is not None else None), store


def like_prefix(value: str) -> str:
    """A LIKE pattern matching what starts with ``value`` (``ESCAPE '/'``)."""
    return value.replace("/", "//").replace("%", "/%").replace("_", "/_") + "%"


def columns(names: Sequence[str]) -> str:
    return ", ".join(f'"{n}"' for n in names)


__all__ = [
    "KNOWN_PIPELINES",
    "READ_TABLES",
    "StoreReader",
    "columns",
    "like_prefix",
    "read_store",
    "reading",
]
