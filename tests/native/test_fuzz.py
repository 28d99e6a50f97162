"""A bounded fuzz pass (hypothesis) over the compiled code, each target against a pure-Python
twin that must give the same bytes:

* the binary COPY decoder (``copy_decode``) on streams PostgreSQL itself produced for every
  type the reader takes (the seeds), mutated — bit flips, lengths rewritten, cuts, splices —
  and on generated streams, against :func:`reference_decode`;
* the binary COPY encoder, ``copy_rows`` on random parts against :func:`reference_copy_rows`,
  and ``pgcopy.copy_payload`` on random Arrow batches (sliced, with nulls) against its numpy
  path (``_speedups.native = None``), then decoded back;
* the replay comparison, ``copy_changed`` on generated payload and target streams (numerics
  with and without padding zeros, changed fields, NULLs, cuts, keys out of order) against
  :func:`reference_copy_changed`;
* the text scanners — ScrubPII's gates, email and phone rules, phone normalization, keyed
  tokens — against their Arrow/RE2/hashlib paths, and every string entry point on random,
  mostly inconsistent, offsets (a clean error or a result, never a stray access).

``ETL_EXPRESS_FUZZ_EXAMPLES`` sets the examples a test (default 40: seconds in the normal
run); ``test_sanitizers.py`` runs this file with more under AddressSanitizer and
UndefinedBehaviorSanitizer.
"""

from __future__ import annotations

import hashlib
import math
import os
import struct
import unicodedata
import uuid
from collections.abc import Iterator
from typing import Any

import numpy as np
import psycopg
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from etl_express import _speedups
from etl_express.anonymizers import ScrubPII
from etl_express.anonymizers.normalize import casefold, normalize_phone
from etl_express.anonymizers.textfold import special_rows
from etl_express.sinks import pgcopy
from etl_express.sources.sql import pgbinary

native = _speedups.native
pytestmark = pytest.mark.skipif(native is None, reason="etl_express._native was not built")

EXAMPLES = int(os.environ.get("ETL_EXPRESS_FUZZ_EXAMPLES", "40"))
fuzz = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# -- the decoder's pure-Python twin ---------------------------------------------------------

FIXED = {"h": 2, "i": 4, "f": 4, "D": 4, "q": 8, "d": 8, "T": 8, "b": 1, "u": 16}
STRINGS = "sjun"
KINDS = "hiqfdbDTsjunN"
DATE_RANGE = (-719_162 - 10_957, 2_932_896 - 10_957)  # days since 2000-01-01
TIMESTAMP_RANGE = (
    -62_135_596_800_000_000 - 946_684_800_000_000,
    253_402_300_799_999_999 - 946_684_800_000_000,
)


