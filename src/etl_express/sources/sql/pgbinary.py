"""PostgreSQL reads through binary COPY, decoded into Arrow by the compiled extension.

Logic: the query runs as ``COPY (query) TO STDOUT (FORMAT binary)`` on a read-only psycopg
connection. The compiled ``copy_drain`` takes the COPY messages straight from libpq (the
same libpq psycopg opened the connection with, through its ``PGconn`` pointer) into one
buffer a batch, and ``copy_decode`` turns the rows into Arrow column buffers — both without
the GIL, so the stages after the source run meanwhile. Columns are typed from the result's
PostgreSQL types: integers, floats, booleans, text-like types, json/jsonb, uuid (its text
form), date, timestamp/timestamptz and numeric: its text form, cast to decimal afterwards by
the source exactly as on the general path -- or, for a column the source reads as
``decimal128(p, s)`` (``types``), that decimal straight away, where every value of the batch
is one the cast takes unchanged (else that batch's column is the text, for the cast to
judge: NaN, the infinities, more digits than the type holds). A query with any other column type, a
missing compiled extension or a libpq that cannot be located makes :func:`open_reader`
return ``None``; a malformed value raises :class:`Unsupported` before its batch is yielded.
In both cases the caller reads through ADBC instead, from where this reader stopped. Dates
and timestamps the common format cannot hold (infinite, or outside years 1..9999) are
reported with each batch (see :meth:`BinaryCopyReader.batches` and :mod:`.datetimes`) for
the caller to quarantine those rows.
"""

from __future__ import annotations

import atexit
import ctypes
import functools
import glob
import os
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from ..._allocator import keep_batch_memory
from ..._speedups import native
from ...format import TIMESTAMP, normalize_name

#: the 11 bytes a binary COPY stream starts with (PostgreSQL's protocol; the sinks write the
#: same): kept here so that reading does not import the writing side
COPY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00"

#: PostgreSQL type OID -> the decoder's column kind (see ``_copyread.c``).
KINDS: dict[int, bytes] = {
    21: b"h",
    23: b"i",
    20: b"q",  # int2, int4, int8
    700: b"f",
    701: b"d",  # float4, float8
    16: b"b",  # bool
    25: b"s",
    1043: b"s",
    1042: b"s",
    19: b"s",
    114: b"s",  # text, varchar, bpchar, name, json
    3802: b"j",  # jsonb
    2950: b"u",  # uuid
    1082: b"D",  # date
    1114: b"T",
    1184: b"T",  # timestamp, timestamptz
    1700: b"n",  # numeric
}
_ARROW: dict[bytes, pa.DataType] = {
    b"h": pa.int64(),
    b"i": pa.int64(),
    b"q": pa.int64(),
    b"f": pa.float64(),
    b"d": pa.float64(),
    b"b": pa.bool_(),
    b"D": pa.date32(),
    b"T": TIMESTAMP,
}
_MAX_BATCH_BYTES = 256 << 20  # a batch ends early rather than hold more than this


class Unsupported(Exception):
    """A value the binary decoder does not take; read through the general path instead."""


@functools.lru_cache(maxsize=1)
def libpq_functions() -> tuple[int, int] | None:
    """The addresses of ``PQgetCopyData`` and ``PQfreemem`` in the libpq psycopg uses, or
    ``None`` when that library cannot be told apart (then the reader is not used)."""
    try:
        import psycopg
    except ImportError:
        return None
    lib: Any = None
    impl: str = psycopg.pq.__impl__  # type: ignore[attr-defined]
    if impl == "python":  # psycopg's own ctypes handle
        from psycopg.pq import _pq_ctypes  # type: ignore[attr-defined]

        lib = _pq_ctypes.pq  # type: ignore[attr-defined]
    else:
        paths = _linked_libpq(impl)
        if len(paths) != 1:
            return None
        lib = ctypes.CDLL(paths.pop())  # already loaded: the same library, not a second copy
    try:
        get = ctypes.cast(lib.PQgetCopyData, ctypes.c_void_p).value
        free = ctypes.cast(lib.PQfreemem, ctypes.c_void_p).value
    except AttributeError:
        return None
    return (get, free) if get and free else None


