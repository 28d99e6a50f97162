"""Every entry point of ``_native.c`` and ``_copyread.c`` checks its own sizes and offsets
(issue 14, finding 9): called directly with arguments that do not fit together — rows beyond
the offsets, offsets beyond the data, bit offsets beyond a bitmap, sizes whose product
overflows, a program's ``min_len`` longer than its shortest match — each raises a clean
``ValueError`` or ``OverflowError`` instead of reading or writing out of bounds. The same
tests run under AddressSanitizer and UndefinedBehaviorSanitizer in ``test_sanitizers.py``,
where any stray access fails them."""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

import numpy as np
import psycopg
import pyarrow as pa
import pytest

from etl_express._speedups import native
from etl_express.sinks import pgcopy

pytestmark = pytest.mark.skipif(native is None, reason="etl_express._native was not built")

BIG = 2**62  # rows or sizes whose products overflow a 64-bit size
HUGE = 2**63 - 1
Call = Callable[[Any, int, Any], object]


def _offsets(*values: int) -> np.ndarray:
    return np.array(values, dtype=np.int32)


def _misaligned(offsets: np.ndarray) -> memoryview:
    raw = bytearray(offsets.nbytes + 1)
    view = memoryview(raw)[1:]
    view[:] = offsets.tobytes()
    return view


# every entry point over a string column, as f(offsets, rows, data)
STRING_ENTRY_POINTS: dict[str, Call] = {
    "blake2b_tokens": lambda o, r, d: native.blake2b_tokens(b"k" * 32, 16, b"p:", o, r, d),
    "phone_e164": lambda o, r, d: native.phone_e164(o, r, d),
    "replace_ascii_emails": lambda o, r, d: native.replace_ascii_emails(o, r, d, b"<EMAIL>"),
    "replace_program": lambda o, r, d: native.replace_program(
        o, r, d, b"\x01\x01" + bytes([0, 1, 1]) + b"\xff" * 32, b"\xff" * 32, 1, b"<X>"
    ),
    "scrub_gates": lambda o, r, d: native.scrub_gates(o, r, d),
    "special_rows": lambda o, r, d: native.special_rows(o, r, d, b"\xff" * 32),
    "digit_runs": lambda o, r, d: native.digit_runs(o, r, d, 10),
    "rows_containing": lambda o, r, d: native.rows_containing(o, r, d, b"00"),
    "scrub_gates_special": lambda o, r, d: native.scrub_gates(o, r, d, b"\xff" * 32),
    "rows_with_words": lambda o, r, d: native.rows_with_words(
        o, r, d, "a\0ab\0счет".encode(), b"<P>"
    ),
    "rows_with_words_anywhere": lambda o, r, d: native.rows_with_words(o, r, d, b"a", b""),
    "merge_rows": lambda o, r, d: native.merge_rows(
        o, r, d, b"\x01\x00", _offsets(0, 3), 1, b"xyz"
    ),
    "merge_rows_into": lambda o, r, d: native.merge_rows(
        _offsets(0, 1, 2), 2, b"ab", b"\x01\x00", o, r, d
    ),
}
INCONSISTENT = {
    "rows beyond the offsets": (_offsets(0, 2, 3), 5, b"abc", ValueError, "shorter"),
    "rows overflow the offsets size": (_offsets(0, 3), BIG, b"abc", OverflowError, "overflow"),
    "rows at the largest size": (_offsets(0, 3), HUGE, b"abc", OverflowError, "overflow"),
    "negative rows": (_offsets(0, 3), -1, b"abc", ValueError, "rows"),
    "offset beyond the data": (_offsets(0, 2, 40), 2, b"abc", ValueError, "beyond the data"),
    "decreasing offsets": (_offsets(0, 3, 1), 2, b"abcd", ValueError, "out of order"),
    "negative first offset": (_offsets(-8, 2), 1, b"abc", ValueError, "out of order"),
    "misaligned offsets": (_misaligned(_offsets(0, 1, 3)), 2, b"abc", ValueError, "aligned"),
    "offsets not a buffer": (object(), 1, b"abc", TypeError, "bytes-like"),
}


@pytest.mark.parametrize("case", list(INCONSISTENT))
@pytest.mark.parametrize("entry", list(STRING_ENTRY_POINTS))
def test_string_entry_points_refuse_inconsistent_columns(entry: str, case: str) -> None:
    offsets, rows, data, error, message = INCONSISTENT[case]
    with pytest.raises(error, match=message):
        STRING_ENTRY_POINTS[entry](offsets, rows, data)


