"""Database URLs and engines: which PostgreSQL a pipeline talks to."""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Engine, make_url

from .._masking import mask_url as _mask_url
from .._masking import url_problem
from ..errors import ETLConfigError
from ..retry import as_etl_error, note_reached
from ..secrets import SecretLike, reveal

if TYPE_CHECKING:
    import psycopg

DATABASE_URL_ENV = "ETL_EXPRESS_DATABASE_URL"

_engines: dict[str, Engine] = {}
_engines_lock = threading.Lock()
_engines_pid = os.getpid()


def mask_url(url: str | URL) -> str:
    """The URL with its password replaced by ``***`` (safe to print or log); a URL that does
    not parse is shown as its scheme and host only (see :func:`etl_express._masking.mask_url`)."""
    if isinstance(url, URL):
        return url.render_as_string(hide_password=True)
    return _mask_url(url)


def resolve_url(url: SecretLike | None = None) -> str:
    """The PostgreSQL URL to use: ``url``, else ``ETL_EXPRESS_DATABASE_URL``, else the
    embedded server."""
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
    problem = url_problem(url)
    shown = f"{mask_url(url)}, the rest not shown" if problem else mask_url(url)
    parsed: URL | None = None
    try:
        parsed = make_url(url) if problem is None else None
    except Exception:
        problem = "SQLAlchemy cannot parse it"
    if parsed is None:
        raise ETLConfigError(
            f"not a database URL ({shown}): {problem}",
            hint="use the form postgresql://user@host:5432/database, with the password after "
            "the user name (user:password) and its special characters percent-encoded "
            "(@ as %40, / as %2F, : as %3A)",
        ) from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    elif parsed.drivername == "mysql" or parsed.drivername == "mariadb":
        parsed = parsed.set(drivername="mysql+pymysql")
    return parsed


def libpq_url(url: str) -> str:
    """A plain libpq URL (for psycopg and ADBC) from any PostgreSQL SQLAlchemy URL."""
    parsed = sqlalchemy_url(url)
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


def engine_for(url: str, **kwargs: Any) -> Engine:
    """A shared engine per URL (per process: engines are not inherited by workers)."""
    global _engines_pid
    with _engines_lock:
        if _engines_pid != os.getpid():
            _engines.clear()
            _engines_pid = os.getpid()
        key = url + repr(sorted(kwargs.items()))
        engine = _engines.get(key)
        if engine is None:
            parsed = sqlalchemy_url(url)
            try:
                engine = sa.create_engine(parsed, pool_pre_ping=True, **kwargs)
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
            _engines[key] = engine
        return engine


def psycopg_connection(conn: Connection) -> psycopg.Connection[Any]:
    """The psycopg connection under a SQLAlchemy connection of a store's engine: what it
    runs is part of ``conn``'s transaction (COPY, composed SQL)."""
    import psycopg

    raw = conn.connection.driver_connection
    if not isinstance(raw, psycopg.Connection):
        raise TypeError(f"not a psycopg connection: {type(raw).__name__}")
    return raw


__all__ = [
    "DATABASE_URL_ENV",
    "engine_for",
    "libpq_url",
    "mask_url",
    "psycopg_connection",
    "resolve_url",
    "sqlalchemy_url",
]
