"""A run's start recognises a store already at this version with every state table in two
catalog reads (``schema.is_current``), and otherwise creates or migrates it as before: a state
table missing from a store of this version is created again, and a store without one is made
from nothing."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

from etl_express.store.checkpoints import CheckpointStore
from etl_express.store.database import engine_for
from etl_express.store.schema import is_current, metadata
from tests.conftest import pg_exec


@pytest.fixture
def fresh_db(pg_url: str) -> Iterator[str]:
    name = "etlx_schema_" + uuid.uuid4().hex[:8]
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = pg_url.rsplit("/", 1)[0] + "/" + name
    try:
        yield url
    finally:
        engine_for(url).dispose()
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def current(url: str) -> bool:
    with engine_for(url).connect() as conn:
        return is_current(conn)


def test_a_store_is_made_then_recognised_and_a_lost_table_made_again(fresh_db: str) -> None:
    assert not current(fresh_db)  # no store at all
    CheckpointStore(fresh_db).ensure_schema()
    assert current(fresh_db)
    tables = {t.name for t in metadata.sorted_tables}
    lost = "quarantine" if "quarantine" in tables else sorted(tables)[0]
    pg_exec(fresh_db, f"DROP TABLE etl_express.{lost} CASCADE")
    assert not current(fresh_db)
    CheckpointStore(fresh_db).ensure_schema()  # a new process: nothing cached
    assert current(fresh_db)
    found = pg_exec(fresh_db, "SELECT to_regclass(%s) IS NOT NULL", (f"etl_express.{lost}",))
    assert found == [(True,)]


def test_an_older_version_is_migrated(fresh_db: str) -> None:
    CheckpointStore(fresh_db).ensure_schema()
    pg_exec(fresh_db, "UPDATE etl_express.meta SET value = '1' WHERE key = 'schema_version'")
    assert not current(fresh_db)
    CheckpointStore(fresh_db).ensure_schema()
    assert current(fresh_db)