@pytest.mark.parametrize("entry", list(STRING_ENTRY_POINTS))
def test_string_entry_points_take_a_consistent_slice(entry: str) -> None:
    # the same values as a slice of a longer column (offsets not starting at 0) give the
    # same result as on their own: the checks let every consistent call through
    rows = 1 if entry == "merge_rows_into" else 2  # there: the new column, one row
    alone = STRING_ENTRY_POINTS[entry](_offsets(0, 11, 17)[: rows + 1], rows, b"+7 999 1234a@b.ru")
    sliced = STRING_ENTRY_POINTS[entry](
        _offsets(4, 15, 21)[: rows + 1], rows, b"xxxx+7 999 1234a@b.ru"
    )
    if entry == "blake2b_tokens":  # tokens of the values only
        assert alone == sliced
    else:
        assert [bytes(x) for x in alone] == [bytes(x) for x in sliced]  # type: ignore[union-attr]


def test_replace_program_refuses_a_min_len_longer_than_its_shortest_match() -> None:
    # one alternative: a digit {1,3}; a match can be one byte, so sizing the output for
    # matches of 4 bytes (the old trust in min_len) would overrun it with a long placeholder
    digit = bytes([0, 1, 3]) + bytes(6) + b"\xff\x03" + bytes(24)
    program, first = b"\x01\x01" + digit, bytes(6) + b"\xff\x03" + bytes(24)
    values = b"1 2 3 4 5 6 7 8 9"
    offsets = _offsets(0, len(values))
    with pytest.raises(ValueError, match="min_len 4 is longer than the program's shortest match"):
        native.replace_program(offsets, 1, values, program, first, 4, b"<" + b"P" * 100 + b">")
    _, out_data = native.replace_program(offsets, 1, values, program, first, 1, b"<P>")
    assert bytes(out_data) == b"<P> <P> <P> <P> <P> <P> <P> <P> <P>"
    with pytest.raises(ValueError, match="min_len"):
        native.replace_program(offsets, 1, values, program, first, 0, b"<P>")


#: the entry points that write a new column, with their optional ``alloc`` last
ALLOCATING: dict[str, Callable[..., Any]] = {
    "blake2b_tokens": lambda o, r, d, *a: native.blake2b_tokens(b"k" * 32, 16, b"p:", o, r, d, *a),
    "phone_e164": lambda o, r, d, *a: native.phone_e164(o, r, d, *a),
    "replace_ascii_emails": lambda o, r, d, *a: native.replace_ascii_emails(o, r, d, b"<E>", *a),
    "replace_program": lambda o, r, d, *a: native.replace_program(
        o, r, d, b"\x01\x01" + bytes([0, 1, 1]) + b"\xff" * 32, b"\xff" * 32, 1, b"<X>", *a
    ),
    "merge_rows": lambda o, r, d, *a: native.merge_rows(
        o, r, d, b"\x01" + bytes(r - 1), _offsets(0, 3), 1, b"xyz", *a
    ),
}


def _used(result: Any) -> list[bytes]:
    """A result's buffers as bytes, a column's data cut at its last offset (the buffer from
    ``alloc`` may be longer)."""
    if not isinstance(result, tuple):
        return [bytes(result)]
    offsets = np.frombuffer(result[0], dtype=np.int32)
    return [bytes(result[0]), bytes(result[1])[: offsets[-1]], *(bytes(x) for x in result[2:])]


@pytest.mark.parametrize("entry", list(ALLOCATING))
def test_output_in_buffers_from_alloc_is_the_bytes_output(entry: str) -> None:
    values = b"+7 999 123 45 67 a@b.ru, 8 (916) 123-45-67 xxxx"
    offsets = _offsets(0, 16, 23, len(values))
    asked: list[int] = []

    def alloc(n: int) -> pa.Buffer:
        asked.append(n)
        return pa.allocate_buffer(n)

    out = ALLOCATING[entry](offsets, 3, values, alloc)
    assert asked and all(
        isinstance(x, pa.Buffer) for x in (out if isinstance(out, tuple) else [out])[:2]
    )
    assert _used(out) == _used(ALLOCATING[entry](offsets, 3, values))
    assert _used(ALLOCATING[entry](offsets, 3, values, None)) == _used(out)


