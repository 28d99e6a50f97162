"""The compiled binary COPY reader (``sources/sql/pgbinary.py`` + ``_copyread.c``) against a
real PostgreSQL: the same values as the ADBC path for every type it takes, PostgreSQL's own
text for numerics, exact batches and resumes, and a hand-over to ADBC — from the right row —
for what it does not take."""

# detect_pii="off" below: these tests load made-up people raw on purpose (not what they
# test); the personal-data detector has its own tests (tests/anonymizers/test_detection.py)

from __future__ import annotations

import datetime
import decimal
import math
import os
import random
import struct

import pyarrow as pa
import pytest
from loguru import logger

from etl_express import Pipeline
from etl_express._speedups import native
from etl_express.sinks import PostgresSink
from etl_express.sources import SQLSource
from etl_express.sources.sql import pgbinary
from tests.conftest import pg_exec


def require_binary_reader() -> None:
    """Skip without the compiled reader, except in CI (ETL_EXPRESS_REQUIRE_NATIVE=1), where
    it must be there."""
    if pgbinary.available():
        return
    if os.environ.get("ETL_EXPRESS_REQUIRE_NATIVE") == "1":
        pytest.fail(
            "the compiled binary COPY reader is not available (extension or libpq not found)"
        )
    pytest.skip("etl_express._native was not built or libpq was not located")


@pytest.fixture(autouse=True)
def _binary_reader() -> None:
    require_binary_reader()


ALL_TYPES = """
    id int PRIMARY KEY, s smallint, b bigint, r real, d double precision, ok boolean,
    t text, v varchar(10), ch char(5), nm name, j json, jb jsonb, u uuid, dt date,
    ts timestamp, tz timestamptz, n numeric(12,3), nu numeric
"""
ALL_VALUES = """
    (1, -32768, 9223372036854775807, 1.5, -2.25, true, 'привет, мир', 'x', 'ab', 'nm',
     '{"a": 1}', '{"b": [1, 2], "c": "д"}', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '2024-02-29',
     '2024-01-01 12:00:00.123456', '1999-12-31 23:59:59.5+03', -1234.5, 3.14159),
    (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
    (3, 32767, -9223372036854775808, 'NaN', 'Infinity', false, '', '', '', '', 'null', 'null',
     '00000000-0000-0000-0000-000000000000', '0001-01-01', '1900-01-01', '2100-01-01 00:00+00', 0,
     12345678901234567890.123456789012),
    (4, 0, 0, '-Infinity', -0.0, true, E'tab\\there', 'ü', 'é', 'x', '[]', '{}',
     'FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF', '1969-12-31', '1970-01-01', '1960-06-15 08:30:00+00',
     0.001, 'NaN')
"""


def _rows(source: SQLSource) -> tuple[pa.Schema, list[dict[str, object]]]:
    table = pa.Table.from_batches([b.data for b in source.read()])
    return table.schema, table.to_pylist()