def _numeric_text(f: bytes) -> bytes | None:
    """PostgreSQL's numeric_out of a binary numeric; None when malformed."""
    if len(f) < 8:
        return None
    ndigits, weight, sign, dscale = struct.unpack(">HhHH", f[:8])
    if len(f) != 8 + 2 * ndigits:
        return None
    special = {0xC000: b"NaN", 0xD000: b"Infinity", 0xF000: b"-Infinity"}
    if sign in special:
        return special[sign]
    digits = struct.unpack(f">{ndigits}H", f[8:])
    if sign not in (0, 0x4000) or any(d >= 10000 for d in digits):
        return None

    def group(g: int) -> str:
        return f"{digits[g] if 0 <= g < ndigits else 0:04d}"

    whole = "".join(group(g) for g in range(weight + 1)).lstrip("0") or "0"
    text = ("-" if sign == 0x4000 else "") + whole
    if dscale:
        groups = -(-dscale // 4)
        text += "." + "".join(group(g) for g in range(weight + 1, weight + 1 + groups))[:dscale]
    return text.encode()


def _numeric_decimal(f: bytes, precision: int, scale: int) -> int | None:
    """A numeric's decimal128(precision, scale) value, as Arrow casts its text (unscaled); None
    where the decoder leaves that cast to judge: NaN, the infinities, more fraction digits
    than ``scale`` (the header's dscale), or ``precision`` exceeded."""
    text = _numeric_text(f)
    assert text is not None
    if text.lstrip(b"-")[:1] not in b"0123456789" or struct.unpack(">H", f[6:8])[0] > scale:
        return None
    whole, _, fraction = text.decode().lstrip("-").partition(".")  # dscale fraction digits
    if len(whole.lstrip("0")) > precision:  # (not a 131,072-digit int: a limit of Python's)
        return None
    value = int(whole + fraction) * 10 ** (scale - len(fraction))
    return (-value if text.startswith(b"-") else value) if value < 10**precision else None


def _flag(kind: str, raw: int) -> int:
    lo, hi = DATE_RANGE if kind == "D" else TIMESTAMP_RANGE
    half = 2**31 if kind == "D" else 2**63
    if raw in (half - 1, -half):
        return 1 if raw > 0 else -1
    return 2 if raw > hi else -2 if raw < lo else 0


def reference_decode(
    data: bytes, start: int, kinds: bytes, max_rows: int, decimals: bytes = b""
) -> tuple[Any, ...]:
    """What ``copy_decode`` must return, as (end, rows, finished, values by column, flagged
    quadruples); raises ValueError where it must. An 'N' column is its decimals' unscaled
    integers, or its numerics' texts when one of them is not a decimal the type holds."""
    ks = kinds.decode("latin-1")
    for c, k in enumerate(ks):
        if k not in KINDS:
            raise ValueError(f"unknown column kind {k}")
        if k != "N":
            continue
        if len(decimals) != 2 * len(ks):
            raise ValueError("decimals must have two bytes a column")
        p, s = decimals[2 * c], decimals[2 * c + 1]
        if not 1 <= p <= 38 or s > p:
            raise ValueError(f"column {c}: decimal128({p}, {s}) is not 0 <= s <= p <= 38")
    n, pos = len(data), start
    if start < 0 or start > n or max_rows < 0:
        raise ValueError("start or max_rows out of range")
    rows: list[list[Any]] = []
    flagged: list[int] = []
    finished = False

    def error(c: int, what: str) -> ValueError:
        return ValueError(f"binary COPY row {len(rows)}, column {c}: {what}")

    while len(rows) < max_rows:
        if n - pos < 2:
            break
        (count,) = struct.unpack_from(">h", data, pos)
        if count == -1:
            finished, pos = True, pos + 2
            break
        if count != len(ks):
            raise error(-1, "field count differs from the query's columns")
        p, row, row_flags, complete = pos + 2, [], [], True
        for c, k in enumerate(ks):
            if n - p < 4:
                complete = False
                break
            (flen,) = struct.unpack_from(">i", data, p)
            p += 4
            if flen == -1:
                row.append(None)
                continue
            if flen < 0:
                raise error(c, "negative field length")
            if n - p < flen:
                complete = False
                break
            if FIXED.get(k, flen) != flen:
                raise error(c, "field size differs from its type's")
            f = data[p : p + flen]
            p += flen
            if k == "j" and (flen < 1 or f[0] != 1):
                raise error(c, "unknown jsonb version")
            if k in "nN" and _numeric_text(f) is None:
                raise error(c, "malformed numeric")
            value: Any
            if k in "DT":
                raw = struct.unpack(">i" if k == "D" else ">q", f)[0]
                code = _flag(k, raw)
                if code:
                    row_flags += [len(rows), c, code, raw]
                    row.append(None)
                    continue
                value = raw + (10_957 if k == "D" else 946_684_800_000_000)
            elif k in "hiq":
                value = int.from_bytes(f, "big", signed=True)
            elif k in "fd":
                value = struct.unpack(">f" if k == "f" else ">d", f)[0]
            elif k == "b":
                value = f[0] != 0
            elif k == "s":
                value = f
            elif k == "j":
                value = f[1:]
            elif k == "u":
                value = str(uuid.UUID(bytes=f)).encode()
            elif k == "N":
                value = (_numeric_decimal(f, decimals[2 * c], decimals[2 * c + 1]), f)
            else:
                value = _numeric_text(f)
            row.append(value)
        if not complete:
            break
        pos = p
        rows.append(row)
        flagged += row_flags
    columns = [[r[c] for r in rows] for c in range(len(ks))]
    for c, k in enumerate(ks):
        if k == "N":  # (decimal or None, field) pairs: decimals, else the column's texts
            pairs = [v for v in columns[c] if v is not None]
            as_text = any(d is None for d, _ in pairs)
            columns[c] = [
                None if v is None else _numeric_text(v[1]) if as_text else v[0] for v in columns[c]
            ]
    return pos, len(rows), finished, columns, flagged


def native_decode(
    data: bytes, start: int, kinds: bytes, max_rows: int, decimals: bytes = b""
) -> tuple[Any, ...]:
    """``copy_decode``'s result in the reference's terms (Arrow buffers read back)."""
    end, rows, finished, columns, flagged = native.copy_decode(
        data, start, kinds, max_rows, decimals
    )
    out = []
    for k, col in zip(kinds.decode(), columns):
        valid_bits = col[-2]
        valid = (
            [True] * rows
            if valid_bits is None
            else [bool(valid_bits[i >> 3] >> (i & 7) & 1) for i in range(rows)]
        )
        assert col[-1] == valid.count(False), "null_count differs from the validity bitmap"
        if k in STRINGS or len(col) == 4:  # an 'N' column may come as text
            offsets = np.frombuffer(col[0], np.int32)
            assert len(offsets) == rows + 1 and offsets[0] == 0 and offsets[-1] == len(col[1])
            values: list[Any] = [bytes(col[1][offsets[i] : offsets[i + 1]]) for i in range(rows)]
        elif k == "b":
            values = [bool(col[0][i >> 3] >> (i & 7) & 1) for i in range(rows)]
        elif k == "N":  # decimal128: 16-byte little-endian two's complement
            assert len(col[0]) == 16 * rows
            values = [
                int.from_bytes(col[0][16 * i : 16 * i + 16], "little", signed=True)
                for i in range(rows)
            ]
        else:
            dtype = {"D": np.int32, "f": np.float64, "d": np.float64}.get(k, np.int64)
            values = np.frombuffer(col[0], dtype).tolist()
            assert len(values) == rows
        out.append([v if ok else None for v, ok in zip(values, valid)])
    quads = [] if flagged is None else list(struct.unpack(f"<{len(flagged) // 8}q", flagged))
    return end, rows, finished, out, quads


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or struct.pack("<d", a) == struct.pack("<d", b)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def check_decoder(
    data: bytes, start: int, kinds: bytes, max_rows: int, decimals: bytes = b""
) -> None:
    try:
        want = reference_decode(data, start, kinds, max_rows, decimals)
    except ValueError as exc:
        with pytest.raises(ValueError) as got:
            native.copy_decode(data, start, kinds, max_rows, decimals)
        assert str(got.value) == str(exc)
        return
    got = native_decode(data, start, kinds, max_rows, decimals)
    assert _same(got, want), (got, want)


# -- seeds: binary COPY streams from PostgreSQL for every type the reader takes -------------

SEED_COLUMNS = """
    id int, s smallint, b bigint, r real, d double precision, ok boolean, t text,
    v varchar(10), ch char(5), nm name, j json, jb jsonb, u uuid, dt date, ts timestamp,
    tz timestamptz, n numeric
"""
SEED_ROWS = """
    (1, -32768, 9223372036854775807, 1.5, -2.25, true, 'привет, мир', 'x', 'ab', 'nm',
     '{"a": 1}', '{"b": [1, 2], "c": "д"}', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
     '2024-02-29', '2024-01-01 12:00:00.123456', '1999-12-31 23:59:59.5+03', -1234.5),
    (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
     NULL, NULL),
    (3, 32767, -9223372036854775808, 'NaN', 'Infinity', false, '', '', '', '', 'null', 'null',
     '00000000-0000-0000-0000-000000000000', 'infinity', '-infinity', 'infinity', 'NaN'),
    (4, 0, 0, '-Infinity', -0.0, true, E'tab\\there', 'ü', 'é', 'x', '[]', '{}',
     'FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF', '10000-01-01', '294247-01-10 04:00:54.775808',
     '294276-12-31 23:59:59.999999+00', 'Infinity'),
    (5, 1, 1, 3.4e38, 1e-300, false, repeat('ж', 300), 'abcdefghij', 'abcde', 'n', '1',
     '[1, 2.5, "x"]', gen_random_uuid(), '4713-01-01 BC', '4713-01-01 00:00 BC',
     '0001-01-01 00:00+00', '-Infinity'),
    (6, -1, -1, 1e-45, -1e300, true, 'a', 'b', 'c', 'd', '{}', '{"k": null}',
     gen_random_uuid(), '9999-12-31', '9999-12-31 23:59:59.999999',
     '0001-12-31 23:59:59.999999+00 BC', 12345678901234567890.123456789012),
    (7, 2, 2, 0, 0, false, 'x', 'y', 'z', 'w', '0', '0', gen_random_uuid(), '0001-01-01',
     '1970-01-01', '2000-01-01 00:00+00', 0.000000001),
    (8, 3, 3, 1, 1, true, '€', '€', '€', '€', '"€"', '"€"', gen_random_uuid(),
     '5874897-12-31', '1969-12-31 23:59:59.999999', '2100-01-01 00:00+00', -0.0001000)
"""


@pytest.fixture(scope="module")
def seeds(pg_url: str) -> Iterator[list[tuple[bytes, bytes]]]:
    """(stream, kinds) pairs: PostgreSQL's binary COPY of the whole table, of each column
    alone and of each row alone, and of a few numerics."""
    schema = "fuzz_" + uuid.uuid4().hex[:10]
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
        try:
            conn.execute(f"CREATE TABLE {schema}.t ({SEED_COLUMNS})")
            conn.execute(f"INSERT INTO {schema}.t VALUES {SEED_ROWS}")
            queries = [f"SELECT * FROM {schema}.t ORDER BY id"]
            columns = [c.strip().split()[0] for c in SEED_COLUMNS.split(",")]
            queries += [f"SELECT {c} FROM {schema}.t ORDER BY id" for c in columns]
            queries += [f"SELECT * FROM {schema}.t WHERE id = {i}" for i in range(1, 9)]
            queries.append(
                "SELECT n FROM (VALUES (0::numeric), (1e-20), (-1e20), (123.4500), (1e131071), "
                "(0.1 ^ 16383), (9999.9999), (-0.5)) AS v(n)"
            )
            queries.append(  # as a numeric(12, 2) column holds them: dscale 2
                "SELECT n::numeric(12, 2) FROM (VALUES (0), (-0.5), (9999999999.99), "
                "(-1234.56), (NULL), (0.01), (100)) AS v(n)"
            )
            out = []
            for query in queries:
                cur = conn.execute(f"SELECT * FROM ({query}) AS q LIMIT 0")
                kinds = b"".join(pgbinary.KINDS[c.type_code] for c in cur.description or [])
                with conn.cursor().copy(f"COPY ({query}) TO STDOUT (FORMAT binary)") as copy:
                    stream = b"".join(bytes(chunk) for chunk in copy)
                out.append((stream, kinds))
            yield out
        finally:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


def test_seeds_decode_exactly(seeds: list[tuple[bytes, bytes]]) -> None:
    assert len(seeds) > 20
    for stream, kinds in seeds:
        want = reference_decode(stream, 19, kinds, 1000)
        assert want[2], "a seed is a whole stream, trailer included"
        check_decoder(stream, 19, kinds, 1000)
        for precision, scale in [(38, 12), (12, 2), (5, 5), (1, 0)]:  # numerics as decimal128
            check_decoder(
                stream, 19, kinds.replace(b"n", b"N"), 1000, bytes((precision, scale)) * len(kinds)
            )
    whole, kinds = seeds[0]
    _, _, _, _, flagged = reference_decode(whole, 19, kinds, 1000)
    assert set(flagged[2::4]) == {1, -1, 2, -2}  # every flag code is seeded


INTERESTING_INT32 = [-1, -2, 0, 1, 2, 4, 8, 16, 2**31 - 1, -(2**31), 0x7FFF0000, 1 << 16]


@st.composite
def mutated_seed(
    draw: st.DrawFn, seeds: list[tuple[bytes, bytes]]
) -> tuple[bytes, int, bytes, int, bytes]:
    stream, kinds = draw(st.sampled_from(seeds))
    data = bytearray(stream)
    for _ in range(draw(st.integers(1, 4))):
        pos = draw(st.integers(19, max(19, len(data) - 1)))
        op = draw(st.sampled_from(["flip", "byte", "int32", "cut", "delete", "insert", "splice"]))
        if op == "flip" and pos < len(data):
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "byte" and pos < len(data):
            data[pos] = draw(st.integers(0, 255))
        elif op == "int32":
            data[pos : pos + 4] = struct.pack(">i", draw(st.sampled_from(INTERESTING_INT32)))
        elif op == "cut":
            del data[pos:]
        elif op == "delete":
            del data[pos : pos + draw(st.integers(1, 16))]
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=16))
        elif op == "splice":
            other, _ = draw(st.sampled_from(seeds))
            at = draw(st.integers(19, len(other)))
            data[pos:] = other[at:]
    if draw(st.booleans()):
        k = bytearray(kinds)
        k[draw(st.integers(0, len(k) - 1))] = ord(draw(st.sampled_from(KINDS)))
        kinds = bytes(k)
    if draw(st.booleans()):  # numerics as decimal128
        kinds = kinds.replace(b"n", b"N")
    start = draw(st.sampled_from([19, 19, 19, 0, 21, len(data)]))
    decimals = draw(decimal_types(len(kinds)))
    return bytes(data), start, kinds, draw(st.sampled_from([1000, 1000, 0, 1, 3])), decimals


