"""``etl.Replication`` over ``SQLDatabase``: a whole schema into PostgreSQL in one call, with
per-table settings by glob, anonymizer columns written ``table.column`` or bare, tables
without a key refused, new tables picked up, and every configured name checked first."""

from __future__ import annotations

import json
import os
import secrets
import uuid
from collections.abc import Iterator

import psycopg
import pytest
import sqlalchemy as sa
from loguru import logger

import etl_express as etl
from etl_express.anonymizers import Pseudonymize
from etl_express.errors import ETLConfigError
from etl_express.replication.plan import _Plan
from etl_express.sinks import PostgresSink
from etl_express.sources import SQLDatabase
from etl_express.sources.sql.discovery import read_catalog
from etl_express.store.database import engine_for
from tests.conftest import pg_exec

os.environ.setdefault("ETL_EXPRESS_REPLICATION_TEST_KEY", secrets.token_urlsafe(48))
KEY = etl.secret("REPLICATION_TEST_KEY")

SOURCE_DDL = """
CREATE TABLE {s}.customers (id int PRIMARY KEY, name varchar(20), phone char(12), email text,
    segment char(10), updated_at timestamptz NOT NULL DEFAULT now());
INSERT INTO {s}.customers (id, name, phone, email, segment) VALUES
    (1, 'Anna', '+79161234567', 'anna@mail.ru', 'BUILDING'),
    (2, 'Boris', '+79161234568', 'boris@mail.ru', 'AUTO');
CREATE TABLE {s}.orders (o_id int, line smallint, c_id int, total numeric(15,2),
    PRIMARY KEY (o_id, line));
INSERT INTO {s}.orders SELECT g / 3, g % 3, 1 + g % 2, g * 1.25 FROM generate_series(1, 30) g;
CREATE TABLE {s}.audit_log (at timestamptz, what text);
CREATE TABLE {s}.events (event_id bigint, kind text, email text);
INSERT INTO {s}.events VALUES (1, 'login', 'anna@mail.ru'), (2, 'logout', NULL);
"""


@pytest.fixture
def target(pg_url: str) -> Iterator[str]:
    name = "r_" + uuid.uuid4().hex[:10]
    yield name
    pg_exec(pg_url, f"DROP SCHEMA IF EXISTS {name} CASCADE")


def rows(url: str, sql: str) -> list[tuple]:
    return sorted(pg_exec(url, sql), key=repr)


def replication(url: str, schema: str, target: str, **options) -> etl.Replication:
    options.setdefault("primary_key", {"ev*": "event_id"})
    options.setdefault("not_pii", {"customers.name": "the fixture's made-up first names"})
    return etl.Replication(
        "crm_" + target,
        SQLDatabase(url, schema=schema, exclude=["audit_*"], batch_size=7),
        sink=PostgresSink(schema=target),
        anonymizers=[Pseudonymize(["email", "customers.phone"], key=KEY)],
        **options,
    )


