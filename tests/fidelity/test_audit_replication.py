"""The copy answers the same SQL: schemas the other replication tests do not cover (MariaDB's
DECIMAL(40,10), BIGINT UNSIGNED at 2**64 - 1, BOOLEAN with NULLs, BIT, YEAR, TIME beyond a
day and negative, BLOB, generated columns, emoji, composite and foreign keys, empty tables;
PostgreSQL's unconstrained numeric, interval, arrays, domains, ranges, jsonb, inet, bytea,
partitioned and inherited tables) replicated with ``etl.Replication``, then the same analytic
query run on the source and on the copy must give the same rows. Where PostgreSQL has no type
with the source's semantics (case-insensitive collations, ENUM order, citext, money, names the
common format snake_cases) the replication says so in its log before it runs."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from loguru import logger

import etl_express as etl
from etl_express.replication.fidelity import differences
from etl_express.sinks import PostgresSink
from etl_express.sources import SQLDatabase
from etl_express.store.database import engine_for
from tests.conftest import pg_exec

MARIA_DDL = (
    """CREATE TABLE {p}_items (id INT PRIMARY KEY, d DECIMAL(40,10), u BIGINT UNSIGNED,
       flag BOOLEAN, ti TINYINT, bits BIT(5), y YEAR, tm TIME(3), dt DATETIME(6), da DATE,
       c CHAR(5), v VARCHAR(20), emo VARCHAR(10), bl BLOB, vb VARBINARY(8), j JSON,
       f FLOAT, dd DOUBLE, g INT AS (id * 2) STORED, gv INT AS (id + 1) VIRTUAL)""",
    (
        "CREATE TABLE {p}_lines (item INT, n SMALLINT, qty DECIMAL(12,2), ship DATE, "
        "PRIMARY KEY (item, n), FOREIGN KEY (item) REFERENCES {p}_items (id))"
    ),
    "CREATE TABLE {p}_empty (id INT PRIMARY KEY, x VARCHAR(3), b BLOB, t TIME)",
    """INSERT INTO {p}_items (id, d, u, flag, ti, bits, y, tm, dt, da, c, v, emo, bl, vb, j, f, dd)
       VALUES
       (1, 123456789012345678901234567890.0123456789, 18446744073709551615, 1, 100, b'10101',
        1999, '-01:30:00.5', '2024-03-10 02:30:00.123456', '2024-02-29', 'ab', 'ab', '😀x',
        X'00FF10', X'41', '{{"b": 1, "a": [1, 2]}}', 1.1, 0.1),
       (2, -0.0000000001, 9223372036854775808, 0, -5, b'00001', 2024, '100:00:00',
        '1999-12-31 23:59:59.999999', '2000-01-01', 'ABC', 'abc', 'abc', X'', X'6162', '[]',
        2.5, 1e300),
       (3, NULL, 0, NULL, 0, NULL, NULL, '23:59:59', NULL, NULL, '', '', NULL, NULL, NULL,
        'null', NULL, NULL),
       (4, 5, 1, 1, 127, b'11111', 2155, '00:00:01', '2024-01-01 00:00:00', '1970-01-01',
        'b', 'b', 'é', X'FF', X'FF', '"s"', -0.5, -2.25)""",
    (
        "INSERT INTO {p}_lines VALUES (1, 1, 10.50, '2024-03-01'), (1, 2, 0.25, '2024-04-15'), "
        "(2, 1, 3.00, '1999-12-31'), (4, 1, 99999.99, '2024-03-31')"
    ),
)

#: (source SQL on MariaDB, the same question on the copy): same rows expected
MARIA_QUERIES = (
    ("SELECT id, flag FROM {s}{p}_items ORDER BY id", None),
    ("SELECT count(*) FROM {s}{p}_items WHERE flag IS NULL", None),
    ("SELECT sum(d), sum(u), max(u), min(d) FROM {s}{p}_items", None),
    ("SELECT id FROM {s}{p}_items ORDER BY tm, id", None),
    ("SELECT id FROM {s}{p}_items WHERE tm > '24:00:00' OR tm < '00:00:00' ORDER BY id", None),
    ("SELECT id, length(bl), length(vb) FROM {s}{p}_items ORDER BY id", None),
    (  # the literal differs (X'..' is a bit string in PostgreSQL), the question does not
        "SELECT id FROM {s}{p}_items WHERE vb = X'6162' OR bl = X'00FF10' ORDER BY id",
        "SELECT id FROM {s}{p}_items WHERE vb = '\\x6162' OR bl = '\\x00ff10' ORDER BY id",
    ),
    (  # NULLs sort first in MariaDB, last in PostgreSQL: the copy's query says which
        "SELECT id FROM {s}{p}_items ORDER BY bl, id",
        "SELECT id FROM {s}{p}_items ORDER BY bl NULLS FIRST, id",
    ),
    ("SELECT id, bits + 0, y, ti, g, gv FROM {s}{p}_items ORDER BY id", None),
    ("SELECT id, emo, char_length(emo) FROM {s}{p}_items ORDER BY id", None),
    ("SELECT id, f, dd FROM {s}{p}_items ORDER BY id", None),
    ("SELECT id FROM {s}{p}_items WHERE c = 'ab' ORDER BY id", None),
    (
        "SELECT id, CAST(dt AS CHAR) FROM {s}{p}_items WHERE dt >= '2000-01-01' ORDER BY id",
        (
            "SELECT id, to_char(dt, 'YYYY-MM-DD HH24:MI:SS.US') FROM {s}{p}_items "
            "WHERE dt >= '2000-01-01' ORDER BY id"
        ),
    ),
    (
        (
            "SELECT id, da + INTERVAL 1 MONTH, datediff(da, '2000-01-01') FROM {s}{p}_items "
            "ORDER BY id"
        ),
        (
            "SELECT id, (da + INTERVAL '1 month')::date, da - date '2000-01-01' FROM {s}{p}_items "
            "ORDER BY id"
        ),
    ),
    # a join over the foreign key, grouping, a date range, extract and substring
    (
        (
            "SELECT i.id, count(*), sum(l.qty), min(l.ship) FROM {s}{p}_items i "
            "JOIN {s}{p}_lines l ON l.item = i.id "
            "WHERE l.ship >= '2024-01-01' AND l.ship < '2024-04-01' GROUP BY i.id ORDER BY i.id"
        ),
        None,
    ),
    (
        (
            "SELECT extract(MONTH FROM ship) AS m, sum(qty * n) FROM {s}{p}_lines "
            "GROUP BY m ORDER BY m"
        ),
        None,
    ),
    (
        (
            "SELECT substring(v, 1, 2), count(*) FROM {s}{p}_items WHERE v LIKE 'a%' "
            "GROUP BY substring(v, 1, 2) ORDER BY 1"
        ),
        None,
    ),
    ("SELECT count(*) FROM {s}{p}_empty", None),
)


def normalized(rows: list[Any]) -> list[tuple[Any, ...]]:
    """Driver values compared as the SQL values they are: both drivers give Decimal, int,
    float, date, timedelta and bytes alike, but pymysql's BIT and unsigned sums differ in
    Python type only."""

    def one(v: Any) -> Any:
        if isinstance(v, Decimal) and v == v.to_integral_value() and v.as_tuple().exponent >= 0:
            return int(v)
        if isinstance(v, (bytes, memoryview)):
            return bytes(v)
        return v

    return [tuple(one(v) for v in r) for r in rows]


@pytest.fixture
def target(pg_url: str) -> Iterator[str]:
    name = "a_" + uuid.uuid4().hex[:10]
    yield name
    pg_exec(pg_url, f"DROP SCHEMA IF EXISTS {name} CASCADE")


def said_during(run: Any) -> list[str]:
    said: list[str] = []
    logger.enable("etl_express")
    handler = logger.add(lambda m: said.append(m.record["message"]), level="WARNING")
    try:
        run()
    finally:
        logger.remove(handler)
        logger.disable("etl_express")
    return said


def test_a_mariadb_database_answers_the_same_queries_on_the_copy(
    mysql_url: str, pg_url: str, target: str
) -> None:
    engine = engine_for(mysql_url)
    p = "q" + uuid.uuid4().hex[:6]
    with engine.begin() as conn:
        for statement in MARIA_DDL:
            conn.exec_driver_sql(statement.format(p=p))
    try:
        rep = etl.Replication(
            "audit_" + target,
            SQLDatabase(mysql_url, include=[f"{p}_*"]),
            sink=PostgresSink(schema=target, url=pg_url),
        )
        result = rep.run()
        assert result.status == "succeeded"
        assert result.rows_quarantined == 0  # a NULL BOOLEAN is NULL, not a quarantined row
        assert result[f"{p}_empty"].rows_written == 0
        problems = []
        with engine.connect() as mc, psycopg.connect(pg_url) as pc:
            for on_source, on_copy in MARIA_QUERIES:
                want = mc.exec_driver_sql(on_source.format(s="", p=p).replace("%", "%%")).all()
                try:
                    got = pc.execute((on_copy or on_source).format(s=f"{target}.", p=p)).fetchall()
                except psycopg.Error as exc:
                    pc.rollback()
                    problems.append(f"{on_source}: {exc}")
                    continue
                if normalized(want) != normalized(got):
                    problems.append(f"{on_source}: source {want!r} != copy {got!r}")
        assert problems == []
        # the empty table is there with its declared types and key
        assert pg_exec(
            pg_url,
            "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
            "WHERE attrelid = to_regclass(%s) AND attnum > 0 AND attname NOT LIKE '\\_etl%%' "
            "ORDER BY attnum",
            (f"{target}.{p}_empty",),
        ) == [
            ("id", "integer"),
            ("x", "character varying(3)"),
            ("b", "bytea"),
            ("t", "interval"),
        ]
        assert rep.run()[f"{p}_empty"].rows_written == 0  # and a second run is quiet
    finally:
        with engine.begin() as conn:
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS {p}_lines, {p}_items, {p}_empty")


PG_DDL = """
CREATE DOMAIN {p}.pos AS integer CHECK (VALUE > 0);
CREATE TABLE {p}.t (id int PRIMARY KEY, n numeric, iv interval, arr int[], dm {p}.pos,
  tz timestamptz, ts timestamp, ttz timetz, u uuid, ip inet, cd cidr, by bytea, jb jsonb,
  r int4range, g int GENERATED ALWAYS AS (id * 2) STORED, f float8, ch char(4));
