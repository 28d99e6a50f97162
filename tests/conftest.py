"""Shared fixtures: a real PostgreSQL (server from ETL_EXPRESS_TEST_DATABASE_URL, else the
embedded one), MariaDB when ETL_EXPRESS_TEST_MYSQL_URL is set, and unique schema names."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import psycopg
import pytest


def _pg_url() -> str:
    url = os.environ.get("ETL_EXPRESS_TEST_DATABASE_URL")
    if url:
        return url
    from etl_express.store.embedded import embedded_url

    return embedded_url()


@pytest.fixture(scope="session")
def pg_url() -> str:
    """libpq URL of the test PostgreSQL; also exported as ETL_EXPRESS_DATABASE_URL."""
    url = _pg_url()
    os.environ["ETL_EXPRESS_DATABASE_URL"] = url
    return url


@pytest.fixture(scope="session")
def mysql_url() -> str:
    url = os.environ.get("ETL_EXPRESS_TEST_MYSQL_URL")
    if not url:
        pytest.skip("ETL_EXPRESS_TEST_MYSQL_URL is not set (MariaDB tests run in CI)")
    return url


@pytest.fixture
def schema(pg_url: str) -> Iterator[str]:
    """A fresh PostgreSQL schema for one test, dropped afterwards."""
    name = "t_" + uuid.uuid4().hex[:10]
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {name}")
    yield name
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")


@pytest.fixture
def pipeline_name() -> str:
    return "test_" + uuid.uuid4().hex[:10]


def pg_exec(url: str, sql: str, params: object = None) -> list[tuple]:
    """Run one statement on PostgreSQL and return its rows (empty for non-queries)."""
    with psycopg.connect(url, autocommit=True) as conn:
        cur = conn.execute(sql, params)  # type: ignore[arg-type]
        return cur.fetchall() if cur.description else []