def test_a_schema_is_replicated_table_by_table_and_new_tables_are_picked_up(
    pg_url: str, schema: str, target: str
) -> None:
    for statement in SOURCE_DDL.format(s=schema).split(";"):
        if statement.strip():
            pg_exec(pg_url, statement)
    rep = replication(
        pg_url, schema, target, cursor={"cust*": "updated_at"}, partitions={"orders": 3}
    )
    pipelines = rep.pipelines()
    assert [p.name for p in pipelines] == [
        f"{rep.name}.{t}" for t in ("customers", "events", "orders")
    ]
    assert all(isinstance(p, etl.Pipeline) for p in pipelines)
    by_table = {p.source.name: p for p in pipelines}
    assert by_table["customers"].source.cursor == "updated_at"
    assert by_table["events"].source.key_columns == ["event_id"]  # declared for a keyless table
    covered = {t: sorted(c for a in p.anonymizers for c in a.covers()) for t, p in by_table.items()}
    assert covered == {"customers": ["email", "phone"], "events": ["email"], "orders": []}

    # one store for all the tables; within run() its commits do not wait for the WAL flush
    tables = rep.source.tables()
    for wait, setting in ((True, "on"), (False, "off")):
        planned = _Plan(rep, tables).pipelines(wait_flush=wait)
        assert len({id(p.store) for p, _ in planned}) == 1
        with planned[0][0].store.transaction() as conn:
            assert conn.execute(sa.text("SHOW synchronous_commit")).scalar() == setting

    result = rep.run(workers=2)
    assert result.ok and list(result.tables) == ["customers", "events", "orders"]
    # ... and the run ended with one commit that waited, recording when it finished
    (finished,) = pg_exec(
        pg_url, "SELECT value FROM etl_express.meta WHERE key = %s", (f"replication:{rep.name}",)
    )[0]
    assert result.started_at is not None and finished >= result.started_at.isoformat()
    assert sorted(result.new_tables) == ["customers", "events", "orders"]  # the first run
    assert (result.rows_read, result.rows_written) == (34, 34)
    assert len(result["orders"].partitions) == 3
    assert sum(p.rows_written for p in result["orders"].partitions) == 30
    # the same rows; anonymized columns replaced by tokens, every other value as it was
    assert rows(pg_url, f"SELECT o_id, line, c_id, total FROM {target}.orders") == rows(
        pg_url, f"SELECT * FROM {schema}.orders"
    )
    got = rows(pg_url, f"SELECT id, name, trim(segment), phone, email FROM {target}.customers")
    assert [r[:3] for r in got] == [(1, "Anna", "BUILDING"), (2, "Boris", "AUTO")]
    assert all(r[3].startswith("phone:") and "@" not in r[4] for r in got)
    events = rows(pg_url, f"SELECT event_id, kind, email FROM {target}.events")
    assert events[0][2] == got[0][4] and events[1][2] is None  # one token per person

    pg_exec(pg_url, f"CREATE TABLE {schema}.invoices (id int PRIMARY KEY, amount numeric(9,2))")
    pg_exec(pg_url, f"INSERT INTO {schema}.invoices VALUES (1, 9.99)")
    pg_exec(pg_url, f"CREATE TABLE {schema}.audit_2024 (id int PRIMARY KEY)")  # excluded
    pg_exec(pg_url, f"UPDATE {schema}.customers SET name = 'Anya', updated_at = now() WHERE id = 1")
    said: list[str] = []
    logger.enable("etl_express")
    handler = logger.add(lambda m: said.append(m.record["message"]), level="INFO")
    try:
        again = rep.run()
    finally:
        logger.remove(handler)
        logger.disable("etl_express")
    assert again.new_tables == ["invoices"] and again["invoices"].rows_written == 1
    assert any("new table" in m and "invoices" in m for m in said)
    assert again["customers"].rows_written == 1 and again["orders"].rows_written == 0
    assert pg_exec(pg_url, f"SELECT name FROM {target}.customers WHERE id = 1") == [("Anya",)]
    assert again.to_dict()["tables"]["invoices"]["rows_written"] == 1


def test_every_configured_name_is_checked_before_anything_is_written(
    pg_url: str, schema: str, target: str
) -> None:
    for statement in SOURCE_DDL.format(s=schema).split(";"):
        if statement.strip():
            pg_exec(pg_url, statement)

    def refused(**options) -> str:
        with pytest.raises(ETLConfigError) as caught:
            replication(pg_url, schema, target, **options).run()
        return str(caught.value)

    text = refused(primary_key={})
    assert "events" in text and "primary key" in text and "primary_key=" in text
    wrong = etl.Replication(
        "x",
        SQLDatabase(pg_url, schema=schema, exclude=["audit_*", "events"]),
        sink=PostgresSink(schema=target),
        anonymizers=[Pseudonymize(["emial", "orders.phone", "customers.phone"], key=KEY)],
    )
    with pytest.raises(ETLConfigError) as caught:
        wrong.run()
    assert "emial" in str(caught.value) and "orders_phone" in str(caught.value)
    assert "customers_phone" not in str(caught.value)
    assert "nope" in refused(cursor={"nope": "updated_at"})
    assert "updated_at" in refused(cursor={"events": "updated_at"})
    assert "o_id" in refused(primary_key={"ev*": "o_id"})
    assert "no_such" in refused(partitions={"no_such": 2})
    with pytest.raises(ETLConfigError, match="missing_table"):
        SQLDatabase(pg_url, schema=schema, include=["customers", "missing_table"]).tables()
    # nothing was written anywhere
    assert pg_exec(
        pg_url, "SELECT count(*) FROM information_schema.tables WHERE table_schema = %s", (target,)
    ) == [(0,)]


def test_the_catalog_is_read_in_a_few_queries_whatever_the_number_of_tables(
    pg_url: str, schema: str
) -> None:
    for i in range(40):
        pg_exec(
            pg_url,
            f"CREATE TABLE {schema}.t{i:02} (id int PRIMARY KEY, v varchar(5), n numeric(8,3))",
        )
    pg_exec(pg_url, f"CREATE TABLE {schema}.nokey (v text)")
    engine = engine_for(pg_url)
    statements: list[str] = []

    def count(*args) -> None:
        statements.append(args[2])

    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        catalog = read_catalog(engine, schema)
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)
    assert len(catalog) == 41 and len(statements) <= 6
    t05 = next(t for t in catalog if t.name == "t05")
    assert t05.primary_key == ("id",)
    assert t05.declared() == {"id": "integer", "v": "character varying(5)", "n": "numeric(8,3)"}
    assert next(t for t in catalog if t.name == "nokey").primary_key == ()