def test_decoder_on_mutated_postgresql_streams(seeds: list[tuple[bytes, bytes]]) -> None:
    @fuzz
    @given(mutated_seed(seeds))
    def run(case: tuple[bytes, int, bytes, int, bytes]) -> None:
        check_decoder(*case)

    run()


FIELD_VALUES: dict[str, st.SearchStrategy[bytes]] = {
    "h": st.integers(-(2**15), 2**15 - 1).map(lambda v: struct.pack(">h", v)),
    "i": st.integers(-(2**31), 2**31 - 1).map(lambda v: struct.pack(">i", v)),
    "q": st.integers(-(2**63), 2**63 - 1).map(lambda v: struct.pack(">q", v)),
    "f": st.binary(min_size=4, max_size=4),
    "d": st.binary(min_size=8, max_size=8),
    "b": st.binary(min_size=1, max_size=1),
    "D": st.one_of(
        st.sampled_from([2**31 - 1, -(2**31), *DATE_RANGE, DATE_RANGE[0] - 1, DATE_RANGE[1] + 1]),
        st.integers(-(2**31), 2**31 - 1),
    ).map(lambda v: struct.pack(">i", v)),
    "T": st.one_of(
        st.sampled_from(
            [
                2**63 - 1,
                -(2**63),
                *TIMESTAMP_RANGE,
                TIMESTAMP_RANGE[0] - 1,
                TIMESTAMP_RANGE[1] + 1,
                2**63 - 1 - 946_684_800_000_000,
                2**63 - 946_684_800_000_000,
            ]
        ),
        st.integers(-(2**63), 2**63 - 1),
    ).map(lambda v: struct.pack(">q", v)),
    "s": st.binary(max_size=40),
    "j": st.binary(max_size=20).map(lambda b: b"\x01" + b),
    "u": st.binary(min_size=16, max_size=16),
    "n": st.tuples(
        st.lists(st.integers(0, 9999), max_size=6),
        st.integers(-8, 8),
        st.sampled_from([0, 0x4000, 0x4000, 0xC000, 0xD000, 0xF000]),
        st.integers(0, 40),
    ).map(lambda t: struct.pack(f">HhHH{len(t[0])}H", len(t[0]), t[1], t[2], t[3], *t[0])),
}
#: numerics mostly of the kind a numeric(p, s) column holds (dscale <= s, few digits)
FIELD_VALUES["N"] = st.one_of(
    FIELD_VALUES["n"],
    st.tuples(
        st.lists(st.integers(0, 9999), max_size=10),
        st.integers(-3, 9),
        st.sampled_from([0, 0x4000]),
        st.integers(0, 6),
    ).map(lambda t: struct.pack(f">HhHH{len(t[0])}H", len(t[0]), t[1], t[2], t[3], *t[0])),
)


