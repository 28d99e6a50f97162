"""Dates and timestamps the common format cannot hold (issue 14, finding 8): PostgreSQL's
largest timestamps (294247–294276 AD) used to overflow the epoch shift and decode as year
−28134. On every PostgreSQL reader path — the compiled binary COPY reader, ADBC and the SQLAlchemy
path (``fast_path=False``) — every
value outside 0001-01-01 .. 9999-12-31 23:59:59.999999 (and ±infinity) sends its row to
quarantine with PostgreSQL's text for the value; the values at the boundaries and the other
rows land exactly."""

from __future__ import annotations

import random
import struct

import psycopg
import pytest

from etl_express import Pipeline
from etl_express.errors import SourceError
from etl_express.sinks import PostgresSink
from etl_express.sources import SQLSource
from etl_express.sources.sql import datetimes, pgbinary
from tests.conftest import pg_exec
from tests.sources.sql.test_pgbinary import require_binary_reader

# (date, timestamp) texts as PostgreSQL takes them; None where the row keeps a plain value
INSIDE = [
    ("0001-01-01", "0001-01-01 00:00:00"),
    ("9999-12-31", "9999-12-31 23:59:59.999999"),
    ("1970-01-01", "1970-01-01 00:00:00"),
    ("2000-01-01", "2000-01-01 00:00:00"),
]
OUTSIDE_DATES = ["10000-01-01", "0001-12-31 BC", "4713-01-01 BC", "5874897-12-31", "infinity"]
OUTSIDE_TIMESTAMPS = [
    "10000-01-01 00:00:00",
    "0001-12-31 23:59:59.999999 BC",
    "4713-01-01 00:00:00 BC",
    "294247-01-10 04:00:54.775806",  # the last int64 microseconds since 1970 hold
    "294247-01-10 04:00:54.775807",
    "294247-01-10 04:00:54.775808",  # the first that overflowed the shift (-> year -28134)
    "294276-12-31 23:59:59.999999",  # PostgreSQL's last
    "-infinity",
]


