"""Personal data in positions: checkpoints, paginator tokens, partition bounds.

A position is written in clear to the state tables, run records, logs, export manifests and
Airflow XComs, so it must never hold personal data. The plan refuses a key, cursor or
partition column that is personal (:mod:`etl_express.anonymizers.guard`); what only the data
tells — a REST API whose next-page token is the last record's e-mail or phone, partition
bounds computed over a column nobody tagged — is judged here, value by value, before the
position is committed or the partition plan is stored. A number is a key or an offset and
is judged by its column, never by its digits; a text is judged by the detector's rules
(e-mails, phones of any country, Russian identifiers and cards with their check digits), and
so are the forms it may hide a value in: percent-encoded (a next-page URL) and base64 (an
"opaque" cursor that is ``base64({"after": "a@b.ru"})``).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import unquote_plus

import pyarrow as pa
import pyarrow.compute as pc

from ._arrays import string_array

#: the personal-data kinds (``"email"``, ``"phone"``, ...) each of several texts holds, by
#: value alone (the detector's rules with their check digits, no sampling statistics)
ValueJudge = Callable[[Sequence[str]], list[set[str]]]

_EMAIL = re.compile(r"[^\s@]+@[^\s@]+\.[^\s@]+")

_KIND_WORDS = {
    "email": "an e-mail address",
    "phone": "a phone number",
    "passport": "a passport number",
    "snils": "a SNILS",
    "inn": "an INN",
    "ogrn": "an OGRN",
    "card": "a bank card number",
    "name": "a person's name",
    "address": "an address",
}


def _leaves(value: Any, numbers: bool) -> list[str]:
    if isinstance(value, Mapping):  # keys too: a file source keys its state by file name
        keys = [k for k in value if isinstance(k, str)]
        return [*keys, *(leaf for v in value.values() for leaf in _leaves(v, numbers))]
    if isinstance(value, (list, tuple)):
        return [leaf for v in value for leaf in _leaves(v, numbers)]
    if value is None or isinstance(value, bool):
        return []
    if not numbers and isinstance(value, (int, float)):
        return []
    return [str(value)]


_SUFFIX = re.compile(r"(?:\.[A-Za-z0-9]{1,8}){1,2}$")  # .csv, .jsonl.gz
_BASE64 = re.compile(r"[A-Za-z0-9+/_-]{8,}={0,2}")


def _decoded(text: str) -> list[str]:
    """The forms a token may hide a value in: a file's path (each folder and the name
    without its suffix: ``exports/Смирнова Анна.csv``), percent-encoded (a next-page URL's
    query) and base64 (an opaque cursor that is ``base64({"after": "a@b.ru"})``), when they
    decode to text."""
    out = []
    if "/" in text or "\\" in text or _SUFFIX.search(text):  # a file's name and path
        for segment in re.split(r"[/\\]", text):
            stem = _SUFFIX.sub("", segment)
            out += [p for p in {segment, stem} if p and p != text]
    unquoted = unquote_plus(text)
    if unquoted != text:
        out.append(unquoted)
    for part in _BASE64.findall(text):
        body = part.rstrip("=")
        padded = body + "=" * (-len(body) % 4)
        decode = base64.urlsafe_b64decode if "-" in body or "_" in body else base64.b64decode
        try:
            out.append(decode(padded).decode("utf-8"))
        except (ValueError, UnicodeDecodeError):  # not base64 of text: judged as it is
            continue
    return out


def position_values(value: Any) -> list[str]:
    """The texts inside a position or a partition spec, nested values included, each with
    the forms it may hide a value in (percent-encoded, base64)."""
    texts = [v for v in _leaves(value, numbers=False) if v]
    return [*texts, *(d for t in texts for d in _decoded(t) if d)]


def value_of_columns(position: Any, batch: pa.RecordBatch, columns: Sequence[str]) -> str | None:
    """The first of ``columns`` one of whose values in ``batch`` the position holds (numbers
    included: a key copied from a personal column is that column's value)."""
    leaves = [v for v in _leaves(position, numbers=True) if v]
    if not leaves:
        return None
    wanted = string_array(leaves)  # not pa.array: it would import pandas
    for name in columns:
        i = batch.schema.get_field_index(name)
        if i < 0:
            continue
        column = batch.column(i)
        try:
            text = column if pa.types.is_string(column.type) else pc.cast(column, pa.string())
        except pa.ArrowException:
            continue
        if pc.any(pc.is_in(text, value_set=wanted)).as_py():
            return name
    return None


def personal_kinds(values: Sequence[str], judge: ValueJudge | None) -> list[str]:
    """The personal-data kinds any of ``values`` holds, value by value (one is enough);
    without a judge, e-mail addresses only."""
    texts = [v for v in values if v]
    if not texts:
        return []
    if judge is None:
        return ["email"] if any(_EMAIL.fullmatch(v) for v in texts) else []
    found: set[str] = set()
    for kinds in judge(texts):
        found |= kinds
    return sorted(found)


def kind_words(kind: str) -> str:
    """A personal-data kind as words for a message (``"phone"`` -> ``"a phone number"``)."""
    return _KIND_WORDS.get(kind, kind)


def looks_like(kinds: Sequence[str]) -> str:
    """``"a value that looks like a phone number"``: what a message says instead of it."""
    return "a value that looks like " + " and ".join(kind_words(k) for k in kinds)


__all__ = [
    "ValueJudge",
    "kind_words",
    "looks_like",
    "personal_kinds",
    "position_values",
    "value_of_columns",
]