@st.composite
def decimal_types(draw: st.DrawFn, columns: int) -> bytes:
    """(precision, scale) for each of ``columns`` columns: mostly valid, some not."""
    out = b""
    for _ in range(columns):
        precision = draw(st.one_of(st.integers(1, 38), st.sampled_from([0, 39, 255])))
        scale = draw(st.one_of(st.integers(0, max(precision, 0)), st.integers(0, 255)))
        out += bytes((precision, scale))
    return out if draw(st.integers(0, 9)) else out[:-1]  # a wrong length, now and then


@st.composite
def generated_stream(draw: st.DrawFn) -> tuple[bytes, int, bytes, int, bytes]:
    kinds = draw(st.text(alphabet=KINDS, min_size=1, max_size=6))
    data = b""
    for _ in range(draw(st.integers(0, 6))):
        data += struct.pack(">h", len(kinds))
        for k in kinds:
            field = draw(st.one_of(st.none(), FIELD_VALUES[k], st.binary(max_size=10)))
            data += (
                struct.pack(">i", -1) if field is None else struct.pack(">i", len(field)) + field
            )
    if draw(st.booleans()):
        data += b"\xff\xff"
    cut = draw(st.integers(0, len(data)))
    if draw(st.booleans()):
        data = data[:cut]
    decimals = draw(decimal_types(len(kinds)))
    return data, 0, kinds.encode(), draw(st.sampled_from([1000, 2, 1])), decimals