def test_a_replication_source_must_be_a_database_and_its_sink_a_schema(pg_url: str) -> None:
    with pytest.raises(ETLConfigError, match="PostgresSink\\(schema="):
        etl.Replication("x", SQLDatabase(pg_url), sink=PostgresSink("a.b"))
    with pytest.raises(ETLConfigError, match="SQLDatabase"):
        etl.Replication("x", object())  # type: ignore[arg-type]
    with pytest.raises(ETLConfigError, match="names no table"), psycopg.connect(pg_url):
        sink = PostgresSink(schema="crm")
        sink.prepare(None, None, [])  # type: ignore[arg-type]


def test_a_mariadb_database_lands_in_the_closest_postgresql_types(
    mysql_url: str, pg_url: str, target: str
) -> None:
    engine = engine_for(mysql_url)
    prefix = "r" + uuid.uuid4().hex[:6]
    with engine.begin() as conn:
        conn.exec_driver_sql(
            f"CREATE TABLE {prefix}_items (id INT PRIMARY KEY, active BOOLEAN, code CHAR(5), "
            "label VARCHAR(20), qty SMALLINT UNSIGNED, price DECIMAL(10,2), seen DATETIME(3), "
            "kind ENUM('a','b'))"
        )
        conn.exec_driver_sql(
            f"INSERT INTO {prefix}_items VALUES (1, TRUE, 'ab', 'x', 7, 1.50, "
            "'2024-02-29 12:34:56.789', 'a'), (2, FALSE, 'abcde', NULL, 65535, -2.00, NULL, 'b'), "
            "(3, 2, 'c', 'y', 0, 0, NULL, NULL)"
        )
        conn.exec_driver_sql(f"CREATE TABLE {prefix}_tags (item INT, tag VARCHAR(10))")
    try:
        rep = etl.Replication(
            "maria_" + target,
            SQLDatabase(mysql_url, include=[f"{prefix}_*"]),
            sink=PostgresSink(schema=target, url=pg_url),
            primary_key={f"{prefix}_tags": ["item", "tag"]},
            max_error_rate=0.5,
        )
        result = rep.run()
        items = result[f"{prefix}_items"]
        assert (items.rows_written, items.rows_quarantined) == (2, 1)  # BOOLEAN holding 2
        types = dict(
            pg_exec(
                pg_url,
                "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
                "WHERE attrelid = to_regclass(%s) AND attnum > 0",
                (f"{target}.{prefix}_items",),
            )
        )
        assert {k: v for k, v in types.items() if not k.startswith("_etl")} == {
            "id": "integer",
            "active": "boolean",
            "code": "character(5)",
            "label": "character varying(20)",
            "qty": "integer",
            "price": "numeric(10,2)",
            "seen": "timestamp(3) without time zone",
            "kind": "text",
        }
        assert pg_exec(
            pg_url,
            f"SELECT id, active, code, qty, price::text, seen::text FROM {target}.{prefix}_items "
            "WHERE code = 'ab' OR code = 'abcde' ORDER BY id",
        ) == [
            (1, True, "ab   ", 7, "1.50", "2024-02-29 12:34:56.789"),
            (2, False, "abcde", 65535, "-2.00", None),
        ]
    finally:
        with engine.begin() as conn:
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS {prefix}_items, {prefix}_tags")


def test_etl_read_gives_json_like_records_of_the_declared_types(
    pg_url: str, schema: str, target: str
) -> None:
    pg_exec(
        pg_url,
        f"CREATE TABLE {schema}.devices (id uuid PRIMARY KEY, ip inet, up interval, "
        "ports int[], seen tstzrange, code char(3))",
    )
    pg_exec(
        pg_url,
        f"INSERT INTO {schema}.devices VALUES ('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', "
        "'10.0.0.1/8', '1 day 02:00', '{1,2}', '[2024-01-01,2024-02-01)', 'ab')",
    )
    rep = etl.Replication(
        "dev_" + target,
        SQLDatabase(pg_url, schema=schema),
        sink=PostgresSink(schema=target),
        synchronous_commit=True,  # every commit waits: no closing flush, nothing in meta
    )
    # the tables' batches too (a sink's own default lets them commit without waiting)
    assert [p.sink.synchronous_commit for p in rep.pipelines()] == [True]
    assert PostgresSink(schema=target).for_table("devices").synchronous_commit is False
    assert rep.run().ok
    assert not pg_exec(
        pg_url, "SELECT value FROM etl_express.meta WHERE key = %s", (f"replication:{rep.name}",)
    )
    records = list(etl.read(f"{target}.devices", columns=["id", "ip", "up", "ports", "code"]))
    assert json.loads(json.dumps(records)) == [
        {
            "id": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
            "ip": "10.0.0.1/8",
            "up": "1 day 02:00:00",
            "ports": [1, 2],
            "code": "ab ",
        }
    ]
    assert json.dumps(list(etl.read(f"{target}.devices")))  # every column, the range too
