"""Shared fixtures: a real PostgreSQL (server from ETL_EXPRESS_TEST_DATABASE_URL, else the
embedded one), MariaDB when ETL_EXPRESS_TEST_MYSQL_URL is set, and unique schema names."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

#: the xdist worker running this process ("gw0", "gw1"...), None without xdist
WORKER = os.environ.get("PYTEST_XDIST_WORKER")


def _own_database(url: str, create: Callable[[str, str], None]) -> str:
    """``url`` with its database renamed for this xdist worker (created when missing), so
    that workers never see each other's state tables; ``url`` itself without xdist."""
    if not WORKER:
        return url
    parts = urlsplit(url)
    base = parts.path.lstrip("/") or "test"
    name = f"{base}_{WORKER}"
    create(urlunsplit(parts), name)
    return urlunsplit(parts._replace(path="/" + name))


def _create_pg(url: str, name: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def _create_mysql(url: str, name: str) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(f"CREATE DATABASE IF NOT EXISTS `{name}`")
    finally:
        engine.dispose()


def pytest_configure(config: pytest.Config) -> None:
    """Under xdist each worker gets its own PostgreSQL and MariaDB database and its own
    ETL_EXPRESS_HOME: tests that judge the whole store (``status`` of an empty store) stay
    true while another worker loads."""
    if not WORKER:
        return
    for name, create in (
        ("ETL_EXPRESS_TEST_DATABASE_URL", _create_pg),
        ("ETL_EXPRESS_TEST_MYSQL_URL", _create_mysql),
    ):
        if os.environ.get(name):
            os.environ[name] = _own_database(os.environ[name], create)
    home = os.environ.get("ETL_EXPRESS_HOME")
    if home:
        os.environ["ETL_EXPRESS_HOME"] = os.path.join(home, WORKER)
        os.makedirs(os.environ["ETL_EXPRESS_HOME"], exist_ok=True)


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


@pytest.fixture(scope="module", autouse=True)
def _logging_unconfigured_after_each_file() -> Iterator[None]:
    """A test file that configured logging leaves it configured for its own tests only: at
    its end the library is as an unconfigured script has it (a run's lines to the store), so
    that the next file on the same worker does not inherit its handlers."""
    yield
    from etl_express import logs
    from etl_express.store import runlog

    # configure_logging always leaves settings other than the defaults (store and via_loguru
    # both follow its database= argument), so they tell whether it was called
    if runlog.settings != runlog.RunLogSettings():
        logs.shutdown_logging()


def state_rows(url: str, table: str, pipeline: str) -> int:
    """How many rows of ``pipeline`` the state table ``etl_express.<table>`` holds; 0 when
    the store was never created (a run refused before anything was written)."""
    if pg_exec(url, "SELECT to_regclass(%s)", [f"etl_express.{table}"])[0][0] is None:
        return 0
    found = pg_exec(
        url, f"SELECT count(*) FROM etl_express.{table} WHERE pipeline = %s", [pipeline]
    )
    return int(found[0][0])


#: the longest files (minutes each under load): started first, so that under xdist they run
#: beside the many short files instead of after them
LONG_FIRST = (
    "tests/test_readme.py",
    "tests/native/test_sanitizers.py",
    "tests/airflow/test_served.py",
    "tests/test_template.py",
    "tests/test_security.py",
    "tests/reconcile/test_deletes.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Order the long files first (a stable sort: every file's own order is kept)."""

    def rank(item: pytest.Item) -> int:
        path = item.nodeid.split("::")[0]
        return LONG_FIRST.index(path) if path in LONG_FIRST else len(LONG_FIRST)

    items.sort(key=rank)