@fuzz
@given(generated_stream())
def test_decoder_on_generated_streams(case: tuple[bytes, int, bytes, int, bytes]) -> None:
    check_decoder(*case)


# -- the encoder ------------------------------------------------------------------------------


def _bit(buf: bytes | None, i: int) -> bool:
    return buf is None or bool(buf[i >> 3] >> (i & 7) & 1)


def reference_copy_rows(parts: list[tuple[Any, ...]], rows: int) -> bytes:
    """What ``copy_rows`` must write for consistent parts (see ``_native.c``)."""
    out = bytearray()
    null = struct.pack(">i", -1)
    for i in range(rows):
        for part in parts:
            kind = part[0]
            if kind == "const":
                out += part[1]
            elif kind == "block":
                width, buf = part[1], bytes(part[2])
                out += buf[i * width : (i + 1) * width]
            elif kind == "var":
                off, data = part[1], bytes(part[2])
                out += data[off[i] : off[i + 1]]
            elif kind == "text":
                off, data, valid, bit, prefix = part[1], bytes(part[2]), part[3], part[4], part[5]
                value = data[off[i] : off[i + 1]]
                out += (
                    struct.pack(">i", len(prefix) + len(value)) + prefix + value
                    if _bit(valid, bit + i)
                    else null
                )
            elif kind == "int":
                width, out_width, values, first, valid, bit, delta = part[1:]
                if not _bit(valid, bit + i):
                    out += null
                    continue
                at = (first + i) * width
                v = int.from_bytes(bytes(values[at : at + width]), "little", signed=True) + delta
                out += struct.pack(">i", out_width) + (v % 2 ** (8 * out_width)).to_bytes(
                    out_width, "big"
                )
            else:  # bool
                values, valid, bit = part[1], part[2], part[3]
                out += (
                    struct.pack(">ib", 1, _bit(values, bit + i)) if _bit(valid, bit + i) else null
                )
    return bytes(out)


@st.composite
def copy_parts(draw: st.DrawFn) -> tuple[list[tuple[Any, ...]], int]:
    rows = draw(st.integers(0, 12))
    bit = draw(st.integers(0, 9))
    need = (bit + rows + 7) // 8
    bitmap = st.one_of(st.none(), st.binary(min_size=need, max_size=need + 2))
    parts: list[tuple[Any, ...]] = []
    for _ in range(draw(st.integers(1, 5))):
        kind = draw(st.sampled_from(["const", "block", "var", "text", "int", "bool"]))
        if kind == "const":
            parts.append(("const", draw(st.binary(max_size=4))))
        elif kind == "block":
            width = draw(st.integers(1, 6))
            parts.append(
                ("block", width, draw(st.binary(min_size=width * rows, max_size=width * rows + 3)))
            )
        elif kind in ("var", "text"):
            lengths = draw(st.lists(st.integers(0, 5), min_size=rows, max_size=rows))
            skip = draw(st.integers(0, 3))
            offsets = np.cumsum([skip, *lengths]).astype(np.int32)
            data = draw(st.binary(min_size=int(offsets[-1]), max_size=int(offsets[-1]) + 2))
            if kind == "var":
                parts.append(("var", offsets, data))
            else:
                parts.append(
                    (
                        "text",
                        offsets,
                        data,
                        draw(bitmap),
                        bit,
                        draw(st.sampled_from([b"", b"\x01"])),
                    )
                )
        elif kind == "int":
            width = draw(st.sampled_from([1, 2, 4, 8]))
            first = draw(st.integers(0, 3))
            half = 2 ** (8 * width - 1)  # integers, the extremes often: where sums overflow
            value = st.one_of(
                st.sampled_from([-half, 1 - half, half - 1, -1]), st.integers(-half, half - 1)
            )
            ints = draw(st.lists(value, min_size=first + rows, max_size=first + rows + 1))
            values = b"".join(v.to_bytes(width, "little", signed=True) for v in ints)
            delta = draw(
                st.sampled_from(
                    [0, 1, -1, -10_957, -946_684_800_000_000, 2**62, -(2**63), 2**63 - 1]
                )
            )
            parts.append(
                (
                    "int",
                    width,
                    draw(st.sampled_from([2, 4, 8])),
                    values,
                    first,
                    draw(bitmap),
                    bit,
                    delta,
                )
            )
        else:
            values = draw(st.binary(min_size=need, max_size=need + 2))
            parts.append(("bool", values, draw(bitmap), bit))
    return parts, rows


