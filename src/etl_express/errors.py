"""One exception hierarchy for the whole library.

Every message says what failed, where (pipeline, partition, batch, source position)
and what to do about it. Messages never carry secret values or raw personal data:
callers pass column names, positions and counts, never record contents.
"""

from __future__ import annotations

import builtins
import os
import re
import site
import sys
import sysconfig
from collections.abc import Iterable
from typing import Any

from loguru import logger

from ._literals import without_literals
from ._masking import mask_secrets


class ETLError(Exception):
    """Base class of every error raised by etl-express.

    ``where`` names the place (pipeline, partition, batch, position) and ``hint`` says
    what to do; both are appended to the message so a log line alone is actionable.
    URL passwords and secret values resolved through ``etl.secret`` are masked as ``***``.
    """

    #: trying the same thing again later may succeed (set where the library knows it; see
    #: :func:`etl_express.retry.is_transient`)
    transient: bool = False

    def __init__(
        self, message: str, *, where: dict[str, Any] | None = None, hint: str | None = None
    ):
        self.what = message
        self.where = {k: v for k, v in (where or {}).items() if v is not None}
        self.hint = hint
        super().__init__(self._format())

    def __reduce__(self) -> tuple[Any, ...]:
        # rebuilt without calling __init__ (a subclass may take other arguments), so an
        # error crosses to another process (a replication's worker) as it was: its class,
        # message, what/where/hint and the result it carries
        return (_rebuild, (type(self), self.args, self.__dict__))

    def _format(self) -> str:
        text = self.what
        if self.where:
            text += " [" + ", ".join(f"{k}={v}" for k, v in self.where.items()) + "]"
        if self.hint:
            text += f". Fix: {self.hint}"
        return mask_secrets(text)


def _rebuild(cls: type[ETLError], args: tuple[Any, ...], state: dict[str, Any]) -> ETLError:
    """An unpickled :class:`ETLError` (see ``ETLError.__reduce__``)."""
    error = cls.__new__(cls, *args)
    error.args = args
    error.__dict__.update(state)
    return error


class ETLConfigError(ETLError):
    """A configuration is wrong or incomplete (a missing secret, an unknown column...)."""


class SourceError(ETLError):
    """Reading a source system failed."""


class SinkError(ETLError):
    """Writing to a sink failed."""


class QualityError(ETLError):
    """A data-quality check with policy ``fail`` did not pass, or the error budget was exceeded."""


class AnonymizationError(ETLError):
    """Personal data would leave the pipeline unprotected, or an anonymizer is misconfigured."""


class RunLockedError(ETLError):
    """Another live process is running the same pipeline partition."""


#: the identifiers a PostgreSQL error reports in fields of its own (psycopg ``Diagnostic``)
_DIAG_NAMES = ("column_name", "table_name", "schema_name", "constraint_name", "datatype_name")


def safe_pg_message(exc: BaseException, identifiers: Iterable[str] = ()) -> str:
    """A driver error's message without any value from the data, for every sink and store.

    Only the primary message is kept (``DETAIL`` lines such as ``Key (email)=(...)`` or
    ``Failing row contains (...)`` and the SQL text SQLAlchemy appends are dropped), with its
    SQLSTATE, and every quoted literal in it is replaced by ``<value>`` wherever it stands
    (:func:`etl_express._literals.without_literals`), except the names PostgreSQL reports as
    the column, table, schema, constraint or type and the known ``identifiers`` (the
    pipeline's columns and tables). Callers reach it through :mod:`etl_express._privacy`.
    """
    orig = getattr(exc, "orig", None)  # SQLAlchemy's wrapper: the driver's own error
    if isinstance(orig, BaseException) and getattr(exc, "diag", None) is None:
        exc = orig
    diag = getattr(exc, "diag", None)
    primary = getattr(diag, "message_primary", None) if diag is not None else None
    if not primary:
        primary = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    names = [*identifiers]
    if diag is not None:
        names += [n for n in (getattr(diag, f, None) for f in _DIAG_NAMES) if isinstance(n, str)]
    state = getattr(diag, "sqlstate", None) if diag is not None else None
    raised = _user_raised(exc, diag, state)
    if raised is not None:
        return raised
    if diag is None and isinstance(exc, Exception):
        origin = _origin(exc)
        if origin is not None:
            return origin
    first = primary.splitlines()[0] if primary else primary
    if not _connecting(state, first):  # a connection's own names are the URL's, not data
        first = without_literals(first, names)
    primary = first
    text = f"{primary} (SQLSTATE {state})" if state else primary
    return text if diag is not None else f"{type(exc).__name__}: {text}"


#: SQLSTATEs of an error a user-defined database function raised with a message of its own
#: (PL/pgSQL ``RAISE EXCEPTION`` and ``ASSERT``; MySQL/MariaDB ``SIGNAL``)
_USER_STATES = ("P0001", "P0004", "45000")
#: MySQL/MariaDB's error number of ``SIGNAL`` (ER_SIGNAL_EXCEPTION)
_SIGNAL_ERRNO = 1644
_RAISED_AT = re.compile(r"(PL/pgSQL function [^\n]*? at (?:RAISE|ASSERT))")
_TEXT_STATE = re.compile(r"SQLSTATE:? ?([0-9A-Z]{5})")