@pytest.fixture(params=["binary", "adbc", "sqlalchemy"])
def through(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "binary":
        require_binary_reader()
    else:
        monkeypatch.setattr(pgbinary, "available", lambda: False)
    return request.param


def _fast(through: str) -> bool:
    """``fast_path=`` for a reader path: False is the SQLAlchemy path (psycopg rows)."""
    return through != "sqlalchemy"


def _table(pg_url: str, schema: str) -> dict[int, tuple[str, str, str]]:
    """A table of plain rows with the boundary values among them; id -> (d, t, tz) as set."""
    pg_exec(
        pg_url,
        f"CREATE TABLE {schema}.dates (id int PRIMARY KEY, d date, t timestamp, "
        "tz timestamptz, note text)",
    )
    pg_exec(
        pg_url,
        f"INSERT INTO {schema}.dates SELECT g, date '2024-01-01' + g, "
        f"timestamp '2024-01-01' + g * interval '1 hour', "
        f"timestamptz '2024-01-01 00:00+00' + g * interval '1 minute', 'n' || g "
        "FROM generate_series(1, 60) g",
    )
    values = {}
    rows = [(d, t, t) for d, t in INSIDE]
    rows += [(d, None, None) for d in OUTSIDE_DATES]
    rows += [(None, t, None) for t in OUTSIDE_TIMESTAMPS]
    rows += [(None, None, t) for t in OUTSIDE_TIMESTAMPS]
    for n, (d, t, tz) in enumerate(rows):
        row = 3 + 2 * n  # spread over the batches, between plain rows
        sets = [f"{c} = %s" for c, v in (("d", d), ("t", t), ("tz", tz)) if v is not None]
        params = [
            v if c != "tz" else f"{v}+00".replace(" BC+00", "+00 BC") if "inf" not in v else v
            for c, v in (("d", d), ("t", t), ("tz", tz))
            if v is not None
        ]
        pg_exec(pg_url, f"UPDATE {schema}.dates SET {', '.join(sets)} WHERE id = {row}", params)
        values[row] = (d, t, tz)
    return values


def test_out_of_range_dates_and_timestamps_go_to_quarantine_on_both_paths(
    pg_url: str, schema: str, pipeline_name: str, through: str
) -> None:
    values = _table(pg_url, schema)
    outside = {
        row
        for row, (d, t, tz) in values.items()
        if d in OUTSIDE_DATES or t in OUTSIDE_TIMESTAMPS or tz in OUTSIDE_TIMESTAMPS
    }
    assert len(outside) == len(OUTSIDE_DATES) + 2 * len(OUTSIDE_TIMESTAMPS)
    pipeline = Pipeline(
        pipeline_name,
        SQLSource(
            pg_url,
            table=f"{schema}.dates",
            primary_key="id",
            batch_size=16,
            fast_path=_fast(through),
        ),
        sink=PostgresSink(table=f"{schema}.copy"),
        progress=False,
        max_error_rate=0.5,
    )
    result = pipeline.run()
    assert (result.rows_read, result.rows_written, result.rows_quarantined) == (
        60,
        60 - len(outside),
        len(outside),
    )
    # every other row landed exactly, the boundary values included
    src = "SELECT id, d::text, {}::text, tz::text, note FROM {} ORDER BY id"
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("SET TimeZone = 'UTC'")
        source_rows = conn.execute(src.format("t", f"{schema}.dates")).fetchall()
        # a timestamp lands as the timestamp it is declared as, its wall time unchanged
        target_rows = conn.execute(src.format("t", f"{schema}.copy")).fetchall()
        stored = conn.execute(
            "SELECT (record->>'id')::int, record->>'d', record->>'t', record->>'tz', stage, reason "
            "FROM etl_express.quarantine WHERE pipeline = %s ORDER BY 1",
            (pipeline_name,),
        ).fetchall()
    assert target_rows == [r for r in source_rows if r[0] not in outside]
    assert {r[0] for r in target_rows} >= {3, 5, 7, 9}  # the boundary rows
    # each quarantined row holds PostgreSQL's text (UTC) of the value it could not carry
    by_id = {r[0]: r for r in source_rows}
    assert [r[0] for r in stored] == sorted(outside)
    for row_id, d, t, tz, stage, reason in stored:
        _, src_d, src_t, src_tz, _ = by_id[row_id]
        assert stage == "source"
        if values[row_id][0] is not None:
            assert d == src_d
            assert reason.startswith("column 'd': ")
        elif values[row_id][1] is not None:
            assert t == (src_t if "inf" in src_t else _with_utc(src_t))
            assert reason.startswith("column 't': ")
        else:
            assert tz == src_tz
            assert reason.startswith("column 'tz': ")
        assert "no value in the common format; map it in the source query" in reason
        for value in (d, t, tz):  # never the value in the reason
            assert value is None or "inf" in value or value.split(" ")[0] not in reason
    reasons = {r[0]: r[5] for r in stored}
    after, before = (
        min(r for r, v in values.items() if v[0] == "10000-01-01"),
        min(r for r, v in values.items() if v[0] == "4713-01-01 BC"),
    )
    assert "a date after 9999-12-31, the last the common format holds" in reasons[after]
    assert "LEAST(d, '9999-12-31')" in reasons[after]
    assert "GREATEST(d, '0001-01-01')" in reasons[before]
    # a re-run reads nothing again
    again = pipeline.run()
    assert (again.rows_read, again.rows_quarantined) == (0, 0)


def _with_utc(text: str) -> str:
    return text[:-3] + "+00 BC" if text.endswith(" BC") else text + "+00"


@pytest.mark.parametrize(
    "value", ["10000-01-01 00:00+00", "294250-06-01 00:00+00", "0100-01-01 BC"]
)
def test_an_out_of_range_ordering_value_is_a_clear_error(
    pg_url: str, schema: str, through: str, value: str
) -> None:
    pg_exec(pg_url, f"CREATE TABLE {schema}.events (id int PRIMARY KEY, updated_at timestamptz)")
    pg_exec(pg_url, f"INSERT INTO {schema}.events VALUES (1, '2024-01-01'), (2, %s)", (value,))
    source = SQLSource(
        pg_url,
        table=f"{schema}.events",
        primary_key="id",
        cursor="updated_at",
        fast_path=_fast(through),
    )
    direction = "before 0001-01-01" if "BC" in value else "after 9999-12-31"
    with pytest.raises(
        SourceError, match=f"ordering column 'updated_at' holds a timestamp {direction}"
    ):
        list(source.read())


def test_pg_text_is_postgresql_s_own_for_any_raw_value(pg_url: str, schema: str) -> None:
    # raw values (days / microseconds since 2000-01-01) across PostgreSQL's whole range, sent
    # to PostgreSQL as binary COPY; its ::text must be what quarantine writes
    rng = random.Random(14)
    days = [-2451545, -730120, -730119, 2921939, 2921940, 2145031948]
    days += [rng.randrange(-2451545, 2145031949) for _ in range(200)]
    micros = [-211813488000000000, -63082281600000001, 252455616000000000]
    micros += [9223371331199999999, 9222425352054775807, 9222425352054775808]
    micros += [rng.randrange(-211813488000000000, 9223371331200000000) for _ in range(200)]
    micros += [
        rng.randrange(-(10**11), 10**11) * 10**6 + rng.choice([0, 5, 500000, 120])
        for _ in range(50)
    ]
    n = max(len(days), len(micros))
    days += [0] * (n - len(days))
    micros += [0] * (n - len(micros))
    stream = b"PGCOPY\n\xff\r\n\x00" + bytes(8)
    for d, us in zip(days, micros):
        stream += struct.pack(">hiiiq", 2, 4, d, 8, us)
    stream += b"\xff\xff"
    pg_exec(pg_url, f"CREATE TABLE {schema}.raw (d date, tz timestamptz)")
    with psycopg.connect(pg_url, autocommit=True) as conn:
        with conn.cursor().copy(f"COPY {schema}.raw FROM STDIN (FORMAT binary)") as copy:
            copy.write(stream)
        conn.execute("SET TimeZone = 'UTC'")
        texts = conn.execute(f"SELECT d::text, tz::text FROM {schema}.raw").fetchall()
    for d, us, (d_text, tz_text) in zip(days, micros, texts):
        assert datetimes.pg_text("D", 2, d) == d_text, d
        assert datetimes.pg_text("T", 2, us) == tz_text, us
