"""A database function's own error message (PL/pgSQL ``RAISE``/``ASSERT``, MariaDB
``SIGNAL``) is prose its author wrote, free to embed a record's value unquoted — ``RAISE
EXCEPTION 'cannot process customer %', full_name`` — where quoting rules find nothing to
remove. It is withheld whole, whatever the driver (psycopg, ADBC, pymysql) and the error's form;
where it was raised (the function and line) is kept."""

from __future__ import annotations

import traceback
from collections.abc import Iterator

import psycopg
import pytest
import sqlalchemy as sa
from loguru import logger

import etl_express as etl
from etl_express._privacy import safe_db_message
from etl_express.anonymizers import Pseudonymize
from etl_express.errors import ETLError
from etl_express.sinks import PostgresSink
from etl_express.sources import SQLSource

from ..conftest import pg_exec

NAME = "Канарейкина Олимпиада Зайцевна"
EMAIL = "leak.canary.7f3a@example.org"
CANARIES = (NAME, "Канарейкина", "Олимпиада", EMAIL, "leak.canary")


def _clean(text: str) -> bool:
    return not any(c in text for c in CANARIES)


def _chain_text(exc: BaseException) -> str:
    """Every exception reachable from ``exc`` (printed or suppressed), as text."""
    out, seen, todo = [], set(), [exc]
    while todo:
        e = todo.pop()
        if id(e) in seen:
            continue
        seen.add(id(e))
        out.append(f"{type(e).__name__}: {e}")
        todo += [n for n in (e.__cause__, e.__context__) if n is not None]
    return "\n".join(out)


@pytest.fixture
def functions(pg_url: str, schema: str) -> str:
    pg_exec(
        pg_url, f"CREATE TABLE {schema}.people (id int PRIMARY KEY, full_name text, email text)"
    )
    pg_exec(pg_url, f"INSERT INTO {schema}.people VALUES (1, %s, %s)", [NAME, EMAIL])
    pg_exec(
        pg_url,
        f"CREATE FUNCTION {schema}.checked(t text) RETURNS text AS $$ BEGIN "
        "IF t LIKE 'Канар%' THEN RAISE EXCEPTION 'cannot process customer %', t; END IF; "
        "RETURN t; END $$ LANGUAGE plpgsql",
    )
    pg_exec(
        pg_url,
        f"CREATE FUNCTION {schema}.coded(t text) RETURNS text AS $$ BEGIN "
        "RAISE EXCEPTION USING ERRCODE = 'check_violation', MESSAGE = 'bad mail ' || t; "
        "END $$ LANGUAGE plpgsql",
    )
    pg_exec(
        pg_url,
        f"CREATE FUNCTION {schema}.asserted(t text) RETURNS text AS $$ BEGIN "
        "ASSERT t NOT LIKE '%@%', 'an address: ' || t; RETURN t; END $$ LANGUAGE plpgsql",
    )
    return schema


@pytest.mark.parametrize("call", ["checked(full_name)", "coded(email)", "asserted(email)"])
def test_psycopg_error_of_a_function_is_withheld(pg_url: str, functions: str, call: str) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn, pytest.raises(psycopg.Error) as err:
        conn.execute(f"SELECT {functions}.{call} FROM {functions}.people")
    assert not _clean(str(err.value))  # the driver's own text quotes it, unquoted
    text = safe_db_message(err.value)
    assert "message withheld" in text and f"function {functions}." in text, text
    assert _clean(text), text


def test_adbc_error_of_a_function_is_withheld(pg_url: str, functions: str) -> None:
    adbc = pytest.importorskip("adbc_driver_postgresql.dbapi")
    with adbc.connect(pg_url) as conn, conn.cursor() as cur, pytest.raises(Exception) as err:
        cur.execute(f"SELECT {functions}.checked(full_name) FROM {functions}.people")
        cur.fetch_arrow_table()
    assert not _clean(str(err.value))
    text = safe_db_message(err.value)
    assert "message withheld" in text and "P0001" in text and _clean(text), text
    # the same error as the Arrow stream re-raises it: text only, no attributes
    assert _clean(safe_db_message(OSError(str(err.value))))


def test_a_source_query_calling_a_raising_function_fails_without_the_value(
    pg_url: str, functions: str, pipeline_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import secrets

    monkeypatch.setenv("ETL_EXPRESS_AUDIT_KEY", secrets.token_urlsafe(48))
    pipeline = etl.Pipeline(
        pipeline_name,
        SQLSource(
            pg_url,
            query=f"SELECT id, {functions}.checked(full_name) AS full_name FROM {functions}.people",
            primary_key="id",
            pii=["full_name"],
        ),
        anonymizers=[Pseudonymize(["full_name"], key=etl.secret("AUDIT_KEY"))],
        sink=PostgresSink(f"{functions}.target", url=pg_url),
        progress=False,
    )
    lines: list[str] = []
    logger.enable("etl_express")
    sink = logger.add(lambda m: lines.append(str(m)), level="DEBUG")
    try:
        with pytest.raises(ETLError) as err:
            pipeline.run()
    finally:
        logger.remove(sink)
        logger.disable("etl_express")
    printed = "".join(traceback.format_exception(err.value))
    assert "message withheld" in printed and f"{functions}.checked" in printed, printed
    (stored,) = pg_exec(
        pg_url, "SELECT error FROM etl_express.runs WHERE pipeline = %s", [pipeline_name]
    )
    assert "message withheld" in stored[0]
    assert _clean(printed + _chain_text(err.value) + stored[0] + "\n".join(lines))


@pytest.fixture
def mariadb(mysql_url: str) -> Iterator[sa.Engine]:
    engine = sa.create_engine(mysql_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE IF EXISTS audit_people")
        conn.exec_driver_sql("DROP FUNCTION IF EXISTS audit_checked")
        conn.exec_driver_sql("CREATE TABLE audit_people (id int PRIMARY KEY, email text)")
        conn.execute(sa.text("INSERT INTO audit_people VALUES (1, :e)"), {"e": EMAIL})
        conn.exec_driver_sql(
            "CREATE FUNCTION audit_checked(t text) RETURNS text DETERMINISTIC BEGIN "
            "DECLARE m varchar(200) DEFAULT concat('cannot process ', replace(t, '@', ' at ')); "
            "SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = m; RETURN t; END"
        )
    try:
        yield engine
    finally:
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP TABLE IF EXISTS audit_people")
            conn.exec_driver_sql("DROP FUNCTION IF EXISTS audit_checked")
        engine.dispose()


def test_a_mariadb_signal_is_withheld(
    mariadb: sa.Engine, mysql_url: str, pg_url: str, schema: str, pipeline_name: str
) -> None:
    with mariadb.connect() as conn, pytest.raises(sa.exc.DBAPIError) as err:
        conn.exec_driver_sql("SELECT audit_checked(email) FROM audit_people").fetchall()
    assert "leak.canary" in str(err.value)  # the 'at' spelling no e-mail rule finds
    text = safe_db_message(err.value)
    assert "message withheld" in text and "leak.canary" not in text, text
    pipeline = etl.Pipeline(
        pipeline_name,
        SQLSource(
            mysql_url,
            query="SELECT id, audit_checked(email) AS contact FROM audit_people",
            primary_key="id",
        ),
        sink=PostgresSink(f"{schema}.target", url=pg_url),
        not_pii={"contact": "a test of the error path"},
        progress=False,
    )
    with pytest.raises(ETLError) as failed:
        pipeline.run()
    printed = "".join(traceback.format_exception(failed.value)) + _chain_text(failed.value)
    assert "message withheld" in printed and "leak.canary" not in printed, printed