@pytest.mark.parametrize(
    "alloc",
    [
        lambda n: pa.allocate_buffer(max(n - 1, 0)),  # short
        lambda n: b"\0" * n,  # read-only
        lambda n: memoryview(bytearray(n + 1))[1:],  # not aligned for the offsets
        lambda n: 7,  # no buffer
    ],
    ids=["short", "read-only", "misaligned", "not a buffer"],
)
@pytest.mark.parametrize("entry", list(ALLOCATING))
def test_alloc_that_gives_unfit_memory_is_refused(entry: str, alloc: Callable[[int], Any]) -> None:
    with pytest.raises((ValueError, TypeError, BufferError)):
        ALLOCATING[entry](_offsets(0, 6), 1, b"a@b.ru", alloc)


def test_alloc_errors_propagate() -> None:
    def alloc(n: int) -> pa.Buffer:
        raise MemoryError("no memory in this test")

    for entry in ALLOCATING.values():
        with pytest.raises(MemoryError, match="no memory in this test"):
            entry(_offsets(0, 6), 1, b"a@b.ru", alloc)


@pytest.mark.parametrize(
    ("picked", "new_rows", "message"),
    [
        (b"\x01", 1, "one byte a row"),
        (b"\x01\x00\x00", 1, "one byte a row"),
        (b"\x01\x01", 1, "as many rows"),
        (b"\x00\x00", 1, "as many rows"),
        (b"\x01\x00", 0, "as many rows"),
    ],
)
def test_merge_rows_refuses_flags_that_do_not_fit_the_new_column(
    picked: bytes, new_rows: int, message: str
) -> None:
    new_offsets = _offsets(0, 3) if new_rows else _offsets(0)
    with pytest.raises(ValueError, match=message):
        native.merge_rows(_offsets(0, 1, 2), 2, b"ab", picked, new_offsets, new_rows, b"xyz")


def test_replaced_column_too_large_for_32_bit_offsets_is_refused() -> None:
    values = b"a@b.c" * 1000
    offsets = np.arange(0, len(values) + 1, 5, dtype=np.int32)
    with pytest.raises(ValueError, match="too large for 32-bit offsets"):
        native.replace_ascii_emails(offsets, 1000, values, b"x" * (3 << 20))


# copy_rows: each part description checked against its buffers and the row count
COPY_ROWS_CASES: dict[str, tuple[list[tuple[Any, ...]], int, type[Exception], str]] = {
    "const size overflows": ([("const", b"abcd")], BIG, OverflowError, "overflow"),
    "parts' total overflows": (
        [("const", b"x" * 4096), ("const", b"x" * 4096), ("const", b"x" * 4096)] * 200,
        2**43,
        OverflowError,
        "overflow",
    ),
    "block rows x width overflows": ([("block", BIG, b"abcd")], 4, OverflowError, "overflow"),
    "block shorter than rows x width": ([("block", 4, b"abcdefg")], 2, ValueError, "shorter"),
    "block width zero": ([("block", 0, b"")], 2, ValueError, "width"),
    "var offsets beyond the data": (
        [("var", _offsets(0, 2, 9), b"abc")],
        2,
        ValueError,
        "beyond the data",
    ),
    "var rows beyond the offsets": ([("var", _offsets(0, 2), b"abc")], 3, ValueError, "shorter"),
    "text validity bit beyond the bitmap": (
        [("text", _offsets(0, 1, 2), b"ab", b"\xff", 7, b"")],
        2,
        ValueError,
        "validity bitmap",
    ),
    "text validity bit offset overflows": (
        [("text", _offsets(0, 1, 2), b"ab", b"\xff", HUGE, b"")],
        2,
        ValueError,
        "validity bitmap",
    ),
    "text negative bit offset": (
        [("text", _offsets(0, 1, 2), b"ab", b"\xff", -1, b"")],
        2,
        ValueError,
        "validity bitmap",
    ),
    "int first overflows": (
        [("int", 8, 8, bytes(16), BIG, None, 0, 0)],
        1,
        ValueError,
        "values buffer shorter",
    ),
    "int first beyond the values": (
        [("int", 4, 4, bytes(16), 3, None, 0, 0)],
        2,
        ValueError,
        "values buffer shorter",
    ),
    "int negative first": ([("int", 4, 4, bytes(16), -1, None, 0, 0)], 2, ValueError, "widths"),
    "int width not 1/2/4/8": ([("int", 3, 4, bytes(16), 0, None, 0, 0)], 2, ValueError, "widths"),
    "int validity bit overflows": (
        [("int", 4, 4, bytes(16), 0, b"\xff", HUGE, 0)],
        2,
        ValueError,
        "validity bitmap",
    ),
    "bool values bit beyond the bitmap": (
        [("bool", b"\xff", None, 5)],
        4,
        ValueError,
        "bitmaps shorter",
    ),
    "bool bit offset overflows": ([("bool", b"\xff", None, HUGE)], 1, ValueError, "bitmaps"),
    "bool validity shorter than the rows": (
        [("bool", b"\xff\xff", b"\xff", 0)],
        9,
        ValueError,
        "bitmaps shorter",
    ),
    "numeric values beyond the buffer": (
        [("numeric", 16, bytes(16), 1, None, 0, 2, 4)],
        1,
        ValueError,
        "values buffer shorter",
    ),
    "numeric width not 1/2/4/8/16": (
        [("numeric", 3, bytes(16), 0, None, 0, 2, 4)],
        1,
        ValueError,
        "width",
    ),
    "numeric fewer digits than the scale needs": (
        [("numeric", 8, bytes(16), 0, None, 0, 9, 2)],
        1,
        ValueError,
        "ndigits",
    ),
    "numeric validity bit beyond the bitmap": (
        [("numeric", 8, bytes(16), 0, b"\xff", 7, 0, 5)],
        2,
        ValueError,
        "validity bitmap",
    ),
    "negative rows": ([("const", b"ab")], -1, ValueError, "rows"),
    "unknown part": ([("float", b"ab")], 1, TypeError, "a part is"),
    "not a tuple": ([b"ab"], 1, TypeError, "a part is"),
}


