"""kill -9 of a loading process at chosen moments, then a normal run: the target equals the
source row for row, no key twice, the key built, every row's lineage filled, no run left
running — real PostgreSQL, a real process killed with SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

import etl_express as etl
from etl_express.sinks.postgres import PostgresSink
from etl_express.sources.sql import SQLSource
from tests.conftest import pg_exec

ROOT = Path(__file__).resolve().parents[2]
ROWS = 1000  # ten batches of 100


def make_source(url: str, schema: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            f"CREATE TABLE {schema}.src (id bigint PRIMARY KEY, name text, amount numeric(10,2))"
        )
        conn.execute(
            f"INSERT INTO {schema}.src SELECT g, 'name ' || g, g / 7.0 "
            f"FROM generate_series(1, {ROWS}) g"
        )


def content(url: str, table: str) -> tuple[int, str]:
    return pg_exec(
        url,
        f"SELECT count(*), md5(string_agg(md5(row(id, name, amount)::text), '' ORDER BY id)) "
        f"FROM {table}",
    )[0]


def killed_run(url: str, schema: str, name: str, kill_at: str, *extra: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "tests.reliability.killpoints", url, schema, name, kill_at, *extra],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        timeout=120,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-3000:]


def assert_exact(url: str, schema: str, name: str, *, history: bool = False) -> None:
    target = f"{schema}.target"
    current = f"(SELECT * FROM {target} WHERE _etl_valid_to IS NULL)" if history else target
    assert content(url, f"{current} t") == content(url, f"{schema}.src")
    dup = pg_exec(
        url, f"SELECT count(*) FROM (SELECT id FROM {current} t GROUP BY id HAVING count(*) > 1) d"
    )
    assert dup == [(0,)]
    missing = pg_exec(
        url,
        f"SELECT count(*) FROM {target} WHERE _etl_run_id IS NULL OR _etl_source IS NULL "
        f"OR _etl_loaded_at IS NULL",
    )
    assert missing == [(0,)]
    runs = {r[0] for r in pg_exec(url, f"SELECT _etl_run_id FROM {target}")}
    known = {
        r[0]
        for r in pg_exec(url, "SELECT run_id FROM etl_express.runs WHERE pipeline = %s", (name,))
    }
    assert runs <= known  # every row names a run that exists
    running = pg_exec(
        url,
        "SELECT count(*) FROM etl_express.runs WHERE pipeline = %s AND status = 'running'",
        (name,),
    )
    assert running == [(0,)]


def resume(url: str, schema: str, name: str, *, history: bool = False) -> etl.RunResult:
    result = etl.Pipeline(
        name,
        SQLSource(url, table=f"{schema}.src", primary_key="id", batch_size=100),
        sink=PostgresSink(f"{schema}.target", history=history),
        detect_pii="off",
        progress=False,
    ).run()
    assert result.ok, result.checks
    return result


def key_built(url: str, table: str) -> bool:
    return bool(
        pg_exec(
            url,
            f"SELECT count(*) FROM pg_index WHERE indrelid = '{table}'::regclass AND indisunique",
        )[0][0]
    )


@pytest.mark.parametrize(
    "kill_at", ["batch:1", "batch:4", "commit:3", "commit:10", "key_build", "finish_load", "checks"]
)
def test_a_first_load_killed_anywhere_resumes_to_an_exact_copy(
    pg_url, schema, pipeline_name, kill_at
):
    make_source(pg_url, schema)
    killed_run(pg_url, schema, pipeline_name, kill_at)
    result = resume(pg_url, schema, pipeline_name)
    assert_exact(pg_url, schema, pipeline_name)
    assert key_built(pg_url, f"{schema}.target")
    assert result.rows_read <= ROWS
    statuses = dict(
        pg_exec(
            pg_url,
            "SELECT status, count(*) FROM etl_express.runs WHERE pipeline = %s GROUP BY status",
            (pipeline_name,),
        )
    )
    assert statuses.get("abandoned") == 1, statuses


@pytest.mark.parametrize("kill_at", ["history:1", "history:5", "commit:5"])
def test_a_history_load_killed_resumes_to_one_current_version_per_key(
    pg_url, schema, pipeline_name, kill_at
):
    make_source(pg_url, schema)
    killed_run(pg_url, schema, pipeline_name, kill_at, "history")
    resume(pg_url, schema, pipeline_name, history=True)
    assert_exact(pg_url, schema, pipeline_name, history=True)
    # a second run over unchanged data adds no version
    before = pg_exec(pg_url, f"SELECT count(*) FROM {schema}.target")
    resume(pg_url, schema, pipeline_name, history=True)
    assert pg_exec(pg_url, f"SELECT count(*) FROM {schema}.target") == before
