"""Canonical types of the common data format: which Arrow type a column is stored as, the
casts that bring a column there, the JSON text that nested values are stored as, and the
PostgreSQL type a column was declared with at the source (:data:`DECLARED_TYPE`), carried as
field metadata.

Below :mod:`etl_express.format` (names, records, batches), which re-exports the types,
casts and JSON helpers it uses.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import json
from collections.abc import Collection
from typing import Any

import pyarrow as pa

TIMESTAMP = pa.timestamp("us", tz="UTC")


def canonical_type(arrow_type: pa.DataType) -> pa.DataType:
    """The canonical type a column of ``arrow_type`` is stored as."""
    t = arrow_type
    if pa.types.is_dictionary(t):
        return canonical_type(t.value_type)
    if pa.types.is_boolean(t):
        return pa.bool_()
    if pa.types.is_integer(t):
        return pa.int64()
    if pa.types.is_floating(t):
        return pa.float64()
    if pa.types.is_decimal(t):
        if t.precision <= 38:
            return pa.decimal128(t.precision, t.scale)
        return pa.string()
    if pa.types.is_timestamp(t):
        return TIMESTAMP
    if pa.types.is_date(t):
        return pa.date32()
    return pa.string()


def _json_default(value: object) -> str:
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    raise TypeError(f"{type(value).__name__} is not JSON-serializable")


#: field metadata of a string column holding JSON text made from nested values (lists, dicts):
#: PostgresSink stores it as ``jsonb`` and records give the lists and dicts back
JSON_METADATA = {b"etl_express:type": b"json"}


def is_json_field(field: pa.Field) -> bool:
    """A column of JSON text: tagged by this module, or Arrow's ``arrow.json`` extension
    (what PostgreSQL's ``json``/``jsonb`` columns read back as)."""
    if getattr(field.type, "extension_name", None) == "arrow.json":
        return True
    return (
        pa.types.is_string(field.type)
        and (field.metadata or {}).get(b"etl_express:type") == JSON_METADATA[b"etl_express:type"]
    )


def parse_json(value: str | None) -> Any:
    return None if value is None else json.loads(value)


def to_json_text(value: object) -> str | None:
    """Nested values (lists, dicts) are stored as JSON text."""
    if value is None:
        return None
    return json.dumps(value, ensure_ascii=False, default=_json_default, sort_keys=True)


def canonical_array(arr: pa.Array | pa.ChunkedArray, target: pa.DataType) -> pa.Array:
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    t = arr.type
    if t == target:
        return arr
    if pa.types.is_dictionary(t):
        arr = arr.dictionary_decode()
        t = arr.type
        if t == target:
            return arr
    if pa.types.is_timestamp(t) and pa.types.is_timestamp(target):
        if t.tz is None:  # naive values are taken to be UTC
            arr = arr.cast(pa.timestamp(t.unit, tz="UTC"))
        return arr.cast(target)
    if pa.types.is_string(target) and (
        pa.types.is_nested(t)
        or pa.types.is_binary(t)
        or pa.types.is_large_binary(t)
        or pa.types.is_fixed_size_binary(t)
    ):
        values = arr.to_pylist()
        if pa.types.is_nested(t):
            return pa.array([to_json_text(v) for v in values], type=pa.string())
        return pa.array(
            [None if v is None else base64.b64encode(v).decode("ascii") for v in values],
            type=pa.string(),
        )
    if pa.types.is_string(target) and (pa.types.is_time(t) or pa.types.is_duration(t)):
        return pa.array([None if v is None else str(v) for v in arr.to_pylist()], type=pa.string())
    if pa.types.is_null(t):
        return pa.nulls(len(arr), type=target)
    return arr.cast(target)


#: field metadata naming the PostgreSQL type a column was declared with at the source
#: (``character(10)``, ``integer``, ``numeric(15,2)``, ``uuid``...): a PostgreSQL sink creates
#: the target column with it, so the copy answers the same SQL as the source
DECLARED_TYPE = b"etl_express:pg_type"


def declared_type(field: pa.Field) -> str | None:
    """The PostgreSQL type ``field`` was declared with at the source, if it carries one."""
    value = (field.metadata or {}).get(DECLARED_TYPE)
    return value.decode("utf-8") if value else None


def with_declared_type(field: pa.Field, pg_type: str | None) -> pa.Field:
    """``field`` carrying ``pg_type`` as its declared type (``None``: carrying none)."""
    metadata = {k: v for k, v in (field.metadata or {}).items() if k != DECLARED_TYPE}
    if pg_type:
        metadata[DECLARED_TYPE] = pg_type.encode("utf-8")
    return field.with_metadata(metadata) if metadata else field.remove_metadata()


def keep_declared_types(
    before: pa.Schema, after: pa.RecordBatch, rewritten: Collection[str] = ()
) -> pa.RecordBatch:
    """``after`` (a step's output for a batch of schema ``before``) with a declared type left
    only where it still describes the values: on a column the step kept as it was (same
    name and Arrow type) or renamed without rebuilding its field, and not in ``rewritten``
    (the columns an anonymizer covers: an anonymized column takes the type its anonymizer
    produces). A step that builds a new field for a column drops its declared type itself."""
    was = {f.name: f for f in before}
    fields = []
    changed = False
    for f in after.schema:
        pg_type = declared_type(f)
        if pg_type is not None:
            old = was.get(f.name)
            if f.name in rewritten or (old is not None and old.type != f.type):
                f = with_declared_type(f, None)
                changed = True
        fields.append(f)
    if not changed:
        return after
    return pa.RecordBatch.from_arrays(
        after.columns, schema=pa.schema(fields, after.schema.metadata)
    )


def with_tags(field: pa.Field, origin: pa.Field) -> pa.Field:
    """``field`` with this module's metadata of ``origin`` (its JSON tag, its declared type)."""
    tags = {k: v for k, v in (origin.metadata or {}).items() if k.startswith(b"etl_express:")}
    return field.with_metadata({**(field.metadata or {}), **tags}) if tags else field
