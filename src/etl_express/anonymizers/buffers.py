"""Arrow arrays built from numpy buffers and read back through them, for the anonymizers'
column kernels.

pyarrow imports pandas (0.2 s of CPU and 40 MB in a fresh process) on every conversion of
Python or numpy values — ``pa.array(mask)``, ``pa.scalar(...)``, a Python literal handed to
a compute function (``pc.fill_null(x, False)``) — and in ``Array.to_numpy``. A load that never
touches pandas should not pay for it, so the kernels on a run's path (``ScrubPII``, the
detector's samples) build and read their arrays here instead: same values, no conversion.
Text arrays are built by :func:`etl_express.format.string_array`.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


def take_indices(positions: np.ndarray) -> pa.Array:
    """``pa.array(positions, pa.int64())``, for ``take``, from its buffer."""
    data = np.ascontiguousarray(positions, dtype=np.int64)
    return pa.Array.from_buffers(pa.int64(), len(data), [None, pa.py_buffer(data)])


def int32_array(values: np.ndarray) -> pa.Array:
    """``pa.array(values, pa.int32())`` (list offsets), from its buffer."""
    data = np.ascontiguousarray(values, dtype=np.int32)
    return pa.Array.from_buffers(pa.int32(), len(data), [None, pa.py_buffer(data)])


def bool_array(mask: np.ndarray) -> pa.Array:
    """``pa.array(mask)`` of a numpy boolean mask (or one byte a row, 0 or 1), no nulls: the
    bytes packed into Arrow's bitmap."""
    flags = np.ascontiguousarray(mask).view(np.uint8) if len(mask) else np.zeros(0, np.uint8)
    bits = np.packbits(flags, bitorder="little")
    return pa.Array.from_buffers(pa.bool_(), len(flags), [None, pa.py_buffer(bits)])


def _bits(buffer: pa.Buffer, offset: int, n: int) -> np.ndarray:
    raw = np.frombuffer(buffer, dtype=np.uint8, count=(offset + n + 7) // 8)
    return np.unpackbits(raw, bitorder="little", count=offset + n)[offset:].view(np.bool_)


def bool_values(arr: pa.Array) -> np.ndarray:
    """A boolean array as a numpy mask, a null counted as false (what
    ``pc.fill_null(arr, False).to_numpy(zero_copy_only=False)`` gives)."""
    n = len(arr)
    validity, data = arr.buffers()
    if n == 0 or data is None:  # a null-typed or empty array
        return np.zeros(n, dtype=bool)
    out = _bits(data, arr.offset, n)
    if arr.null_count and validity is not None:
        out = out & _bits(validity, arr.offset, n)
    return out


def false_if_null(arr: pa.Array) -> pa.Array:
    """``pc.fill_null(arr, False)`` of a boolean array, without a Python literal."""
    return pc.and_kleene(arr, pc.is_valid(arr)) if arr.null_count else arr


def any_true(flags: pa.Array) -> bool:
    """``pc.any(flags).as_py()`` of a boolean array (nulls skipped, an empty array false),
    read from its bitmaps: ``pc.any`` goes through the function registry and an aggregate
    kernel, tens of microseconds a call, and the scrub pipeline asks a dozen times a batch."""
    return flags.true_count > 0


def null_string() -> pa.Scalar:
    """``pa.scalar(None, pa.string())``, without converting ``None``."""
    return pa.nulls(1, pa.string())[0]


__all__ = [
    "any_true",
    "bool_array",
    "bool_values",
    "false_if_null",
    "int32_array",
    "null_string",
    "take_indices",
]
