"""Row hashes (``deletes=``) hold nothing a reader of the target could test guesses against:
the key comes from the secret store only (no key in any database), and the hash covers only
the columns the target receives unchanged and in clear."""

from __future__ import annotations

import datetime as dt
import secrets

import psycopg
import pytest
import sqlalchemy as sa

import etl_express as etl
from etl_express.anonymizers import Generalize, Pseudonymize
from etl_express.anonymizers.rowhash import row_hash_columns, row_hash_key
from etl_express.sinks import PostgresSink
from etl_express.sources import SQLSource
from etl_express.sources.sql.checksums import row_hash_column

from ..conftest import pg_exec


@pytest.fixture
def people(pg_url: str, schema: str) -> str:
    table = f"{schema}.people"
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(
            f"CREATE TABLE {table} (id int PRIMARY KEY, email text, birth_date date, "
            "city text, amount int, updated_at timestamptz DEFAULT now())"
        )
        for i in range(1, 21):
            conn.execute(
                f"INSERT INTO {table} (id, email, birth_date, city, amount) VALUES (%s, %s, %s, %s, %s)",
                [i, f"user{i}@example.org", dt.date(1980, 1 + i % 12, 2 + i), "Тверь", i * 10],
            )
    return table


def _pipeline(pg_url: str, schema: str, table: str, name: str, key: etl.SecretRef) -> etl.Pipeline:
    return etl.Pipeline(
        name,
        SQLSource(
            pg_url, table, primary_key="id", cursor="updated_at", pii=["email", "birth_date"]
        ),
        anonymizers=[Pseudonymize(["email"], key=key), Generalize(["birth_date"], to="year")],
        sink=PostgresSink(f"{schema}.target", url=pg_url),
        deletes="soft",
        progress=False,
    )


def test_row_hashes_are_keyed_by_the_secret_store_over_clear_columns_only(
    pg_url: str, schema: str, pipeline_name: str, people: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ETL_EXPRESS_ROWHASH_ANON", secrets.token_urlsafe(48))
    monkeypatch.setenv("ETL_EXPRESS_ROW_HASH_KEY", secrets.token_urlsafe(48))
    key = etl.secret("ROWHASH_ANON")
    pipeline = _pipeline(pg_url, schema, people, pipeline_name, key)
    pipeline.store.ensure_schema()
    legacy = secrets.token_hex(32)  # what earlier versions stored next to the data
    pg_exec(
        pg_url,
        "INSERT INTO etl_express.row_hash_keys (pipeline, key, created_at) VALUES (%s, %s, now())",
        [pipeline_name, legacy],
    )
    assert pipeline.run().ok
    # no key in any database any more
    assert pg_exec(
        pg_url,
        "SELECT count(*) FROM etl_express.row_hash_keys WHERE pipeline = %s",
        [pipeline_name],
    ) == [(0,)]
    derived = row_hash_key(pipeline)
    dump = str(pg_exec(pg_url, f"SELECT t::text FROM {schema}.target t"))
    assert derived not in dump and legacy not in dump
    # the hash covers exactly the columns the target holds in clear, keyed by the secret
    covered = row_hash_columns(
        pipeline, ["id", "email", "birth_date", "city", "amount", "updated_at"]
    )
    assert covered == ["id", "city", "amount", "updated_at"]
    engine = sa.create_engine(pg_url)
    try:
        src = sa.Table(people.split(".")[1], sa.MetaData(), schema=schema, autoload_with=engine)
        expected = sa.select(
            src.c.id, row_hash_column("postgresql", [src.c[c] for c in covered], derived)
        )
        with engine.connect() as conn:
            want = dict(conn.execute(expected).all())
    finally:
        engine.dispose()
    stored = dict(pg_exec(pg_url, f"SELECT id, _etl_row_hash FROM {schema}.target"))
    assert stored == want
    # another secret, another key: a reader who could get one pipeline's store learns nothing
    monkeypatch.setenv("ETL_EXPRESS_ROW_HASH_KEY", secrets.token_urlsafe(48))
    assert row_hash_key(pipeline) != derived


def test_without_a_row_hash_secret_the_pseudonymization_key_is_used(
    pg_url: str, schema: str, pipeline_name: str, people: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ETL_EXPRESS_ROW_HASH_KEY", raising=False)
    monkeypatch.delenv("ROW_HASH_KEY", raising=False)
    monkeypatch.setenv("ETL_EXPRESS_ROWHASH_ANON", secrets.token_urlsafe(48))
    pipeline = _pipeline(pg_url, schema, people, pipeline_name, etl.secret("ROWHASH_ANON"))
    first = row_hash_key(pipeline)
    monkeypatch.setenv("ETL_EXPRESS_ROWHASH_ANON", secrets.token_urlsafe(48))
    assert row_hash_key(pipeline) != first  # derived from the secret, nothing stored
