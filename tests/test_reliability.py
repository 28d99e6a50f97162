"""Recovery: kill -9 of a parallel run, terminated connections, leases — real PostgreSQL."""

# detect_pii="off" below: these tests load made-up people raw on purpose (not what they
# test); the personal-data detector has its own tests (tests/anonymizers/test_detection.py)

from __future__ import annotations

import datetime as dt
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

import etl_express as etl
from etl_express.retry import RetryPolicy
from etl_express.sinks.postgres import PostgresSink
from etl_express.sources.sql import SQLSource
from etl_express.store.database import SCHEMA_VERSION
from etl_express.store.ledger import RunLedger
from tests.conftest import pg_exec
from tests.reliability_sources import SlowDown, content_hash, make_source_table

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = """
import sys
import etl_express as etl
from etl_express.sinks.postgres import PostgresSink
from etl_express.sources.sql import SQLSource
from tests.reliability_sources import SlowDown

url, schema, target, name = sys.argv[1:5]
pipeline = etl.Pipeline(
    name, SQLSource(url, table=f"{schema}.src", primary_key="id", batch_size=2000),
    # slow enough that the test sees both partitions running on a loaded machine
    transformers=[SlowDown(0.2)], sink=PostgresSink(f"{schema}.{target}"), detect_pii="off")

if __name__ == "__main__":
    pipeline.run(workers=2)
"""

ROWS = 60_000


def _with_app_name(url: str, app: str) -> str:
    return url + ("&" if "?" in url else "?") + f"application_name={app}"


def _parallel_pipeline(url: str, schema: str, target: str, name: str) -> etl.Pipeline:
    return etl.Pipeline(
        name,
        SQLSource(url, table=f"{schema}.src", primary_key="id", batch_size=2000),
        transformers=[SlowDown(0.05)],
        sink=PostgresSink(f"{schema}.{target}"),
        detect_pii="off",
    )


