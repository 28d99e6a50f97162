"""``etl.forget`` and ``etl-express forget``: a failed experiment leaves the store entirely —
declaration, checkpoints, runs, quality checks, quarantine, log lines — and its table only
when asked; other pipelines are untouched; a terminal is asked first."""

from __future__ import annotations

import uuid

import pytest
from typer.testing import CliRunner

import etl_express as etl
from etl_express.cli import _register, app
from etl_express.errors import ETLConfigError, RunLockedError
from etl_express.logs import configure_logging, flush_logs, shutdown_logging
from etl_express.sinks import PostgresSink
from etl_express.store.checkpoints import CheckpointStore
from etl_express.store.ledger import RunLedger
from tests.conftest import pg_exec
from tests.reliability_sources import CUSTOMER_SCHEMA, ListSource, customers

TABLES = ("runs", "checkpoints", "quality_checks", "quarantine", "logs", "pipelines")


def state_rows(pg_url: str, name: str) -> dict[str, int]:
    return {
        table: pg_exec(
            pg_url, f"SELECT count(*) FROM etl_express.{table} WHERE pipeline = %s", (name,)
        )[0][0]
        for table in TABLES
    }


def load(pg_url: str, name: str, table: str, *, fail: bool = False) -> None:
    rows = customers(30)
    if fail:  # an amount that is not a number: quarantined, over the error budget
        rows = [{**r, "amount": "n/a"} if r["id"] % 2 else r for r in rows]
    pipeline = etl.Pipeline(
        name,
        ListSource(rows, batch_size=10, schema=CUSTOMER_SCHEMA),
        sink=PostgresSink(table, url=pg_url),
        freshness="1h",
        progress=False,
    )
    try:
        pipeline.run()
    except etl.ETLError:
        assert fail


@pytest.fixture
def experiments(pg_url: str, schema: str, tmp_path):
    """Two pipelines with runs, checks, quarantine and log lines: one to forget, one to keep."""
    gone, kept = (f"try_{uuid.uuid4().hex[:8]}" for _ in range(2))
    configure_logging(tmp_path / "logs", console=False)
    try:
        load(pg_url, gone, f"{schema}.gone", fail=True)
        load(pg_url, gone, f"{schema}.gone")
        load(pg_url, kept, f"{schema}.kept")
        assert flush_logs()
    finally:
        shutdown_logging()
    return gone, kept


def test_forget_removes_every_trace_and_keeps_the_rest(pg_url, schema, experiments) -> None:
    gone, kept = experiments
    before = state_rows(pg_url, gone)
    assert all(before.values()), before  # a trace in every table
    kept_before = state_rows(pg_url, kept)

    planned = etl.forget(gone, url=pg_url, dry_run=True)
    assert planned["dry_run"] and planned["rows"] >= sum(before.values())
    assert state_rows(pg_url, gone) == before  # a dry run removes nothing

    done = etl.forget(gone, url=pg_url)
    assert done["removed"] == planned["removed"] and done["table"] == f"{schema}.gone"
    assert done["removed"]["runs"] == before["runs"] and done["removed"]["logs"] == before["logs"]
    assert not any(state_rows(pg_url, gone).values())
    assert state_rows(pg_url, kept) == kept_before
    assert pg_exec(pg_url, f"SELECT count(*) FROM {schema}.gone")[0][0] > 0  # table kept
    assert gone not in [r["pipeline"] for r in etl.status(pg_url)]

    with pytest.raises(ETLConfigError, match=f"unknown pipeline '{gone}'"):
        etl.forget(gone, url=pg_url)


def test_drop_table_only_when_asked_and_never_one_another_pipeline_writes(
    pg_url, schema, experiments
) -> None:
    gone, kept = experiments
    load(pg_url, f"{kept}_twin", f"{schema}.kept")  # a second pipeline writing the same table
    with pytest.raises(ETLConfigError, match="also the target of"):
        etl.forget(kept, url=pg_url, drop_table=True)
    assert state_rows(pg_url, kept)["runs"] == 1  # refused: nothing removed

    done = etl.forget(gone, url=pg_url, drop_table=True)
    assert done["table_dropped"]
    assert pg_exec(pg_url, "SELECT to_regclass(%s)", (f"{schema}.gone",)) == [(None,)]


def test_a_pipeline_at_work_is_not_forgotten(pg_url, experiments) -> None:
    gone, _ = experiments
    RunLedger(CheckpointStore(pg_url)).start(str(uuid.uuid4()), gone, "")
    with pytest.raises(RunLockedError, match="is being run"):
        etl.forget(gone, url=pg_url)
    assert state_rows(pg_url, gone)["runs"] == 3


def cli(*args: str, answer: str | None = None):
    _register()
    return CliRunner().invoke(app, list(args), input=answer)


def test_cli_says_what_it_removes_and_asks_first(pg_url, schema, experiments, monkeypatch):
    gone, kept = experiments
    before = state_rows(pg_url, gone)

    dry = cli("forget", gone, "--url", pg_url, "--dry-run")
    assert dry.exit_code == 0 and "would remove" in dry.stdout and "nothing removed" in dry.stdout
    assert f"{before['runs']:>8,}  runs" in dry.stdout
    assert f"table {schema}.gone: kept (--drop-table drops it)" in dry.stdout

    scripted = cli("forget", gone, "--url", pg_url)  # no terminal, no --yes: refused
    assert scripted.exit_code == 1 and "--yes" in scripted.stderr
    assert scripted.stderr.startswith("error: ") and state_rows(pg_url, gone) == before

    monkeypatch.setattr("etl_express.cli.forget.interactive", lambda: True)
    declined = cli("forget", gone, "--url", pg_url, answer="n\n")
    assert declined.exit_code == 1 and "nothing removed" in declined.stdout
    assert state_rows(pg_url, gone) == before

    confirmed = cli("forget", gone, "--url", pg_url, "--drop-table", answer="y\n")
    assert confirmed.exit_code == 0, confirmed.output
    assert f"{before['runs']:>8,}  runs" in confirmed.stdout.split("removed", 1)[1]
    assert f"table {schema}.gone: dropped" in confirmed.stdout
    assert not any(state_rows(pg_url, gone).values())

    unknown = cli("forget", gone, "--url", pg_url, "--yes")
    assert unknown.exit_code == 1 and f"unknown pipeline '{gone}'" in unknown.stderr
    assert kept in unknown.stderr  # the names it knows
