"""Arrow batches as ``COPY ... FROM STDIN`` payloads, without per-row Python.

Two encodings, chosen per batch by :func:`copy_payload`:

* **binary** (``FORMAT binary``): what PostgreSQL parses fastest — about 40% less server
  time than CSV on a typical CRM table, since timestamps, dates, numbers and numerics need
  no text parsing. Each column is turned into one Arrow binary array holding, per row,
  the field's 4-byte length and its big-endian value (numpy for fixed-width values, Arrow
  kernels for strings); ``binary_join_element_wise`` then glues the fields of each row in
  C++, and the joined array's data buffer *is* the COPY stream. Binary COPY needs the
  exact type of each target column, so a batch with a column this module cannot encode
  for its target type falls back to CSV.
* **csv** (``FORMAT csv``): Arrow's C++ CSV writer; any type PostgreSQL can parse from
  text. Zoned timestamps are written as naive UTC values — the COPY must run with
  ``TimeZone = UTC`` — since Arrow formats zoned values through a per-value time-zone
  lookup, about 30 times slower.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

_CSV_OPTIONS = pacsv.WriteOptions(include_header=False, batch_size=65536)
_HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
_TRAILER = b"\xff\xff"
_NULL = pa.scalar(b"\xff\xff\xff\xff", pa.binary())
_PG_EPOCH_DAYS = 10_957  # 2000-01-01 - 1970-01-01
_PG_EPOCH_US = _PG_EPOCH_DAYS * 86_400 * 1_000_000
_MAX_BATCH_BYTES = 1 << 30  # Arrow binary offsets are 32-bit
_TEXT_TYPES = {"text", "character varying", "character", "json"}
_INT_RANGES = {"bigint": (">i8", -(2**63), 2**63 - 1), "integer": (">i4", -(2**31), 2**31 - 1),
               "smallint": (">i2", -(2**15), 2**15 - 1)}

Payload = tuple[str, list[memoryview | bytes]]


def copy_payload(batch: pa.RecordBatch, pg_types: Sequence[str] | None = None) -> Payload:
    """``(format, chunks)`` for ``COPY ... FROM STDIN (FORMAT <format>)``.

    ``pg_types`` are the target columns' types as ``information_schema.columns.data_type``
    spells them, in the batch's column order; without them (or when a column cannot be
    encoded in binary for its type) the payload is CSV.
    """
    if pg_types is not None:
        chunks = binary_payload(batch, pg_types)
        if chunks is not None:
            return "binary", chunks
    return "csv", [csv_payload(batch)]


def csv_payload(batch: pa.RecordBatch) -> memoryview:
    """The batch as headerless CSV; zoned timestamps as naive UTC (load with TimeZone=UTC)."""
    arrays = [
        pc.cast(col, pa.timestamp(col.type.unit)) if pa.types.is_timestamp(col.type) and col.type.tz else col
        for col in batch.columns
    ]
    buf = io.BytesIO()
    pacsv.write_csv(pa.RecordBatch.from_arrays(arrays, names=batch.schema.names), buf, _CSV_OPTIONS)
    return buf.getbuffer()


def binary_payload(batch: pa.RecordBatch, pg_types: Sequence[str]) -> list[memoryview | bytes] | None:
    """The batch in PostgreSQL's binary COPY format, or ``None`` when a column's Arrow
    type cannot be encoded for its target type (the caller falls back to CSV)."""
    if batch.num_columns == 0 or batch.num_columns != len(pg_types) or batch.num_columns > 1600:
        return None
    if batch.nbytes > _MAX_BATCH_BYTES:
        return None
    fields: list[pa.Array | pa.Scalar] = [pa.scalar(batch.num_columns.to_bytes(2, "big"), pa.binary())]
    for col, pg_type in zip(batch.columns, pg_types):
        try:
            encoded = encode_column(col, pg_type)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OverflowError):
            encoded = None
        if encoded is None:
            return None
        fields.append(encoded)
    rows = pc.binary_join_element_wise(*fields, b"")
    offsets = np.frombuffer(rows.buffers()[1], dtype=np.int32, count=len(rows) + 1, offset=rows.offset * 4)
    data = memoryview(rows.buffers()[2])[offsets[0]:offsets[-1]]  # type: ignore[arg-type]
    return [_HEADER, data, _TRAILER]


def encode_column(col: pa.Array, pg_type: str) -> pa.Array | None:
    """One binary value per row: the field's 4-byte length and its bytes (``-1``: NULL)."""
    t = col.type
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        if pg_type in _TEXT_TYPES:
            return _varlen(col, b"")
        if pg_type == "jsonb":
            return _varlen(col, b"\x01")  # jsonb's binary form: a version byte, then the text
        return None
    if pa.types.is_boolean(t) and pg_type == "boolean":
        return _fixed(pc.fill_null(col, False).to_numpy(zero_copy_only=False).astype(np.uint8), col)
    if pa.types.is_integer(t):
        if pg_type in _INT_RANGES:
            dtype, lo, hi = _INT_RANGES[pg_type]
            values = pc.fill_null(col, 0).to_numpy()
            if values.size and (values.min() < lo or values.max() > hi):
                return None  # out of range: CSV lets PostgreSQL name the problem
            return _fixed(values.astype(dtype), col)
        if pg_type == "numeric":
            return _numeric(pc.fill_null(col, 0).to_numpy().astype(np.int64), 0, 19, col)
        if pg_type == "double precision":
            return _fixed(pc.fill_null(col, 0).to_numpy().astype(">f8"), col)
        return None
    if pa.types.is_floating(t) and pg_type in ("double precision", "real"):
        values = pc.fill_null(col, 0).to_numpy()
        return _fixed(values.astype(">f8" if pg_type == "double precision" else ">f4"), col)
    if pa.types.is_date32(t) and pg_type == "date":
        days = pc.fill_null(col, 0).cast(pa.int32()).to_numpy()
        return _fixed((days.astype(np.int64) - _PG_EPOCH_DAYS).astype(">i4"), col)
    if pa.types.is_timestamp(t) and pg_type in ("timestamp with time zone", "timestamp without time zone"):
        us = pc.fill_null(col.cast(pa.timestamp("us", t.tz)), 0).cast(pa.int64()).to_numpy()
        return _fixed((us - _PG_EPOCH_US).astype(">i8"), col)
    if pa.types.is_decimal128(t) and pg_type == "numeric":
        if t.scale < 0 or t.precision + (-t.scale % 4) > 18:
            return None
        return _numeric(_decimal_unscaled(col), t.scale, t.precision, col)
    return None