INSERT INTO {p}.t (id, n, iv, arr, dm, tz, ts, ttz, u, ip, cd, by, jb, r, f, ch) VALUES
 (1, 'NaN', '1 mon', '{{3,1}}', 5, '2024-03-10 02:30+01', '2024-03-10 02:30', '10:00+02',
  'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11', '10.0.0.1/8', '10.0.0.0/8', '\\x00ff',
  '{{"b": 1, "a": 2}}', '[1,5)', 'NaN', 'ab'),
 (2, 'Infinity', '30 days', '{{1,2,3}}', 7, '2024-01-01 00:00+00', '2024-01-01', '23:00-05',
  NULL, '::1', '2001:db8::/32', '\\x', '[]', 'empty', 'Infinity', 'ab  '),
 (3, 1.50, '-1 day 02:00', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'null',
  NULL, -0.0, NULL),
 (4, 0.1, '25:00', '{{}}', 1, '2000-01-01 00:00+00', '1999-12-31 23:59:59.999999', '00:00+00',
  NULL, '192.168.1.1', '192.168.0.0/16', '\\x41', '{{"a": [1, {{"x": null}}]}}', '(,3]',
  1e-300, 'c');
CREATE TABLE {p}.empty (id int PRIMARY KEY, at timestamptz, tags text[]);
CREATE TABLE {p}.parts (id int, day date, v int, PRIMARY KEY (id, day)) PARTITION BY RANGE (day);
CREATE TABLE {p}.parts_2023 PARTITION OF {p}.parts FOR VALUES FROM ('2023-01-01') TO ('2024-01-01');
CREATE TABLE {p}.parts_2024 PARTITION OF {p}.parts FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
INSERT INTO {p}.parts VALUES (1, '2023-05-01', 1), (2, '2024-05-01', 2);
CREATE TABLE {p}.base (id int PRIMARY KEY, v int);
CREATE TABLE {p}.child (extra int) INHERITS ({p}.base);
ALTER TABLE {p}.child ADD PRIMARY KEY (id);
INSERT INTO {p}.base VALUES (1, 1);
INSERT INTO {p}.child VALUES (2, 2, 9);
"""

#: the same question on the source and on the copy
PG_QUERIES = (
    "SELECT id, n::text, n > 1 FROM {s}.t ORDER BY n, id",
    "SELECT sum(n)::text FROM {s}.t WHERE n < 'Infinity'",
    "SELECT id, iv::text FROM {s}.t ORDER BY iv, id",
    "SELECT id, arr[1], cardinality(arr), arr @> '{{1}}' FROM {s}.t ORDER BY id",
    "SELECT sum(dm) FROM {s}.t",
    "SELECT id, tz::text, ts::text, ttz::text, ts + interval '1 day' FROM {s}.t ORDER BY id",
    "SELECT id, u::text, host(ip), masklen(cd), ip << '10.0.0.0/8' FROM {s}.t ORDER BY id",
    "SELECT id, length(by), by FROM {s}.t ORDER BY by, id",
    "SELECT id, jb -> 'a', jb ? 'b' FROM {s}.t ORDER BY id",
    "SELECT id, upper(r), isempty(r), 2 <@ r FROM {s}.t ORDER BY id",
    "SELECT id, g, f::text, ch, ch = 'ab', length(ch) FROM {s}.t ORDER BY id",
    "SELECT count(*) FROM {s}.empty",
    "SELECT id, day, v FROM {s}.parts WHERE day >= '2024-01-01' ORDER BY id",
    "SELECT id, v FROM {s}.base ORDER BY id",  # the parent's read holds the child's rows
    "SELECT id, v, extra FROM {s}.child ORDER BY id",
)


def test_a_postgresql_schema_answers_the_same_queries_on_the_copy(pg_url: str, target: str) -> None:
    p = "s" + uuid.uuid4().hex[:8]
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {p}")
        conn.execute(PG_DDL.format(p=p))  # type: ignore[arg-type]
    try:
        rep = etl.Replication(
            "audit_" + target,
            SQLDatabase(pg_url, schema=p),
            sink=PostgresSink(schema=target),
        )
        result = rep.run()
        assert result.status == "succeeded" and result.rows_quarantined == 0
        assert sorted(result.tables) == ["base", "child", "empty", "parts", "t"]
        problems = []
        with psycopg.connect(pg_url) as conn:
            for query in PG_QUERIES:
                want = conn.execute(query.format(s=p)).fetchall()  # type: ignore[arg-type]
                got = conn.execute(query.format(s=target)).fetchall()  # type: ignore[arg-type]
                if want != got:
                    problems.append(f"{query}: source {want!r} != copy {got!r}")
        assert problems == []
        assert pg_exec(
            pg_url,
            "SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
            "WHERE attrelid = to_regclass(%s) AND attnum > 0 AND attname NOT LIKE '\\_etl%%' "
            "ORDER BY attnum",
            (f"{target}.empty",),
        ) == [("integer",), ("timestamp with time zone",), ("text[]",)]
    finally:
        pg_exec(pg_url, f"DROP SCHEMA {p} CASCADE")


def test_what_the_copy_answers_differently_is_said_before_it_runs(
    mysql_url: str, pg_url: str, target: str
) -> None:
    engine = engine_for(mysql_url)
    p = "w" + uuid.uuid4().hex[:6]
    with engine.begin() as conn:
        conn.exec_driver_sql(
            f"CREATE TABLE `{p}_Orders` (id INT PRIMARY KEY, `OrderDate` DATE, "
            "status ENUM('new','paid','shipped'), label VARCHAR(20) COLLATE utf8mb4_general_ci, "
            "code VARCHAR(5) COLLATE utf8mb4_bin)"
        )
        conn.exec_driver_sql(
            f"INSERT INTO `{p}_Orders` VALUES (1, '2024-01-01', 'paid', 'Widget', 'A'), "
            "(2, '2024-01-02', 'new', 'WIDGET', 'a')"
        )
    try:
        rep = etl.Replication(
            "audit_" + target,
            SQLDatabase(mysql_url, include=[f"{p}_*"]),
            sink=PostgresSink(schema=target, url=pg_url),
        )
        # what the Airflow helper plans from (units) says it as well as a run
        planned = " | ".join(m for m in said_during(rep.units) if "answers differently" in m)
        assert "collation utf8mb4_general_ci" in planned and f"{p}_Orders.label" in planned
        said = " | ".join(m for m in said_during(rep.run) if "answers differently" in m)
        assert "collation utf8mb4_general_ci" in said and f"{p}_Orders.label" in said
        assert f"{p}_Orders.code" not in said.split("ENUM")[0]  # a _bin column compares alike
        assert "ENUM/SET column(s) land as text" in said and f"{p}_Orders.status" in said
        assert f"{p}_Orders.OrderDate -> order_date" in said
        assert f"double quotes: {p}_Orders" in said
        # and what they warn about is so: the source's answers, then the copy's
        with engine.connect() as conn:
            assert (
                conn.exec_driver_sql(
                    f"SELECT count(*) FROM `{p}_Orders` WHERE label = 'widget'"
                ).scalar()
                == 2
            )
            assert [
                r[0] for r in conn.exec_driver_sql(f"SELECT id FROM `{p}_Orders` ORDER BY status")
            ] == [2, 1]
        copy = f'{target}."{p}_Orders"'
        assert pg_exec(pg_url, f"SELECT count(*) FROM {copy} WHERE label = 'widget'") == [(0,)]
        assert pg_exec(pg_url, f"SELECT count(*) FROM {copy} WHERE lower(label) = 'widget'") == [
            (2,)
        ]
        assert pg_exec(
            pg_url,
            f"SELECT id FROM {copy} "
            "ORDER BY array_position(ARRAY['new', 'paid', 'shipped'], status)",
        ) == [(2,), (1,)]
    finally:
        with engine.begin() as conn:
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS `{p}_Orders`")


def test_postgresql_types_without_a_carried_declaration_are_named(pg_url: str) -> None:
    p = "d" + uuid.uuid4().hex[:8]
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS citext")
        conn.execute(f"CREATE SCHEMA {p}")
        conn.execute(f"CREATE TYPE {p}.mood AS ENUM ('sad', 'ok')")
        conn.execute(
            f"CREATE TABLE {p}.t (id int PRIMARY KEY, mood {p}.mood, nick citext, paid money, "
            '"userName" text, plain text)'
        )
    try:
        said = " | ".join(differences(SQLDatabase(pg_url, schema=p).tables()))
        assert "ENUM/SET column(s) land as text" in said and "t.mood" in said
        assert "citext column(s)" in said and "t.nick" in said
        assert "money column(s)" in said and "t.paid" in said
        assert "t.userName -> user_name" in said
        assert "plain" not in said and "double quotes" not in said
    finally:
        pg_exec(pg_url, f"DROP SCHEMA {p} CASCADE")


def test_a_plain_schema_has_nothing_to_say(pg_url: str) -> None:
    p = "d" + uuid.uuid4().hex[:8]
    pg_exec(pg_url, f"CREATE SCHEMA {p}")
    pg_exec(pg_url, f"CREATE TABLE {p}.orders (id int PRIMARY KEY, total numeric(12,2), at date)")
    try:
        assert differences(SQLDatabase(pg_url, schema=p).tables()) == []
    finally:
        pg_exec(pg_url, f"DROP SCHEMA {p} CASCADE")


def test_an_empty_table_read_by_one_pipeline_is_created_too(
    pg_url: str, schema: str, pipeline_name: str
) -> None:
    pg_exec(pg_url, f"CREATE TABLE {schema}.src (id bigint PRIMARY KEY, amount numeric(10,2))")
    result = etl.Pipeline(
        pipeline_name,
        etl.sources.SQLSource(pg_url, f"{schema}.src", primary_key="id"),
        sink=PostgresSink(f"{schema}.dst"),
        progress=False,
    ).run()
    assert result.rows_written == 0
    assert pg_exec(pg_url, f"SELECT count(*) FROM {schema}.dst") == [(0,)]
    assert pg_exec(
        pg_url,
        "SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
        "WHERE attrelid = to_regclass(%s) AND attname = 'amount'",
        (f"{schema}.dst",),
    ) == [("numeric(10,2)",)]


def test_mariadb_zero_dates_quarantine_their_rows_and_the_others_land(
    mysql_url: str, pg_url: str, target: str
) -> None:
    engine = engine_for(mysql_url)
    p = "z" + uuid.uuid4().hex[:6]
    with engine.begin() as conn:
        conn.exec_driver_sql("SET SESSION sql_mode = ''")  # a legacy server's lenient mode
        conn.exec_driver_sql(
            f"CREATE TABLE {p}_dates (id INT PRIMARY KEY, d DATE, dt DATETIME, ts TIMESTAMP NULL)"
        )
        conn.exec_driver_sql(
            f"INSERT INTO {p}_dates VALUES (1, '0000-00-00', '2024-01-01 10:00:00', NULL), "
            "(2, '2024-01-01', '0000-00-00 00:00:00', NULL), "
            "(3, '2024-01-02', '2024-01-02 00:00:00', '2024-01-02 03:04:05'), "
            "(4, NULL, NULL, '0000-00-00 00:00:00')"
        )
    try:
        rep = etl.Replication(
            "audit_" + target,
            SQLDatabase(mysql_url, include=[f"{p}_*"]),
            sink=PostgresSink(schema=target, url=pg_url),
            max_error_rate=1.0,
        )
        result = rep.run()[f"{p}_dates"]  # it read the table (it stopped at the first before)
        assert (result.rows_written, result.rows_quarantined) == (1, 3)
        assert pg_exec(pg_url, f"SELECT id, d::text FROM {target}.{p}_dates") == [(3, "2024-01-02")]
        reasons = pg_exec(
            pg_url,
            "SELECT reason FROM etl_express.quarantine WHERE pipeline = %s ORDER BY id",
            (f"audit_{target}.{p}_dates",),
        )
        assert len(reasons) == 3
        assert all("zero or invalid MariaDB/MySQL date" in r for (r,) in reasons)
        assert sorted(r.split("'")[1] for (r,) in reasons) == ["d", "dt", "ts"]  # the columns
        assert "NULLIF(d, '0000-00-00')" in str(reasons)
    finally:
        with engine.begin() as conn:
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS {p}_dates")


def test_a_table_name_postgresql_cannot_hold_is_refused_before_anything_runs(
    mysql_url: str, pg_url: str, target: str
) -> None:
    engine = engine_for(mysql_url)
    p = "l" + uuid.uuid4().hex[:6]
    long = f"{p}_" + "x" * (64 - len(p) - 1)  # MariaDB allows 64 characters, PostgreSQL 63 bytes
    with engine.begin() as conn:
        conn.exec_driver_sql(f"CREATE TABLE `{long}` (id INT PRIMARY KEY)")
        conn.exec_driver_sql(f"CREATE TABLE {p}_ok (id INT PRIMARY KEY)")
    try:
        rep = etl.Replication(
            "audit_" + target,
            SQLDatabase(mysql_url, include=[f"{p}_*"]),
            sink=PostgresSink(schema=target, url=pg_url),
        )
        with pytest.raises(etl.ETLConfigError, match="would cut it silently") as info:
            rep.run()
        assert f"exclude=[{long!r}]" in str(info.value)
        assert pg_exec(pg_url, f"SELECT to_regclass('{target}.{p}_ok')") == [(None,)]
    finally:
        with engine.begin() as conn:
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS `{long}`, {p}_ok")


def test_a_mariadb_timestamp_lands_as_the_same_instant_whatever_the_session_zone(
    mysql_url: str, pg_url: str, target: str
) -> None:
    """A server whose zone is not UTC (here: its sessions start at +03:00, as a server in
    Moscow's SYSTEM zone would) still gives the copy the same instants."""
    import sqlalchemy as sa

    moscow = (
        mysql_url
        + ("&" if "?" in mysql_url else "?")
        + ("init_command=SET+time_zone%3D%27%2B03%3A00%27")
    )
    p = "k" + uuid.uuid4().hex[:6]
    own = sa.create_engine(moscow)  # the application's own session, in its zone
    try:
        with own.begin() as conn:
            assert conn.exec_driver_sql("SELECT @@session.time_zone").scalar() == "+03:00"
            conn.exec_driver_sql(
                f"CREATE TABLE {p}_ts (id INT PRIMARY KEY, ts TIMESTAMP NULL, dt DATETIME)"
            )
            conn.exec_driver_sql(
                f"INSERT INTO {p}_ts VALUES (1, '2024-01-01 10:00:00', '2024-01-01 10:00:00')"
            )
            instant = conn.exec_driver_sql(f"SELECT unix_timestamp(ts) FROM {p}_ts").scalar()
        etl.Replication(
            "audit_" + target,
            SQLDatabase(moscow, include=[f"{p}_*"]),
            sink=PostgresSink(schema=target, url=pg_url),
        ).run()
        assert pg_exec(
            pg_url, f"SELECT extract(epoch FROM ts)::bigint, dt::text FROM {target}.{p}_ts"
        ) == [(instant, "2024-01-01 10:00:00")]  # the instant; the wall time as written
    finally:
        with own.begin() as conn:
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS {p}_ts")
        own.dispose()
