"""Dotted paths into JSON bodies: ``"data.items"``, ``"meta.total"``."""

from __future__ import annotations

from typing import Any

from ..._privacy import shown_key
from ...errors import SourceError

#: where records usually are when no ``records_path`` is given
COMMON_RECORD_KEYS = ("data", "items", "results", "records", "value", "rows", "entries")


def find_path(body: Any, path: str) -> Any:
    """The value at dotted ``path`` in ``body``, or ``None`` when any step is missing.

    >>> find_path({"data": {"items": [1, 2]}}, "data.items")
    [1, 2]
    """
    value = body
    for step in path.split("."):
        if isinstance(value, dict):
            value = value.get(step)
        elif isinstance(value, list) and step.isdigit() and int(step) < len(value):
            value = value[int(step)]
        else:
            return None
    return value


def _missing_step(body: Any, path: str) -> dict[str, Any] | None:
    """The object in which a step of ``path`` is missing (``None``: the path is there, maybe
    ``null``, or the body is an empty list or object, an empty page in any API's style)."""
    if not body:
        return None
    value = body
    for step in path.split("."):
        if not isinstance(value, dict):
            return None if value is None or isinstance(value, list) else {}
        if step not in value:
            return value
        value = value[step]
    return None


def select_records(body: Any, path: str | None, where: str) -> list[dict[str, Any]]:
    """The list of records in a response body.

    With ``path`` the list must be there (``null`` counts as an empty page); without it the
    body itself must be a list, or a dict with one of :data:`COMMON_RECORD_KEYS` as a list.
    """
    if path:
        found = find_path(body, path)
        if found is None:
            missing = _missing_step(body, path)
            if missing is not None:
                # a 200 answer without the records (an error object, a changed API): an
                # empty page would end the pagination and lose every page after it
                present = sorted(dict.fromkeys(shown_key(k) for k in missing))[:20]
                raise SourceError(
                    f"records_path {path!r} is not in the response of {where} (keys: {present})",
                    hint="the API answered without the records (an error in a 200 "
                    "response?); check records_path against the API's answer",
                )
            return []
    elif isinstance(body, list):
        found = body
    else:
        found = next(
            (
                body[k]
                for k in COMMON_RECORD_KEYS
                if isinstance(body, dict) and isinstance(body.get(k), list)
            ),
            None,
        )
        if found is None:
            # plain names only: a body keyed by e-mail or name shows its keys as *
            keys = (
                sorted(dict.fromkeys(shown_key(k) for k in body))[:20]
                if isinstance(body, dict)
                else type(body).__name__
            )
            raise SourceError(
                f"cannot find the records in the response of {where} (keys: {keys})",
                hint='pass records_path="data.items" naming the list of records',
            )
    if isinstance(found, dict):
        found = [found]
    if not isinstance(found, list):
        raise SourceError(
            f"records_path {path!r} in the response of {where} is a "
            f"{type(found).__name__}, not a list",
            hint="point records_path at the list of records",
        )
    bad = next((i for i, r in enumerate(found) if not isinstance(r, dict)), None)
    if bad is not None:
        raise SourceError(
            f"record {bad} in the response of {where} is a {type(found[bad]).__name__}, "
            "not an object",
            hint="point records_path at a list of JSON objects",
        )
    return found


__all__ = ["COMMON_RECORD_KEYS", "find_path", "select_records"]
