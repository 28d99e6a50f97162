"""A database of its own per privacy module: its pg_dump holds only what the module wrote."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy.engine import make_url


@pytest.fixture(scope="module")
def own_db() -> Iterator[str]:
    from ..conftest import _pg_url

    base = _pg_url()
    name = f"{make_url(base).database}_priv_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = make_url(base).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        from etl_express.store.database import engine_for

        engine_for(url).dispose()
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
