"""``SQLDatabase``: a whole schema of a SQL database, as many tables as it holds."""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from typing import Any

from ..._validate import name_list
from ...errors import ETLConfigError, SourceError, safe_pg_message
from ...retry import diagnose
from ...secrets import SecretLike, reveal
from ...store.database import engine_for, mask_url
from .discovery import TableInfo, read_catalog
from .source import SQLSource


class SQLDatabase:
    """The tables of one schema of a database, found in its catalog.

    Discovery reads the catalog once for all tables — their columns and declared types,
    primary keys and the planner's row estimates — in one query per kind of fact, whatever
    the number of tables; each matching table is then read as an :class:`SQLSource` built
    from that catalog (no reflection per table). ``include`` and ``exclude`` are glob
    patterns over table names (``"audit_*"``, ``"?_log"``, ``"[ab]*"``), matched with case;
    a table is read when it matches an ``include`` pattern and no ``exclude`` pattern. An
    ``include`` entry without wildcards names a table that must exist. Nothing is written
    to the database. Use it as the source of an :class:`etl_express.Replication`::

        source = SQLDatabase(url=etl.secret("CRM_DB_URL"), schema="public",
                             include=["*"], exclude=["audit_*"])

    Args:
        url: SQLAlchemy URL (string or ``etl.secret(...)``).
        schema: the schema (PostgreSQL) or database (MariaDB/MySQL); ``None``: the
            connection's default.
        include: glob patterns of the tables to read (default: all).
        exclude: glob patterns of tables to leave out.
        batch_size: rows per batch of each table.
        fast_path: see :class:`SQLSource`.
    """

    def __init__(
        self,
        url: SecretLike,
        *,
        schema: str | None = None,
        include: str | Sequence[str] = ("*",),
        exclude: str | Sequence[str] = (),
        batch_size: int = 50_000,
        fast_path: bool = True,
    ):
        self.url = url
        self.schema = schema
        self.include = name_list(include, "include", "SQLDatabase", single=False)
        self.exclude = name_list(exclude, "exclude", "SQLDatabase", single=False)
        if not self.include:
            raise ETLConfigError(
                "SQLDatabase(include=[]) selects no table",
                hint='include=["*"] reads every table of the schema',
            )
        if batch_size < 1:
            raise ETLConfigError(f"batch_size must be >= 1, got {batch_size}")
        self.batch_size = batch_size
        self.fast_path = fast_path

    def __repr__(self) -> str:
        return (
            f"SQLDatabase(url={self.masked_url()!r}, schema={self.schema!r}, "
            f"include={self.include!r}, exclude={self.exclude!r})"
        )

    def masked_url(self) -> str:
        """The URL for messages: a secret's name, or the URL without its password."""
        from ...secrets import SecretRef

        return (
            repr(self.url) if isinstance(self.url, SecretRef) else mask_url(str(reveal(self.url)))
        )

    def catalog(self) -> list[TableInfo]:
        """Every table of the schema as the catalog describes it now (one catalog read)."""
        url = reveal(self.url)
        if not url:
            raise ETLConfigError("SQLDatabase url is empty", hint="pass url= or etl.secret('...')")
        try:
            return read_catalog(engine_for(url), self.schema)
        except (ETLConfigError, SourceError):
            raise
        except Exception as exc:  # a driver error: what it means and its fix
            found = diagnose(exc)
            cause = getattr(exc, "orig", None) or exc
            raise SourceError(
                f"cannot read the catalog of {self.masked_url()}: "
                + (f"{found.what}: " if found else "")
                + safe_pg_message(cause),
                where={"schema": self.schema or "default"},
                hint=found.hint
                if found
                else "check the URL, the schema and that the user may read the catalog",
            ) from None

    def selected(self, catalog: Sequence[TableInfo]) -> list[TableInfo]:
        """The tables of ``catalog`` that ``include`` selects and ``exclude`` does not; an
        ``include`` entry without wildcards that names no table is a configuration error."""
        names = [t.name for t in catalog]
        missing = [p for p in self.include if not _is_glob(p) and p not in names and p != "*"]
        if missing:
            raise ETLConfigError(
                f"SQLDatabase(include=...) names table(s) {missing} that the schema "
                f"{self.schema or '(default)'} does not have",
                where={"tables": ", ".join(names[:30])},
                hint="correct the names, or use a pattern such as 'orders_*'",
            )
        return [
            t
            for t in catalog
            if any(fnmatch.fnmatchcase(t.name, p) for p in self.include)
            and not any(fnmatch.fnmatchcase(t.name, p) for p in self.exclude)
        ]

    def tables(self) -> list[TableInfo]:
        """The selected tables, from one catalog read."""
        return self.selected(self.catalog())

    def source(self, table: TableInfo, **options: Any) -> SQLSource:
        """An :class:`SQLSource` reading ``table`` (from :meth:`tables`) by its catalog entry;
        ``options`` (``primary_key``, ``cursor``, ``pii``...) go to ``SQLSource``."""
        options.setdefault("primary_key", list(table.primary_key) or None)
        return SQLSource(
            self.url,
            table.qualified,
            batch_size=self.batch_size,
            fast_path=self.fast_path,
            name=table.name,
            definition=table,
            **options,
        )


def _is_glob(pattern: str) -> bool:
    return any(c in pattern for c in "*?[")


__all__ = ["SQLDatabase"]
