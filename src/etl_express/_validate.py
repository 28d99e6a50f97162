"""Strict checks of the configuration users pass: a value of the wrong shape is a
``TypeError`` naming the parameter, before anything runs — never a silent reinterpretation
(iterating a dict gives its keys, iterating a string its characters)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


def name_list(value: Any, parameter: str, owner: str, *, single: bool = True) -> list[str]:
    """``value`` as a list of names: a list, tuple or other sequence of strings, or (with
    ``single``) one string for one name; ``None`` is the empty list.

    >>> name_list(["email", "phone"], "columns", "Pseudonymize")
    ['email', 'phone']
    >>> name_list({"email": 1}, "columns", "Pseudonymize")
    Traceback (most recent call last):
    TypeError: Pseudonymize(columns=...) takes a list of column names, not a dict: pass ['email']
    """
    if value is None:
        return []
    if isinstance(value, str):
        if single:
            return [value]
        raise TypeError(
            f"{owner}({parameter}=...) takes a list of names, not a string: pass [{value!r}]"
        )
    if isinstance(value, Mapping):
        keys = [k for k in value if isinstance(k, str)]
        raise TypeError(
            f"{owner}({parameter}=...) takes a list of column names, not a dict: pass {keys!r}"
        )
    if isinstance(value, (bytes, bytearray)) or not isinstance(value, Iterable):
        raise TypeError(
            f"{owner}({parameter}=...) takes a list of column names, not {type(value).__name__}"
        )
    if isinstance(value, (set, frozenset)) and len(value) > 1:
        raise TypeError(
            f"{owner}({parameter}=...) takes a list of column names, not a set (its order is "
            f"arbitrary): pass {sorted(value, key=str)!r}"
        )
    names = list(value)
    for name in names:
        if not isinstance(name, str):
            raise TypeError(
                f"{owner}({parameter}=...) takes column names (strings); got "
                f"{type(name).__name__} {name!r}"
            )
    return names


def mapping_of(value: Any, parameter: str, owner: str) -> Mapping[Any, Any]:
    """``value`` when it is a mapping (``{"old": "new"}``), else a TypeError naming ``parameter``."""
    if not isinstance(value, Mapping):
        raise TypeError(
            f"{owner}({parameter}=...) takes a dict, not {type(value).__name__}: "
            f'e.g. {{"CustomerID": "client_id"}}'
        )
    return value


__all__ = ["mapping_of", "name_list"]