def test_every_type_reads_as_on_the_adbc_path(
    pg_url: str, schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    pg_exec(pg_url, f"CREATE TABLE {schema}.all_types ({ALL_TYPES})")
    pg_exec(pg_url, f"INSERT INTO {schema}.all_types VALUES {ALL_VALUES}")
    opened: list[bytes] = []
    real_open = pgbinary.open_reader

    def spy(
        url: str,
        query: str,
        described: list[tuple[str, int]] | None = None,
        types: dict[str, pa.DataType] | None = None,
    ) -> pgbinary.BinaryCopyReader | None:
        reader = real_open(url, query, described, types)
        opened.append(reader.kinds if reader else b"")
        # the plan's own description is handed over (no second one), and it is the one
        # describing the statement again gives: the same kinds and names
        assert described is not None
        again = real_open(url, query, types=types)
        if reader is None or again is None:  # the binary reader is off (below)
            assert reader is again is None
        else:
            assert (again.kinds, again.names) == (reader.kinds, reader.names)
            again.close()
        return reader

    monkeypatch.setattr(pgbinary, "open_reader", spy)
    source = SQLSource(pg_url, table=f"{schema}.all_types", primary_key="id", batch_size=3)
    binary_schema, binary_rows = _rows(source)
    # real is selected as double precision (its text read as float8: SQLSource._exact_text)
    # numeric(12,3) decoded as decimal128(12, 3) ('N'), the unconstrained one as its text
    assert opened == [b"ihqddbsssssjuDTTNn"], "the binary reader was not used"
    monkeypatch.setattr(pgbinary, "available", lambda: False)
    adbc_schema, adbc_rows = _rows(
        SQLSource(pg_url, table=f"{schema}.all_types", primary_key="id", batch_size=3)
    )
    assert binary_schema == adbc_schema
    for got, want in zip(binary_rows, adbc_rows, strict=True):
        for name in want:
            g, w = got[name], want[name]
            if isinstance(w, float) and math.isnan(w):
                assert isinstance(g, float) and math.isnan(g), name
            else:
                assert (g, type(g)) == (w, type(w)), name
    assert binary_rows[0]["u"] == "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"
    assert binary_rows[3]["u"] == "ffffffff-ffff-ffff-ffff-ffffffffffff"
    assert binary_rows[3]["ch"] == "é    "  # bpchar keeps its padding, as PostgreSQL sends it


def test_numeric_text_is_postgresql_s_own(pg_url: str, schema: str) -> None:
    rng = random.Random(11)
    values = [
        "0",
        "-0.000",
        "1e-20",
        "123456789012345678901234567890.5",
        "0.0001",
        "10000",
        "-9999.9999",
        "NaN",
        "Infinity",
        "-Infinity",
        "100000000",
        "0.00001000",
        "1.10",
        "-1",
    ]
    values += [
        f"{rng.choice('-+')}{rng.randrange(10 ** rng.randrange(0, 30))}.{rng.randrange(10**12):0{rng.randrange(0, 16)}d}"
        for _ in range(400)
    ]
    values += [f"{rng.randrange(1, 10**6)}e{rng.randrange(-30, 30)}" for _ in range(200)]
    pg_exec(pg_url, f"CREATE TABLE {schema}.nums (id int PRIMARY KEY, n numeric)")
    with_ids = [(i, v) for i, v in enumerate(values)]
    pg_exec(
        pg_url,
        f"INSERT INTO {schema}.nums SELECT * FROM unnest(%s::int[], %s::numeric[])",
        ([i for i, _ in with_ids], [v for _, v in with_ids]),
    )
    reader = pgbinary.open_reader(pg_url, f"SELECT n, n::text AS t FROM {schema}.nums ORDER BY id")
    assert reader is not None and reader.kinds == b"ns"
    try:
        table = pa.Table.from_batches([rows for rows, _ in reader.batches(64)])
    finally:
        reader.close()
    assert table.num_rows == len(values)
    assert table.column("n").to_pylist() == table.column("t").to_pylist()


DECIMAL_COLUMNS = (
    "id int PRIMARY KEY, a numeric(12,2), w numeric(38,0), f numeric(38,38), t numeric(10,5)"
)
NINES = "9" * 38
DECIMAL_ROWS = [  # zero, negative, each type's widest value, fewer digits than the scale
    "(1, 0, 0, 0, 0)",
    "(2, -0.00, -1, -0.5, -0.00001)",
    f"(3, 9999999999.99, {NINES}, 0.{NINES}, 99999.99999)",
    f"(4, -9999999999.99, -{NINES}, -0.{NINES}, 1.1)",  # 1.1: trailing zeros to 1.10000
    "(5, 0.01, 1, 0.00000000000000000000000000000000000001, 12345)",
    "(6, NULL, NULL, NULL, NULL)",
    "(7, -1234.5, 100000000000000000000000000000000000, 0.1, 0.001)",
]


def test_numeric_p_s_is_decoded_into_the_decimal_the_cast_gives(pg_url: str, schema: str) -> None:
    pg_exec(pg_url, f"CREATE TABLE {schema}.dec ({DECIMAL_COLUMNS})")
    pg_exec(pg_url, f"INSERT INTO {schema}.dec VALUES {', '.join(DECIMAL_ROWS)}")
    opened: list[bytes] = []
    real_open = pgbinary.open_reader

    def spy(*args: object, **kwargs: object) -> pgbinary.BinaryCopyReader | None:
        reader = real_open(*args, **kwargs)  # type: ignore[arg-type]
        opened.append(reader.kinds if reader else b"")
        return reader

    source = SQLSource(pg_url, table=f"{schema}.dec", primary_key="id", batch_size=3)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(pgbinary, "open_reader", spy)
        binary_schema, binary_rows = _rows(source)
    assert opened == [b"iNNNN"], "the numerics were not decoded as decimals"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(pgbinary, "available", lambda: False)
        adbc_schema, adbc_rows = _rows(source)
    assert binary_schema == adbc_schema
    assert [f.type for f in binary_schema][1:] == [
        pa.decimal128(12, 2),
        pa.decimal128(38, 0),
        pa.decimal128(38, 38),
        pa.decimal128(10, 5),
    ]
    assert binary_rows == adbc_rows
    texts = pg_exec(
        pg_url, f"SELECT a::text, w::text, f::text, t::text FROM {schema}.dec ORDER BY id"
    )
    for row, text in zip(binary_rows, texts, strict=True):
        got = [row[c] for c in "awft"]
        want = [None if t is None else decimal.Decimal(t) for t in text]
        assert got == want
        assert [g and g.as_tuple().exponent for g in got] == [  # the scale too: 1.10000
            w and w.as_tuple().exponent for w in want
        ]


def test_a_decimal_batch_with_a_value_the_cast_must_judge_is_read_as_text() -> None:
    """NaN, the infinities, more fraction digits than the scale or past the precision: the
    batch's column comes as its numerics' text (for the source's cast, as before), the
    columns and batches without one as decimals."""
    assert native is not None

    def numeric(sign: int, weight: int, dscale: int, *digits: int) -> bytes:
        return struct.pack(f">HhHH{len(digits)}H", len(digits), weight, sign, dscale, *digits)

    fits = numeric(0x4000, 0, 2, 12, 3400)  # -12.34
    for odd, text in [
        (numeric(0xC000, 0, 0), b"NaN"),
        (numeric(0xD000, 0, 0), b"Infinity"),
        (numeric(0xF000, 0, 0), b"-Infinity"),
        (numeric(0, -1, 3, 10), b"0.001"),  # more fraction digits than the scale
        (numeric(0, -1, 3, 1000), b"0.100"),  # the same, only zeros past it: Arrow judges
        (numeric(0, 0, 0, 1000), b"1000"),  # past decimal128(5, 2)
    ]:
        data = _row(fits, fits) + _row(odd, fits) + _row(None, fits)
        _, rows, _, columns, _ = native.copy_decode(data, 0, b"NN", 10, bytes((5, 2, 5, 2)))
        assert rows == 3
        _, texts, _, nulls = columns[0]  # text, as PostgreSQL writes it
        assert (bytes(texts), nulls) == (b"-12.34" + text, 1)
        values, valid, nulls = columns[1]
        assert (bytes(values), valid, nulls) == (
            (-1234).to_bytes(16, "little", signed=True) * 3,
            None,
            0,
        )
    # the same values in another batch: decimals again
    _, rows, _, columns, _ = native.copy_decode(_row(fits), 0, b"N", 10, bytes((5, 2)))
    assert len(columns[0]) == 3


@pytest.mark.parametrize(
    ("kinds", "decimals", "message"),
    [
        (b"N", b"", "two bytes a column"),
        (b"qN", bytes((5, 2)), "two bytes a column"),
        (b"N", bytes((0, 0)), r"decimal128\(0, 0\) is not"),
        (b"N", bytes((39, 2)), r"decimal128\(39, 2\) is not"),
        (b"N", bytes((5, 6)), r"decimal128\(5, 6\) is not"),
    ],
)
def test_decoder_refuses_decimals_it_cannot_hold(
    kinds: bytes, decimals: bytes, message: str
) -> None:
    assert native is not None
    with pytest.raises(ValueError, match=message):
        native.copy_decode(b"", 0, kinds, 10, decimals)


def copying(url: str, table: str, name: str, *, batch_size: int) -> Pipeline:
    """A pipeline loading ``table`` into ``copy`` of its schema, a few bad rows quarantined."""
    return Pipeline(
        name,
        SQLSource(url, table=table, primary_key="id", batch_size=batch_size),
        sink=PostgresSink(table=f"{table.partition('.')[0]}.copy"),
        progress=False,
        max_error_rate=0.1,
        detect_pii="off",
    )


@pytest.mark.parametrize("through", ["binary", "adbc"])
def test_a_nan_in_a_numeric_p_s_is_quarantined_on_both_paths(
    pg_url: str, schema: str, pipeline_name: str, through: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if through == "adbc":
        monkeypatch.setattr(pgbinary, "available", lambda: False)
    pg_exec(pg_url, f"CREATE TABLE {schema}.bal (id int PRIMARY KEY, amount numeric(12,2))")
    pg_exec(
        pg_url,
        f"INSERT INTO {schema}.bal SELECT g, CASE WHEN g = 7 THEN 'NaN' ELSE g * 1.25 END "
        "FROM generate_series(1, 20) g",
    )
    pipeline = copying(pg_url, f"{schema}.bal", pipeline_name, batch_size=5)
    result = pipeline.run()
    assert (result.rows_read, result.rows_written, result.rows_quarantined) == (20, 19, 1)
    assert pg_exec(
        pg_url, f"SELECT id, amount::text FROM {schema}.copy WHERE id IN (6, 8, 20) ORDER BY id"
    ) == [
        (6, "7.50"),
        (8, "10.00"),
        (20, "25.00"),
    ]
    stored = pg_exec(
        pg_url,
        "SELECT (record->>'id')::int, reason FROM etl_express.quarantine WHERE pipeline = %s",
        (pipeline_name,),
    )
    assert [r[0] for r in stored] == [7]
    assert stored[0][1].startswith("column 'amount': NaN has no value in decimal(12,2)")


def test_batches_positions_and_resume_are_exact(pg_url: str, schema: str) -> None:
    pg_exec(pg_url, f"CREATE TABLE {schema}.seq (id bigint PRIMARY KEY, name text)")
    pg_exec(pg_url, f"INSERT INTO {schema}.seq SELECT g, 'n' || g FROM generate_series(1, 20) g")
    source = SQLSource(pg_url, table=f"{schema}.seq", primary_key="id", batch_size=7)
    batches = list(source.read())
    assert [b.data.num_rows for b in batches] == [7, 7, 6]
    assert [b.position for b in batches] == [{"key": [7]}, {"key": [14]}, {"key": [20]}]
    rest = list(source.read(batches[0].position))
    assert [i for b in rest for i in b.data.column("id").to_pylist()] == list(range(8, 21))
    assert list(source.read(batches[-1].position)) == []


def test_a_value_it_does_not_take_hands_over_to_adbc_from_that_batch(
    pg_url: str, schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # PostgreSQL never sends a malformed field, so the decoder is made to refuse the second
    # batch (the one stand-in in this file): the read must go on through ADBC from its first row
    pg_exec(pg_url, f"CREATE TABLE {schema}.days (id int PRIMARY KEY, day date)")
    pg_exec(
        pg_url,
        f"INSERT INTO {schema}.days SELECT g, date '2024-01-01' + g FROM generate_series(1, 30) g",
    )
    calls = []

    class Refusing:
        def __getattr__(self, name: str) -> object:
            return getattr(native, name)

        def copy_decode(self, *args: object) -> object:
            calls.append(1)
            if len(calls) == 2:
                raise ValueError("binary COPY row 0, column 1: field size differs from its type's")
            return native.copy_decode(*args)

    monkeypatch.setattr(pgbinary, "native", Refusing())
    source = SQLSource(pg_url, table=f"{schema}.days", primary_key="id", batch_size=10)
    seen: list[str] = []  # the library's loguru logger, as configure_logging's handlers see it
    handler = logger.add(lambda m: seen.append(m.record["message"]), level="INFO")
    logger.enable("etl_express")
    try:
        batches = list(source.read())
    finally:
        logger.disable("etl_express")
        logger.remove(handler)
    ids = [i for b in batches for i in b.data.column("id").to_pylist()]
    assert ids == list(range(1, 31)), "rows lost or read twice at the hand-over"
    assert [b.data.num_rows for b in batches] == [10, 10, 10]
    message = " ".join(seen)
    assert "through ADBC" in message and "row 0, column 1: field size differs" in message
    days = pa.chunked_array([b.data.column("day") for b in batches]).cast(pa.int32()).to_pylist()
    first = (datetime.date(2024, 1, 2) - datetime.date(1970, 1, 1)).days
    assert days == list(range(first, first + 30))


@pytest.mark.parametrize("through", ["binary", "adbc"])
def test_infinite_dates_and_timestamps_go_to_quarantine(
    pg_url: str, schema: str, pipeline_name: str, through: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if through == "adbc":
        monkeypatch.setattr(pgbinary, "available", lambda: False)
    pg_exec(
        pg_url,
        f"CREATE TABLE {schema}.valid (id int PRIMARY KEY, until date, seen timestamptz, note text)",
    )
    pg_exec(
        pg_url,
        f"INSERT INTO {schema}.valid SELECT g, date '2024-01-01' + g, "
        f"timestamptz '2024-01-01 00:00+00' + g * interval '1 hour', 'n' || g FROM generate_series(1, 40) g",
    )
    pg_exec(pg_url, f"UPDATE {schema}.valid SET until = 'infinity' WHERE id IN (3, 10)")
    pg_exec(pg_url, f"UPDATE {schema}.valid SET seen = '-infinity' WHERE id IN (10, 27)")
    pipeline = copying(pg_url, f"{schema}.valid", pipeline_name, batch_size=10)
    result = pipeline.run()
    assert (result.rows_read, result.rows_written, result.rows_quarantined) == (40, 37, 3)
    landed = {r[0] for r in pg_exec(pg_url, f"SELECT id FROM {schema}.copy")}
    assert landed == set(range(1, 41)) - {3, 10, 27}
    assert pg_exec(
        pg_url, f"SELECT count(*) FROM {schema}.copy WHERE until IS NULL OR seen IS NULL"
    ) == [(0,)]
    stored = pg_exec(
        pg_url,
        "SELECT (record->>'id')::int, record->>'until', record->>'seen', stage, reason "
        "FROM etl_express.quarantine WHERE pipeline = %s ORDER BY 1",
        (pipeline_name,),
    )
    assert [(r[0], r[1], r[2], r[3]) for r in stored] == [
        (3, "infinity", "2024-01-01T03:00:00+00:00", "source"),
        (10, "infinity", "-infinity", "source"),
        (27, "2024-01-28", "-infinity", "source"),
    ]
    assert stored[0][4].startswith(
        "column 'until': PostgreSQL's infinity date: no value in the common format"
    )
    assert stored[1][4].startswith(
        "column 'until': PostgreSQL's infinity date, column 'seen': PostgreSQL's "
        "-infinity timestamp: no value"
    )
    assert "NULLIF(seen, '-infinity')" in stored[2][4]
    # a re-run reads nothing again: the positions went past the quarantined rows
    again = pipeline.run()
    assert (again.rows_read, again.rows_quarantined) == (0, 0)


@pytest.mark.parametrize("through", ["binary", "adbc"])
def test_an_infinite_ordering_value_is_a_clear_error(
    pg_url: str, schema: str, through: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from etl_express.errors import SourceError

    if through == "adbc":
        monkeypatch.setattr(pgbinary, "available", lambda: False)

    pg_exec(pg_url, f"CREATE TABLE {schema}.events (id int PRIMARY KEY, updated_at timestamptz)")
    pg_exec(pg_url, f"INSERT INTO {schema}.events VALUES (1, '2024-01-01'), (2, 'infinity')")
    source = SQLSource(pg_url, table=f"{schema}.events", primary_key="id", cursor="updated_at")
    with pytest.raises(
        SourceError, match="ordering column 'updated_at' holds PostgreSQL's infinity"
    ):
        list(source.read())


def test_column_types_it_does_not_take_read_through_adbc_as_text(pg_url: str, schema: str) -> None:
    pg_exec(
        pg_url,
        f"CREATE TABLE {schema}.odd (id int PRIMARY KEY, span interval, addr inet, at time, "
        "u uuid)",
    )
    pg_exec(
        pg_url,
        f"INSERT INTO {schema}.odd VALUES (1, '1 day 02:00', '10.0.0.1', '12:30', "
        "'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'), (2, NULL, NULL, NULL, NULL)",
    )
    assert pgbinary.open_reader(pg_url, f"SELECT * FROM {schema}.odd") is None
    batches = list(SQLSource(pg_url, table=f"{schema}.odd", primary_key="id").read())
    assert [b.data.to_pylist() for b in batches] == [
        [
            {
                "id": 1,
                "span": "1 day 02:00:00",
                "addr": "10.0.0.1/32",
                "at": "12:30:00",
                "u": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
            },
            {"id": 2, "span": None, "addr": None, "at": None, "u": None},
        ]
    ]


def test_an_error_during_the_copy_is_raised_not_swallowed(pg_url: str, schema: str) -> None:
    import psycopg

    pg_exec(pg_url, f"CREATE TABLE {schema}.div (id int PRIMARY KEY)")
    pg_exec(pg_url, f"INSERT INTO {schema}.div SELECT generate_series(1, 50)")
    reader = pgbinary.open_reader(
        pg_url, f"SELECT id, 1 / (id - 40) AS x FROM {schema}.div ORDER BY id"
    )
    assert reader is not None
    got = 0
    with pytest.raises(psycopg.errors.DivisionByZero):
        try:
            for batch, _ in reader.batches(10):
                got += batch.num_rows
        finally:
            reader.close()
    assert got <= 40


def test_a_connection_lost_mid_stream_raises_a_transient_error(pg_url: str, schema: str) -> None:
    import uuid

    from etl_express.retry import is_transient

    pg_exec(pg_url, f"CREATE TABLE {schema}.big (id int PRIMARY KEY, pad text)")
    pg_exec(
        pg_url,
        f"INSERT INTO {schema}.big SELECT g, repeat('x', 500) FROM generate_series(1, 100000) g",
    )
    app = "etl_pgbinary_" + uuid.uuid4().hex[:8]
    url = pg_url + ("&" if "?" in pg_url else "?") + f"application_name={app}"
    reader = pgbinary.open_reader(url, f"SELECT * FROM {schema}.big ORDER BY id")
    assert reader is not None
    got = 0
    with pytest.raises(Exception) as err:
        try:
            for batch, _ in reader.batches(1000):
                if got == 0:  # 50 MB are still on the server's side: end its backend
                    assert (
                        pg_exec(
                            pg_url,
                            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                            "WHERE application_name = %s",
                            (app,),
                        )[0][0]
                        == 1
                    )
                got += batch.num_rows
        finally:
            reader.close()
    assert got < 100_000
    assert is_transient(err.value), repr(err.value)


def test_pipeline_postgres_to_postgres_through_the_binary_reader(
    pg_url: str, schema: str, pipeline_name: str
) -> None:
    pg_exec(pg_url, f"CREATE TABLE {schema}.all_types ({ALL_TYPES})")
    pg_exec(pg_url, f"INSERT INTO {schema}.all_types VALUES {ALL_VALUES}")
    # one batch: an unconstrained numeric is decimal128 where every value fits, else text
    pipeline = Pipeline(
        pipeline_name,
        SQLSource(pg_url, table=f"{schema}.all_types", primary_key="id", batch_size=4),
        sink=PostgresSink(table=f"{schema}.copy"),
        progress=False,
        detect_pii="off",
    )
    assert pipeline.run().rows_written == 4
    cols = "id, s, b, r::text, d::text, ok, t, v, ch, nm, j::text, jb::text, u::text, dt, ts, tz, n, nu::text"
    copied = pg_exec(pg_url, f"SELECT {cols} FROM {schema}.copy ORDER BY id")
    original = pg_exec(pg_url, f"SELECT {cols} FROM {schema}.all_types ORDER BY id")
    assert copied == original  # a timestamp lands as the timestamp it is declared as


# -- the decoder on hand-made bytes ----------------------------------------------------------


def _row(*fields: bytes | None) -> bytes:
    out = struct.pack(">h", len(fields))
    for f in fields:
        out += struct.pack(">i", -1) if f is None else struct.pack(">i", len(f)) + f
    return out


def test_decoder_keeps_a_partial_row_for_the_next_read() -> None:
    assert native is not None
    data = _row(struct.pack(">q", 5), b"abc") + _row(struct.pack(">q", 6), b"de")
    cut = len(data) - 3
    end, rows, finished, _, flagged = native.copy_decode(data[:cut], 0, b"qs", 100)
    assert flagged is None
    assert (rows, finished) == (1, False) and end == len(_row(struct.pack(">q", 5), b"abc"))
    end2, rows2, finished2, _, _ = native.copy_decode(data + struct.pack(">h", -1), end, b"qs", 100)
    assert (rows2, finished2, end2) == (1, True, len(data) + 2)


@pytest.mark.parametrize(
    ("data", "kinds", "message"),
    [
        (_row(b"\x00\x01"), b"q", "row 0, column 0: field size differs"),
        (
            _row(struct.pack(">q", 1)) + _row(struct.pack(">q", 1), b"x"),
            b"q",
            "row 1, column -1: field count differs",
        ),
        (_row(b"\x02{}"), b"j", "row 0, column 0: unknown jsonb version"),
        (_row(b"\x00\x05\x00\x00"), b"n", "row 0, column 0: malformed numeric"),
    ],
)
def test_decoder_names_the_row_and_column_of_bad_input(
    data: bytes, kinds: bytes, message: str
) -> None:
    assert native is not None
    with pytest.raises(ValueError, match=message):
        native.copy_decode(data, 0, kinds, 100)


def test_decoder_reads_back_what_the_sink_s_encoder_writes() -> None:
    """The sink's binary COPY encoder and the reader's decoder agree value for value (both are
    also checked against PostgreSQL above): ints, text, dates, timestamps, booleans, numerics."""
    import datetime as dt
    import decimal

    from etl_express.format import TIMESTAMP
    from etl_express.sinks.pgcopy import binary_payload

    assert native is not None
    rng = random.Random(4)
    n = 3_000
    start = dt.datetime(1900, 1, 1, tzinfo=dt.timezone.utc)
    batch = pa.record_batch(
        {
            "id": pa.array(
                [rng.randrange(-(2**63), 2**63) if i % 11 else None for i in range(n)], pa.int64()
            ),
            "name": pa.array(
                [
                    None
                    if i % 13 == 0
                    else "".join(rng.choice("abcЖЁ€ \t") for _ in range(rng.randrange(20)))
                    for i in range(n)
                ]
            ),
            "day": pa.array(
                [dt.date(1, 1, 1) + dt.timedelta(days=rng.randrange(3_000_000)) for _ in range(n)]
            ),
            "at": pa.array(
                [start + dt.timedelta(microseconds=rng.randrange(2**52)) for _ in range(n)],
                TIMESTAMP,
            ),
            "ok": pa.array([None if i % 7 == 0 else bool(i % 2) for i in range(n)]),
            "amount": pa.array(
                [decimal.Decimal(rng.randrange(-(10**14), 10**14)).scaleb(-2) for _ in range(n)],
                pa.decimal128(16, 2),
            ),
        }
    )
    chunks = binary_payload(
        batch, ["bigint", "text", "date", "timestamp with time zone", "boolean", "numeric"]
    )
    assert chunks is not None
    data = b"".join(bytes(c) for c in chunks)  # header, rows and the trailer
    start_at = 19
    end, rows, finished, columns, flagged = native.copy_decode(data, start_at, b"qsDTbn", n + 10)
    assert flagged is None
    assert (end, rows, finished) == (len(data), n, True)
    reader = pgbinary.BinaryCopyReader(None, "", b"qsDTbn", batch.schema.names)
    decoded = reader._batch(rows, columns)
    for name in ["id", "name", "day", "at", "ok"]:
        assert decoded.column(name).equals(batch.column(name)), name
    assert decoded.column("amount").to_pylist() == [
        str(v) for v in batch.column("amount").to_pylist()
    ]


def test_decoder_reports_infinite_dates_and_timestamps_as_nulls_with_their_sign() -> None:
    assert native is not None
    big, small = struct.pack(">i", 2**31 - 1), struct.pack(">i", -(2**31))
    data = (
        _row(struct.pack(">i", 5), big, struct.pack(">q", 0))
        + _row(struct.pack(">i", 6), struct.pack(">i", 1), None)
        + _row(struct.pack(">i", 7), small, struct.pack(">q", -(2**63)))
        + _row(None, None, struct.pack(">q", 2**63 - 1))
    )
    _, rows, _, columns, flagged = native.copy_decode(data, 0, b"iDT", 100)
    assert rows == 4
    assert list(struct.unpack("<16q", flagged)) == [
        *(0, 1, 1, 2**31 - 1),
        *(2, 1, -1, -(2**31)),
        *(2, 2, -1, -(2**63)),
        *(3, 2, 1, 2**63 - 1),
    ]
    reader = pgbinary.BinaryCopyReader(None, "", b"iDT", ["id", "day", "at"])
    batch = reader._batch(rows, columns)
    assert batch.column("day").is_null().to_pylist() == [True, False, True, True]
    assert batch.column("at").is_null().to_pylist() == [False, True, True, True]
