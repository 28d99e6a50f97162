"""Which errors are transient, and how long to wait before trying again.

A run retries a failed batch transaction — and reopens the source from the last committed
position — when the error is transient: a dropped or terminated connection, a PostgreSQL
restart, a serialization failure or deadlock, an HTTP 5xx or 429. Anything else (a bad
configuration, an incompatible schema, a bug) fails the run at once.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator

from pydantic import BaseModel, Field

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
    """How a run retries transient errors: exponential backoff with jitter.

    ``attempts`` counts consecutive failures; a committed batch resets the count, so a
    long run survives any number of separate outages but not one that never ends.
    """

    attempts: int = Field(
        default=5, ge=0, description="retries after consecutive transient failures"
    )
    backoff: float = Field(default=0.5, ge=0, description="first wait in seconds")
    max_backoff: float = Field(default=30.0, ge=0, description="longest single wait in seconds")
    jitter: float = Field(default=0.25, ge=0, le=1, description="random share added to each wait")

    def delay(self, attempt: int) -> float:
        """Seconds to wait before retry number ``attempt`` (1-based)."""
        base = min(self.max_backoff, self.backoff * 2 ** max(attempt - 1, 0))
        return base * (1 + random.random() * self.jitter)


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


__all__ = ["TRANSIENT_SQLSTATES", "RetryPolicy", "TransientError", "is_transient", "sqlstate"]
