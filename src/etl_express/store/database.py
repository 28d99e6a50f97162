"""Database URLs and connections: which PostgreSQL a pipeline talks to, and how.

A run talks to its store through a SQLAlchemy engine (:func:`engine_for`). The commands that
only read the store (``etl-express runs``, ``status``, ``logs show``, ``quarantine list``)
open one plain psycopg connection instead (:func:`connect`) and check the store's layout
version with one query (:func:`store_version`), so that they answer without loading
SQLAlchemy: this module imports it only where an engine or a SQLAlchemy URL is made.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from .._masking import mask_url as _mask_url
from .._masking import url_problem
from ..errors import ETLConfigError, ETLError, safe_pg_message

if TYPE_CHECKING:
    import psycopg
    from psycopg.rows import DictRow
    from sqlalchemy.engine import URL, Connection, Engine
    from sqlalchemy.engine.interfaces import DBAPIConnection
    from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection

    from ..secrets import SecretLike

DATABASE_URL_ENV = "ETL_EXPRESS_DATABASE_URL"

#: the PostgreSQL schema of the state tables (:mod:`.schema` declares them)
SCHEMA = "etl_express"
#: the layout version of the state tables this library writes; :mod:`.schema` migrates a
#: store at an older version (its ``MIGRATIONS``: a new column or index raises this number)
SCHEMA_VERSION = 3

#: a pooled connection idle (checked in) longer than this is pinged when checked out again;
#: one used more recently is handed out as it is (a run checks out a connection a dozen
#: times per table: a ping each time was a round trip each time). A connection that died
#: anyway fails its statement, and the retry loop reconnects.
IDLE_PING_S = 30.0

_engines: dict[str, Engine] = {}
_engines_lock = threading.Lock()
_engines_pid = os.getpid()


def mask_url(url: str | URL) -> str:
    """The URL with its password replaced by ``***`` (safe to print or log); a URL that does
    not parse is shown as its scheme and host only (see :func:`etl_express._masking.mask_url`)."""
    if not isinstance(url, str):  # a SQLAlchemy URL
        return url.render_as_string(hide_password=True)
    return _mask_url(url)


def resolve_url(url: SecretLike | None = None) -> str:
    """The PostgreSQL URL to use: ``url``, else ``ETL_EXPRESS_DATABASE_URL``, else the
    embedded server."""
    if isinstance(url, str) or url is None:
        value = url
    else:  # a secret reference: the secret providers load only here
        from ..secrets import reveal

        value = reveal(url)
    if not value:
        value = os.environ.get(DATABASE_URL_ENV)
    if not value:
        from .embedded import embedded_url

        value = embedded_url()
    return value


def sqlalchemy_url(url: str) -> URL:
    """A SQLAlchemy URL; plain ``postgresql://`` URLs get the psycopg 3 driver.

    A URL that does not parse is refused naming its scheme and host only, never the rest
    (it may hold a password)."""
    from sqlalchemy.engine import make_url

    problem = url_problem(url)
    parsed: URL | None = None
    try:
        parsed = make_url(url) if problem is None else None
    except Exception:
        problem = "SQLAlchemy cannot parse it"
    if parsed is None:
        raise _not_a_url(url, problem or "")
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    elif parsed.drivername == "mysql" or parsed.drivername == "mariadb":
        parsed = parsed.set(drivername="mysql+pymysql")
    return parsed


def _not_a_url(url: str, problem: str) -> ETLConfigError:
    shown = f"{mask_url(url)}, the rest not shown" if problem else mask_url(url)
    return ETLConfigError(
        f"not a database URL ({shown}): {problem}",
        hint="use the form postgresql://user@host:5432/database, with the password after "
        "the user name (user:password) and its special characters percent-encoded "
        "(@ as %40, / as %2F, : as %3A)",
    )


def libpq_url(url: str) -> str:
    """A plain libpq URL (for psycopg and ADBC) from any PostgreSQL SQLAlchemy URL."""
    parsed = sqlalchemy_url(url)
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


def engine_for(url: str, **kwargs: Any) -> Engine:
    """A shared engine per URL (per process: a forked child's engines open connections of
    their own, see :func:`_forget_inherited_connections`)."""
    import sqlalchemy as sa

    from ..retry import as_etl_error, note_reached

    with _engines_lock:
        if _engines_pid != os.getpid():  # forked where the at-fork hook could not run
            _forget_inherited_connections()
        key = url + repr(sorted(kwargs.items()))
        engine = _engines.get(key)
        if engine is None:
            parsed = sqlalchemy_url(url)
            try:
                engine = sa.create_engine(parsed, **kwargs)
            except Exception as exc:  # an unknown dialect, a driver that is not installed
                raise as_etl_error(
                    exc, what="cannot connect", where={"database": mask_url(url)}
                ) from None
            # a refused connection to an address that answered before is an outage (retried);
            # to one that never answered, a wrong host or port (retry.diagnose)
            sa.event.listen(
                engine,
                "connect",
                lambda *_: note_reached(parsed.host or "localhost", parsed.port or ""),
            )
            if engine.dialect.name == "mysql":
                sa.event.listen(engine, "connect", _mysql_session_in_utc)
            _ping_when_idle(engine)
            _engines[key] = engine
        return engine


def _mysql_session_in_utc(dbapi_connection: Any, _record: Any) -> None:
    """MariaDB/MySQL sessions in UTC: a ``TIMESTAMP`` is an instant the server converts to
    the session's ``time_zone`` and the driver returns as a naive wall time, which the
    common format takes to be UTC — in a session on another zone (the server's default,
    ``SYSTEM``, where that is not UTC) every value landed shifted by the offset. A
    ``DATETIME`` is a wall time that no session zone changes."""
    with dbapi_connection.cursor() as cursor:
        cursor.execute("SET time_zone = '+00:00'")


def _forget_inherited_connections() -> None:
    """In a forked child: every cached engine forgets its pooled connections without
    closing them (``dispose(close=False)``). They are the parent's sockets: a statement sent
    on one would interleave with the parent's, and closing one would end the parent's
    session. The engines stay (a store keeps its engine) and open connections of their own
    on first use; psycopg never closes a connection object made in another process when it
    is collected."""
    global _engines_pid
    for engine in _engines.values():
        engine.dispose(close=False)
    _engines_pid = os.getpid()


def _after_fork_in_child() -> None:
    global _engines_lock
    _engines_lock = threading.Lock()  # another thread of the parent may have held it
    _forget_inherited_connections()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _ping_when_idle(engine: Engine) -> None:
    """Ping a pooled connection at checkout only when it was idle over :data:`IDLE_PING_S`;
    one that does not answer is replaced (the pool retries with a new connection)."""
    import time

    import sqlalchemy as sa

    def checkin(dbapi_conn: DBAPIConnection | None, record: ConnectionPoolEntry) -> None:
        record.info["etl_idle_since"] = time.monotonic()

    def checkout(
        dbapi_conn: DBAPIConnection, record: ConnectionPoolEntry, proxy: PoolProxiedConnection
    ) -> None:
        since = record.info.pop("etl_idle_since", None)
        if since is None or time.monotonic() - since <= IDLE_PING_S:
            return
        try:
            engine.dialect.do_ping(dbapi_conn)
        except Exception as exc:
            raise sa.exc.DisconnectionError(type(exc).__name__) from None

    sa.event.listen(engine, "checkin", checkin)
    sa.event.listen(engine, "checkout", checkout)


def psycopg_connection(conn: Connection) -> psycopg.Connection[Any]:
    """The psycopg connection under a SQLAlchemy connection of a store's engine: what it
    runs is part of ``conn``'s transaction (COPY, composed SQL)."""
    import psycopg

    raw = conn.connection.driver_connection
    if not isinstance(raw, psycopg.Connection):
        raise TypeError(f"not a psycopg connection: {type(raw).__name__}")
    return raw