@pytest.mark.parametrize("case", list(COPY_ROWS_CASES))
def test_copy_rows_refuses_inconsistent_parts(case: str) -> None:
    parts, rows, error, message = COPY_ROWS_CASES[case]
    with pytest.raises(error, match=message):
        native.copy_rows(parts, rows)


def test_copy_rows_encodes_a_consistent_call_at_the_edges() -> None:
    # bit offsets up to the last bit of the bitmaps, the values from `first` to the end
    out = native.copy_rows(
        [
            ("const", b"\x00\x02"),
            ("int", 2, 4, struct.pack("<4h", 1, 2, -3, 4), 2, b"\x80\x01", 7, 1),
            ("bool", b"\x80\x01", b"\x80\x01", 7),
        ],
        2,
    )
    assert out == (
        b"\x00\x02"
        + struct.pack(">ii", 4, -2)
        + struct.pack(">ib", 1, 1)
        + b"\x00\x02"
        + struct.pack(">ii", 4, 5)
        + struct.pack(">ib", 1, 1)
    )


def _row(*fields: bytes | None) -> bytes:
    out = struct.pack(">h", len(fields))
    for f in fields:
        out += struct.pack(">i", -1) if f is None else struct.pack(">i", len(f)) + f
    return out


COPY_DECODE_CASES: dict[str, tuple[tuple[Any, ...], str]] = {
    "start beyond the data": ((b"\xff\xff", 3, b"q", 10), "start or max_rows"),
    "negative start": ((b"\xff\xff", -1, b"q", 10), "start or max_rows"),
    "negative max_rows": ((b"\xff\xff", 0, b"q", -1), "start or max_rows"),
    "unknown kind": ((b"\xff\xff", 0, b"qz", 10), "unknown column kind"),
    "writable data": ((bytearray(_row(bytes(8))), 0, b"q", 10), "immutable"),
    "negative field length": ((_row(b"ab")[:2] + struct.pack(">i", -5), 0, b"s", 10), "negative"),
    "numeric digit past 9999": (
        (_row(struct.pack(">hhhhh", 1, 0, 0, 0, 10000)), 0, b"n", 10),
        "malformed numeric",
    ),
    "numeric digits beyond its length": (
        (_row(struct.pack(">hhhhh", 3, 0, 0, 0, 1)), 0, b"n", 10),
        "malformed numeric",
    ),
    "field count differs": ((_row(bytes(8), bytes(8)), 0, b"q", 10), "field count"),
    "uuid of the wrong size": ((_row(bytes(15)), 0, b"u", 10), "field size"),
}


@pytest.mark.parametrize("case", list(COPY_DECODE_CASES))
def test_copy_decode_refuses_inconsistent_input(case: str) -> None:
    args, message = COPY_DECODE_CASES[case]
    with pytest.raises(ValueError, match=message):
        native.copy_decode(*args)


