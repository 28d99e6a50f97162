"""Durations: the one parser of every duration parameter (``freshness=``,
``reconcile_every=``, the Airflow DAG's ``log_retention=``) and their readable forms."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any, overload

from .errors import ETLConfigError

DAY = 86400.0
WEEK = 7 * DAY

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": DAY, "w": WEEK}
_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])", re.IGNORECASE)

#: what a duration may be: a string of parts or a timedelta
DurationLike = str | float | dt.timedelta


@overload
def parse_duration(
    value: DurationLike,
    what: str = ...,
    where: dict[str, Any] | None = ...,
    *,
    seconds: bool = ...,
    zero: bool = ...,
) -> dt.timedelta: ...


@overload
def parse_duration(
    value: DurationLike | None,
    what: str = ...,
    where: dict[str, Any] | None = ...,
    *,
    seconds: bool = ...,
    zero: bool = ...,
) -> dt.timedelta | None: ...


def parse_duration(
    value: DurationLike | None,
    what: str = "freshness",
    where: dict[str, Any] | None = None,
    *,
    seconds: bool = False,
    zero: bool = False,
) -> dt.timedelta | None:
    """The duration in ``value``; ``None`` stays ``None``.

    A string of one or more parts with units s, m, h, d or w (``"90m"``, ``"26h"``,
    ``"7d"``, ``"1h30m"``, ``"2w"``, any case, spaces allowed) or a
    :class:`datetime.timedelta`; with ``seconds``, a bare number of seconds too. A negative
    duration, or zero unless ``zero``, and anything else is an
    :class:`~etl_express.errors.ETLConfigError` naming ``what`` (``where``: the pipeline).
    """
    if value is None:
        return None
    forms = '"90m", "26h" or "7d", ' + ("a number of seconds, " if seconds else "")
    hint = f"write {what} as a duration such as {forms}or a datetime.timedelta"
    if isinstance(value, dt.timedelta):
        total = value.total_seconds()
    elif isinstance(value, str):
        text = value.strip()
        parts = _PART.findall(text)
        if not parts or _PART.sub("", text).strip():
            raise ETLConfigError(f"{what} {value!r} is not a duration", where=where, hint=hint)
        total = sum(float(n) * _UNITS[unit.lower()] for n, unit in parts)
    elif seconds and isinstance(value, (int, float)) and not isinstance(value, bool):
        total = float(value)
    else:
        raise ETLConfigError(
            f"{what} must be a duration, got {type(value).__name__} {value!r}",
            where=where,
            hint=hint,
        )
    if total < 0 or (total == 0 and not zero):
        least = "must not be negative" if zero else "must be positive"
        raise ETLConfigError(f"{what} {least}, got {value!r}", where=where, hint=hint)
    return dt.timedelta(seconds=total)


def format_duration(seconds: float | None) -> str | None:
    """Seconds in the largest unit that divides them: ``93600`` -> ``"26h"``,
    ``5400`` -> ``"90m"``, ``604800`` -> ``"7d"``, ``42.4`` -> ``"42s"``."""
    if seconds is None:
        return None
    whole = round(seconds)
    for unit, size in (("d", int(DAY)), ("h", 3600), ("m", 60)):
        if whole >= size and whole % size == 0:
            return f"{whole // size}{unit}"
    return f"{whole}s"


def format_age(seconds: float | None) -> str | None:
    """A readable age in its two largest units: ``10810`` -> ``"3h 0m"``, ``42`` -> ``"42s"``."""
    if seconds is None:
        return None
    left = max(round(seconds), 0)
    if left < 60:
        return f"{left}s"
    days, left = divmod(left, int(DAY))
    hours, left = divmod(left, 3600)
    minutes, secs = divmod(left, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m {secs}s"


__all__ = ["DAY", "WEEK", "DurationLike", "format_age", "format_duration", "parse_duration"]