def _linked_libpq(impl: str) -> set[str]:
    """The libpq files psycopg's compiled module is linked with: the one psycopg-binary
    ships next to it, or (psycopg-c, linked with the system's) the one this process mapped."""
    if impl == "binary":
        import psycopg_binary

        package = os.path.dirname(psycopg_binary.__file__)
        return {
            p
            for pattern in (
                os.path.join(os.path.dirname(package), "psycopg_binary.libs", "libpq*.so*"),
                os.path.join(package, ".dylibs", "libpq*.dylib"),
            )
            for p in glob.glob(pattern)
        }
    try:
        with open("/proc/self/maps", encoding="utf-8") as maps:
            return {line.split()[-1] for line in maps if "/libpq" in line and ".so" in line}
    except OSError:
        return set()


def available() -> bool:
    """Whether binary COPY reads can be decoded here (compiled extension and libpq found)."""
    return native is not None and libpq_functions() is not None


class BinaryCopyReader:
    """One ``COPY (query) TO STDOUT (FORMAT binary)`` read; iterate :meth:`batches` once."""

    def __init__(
        self,
        conn: Any,
        query: str,
        kinds: bytes,
        names: list[str],
        url: str = "",
        types: Mapping[str, pa.DataType] | None = None,
    ):
        self._conn = conn
        self._url = url
        self.query = query
        self.names = names
        #: the decimal128 type of each numeric column decoded as one (by column index)
        self.decimals = _decimal_columns(kinds, names, types or {})
        self.kinds = bytes(ord("N") if i in self.decimals else k for i, k in enumerate(kinds))
        #: (precision, scale) a column for the decoder ('N' columns), else empty
        self._scales = (
            b"".join(
                bytes((t.precision, t.scale)) if (t := self.decimals.get(i)) else b"\0\0"
                for i in range(len(kinds))
            )
            if self.decimals
            else b""
        )
        #: the binary COPY tuples of the batch :meth:`batches` yielded last (no copy: a view
        #: of the buffer it was decoded from), see etl_express._copybytes
        self.rows_bytes = memoryview(b"")

    def close(self) -> None:
        if self._url:
            _release(self._conn, self._url)
        else:
            self._conn.close()

    def batches(
        self, batch_size: int, *, ramp: bool = False
    ) -> Iterator[tuple[pa.RecordBatch, np.ndarray | None]]:
        """Record batches of ``batch_size`` rows (fewer at the end, or where a batch would
        pass 256 MB). With ``ramp`` the first batches are 1/16, 1/8, 1/4 and 1/2 of it (from
        16,000 rows up): the first rows reach the later stages and the target sooner, so a
        pipeline's stages fill in a fraction of a full batch's time.

        Each batch comes with its dates and timestamps the common format cannot hold (null in
        the batch): ``None``, or an ``(n, 4)`` int64 array of (row, column, code, raw) rows
        as :mod:`.datetimes` describes them."""
        import psycopg

        assert native is not None
        keep_batch_memory()
        pgconn = self._conn.pgconn
        res = pgconn.exec_(f"COPY ({self.query}) TO STDOUT (FORMAT binary)".encode())
        if res.status != psycopg.pq.ExecStatus.COPY_OUT:
            raise psycopg.errors.error_from_result(res, encoding=self._conn.info.encoding)
        get, free = libpq_functions()  # type: ignore[misc]
        sizes = _ramp(batch_size) if ramp else iter(())
        size = next(sizes, batch_size)
        row_bytes = 256.0  # bytes a row, learnt from each batch: sizes the next drain's buffer
        pending = b""
        start = -1
        state = 0
        while True:
            if state == 0:
                # PostgreSQL sends a row a message (the header rides with the first): one
                # drain is one batch, and nothing is left over to carry into the next
                hint = int(row_bytes * size * 1.05) + 65536
                data, state = native.copy_drain(
                    pgconn.pgconn_ptr, get, free, size, _MAX_BATCH_BYTES, hint
                )
                if state == -2:
                    self._raise_result()
                    raise psycopg.OperationalError(
                        f"reading the COPY stream failed: {pgconn.error_message.decode(errors='replace').strip()}"
                    )
                pending = pending + data if pending else data
            if start < 0:
                if len(pending) < 19 and state == 0:
                    continue
                start = _header_end(pending)
            try:
                end, rows, finished, columns, flagged = native.copy_decode(
                    pending, start, self.kinds, size, self._scales
                )
            except ValueError as exc:
                raise Unsupported(str(exc)) from None
            if rows:
                # the rows' own bytes: without the stream's trailer, which ends the last batch
                rows_end = end - 2 if finished else end
                row_bytes = (rows_end - start) / rows
                self.rows_bytes = memoryview(pending)[start:rows_end]
                yield (
                    self._batch(rows, columns),
                    (None if flagged is None else np.frombuffer(flagged, np.int64).reshape(-1, 4)),
                )
                size = next(sizes, batch_size)
            if finished or (state == 1 and end == len(pending)):
                break
            if state == 1 and rows == 0:
                raise Unsupported("the COPY stream ended inside a row")
            pending, start = pending[end:], 0
        while state == 0:  # the trailer came: let libpq see the end of the COPY
            _, state = native.copy_drain(pgconn.pgconn_ptr, get, free, 1, _MAX_BATCH_BYTES)
        self._raise_result()

    def _raise_result(self) -> None:
        """Read the COPY's final result; raise its error if it failed."""
        import psycopg

        pgconn = self._conn.pgconn
        while (res := pgconn.get_result()) is not None:
            if res.status != psycopg.pq.ExecStatus.COMMAND_OK:
                raise psycopg.errors.error_from_result(res, encoding=self._conn.info.encoding)

    def _batch(self, rows: int, columns: list[tuple[Any, ...]]) -> pa.RecordBatch:
        arrays = []
        for i, (kind, col) in enumerate(zip(self.kinds, columns)):
            if len(col) == 4:  # offsets, data, validity, nulls (a decimal column may be text)
                offsets, data, valid, nulls = col
                buffers = [_buf(valid), pa.py_buffer(offsets), pa.py_buffer(data)]
                arrays.append(pa.Array.from_buffers(pa.string(), rows, buffers, null_count=nulls))
            else:
                values, valid, nulls = col
                kind_type = self.decimals[i] if kind == ord("N") else _ARROW[bytes([kind])]
                arrays.append(
                    pa.Array.from_buffers(
                        kind_type, rows, [_buf(valid), pa.py_buffer(values)], null_count=nulls
                    )
                )
        return pa.RecordBatch.from_arrays(arrays, names=self.names)


