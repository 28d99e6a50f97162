"""The common data format.

In memory a batch is an Arrow ``RecordBatch`` with snake_case column names and canonical
types; outward every record is a JSON-like ``dict`` (str, int, float, bool, None, list,
dict) that ``json.dumps`` accepts unchanged. This module holds the column names (and the
lineage columns) and the conversions both ways; the canonical types, their casts and the
declared PostgreSQL types are in :mod:`.format_types`.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import hashlib
import json
import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from ._arrays import string_array, timestamp_scalar
from .errors import ETLConfigError
from .format_types import (
    JSON_METADATA,
    TIMESTAMP,
    canonical_array,
    canonical_type,
    is_json_field,
    parse_json,
    to_json_text,
    with_tags,
)

JSONValue = Any
Record = dict[str, JSONValue]

#: Lineage columns added to every written row.
RUN_ID = "_etl_run_id"
SOURCE = "_etl_source"
LOADED_AT = "_etl_loaded_at"
LINEAGE_COLUMNS = (RUN_ID, SOURCE, LOADED_AT)
#: Columns of deletes and history (``Pipeline(deletes=...)``, ``PostgresSink(history=True)``)
ROW_HASH = "_etl_row_hash"
DELETED_AT = "_etl_deleted_at"
VALID_FROM = "_etl_valid_from"
VALID_TO = "_etl_valid_to"
_RESERVED = frozenset((*LINEAGE_COLUMNS, ROW_HASH, DELETED_AT, VALID_FROM, VALID_TO))

_CAMEL_1 = re.compile(r"(.)([A-ZА-ЯЁ][a-zа-яё]+)")
_CAMEL_2 = re.compile(r"([a-zа-яё0-9])([A-ZА-ЯЁ])")
_NON_WORD = re.compile(r"[^\w]+", re.UNICODE)


@functools.lru_cache(maxsize=8192)  # called for every key of every record on the dict path
def normalize_name(name: str) -> str:
    """Turn any column name into snake_case: ``"Ref_Key"`` -> ``"ref_key"``,
    ``"customerID"`` -> ``"customer_id"``, ``"Full Name"`` -> ``"full_name"``.

    Letters of any script are kept (1C exports use Cyrillic names); anything else becomes ``_``.
    Lineage columns (``_etl_*``) keep their leading underscore.
    """
    if name in _RESERVED:
        return name
    text = unicodedata.normalize("NFKC", str(name)).strip()
    text = _CAMEL_2.sub(r"\1_\2", _CAMEL_1.sub(r"\1_\2", text))
    text = _NON_WORD.sub("_", text).strip("_").lower()
    text = re.sub(r"_+", "_", text)
    if not text:
        text = "column"
    if text[0].isdigit():
        text = "c_" + text
    return shorten_identifier(text)


#: PostgreSQL's identifier limit in bytes (NAMEDATALEN - 1); longer names are cut silently there.
MAX_IDENTIFIER_BYTES = 63
_HASH_CHARS = 8


def shorten_identifier(name: str) -> str:
    """``name`` when it fits PostgreSQL's 63-byte identifier limit (UTF-8 bytes, so about 31
    Cyrillic letters), else its longest prefix that leaves room, ``_`` and 8 hex digits of a
    BLAKE2b hash of the whole name: deterministic, and two long names sharing a prefix stay
    apart. A collision that remains is caught where columns are built (an error naming both
    original names), never merged.

    >>> shorten_identifier("x" * 70)
    'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx_8fc6d96d'
    """
    raw = name.encode("utf-8")
    if len(raw) <= MAX_IDENTIFIER_BYTES:
        return name
    digest = hashlib.blake2b(raw, digest_size=_HASH_CHARS // 2).hexdigest()
    room = MAX_IDENTIFIER_BYTES - 1 - _HASH_CHARS
    prefix = raw[:room].decode("utf-8", errors="ignore").rstrip("_")
    return f"{prefix}_{digest}"


def canonicalize(batch: pa.RecordBatch | pa.Table, *, source: str | None = None) -> pa.RecordBatch:
    """Rename columns to snake_case and cast them to canonical types (vectorized); two
    columns that normalize to one name raise :class:`ColumnCollisionError`."""
    if isinstance(batch, pa.Table):
        batch = (
            batch.combine_chunks().to_batches()[0]
            if batch.num_rows
            else pa.RecordBatch.from_pylist([], schema=batch.schema)
        )
    names = [normalize_name(n) for n in batch.schema.names]
    _check_unique(names, batch.schema.names, source=source)
    arrays = []
    fields = []
    for name, f, col in zip(names, batch.schema, batch.columns):
        target = TIMESTAMP if name == LOADED_AT else canonical_type(col.type)
        arrays.append(canonical_array(col, target))
        nested = pa.types.is_string(target) and pa.types.is_nested(col.type)
        field = pa.field(name, target, metadata=JSON_METADATA if nested else None)
        if target == col.type:  # a column already canonical keeps its tags
            field = with_tags(field, f)
        fields.append(field)
    return pa.RecordBatch.from_arrays(arrays, schema=pa.schema(fields))


def canonical_schema(schema: pa.Schema) -> pa.Schema:
    """The canonical form of a declared schema."""
    return pa.schema(
        [
            pa.field(
                normalize_name(f.name),
                canonical_type(f.type),
                # declared lists and structs, or tagged text, hold JSON (stored as jsonb)
                metadata=JSON_METADATA if pa.types.is_nested(f.type) or is_json_field(f) else None,
            )
            for f in schema
        ]
    )


def _check_unique(
    names: Sequence[str],
    original: Sequence[str],
    seen: dict[str, str] | None = None,
    source: str | None = None,
) -> None:
    """Two source names that normalize to one column are an error, never a merge.

    ``seen`` (normalized -> original) carries the spellings met in earlier batches, so a
    source sending ``UserId`` on one page and ``user_id`` on the next is refused too."""
    seen = {} if seen is None else seen
    here: set[str] = set()
    for new, old in zip(names, original):
        first = seen.setdefault(new, old)
        if first != old or new in here:  # or one name twice (a CSV header): one would be lost
            raise ColumnCollisionError(first, old, new, source)
        here.add(new)


class ColumnCollisionError(ETLConfigError):
    """Two source names (``UserId`` and ``user_id``, ``a.b`` and ``a_b``, ``v`` and ``V``)
    normalize to the same column name: refused, since one column would silently take the
    values of both."""

    def __init__(self, first: str, second: str, name: str, source: str | None = None):
        self.names = (first, second)
        self.column = name
        if first == second:
            super().__init__(
                f"source column {first!r} appears twice",
                where={"source": source},
                hint="give each column its own name at the source (a file's header: rename "
                "one of the two)",
            )
            return
        super().__init__(
            f"source names {first!r} and {second!r} both normalize to {name!r}",
            where={"source": source},
            hint="give each column one spelling at the source (a query alias, a field "
            "mapping in the connector) or drop one of the two",
        )


@dataclass
class Rejected:
    """A record that could not be converted to the common format.

    ``record`` is the raw record: it must pass through the anonymizers before it is
    stored anywhere. ``reason`` names the column and the problem, never the value.
    """

    index: int
    record: Record
    reason: str
    position: Any = None


#: what converting Python values to an Arrow type raises when a value does not fit it
_NOT_CONVERTIBLE = (
    pa.ArrowInvalid,
    pa.ArrowTypeError,
    pa.ArrowNotImplementedError,
    OverflowError,
    TypeError,
    ValueError,
)


def _convert_value_column(values: Sequence[object], target: pa.DataType | None) -> pa.Array:
    if target is not None and pa.types.is_string(target):
        values = [to_json_text(v) if isinstance(v, (dict, list, tuple)) else v for v in values]
    elif target is None and any(isinstance(v, (dict, list, tuple)) for v in values):
        values = [to_json_text(v) if v is not None else None for v in values]
    if target is None:
        inferred = pa.array(values)
        return canonical_array(inferred, canonical_type(inferred.type))
    try:
        return pa.array(values, type=target)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, TypeError, ValueError):
        return canonical_array(pa.array(values), target)


def _value_problem(value: object, target: pa.DataType) -> str | None:
    try:
        _convert_value_column([value], target)
    except _NOT_CONVERTIBLE:
        return f"cannot convert a {type(value).__name__} value to {target}"
    return None


def records_to_batch(
    records: Sequence[Mapping[str, Any]],
    schema: pa.Schema | None = None,
    *,
    origins: dict[str, str] | None = None,
    source: str | None = None,
) -> tuple[pa.RecordBatch, list[Rejected]]:
    """Convert JSON-like records to a canonical batch.

    Columns are the union of the records' keys (normalized); ``schema`` (canonical) fixes
    the types of the columns it names, the others are inferred. Records whose values cannot
    be converted are returned as :class:`Rejected` and left out; the rest still convert.
    Two keys that normalize to one name (``UserId`` and ``user_id``) raise
    :class:`ColumnCollisionError`, in one record or across records; ``origins``
    (normalized -> original key, updated here) extends that check over earlier batches.
    """
    shapes = dict.fromkeys(map(tuple, records))  # records mostly share keys: one pass in C
    originals = [str(k) for k in dict.fromkeys(k for shape in shapes for k in shape)]
    _check_unique(
        [normalize_name(k) for k in originals],
        originals,
        {} if origins is None else origins,
        source,
    )
    rows = [{normalize_name(k): v for k, v in r.items()} for r in records]
    names: list[str] = list(schema.names) if schema is not None else []
    known = set(names)
    for row in rows:
        for k in row:
            if k not in known:
                known.add(k)
                names.append(k)
    targets = {f.name: f.type for f in schema} if schema is not None else {}
    rejected: dict[int, str] = {}
    arrays: dict[str, pa.Array] = {}
    # a schema's JSON columns (declared, or inferred from an earlier batch) stay JSON
    json_names = {f.name for f in schema if is_json_field(f)} if schema is not None else set()
    for name in names:
        values = [row.get(name) for row in rows]
        target = targets.get(name)
        if name in json_names:
            values = [None if v is None else to_json_text(v) for v in values]
        elif target is None and any(isinstance(v, (dict, list, tuple)) for v in values):
            json_names.add(name)  # nested values: JSON text, stored as jsonb
        try:
            arrays[name] = _convert_value_column(values, target)
        except _NOT_CONVERTIBLE:
            if target is None:
                target = pa.string()
                targets[name] = target
                # mixed Python types in one inferred column: keep them as text
                values = [
                    None if v is None else (v if isinstance(v, str) else to_json_text(v))
                    for v in values
                ]
                arrays[name] = pa.array(values, type=pa.string())
                continue
            for i, v in enumerate(values):
                if i in rejected or v is None:
                    continue
                problem = _value_problem(v, target)
                if problem:
                    rejected[i] = f"column {name!r}: {problem}"
    if rejected:
        good = [i for i in range(len(rows)) if i not in rejected]
        good_rows = [rows[i] for i in good]
        batch, _ = records_to_batch(
            good_rows,
            pa.schema([pa.field(n, arrays[n].type if n in arrays else targets[n]) for n in names]),
        )
        if json_names:  # the good rows keep the tag their column got from all of them
            tagged = [
                f.with_metadata(JSON_METADATA) if f.name in json_names else f for f in batch.schema
            ]
            batch = pa.RecordBatch.from_arrays(batch.columns, schema=pa.schema(tagged))
        return batch, [
            Rejected(i, dict(records[i]), reason) for i, reason in sorted(rejected.items())
        ]
    fields = [
        pa.field(n, arrays[n].type, metadata=JSON_METADATA if n in json_names else None)
        for n in names
    ]
    if not names:
        return pa.RecordBatch.from_pylist([], schema=pa.schema([])), []
    return pa.RecordBatch.from_arrays([arrays[n] for n in names], schema=pa.schema(fields)), []


def _iso(value: dt.date | dt.time | None) -> str | None:
    return None if value is None else value.isoformat()


def _str(value: object) -> str | None:
    return None if value is None else str(value)


def _b64(value: bytes | None) -> str | None:
    return None if value is None else base64.b64encode(value).decode("ascii")


def _json_converter(t: pa.DataType) -> Callable[[Any], Any] | None:
    if pa.types.is_timestamp(t) or pa.types.is_date(t) or pa.types.is_time(t):
        return _iso
    if pa.types.is_decimal(t) or pa.types.is_duration(t):
        return _str
    if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t):
        return _b64
    if pa.types.is_nested(t):
        return lambda v: None if v is None else json.loads(to_json_text(v) or "null")
    return None


def to_records(data: pa.RecordBatch | pa.Table) -> list[Record]:
    """JSON-like dicts: timestamps as ISO 8601 strings, decimals as strings."""
    names = data.schema.names
    columns = []
    for f, col in zip(data.schema, data.columns):
        values = col.to_pylist()
        conv = parse_json if is_json_field(f) else _json_converter(f.type)
        if conv is not None:
            values = [conv(v) for v in values]
        columns.append(values)
    return (
        [dict(zip(names, row)) for row in zip(*columns)]
        if columns
        else [{} for _ in range(data.num_rows)]
    )


def add_lineage(
    batch: pa.RecordBatch, run_id: str, source: str, loaded_at: dt.datetime
) -> pa.RecordBatch:
    """Append (or replace) the lineage columns."""
    n = batch.num_rows
    keep = [i for i, name in enumerate(batch.schema.names) if name not in LINEAGE_COLUMNS]
    arrays = [batch.column(i) for i in keep]
    fields = [batch.schema.field(i) for i in keep]
    # scalars taken from arrays built from buffers: pa.scalar(str) would import pandas
    texts = string_array([run_id, source])
    arrays += [
        pa.repeat(texts[0], n),
        pa.repeat(texts[1], n),
        pa.repeat(timestamp_scalar(loaded_at), n),
    ]
    fields += [
        pa.field(RUN_ID, pa.string()),
        pa.field(SOURCE, pa.string()),
        pa.field(LOADED_AT, TIMESTAMP),
    ]
    return pa.RecordBatch.from_arrays(arrays, schema=pa.schema(fields))


@dataclass
class Batch:
    """A batch of records plus the source position reached after it.

    ``data`` is an Arrow ``RecordBatch`` (or ``Table``) or a list of dicts; the pipeline
    converts dicts to the canonical Arrow form. ``position`` is a JSON-serializable value
    the source understands: it is committed as the checkpoint together with the rows, and
    handed back to :meth:`Source.read` on resume.

    >>> Batch([{"id": 1, "name": "Anna"}], position={"page": 2}).to_records()
    [{'id': 1, 'name': 'Anna'}]
    """

    data: pa.RecordBatch | pa.Table | list[dict[str, Any]]
    position: Any = None
    meta: dict[str, Any] = field(default_factory=dict)
    #: input the source could not even parse (a malformed CSV line): the pipeline
    #: quarantines these records with their reasons; they count as rows read
    rejected: list[Rejected] = field(default_factory=list)

    @property
    def num_rows(self) -> int:
        return len(self.data) if isinstance(self.data, list) else self.data.num_rows

    def to_arrow(
        self,
        schema: pa.Schema | None = None,
        *,
        origins: dict[str, str] | None = None,
        source: str | None = None,
    ) -> tuple[pa.RecordBatch, list[Rejected]]:
        """The canonical Arrow batch and the records that could not be converted.

        ``origins`` (normalized name -> source spelling, kept by the caller across batches)
        and ``source`` (its name, for the message) serve the name-collision check."""
        if isinstance(self.data, list):
            return records_to_batch(self.data, schema, origins=origins, source=source)
        return canonicalize(self.data, source=source), []

    def to_records(self) -> list[Record]:
        """JSON-like dicts that ``json.dumps`` accepts unchanged."""
        return to_records(self.to_arrow()[0])
