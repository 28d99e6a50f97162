"""Arrow arrays and scalars built from their buffers, without pyarrow's pandas probe.

Every conversion of Python values by pyarrow (``pa.array``, ``pa.scalar``, a Python scalar
handed to a compute function) and ``Array.to_numpy`` first ask whether pandas is installed,
and so import it: 0.2 s and 40 MB that a load which never touches pandas should not pay. Code
on a run's path builds the few arrays and scalars it makes from Python values here, and reads
integer columns through :func:`integer_values` (``tests/test_import_time.py`` checks that a
load imports no pandas).
"""

from __future__ import annotations

import datetime as dt
import itertools
from array import array
from collections.abc import Sequence

import numpy as np
import pyarrow as pa

from .format_types import TIMESTAMP


def string_array(values: Sequence[str]) -> pa.Array:
    """``pa.array(values, pa.string())`` built from its buffers.

    Every conversion of Python values by pyarrow (``pa.array``, ``pa.scalar``, a Python
    scalar handed to a compute function) first asks whether pandas is installed, and so
    imports it: 0.2 s and 40 MB that a load which never touches pandas should not pay. Code on
    a run's path uses this for the few texts it turns into an array (a position's values)."""
    try:
        data = [v.encode() for v in values]
    except (AttributeError, UnicodeEncodeError):  # not text: pyarrow's conversion, or its error
        return pa.array(values, pa.string())
    ends = list(itertools.accumulate(map(len, data)))
    if (ends and ends[-1] >= 2**31) or array("i").itemsize != 4:  # not int32 offsets
        return pa.array(values, pa.string())
    buffers = [None, pa.py_buffer(array("i", [0, *ends])), pa.py_buffer(b"".join(data))]
    return pa.Array.from_buffers(pa.string(), len(data), buffers)


def integer_values(column: pa.Array) -> np.ndarray:
    """``column.to_numpy()`` of an integer array without nulls, read from its buffer (no copy):
    ``Array.to_numpy`` imports pandas first, which a load that never touches pandas should not
    pay for (0.2 s)."""
    if not pa.types.is_integer(column.type) or column.null_count:
        raise TypeError(f"integer_values needs integers without nulls, not {column.type}")
    kind = "i" if pa.types.is_signed_integer(column.type) else "u"
    dtype = np.dtype(f"{kind}{column.type.bit_width // 8}")
    data = column.buffers()[1]
    return np.frombuffer(data, dtype, count=len(column), offset=column.offset * dtype.itemsize)


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)


def timestamp_scalar(value: dt.datetime) -> pa.TimestampScalar:
    """``pa.scalar(value, TIMESTAMP)`` without pyarrow's pandas probe (a naive ``value`` is
    UTC, as pyarrow takes it)."""
    aware = value if value.tzinfo is not None else value.replace(tzinfo=dt.timezone.utc)
    micros = (aware - _EPOCH) // dt.timedelta(microseconds=1)
    return pa.Array.from_buffers(TIMESTAMP, 1, [None, pa.py_buffer(array("q", [micros]))])[0]


__all__ = ["integer_values", "string_array", "timestamp_scalar"]
