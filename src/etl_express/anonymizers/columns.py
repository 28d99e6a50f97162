"""One column-name resolution for the ``pii=`` check and every anonymizer.

Batches reach the anonymizers in the common format, whose column names are
:func:`~etl_express.format.normalize_name`'d (``"Mobile Phone"`` -> ``mobile_phone``,
``"ClientEmail"`` -> ``client_email``, ``"Телефон"`` -> ``телефон``). Users may write either
spelling in their configuration; both resolve here to the canonical name. A configured name
that the batch does not have is never skipped: it is an :class:`~etl_express.ETLConfigError`
naming the column and the nearest existing names, raised before anything is written.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import pyarrow as pa

from ..errors import ETLConfigError
from ..format import normalize_name


def canonical(name: str) -> str:
    """The common format's name of a configured column, whatever its spelling."""
    return normalize_name(name)


def canonical_all(names: str | Iterable[str]) -> tuple[str, ...]:
    """Canonical names of a column list (a single string is one column), in order, once each."""
    if isinstance(names, str):
        names = [names]
    out: list[str] = []
    for name in names:
        if not isinstance(name, str) or not name.strip():
            raise ETLConfigError(
                f"a column name must be a non-empty string, got {name!r}",
                hint="name the columns as they appear in the source or after the transformers",
            )
        c = canonical(name)
        if c not in out:
            out.append(c)
    return tuple(out)


def nearest(name: str, available: Sequence[str], n: int = 3) -> list[str]:
    """The existing names closest to ``name`` (difflib), best first."""
    import difflib  # only where configured names are compared, not on every import

    return difflib.get_close_matches(canonical(name), list(available), n=n, cutoff=0.5)


def missing_columns_error(
    owner: str,
    missing: Sequence[str],
    available: Sequence[str],
    *,
    what: str = "column",
    where: dict[str, Any] | None = None,
) -> ETLConfigError:
    """The error for configured columns the data does not have."""
    parts = []
    for name in missing:
        close = nearest(name, available)
        parts.append(
            f"{name!r} (nearest: {', '.join(repr(c) for c in close)})"
            if close
            else f"{name!r} (no similar name)"
        )
    shown = ", ".join(list(available)[:40]) + (" ..." if len(available) > 40 else "")
    return ETLConfigError(
        f"{owner}: {what}(s) {'; '.join(parts)} not in the data; nothing was written",
        where={**(where or {}), "columns": shown or "(none)"},
        hint="name existing columns (any spelling of a column resolves to its snake_case "
        "name, as the batches carry it after the transformers); a configured column is "
        "never skipped",
    )


def column_index(schema: pa.Schema, name: str, owner: str) -> int:
    """The index of the configured column ``name`` in ``schema``; raises when it is absent.

    The canonical name is looked up first; a batch that was not normalized (an anonymizer
    called directly on a raw batch) is matched by the canonical form of its names.
    """
    wanted = canonical(name)
    i = schema.get_field_index(wanted)
    if i >= 0:
        return i
    matches = [j for j, n in enumerate(schema.names) if canonical(n) == wanted]
    if len(matches) == 1:
        return matches[0]
    raise missing_columns_error(owner, [name], [canonical(n) for n in schema.names])


def check_columns(
    steps: Iterable[object], names: Sequence[str], *, where: dict[str, Any] | None = None
) -> list[str]:
    """Check every anonymizer's configured columns against ``names`` (the columns after the
    transformers), in pipeline order, and return the names that reach the sink."""
    current = [canonical(n) for n in names]
    for step in steps:
        required = required_columns(step)
        missing = [c for c in required if c not in current]
        if missing:
            raise missing_columns_error(type(step).__name__, missing, current, where=where)
        output = getattr(step, "output_columns", None)
        current = list(output(current)) if callable(output) else current
    return current


def required_columns(step: object) -> list[str]:
    """The canonical columns an anonymizer needs (its own ``required_columns()`` when it has
    one, else its ``columns``)."""
    method = getattr(step, "required_columns", None)
    names = method() if callable(method) else getattr(step, "columns", ())
    return list(canonical_all(names)) if names else []


__all__ = [
    "canonical",
    "canonical_all",
    "check_columns",
    "column_index",
    "missing_columns_error",
    "nearest",
    "required_columns",
]
