"""kill -9 of a whole replication with worker processes (parent and workers at once), at a
chosen commit of each worker: the next run leaves every table equal to its source, keyed,
with its lineage."""

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
from etl_express.sources import SQLDatabase
from tests.conftest import pg_exec

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import os, signal, sys
import etl_express as etl
from etl_express._engine.batches import PartitionRunner
from etl_express.sinks.postgres import PostgresSink
from etl_express.sources import SQLDatabase

url, schema, name, at = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
commit, seen = PartitionRunner._commit, [0]

def killing_commit(self, item):
    commit(self, item)
    seen[0] += 1
    if seen[0] == at:  # this worker's at-th commit: the whole group goes
        os.killpg(os.getpgid(0), signal.SIGKILL)

PartitionRunner._commit = killing_commit
etl.Replication(name, SQLDatabase(url=url, schema=schema, batch_size=100),
    sink=PostgresSink(schema=schema + "_copy", url=url), detect_pii="off").run(workers=2)
"""

TABLES = {"a": 300, "b": 500, "c": 200, "d": 40}


@pytest.mark.parametrize("at", [2, 3, 5])
def test_a_killed_replication_with_workers_resumes_every_table_exactly(
    pg_url, schema, pipeline_name, tmp_path, at
):
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema}_copy CASCADE")
        for t, n in TABLES.items():
            conn.execute(f"CREATE TABLE {schema}.{t} (id bigint PRIMARY KEY, v text)")
            conn.execute(
                f"INSERT INTO {schema}.{t} SELECT g, 'v' || g FROM generate_series(1, {n}) g"
            )
    script = tmp_path / "replicate.py"
    script.write_text(SCRIPT)
    proc = subprocess.run(
        [sys.executable, str(script), pg_url, schema, pipeline_name, str(at)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        timeout=120,
        start_new_session=True,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-3000:]
    try:
        result = etl.Replication(
            pipeline_name,
            SQLDatabase(url=pg_url, schema=schema, batch_size=100),
            sink=PostgresSink(schema=f"{schema}_copy", url=pg_url),
            detect_pii="off",
        ).run(workers=2)
        assert result.ok, result.failed
        digest = "SELECT count(*), md5(string_agg(md5(row(id, v)::text), '' ORDER BY id)) FROM {}"
        for t in TABLES:
            target = f"{schema}_copy.{t}"
            assert pg_exec(pg_url, digest.format(target)) == pg_exec(
                pg_url, digest.format(f"{schema}.{t}")
            ), t
            assert pg_exec(
                pg_url,
                f"SELECT count(*) FROM pg_index WHERE indrelid = '{target}'::regclass "
                "AND indisunique",
            ) == [(1,)], t
            assert pg_exec(pg_url, f"SELECT count(*) FROM {target} WHERE _etl_run_id IS NULL") == [
                (0,)
            ], t
        running = pg_exec(
            pg_url,
            "SELECT count(*) FROM etl_express.runs WHERE pipeline LIKE %s AND status = 'running'",
            (pipeline_name + "%",),
        )
        assert running == [(0,)]
    finally:
        pg_exec(pg_url, f"DROP SCHEMA IF EXISTS {schema}_copy CASCADE")


PARALLEL = """
import os, signal, sys
import etl_express as etl
from etl_express._engine.batches import PartitionRunner
from etl_express.sinks.postgres import PostgresSink
from etl_express.sources.sql import SQLSource

url, schema, name, at = sys.argv[1:5]

def die():
    os.killpg(os.getpgid(0), signal.SIGKILL)

if at == "finish_load":
    finish = PostgresSink.finish_load
    def killing_finish(self, conn, key):
        finish(self, conn, key)
        die()
    PostgresSink.finish_load = killing_finish
else:
    commit, seen = PartitionRunner._commit, [0]
    def killing_commit(self, item):
        commit(self, item)
        seen[0] += 1
        if seen[0] == int(at):
            die()
    PartitionRunner._commit = killing_commit

if __name__ == "__main__":
    etl.Pipeline(name, SQLSource(url, table=schema + ".src", primary_key="id", batch_size=100),
        sink=PostgresSink(schema + ".target", url=url), detect_pii="off").run(workers=2)
"""


@pytest.mark.parametrize("at", ["3", "5", "finish_load"])
def test_a_killed_parallel_first_load_resumes_exactly(pg_url, schema, pipeline_name, tmp_path, at):
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE {schema}.src (id bigint PRIMARY KEY, v text)")
        conn.execute(f"INSERT INTO {schema}.src SELECT g, 'v' || g FROM generate_series(1, 1000) g")
    script = tmp_path / "parallel.py"
    script.write_text(PARALLEL)
    proc = subprocess.run(
        [sys.executable, str(script), pg_url, schema, pipeline_name, at],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        timeout=120,
        start_new_session=True,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-3000:]
    result = etl.Pipeline(
        pipeline_name,
        etl.sources.SQLSource(pg_url, table=f"{schema}.src", primary_key="id", batch_size=100),
        sink=PostgresSink(f"{schema}.target", url=pg_url),
        detect_pii="off",
    ).run(workers=2)
    assert result.ok
    digest = "SELECT count(*), md5(string_agg(md5(row(id, v)::text), '' ORDER BY id)) FROM {}"
    assert pg_exec(pg_url, digest.format(f"{schema}.target")) == pg_exec(
        pg_url, digest.format(f"{schema}.src")
    )
    assert pg_exec(
        pg_url,
        f"SELECT count(*) FROM pg_index WHERE indrelid = '{schema}.target'::regclass "
        "AND indisunique",
    ) == [(1,)]
    assert pg_exec(pg_url, f"SELECT count(*) FROM {schema}.target WHERE _etl_run_id IS NULL") == [
        (0,)
    ]
