"""End-to-end pipeline behaviour against a real PostgreSQL."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid

import pyarrow as pa
import pytest

import etl_express as etl
from etl_express import AnonymizationError, Batch, ETLConfigError, Source, SourceError
from etl_express.retry import RetryPolicy
from etl_express.sinks import PostgresSink
from etl_express.sources import SQLSource

from .conftest import pg_exec


class ListSource(Source):
    """Dict or Arrow batches from memory, resumable by index."""

    def __init__(self, rows, batch_size=3, arrow=False, pii=()):
        self.rows, self.batch_size, self.arrow = rows, batch_size, arrow
        self.name, self.primary_key, self.pii = "list", ["id"], list(pii)

    def read(self, position=None, partition=None):
        start = position or 0
        for i in range(start, len(self.rows), self.batch_size):
            chunk = self.rows[i : i + self.batch_size]
            data = pa.RecordBatch.from_pylist(chunk) if self.arrow else chunk
            yield Batch(data, position=i + len(chunk))


ROWS = [
    {"id": i, "Name": f"n{i}", "score": i * 0.5, "tags": [i, i + 1] if i % 2 else None}
    for i in range(1, 11)
]


def target_rows(url, table, columns="id, name, score, tags"):
    return pg_exec(url, f"SELECT {columns} FROM {table} ORDER BY id")


@pytest.mark.parametrize("arrow", [False, True], ids=["dicts", "arrow"])
def test_dict_and_arrow_sources_land_in_common_format(pg_url, schema, pipeline_name, arrow):
    rows = (
        ROWS
        if not arrow
        else [{**r, "tags": json.dumps(r["tags"]) if r["tags"] else None} for r in ROWS]
    )
    pipeline = etl.Pipeline(
        pipeline_name, ListSource(rows, arrow=arrow), sink=PostgresSink(f"{schema}.items")
    )
    result = pipeline.run()
    assert (result.status, result.rows_read, result.rows_written, result.batches) == (
        "succeeded",
        10,
        10,
        4,
    )
    assert {c.name: c.status for c in result.checks}["reconciliation"] == "passed"
    got = target_rows(pg_url, f"{schema}.items")
    assert [r[0] for r in got] == list(range(1, 11))
    assert got[0][1] == "n1" and got[0][2] == 0.5
    records = list(etl.read(f"{schema}.items", order_by=["id"]))
    assert len(records) == 10
    for record in records:
        assert json.loads(json.dumps(record)) == record
        assert record["_etl_run_id"] == result.run_id and record["_etl_source"] == "list"
        assert isinstance(record["_etl_loaded_at"], str) and record["_etl_loaded_at"].endswith(
            "+00:00"
        )
    # recorded state
    stored = pg_exec(
        pg_url,
        "SELECT status, rows_read, rows_written FROM etl_express.runs WHERE run_id = %s",
        (result.run_id,),
    )
    assert stored == [("succeeded", 10, 10)]
    checks = pg_exec(
        pg_url,
        "SELECT name, status FROM etl_express.quality_checks WHERE run_id = %s ORDER BY name",
        (result.run_id,),
    )
    assert ("reconciliation", "passed") in checks
    # a second run resumes after the checkpoint: nothing new
    assert pipeline.run().rows_read == 0
    # a reset replays everything, and upserts keep one row per key
    again = pipeline.run(reset=True)
    assert again.rows_written == 10
    assert pg_exec(pg_url, f"SELECT count(*), count(DISTINCT id) FROM {schema}.items") == [(10, 10)]


def make_source_table(url, schema, rows=200, equal_every=10):
    pg_exec(
        url,
        f"CREATE TABLE {schema}.src (id int PRIMARY KEY, name text, amount numeric(10,2), updated_at timestamptz NOT NULL)",
    )
    pg_exec(
        url,
        f"""INSERT INTO {schema}.src SELECT g, 'name ' || g, g * 1.25,
                     timestamptz '2024-01-01 00:00:00+00' + (g / {equal_every}) * interval '1 day'
                     FROM generate_series(1, {rows}) g""",
    )


@pytest.mark.parametrize("fast_path", [True, False], ids=["adbc", "sqlalchemy"])
def test_incremental_with_equal_cursor_values(pg_url, schema, pipeline_name, fast_path):
    make_source_table(pg_url, schema)
    source = SQLSource(
        pg_url,
        f"{schema}.src",
        primary_key="id",
        cursor="updated_at",
        batch_size=7,
        fast_path=fast_path,
    )
    pipeline = etl.Pipeline(pipeline_name, source, sink=PostgresSink(f"{schema}.dst"))
    first = pipeline.run()
    assert (
        first.rows_read == 200 and first.batches == 29
    )  # batch edges fall inside runs of equal cursors
    assert pg_exec(pg_url, f"SELECT count(*), count(DISTINCT id) FROM {schema}.dst") == [(200, 200)]
    # new rows share the last cursor value; updated rows move past it
    pg_exec(
        pg_url,
        f"""INSERT INTO {schema}.src SELECT g, 'late ' || g, 1, (SELECT max(updated_at) FROM {schema}.src)
                        FROM generate_series(201, 205) g""",
    )
    pg_exec(
        pg_url, f"UPDATE {schema}.src SET name = 'changed', updated_at = now() WHERE id IN (3, 50)"
    )
    second = pipeline.run()
    assert second.rows_read == 7
    assert pg_exec(pg_url, f"SELECT count(*) FROM {schema}.dst") == [(205,)]
    assert pg_exec(pg_url, f"SELECT id FROM {schema}.dst WHERE name = 'changed' ORDER BY id") == [
        (3,),
        (50,),
    ]
    assert pipeline.run().rows_read == 0
    src = pg_exec(pg_url, f"SELECT id, name, amount FROM {schema}.src ORDER BY id")
    assert pg_exec(pg_url, f"SELECT id, name, amount FROM {schema}.dst ORDER BY id") == src


def test_schema_growth_adds_columns(pg_url, schema, pipeline_name):
    make_source_table(pg_url, schema, rows=20)
    source = SQLSource(pg_url, f"{schema}.src", primary_key="id", cursor="updated_at", batch_size=8)
    pipeline = etl.Pipeline(pipeline_name, source, sink=PostgresSink(f"{schema}.dst"))
    pipeline.run()
    pg_exec(pg_url, f"ALTER TABLE {schema}.src ADD COLUMN segment text")
    pg_exec(pg_url, f"UPDATE {schema}.src SET segment = 'vip', updated_at = now() WHERE id <= 5")
    assert pipeline.run().rows_read == 5
    assert pg_exec(
        pg_url,
        f"SELECT count(*) FILTER (WHERE segment = 'vip'), count(*) FILTER (WHERE segment IS NULL) FROM {schema}.dst",
    ) == [(5, 15)]


def test_sqlite_source(tmp_path, schema, pipeline_name):
    import sqlite3

    db = tmp_path / "crm.db"
    with sqlite3.connect(db) as conn:
        conn.execute(
            "CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT, updated_at TIMESTAMP)"
        )
        conn.executemany(
            "INSERT INTO customers VALUES (?, ?, ?)",
            [(i, f"c{i}", f"2024-01-0{1 + i % 3} 10:00:00") for i in range(1, 51)],
        )
    source = SQLSource(
        f"sqlite:///{db}", "customers", primary_key="id", cursor="updated_at", batch_size=9
    )
    result = etl.Pipeline(pipeline_name, source, sink=PostgresSink(f"{schema}.customers")).run()
    assert result.rows_written == 50
    assert [r["id"] for r in etl.read(f"{schema}.customers", order_by=["id"])] == list(range(1, 51))


def test_bad_input_gives_clear_errors(pg_url, schema, pipeline_name):
    make_source_table(pg_url, schema, rows=5)
    sink = PostgresSink(f"{schema}.dst")
    with pytest.raises(SourceError, match=rf"table '{schema}.nope' does not exist"):
        etl.Pipeline(
            pipeline_name, SQLSource(pg_url, f"{schema}.nope", primary_key="id"), sink=sink
        ).run()
    with pytest.raises(ETLConfigError, match="cursor column 'changed' does not exist"):
        etl.Pipeline(
            pipeline_name,
            SQLSource(pg_url, f"{schema}.src", primary_key="id", cursor="changed"),
            sink=sink,
        ).run()
    with pytest.raises(ETLConfigError, match="primary key column 'uid' does not exist"):
        etl.Pipeline(
            pipeline_name, SQLSource(pg_url, f"{schema}.src", primary_key="uid"), sink=sink
        ).run()
    password = uuid.uuid4().hex  # a random one: nothing literal for the secrets scan to find
    bad_url = f"postgresql://etl:{password}@127.0.0.1:1/nowhere"
    with pytest.raises(SourceError) as info:
        etl.Pipeline(
            pipeline_name,
            SQLSource(bad_url, f"{schema}.src", primary_key="id"),
            sink=sink,
            retry=RetryPolicy(attempts=0),
        ).run()
    assert "cannot read" in str(info.value) and password not in str(info.value)
    with pytest.raises(ETLConfigError, match="exactly one of table= or query="):
        SQLSource(pg_url)
    with pytest.raises(ETLConfigError, match="needs primary_key"):
        SQLSource(pg_url, "src")
    assert password not in repr(SQLSource(bad_url, "src", primary_key="id"))


def test_query_source(pg_url, schema, pipeline_name):
    make_source_table(pg_url, schema, rows=30)
    source = SQLSource(
        pg_url,
        query=f"SELECT id, upper(name) AS name FROM {schema}.src WHERE id % 2 = 0",
        primary_key="id",
        batch_size=4,
    )
    result = etl.Pipeline(pipeline_name, source, sink=PostgresSink(f"{schema}.even")).run()
    assert result.rows_written == 15
    assert pg_exec(pg_url, f"SELECT name FROM {schema}.even WHERE id = 2") == [("NAME 2",)]


def test_pii_columns_must_be_covered(schema, pipeline_name):
    pipeline = etl.Pipeline(
        pipeline_name, ListSource(ROWS, pii=["Name"]), sink=PostgresSink(f"{schema}.x")
    )
    with pytest.raises(AnonymizationError, match=r"\['name'\] would reach the sink"):
        pipeline.run()


KILL_SCRIPT = textwrap.dedent(
    """
    import sys, time
    import etl_express as etl
    from etl_express import Transformer
    from etl_express.sinks import PostgresSink
    from etl_express.sources import SQLSource

    class Slow(Transformer):
        def transform(self, batch):
            time.sleep(0.05)
            return batch

    url, schema, name, table = sys.argv[1:5]
    etl.Pipeline(name, SQLSource(url, f"{schema}.src", primary_key="id", cursor="updated_at", batch_size=100),
                 transformers=[Slow()], sink=PostgresSink(f"{schema}.{table}")).run()
    """
)


def content_hash(url, table):
    rows = pg_exec(url, f"SELECT id, name, amount, updated_at FROM {table} ORDER BY id")
    return len(rows), hashlib.sha256(repr(rows).encode()).hexdigest()


def test_sigkill_mid_run_then_rerun_matches_uninterrupted(pg_url, schema, pipeline_name, tmp_path):
    make_source_table(pg_url, schema, rows=6000, equal_every=37)
    script = tmp_path / "run.py"
    script.write_text(KILL_SCRIPT)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen(
        [sys.executable, str(script), pg_url, schema, pipeline_name, "killed"],
        env=env,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            done = pg_exec(
                pg_url,
                "SELECT coalesce(sum(batches), 0) FROM etl_express.runs WHERE pipeline = %s",
                (pipeline_name,),
            )[0][0]
            if done >= 5:
                break
            assert proc.poll() is None, "the pipeline process ended before it could be killed"
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    partial = pg_exec(pg_url, f"SELECT count(*) FROM {schema}.killed")[0][0]
    assert 0 < partial < 6000
    # the killed run's lease is stale only after its heartbeat expires; the same host sees its pid is gone
    pg_exec(
        pg_url,
        "UPDATE etl_express.runs SET heartbeat_at = now() - interval '1 hour' WHERE pipeline = %s AND status = 'running'",
        (pipeline_name,),
    )
    resumed = etl.Pipeline(
        pipeline_name,
        SQLSource(pg_url, f"{schema}.src", primary_key="id", cursor="updated_at", batch_size=100),
        sink=PostgresSink(f"{schema}.killed"),
    ).run()
    assert (
        resumed.rows_read == 6000 - partial
    )  # resumed from the committed checkpoint, nothing re-read
    etl.Pipeline(
        pipeline_name + "_ref",
        SQLSource(pg_url, f"{schema}.src", primary_key="id", cursor="updated_at", batch_size=100),
        sink=PostgresSink(f"{schema}.reference"),
    ).run()
    assert content_hash(pg_url, f"{schema}.killed") == content_hash(pg_url, f"{schema}.reference")
    assert content_hash(pg_url, f"{schema}.killed")[0] == 6000
    statuses = pg_exec(
        pg_url,
        "SELECT status FROM etl_express.runs WHERE pipeline = %s ORDER BY started_at",
        (pipeline_name,),
    )
    assert statuses == [("abandoned",), ("succeeded",)]


def test_a_key_repeated_inside_one_batch_lands_once_with_its_last_values(
    pg_url, schema, pipeline_name
):
    rows = [
        {"id": 1, "name": "first"},
        {"id": 2, "name": "b"},
        {"id": 1, "name": "second"},
        {"id": 3, "name": "c"},
        {"id": 3, "name": "c2"},
        {"id": 4, "name": "d"},
    ]
    result = etl.Pipeline(
        pipeline_name, ListSource(rows, batch_size=6), sink=PostgresSink(f"{schema}.dups")
    ).run()
    assert result.status == "succeeded", result
    assert pg_exec(pg_url, f"SELECT id, name FROM {schema}.dups ORDER BY id") == [
        (1, "second"),
        (2, "b"),
        (3, "c2"),
        (4, "d"),
    ]


def test_batches_are_freed_without_waiting_for_the_cyclic_gc(pg_url, schema, pipeline_name):
    """Memory stays flat over long runs only if no batch is caught in a reference cycle
    (a cycle frees its batch only when the cyclic collector happens to run)."""
    import gc

    rows = [{"id": i, "name": f"n{i}", "bad": None} for i in range(1, 200)]
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        result = etl.Pipeline(
            pipeline_name,
            ListSource(rows, batch_size=50, arrow=True),
            sink=PostgresSink(f"{schema}.freed"),
        ).run()
        gc.collect()
        caught = [
            o
            for o in gc.garbage
            if isinstance(o, (pa.RecordBatch, pa.Table, pa.Array, pa.ChunkedArray))
        ]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
    assert result.status == "succeeded" and result.rows_written == 199
    assert caught == []
