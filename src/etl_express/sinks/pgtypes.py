"""Declared PostgreSQL types in a target: when a column declared at the source (Arrow field
metadata, :data:`etl_express.format_types.DECLARED_TYPE`) may change an existing target column.

A target column created from a declared type keeps it. When the source's declaration grows
(``varchar(20)`` to ``varchar(40)``, ``integer`` to ``bigint``, ``numeric(10,2)`` to
``numeric(12,2)``, ``timestamp(0)`` to ``timestamp(6)``) the target column is altered to the
new type, which holds every value it held before unchanged; any other difference keeps the
target column as it is when it can hold the values (a ``text`` column keeps taking a
``character(10)`` one), else the sink refuses the change before writing.
"""

from __future__ import annotations

import re

_INTEGERS = ("smallint", "integer", "bigint")
_DIGITS = {"smallint": 5, "integer": 10, "bigint": 19}
_TYPE = re.compile(
    r"(?P<base>[a-z][a-z ]*?)(?:\((?P<a>\d+)(?:,(?P<b>\d+))?\))?(?P<zone> with(?:out)? time zone)?"
)
_LENGTHS = ("character", "character varying", "bit", "bit varying")
_PRECISIONS = ("timestamp", "time", "interval")


def declared_widening(have: str, want: str) -> str | None:
    """``want`` when a column of type ``have`` (``format_type``) can become ``want`` keeping
    every value it holds unchanged, else ``None``."""
    if have == want:
        return None
    if have in _INTEGERS and want in _INTEGERS:
        return want if _INTEGERS.index(want) > _INTEGERS.index(have) else None
    if have == "real" and want == "double precision":
        return want
    if have.startswith("character varying") and want == "text":
        return want
    old, new = _TYPE.fullmatch(have), _TYPE.fullmatch(want)
    if old is None or new is None:
        return None
    if have in _INTEGERS and new["base"] == "numeric":
        if new["a"] is None:
            return want
        room = int(new["a"]) - int(new["b"] or 0)
        return want if room >= _DIGITS[have] else None
    if old["base"] != new["base"] or old["zone"] != new["zone"]:
        return None
    base = old["base"]
    if base == "numeric":
        if new["a"] is None:
            return want
        if old["a"] is None:
            return None
        p1, s1, p2, s2 = int(old["a"]), int(old["b"] or 0), int(new["a"]), int(new["b"] or 0)
        return want if s2 >= s1 and p2 - s2 >= p1 - s1 else None
    if base in _LENGTHS:
        if old["a"] is None:
            return None  # unlimited (or character's 1): not narrowed, not bpchar widened
        return want if new["a"] is None or int(new["a"]) >= int(old["a"]) else None
    if base in _PRECISIONS:
        p1 = 6 if old["a"] is None else int(old["a"])
        p2 = 6 if new["a"] is None else int(new["a"])
        return want if p2 > p1 else None
    return None


__all__ = ["declared_widening"]
