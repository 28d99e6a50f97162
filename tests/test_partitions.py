"""Partitions: balanced key ranges and time windows, one checkpoint each, parallel workers."""

# detect_pii="off" below: these tests load made-up people raw on purpose (not what they
# test); the personal-data detector has its own tests (tests/anonymizers/test_detection.py)

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

import etl_express as etl
from etl_express.sinks.postgres import PostgresSink
from etl_express.sources.sql import SQLSource
from etl_express.store import partition_key
from tests.conftest import pg_exec
from tests.reliability_sources import content_hash, make_source_table


def _ids(source: SQLSource, spec: dict) -> list[int]:
    return [i for b in source.read(None, spec) for i in b.data.column("id").to_pylist()]


def _assert_cover_once(source: SQLSource, specs: list[dict], total: int) -> list[int]:
    parts = [_ids(source, s) for s in specs]
    every = [i for p in parts for i in p]
    assert len(every) == len(set(every)) == total
    return [len(p) for p in parts]


def test_skewed_keys_give_balanced_key_ranges(pg_url, schema):
    make_source_table(
        pg_url, f"{schema}.src", 40_000
    )  # 20,000 dense keys, 20,000 spread over 8 * 10^8
    source = SQLSource(pg_url, table=f"{schema}.src", primary_key="id", batch_size=5000)

    specs = source.partitions(4)

    assert json.loads(json.dumps(specs)) == specs and len(specs) == 4
    assert (
        specs[0]["lo"] is None
        and specs[-1]["hi"] is None
        and {s["column"] for s in specs} == {"id"}
    )
    sizes = _assert_cover_once(source, specs, 40_000)
    assert max(sizes) <= 1.1 * min(sizes), sizes  # min/max arithmetic would give 25,000 / 5,000 ...


def test_cursor_time_windows(pg_url, schema):
    make_source_table(pg_url, f"{schema}.src", 9_000)
    source = SQLSource(pg_url, table=f"{schema}.src", primary_key="id", cursor="created_at")

    specs = source.partitions(3, column="created_at")

    assert [s["column"] for s in specs] == ["created_at"] * 3 and "$datetime" in specs[1]["lo"]
    assert _assert_cover_once(source, specs, 9_000) == [3000, 3000, 3000]


def test_generic_sql_uses_ntile(tmp_path):
    url = f"sqlite:///{tmp_path}/shop.db"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE orders (id INTEGER PRIMARY KEY, total REAL)"))
        ids = list(range(1, 501)) + [10_000 * i for i in range(1, 501)]  # skewed
        conn.execute(sa.text("INSERT INTO orders VALUES (:id, 1.0)"), [{"id": i} for i in ids])
    engine.dispose()
    source = SQLSource(url, table="orders", primary_key="id", batch_size=100)

    specs = source.partitions(4)

    assert _assert_cover_once(source, specs, 1000) == [250, 250, 250, 250]


def test_a_nullable_partition_column_with_nulls_is_refused(pg_url, schema):
    pg_exec(pg_url, f"CREATE TABLE {schema}.src (id bigint PRIMARY KEY, seen_at timestamptz)")
    pg_exec(pg_url, f"INSERT INTO {schema}.src VALUES (1, now()), (2, NULL)")
    source = SQLSource(pg_url, table=f"{schema}.src", primary_key="id")
    with pytest.raises(etl.ETLConfigError, match="'seen_at' has 1 NULL values"):
        source.partitions(2, column="seen_at")
    assert source.partitions(1) == [{}]


def test_each_partition_keeps_its_own_checkpoint(pg_url, schema, pipeline_name):
    make_source_table(pg_url, f"{schema}.src", 4_000)
    pipeline = etl.Pipeline(
        pipeline_name,
        SQLSource(pg_url, table=f"{schema}.src", primary_key="id", batch_size=500),
        sink=PostgresSink(f"{schema}.target"),
        detect_pii="off",
    )
    first, second = pipeline.partitions(2)

    assert pipeline.run(partition=first).rows_read == 2000
    assert pipeline.run(partition=first).rows_read == 0  # resumed from its checkpoint
    keys = {
        r[0]
        for r in pg_exec(
            pg_url,
            "SELECT partition FROM etl_express.checkpoints WHERE pipeline = %s",
            (pipeline_name,),
        )
    }
    assert keys == {partition_key(first)}
    assert pipeline.run(partition=second).rows_read == 2000
    assert content_hash(pg_url, f"{schema}.target") == content_hash(pg_url, f"{schema}.src")


def test_parallel_workers_return_a_combined_result(pg_url, schema, pipeline_name):
    make_source_table(pg_url, f"{schema}.src", 10_000)
    pipeline = etl.Pipeline(
        pipeline_name,
        SQLSource(pg_url, table=f"{schema}.src", primary_key="id", batch_size=1000),
        sink=PostgresSink(f"{schema}.target"),
        detect_pii="off",
    )

    result = pipeline.run(workers=2)

    assert (
        result.ok
        and len(result.partitions) == 2
        and result.rows_read == result.rows_written == 10_000
    )
    assert sum(p.rows_read for p in result.partitions) == 10_000 and all(
        p.ok for p in result.partitions
    )
    assert {c.name: c.status for c in result.checks}["target_count"] == "passed"
    assert json.dumps(result.to_dict())
    assert content_hash(pg_url, f"{schema}.target") == content_hash(pg_url, f"{schema}.src")
    # two writers of one first load: each row carries the lineage of the partition's run that
    # wrote it, whichever of them added the lineage columns (sinks/pglineage.py)
    lineage = pg_exec(
        pg_url, f"SELECT _etl_run_id, count(*) FROM {schema}.target GROUP BY 1 ORDER BY 1"
    )
    assert lineage == sorted((p.run_id, p.rows_written) for p in result.partitions)
    plan = pg_exec(
        pg_url,
        "SELECT specs FROM etl_express.partition_plans WHERE pipeline = %s AND n = 2",
        (pipeline_name,),
    )
    assert plan == [([p.partition for p in result.partitions],)]
    # the stored plan is reused: every partition resumes from its checkpoint
    again = pipeline.run(workers=2)
    assert again.rows_read == 0 and [p.partition for p in again.partitions] == plan[0][0]


def test_an_unpicklable_pipeline_gets_a_clear_error(pg_url, schema, pipeline_name):
    class Local(etl.Source):  # defined in a function: worker processes cannot import it
        name, primary_key = "local", ["id"]

        def partitions(self, n=None):
            return [{"part": i} for i in range(n or 1)]

        def read(self, position=None, partition=None):
            yield etl.Batch([{"id": partition["part"]}], position=1)

    pipeline = etl.Pipeline(
        pipeline_name, Local(), sink=PostgresSink(f"{schema}.t"), detect_pii="off"
    )
    with pytest.raises(etl.ETLConfigError, match="cannot be sent to worker processes"):
        pipeline.run(workers=2)
    assert pipeline.run(workers=1).rows_written == 1  # one worker runs in this process