@contextmanager
def pipelined(conn: Connection) -> Iterator[None]:
    """Within the block, what runs on ``conn`` is sent without waiting for each statement's
    result (psycopg's pipeline mode): statements whose results are not read — and the
    transaction's ``BEGIN`` — reach the server in one round trip, at the end of the block
    or when a result is first read. An error surfaces there, and fails the transaction as
    it would have statement by statement. No ``COPY`` inside."""
    with psycopg_connection(conn).pipeline():
        yield


#: a PostgreSQL URL as SQLAlchemy writes it: ``postgresql+psycopg://``, ``postgres://``, ...
_PG_SCHEME = re.compile(r"(?:postgresql|postgres)(?:\+\w+)?://", re.IGNORECASE)


def connect(url: str, *, read_only: bool = False) -> psycopg.Connection[DictRow]:
    """One psycopg connection to the PostgreSQL at ``url`` (any form :func:`engine_for`
    takes) in autocommit mode, its rows as dicts; with ``read_only`` nothing it runs can
    write.

    SQLAlchemy is not loaded: a ``postgresql+driver://`` URL is handed to libpq as
    ``postgresql://`` (a URL that does not parse is refused naming its scheme and host only,
    as :func:`sqlalchemy_url` refuses it). A failure to connect is the driver's error."""
    import psycopg
    from psycopg.rows import dict_row

    problem = url_problem(url)
    if problem is not None:
        raise _not_a_url(url, problem)
    text = url.strip()
    scheme = _PG_SCHEME.match(text)
    plain = "postgresql://" + text[scheme.end() :] if scheme else libpq_url(text)
    conn = psycopg.connect(plain, row_factory=dict_row, autocommit=True)
    try:
        if read_only:
            conn.execute("SET default_transaction_read_only = on")
    except BaseException:
        conn.close()
        raise
    return conn