@fuzz
@given(copy_parts())
def test_copy_rows_writes_what_its_reference_does(case: tuple[list[tuple[Any, ...]], int]) -> None:
    parts, rows = case
    assert native.copy_rows(parts, rows) == reference_copy_rows(parts, rows)


@st.composite
def arrow_batches(draw: st.DrawFn) -> tuple[pa.RecordBatch, list[str], bytes]:
    n = draw(st.integers(0, 30))

    def column(values: st.SearchStrategy[Any]) -> list[Any]:
        return draw(st.lists(st.one_of(st.none(), values), min_size=n, max_size=n))

    text = st.text(alphabet="aЖ€ \t'\"\\,{}😀\x00", max_size=12).map(
        lambda s: s.replace("\x00", "")
    )
    columns = {
        "i64": (pa.array(column(st.integers(-(2**63), 2**63 - 1)), pa.int64()), "bigint", b"q"),
        "i32": (pa.array(column(st.integers(-(2**31), 2**31 - 1)), pa.int32()), "integer", b"i"),
        "i16": (pa.array(column(st.integers(-(2**15), 2**15 - 1)), pa.int16()), "smallint", b"h"),
        "i8": (pa.array(column(st.integers(-128, 127)), pa.int8()), "integer", b"i"),
        "flag": (pa.array(column(st.booleans()), pa.bool_()), "boolean", b"b"),
        "text": (pa.array(column(text), pa.string()), "text", b"s"),
        "json": (pa.array(column(text), pa.string()), "jsonb", b"j"),
        "day": (
            pa.array(column(st.integers(-(2**31), 2**31 - 1)), pa.int32()).cast(pa.date32()),
            "date",
            b"D",
        ),
        "at": (
            pa.array(column(st.integers(-(2**63), 2**63 - 1)), pa.int64()).cast(
                pa.timestamp("us", "UTC")
            ),
            "timestamp with time zone",
            b"T",
        ),
    }
    names = draw(st.lists(st.sampled_from(sorted(columns)), min_size=1, max_size=5, unique=True))
    batch = pa.record_batch({name: columns[name][0] for name in names})
    start = draw(st.integers(0, n))
    batch = batch.slice(start, draw(st.integers(0, n - start)))
    return batch, [columns[name][1] for name in names], b"".join(columns[name][2] for name in names)


@fuzz
@given(arrow_batches())
def test_copy_payload_native_equals_numpy_and_decodes_back(
    case: tuple[pa.RecordBatch, list[str], bytes],
) -> None:
    batch, types, kinds = case
    payload = pgcopy.copy_payload(batch, types, slice_bytes=256)
    if payload.format != "binary":  # only where a date or timestamp would wrap around
        lowest = {"D": -(2**31) + 10_957, "T": -(2**63) + 946_684_800_000_000}
        as_int = {"D": pa.int32(), "T": pa.int64()}
        assert any(
            k in lowest
            and min(v for v in [*col.cast(as_int[k]).to_pylist(), 0] if v is not None) <= lowest[k]
            for k, col in zip(kinds.decode(), batch.columns)
        )
        return
    fast = b"".join(bytes(c) for c in payload)
    with pytest.MonkeyPatch.context() as m:
        m.setattr(_speedups, "native", None)
        slow = b"".join(bytes(c) for c in pgcopy.copy_payload(batch, types, slice_bytes=256))
    assert fast == slow
    # and the decoder reads back every value the encoder wrote (dates and timestamps shifted
    # by the epochs, wrapping as the encoder does; out-of-range ones flagged, not returned)
    end, rows, finished, columns, flagged = reference_decode(fast, 19, kinds, batch.num_rows + 1)
    assert (end, rows, finished) == (len(fast), batch.num_rows, True)
    assert native_decode(fast, 19, kinds, batch.num_rows + 1) == (
        end,
        rows,
        finished,
        columns,
        flagged,
    )
    for k, col, values in zip(kinds.decode(), batch.columns, columns):
        if k in "DT":
            ints = col.cast(pa.int32() if k == "D" else pa.int64()).to_pylist()
            lo, hi = DATE_RANGE if k == "D" else TIMESTAMP_RANGE
            shift = 10_957 if k == "D" else 946_684_800_000_000
            assert all(v is None or v == i for v, i in zip(values, ints))
            assert all(
                v == i for v, i in zip(values, ints) if i is not None and lo <= i - shift <= hi
            )
            continue
        expected = col.to_pylist()
        if k in "sj":
            expected = [None if v is None else v.encode() for v in expected]
        assert values == expected


# -- the text scanners ----------------------------------------------------------------------

TEXT_ALPHABET = (
    "0123456789" * 3
    + " \t\n-()+@._%"
    + "abz.ru.com"
    + "паспортсерияивыданПАСПОРТСЕРИЯВЫДАН"
    + "\u1c80\u1c82\u1c83\u1c84ё€😀é"
    + "\u00a0\u2009\u2011\u2013\u2212\uff15\U0001d7ce\ue000"  # folded look-alikes, a marker
)
texts = st.lists(
    st.one_of(st.none(), st.text(alphabet=TEXT_ALPHABET, max_size=60)), min_size=0, max_size=25
)