def test_kill_9_mid_parallel_run_then_restart_equals_an_uninterrupted_run(
    pg_url, schema, pipeline_name, tmp_path
):
    make_source_table(pg_url, f"{schema}.src", ROWS)
    script = tmp_path / "run_pipeline.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    log = tmp_path / "stderr.txt"
    with log.open("wb") as stderr:
        proc = subprocess.Popen(
            [sys.executable, str(script), pg_url, schema, "killed", pipeline_name],
            cwd=ROOT,
            env=env,
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    written = 0
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            rows = (
                pg_exec(
                    pg_url,
                    "SELECT coalesce(sum(rows_written), 0), count(DISTINCT partition) "
                    "FROM etl_express.runs WHERE pipeline = %s AND partition <> '*' "
                    "AND status = 'running'",
                    (pipeline_name,),
                )
                if _has_state(pg_url)
                else [(0, 0)]
            )
            written, partitions = int(rows[0][0]), rows[0][1]
            if written >= 8000 and partitions == 2:
                break
            time.sleep(0.02)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, log.read_text()
    assert 8000 <= written < ROWS
    left_running = pg_exec(
        pg_url,
        "SELECT count(*) FROM etl_express.runs WHERE pipeline = %s AND status = 'running'",
        (pipeline_name,),
    )
    assert left_running[0][0] >= 2  # the killed workers (and the parent) never finished

    restarted_at = dt.datetime.now(dt.timezone.utc)
    result = _parallel_pipeline(pg_url, schema, "killed", pipeline_name).run(workers=2)
    first_batch = (result.first_commit_at - restarted_at).total_seconds()
    print(
        f"\nrestart after kill -9: first new batch committed {first_batch:.2f} s after the restart began; "
        f"{result.rows_read} of {ROWS} rows left to read"
    )

    reference = etl.Pipeline(
        pipeline_name + "_ref",
        SQLSource(pg_url, table=f"{schema}.src", primary_key="id"),
        sink=PostgresSink(f"{schema}.reference"),
        detect_pii="off",
    ).run()
    assert result.ok and reference.ok and len(result.partitions) == 2
    assert result.rows_read < ROWS  # resumed from the checkpoints, not from scratch
    assert content_hash(pg_url, f"{schema}.killed") == content_hash(pg_url, f"{schema}.reference")
    assert content_hash(pg_url, f"{schema}.killed")[0] == ROWS
    statuses = dict(
        pg_exec(
            pg_url,
            "SELECT status, count(*) FROM etl_express.runs WHERE pipeline = %s GROUP BY status",
            (pipeline_name,),
        )
    )
    assert statuses.get("running", 0) == 0 and statuses["abandoned"] >= 2


def _has_state(pg_url: str) -> bool:
    return bool(pg_exec(pg_url, "SELECT to_regclass('etl_express.runs') IS NOT NULL")[0][0])


class TerminatingSink(PostgresSink):
    """Terminates every backend of this test (source and sink) once, at the n-th write."""

    def __init__(self, table: str, url: str, admin_url: str, app: str, at_write: int):
        super().__init__(table, url=url)
        self.admin_url, self.app, self.at_write, self.writes, self.terminated = (
            admin_url,
            app,
            at_write,
            0,
            0,
        )

    def write(self, conn, batch, primary_key):
        self.writes += 1
        if self.writes == self.at_write and not self.terminated:
            killed = pg_exec(
                self.admin_url,
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = %s AND pid <> pg_backend_pid()",
                (self.app,),
            )
            self.terminated = len(killed)
        return super().write(conn, batch, primary_key)


def test_terminated_connections_are_retried_without_loss_or_duplicates(
    pg_url, schema, pipeline_name
):
    make_source_table(pg_url, f"{schema}.src", 20_000)
    app = "etl_test_" + uuid.uuid4().hex[:8]
    url = _with_app_name(pg_url, app)
    sink = TerminatingSink(f"{schema}.target", url, pg_url, app, at_write=5)
    pipeline = etl.Pipeline(
        pipeline_name,
        SQLSource(url, table=f"{schema}.src", primary_key="id", batch_size=1000),
        sink=sink,
        retry=RetryPolicy(backoff=0.05),
        detect_pii="off",
    )

    result = pipeline.run()

    assert sink.terminated >= 2  # the source's and the sink's connections both went down
    assert result.ok and result.retries == 1
    assert (result.rows_read, result.rows_written) == (20_000, 20_000)
    count, distinct = pg_exec(pg_url, f"SELECT count(*), count(DISTINCT id) FROM {schema}.target")[
        0
    ]
    assert count == distinct == 20_000
    assert content_hash(pg_url, f"{schema}.target") == content_hash(pg_url, f"{schema}.src")


def test_a_persistent_outage_gives_up_after_the_retry_budget(pg_url, schema, pipeline_name):
    class Down(etl.Source):
        name, primary_key = "down", ["id"]

        def read(self, position=None, partition=None):
            raise ConnectionResetError("connection reset by peer")
            yield  # pragma: no cover

    pipeline = etl.Pipeline(
        pipeline_name,
        Down(),
        sink=PostgresSink(f"{schema}.t"),
        retry=RetryPolicy(attempts=2, backoff=0.01),
        detect_pii="off",
    )
    with pytest.raises(etl.SourceError) as err:
        pipeline.run()
    assert err.value.result.retries == 2 and "ConnectionResetError" in str(err.value)


# -- leases ---------------------------------------------------------------------------


class Rows(etl.Source):
    name, primary_key = "rows", ["id"]

    def __init__(self, n=3, hook=None):
        self.n, self.hook = n, hook

    def read(self, position=None, partition=None):
        start = position or 0
        for i in range(start, self.n):
            if self.hook is not None:
                self.hook(i)
            yield etl.Batch([{"id": i, "v": f"row {i}"}], position=i + 1)


def _insert_run(pg_url: str, name: str, owner: str, heartbeat_age: float) -> str:
    run_id = str(uuid.uuid4())
    pg_exec(
        pg_url,
        "INSERT INTO etl_express.runs (run_id, pipeline, partition, status, started_at, heartbeat_at, owner) "
        "VALUES (%s, %s, '', 'running', now(), now() - %s * interval '1 second', %s)",
        (run_id, name, heartbeat_age, owner),
    )
    return run_id


def _status(pg_url: str, run_id: str) -> str:
    return pg_exec(pg_url, "SELECT status FROM etl_express.runs WHERE run_id = %s", (run_id,))[0][0]


def test_a_stale_lease_is_taken_over(pg_url, schema, pipeline_name):
    pipeline = etl.Pipeline(
        pipeline_name, Rows(), sink=PostgresSink(f"{schema}.t"), lease_seconds=30, detect_pii="off"
    )
    _ = pipeline.store  # creates the state tables
    dead = _insert_run(pg_url, pipeline_name, "another-host:4242", heartbeat_age=31)

    assert pipeline.run().rows_written == 3
    assert _status(pg_url, dead) == "abandoned"


def test_a_dead_owner_on_this_host_is_taken_over_at_once(pg_url, schema, pipeline_name):
    pipeline = etl.Pipeline(
        pipeline_name, Rows(), sink=PostgresSink(f"{schema}.t"), detect_pii="off"
    )
    _ = pipeline.store  # creates the state tables
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    dead = _insert_run(pg_url, pipeline_name, f"{socket.gethostname()}:{gone.pid}", heartbeat_age=0)

    assert pipeline.run().ok
    assert _status(pg_url, dead) == "abandoned"
    error = pg_exec(pg_url, "SELECT error FROM etl_express.runs WHERE run_id = %s", (dead,))[0][0]
    assert "is gone" in error


def test_a_live_owner_keeps_its_lease(pg_url, schema, pipeline_name):
    pipeline = etl.Pipeline(
        pipeline_name, Rows(), sink=PostgresSink(f"{schema}.t"), detect_pii="off"
    )
    _ = pipeline.store  # creates the state tables
    live = _insert_run(
        pg_url, pipeline_name, f"{socket.gethostname()}:{os.getppid()}", heartbeat_age=0
    )
    with pytest.raises(etl.RunLockedError, match="is being run by"):
        pipeline.run()
    assert _status(pg_url, live) == "running"


def test_heartbeats_keep_a_slow_run_alive_and_a_taken_over_run_cannot_commit(
    pg_url, schema, pipeline_name
):
    seen: dict[str, object] = {}

    def hook(i: int) -> None:
        if i == 1:  # a batch slower than the whole lease: the heartbeat thread must keep it
            time.sleep(1.5)
            run_id, started, beat = pg_exec(
                pg_url,
                "SELECT run_id, started_at, heartbeat_at FROM etl_express.runs "
                "WHERE pipeline = %s AND status = 'running'",
                (pipeline_name,),
            )[0]
            seen["beat_age"] = (beat - started).total_seconds()
            try:
                RunLedger(pipeline.store, lease_seconds=0.8).start(
                    str(uuid.uuid4()), pipeline_name, ""
                )
            except etl.RunLockedError:
                seen["locked"] = True
            # now another process "takes over": this run must not commit any further batch
            pg_exec(
                pg_url,
                "UPDATE etl_express.runs SET status = 'abandoned' WHERE run_id = %s",
                (run_id,),
            )

    pipeline = etl.Pipeline(
        pipeline_name,
        Rows(n=5, hook=hook),
        sink=PostgresSink(f"{schema}.t"),
        lease_seconds=0.8,
        detect_pii="off",
    )
    with pytest.raises(etl.RunLockedError, match="lease"):
        pipeline.run()
    assert seen["locked"] is True and seen["beat_age"] > 0.8
    assert pg_exec(pg_url, f"SELECT id FROM {schema}.t ORDER BY id") == [(0,)]


def test_state_tables_of_version_1_are_migrated_in_place(pg_url):
    import psycopg
    from sqlalchemy.engine import make_url

    from etl_express.store import quarantine
    from etl_express.store.checkpoints import CheckpointStore

    db = "etl_mig_" + uuid.uuid4().hex[:8]
    pg_exec(pg_url, f"CREATE DATABASE {db}")
    try:
        url = make_url(pg_url).set(database=db).render_as_string(hide_password=False)
        with psycopg.connect(url, autocommit=True) as conn:  # what version 1 created
            conn.execute("CREATE SCHEMA etl_express")
            conn.execute(
                "CREATE TABLE etl_express.meta (key text PRIMARY KEY, value text NOT NULL)"
            )
            conn.execute("INSERT INTO etl_express.meta VALUES ('schema_version', '1')")
            conn.execute(
                "CREATE TABLE etl_express.quarantine (id bigint GENERATED BY DEFAULT AS IDENTITY "
                "PRIMARY KEY, run_id varchar(36) NOT NULL, pipeline text NOT NULL, partition text NOT NULL "
                "DEFAULT '', position jsonb, reason text NOT NULL, record jsonb NOT NULL, "
                "created_at timestamptz NOT NULL, replayed_at timestamptz)"
            )
            conn.execute(
                "INSERT INTO etl_express.quarantine (run_id, pipeline, reason, record, created_at) "
                "VALUES ('r', 'p', 'old', '{}', now())"
            )
        store = CheckpointStore(url)
        store.ensure_schema()
        assert [q["stage"] for q in quarantine.records(store, "p")] == ["sink"]
        assert pg_exec(url, "SELECT value FROM etl_express.meta WHERE key = 'schema_version'") == [
            (str(SCHEMA_VERSION),)
        ]
        store.engine.dispose()
    finally:
        pg_exec(pg_url, f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