def store_version(
    conn: psycopg.Connection[DictRow] | psycopg.Cursor[DictRow], tables: Sequence[str] = ()
) -> int | None:
    """The layout version of the store in ``conn``'s database, to compare with
    :data:`SCHEMA_VERSION`: ``None`` when it holds no store (no ``runs`` table), ``0`` for a
    store older than the version record or without one of the state ``tables`` named (made
    by a library older than they are)."""
    found = conn.execute(
        "SELECT to_regclass(%(schema)s || '.runs') IS NOT NULL AS runs, "
        "to_regclass(%(schema)s || '.meta') IS NOT NULL AS meta, NOT EXISTS ("
        "SELECT FROM unnest(%(tables)s::text[]) t WHERE to_regclass(%(schema)s || '.' || t) IS NULL"
        ") AS complete",
        {"schema": SCHEMA, "tables": list(tables)},
    ).fetchone()
    if found is None or not found["runs"]:
        return None
    if not found["meta"] or not found["complete"]:
        return 0
    row = conn.execute(f"SELECT value FROM {SCHEMA}.meta WHERE key = 'schema_version'").fetchone()
    return int(row["value"]) if row is not None else 0


def no_store(url: str) -> ETLConfigError:
    """The error for a database that holds no etl-express store (the reading commands)."""
    return ETLConfigError(
        f"no etl-express store in {mask_url(url)} (schema {SCHEMA} has no runs table)",
        hint="point --url / ETL_EXPRESS_DATABASE_URL at the database your pipelines' "
        "PostgresSink writes to",
    )


@contextmanager
def unreachable_as_error(url: str | URL) -> Iterator[None]:
    """A connection failure (psycopg's, or SQLAlchemy's around it) as an :class:`ETLError`
    naming the store (password masked)."""
    import psycopg

    try:
        yield
    except Exception as exc:
        driver = exc if isinstance(exc, psycopg.Error) else getattr(exc, "orig", None)
        if not isinstance(driver, psycopg.OperationalError):
            raise
        raise ETLError(
            f"cannot read the store at {mask_url(url)}: {safe_pg_message(driver)}",
            hint="check that the server is up and the URL (--url / ETL_EXPRESS_DATABASE_URL)",
        ) from None


__all__ = [
    "DATABASE_URL_ENV",
    "SCHEMA",
    "SCHEMA_VERSION",
    "connect",
    "engine_for",
    "libpq_url",
    "mask_url",
    "no_store",
    "pipelined",
    "psycopg_connection",
    "resolve_url",
    "sqlalchemy_url",
    "store_version",
    "unreachable_as_error",
]
