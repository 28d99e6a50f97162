"""``etl-express runs`` and ``etl-express logs show|tail`` against a real PostgreSQL, and the
pipeline references every command shares (a name or file.py:NAME; unknown names are errors)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from etl_express.cli import _register, app
from etl_express.cli._pipelines import load_pipeline
from etl_express.logs import configure_logging, flush_logs, shutdown_logging

PIPELINE_FILE = """
import etl_express as etl
from etl_express.sinks import PostgresSink


class Orders(etl.Source):
    name, primary_key = "orders", ["id"]
    fail = False

    def read(self, position=None, partition=None):
        start = position or 0
        for lo in range(start, 30, 10):
            if self.fail and lo == 10:
                raise etl.SourceError("the orders API answered 503", hint="try again later")
            yield etl.Batch([{{"id": i, "amount": i * 2}} for i in range(lo, lo + 10)], position=lo + 10)


pipeline = etl.Pipeline("{name}", Orders(), sink=PostgresSink("{schema}.orders"), progress=False)


def failing():
    source = Orders()
    source.fail = True
    return etl.Pipeline("{name}", source, sink=PostgresSink("{schema}.orders"), progress=False)
"""


@pytest.fixture
def runs_file(pg_url: str, schema: str, pipeline_name: str, tmp_path: Path):
    """Three runs of one pipeline, their log lines in the store and in ``tmp_path/logs``:
    30 rows, then 0 (incremental), after a failed run that committed 10."""
    path = tmp_path / "orders_pipeline.py"
    path.write_text(PIPELINE_FILE.format(name=pipeline_name, schema=schema))
    configure_logging(tmp_path / "logs", console=False)
    try:
        with pytest.raises(Exception, match="503"):
            load_pipeline(f"{path}:failing").run()
        load_pipeline(f"{path}:pipeline").run()
        load_pipeline(f"{path}:pipeline").run()
        assert flush_logs()
    finally:
        shutdown_logging()
    _register()
    return path


def invoke(*args: str):
    result = CliRunner().invoke(app, list(args))
    shutdown_logging()  # the CLI's root callback turned logging on in this process
    return result


def test_runs_lists_status_rows_duration_rate_and_error(runs_file: Path, pipeline_name: str):
    table = invoke("runs", pipeline_name)
    assert table.exit_code == 0, table.output
    lines = table.output.splitlines()
    assert lines[0].split()[:3] == ["run", "started", "(UTC)"] and "rows/s" in lines[0]
    statuses = [line.split()[5] for line in lines[1:] if not line.startswith(" ")]
    assert statuses == ["succeeded", "succeeded", "failed"]  # newest first
    assert "error: " in table.output and "503" in table.output

    rows = [
        json.loads(line) for line in invoke("runs", pipeline_name, "--json").output.splitlines()
    ]
    assert [(r["status"], r["rows_read"], r["rows_written"]) for r in rows] == [
        ("succeeded", 0, 0),
        ("succeeded", 20, 20),
        ("failed", 10, 10),
    ]
    assert all(r["duration_s"] is not None and r["duration_s"] >= 0 for r in rows)
    # duration_s is rounded to the millisecond, rows_per_s comes from the exact duration
    shown = rows[1]["duration_s"]
    rate = rows[1]["rows_per_s"]  # rounded to 0.1: half of that either way
    assert 20 / (shown + 0.0005) - 0.05 <= rate <= 20 / max(shown - 0.0005, 1e-9) + 0.05
    assert "503" in rows[2]["error"] and rows[0]["error"] is None
    # the same runs through the pipeline's code instead of its name
    by_code = invoke("runs", f"{runs_file}:pipeline", "--json").output.splitlines()
    assert [json.loads(line)["run_id"] for line in by_code] == [r["run_id"] for r in rows]
    assert len(invoke("runs", "--limit", "2", "--json").output.splitlines()) == 2


def test_logs_show_and_tail_from_the_store_and_the_files(
    runs_file: Path, pipeline_name: str, tmp_path: Path
):
    latest = json.loads(invoke("runs", pipeline_name, "--json").output.splitlines()[0])
    shown = invoke("logs", "show", pipeline_name)
    assert shown.exit_code == 0, shown.output
    assert all(f"run {latest['run_id'][:8]}" in line for line in shown.output.splitlines())
    assert "run succeeded: 0 read" in shown.output

    failed = json.loads(invoke("runs", pipeline_name, "--json").output.splitlines()[2])
    of_failed = invoke("logs", "show", "--run", failed["run_id"][:8]).output
    assert "run failed" in of_failed and "503" in of_failed and "run succeeded" not in of_failed

    tail = invoke("logs", "tail", pipeline_name, "-n", "2").output.splitlines()
    assert len(tail) == 2 and tail[-1].endswith(shown.output.splitlines()[-1].split("| ", 1)[1])
    # --follow on a finished run prints what there is and returns
    follow = invoke("logs", "tail", "--run", latest["run_id"], "--follow", "--interval", "0.1")
    assert follow.exit_code == 0 and "run succeeded: 0 read" in follow.output

    files = invoke("logs", "show", pipeline_name, "--files", "--log-dir", str(tmp_path / "logs"))
    assert files.exit_code == 0 and files.output == shown.output


@pytest.mark.parametrize(
    "command",
    [
        ["runs", "no_such_pipeline"],
        ["logs", "show", "no_such_pipeline"],
        ["logs", "tail", "no_such_pipeline"],
        ["quarantine", "list", "no_such_pipeline"],
    ],
)
def test_an_unknown_pipeline_is_an_error_naming_the_known_ones(
    runs_file: Path, pipeline_name: str, command: list[str]
):
    result = invoke(*command)
    assert result.exit_code == 1
    assert "unknown pipeline 'no_such_pipeline'" in result.output
    assert pipeline_name in result.output  # among the known pipelines listed


def test_quarantine_takes_the_same_references(runs_file: Path, pipeline_name: str):
    by_name = invoke("quarantine", "list", pipeline_name)
    by_code = invoke("quarantine", "list", f"{runs_file}:pipeline")
    assert by_name.exit_code == by_code.exit_code == 0
    assert (
        by_name.output
        == by_code.output
        == f"no quarantined records for pipeline {pipeline_name!r}\n"
    )
    replay = invoke("quarantine", "replay", pipeline_name)
    assert replay.exit_code == 1
    assert "replay needs the code of pipeline" in replay.output and ".py:NAME" in replay.output