def _fixed(values: np.ndarray, col: pa.Array) -> pa.Array:
    """Fixed-width big-endian ``values`` as length-prefixed fields (NULL where ``col`` is)."""
    n = len(values)
    width = values.dtype.itemsize if values.ndim == 1 else values.shape[1]
    out = np.empty((n, 4 + width), dtype=np.uint8)
    out[:, :4] = np.frombuffer(width.to_bytes(4, "big"), dtype=np.uint8)
    out[:, 4:] = np.ascontiguousarray(values).view(np.uint8).reshape(n, width)
    offsets = np.arange(0, (n + 1) * (4 + width), 4 + width, dtype=np.int32)
    arr = pa.Array.from_buffers(pa.binary(), n, [None, pa.py_buffer(offsets), pa.py_buffer(out)])
    return _with_nulls(arr, col)


def _varlen(col: pa.Array, prefix: bytes) -> pa.Array:
    lengths = pc.fill_null(pc.binary_length(col), 0).to_numpy().astype(np.int64) + len(prefix)
    head = np.empty((len(col), 4 + len(prefix)), dtype=np.uint8)
    head[:, :4] = lengths.astype(">i4").view(np.uint8).reshape(-1, 4)
    head[:, 4:] = np.frombuffer(prefix, dtype=np.uint8)
    offsets = np.arange(0, (len(col) + 1) * head.shape[1], head.shape[1], dtype=np.int32)
    heads = pa.Array.from_buffers(pa.binary(), len(col), [None, pa.py_buffer(offsets), pa.py_buffer(head)])
    body = col.cast(pa.binary()) if pa.types.is_string(col.type) else col.cast(pa.large_binary()).cast(pa.binary())
    joined = pc.binary_join_element_wise(heads, pc.fill_null(body, b""), b"")
    return _with_nulls(joined, col)


def _with_nulls(arr: pa.Array, col: pa.Array) -> pa.Array:
    if col.null_count == 0:
        return arr
    return pc.if_else(col.is_valid(), arr, _NULL)


def _decimal_unscaled(col: pa.Array) -> np.ndarray:
    """The unscaled int64 values of a decimal128 array (precision <= 18 fits)."""
    words = np.frombuffer(col.buffers()[1], dtype="<i8", count=2 * (len(col) + col.offset))
    values = words[2 * col.offset::2].copy()
    if col.null_count:
        values[~col.is_valid().to_numpy(zero_copy_only=False)] = 0
    return values


def _numeric(unscaled: np.ndarray, scale: int, precision: int, col: pa.Array) -> pa.Array:
    """PostgreSQL's binary numeric: base-10000 digits aligned on the decimal point.

    Every row gets the same number of digits (leading zeros included): PostgreSQL strips
    them on receipt, and a fixed width keeps the encoding vectorized.
    """
    frac_groups = -(-scale // 4)
    pad = 4 * frac_groups - scale
    ndigits = max(-(-(precision + pad) // 4), 1)
    negative = unscaled < 0
    magnitude = np.where(negative, -(unscaled + 1), unscaled).astype(np.uint64) + negative.astype(np.uint64)
    magnitude = magnitude * np.uint64(10**pad)
    digits = np.empty((len(unscaled), ndigits), dtype=">u2")
    for k in range(ndigits - 1, -1, -1):
        digits[:, k] = magnitude % np.uint64(10_000)
        magnitude //= np.uint64(10_000)
    head = np.empty((len(unscaled), 4), dtype=">u2")
    head[:, 0] = ndigits
    head[:, 1] = np.uint16((ndigits - frac_groups - 1) & 0xFFFF)  # weight, as int16
    head[:, 2] = np.where(negative, 0x4000, 0x0000)
    head[:, 3] = scale
    values = np.concatenate([head.view(np.uint8), digits.view(np.uint8)], axis=1)
    return _fixed(values, col)


__all__ = ["binary_payload", "copy_payload", "csv_payload", "encode_column"]