def _user_raised(exc: BaseException, diag: Any, state: str | None) -> str | None:
    """The description of an error a database function raised with a message of its own
    (``RAISE EXCEPTION 'cannot process %', full_name``, ``SIGNAL ... MESSAGE_TEXT``),
    ``None`` for any other. Its message is the function author's prose, as free to embed a
    value unquoted as a user's Python exception is: it is withheld whole (only where it was
    raised is kept), whatever the driver (psycopg, ADBC, pymysql) and its form."""
    text = str(exc)
    context = getattr(diag, "context", None) if diag is not None else None
    for name, value in getattr(exc, "details", None) or ():  # ADBC: (b'PG_DIAG_...', b'...')
        if name == b"PG_DIAG_CONTEXT" and isinstance(value, bytes):
            context = value.decode("utf-8", "replace")
    state = state or getattr(exc, "sqlstate", None)
    if state is None:
        found = _TEXT_STATE.search(text)
        state = found.group(1) if found else None
    raised_at = _RAISED_AT.search(context or text)
    args: tuple[Any, ...] = getattr(exc, "args", ())
    mysql = type(exc).__module__.split(".")[0] in ("pymysql", "MySQLdb", "mariadb", "mysql")
    signal = mysql and bool(args) and args[0] == _SIGNAL_ERRNO
    if raised_at is None and state not in _USER_STATES and not signal:
        return None
    where = f" ({without_literals(raised_at.group(1))})" if raised_at else ""
    code = f" (SQLSTATE {state})" if state else f" (error {_SIGNAL_ERRNO})" if signal else ""
    return (
        f"a database function raised an error of its own{where} (message withheld: it may "
        f"hold values){code}"
    )


#: SQLSTATE classes of failing to connect (connection exception, invalid authorization,
#: invalid catalog name): their quoted names (host, role, database) come from the URL
_CONNECTING = ("08", "28", "3D")


def _connecting(state: str | None, text: str) -> bool:
    if state:
        return state[:2] in _CONNECTING
    return text.startswith(("connection failed", "connection to server", "could not connect"))


_PACKAGE = os.path.dirname(os.path.abspath(__file__)) + os.sep
_LIBRARIES = tuple(
    {os.path.abspath(p) + os.sep for p in (*site.getsitepackages(), site.getusersitepackages())}
    | {os.path.abspath(sysconfig.get_paths()[k]) + os.sep for k in ("stdlib", "platstdlib")}
)


def _frames(exc: BaseException) -> list[tuple[str, str, str, int]]:
    """(file, module, function, line) of each frame of the traceback, outermost first."""
    out = []
    tb = exc.__traceback__
    while tb is not None:
        frame = tb.tb_frame
        module = str(frame.f_globals.get("__name__", "?"))
        out.append((frame.f_code.co_filename, module, frame.f_code.co_name, tb.tb_lineno))
        tb = tb.tb_next
    return out


def _is_library(module: str, path: str) -> bool:
    """Whether a frame belongs to an installed library or the standard library (by its
    top-level package's location: compiled frames name a relative ``.pxi`` file)."""
    if path.startswith(_LIBRARIES):
        return True
    top = sys.modules.get(module.split(".")[0])
    origin = getattr(top, "__file__", None)
    return isinstance(origin, str) and os.path.abspath(origin).startswith(_LIBRARIES)


def _code_names(exc: BaseException) -> list[str]:
    """Names Python's own errors quote that are code, not data: the attribute, the module,
    the type of the object (``AttributeError``, ``NameError``, ``ImportError``), builtin type
    names (``TypeError``)."""
    names = [getattr(exc, "name", None), getattr(exc, "path", None)]
    if isinstance(exc, AttributeError) and hasattr(exc, "obj"):
        names += [getattr(exc.obj, "__name__", None), type(exc.obj).__name__]
    if isinstance(exc, TypeError):
        names += [n for n in dir(builtins) if isinstance(getattr(builtins, n), type)]
        names.append("NoneType")
    return [n for n in names if isinstance(n, str) and n]


def _origin(exc: Exception) -> str | None:
    """An exception raised by etl-express's own code or by user code (a transformer, a
    source, an anonymizer), described by its type and where it was raised; ``None`` for one a
    library raised (a driver, Arrow, httpx: its message is reduced as a driver's is). The
    traceback's frames (file, line, function; no locals, no message) are logged at DEBUG."""
    frames = _frames(exc)
    if not frames:
        return None
    file, module, function, line = frames[-1]
    path = os.path.abspath(file)
    if not path.startswith(_PACKAGE) and _is_library(module, path):
        return None
    logger.debug(
        "{} raised at: {}",
        type(exc).__name__,
        " -> ".join(f"{os.path.basename(f)}:{n} {fn}" for f, _, fn, n in frames),
    )
    ours = [fr for fr in frames if os.path.abspath(fr[0]).startswith(_PACKAGE)]
    where = f"{module}:{function}:{line}"
    if path.startswith(_PACKAGE):
        text = str(exc).splitlines()[0] if str(exc) else ""
        message = without_literals(text, _code_names(exc))
        return f"{type(exc).__name__}: {message} (raised at {where})".replace(":  (", ": (")
    # user code: its message may be made of the record it failed on; where it failed is not
    called = f", called from {ours[-1][1]}:{ours[-1][2]}:{ours[-1][3]}" if ours else ""
    return f"{type(exc).__name__} (message withheld: it may hold values) raised at {where}{called}"


__all__ = [
    "AnonymizationError",
    "ETLConfigError",
    "ETLError",
    "QualityError",
    "RunLockedError",
    "SinkError",
    "SourceError",
    "safe_pg_message",
]
