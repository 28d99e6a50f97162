"""Sources under attack: NULL cursor values, ties of the cursor across batches, keys of many
types, killed loads resumed — the target ends equal to the source, or the run fails loudly.
PostgreSQL and MariaDB sources."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa

import etl_express as etl
from etl_express.sinks.postgres import PostgresSink
from etl_express.sources.sql import SQLSource
from tests.conftest import pg_exec

ROOT = Path(__file__).resolve().parents[2]


def pipeline(src_url, table, target_url, target, name, key="id", cursor=None):
    return etl.Pipeline(
        name,
        SQLSource(src_url, table=table, primary_key=key, cursor=cursor, batch_size=100),
        sink=PostgresSink(target, url=target_url),
        detect_pii="off",
        progress=False,
    )


def killed(url, schema, name, kill_at, source):
    proc = subprocess.run(
        [sys.executable, "-m", "tests.reliability.killpoints", url, schema, name, kill_at],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), "EO_SOURCE": json.dumps(source)},
        capture_output=True,
        timeout=120,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-3000:]


@pytest.fixture(params=["postgres", "mariadb"])
def src(request, pg_url, schema):
    """(url, table) of an empty source schema: PostgreSQL or MariaDB."""
    if request.param == "postgres":
        yield pg_url, schema
        return
    url = request.getfixturevalue("mysql_url")
    yield url, None


def create(url, ddl, rows_sql, schema):
    """Run ``ddl`` and ``rows_sql`` (a list of statements) in the source database."""
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for s in [ddl, *rows_sql]:
            conn.execute(sa.text(s))
    engine.dispose()


def test_a_null_cursor_never_loses_rows_silently(src, pg_url, schema, pipeline_name):
    url, src_schema = src
    table = f"{src_schema}.src" if src_schema else f"nullcur_{pipeline_name}"
    ts = "timestamptz" if src_schema else "datetime(6)"
    create(
        url,
        f"CREATE TABLE {table} (id int PRIMARY KEY, u {ts} NULL, v text)",
        [
            f"INSERT INTO {table} VALUES ({i}, "
            + ("NULL" if i % 10 == 0 else f"'2024-01-01 00:{i // 60:02d}:{i % 60:02d}'")
            + f", 'v{i}')"
            for i in range(1, 251)
        ],
        schema,
    )
    try:
        p = pipeline(url, table, pg_url, f"{schema}.t", pipeline_name, cursor="u")
        with pytest.raises(etl.SourceError, match=r"'u'.* holds NULL"):
            p.run()
        with pytest.raises(etl.SourceError, match=r"'u'.* holds NULL"):  # and again, resumed
            p.run()
        # given values past the checkpoint: they arrive
        create(url, f"UPDATE {table} SET u = '2025-01-01 00:00:00' WHERE u IS NULL", [], schema)
        result = p.run()
        assert result.ok
        assert pg_exec(pg_url, f"SELECT count(*), count(DISTINCT id) FROM {schema}.t") == [
            (250, 250)
        ]
    finally:
        if not src_schema:
            create(url, f"DROP TABLE IF EXISTS {table}", [], schema)


KEYS = {
    "text": ("k text PRIMARY KEY", "'k' || lpad(g::text, 5, '0') || ' é'", ["k"]),
    "uuid": ("k uuid PRIMARY KEY", "md5(g::text)::uuid", ["k"]),
    "composite": ("a int, b text, PRIMARY KEY (a, b)", "g % 7, 'b' || g", ["a", "b"]),
    "negative_huge": (
        "k bigint PRIMARY KEY",
        "CASE WHEN g % 2 = 0 THEN -9223372036854775807 + g ELSE 9223372036854775807 - g END",
        ["k"],
    ),
}


@pytest.mark.parametrize("kind", sorted(KEYS))
@pytest.mark.parametrize("kill_at", ["commit:2", "batch:3", "finish_load"])
def test_keys_of_every_type_survive_a_kill(pg_url, schema, pipeline_name, kind, kill_at):
    cols, key_expr, key = KEYS[kind]
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE {schema}.src_k ({cols}, v text)")
        names = ", ".join(key)
        conn.execute(
            f"INSERT INTO {schema}.src_k ({names}, v) SELECT {key_expr}, 'v' || g "
            f"FROM generate_series(1, 550) g"
        )
    killed(
        pg_url,
        schema,
        pipeline_name,
        kill_at,
        {"table": f"{schema}.src_k", "primary_key": key},
    )
    result = pipeline(
        pg_url, f"{schema}.src_k", pg_url, f"{schema}.target", pipeline_name, key
    ).run()
    assert result.ok
    order = ", ".join(key)
    digest = "SELECT count(*), md5(string_agg(md5(row({0}, v)::text), '' ORDER BY {0})) FROM {1}"
    assert pg_exec(pg_url, digest.format(order, f"{schema}.target")) == pg_exec(
        pg_url, digest.format(order, f"{schema}.src_k")
    )
    assert pg_exec(
        pg_url,
        f"SELECT count(*) FROM (SELECT 1 FROM {schema}.target GROUP BY {order} "
        f"HAVING count(*) > 1) d",
    ) == [(0,)]


def test_cursor_ties_across_batches_survive_a_kill(pg_url, schema, pipeline_name):
    """350 rows share one cursor value, spanning four batches; killed after the second."""
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(
            f"CREATE TABLE {schema}.src_c (id int PRIMARY KEY, u timestamptz NOT NULL, v text)"
        )
        conn.execute(
            f"INSERT INTO {schema}.src_c SELECT g, CASE WHEN g BETWEEN 50 AND 400 "
            f"THEN '2024-06-01' ELSE '2024-01-01'::timestamptz + g * interval '1 day' END, "
            f"'v' || g FROM generate_series(1, 600) g"
        )
    spec = {"table": f"{schema}.src_c", "primary_key": "id", "cursor": "u"}
    killed(pg_url, schema, pipeline_name, "commit:2", spec)
    p = pipeline(pg_url, f"{schema}.src_c", pg_url, f"{schema}.target", pipeline_name, cursor="u")
    result = p.run()
    assert result.ok and result.rows_read == 400
    # a row updated at the tie's value without moving past the checkpoint is not re-read
    # (documented: deletes= catches it); a row moved forward is
    pg_exec(pg_url, f"UPDATE {schema}.src_c SET u = '2030-01-01', v = 'moved' WHERE id = 60")
    assert p.run().rows_read == 1
    digest = "SELECT count(*), md5(string_agg(md5(row(id, u, v)::text), '' ORDER BY id)) FROM {}"
    assert pg_exec(pg_url, digest.format(f"{schema}.target")) == pg_exec(
        pg_url, digest.format(f"{schema}.src_c")
    )
