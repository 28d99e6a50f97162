"""Configuration errors fail at once with their fix; driver errors reach users wrapped
(real PostgreSQL: a wrong role, a refused port, a missing database and table)."""

from __future__ import annotations

import sys
import time

import pytest

import etl_express as etl
from etl_express.retry import RetryPolicy, diagnose, is_transient
from etl_express.sinks.postgres import PostgresSink
from etl_express.sources.sql import SQLSource
from etl_express.store.database import engine_for
from tests.reliability_sources import CUSTOMER_SCHEMA, ListSource, customers

# the default retry policy would wait about 20 s in total on a transient error
SLOW_RETRY = RetryPolicy(attempts=5, backoff=2)


def _with(url: str, **parts: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).set(**parts).render_as_string(hide_password=False)  # type: ignore[arg-type]


def _run_into(sink_url: str, schema: str, name: str) -> tuple[etl.ETLError, float]:
    pipeline = etl.Pipeline(
        name,
        ListSource(customers(3), schema=CUSTOMER_SCHEMA),
        sink=PostgresSink(f"{schema}.dst", url=sink_url),
        retry=SLOW_RETRY,
        progress=False,
    )
    started = time.monotonic()
    with pytest.raises(etl.ETLError) as info:
        pipeline.run()
    return info.value, time.monotonic() - started


def _clean(message: str) -> None:
    for raw in ("[SQL", "DETAIL", "sqlalchemy.exc", "Background on this error"):
        assert raw not in message, raw


def test_a_role_that_does_not_exist_fails_at_once_with_the_fix(pg_url, schema, pipeline_name):
    error, took = _run_into(_with(pg_url, username="nobody_etl"), schema, pipeline_name)
    assert took < 3
    assert isinstance(error, etl.ETLConfigError)
    assert 'role "nobody_etl" does not exist' in str(error)
    assert "Fix: check the user name in the URL" in str(error)
    _clean(str(error))


def test_a_refused_port_fails_at_once_with_the_fix(pg_url, schema, pipeline_name):
    error, took = _run_into(_with(pg_url, port=1), schema, pipeline_name)  # type: ignore[arg-type]
    assert took < 3
    assert "nothing accepts connections at 127.0.0.1:1" in str(error)
    assert "Fix: check the host and port" in str(error)


def test_a_missing_target_database_fails_at_once_with_the_fix(pg_url, schema, pipeline_name):
    error, took = _run_into(_with(pg_url, database="no_such_db_etl"), schema, pipeline_name)
    assert took < 3
    assert "the database does not exist" in str(error)
    assert "CREATE DATABASE" in str(error) and "no_such_db_etl" in str(error)


def test_a_missing_source_table_fails_at_once(pg_url, schema, pipeline_name):
    pipeline = etl.Pipeline(
        pipeline_name,
        SQLSource(pg_url, table=f"{schema}.nowhere", primary_key="id"),
        sink=PostgresSink(f"{schema}.dst"),
        retry=SLOW_RETRY,
        progress=False,
    )
    started = time.monotonic()
    with pytest.raises(etl.ETLError) as info:
        pipeline.run()
    assert time.monotonic() - started < 3
    assert "nowhere" in str(info.value) and "Fix:" in str(info.value)
    assert info.value.result.status == "failed"  # type: ignore[attr-defined]


def test_a_missing_driver_names_the_extra_to_install(pg_url, schema, pipeline_name, monkeypatch):
    monkeypatch.setitem(sys.modules, "pymysql", None)  # as if the extra were not installed
    pipeline = etl.Pipeline(
        pipeline_name,
        SQLSource("mysql+pymysql://root@127.0.0.1:3306/x", table="t", primary_key="id"),
        sink=PostgresSink(f"{schema}.dst"),
        retry=SLOW_RETRY,
        progress=False,
    )
    started = time.monotonic()
    with pytest.raises(etl.ETLError) as info:
        pipeline.run()
    assert time.monotonic() - started < 3
    assert "the driver module 'pymysql' is not installed" in str(info.value)
    assert 'Fix: pip install "etl-express[mysql]"' in str(info.value)
    assert "resumes from the last committed batch" not in str(info.value)


def test_a_bad_url_is_a_configuration_error():
    with pytest.raises(etl.ETLConfigError) as info:
        engine_for("nosuchdialect://host/db")
    assert "the database URL is not understood" in str(info.value)


def test_reading_a_missing_table_says_so(pg_url):
    with pytest.raises(etl.ETLConfigError) as info:
        list(etl.read("public.no_such_table_etl", url=pg_url))
    message = str(info.value)
    assert "reading public.no_such_table_etl failed: the table does not exist" in message
    assert "Query was" not in message and "SELECT" not in message


def test_transient_errors_stay_transient_and_configuration_ones_do_not():
    import psycopg

    refused_new = psycopg.OperationalError(
        'connection failed: connection to server at "10.255.0.9", port 5439 failed: '
        "Connection refused"
    )
    assert diagnose(refused_new) is not None and not is_transient(refused_new)
    dropped = psycopg.OperationalError("server closed the connection unexpectedly")
    assert diagnose(dropped) is None and is_transient(dropped)
    auth = psycopg.OperationalError(
        'connection failed: FATAL:  password authentication failed for user "x"'
    )
    assert not is_transient(auth) and "password" in diagnose(auth).hint  # type: ignore[union-attr]


def test_a_refusal_from_a_server_that_answered_before_is_an_outage(pg_url):
    import psycopg
    from sqlalchemy.engine import make_url

    with engine_for(pg_url).connect():
        pass
    parsed = make_url(pg_url)
    refused = psycopg.OperationalError(
        f'connection failed: connection to server at "{parsed.host}", port '
        f"{parsed.port or 5432} failed: Connection refused"
    )
    assert is_transient(refused)  # a restart: retried, as before
