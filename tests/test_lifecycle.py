"""A run's lifecycle under failure, against real PostgreSQL: a worker killed mid-run, the
heartbeat of the parallel and replay rows, a connection terminated during the end-of-run
checks."""

# detect_pii="off" below: these tests load made-up people raw on purpose (not what they
# test); the personal-data detector has its own tests (tests/anonymizers/test_detection.py)

from __future__ import annotations

import os
import signal
import threading
import time
import uuid
from typing import Any

import pytest
import sqlalchemy as sa

import etl_express as etl
from etl_express.errors import RunLockedError
from etl_express.quality import CheckResult
from etl_express.retry import RetryPolicy
from etl_express.sinks.postgres import PostgresSink
from etl_express.sources.sql import SQLSource
from etl_express.store.checkpoints import CheckpointStore
from etl_express.store.database import engine_for
from etl_express.store.ledger import RunLedger
from tests.conftest import pg_exec
from tests.reliability_sources import (
    CUSTOMER_SCHEMA,
    ListSource,
    SlowDown,
    content_hash,
    customers,
    make_source_table,
)

ROWS = 30_000


def _runs(pg_url: str, name: str) -> list[tuple[Any, ...]]:
    return pg_exec(
        pg_url,
        "SELECT partition, status, owner, rows_written, error FROM etl_express.runs "
        "WHERE pipeline = %s ORDER BY started_at",
        (name,),
    )


def test_a_killed_worker_fails_alone_and_the_next_run_resumes_only_it(
    pg_url, schema, pipeline_name
):
    make_source_table(pg_url, f"{schema}.src", ROWS)

    def pipeline() -> etl.Pipeline:
        return etl.Pipeline(
            pipeline_name,
            SQLSource(pg_url, table=f"{schema}.src", primary_key="id", batch_size=500),
            # 20 batches a partition, about 5 s each: wide enough for all three workers to be
            # loading at once even when their processes start seconds apart on a busy host
            transformers=[SlowDown(0.25)],
            sink=PostgresSink(f"{schema}.dst"),
            progress=False,
            detect_pii="off",
        )

    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["result"] = pipeline().run(workers=3)
        except Exception as exc:
            outcome["error"] = exc

    runner = threading.Thread(target=run)
    runner.start()
    victim = None
    deadline = time.monotonic() + 120
    while victim is None and time.monotonic() < deadline and runner.is_alive():
        rows = [
            r
            for r in (_runs(pg_url, pipeline_name) if _has_state(pg_url) else [])
            if r[0] != "*" and r[1] == "running"
        ]
        if len(rows) == 3 and all(r[3] >= 500 for r in rows):  # each committed a batch
            victim = rows[1]
        time.sleep(0.05)
    assert victim is not None, "the three workers never ran at once"
    os.kill(int(victim[2].rpartition(":")[2]), signal.SIGKILL)
    runner.join(180)
    assert not runner.is_alive()

    error = outcome.get("error")
    assert isinstance(error, etl.ETLError), outcome
    assert "1 of 3 partitions failed" in str(error)
    assert victim[0] in str(error) and "SIGKILL" in str(error)  # named, with the cause
    result = error.result  # type: ignore[attr-defined]
    assert isinstance(result, etl.RunResult) and result.status == "failed"
    by_status = sorted(p.status for p in result.partitions)
    assert by_status == ["failed", "succeeded", "succeeded"]
    survivors = [p for p in result.partitions if p.status == "succeeded"]
    assert all(p.rows_read == p.rows_written > 0 for p in survivors)  # finished and committed

    rows = _runs(pg_url, pipeline_name)
    assert not [r for r in rows if r[1] == "running"]  # the dead worker's row is closed too
    dead = [r for r in rows if r[0] == victim[0]]
    assert dead[0][1] == "failed" and "died" in dead[0][4]

    again = pipeline().run(workers=3)
    assert again.ok
    read = {etl_key(p.partition): p.rows_read for p in again.partitions}
    assert read[victim[0]] > 0
    assert read[victim[0]] < ROWS // 3 + 500  # resumed from its checkpoint
    assert [n for k, n in read.items() if k != victim[0]] == [0, 0]  # the others: nothing
    assert content_hash(pg_url, f"{schema}.dst")[0] == ROWS


def etl_key(partition: Any) -> str:
    from etl_express.store import partition_key

    return partition_key(partition)


def _has_state(pg_url: str) -> bool:
    return bool(pg_exec(pg_url, "SELECT to_regclass('etl_express.runs') IS NOT NULL")[0][0])