def _decimal_columns(
    kinds: bytes, names: list[str], types: Mapping[str, pa.DataType]
) -> dict[int, pa.Decimal128Type]:
    """The numeric columns read as ``decimal128(p, s)`` (0 <= s <= p <= 38), by index: the
    decoder makes those decimals itself instead of text for the source's cast."""
    found = {}
    for i, (kind, name) in enumerate(zip(kinds, names)):
        t = types.get(normalize_name(name))
        if (
            kind == ord("n")
            and t is not None
            and pa.types.is_decimal128(t)
            and 0 <= t.scale <= t.precision
        ):
            found[i] = t
    return found


def _ramp(batch_size: int) -> Iterator[int]:
    if batch_size >= 16_000:
        yield from (batch_size // 16, batch_size // 8, batch_size // 4, batch_size // 2)


def _buf(valid: bytes | None) -> pa.Buffer | None:
    return None if valid is None else pa.py_buffer(valid)


def _header_end(data: bytes) -> int:
    """The offset of the first row after the binary COPY file header."""
    if len(data) < 19 or data[:11] != COPY_SIGNATURE:
        raise Unsupported("the COPY stream does not start with the binary signature")
    extension = int.from_bytes(data[15:19], "big")
    return 19 + extension


#: idle read-only connections by URL, reused by the next reader of this process (a
#: replication reads hundreds of tables: a new server process for each would cost more than
#: reading a small table)
_IDLE: dict[str, list[tuple[Any, float]]] = {}  # (connection, when it was released)
_IDLE_PID = os.getpid()
_IDLE_LOCK = threading.Lock()
_KEEP_IDLE = 4
#: a connection released less than this many seconds ago is used without a first statement
#: that would find it closed (a server that closes a connection does so after it idled)
_FRESH_S = 10.0
_INHERITED: list[Any] = []  # a forked child's copies of its parent's connections, left alone


@atexit.register
def _close_idle() -> None:
    """Close the kept connections when the interpreter ends (not left to the collector)."""
    with _IDLE_LOCK:
        if os.getpid() == _IDLE_PID:
            for idle in _IDLE.values():
                for conn, _ in idle:
                    conn.close()
        _IDLE.clear()


def _connection(url: str, *, fresh_within: float | None = None) -> Any:
    """An idle connection to ``url`` set up for reading, reused or new; ``fresh_within``:
    reuse only one released less than that many seconds ago (else a new one)."""
    import psycopg

    global _IDLE_PID
    stale = None
    with _IDLE_LOCK:
        if os.getpid() != _IDLE_PID:  # a forked child must not use its parent's sockets,
            _INHERITED.extend(c for idle in _IDLE.values() for c, _ in idle)  # nor close them
            _IDLE.clear()
            _IDLE_PID = os.getpid()
        idle = _IDLE.get(url, [])
        while idle:
            conn, released = idle.pop()
            if conn.closed:
                continue
            if fresh_within is None or time.monotonic() - released < fresh_within:
                return conn
            stale = conn  # idle too long: closed (outside the lock), a new one instead
            break
    if stale is not None:
        stale.close()
    conn = psycopg.connect(url, autocommit=True)
    try:
        # the keyset statement carries its values as literals (COPY takes no parameters):
        # they are written for standard strings, whatever the server's default
        conn.execute(
            "SET default_transaction_read_only = on; SET client_encoding = 'UTF8'; "
            "SET standard_conforming_strings = on"
        )
    except BaseException:
        conn.close()
        raise
    return conn


def _release(conn: Any, url: str) -> None:
    """Keep ``conn`` for the next reader when it is idle and healthy, else close it."""
    import psycopg

    idle = not conn.closed and conn.pgconn.transaction_status == psycopg.pq.TransactionStatus.IDLE
    if idle:
        with _IDLE_LOCK:
            if os.getpid() == _IDLE_PID and len(_IDLE.setdefault(url, [])) < _KEEP_IDLE:
                _IDLE[url].append((conn, time.monotonic()))
                return
    conn.close()


def open_reader(
    url: str,
    query: str,
    described: Sequence[tuple[str, int]] | None = None,
    types: Mapping[str, pa.DataType] | None = None,
) -> BinaryCopyReader | None:
    """A reader for ``query`` on a read-only connection (an idle one of this process
    reused), or ``None`` when the binary decoder cannot be used here or for one of the
    query's column types. ``described``: the query's columns as ``(name, type OID)``, when
    the caller has just described it (no second description: one round trip less); a
    column whose type differs when the rows come fails the decoding (a field of another
    size), it is never misread. ``types``: the Arrow types the caller casts the columns to
    (by normalized name); a numeric one read as ``decimal128`` is decoded into it."""
    if not available():
        return None
    import psycopg

    if described is not None:
        kinds = b"".join(KINDS.get(oid, b"?") for _, oid in described)
        if b"?" in kinds:
            return None
        names = [name for name, _ in described]
        conn = _connection(url, fresh_within=_FRESH_S)  # not one the server may have closed
        return BinaryCopyReader(conn, query, kinds, names, url, types)
    conn = _connection(url)
    try:
        try:
            cur = conn.execute(f"SELECT * FROM ({query}) AS q LIMIT 0")
        except psycopg.OperationalError:  # a kept connection the server has closed since
            conn.close()
            conn = _connection(url)
            cur = conn.execute(f"SELECT * FROM ({query}) AS q LIMIT 0")
        description = cur.description or []
        kinds = b"".join(KINDS.get(col.type_code, b"?") for col in description)
        if b"?" in kinds:
            _release(conn, url)
            return None
        names = [col.name for col in description]
        return BinaryCopyReader(conn, query, kinds, names, url, types)
    except BaseException:
        conn.close()
        raise


__all__ = [
    "KINDS",
    "BinaryCopyReader",
    "Unsupported",
    "available",
    "libpq_functions",
    "open_reader",
]
