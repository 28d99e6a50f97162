"""``Replication.run(workers=n)`` in forked worker processes: the same targets and results as
threads; a failing table and a killed worker reported by name while the other tables commit,
the killed one resumed by the next run; the children's log lines in the run log, the log
file and the ledger; SIGTERM of the parent stops its children; one unit runs here."""

from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pyarrow as pa
import pytest

import etl_express as etl
from etl_express.errors import ETLConfigError, ETLError, SinkError
from etl_express.format import ColumnCollisionError
from etl_express.logs import configure_logging, flush_logs, shutdown_logging
from etl_express.sinks import PostgresSink
from etl_express.sources import SQLDatabase
from etl_express.transformers.base import Transformer
from tests.conftest import pg_exec

#: rows of each source table (the biggest first: the order units are handed out)
SIZES = {"alpha": 40, "beta": 30, "gamma": 20, "victim": 24, "delta": 5}


class Fails(Transformer):
    """Raises on the first batch of rows (its message holds a value: it must not reach the
    error). The empty batch the lineage plan probes its output schema with passes."""

    def transform(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        if batch.num_rows:
            raise ValueError("secret-value-42 is wrong")
        return batch


class KillsItsProcess(Transformer):
    """Kills its own process (SIGKILL) on the fourth batch of rows while armed."""

    def __init__(self) -> None:
        self.armed = True
        self.seen = 0

    def transform(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        self.seen += batch.num_rows > 0
        if self.armed and self.seen == 4:
            os.kill(os.getpid(), signal.SIGKILL)
        return batch


@pytest.fixture
def targets(pg_url: str) -> Iterator[Callable[[], str]]:
    made: list[str] = []

    def make() -> str:
        made.append("r_" + uuid.uuid4().hex[:10])
        return made[-1]

    yield make
    for name in made:
        pg_exec(pg_url, f"DROP SCHEMA IF EXISTS {name} CASCADE")


def source_tables(url: str, schema: str, sizes: dict[str, int] = SIZES) -> None:
    for table, n in sizes.items():
        pg_exec(
            url,
            f"CREATE TABLE {schema}.{table} (id int PRIMARY KEY, amount numeric(12,2), "
            "kind char(4))",
        )
        pg_exec(
            url,
            f"INSERT INTO {schema}.{table} SELECT g, g * 1.5, 'k' || (g % 7) "
            f"FROM generate_series(1, {n}) g",
        )


def replication(url: str, schema: str, target: str, **options: object) -> etl.Replication:
    return etl.Replication(
        "rp_" + target,
        SQLDatabase(url, schema=schema, batch_size=5),
        sink=PostgresSink(schema=target),
        **options,  # type: ignore[arg-type]
    )


def owners(url: str, name: str) -> set[int]:
    """The process ids that ran a replication's tables (the run rows' owners)."""
    found = pg_exec(
        url, "SELECT owner FROM etl_express.runs WHERE pipeline LIKE %s", (name + ".%",)
    )
    return {int(owner.rpartition(":")[2]) for (owner,) in found}


def test_processes_give_the_same_targets_and_results_as_threads(
    pg_url: str, schema: str, targets: Callable[[], str]
) -> None:
    source_tables(pg_url, schema)
    results = {}
    for processes in (True, False):
        target = targets()
        rep = replication(pg_url, schema, target, partitions={"alpha": 3})
        results[processes] = (rep, target, rep.run(workers=2, processes=processes))
    (rep_p, target_p, by_processes), (rep_t, target_t, by_threads) = results[True], results[False]
    assert by_processes.ok and by_threads.ok
    assert list(by_processes.tables) == list(by_threads.tables) == sorted(SIZES)
    for table, n in SIZES.items():
        got, expected = by_processes[table], by_threads[table]
        assert (got.status, got.rows_read, got.rows_written, got.batches) == (
            expected.status,
            expected.rows_read,
            expected.rows_written,
            expected.batches,
        )
        assert got.rows_written == n and got.pipeline == f"{rep_p.name}.{table}"
        assert got.started_at is not None and got.first_commit_at is not None
        # the child's RunResult, whole (a partitioned table's is combined, in the parent)
        assert (got.run_id and got.checks) or table == "alpha"
        query = "SELECT id, amount, kind FROM {}." + table + " ORDER BY id"
        assert pg_exec(pg_url, query.format(target_p)) == pg_exec(pg_url, query.format(target_t))
    assert len(by_processes["alpha"].partitions) == 3  # combined from the children's parts
    assert sum(p.rows_written for p in by_processes["alpha"].partitions) == SIZES["alpha"]
    # the tables ran in two worker processes, not here; on threads, here
    assert len(owners(pg_url, rep_p.name)) == 2 and os.getpid() not in owners(pg_url, rep_p.name)
    assert owners(pg_url, rep_t.name) == {os.getpid()}


def test_a_table_failing_in_a_worker_is_reported_and_the_others_commit(
    pg_url: str, schema: str, targets: Callable[[], str]
) -> None:
    source_tables(pg_url, schema)
    target = targets()
    rep = replication(pg_url, schema, target, transformers={"gamma": [Fails()]})
    with pytest.raises(ETLError) as raised:
        rep.run(workers=2)
    text = str(raised.value)
    assert "1 of 5 tables failed: gamma: Fails failed: ValueError" in text
    assert "secret-value" not in text
    result = raised.value.result  # type: ignore[attr-defined]
    assert result.failed == ["gamma"] and result.status == "failed"
    assert "ValueError" in result["gamma"].error and "secret" not in result["gamma"].error
    for table in ("alpha", "beta", "victim", "delta"):
        assert result[table].ok
        assert pg_exec(pg_url, f"SELECT count(*) FROM {target}.{table}") == [(SIZES[table],)]
    (status,) = pg_exec(
        pg_url,
        "SELECT status FROM etl_express.runs WHERE pipeline = %s",
        (f"{rep.name}.gamma",),
    )[0]
    assert status == "failed"


def test_a_killed_worker_fails_its_table_only_and_the_next_run_resumes_it(
    pg_url: str, schema: str, targets: Callable[[], str]
) -> None:
    source_tables(pg_url, schema)
    target = targets()
    killer = KillsItsProcess()
    rep = replication(pg_url, schema, target, transformers={"victim": [killer]})
    started = time.monotonic()
    with pytest.raises(ETLError) as raised:
        rep.run(workers=2)
    assert time.monotonic() - started < 60  # no hang on the dead worker
    result = raised.value.result  # type: ignore[attr-defined]
    assert result.failed == ["victim"]
    error = result["victim"].error
    assert "table victim" in error and "killed by SIGKILL" in error and "resumes" in error
    assert "victim" in str(raised.value)
    for table in ("alpha", "beta", "gamma", "delta"):  # on the other worker or a new one
        assert result[table].ok
        assert pg_exec(pg_url, f"SELECT count(*) FROM {target}.{table}") == [(SIZES[table],)]
    # the batches committed before the kill stay; the dead process's run row is closed
    ((committed,),) = pg_exec(pg_url, f"SELECT count(*) FROM {target}.victim")
    assert 0 < committed < SIZES["victim"]
    ((status, stored_error),) = pg_exec(
        pg_url,
        "SELECT status, error FROM etl_express.runs WHERE pipeline = %s",
        (f"{rep.name}.victim",),
    )
    assert status == "failed" and "killed by SIGKILL" in stored_error

    killer.armed = False
    again = rep.run(workers=2)
    assert again.ok and again["victim"].rows_read == SIZES["victim"] - committed  # checkpoint
    assert pg_exec(pg_url, f"SELECT count(*) FROM {target}.victim") == [(SIZES["victim"],)]


def test_the_workers_log_lines_reach_the_run_log_the_log_file_and_the_ledger(
    pg_url: str, schema: str, targets: Callable[[], str], tmp_path: Path
) -> None:
    source_tables(pg_url, schema)
    target = targets()
    rep = replication(pg_url, schema, target)
    configure_logging(tmp_path, console=False)
    try:
        result = rep.run(workers=2)
        flush_logs()
    finally:
        shutdown_logging()
    run_ids = {table: r.run_id for table, r in result.tables.items()}
    stored = pg_exec(
        pg_url,
        "SELECT run_id, count(*) FROM etl_express.logs WHERE run_id = ANY(%s) GROUP BY run_id",
        (list(run_ids.values()),),
    )
    assert {run_id for run_id, n in stored if n > 0} == set(run_ids.values())
    ledger = pg_exec(
        pg_url,
        "SELECT run_id, status, rows_written FROM etl_express.runs WHERE run_id = ANY(%s)",
        (list(run_ids.values()),),
    )
    assert sorted((s, n) for _, s, n in ledger) == sorted(("succeeded", n) for n in SIZES.values())
    lines = [
        json.loads(line)["record"]
        for path in tmp_path.glob("etl-express_*.jsonl")
        for line in path.read_text().splitlines()
    ]
    pids = {
        r["process"]["id"]
        for r in lines
        if r["extra"].get("run_id") in run_ids.values() and r["extra"].get("pipeline")
    }
    assert pids and os.getpid() not in pids and len(pids) <= 2
    tables_logged = {r["extra"].get("pipeline") for r in lines if r["process"]["id"] in pids}
    assert tables_logged >= {rep.pipeline_name(t) for t in SIZES}


SCRIPT = """
import sys
import time

import etl_express as etl
from etl_express.sinks import PostgresSink
from etl_express.sources import SQLDatabase
from etl_express.transformers.base import Transformer


class Slow(Transformer):
    def transform(self, batch):
        if batch.num_rows:  # not the empty batch the plan probes the output schema with
            time.sleep(60)
        return batch


if __name__ == "__main__":
    etl.Replication(
        sys.argv[1],
        SQLDatabase(sys.argv[2], schema=sys.argv[3]),
        sink=PostgresSink(schema=sys.argv[4]),
        transformers={"*": [Slow()]},
    ).run(workers=2)
"""


def test_sigterm_of_the_parent_stops_its_workers(
    pg_url: str, schema: str, targets: Callable[[], str], tmp_path: Path
) -> None:
    source_tables(pg_url, schema, {"one": 5, "two": 5, "three": 5})
    script = tmp_path / "replicate.py"
    script.write_text(textwrap.dedent(SCRIPT))
    name = "rp_term_" + uuid.uuid4().hex[:8]
    parent = subprocess.Popen(
        [sys.executable, str(script), name, pg_url, schema, targets()],
        env={**os.environ, "ETL_EXPRESS_DATABASE_URL": pg_url},
    )
    try:
        deadline = time.monotonic() + 60
        running: list[tuple[str]] = []
        while len(running) < 2 and time.monotonic() < deadline and parent.poll() is None:
            time.sleep(0.2)
            running = pg_exec(
                pg_url,
                "SELECT owner FROM etl_express.runs WHERE pipeline LIKE %s AND status = 'running'",
                (name + ".%",),
            )
        assert len(running) == 2, "the two workers did not start their tables"
        children = {int(owner.rpartition(":")[2]) for (owner,) in running}
        assert parent.pid not in children
        parent.send_signal(signal.SIGTERM)
        assert parent.wait(timeout=30) != 0
    finally:
        if parent.poll() is None:
            parent.kill()
    for pid in children:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    runs = pg_exec(
        pg_url,
        "SELECT status, owner, error FROM etl_express.runs WHERE pipeline LIKE %s",
        (name + ".%",),
    )
    assert sorted(status for status, _, _ in runs) == ["failed", "failed"], runs  # closed


def test_one_unit_or_one_worker_runs_here_and_threads_are_the_fallback(
    pg_url: str, schema: str, targets: Callable[[], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    source_tables(pg_url, schema, {"only": 7})
    single = replication(pg_url, schema, targets())
    assert single.run(workers=2).ok  # a single unit: no process is forked for it
    assert owners(pg_url, single.name) == {os.getpid()}

    pg_exec(pg_url, f"CREATE TABLE {schema}.other (id int PRIMARY KEY)")
    monkeypatch.setattr("etl_express.replication.workers.fork_available", lambda: False)
    threads = replication(pg_url, schema, targets())
    assert threads.run(workers=2).ok
    assert owners(pg_url, threads.name) == {os.getpid()}
    with pytest.raises(ETLConfigError, match=r"processes=True.*Fix: run\(processes=False\)"):
        threads.run(workers=2, processes=True)


def test_errors_cross_processes_whole() -> None:
    error = SinkError("the batch was refused", where={"pipeline": "crm.orders"}, hint="retry")
    error.result = etl.RunResult(run_id="r1", pipeline="crm.orders", status="failed")  # type: ignore[attr-defined]
    back = pickle.loads(pickle.dumps(error))
    assert type(back) is SinkError and str(back) == str(error)
    assert (back.what, back.where, back.hint) == (error.what, error.where, error.hint)
    assert back.result == error.result  # type: ignore[attr-defined]
    collision = ColumnCollisionError("UserId", "user_id", "user_id", "crm.users")
    back_collision = pickle.loads(pickle.dumps(collision))
    assert type(back_collision) is ColumnCollisionError and str(back_collision) == str(collision)
    assert back_collision.names == ("UserId", "user_id")