def _compete(pg_url: str, name: str, partition: str, seen: list[str], stop: threading.Event):
    """Keep trying to take the partition's lease, as a second process would."""
    ledger = RunLedger(CheckpointStore(pg_url), lease_seconds=0.8)
    while not stop.wait(0.3):
        try:
            run_id = str(uuid.uuid4())
            ledger.start(run_id, name, partition)
        except RunLockedError:
            seen.append("locked")
        else:
            seen.append("taken")
            ledger.finish(run_id, "failed", "test competitor")


def test_heartbeat_keeps_the_parallel_row_alive_past_its_lease(pg_url, schema, pipeline_name):
    pipeline = etl.Pipeline(
        pipeline_name,
        ListSource(customers(40), batch_size=1, schema=CUSTOMER_SCHEMA),
        transformers=[SlowDown(0.08)],  # about 3 s, the lease 0.8 s
        sink=PostgresSink(f"{schema}.dst"),
        lease_seconds=0.8,
        progress=False,
        detect_pii="off",
    )
    seen: list[str] = []
    stop = threading.Event()
    rival = threading.Thread(target=_compete, args=(pg_url, pipeline_name, "*", seen, stop))
    pipeline.store  # noqa: B018 - the state tables exist before the rival starts
    rival.start()
    try:
        result = pipeline.run(workers=1)
    finally:
        stop.set()
        rival.join()
    assert result.ok and result.rows_written == 40
    assert len(seen) >= 5 and set(seen) == {"locked"}  # never taken for dead
    statuses = {r[1] for r in _runs(pg_url, pipeline_name) if r[0] == "*"}
    assert statuses == {"succeeded"}


class SlowSink(PostgresSink):
    """Sleeps before each write once ``slow`` is set (a replay that outlasts its lease)."""

    slow = 0.0

    def write(self, conn: Any, batch: Any, primary_key: Any) -> int:
        time.sleep(self.slow)
        return super().write(conn, batch, primary_key)


def test_heartbeat_keeps_the_replay_row_alive_past_its_lease(pg_url, schema, pipeline_name):
    pg_exec(
        pg_url,
        f"CREATE TABLE {schema}.dst (id bigint PRIMARY KEY, name text, email text, amount bigint CHECK (amount < 990))",
    )
    sink = SlowSink(f"{schema}.dst")
    pipeline = etl.Pipeline(
        pipeline_name,
        ListSource(customers(1000), schema=CUSTOMER_SCHEMA),
        sink=sink,
        lease_seconds=0.8,
        max_error_rate=0.5,
        progress=False,
        detect_pii="off",
    )
    first = pipeline.run()
    assert first.rows_quarantined == 10
    pg_exec(pg_url, f"ALTER TABLE {schema}.dst DROP CONSTRAINT dst_amount_check")
    sink.slow = 2.5
    seen: list[str] = []
    stop = threading.Event()
    rival = threading.Thread(target=_compete, args=(pg_url, pipeline_name, "replay", seen, stop))
    rival.start()
    try:
        replayed = pipeline.replay_quarantine()
    finally:
        stop.set()
        rival.join()
    assert replayed.replayed == 10
    assert len(seen) >= 4 and set(seen) == {"locked"}
    rows = [r for r in _runs(pg_url, pipeline_name) if r[0] == "replay"]
    assert [r[1] for r in rows] == ["succeeded"]


class TerminatesTheStoreConnection(etl.Anonymizer):
    """Terminates the state database connection it runs its end-of-run check on, ``times``
    times (as a failover or an administrator would), then reports an ok check."""

    columns = ()

    def __init__(self, url: str, times: int):
        self.url, self.times, self.calls = url, times, 0

    def anonymize(self, batch: Any) -> Any:
        return batch

    def checks(self) -> list[CheckResult]:
        self.calls += 1
        if self.calls <= self.times:
            with engine_for(self.url).connect() as conn:
                conn.execute(sa.text("SELECT pg_terminate_backend(pg_backend_pid())"))
        return [CheckResult("terminator", "passed", "fail", {"calls": self.calls})]


def _terminating_pipeline(pg_url, schema, name, times, attempts):
    return etl.Pipeline(
        name,
        ListSource(customers(3000), schema=CUSTOMER_SCHEMA),
        anonymizers=[TerminatesTheStoreConnection(pg_url, times)],
        sink=PostgresSink(f"{schema}.dst"),
        retry=RetryPolicy(attempts=attempts, backoff=0.01),
        progress=False,
        detect_pii="off",
    )


