"""The optional compiled loops (``etl_express._native``) and the buffer views they take.

``native`` is the extension module, or ``None`` when it was not built (no C compiler at
install time) or ``ETL_EXPRESS_NO_NATIVE=1`` is set; every caller then takes its
pure-Python path, which gives the same bytes.
"""

from __future__ import annotations

import os
from types import ModuleType
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


def _disabled() -> bool:
    return os.environ.get("ETL_EXPRESS_NO_NATIVE", "").strip() not in ("", "0")


def _load() -> ModuleType | None:
    if _disabled():
        return None
    try:
        from . import _native  # type: ignore[attr-defined]  # the compiled extension, when built
    except ImportError:
        return None
    return _native


native: ModuleType | None  # loaded on first use (module __getattr__ below), then a plain global


def __getattr__(name: str) -> Any:
    if name == "native":
        global native
        native = _load()
        return native
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def describe() -> str:
    """``"on"``, or why the compiled speedups are off and how to turn them on."""
    loaded = globals()["native"] if "native" in globals() else __getattr__("native")
    if loaded is not None:
        return "on"
    if _disabled():
        return "off (ETL_EXPRESS_NO_NATIVE is set)"
    return "off (not built: reinstall etl-express where a C compiler is available)"


def string_buffers(arr: pa.Array) -> tuple[np.ndarray, pa.Buffer | bytes]:
    """The int32 offsets (``len(arr) + 1``, absolute into the data buffer) and the data
    buffer of a string or binary array, as the native functions take them."""
    n = len(arr)
    buffers = arr.buffers()
    offsets = np.frombuffer(buffers[1], dtype=np.int32, count=n + 1, offset=arr.offset * 4)
    data = buffers[2]
    return offsets, (data if data is not None else b"")


def output_buffer(size: int) -> pa.Buffer:
    """Memory for a native function's output (its ``alloc`` argument): a buffer of pyarrow's
    memory pool, which keeps the pages it frees. The native functions' own output, a new
    ``bytes`` object of a few megabytes a batch, is fresh pages from the system every time,
    each faulted in and zeroed by the kernel: a sixth of a scrub's CPU on 50,000-row batches.
    """
    return pa.allocate_buffer(size)


def _buffer(memory: bytes | pa.Buffer) -> pa.Buffer:
    return memory if isinstance(memory, pa.Buffer) else pa.py_buffer(memory)


def string_array(rows: int, offsets: bytes | pa.Buffer, data: bytes | pa.Buffer) -> pa.Array:
    """A string array of a native function's offsets and data, without nulls."""
    return pa.StringArray.from_buffers(rows, _buffer(offsets), _buffer(data))


def string_result(like: pa.Array, offsets: bytes | pa.Buffer, data: bytes | pa.Buffer) -> pa.Array:
    """A native function's output column (int32 offsets and data, as bytes or from
    :func:`output_buffer`) for the rows of ``like``, null where ``like`` is."""
    out = string_array(len(like), offsets, data)
    # a null scalar taken from an array: pa.scalar(None) would make pyarrow import pandas
    return (
        pc.if_else(pc.is_valid(like), out, pa.nulls(1, pa.string())[0]) if like.null_count else out
    )


def row_flags(like: pa.Array, flags: bytes) -> pa.Array:
    """A native function's one-byte-a-row flags (0 or 1) as a boolean column, false where
    ``like`` is null. Packed into the bitmap here: ``pa.array`` of a numpy mask would make
    pyarrow import pandas (0.2 s of a fresh process)."""
    bits = np.packbits(np.frombuffer(flags, dtype=np.uint8), bitorder="little")
    out = pa.Array.from_buffers(pa.bool_(), len(flags), [None, pa.py_buffer(bits)])
    return pc.and_(out, pc.is_valid(like)) if like.null_count else out


__all__ = [
    "describe",
    "native",
    "output_buffer",
    "row_flags",
    "string_array",
    "string_buffers",
    "string_result",
]
