"""One exception hierarchy for the whole library.

Every message says what failed, where (pipeline, partition, batch, source position)
and what to do about it. Messages never carry secret values or raw personal data:
callers pass column names, positions and counts, never record contents.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

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

    def _format(self) -> str:
        text = self.what
        if self.where:
            text += " [" + ", ".join(f"{k}={v}" for k, v in self.where.items()) + "]"
        if self.hint:
            text += f". Fix: {self.hint}"
        return mask_secrets(text)


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
    primary = without_literals(primary.splitlines()[0] if primary else primary, names)
    state = getattr(diag, "sqlstate", None) if diag is not None else None
    text = f"{primary} (SQLSTATE {state})" if state else primary
    return text if diag is not None else f"{type(exc).__name__}: {text}"


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