def test_checks_are_retried_after_a_terminated_connection(pg_url, schema, pipeline_name):
    result = _terminating_pipeline(pg_url, schema, pipeline_name, times=2, attempts=3).run()
    assert result.ok and result.rows_written == 3000
    assert [c.details for c in result.checks if c.name == "terminator"] == [{"calls": 3}]
    stored = pg_exec(
        pg_url,
        "SELECT count(*) FROM etl_express.quality_checks WHERE run_id = %s",
        (result.run_id,),
    )
    assert stored[0][0] == len(result.checks)


def test_a_connection_lost_for_good_during_the_checks_keeps_the_committed_work(
    pg_url, schema, pipeline_name
):
    with pytest.raises(etl.ETLError) as info:
        _terminating_pipeline(pg_url, schema, pipeline_name, times=99, attempts=2).run()
    message = str(info.value)
    assert "quality checks could not be completed" in message
    assert "3000 written rows are committed" in message
    assert "terminating connection" in message
    for raw in ("SELECT", "[SQL", "DETAIL", "sqlalchemy", "pg_terminate_backend"):
        assert raw not in message, raw
    result = info.value.result  # type: ignore[attr-defined]
    assert result.status == "failed" and result.rows_written == 3000
    assert pg_exec(pg_url, f"SELECT count(*) FROM {schema}.dst")[0][0] == 3000
    stored = pg_exec(
        pg_url, "SELECT status, error FROM etl_express.runs WHERE run_id = %s", (result.run_id,)
    )
    assert stored[0][0] == "failed" and stored[0][1] == message
    position = pg_exec(
        pg_url, "SELECT position FROM etl_express.checkpoints WHERE pipeline = %s", (pipeline_name,)
    )
    assert position == [(3000,)]  # the next run starts after the committed batches


UNGUARDED = """
import sys
import etl_express as etl
from etl_express.sinks.postgres import PostgresSink
from etl_express.sources.sql import SQLSource

url, schema, name = sys.argv[1:4]
pipeline = etl.Pipeline(
    name, SQLSource(url, table=f"{schema}.src", primary_key="id"),
    sink=PostgresSink(f"{schema}.dst"), progress=False, detect_pii="off")
pipeline.run(workers=2)  # no  if __name__ == "__main__":  guard
"""


def test_a_parallel_script_without_the_main_guard_fails_clearly(
    pg_url, schema, pipeline_name, tmp_path
):
    import subprocess
    import sys
    from pathlib import Path

    make_source_table(pg_url, f"{schema}.src", 2000)
    script = tmp_path / "unguarded.py"
    script.write_text(UNGUARDED)
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run(
        [sys.executable, str(script), pg_url, schema, pipeline_name],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode != 0
    assert 'if __name__ == "__main__":' in proc.stderr
    assert "2 of 2 partitions failed" in proc.stderr
    parallel_rows = [r for r in _runs(pg_url, pipeline_name) if r[0] == "*"]
    assert len(parallel_rows) == 1  # the workers never started runs of their own
    assert not [r for r in _runs(pg_url, pipeline_name) if r[1] == "running"]


def test_a_schema_change_waits_briefly_for_a_long_reader_and_retries(pg_url, schema, pipeline_name):
    def pipeline(rows):
        return etl.Pipeline(
            pipeline_name,
            ListSource(rows, schema=None),
            sink=PostgresSink(f"{schema}.dst", ddl_lock_timeout=0.2),
            retry=RetryPolicy(attempts=8, backoff=0.3, max_backoff=1),
            progress=False,
            detect_pii="off",
        )

    assert pipeline([{"id": 1, "name": "a"}]).run().ok
    started, waits = threading.Event(), []

    def long_reader() -> None:  # an analytical query holding its lock for 2 s
        import psycopg

        with psycopg.connect(pg_url) as conn:
            conn.execute(f"SELECT count(*) FROM {schema}.dst").fetchone()
            started.set()
            conn.execute("SELECT pg_sleep(2)")

    def reader() -> None:  # a short query issued while the schema change is pending
        import psycopg

        time.sleep(0.8)
        t = time.monotonic()
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute(f"SELECT count(*) FROM {schema}.dst").fetchone()
        waits.append(time.monotonic() - t)

    blocker = threading.Thread(target=long_reader)
    blocker.start()
    started.wait()
    short = threading.Thread(target=reader)
    short.start()
    result = pipeline([{"id": 1, "name": "a"}, {"id": 2, "name": "b", "segment": "new"}]).run()
    blocker.join()
    short.join()
    assert result.ok and result.retries >= 1  # the ALTER gave up waiting, then was retried
    assert waits and waits[0] < 1.0  # the other reader never queued behind it for long
    assert pg_exec(pg_url, f"SELECT segment FROM {schema}.dst WHERE id = 2") == [("new",)]