def _without_native(fn: Any, *args: Any) -> Any:
    with pytest.MonkeyPatch.context() as m:
        m.setattr(_speedups, "native", None)
        return fn(*args)


@fuzz
@given(texts, st.integers(0, 5))
def test_text_scanners_native_equal_pure_python(values: list[str | None], skip: int) -> None:
    arr = pa.array(values, pa.string()).slice(min(skip, len(values)))
    scrub = ScrubPII(["notes"])
    assert scrub.scrub(arr).equals(_without_native(scrub.scrub, arr))
    assert normalize_phone(arr).equals(_without_native(normalize_phone, arr))
    assert special_rows(arr).equals(_without_native(special_rows, arr))
    assert casefold(arr).to_pylist() == [  # NFKC, then Unicode case folding
        None if v is None else unicodedata.normalize("NFKC", v).casefold() for v in arr.to_pylist()
    ]
    offsets, data = _speedups.string_buffers(arr)
    key = b"fuzz-key-0123456789abcdef"
    tokens = native.blake2b_tokens(key, 16, b"t:", offsets, len(arr), data)
    raw = [b"" if v is None else v.encode() for v in arr.to_pylist()]
    assert tokens == b"".join(
        b"t:" + hashlib.blake2b(v, key=key, digest_size=16).hexdigest().encode() for v in raw
    )


STRING_ENTRY_POINTS = {
    "blake2b_tokens": lambda o, r, d: native.blake2b_tokens(b"k" * 16, 8, b"", o, r, d),
    "phone_e164": lambda o, r, d: native.phone_e164(o, r, d),
    "replace_ascii_emails": lambda o, r, d: native.replace_ascii_emails(o, r, d, b"<E>"),
    "replace_program": lambda o, r, d: native.replace_program(
        o, r, d, b"\x01\x01" + bytes([0, 1, 3]) + b"\xff" * 32, b"\xff" * 32, 1, b"<X>"
    ),
    "scrub_gates": lambda o, r, d: native.scrub_gates(o, r, d),
    "special_rows": lambda o, r, d: native.special_rows(o, r, d, b"\xff" * 8),
    "digit_runs": lambda o, r, d: native.digit_runs(o, r, d, 3),
    "rows_containing": lambda o, r, d: native.rows_containing(o, r, d, b"00"),
    "scrub_gates_special": lambda o, r, d: native.scrub_gates(o, r, d, b"\xff" * 8),
    "rows_with_words": lambda o, r, d: native.rows_with_words(o, r, d, b"a\0b", b"0"),
}


@fuzz
@given(
    st.sampled_from(sorted(STRING_ENTRY_POINTS)),
    st.lists(st.sampled_from([-1, 0, 1, 2, 3, 5, 8, 13, 2**31 - 1, -(2**31)]), max_size=8),
    st.integers(-2, 10),
    st.binary(max_size=16),
)
def test_string_entry_points_on_random_offsets(
    entry: str, offsets: list[int], rows: int, data: bytes
) -> None:
    try:
        STRING_ENTRY_POINTS[entry](np.array(offsets, dtype=np.int32), rows, data)
    except (ValueError, OverflowError):
        pass


# -- the replay comparison ----------------------------------------------------------------------

_END = object()


class _Rows:
    """Rows of a binary COPY stream as ``copy_changed`` reads them."""

    def __init__(self, data: bytes):
        if len(data) < 19 or data[:11] != pgcopy.COPY_SIGNATURE:
            raise ValueError("not a binary COPY stream")
        ext = int.from_bytes(data[15:19], "big")
        if ext > len(data) - 19:
            raise ValueError("not a binary COPY stream")
        self.data, self.pos, self.done = data, 19 + ext, False

    def next(self, nfields: int) -> list[bytes | None] | None:
        data, pos = self.data, self.pos
        if self.done:
            return None
        if len(data) - pos < 2:
            self.done = True
            if pos != len(data):
                raise ValueError("malformed")
            return None
        (n,) = struct.unpack_from(">h", data, pos)
        pos += 2
        if n == -1:
            self.done, self.pos = True, pos
            return None
        if n != nfields:
            raise ValueError("malformed")
        fields: list[bytes | None] = []
        for _ in range(nfields):
            if len(data) - pos < 4:
                raise ValueError("malformed")
            (length,) = struct.unpack_from(">i", data, pos)
            pos += 4
            if length < -1 or length > len(data) - pos:
                raise ValueError("malformed")
            fields.append(None if length < 0 else data[pos : pos + length])
            pos += max(length, 0)
        self.pos = pos
        return fields


def _key_value(field: bytes | None) -> int:
    if field is None or len(field) not in (2, 4, 8):
        raise ValueError("key")
    return int.from_bytes(field, "big", signed=True)


