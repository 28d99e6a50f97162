"""Database and driver messages reduced to what names the problem: every quoted literal
removed wherever it stands, known identifiers kept. The messages come from real servers."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
import sqlalchemy as sa

from etl_express._privacy import safe_db_message, safe_exception, safe_text

PHONE = "79161234567"
SNILS = "112-233-445 95"


def _pg_error(url: str, sql: str) -> BaseException:
    with psycopg.connect(url, autocommit=True) as conn:
        try:
            conn.execute(sql)
        except psycopg.Error as exc:
            return exc
    raise AssertionError(f"no error from {sql}")


@pytest.mark.parametrize(
    "sql, kept",
    [
        (f"SELECT '{PHONE}'::integer", "out of range for type integer"),  # value in the middle
        (f"SELECT to_date('x{SNILS}', 'DD')", "invalid value"),  # invalid value "x1" for "DD"
        (f"SELECT '{PHONE}x'::bigint", "invalid input syntax for type bigint"),
        (f"SELECT '{SNILS}'::date", "invalid input syntax for type date"),
        (f'SELECT \'{{"a": "{PHONE}"\'::jsonb', "invalid input syntax for type json"),
    ],
)
def test_postgresql_messages_lose_every_literal(pg_url: str, sql: str, kept: str) -> None:
    exc = _pg_error(pg_url, sql)
    text = safe_db_message(exc)
    assert kept in text and "SQLSTATE" in text, text
    for secret in (PHONE, SNILS, '"x1"', "112-233"):
        assert secret not in text, text
    wrapped = sa.exc.DataError("SELECT …", {"p": PHONE}, exc)  # SQLAlchemy's wrapper
    assert safe_db_message(wrapped) == text


def test_postgresql_identifiers_are_kept(pg_url: str, schema: str) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE {schema}.people (id int PRIMARY KEY, email text NOT NULL)")
        conn.execute(f"CREATE UNIQUE INDEX people_email_key ON {schema}.people (email)")
        conn.execute(f"INSERT INTO {schema}.people VALUES (1, 'a.b@example.org')")
    dup = _pg_error(pg_url, f"INSERT INTO {schema}.people VALUES (2, 'a.b@example.org')")
    text = safe_db_message(dup)
    assert '"people_email_key"' in text and "a.b@example.org" not in text
    null = _pg_error(pg_url, f"INSERT INTO {schema}.people VALUES (3, NULL)")
    assert '"email"' in safe_db_message(null) and '"people"' in safe_db_message(null)


def test_mariadb_messages_lose_every_literal(mysql_url: str) -> None:
    engine = sa.create_engine(mysql_url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("DROP TABLE IF EXISTS privacy_errors"))
            conn.execute(sa.text("CREATE TABLE privacy_errors (id int PRIMARY KEY, age int)"))
            conn.execute(sa.text("SET SESSION sql_mode = 'STRICT_ALL_TABLES'"))
            with pytest.raises(sa.exc.DBAPIError) as err:
                conn.execute(sa.text(f"INSERT INTO privacy_errors VALUES (1, '{PHONE}x')"))
        text = safe_db_message(err.value, ["age"])
        assert "'age'" in text and PHONE not in text, text
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text("DROP TABLE IF EXISTS privacy_errors"))
        engine.dispose()


@pytest.mark.parametrize(
    "message",
    [
        f'value "{PHONE}" is out of range for type integer',
        f'invalid value "{SNILS[:2]}" for "DD"',
        f"Failed to parse string: '{PHONE}' as a scalar of type int64",
        f"Float value {PHONE}.5 was truncated converting to int64",
        f"Key (email)=(a.b@example.org) already exists with phone {PHONE}",
        f'invalid input: "he said "{PHONE}" twice"',
        f"«{PHONE}» and “{SNILS}”",
    ],
)
def test_any_quoted_or_shaped_value_is_removed(message: str) -> None:
    text = safe_text(message)
    for secret in (PHONE, SNILS, "a.b@example.org"):
        assert secret not in text, text
    assert "<value>" in text


def test_exceptions_in_log_lines() -> None:
    class Boom(Exception):
        pass

    text = safe_exception(Boom(f"cannot handle customer {PHONE} <a.b@example.org>"))
    assert text.startswith("Boom:") and PHONE not in text and "example.org" not in text


def test_a_failing_expression_never_shows_its_value(pg_url: str, pipeline_name: str) -> None:
    """Arrow quotes the string it cannot parse: the Derive error names the column only."""
    import pyarrow as pa
    import pyarrow.compute as pc

    import etl_express as etl
    from etl_express.sinks import JSONLSink
    from etl_express.transformers import Derive

    from .canaries import PeopleSource

    rows: list[dict[str, Any]] = [{"id": 1, "phone": PHONE + "x"}]
    pipeline = etl.Pipeline(
        pipeline_name,
        PeopleSource(rows, schema=pa.schema([("id", pa.int64()), ("phone", pa.string())])),
        transformers=[
            Derive("n", lambda b: pc.cast(b["phone"], pa.int64()), on_error="fail"),
        ],
        sink=JSONLSink("unused", state_url=pg_url),
        not_pii={"n": "a number", "phone": "a test value"},
    )
    with pytest.raises(etl.ETLError) as err:
        pipeline.run()
    assert "'n'" in str(err.value) and PHONE not in str(err.value)
