"""What the personal-data detector reads of a column: a sample of its non-empty values as
text, and which columns are sampled at all.

A sample is :data:`SAMPLE_SIZE` non-empty values spread evenly over the batch (a big column is
first picked :data:`PRESAMPLE` times as wide, then filtered), each written as text the way a
person would read it: numbers and dates as written (a phone kept as a ``bigint`` is
``79161234567``, a whole ``double`` is not ``7.9e+10``), nested values as JSON, timestamps in
their own time zone. Arrow kernels filter and pick; only the sample becomes Python values, and
text and integers become text without a Python call per value. A JSON column is judged place
by place (:func:`json_leaves`: ``contact.email``, ``phones[]``). Booleans, bytes, times of
day and durations are never sampled: no personal value is written that way
(:func:`is_sampled_field`); a date or timestamp column can only hold a birth date
(:data:`TEMPORAL_KINDS`). :mod:`.detection` judges the samples.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import re
from collections.abc import Iterable
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..format import is_json_field
from .buffers import take_indices

#: non-empty values sampled per column (or per place inside a JSON column)
SAMPLE_SIZE = 200
# a JSON key shown in a finding: a plain name; any other key (an e-mail, a number) shows as *
_PLAIN_KEY = re.compile(r"^[^\W\d][\w\-]{0,63}$")


def evenly(n: int) -> np.ndarray:
    """:data:`SAMPLE_SIZE` positions evenly spread over ``n`` (all of them when fewer)."""
    return spread(n, SAMPLE_SIZE)


@functools.lru_cache(maxsize=64)
def spread(n: int, k: int) -> np.ndarray:
    """``k`` positions evenly spread over ``n`` (all of them when fewer), read-only: made once
    per batch length (most tables' first batches are as long as each other)."""
    out = np.arange(n) if n <= k else np.linspace(0, n - 1, k).astype(int)
    out.flags.writeable = False
    return out


def sample_texts(values: pa.Array | pa.ChunkedArray | Iterable[Any]) -> list[str]:
    """Up to :data:`SAMPLE_SIZE` non-empty values, evenly spread, as text (nested values as
    JSON text, numbers and dates as they are written: ``79161234567``, ``1985-03-14``; nulls
    and empty strings skipped). An Arrow column is filtered and sampled by Arrow kernels:
    only the sample becomes Python values."""
    if not isinstance(values, (pa.Array, pa.ChunkedArray)):
        kept = [text_of(v) for v in values if v is not None and v != ""]
        return [kept[i] for i in evenly(len(kept))]
    filtered = False
    if len(values) > PRESAMPLE * SAMPLE_SIZE:  # a big column: filter a spread of it, not all
        picked = non_empty(values.take(take_indices(spread(len(values), PRESAMPLE * SAMPLE_SIZE))))
        if len(picked) >= SAMPLE_SIZE:
            values, filtered = picked, True
    if not filtered:  # (filtered twice, the spread would be the same values)
        values = non_empty(values)
    return texts(values.take(take_indices(evenly(len(values)))))


def texts(values: pa.Array | pa.ChunkedArray) -> list[str]:
    """``[text_of(v) for v in python_values(values)]``, without a Python call per value where
    the type says what it gives: text is already text, and an integer's text is Arrow's cast
    (the same digits and sign as ``str(int)``)."""
    t = values.type
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return values.to_pylist()  # type: ignore[no-any-return]
    if pa.types.is_integer(t):
        return pc.cast(values, pa.string()).to_pylist()  # type: ignore[no-any-return]
    if pa.types.is_decimal(t):  # a Decimal's text is str(): what text_of gives it
        return [str(v) for v in values.to_pylist()]
    return [text_of(v) for v in python_values(values)]


#: a big column's values are first picked evenly, this many per sampled value, then filtered
PRESAMPLE = 4


def non_empty(values: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """``values`` without nulls and empty strings (dictionary-encoded text decoded)."""
    values = pc.drop_null(values)
    if pa.types.is_dictionary(values.type):
        values = values.cast(values.type.value_type)
    if pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
        # a length cast to boolean is "not empty": a literal 0 compared with would be a
        # Python value for pyarrow to convert, and pyarrow imports pandas to convert one
        values = pc.filter(values, pc.cast(pc.utf8_length(values), pa.bool_()))
    return values


def python_values(values: pa.Array | pa.ChunkedArray) -> list[Any]:
    """``values.to_pylist()``; timestamps with a time zone converted here, the same way:
    pyarrow imports pandas to convert them."""
    zone = getattr(values.type, "tz", None)
    if zone is None:
        return values.to_pylist()
    try:
        tzinfo = _tzinfo(zone)
        utc = values.cast(pa.timestamp(values.type.unit)).to_pylist()  # naive, in UTC
        return [
            v if v is None else v.replace(tzinfo=dt.timezone.utc).astimezone(tzinfo) for v in utc
        ]
    except (ValueError, OverflowError, KeyError):  # a zone or a date Python cannot place
        return values.to_pylist()


_OFFSET = re.compile(r"^([+-])(\d{2}):(\d{2})$")


@functools.lru_cache(maxsize=32)
def _tzinfo(zone: str) -> dt.tzinfo:
    """The ``tzinfo`` pyarrow gives values of a timestamp type with time zone ``zone``: a
    fixed offset (``+03:00``) or a named zone."""
    import zoneinfo

    fixed = _OFFSET.match(zone)
    if fixed is None:
        return zoneinfo.ZoneInfo(zone)
    sign = -1 if fixed[1] == "-" else 1
    return dt.timezone(sign * dt.timedelta(hours=int(fixed[2]), minutes=int(fixed[3])))


def text_of(value: Any) -> str:
    """A sampled value as text: a whole float as an integer (a phone stored as a double is
    ``79161234567``, not ``7.9161234567e+10``), nested values as JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e18:
        return str(int(value))
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


#: the place of a JSON object's keys that are not plain names (``votes.<key>``): a map keyed
#: by e-mail, name or phone holds its personal data in its keys
KEYS = "<key>"


def key_path(path: str) -> str:
    """The place of the non-plain keys of the object at ``path``."""
    return f"{path}.{KEYS}" if path else KEYS


def json_leaves(values: Iterable[str]) -> dict[str, list[str]]:
    """The scalar values inside JSON texts, by their place (``contact.email``, ``phones[]``),
    and the keys that are not plain names (``votes.<key>``)."""
    out: dict[str, list[str]] = {}

    def walk(node: Any, path: str) -> None:
        if isinstance(node, dict):
            for key, child in node.items():
                name = key if _PLAIN_KEY.match(str(key)) else "*"
                if name == "*":  # a key that is data (an e-mail, a name, a phone): judged too
                    keys = out.setdefault(key_path(path), [])
                    if len(keys) < SAMPLE_SIZE:
                        keys.append(str(key))
                walk(child, f"{path}.{name}" if path else name)
        elif isinstance(node, list):
            for child in node:
                walk(child, f"{path}[]")
        elif isinstance(node, (str, int, float)) and not isinstance(node, bool):
            leaves = out.setdefault(path or "$", [])
            if len(leaves) < SAMPLE_SIZE:
                leaves.append(text_of(node))

    for text in values:
        try:
            walk(json.loads(text), "")
        except ValueError:  # not JSON after all: judged as text
            out.setdefault("$", []).append(text)
    return out


def is_sampled_field(field: pa.Field) -> bool:
    """The columns the detector samples: every column whose values can be personal data
    written some way: text (JSON included), numbers (a phone or an INN kept as a ``bigint``),
    dates and timestamps (a birth date), nested values (judged as JSON). Not: booleans,
    bytes, times of day, durations, nulls."""
    t = value_type(field)
    return not (
        pa.types.is_boolean(t)
        or pa.types.is_null(t)
        or pa.types.is_binary(t)
        or pa.types.is_large_binary(t)
        or pa.types.is_fixed_size_binary(t)
        or pa.types.is_time(t)
        or pa.types.is_duration(t)
    )


#: the kinds a date or timestamp column can hold
TEMPORAL_KINDS = ("birth_date",)


def is_temporal(field: pa.Field) -> bool:
    t = value_type(field)
    return pa.types.is_date(t) or pa.types.is_timestamp(t)


def value_type(field: pa.Field) -> pa.DataType:
    """The type of the field's values (a dictionary-encoded column's value type)."""
    return field.type.value_type if pa.types.is_dictionary(field.type) else field.type


def is_json(field: pa.Field) -> bool:
    return is_json_field(field) or pa.types.is_nested(field.type)


__all__ = [
    "KEYS",
    "PRESAMPLE",
    "SAMPLE_SIZE",
    "TEMPORAL_KINDS",
    "evenly",
    "is_json",
    "is_sampled_field",
    "is_temporal",
    "json_leaves",
    "key_path",
    "non_empty",
    "python_values",
    "sample_texts",
    "spread",
    "text_of",
    "texts",
    "value_type",
]