def _numeric_core(field: bytes) -> tuple[int, int, int, int, bytes] | None:
    if len(field) < 8:
        return None
    n, weight, sign, dscale = struct.unpack_from(">HhHH", field)
    if len(field) != 8 + 2 * n:
        return None
    digits = list(struct.unpack_from(f">{n}H", field, 8))
    while digits and digits[0] == 0:
        digits.pop(0)
        weight -= 1
    while digits and digits[-1] == 0:
        digits.pop()
    if not digits:
        weight = 0
        sign = sign if sign & 0xC000 == 0xC000 else 0
    return len(digits), weight, sign, dscale, bytes(struct.pack(f">{len(digits)}H", *digits))


def _same_field(how: int, a: bytes | None, b: bytes | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if how == ord("n"):
        ca, cb = _numeric_core(a), _numeric_core(b)
        return ca is not None and cb is not None and ca == cb
    return a == b


def reference_copy_changed(payload: bytes, existing: bytes, compare: bytes, key: int) -> bytes:
    """What ``copy_changed`` must return (or raise) for these streams."""
    compared = [f for f, how in enumerate(compare) if how]
    if not 1 <= len(compare) <= 1600 or not 0 <= key < len(compare) or not compare[key]:
        raise ValueError("the compared fields must include the key")
    pay, old = _Rows(payload), _Rows(existing)
    key_at = compared.index(key)
    out = bytearray()
    current: Any = None  # None: nothing read yet; _END: no more target rows
    prev: int | None = None
    while (row := pay.next(len(compare))) is not None:
        k = _key_value(row[key])
        if prev is not None and k <= prev:
            raise ValueError("not rising")
        prev = k
        while current is None or (current is not _END and current[0] < k):
            orow = old.next(len(compared))
            if orow is None:
                current = _END
                break
            nk = _key_value(orow[key_at])
            if current is not None and nk <= current[0]:
                raise ValueError("unordered")
            current = (nk, orow)
        same = (
            current is not _END
            and current[0] == k
            and all(_same_field(compare[f], row[f], current[1][j]) for j, f in enumerate(compared))
        )
        out.append(0 if same else 1)
    return bytes(out)


@st.composite
def replay_case(draw: st.DrawFn) -> tuple[bytes, bytes, bytes, int]:
    """A payload and a target sharing some keys and values (numerics padded or not, fields
    changed, NULLs) and now and then a stream cut short or keys out of order."""
    nfields = draw(st.integers(1, 4))
    key = draw(st.integers(0, nfields - 1))
    compare = bytearray(draw(st.sampled_from([0, 1, ord("n")])) for _ in range(nfields))
    compare[key] = 1
    width = draw(st.sampled_from([">h", ">i", ">q"]))
    keys = sorted(set(draw(st.lists(st.integers(-(2**15), 2**15 - 1), max_size=8))))
    numeric = FIELD_VALUES["n"]

    def value(how: int) -> bytes | None:
        if how == ord("n"):
            return draw(st.one_of(st.none(), numeric))
        return draw(st.one_of(st.none(), st.binary(max_size=6)))

    def padded(field: bytes | None) -> bytes | None:  # leading/trailing zero digits added
        if field is None or len(field) < 8 or not draw(st.booleans()):
            return field
        n, weight, sign, dscale = struct.unpack_from(">HhHH", field)
        lead, trail = draw(st.integers(0, 2)), draw(st.integers(0, 2))
        digits = b"\x00\x00" * lead + field[8:] + b"\x00\x00" * trail
        return struct.pack(">HhHH", n + lead + trail, weight + lead, sign, dscale) + digits

    payload_rows, target_rows = [], []
    for k in keys:
        fields = [value(compare[f]) for f in range(nfields)]
        fields[key] = struct.pack(width, k)
        if draw(st.booleans()):
            payload_rows.append(
                [padded(v) if compare[f] == ord("n") else v for f, v in enumerate(fields)]
            )
        if draw(st.booleans()):
            old = [
                v if draw(st.integers(0, 3)) else value(compare[f]) for f, v in enumerate(fields)
            ]
            old[key] = fields[key]
            target_rows.append([v for f, v in enumerate(old) if compare[f]])
    if draw(st.integers(0, 9)) == 0 and len(payload_rows) > 1:
        payload_rows.reverse()
    payload = _COPY_HEADER + b"".join(_copy_row(r) for r in payload_rows) + b"\xff\xff"
    existing = _COPY_HEADER + b"".join(_copy_row(r) for r in target_rows) + b"\xff\xff"
    if draw(st.integers(0, 9)) == 0:
        existing = existing[: draw(st.integers(0, len(existing)))]
    if draw(st.integers(0, 9)) == 0:
        payload = payload[: draw(st.integers(0, len(payload)))]
    return payload, existing, bytes(compare), key


_COPY_HEADER = pgcopy.COPY_SIGNATURE + b"\x00" * 8


def _copy_row(fields: list[bytes | None]) -> bytes:
    out = struct.pack(">h", len(fields))
    for f in fields:
        out += struct.pack(">i", -1) if f is None else struct.pack(">i", len(f)) + f
    return out


@fuzz
@given(replay_case())
def test_copy_changed_does_what_its_reference_does(case: tuple[bytes, bytes, bytes, int]) -> None:
    try:
        expected: bytes | type[ValueError] = reference_copy_changed(*case)
    except ValueError:
        expected = ValueError
    if expected is ValueError:
        with pytest.raises(ValueError):
            native.copy_changed(*case)
    else:
        assert native.copy_changed(*case) == expected