def test_copy_decode_stops_before_a_field_longer_than_the_data() -> None:
    # a length that points past the end is an incomplete row (the rest comes with the next
    # read), never a read beyond the buffer
    data = _row(bytes(8)) + struct.pack(">hi", 1, 2**31 - 1) + b"abc"
    end, rows, finished, _, _ = native.copy_decode(data, 0, b"s", 10)
    assert (end, rows, finished) == (len(_row(bytes(8))), 1, False)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((0, 1, 1, 10, 100), "null connection"),
        ((1, 0, 1, 10, 100), "null connection"),
        ((1, 1, 1, -1, 100), "max_messages"),
        ((1, 1, 1, 10, -1), "max_bytes"),
    ],
)
def test_copy_drain_refuses_null_addresses_and_negative_sizes(
    args: tuple[int, ...], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        native.copy_drain(*args)


def test_blake2b_tokens_refuses_a_digest_size_it_cannot_write() -> None:
    for size in (0, 65, -1, 2**31 - 1):
        with pytest.raises(ValueError, match="digest_size"):
            native.blake2b_tokens(b"k" * 32, size, b"", _offsets(0, 1), 1, b"x")


def test_blake2b_lanes_refuses_what_is_not_a_lane_count() -> None:
    default = native.blake2b_lanes()
    for bad, error in ((0, ValueError), (-8, ValueError), ("8", TypeError), (2**70, OverflowError)):
        with pytest.raises(error):
            native.blake2b_lanes(bad)
    assert native.blake2b_lanes() == default  # a refused call changes nothing
    assert native.blake2b_lanes(1) == 1 and native.blake2b_lanes(default) == default


class _Sneaky:
    """A width whose ``__index__`` runs while copy_rows parses its parts: it rewrites an
    earlier part's offsets and empties the parts list."""

    def __init__(self, offsets: np.ndarray, parts: list[tuple[Any, ...]]):
        self.offsets, self.parts = offsets, parts

    def __index__(self) -> int:
        self.offsets[1] = 1 << 20
        self.parts.clear()
        return 2


def test_copy_rows_checks_offsets_after_the_caller_s_code_has_run() -> None:
    offsets = _offsets(0, 2)
    parts: list[tuple[Any, ...]] = [("var", offsets, b"ab")]
    parts.append(("block", _Sneaky(offsets, parts), b"cd"))
    with pytest.raises(ValueError, match="beyond the data"):
        native.copy_rows(parts, 1)
    offsets[1] = 2  # with offsets left alone, the emptied list changes nothing: parts were taken
    parts = [("var", offsets, b"ab")]
    parts.append(("block", _Sneaky(_offsets(0, 0), parts), b"cd"))
    assert native.copy_rows(parts, 1) == b"abcd"


#: the lowest value of each type that the shift to PostgreSQL's epoch keeps apart from its
#: -infinity: one less becomes -infinity, anything below wraps around (year 294247, +infinity)
FIRST_UNSHIFTED = {
    "timestamptz": (pa.timestamp("us", "UTC"), pa.int64(), -(2**63) + 946_684_800_000_000 + 1),
    "timestamp": (pa.timestamp("us"), pa.int64(), -(2**63) + 946_684_800_000_000 + 1),
    "date": (pa.date32(), pa.int32(), -(2**31) + 10_957 + 1),
}


@pytest.mark.parametrize("below", [1, 2, 10**9])
@pytest.mark.parametrize("pg_type", list(FIRST_UNSHIFTED))
def test_the_sink_never_wraps_a_date_or_timestamp_into_another_value(
    pg_url: str, schema: str, pg_type: str, below: int
) -> None:
    # shifted to PostgreSQL's epoch these values became -infinity or wrapped around (on the
    # compiled and the numpy path alike) into year 294247 or +infinity; PostgreSQL must
    # refuse them instead
    arrow_type, int_type, first = FIRST_UNSHIFTED[pg_type]
    full = {"timestamptz": "timestamp with time zone", "timestamp": "timestamp without time zone"}
    types = [full.get(pg_type, pg_type)]
    values = pa.array([0, max(first - below, -(2 ** (int_type.bit_width - 1)))], int_type)
    payload = pgcopy.copy_payload(pa.record_batch({"v": values.cast(arrow_type)}), types)
    assert payload.format == "csv"
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE {schema}.t (v {pg_type})")
        copy_sql = f"COPY {schema}.t FROM STDIN (FORMAT {payload.format})"
        with pytest.raises(psycopg.errors.DataError), conn.cursor().copy(copy_sql) as copy:
            for chunk in payload:
                copy.write(chunk)
        assert conn.execute(f"SELECT count(*) FROM {schema}.t").fetchone() == (0,)
    # the first value the shift keeps finite stays on the binary path
    edge = pa.record_batch({"v": pa.array([first], int_type).cast(arrow_type)})
    assert pgcopy.copy_payload(edge, types).format == "binary"
