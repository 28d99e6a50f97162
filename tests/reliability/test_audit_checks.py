"""The end-of-run checks against a target tampered with by another connection during the
load: a row lost or duplicated fails the run's checks; an untouched load passes them."""

from __future__ import annotations

import psycopg
import pyarrow as pa
import pytest

import etl_express as etl
from etl_express.sinks.postgres import PostgresSink
from tests.conftest import pg_exec
from tests.reliability_sources import ListSource


class Tamper(etl.Transformer):
    """Runs ``sql`` on another connection when the ``at``-th batch passes (earlier batches
    are committed by then, or being loaded)."""

    def __init__(self, url: str, sql: str, at: int):
        self.url, self.sql, self.at, self.seen = url, sql, at, 0

    def transform(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        self.seen += 1
        if self.seen == self.at:
            with psycopg.connect(self.url, autocommit=True) as conn:
                conn.execute(self.sql)
        return batch


def rows(n: int) -> list[dict]:
    return [{"id": i, "name": f"n{i}"} for i in range(1, n + 1)]


def run(pg_url, schema, name, transformers=(), data=None):
    return etl.Pipeline(
        name,
        ListSource(data or rows(1000), batch_size=100),
        transformers=list(transformers),
        sink=PostgresSink(f"{schema}.target"),
        detect_pii="off",
        progress=False,
    ).run()


def status(result_or_err, name):
    checks = (
        result_or_err.checks
        if isinstance(result_or_err, etl.RunResult)
        else result_or_err.result.checks
    )
    return {c.name: c for c in checks}[name]


def test_an_untouched_first_load_passes_every_check(pg_url, schema, pipeline_name):
    result = run(pg_url, schema, pipeline_name)
    assert result.ok
    assert status(result, "target_count").status == "passed"
    assert status(result, "duplicate_keys").status == "passed"


def test_a_row_deleted_by_hand_during_a_first_load_is_caught_by_target_count(
    pg_url, schema, pipeline_name
):
    """The table the run created was counted by its COPY tags (no scan): a row another
    session deleted meanwhile must not be counted as there."""
    tamper = Tamper(pg_url, f"DELETE FROM {schema}.target WHERE id = 1", at=6)
    result = run(pg_url, schema, pipeline_name, [tamper])  # target_count: "warn" by default
    check = status(result, "target_count")
    assert check.status == "warned", check.details
    assert check.details["target_rows"] == 999
    assert pg_exec(pg_url, f"SELECT count(*) FROM {schema}.target") == [(999,)]


def test_a_row_inserted_by_hand_during_a_first_load_is_caught_by_target_count(
    pg_url, schema, pipeline_name
):
    tamper = Tamper(pg_url, f"INSERT INTO {schema}.target (id, name) VALUES (5000, 'x')", at=6)
    result = run(pg_url, schema, pipeline_name, [tamper])
    check = status(result, "target_count")
    assert check.status == "warned" and check.details["target_rows"] == 1001, check.details


def test_a_row_duplicated_by_hand_during_a_first_load_fails_the_run(pg_url, schema, pipeline_name):
    tamper = Tamper(pg_url, f"INSERT INTO {schema}.target (id, name) VALUES (2, 'dup')", at=6)
    with pytest.raises(etl.ETLError, match="could not create unique index"):
        run(pg_url, schema, pipeline_name, [tamper])
    # fail closed: the next run (nothing left to read) refuses the same way, never ok
    with pytest.raises(etl.ETLError, match="could not create unique index"):
        run(pg_url, schema, pipeline_name)


def test_a_target_altered_by_hand_between_runs_is_repaired_by_the_reconciliation(
    pg_url, schema, pipeline_name
):
    """Someone adds a NOT NULL column with a default, deletes two rows and changes one: the
    next run with deletes= puts the source's rows back, the added column keeps its values."""
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE {schema}.src (id int PRIMARY KEY, v text)")
        conn.execute(f"INSERT INTO {schema}.src SELECT g, 'v' || g FROM generate_series(1, 500) g")

    def pipeline(**options):
        return etl.Pipeline(
            pipeline_name,
            etl.sources.SQLSource(pg_url, table=f"{schema}.src", primary_key="id", batch_size=100),
            sink=PostgresSink(f"{schema}.target", url=pg_url),
            detect_pii="off",
            progress=False,
            **options,
        )

    assert pipeline().run().ok
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f"ALTER TABLE {schema}.target ADD COLUMN extra int NOT NULL DEFAULT 7")
        conn.execute(f"DELETE FROM {schema}.target WHERE id IN (5, 300)")
        conn.execute(f"UPDATE {schema}.target SET v = 'tampered' WHERE id = 9")
    result = pipeline(deletes="soft").run()
    assert result.ok and result.rows_quarantined == 0
    digest = "SELECT count(*), md5(string_agg(md5(row(id, v)::text), '' ORDER BY id)) FROM {}"
    assert pg_exec(pg_url, digest.format(f"{schema}.target")) == pg_exec(
        pg_url, digest.format(f"{schema}.src")
    )
    assert pg_exec(pg_url, f"SELECT DISTINCT extra FROM {schema}.target") == [(7,)]


class TerminatedAtKeyBuild(PostgresSink):
    """Terminates its own backend the first time it builds the key of the table it loaded."""

    def __init__(self, table: str, url: str):
        super().__init__(table, url=url)
        self.terminated = False

    def finish_load(self, conn, primary_key):  # type: ignore[no-untyped-def]
        if not self.terminated and self._key_deferred:
            self.terminated = True
            pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
            with psycopg.connect(self.url, autocommit=True) as admin:
                admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        return super().finish_load(conn, primary_key)


def test_a_connection_terminated_at_the_key_build_is_retried_to_an_exact_copy(
    pg_url, schema, pipeline_name
):
    sink = TerminatedAtKeyBuild(f"{schema}.target", pg_url)
    result = etl.Pipeline(
        pipeline_name,
        ListSource(rows(1000), batch_size=100),
        sink=sink,
        retry=etl.retry.RetryPolicy(backoff=0.05),
        detect_pii="off",
        progress=False,
    ).run()
    assert sink.terminated and result.ok and result.retries == 1
    assert pg_exec(pg_url, f"SELECT count(*), count(DISTINCT id) FROM {schema}.target") == [
        (1000, 1000)
    ]
    assert pg_exec(
        pg_url,
        f"SELECT count(*) FROM pg_index WHERE indrelid = '{schema}.target'::regclass "
        "AND indisprimary",
    ) == [(1,)]
    assert pg_exec(pg_url, f"SELECT count(*) FROM {schema}.target WHERE _etl_run_id IS NULL") == [
        (0,)
    ]
    assert status(result, "target_count").status == "passed"
